/**
 * Expert placement across devices: the placement problem and plan records (logical expert, physical expert /
 * replica, device, node, layer, as in vLLM and DeepSeek EPLB), the OR-Tools CP-SAT formulation of ExFlow's
 * inter-layer affinity with load balance and replication, an EPLB-style greedy and the baselines. Plans are
 * versioned records, replaced whole, never mutated. Depends on router-predictor for routing statistics.
 */
package org.moeserve.placement;
