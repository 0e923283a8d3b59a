/**
 * Cluster mode: several JVMs serve one model together. {@link org.moeserve.runtime.cluster.ClusterMember} joins a
 * Hazelcast cluster under a clustered Vert.x; the plan (which member holds which experts) is a versioned JSON entry
 * in a distributed map, rewritten by the oldest member whenever membership changes, so survivors take over a dead
 * member's experts (from the checkpoint). {@link org.moeserve.runtime.cluster.ClusterExecutor} plugs into the
 * engine's {@link org.moeserve.runtime.engine.ExpertExecutor} seam: rows go to the members holding their experts
 * over the event bus (two all-to-alls, this member as home) and failed calls are retried under the next plan, so
 * a request in flight when a member dies completes with the same tokens. Every member can serve HTTP itself
 * ({@code moe serve --cluster NAME}).
 */
package org.moeserve.runtime.cluster;
