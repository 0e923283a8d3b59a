/**
 * Cluster transport: several JVMs serve one model together. {@link org.moeserve.comms.cluster.ClusterMember} joins a
 * Hazelcast cluster under a clustered Vert.x; the plan (which member holds which experts) is a versioned JSON entry
 * in a distributed map, rewritten by the oldest member whenever membership changes, so survivors take over a dead
 * member's experts. {@link org.moeserve.comms.cluster.RemoteExperts} sends a layer's rows to the members holding
 * their experts over the event bus (two all-to-alls, this member as home), grouped by
 * {@link org.moeserve.comms.ExpertGroups}, and retries failed calls under the next plan, so a request in flight
 * when a member dies completes with the same tokens. The model stays behind
 * {@link org.moeserve.comms.cluster.ExpertHost}: the runtime supplies the expert compute callback
 * (org.moeserve.runtime.cluster), this package owns membership, plan distribution and the wire.
 */
package org.moeserve.comms.cluster;
