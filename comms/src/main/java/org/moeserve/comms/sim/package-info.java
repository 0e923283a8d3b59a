/**
 * The cluster simulator: {@link org.moeserve.comms.sim.ClusterSimulator} replays per-token routing (a trace, or
 * {@link org.moeserve.comms.sim.SyntheticRouting} drawn from statistics) on devices and per-device send ports with
 * modelled links and compute times; bytes are exact, times are a model.
 */
package org.moeserve.comms.sim;
