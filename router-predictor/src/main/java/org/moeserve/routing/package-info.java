/**
 * Routing data: every token's expert path (moe-trace/1, shared/TRACE-FORMAT.md), read strictly and written by
 * {@code moe trace}. Statistics (load, inter-layer affinity, reuse) and the expert-path predictors build on it.
 * An expert path is {@code experts[t][l][k]}: token t, MoE layer l (dense layers not counted), k-th choice,
 * highest routing weight first.
 */
package org.moeserve.routing;
