/**
 * Benchmarks, run with {@code ./moe bench NAME}: side-by-side harnesses that print Markdown tables for
 * BENCHMARKS.md (medians of interleaved reps in one process), and JMH microbenchmarks under {@code jmh}.
 */
package org.moeserve.bench;
