/**
 * Routing data that other engines record, read without running their code. {@link org.moeserve.routing.torch.TorchFile}
 * reads {@code torch.save} zip archives with a pickle interpreter restricted to data (tensors, dicts, lists, numbers,
 * strings): any other global or opcode stops the read with the file and byte offset, so a hostile .pt file cannot
 * execute anything. {@link org.moeserve.routing.torch.SglangDump} turns SGLang's expert-distribution recorder dumps
 * into moe-trace/1 records or load counts. The test fixtures are written by a real {@code torch.save}
 * (router-predictor/src/test/resources/torch/make_fixtures.py, Debian's python3-torch), and committed.
 */
package org.moeserve.routing.torch;
