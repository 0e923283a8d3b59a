/**
 * Expert-parallel communication, engine-free: {@link org.moeserve.comms.Dispatch} is the one rule for where a
 * token's expert runs and where its outputs are combined under a {@link org.moeserve.comms.Scheme} (two all-to-alls,
 * or ExFlow's context-coherent one), and the one place messages are decided ({@code Dispatch.route});
 * {@link org.moeserve.comms.Traffic} counts messages and bytes per link, layer and kind;
 * {@link org.moeserve.comms.ExpertGroups} groups rows by expert for every executor. The engine's executors
 * (moe-runtime: in-process devices; cluster members through {@code cluster}, this module's transport over Hazelcast
 * and the Vert.x event bus) and the simulator ({@code sim}) all route by it, which is why their byte counts agree
 * exactly.
 */
package org.moeserve.comms;
