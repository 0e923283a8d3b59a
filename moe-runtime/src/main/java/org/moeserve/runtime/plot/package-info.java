/**
 * Plots as SVG (line charts, bar charts, heatmaps) with no dependency: the one drawing code the CLI's commands
 * ({@code cache-sim --svg}, {@code plan --svg}, {@code simulate --svg}) and the bench suite's report share.
 */
package org.moeserve.runtime.plot;
