package org.moeserve.comms.cluster;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import org.moeserve.comms.Dispatch;
import org.moeserve.comms.ExpertGroups;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runs a MoE layer's experts across the cluster under its current plan: this member is every row's home (two
 * all-to-alls: rows out to the members holding their experts, outputs back). Rows whose member does not answer
 * (it died, or left) wait for the plan version that no longer has it, then go where that plan says: a request in
 * flight when a member dies completes, with the same result, since an expert's output does not depend on where it
 * runs. Counts the activation bytes it sends and receives (payload, without the few header ints).
 */
public final class RemoteExperts {
    private final ClusterMember member;
    private final int hidden, experts;
    private final Duration callTimeout, planTimeout;
    private final AtomicLong sent = new AtomicLong(), received = new AtomicLong(), calls = new AtomicLong(), retried = new AtomicLong();

    public RemoteExperts(ClusterMember member, Duration callTimeout, Duration planTimeout) {
        this.member = member;
        this.hidden = member.host().hiddenSize();
        this.experts = member.host().experts();
        this.callTimeout = callTimeout;
        this.planTimeout = planTimeout;
    }

    public long bytesSent() { return sent.get(); }

    public long bytesReceived() { return received.get(); }

    public long remoteCalls() { return calls.get(); }

    /** (row, expert) choices that had to be sent again after a member failed. */
    public long retried() { return retried.get(); }

    /** contrib[r][j] = expert idx[r][j] of MoE layer {@code moeLayer} applied to x[r], wherever the plan puts it. */
    public void run(int moeLayer, float[][] x, int rows, int[][] idx, float[][][] contrib) {
        boolean[][] done = new boolean[rows][];
        for (int r = 0; r < rows; r++) done[r] = new boolean[idx[r].length];
        java.util.Set<String> failed = new java.util.HashSet<>();
        while (true) {
            ClusterPlan p;
            try {
                p = member.awaitPlan(pl -> failed.stream().noneMatch(pl.members()::contains), planTimeout,
                        failed.isEmpty() ? "any members" : "the failed members " + failed + " replaced");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the cluster's plan", e);
            }
            Dispatch d = p.dispatch();
            int me = p.indexOf(member.nodeId()), from = Math.max(0, me);
            int[][] device = new int[rows][];
            java.util.SortedSet<Integer> targets = new java.util.TreeSet<>();
            for (int r = 0; r < rows; r++) {
                device[r] = new int[idx[r].length];
                for (int j = 0; j < idx[r].length; j++) {
                    if (done[r][j]) continue;
                    device[r][j] = d.device(moeLayer, idx[r][j], from);
                    targets.add(device[r][j]);
                }
            }
            if (targets.isEmpty()) return;
            Map<Integer, List<ExpertGroups.Group>> groupsOf = new TreeMap<>();
            for (int dev : targets) {
                groupsOf.put(dev, ExpertGroups.of(idx, rows, experts, (r, j) -> !done[r][j] && device[r][j] == dev));
            }
            Map<Integer, CompletableFuture<Message<Buffer>>> remote = new TreeMap<>();
            for (var en : groupsOf.entrySet()) {
                if (en.getKey() == me) continue;
                Buffer b = ClusterMember.encode(moeLayer, x, rows, en.getValue());
                sent.addAndGet((long) b.getInt(4) * hidden * Float.BYTES);
                calls.incrementAndGet();
                remote.put(en.getKey(), member.vertx().eventBus().<Buffer>request("moe.experts." + p.members().get(en.getKey()), b,
                        new DeliveryOptions().setSendTimeout(callTimeout.toMillis())).toCompletionStage().toCompletableFuture());
            }
            if (groupsOf.containsKey(me)) { // this member's own experts, while the others work
                for (ExpertGroups.Group g : groupsOf.get(me)) {
                    member.compute(moeLayer, g, x, contrib);
                    markDone(g, done);
                }
            }
            for (var en : remote.entrySet()) {
                try {
                    Buffer reply = en.getValue().get(callTimeout.toMillis() + 1000, TimeUnit.MILLISECONDS).body();
                    int pos = 0;
                    for (ExpertGroups.Group g : groupsOf.get(en.getKey())) {
                        float[][] y = new float[g.size()][hidden];
                        for (float[] row : y) for (int i = 0; i < hidden; i++, pos += 4) row[i] = reply.getFloat(pos);
                        g.scatter(y, contrib);
                        markDone(g, done);
                    }
                    received.addAndGet(pos);
                } catch (Exception e) {
                    failed.add(p.members().get(en.getKey()));
                    for (ExpertGroups.Group g : groupsOf.get(en.getKey())) retried.addAndGet(g.size());
                }
            }
        }
    }

    private static void markDone(ExpertGroups.Group g, boolean[][] done) {
        for (int i = 0; i < g.size(); i++) done[g.rows()[i]][g.slots()[i]] = true;
    }
}
