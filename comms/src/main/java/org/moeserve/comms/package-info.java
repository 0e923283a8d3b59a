/**
 * Expert-parallel communication: topology and link model, per-layer dispatch/combine of tokens to the devices
 * that hold their experts (in-process and across JVMs over the Vert.x event bus and Hazelcast), cluster
 * membership and plan distribution, and the cluster simulator.
 */
package org.moeserve.comms;
