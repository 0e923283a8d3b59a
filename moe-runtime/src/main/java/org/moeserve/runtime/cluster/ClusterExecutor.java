package org.moeserve.runtime.cluster;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import org.moeserve.comms.Dispatch;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.ExpertExecutor;
import org.moeserve.runtime.model.MoeModel;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
public final class ClusterExecutor implements ExpertExecutor {
    private final ClusterMember member;
    private final MoeModel model;
    private final int[] moeIndex;
    private final int hidden;
    private final Duration callTimeout, planTimeout;
    private final AtomicLong sent = new AtomicLong(), received = new AtomicLong(), calls = new AtomicLong(), retried = new AtomicLong();

    public ClusterExecutor(ClusterMember member, Duration callTimeout, Duration planTimeout) {
        this.member = member;
        this.model = member.model();
        this.moeIndex = model.config().moeLayerIndex();
        this.hidden = model.config().hiddenSize();
        this.callTimeout = callTimeout;
        this.planTimeout = planTimeout;
    }

    public long bytesSent() { return sent.get(); }

    public long bytesReceived() { return received.get(); }

    public long remoteCalls() { return calls.get(); }

    /** (row, expert) jobs that had to be sent again after a member failed. */
    public long retried() { return retried.get(); }

    @Override
    public StepRun begin(long[] sequences) { return this::run; }

    private record Job(int row, int slot, int expert) { }

    private void run(int layer, float[][] x, int rows, int[][] idx, float[][][] contrib) {
        int ml = moeIndex[layer];
        List<Job> pending = new ArrayList<>();
        for (int r = 0; r < rows; r++) for (int j = 0; j < idx[r].length; j++) pending.add(new Job(r, j, idx[r][j]));
        Set<String> failed = new HashSet<>();
        while (!pending.isEmpty()) {
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
            Map<Integer, List<Job>> byDevice = new TreeMap<>();
            for (Job j : pending) byDevice.computeIfAbsent(d.device(ml, j.expert(), from), k -> new ArrayList<>()).add(j);
            Map<Integer, CompletableFuture<io.vertx.core.eventbus.Message<Buffer>>> remote = new TreeMap<>();
            Map<Integer, Map<Integer, List<Job>>> groupsOf = new TreeMap<>();
            for (var en : byDevice.entrySet()) {
                Map<Integer, List<Job>> groups = new TreeMap<>();
                for (Job j : en.getValue()) groups.computeIfAbsent(j.expert(), k -> new ArrayList<>()).add(j);
                groupsOf.put(en.getKey(), groups);
                if (en.getKey() == me) continue;
                int[] slotOf = new int[rows]; // row -> its place among the rows sent (each row once per member)
                java.util.Arrays.fill(slotOf, -1);
                int distinct = 0;
                for (Job j : en.getValue()) if (slotOf[j.row()] < 0) slotOf[j.row()] = distinct++;
                Buffer b = Buffer.buffer().appendInt(layer).appendInt(ml).appendInt(distinct);
                float[][] sentRows = new float[distinct][];
                for (Job j : en.getValue()) sentRows[slotOf[j.row()]] = x[j.row()];
                for (float[] row : sentRows) for (float v : row) b.appendFloat(v);
                b.appendInt(groups.size());
                for (var g : groups.entrySet()) {
                    b.appendInt(g.getKey()).appendInt(g.getValue().size());
                    for (Job j : g.getValue()) b.appendInt(slotOf[j.row()]);
                }
                sent.addAndGet((long) distinct * hidden * Float.BYTES);
                calls.incrementAndGet();
                remote.put(en.getKey(), member.vertx().eventBus().<Buffer>request("moe.experts." + p.members().get(en.getKey()), b,
                        new DeliveryOptions().setSendTimeout(callTimeout.toMillis())).toCompletionStage().toCompletableFuture());
            }
            List<Job> again = new ArrayList<>();
            if (groupsOf.containsKey(me)) { // this member's own experts, while the others work
                for (var g : groupsOf.get(me).entrySet()) {
                    List<Job> js = g.getValue();
                    float[][] xg = new float[js.size()][], y = new float[js.size()][hidden];
                    for (int i = 0; i < js.size(); i++) xg[i] = x[js.get(i).row()];
                    Engine.expertForward(member.load(layer, ml, g.getKey()), xg, js.size(), y);
                    for (int i = 0; i < js.size(); i++) contrib[js.get(i).row()][js.get(i).slot()] = y[i];
                }
            }
            for (var en : remote.entrySet()) {
                try {
                    Buffer reply = en.getValue().get(callTimeout.toMillis() + 1000, TimeUnit.MILLISECONDS).body();
                    int pos = 0;
                    for (var g : groupsOf.get(en.getKey()).entrySet()) {
                        for (Job j : g.getValue()) {
                            float[] y = new float[hidden];
                            for (int i = 0; i < hidden; i++, pos += 4) y[i] = reply.getFloat(pos);
                            contrib[j.row()][j.slot()] = y;
                        }
                    }
                    received.addAndGet(pos);
                } catch (Exception e) {
                    failed.add(p.members().get(en.getKey()));
                    List<Job> lost = byDevice.get(en.getKey());
                    retried.addAndGet(lost.size());
                    again.addAll(lost);
                }
            }
            pending = again;
        }
    }
}
