/**
 * Loading Hugging Face MoE checkpoints: config.json ({@link org.moeserve.runtime.model.ModelConfig}, validated),
 * safetensors memory-mapped through FFM ({@link org.moeserve.runtime.model.SafetensorsFile}, single or sharded
 * via {@link org.moeserve.runtime.model.Checkpoint}), the per-family tensor names
 * ({@link org.moeserve.runtime.model.Family}) and the tokenizer. Every failure is a
 * {@link org.moeserve.runtime.model.CheckpointException} naming the file, the tensor, the expectation and what
 * was found.
 */
package org.moeserve.runtime.model;
