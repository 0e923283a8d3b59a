/**
 * Benchmarks, run with {@code ./moe bench NAME}: side-by-side harnesses that print Markdown tables (medians of
 * interleaved reps in one process), and JMH microbenchmarks under {@code jmh}. {@code ./moe bench suite} runs them
 * all ({@link org.moeserve.bench.suite.Suite}); the harnesses' printed tables are the interface: the suite parses
 * them into bench/results/STEP.json, and {@link org.moeserve.bench.suite.Report} renders BENCHMARKS.md from that
 * JSON, so a harness that changes its columns must keep the ones the report reads (the report's tests name them).
 */
package org.moeserve.bench;
