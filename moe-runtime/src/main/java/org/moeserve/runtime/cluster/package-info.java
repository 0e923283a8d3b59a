/**
 * Cluster mode, the engine's side: {@link org.moeserve.runtime.cluster.ClusterExecutor} plugs comms' cluster
 * transport ({@code org.moeserve.comms.cluster}: Hazelcast membership, the versioned plan, the event-bus wire and
 * failover) into the engine's {@link org.moeserve.runtime.engine.ExpertExecutor} seam, and gives members the model
 * as an {@link org.moeserve.comms.cluster.ExpertHost} (the compute callback). Every member can serve HTTP itself
 * ({@code moe serve --cluster NAME}).
 */
package org.moeserve.runtime.cluster;
