/**
 * Loading MoE checkpoints: a Hugging Face directory (config.json, {@link org.moeserve.runtime.model.ModelConfig},
 * validated; safetensors memory-mapped through FFM, {@link org.moeserve.runtime.model.SafetensorsFile}, single or
 * sharded via {@link org.moeserve.runtime.model.Checkpoint}) or a GGUF file ({@link org.moeserve.runtime.model.GgufFile},
 * seen as the Hugging Face checkpoint it stands for by {@link org.moeserve.runtime.model.GgufModel}, tokenizer rebuilt
 * from its metadata by {@link org.moeserve.runtime.model.GgufTokenizer}); the per-family tensor names
 * ({@link org.moeserve.runtime.model.Family}) and the tokenizer. Writing: {@link org.moeserve.runtime.model.GgufExport}
 * (GGUF as llama.cpp writes it, optionally quantized by {@link org.moeserve.runtime.model.Blocks}) and
 * {@link org.moeserve.runtime.model.Synth} (random weights at real shapes). Every failure is a
 * {@link org.moeserve.runtime.model.CheckpointException} naming the file, the tensor, the expectation and what was found.
 */
package org.moeserve.runtime.model;
