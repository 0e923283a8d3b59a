package org.moeserve.comms.cluster;

import com.hazelcast.cluster.Member;
import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.NetworkConfig;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import com.hazelcast.map.listener.EntryAddedListener;
import com.hazelcast.map.listener.EntryUpdatedListener;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.spi.cluster.NodeListener;
import io.vertx.spi.cluster.hazelcast.ConfigUtil;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;
import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.Topology;
import org.moeserve.placement.greedy.Baselines;
import org.moeserve.comms.ExpertGroups;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * One JVM of a cluster: a Hazelcast member under a clustered Vert.x. The plan lives in the distributed map
 * {@code moe-plan} (key {@code plan}, JSON, versioned); the oldest member is the coordinator and writes a new version
 * whenever members join or leave (a contiguous placement over the members in join order, unless a plan file for
 * exactly that many devices was given), so when a member dies the survivors take over its experts, loaded from the
 * checkpoint. Every member loads only the experts its plan gives it (and any it is asked for in a plan change's
 * window), serves expert requests for them on the event bus at {@code moe.experts.<node id>}, and can accept
 * requests itself (see {@link RemoteExperts}). The model stays on the other side of {@link ExpertHost}: this class
 * is transport, membership and plan only.
 *
 * <p>Wire format of an expert request (activations in float32, big-endian as Vert.x buffers write them):
 * MoE layer, distinct rows m, m x hidden floats, groups g, then per group ({@link ExpertGroups.Group}): expert, n,
 * n row indices. The reply holds each group's n x hidden outputs in order.
 */
public final class ClusterMember implements AutoCloseable {
    /** How to join. {@code members}: the addresses to look for peers at (host:port); loopback in tests. */
    public record Options(String clusterName, String host, int port, List<String> members, int heartbeatSeconds, PlacementPlan plan) {
        public static Options loopback(String clusterName, int port) {
            return new Options(clusterName, "127.0.0.1", port, ports("127.0.0.1", port), 4, null);
        }

        /** host:port .. host:port+19, where members look for each other by default (ports auto-increment). */
        public static List<String> ports(String host, int first) {
            List<String> out = new ArrayList<>();
            for (int p = first; p < first + 20; p++) out.add(host + ":" + p);
            return out;
        }
    }

    static final String MAP = "moe-plan", KEY = "plan", NODE_ID = "__vertx.nodeId";

    private final ExpertHost model;
    private final Options options;
    private final Vertx vertx;
    private final HazelcastClusterManager manager;
    private final HazelcastInstance hz;
    private final IMap<String, String> planMap;
    private final String nodeId;
    private final Object planLock = new Object();
    private final Set<Long> loaded = ConcurrentHashMap.newKeySet();
    private volatile ClusterPlan plan;
    private final AtomicLong served = new AtomicLong(), takenOver = new AtomicLong();

    private ClusterMember(ExpertHost model, Options options, Vertx vertx, HazelcastClusterManager manager) {
        this.model = model;
        this.options = options;
        this.vertx = vertx;
        this.manager = manager;
        this.hz = manager.getHazelcastInstance();
        this.nodeId = manager.getNodeId();
        this.planMap = hz.getMap(MAP);
    }

    /** Joins (or founds) the cluster; returns once this member is in and has read the plan, if there is one. */
    public static ClusterMember join(ExpertHost model, Options o) throws Exception {
        // Hazelcast narrates every step at INFO; keep its warnings (set the property to override)
        if (System.getProperty("org.slf4j.simpleLogger.log.com.hazelcast") == null) {
            System.setProperty("org.slf4j.simpleLogger.log.com.hazelcast", "warn");
        }
        Config hc = ConfigUtil.loadConfig();
        hc.setClusterName(o.clusterName());
        hc.setProperty("hazelcast.phone.home.enabled", "false");
        hc.setProperty("hazelcast.heartbeat.interval.seconds", "1");
        hc.setProperty("hazelcast.max.no.heartbeat.seconds", String.valueOf(o.heartbeatSeconds()));
        hc.setProperty("hazelcast.logging.type", "slf4j");
        hc.setProperty("hazelcast.shutdownhook.enabled", "false");
        NetworkConfig net = hc.getNetworkConfig();
        net.setPort(o.port()).setPortAutoIncrement(true).setPortCount(20);
        net.getInterfaces().setEnabled(true).addInterface(o.host());
        JoinConfig join = net.getJoin();
        join.getMulticastConfig().setEnabled(false);
        join.getAutoDetectionConfig().setEnabled(false);
        join.getTcpIpConfig().setEnabled(true).setMembers(o.members());
        HazelcastClusterManager manager = new HazelcastClusterManager(hc);
        VertxOptions vo = new VertxOptions().setEventBusOptions(new EventBusOptions().setHost(o.host()).setClusterPublicHost(o.host()).setPort(0));
        Vertx vertx = Vertx.builder().with(vo).withClusterManager(manager).buildClustered()
                .toCompletionStage().toCompletableFuture().get(120, TimeUnit.SECONDS);
        ClusterMember m = new ClusterMember(model, o, vertx, manager);
        m.start();
        return m;
    }

    private void start() throws Exception {
        planMap.addEntryListener((EntryAddedListener<String, String> & EntryUpdatedListener<String, String>) new PlanListener(), true);
        String current = planMap.get(KEY);
        if (current != null) install(ClusterPlan.fromJson(current));
        vertx.eventBus().<Buffer>consumer("moe.experts." + nodeId, this::serve).completion()
                .toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
        manager.nodeListener(new NodeListener() {
            @Override
            public void nodeAdded(String id) { rebalance(); }

            @Override
            public void nodeLeft(String id) { rebalance(); }
        });
        rebalance();
    }

    private final class PlanListener implements EntryAddedListener<String, String>, EntryUpdatedListener<String, String> {
        @Override
        public void entryAdded(com.hazelcast.core.EntryEvent<String, String> e) { install(ClusterPlan.fromJson(e.getValue())); }

        @Override
        public void entryUpdated(com.hazelcast.core.EntryEvent<String, String> e) { install(ClusterPlan.fromJson(e.getValue())); }
    }

    public String nodeId() { return nodeId; }

    public Vertx vertx() { return vertx; }

    public ExpertHost host() { return model; }

    public ClusterPlan plan() { return plan; }

    /** Expert requests this member has served, and experts it loaded beyond its plan's (a plan change's window). */
    public long served() { return served.get(); }

    public long takenOver() { return takenOver.get(); }

    /** (MoE layer, expert) pairs this member holds now: its plan's, plus any it was asked for since. */
    public int expertsLoaded() { return loaded.size(); }

    /** Waits until the plan satisfies {@code p}; the plan, or an exception naming what was awaited. */
    public ClusterPlan awaitPlan(Predicate<ClusterPlan> p, Duration timeout, String what) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        synchronized (planLock) {
            while (plan == null || !p.test(plan)) {
                long left = end - System.nanoTime();
                if (left <= 0) throw new IllegalStateException("cluster: no plan with " + what + " after " + timeout.toSeconds() + " s (plan now: "
                        + (plan == null ? "none" : "version " + plan.version() + " over " + plan.members().size() + " members") + ")");
                planLock.wait(Math.max(1, left / 1_000_000));
            }
            return plan;
        }
    }

    /** The coordinator (oldest member) writes a new plan version when the membership differs from the plan's. */
    private void rebalance() {
        try {
            if (!hz.getLifecycleService().isRunning()) return;
            Set<Member> members = hz.getCluster().getMembers();
            if (!members.iterator().next().localMember()) return;
            List<String> ids = new ArrayList<>();
            for (Member mb : members) { // Vert.x node ids (the event bus's), oldest member first
                String id = mb.getAttribute(NODE_ID);
                if (id == null) return; // still joining: its nodeAdded comes later
                ids.add(id);
            }
            synchronized (this) {
                String json = planMap.get(KEY);
                ClusterPlan cur = json == null ? null : ClusterPlan.fromJson(json);
                if (cur != null && cur.members().equals(ids)) return;
                ClusterPlan next = new ClusterPlan(cur == null ? 1 : cur.version() + 1, ids, placement(ids.size()), model.experts());
                planMap.put(KEY, next.toJson());
            }
        } catch (RuntimeException e) {
            if (hz.getLifecycleService().isRunning()) System.err.println("cluster: re-planning failed: " + e);
        }
    }

    private PlacementPlan placement(int devices) {
        PlacementPlan given = options.plan();
        int experts = model.experts(), layers = model.moeLayers();
        if (given != null && given.phy2log()[0].length == devices * given.slots()) return given;
        int slots = (experts + devices - 1) / devices;
        return Baselines.contiguous().place(PlacementProblem.uniform(layers, experts, model.topK(),
                Topology.of(1, devices, slots), 4 * model.hiddenSize()));
    }

    /**
     * Makes {@code p} this member's plan: loads the experts it gives this member and drops the others (the mapping
     * stays, the pages go back to the page cache's discretion), then tells waiters.
     */
    private void install(ClusterPlan p) {
        synchronized (planLock) {
            if (plan != null && p.version() <= plan.version()) return;
            int me = p.indexOf(nodeId);
            Set<Long> owned = new java.util.HashSet<>();
            for (int l = 0; me >= 0 && l < model.moeLayers(); l++) {
                for (int e = 0; e < p.experts(); e++) {
                    if (p.dispatch().holds(l, e, me)) {
                        load(l, e);
                        owned.add((long) l * p.experts() + e);
                    }
                }
            }
            loaded.retainAll(owned);
            plan = p;
            planLock.notifyAll();
        }
    }

    /** Makes an expert ready (the host pages it in); counts it once. */
    void load(int moeLayer, int expert) {
        if (loaded.add((long) moeLayer * model.experts() + expert)) model.load(moeLayer, expert);
    }

    /** Runs one group of rows through an expert here (this member's own share of a layer). */
    void compute(int moeLayer, ExpertGroups.Group g, float[][] x, float[][][] contrib) {
        load(moeLayer, g.expert());
        float[][] y = new float[g.size()][model.hiddenSize()];
        model.compute(moeLayer, g.expert(), g.gather(x), g.size(), y);
        g.scatter(y, contrib);
    }

    private void serve(Message<Buffer> msg) {
        vertx.<Buffer>executeBlocking(() -> compute(msg.body()), false).onComplete(ar -> {
            if (ar.succeeded()) msg.reply(ar.result());
            else msg.fail(500, String.valueOf(ar.cause()));
        });
    }

    /** Encodes a request: the rows of {@code groups} (each once) and the groups over them. */
    static Buffer encode(int moeLayer, float[][] x, int rows, List<ExpertGroups.Group> groups) {
        int[] slotOf = new int[rows]; // row -> its place among the rows sent
        java.util.Arrays.fill(slotOf, -1);
        List<float[]> sent = new ArrayList<>();
        for (ExpertGroups.Group g : groups) {
            for (int r : g.rows()) {
                if (slotOf[r] < 0) {
                    slotOf[r] = sent.size();
                    sent.add(x[r]);
                }
            }
        }
        Buffer b = Buffer.buffer().appendInt(moeLayer).appendInt(sent.size());
        for (float[] row : sent) for (float v : row) b.appendFloat(v);
        b.appendInt(groups.size());
        for (ExpertGroups.Group g : groups) {
            b.appendInt(g.expert()).appendInt(g.size());
            for (int r : g.rows()) b.appendInt(slotOf[r]);
        }
        return b;
    }

    private Buffer compute(Buffer in) {
        int h = model.hiddenSize();
        int pos = 0;
        int moeLayer = in.getInt(pos), m = in.getInt(pos + 4);
        pos += 8;
        float[][] rows = new float[m][h];
        for (int r = 0; r < m; r++) for (int i = 0; i < h; i++, pos += 4) rows[r][i] = in.getFloat(pos);
        int groups = in.getInt(pos);
        pos += 4;
        Buffer out = Buffer.buffer();
        ClusterPlan p = plan;
        int me = p == null ? -1 : p.indexOf(nodeId);
        for (int g = 0; g < groups; g++) {
            int expert = in.getInt(pos), n = in.getInt(pos + 4);
            pos += 8;
            int[] idx = new int[n];
            for (int i = 0; i < n; i++, pos += 4) idx[i] = in.getInt(pos);
            ExpertGroups.Group group = new ExpertGroups.Group(expert, idx, new int[n]);
            if (me < 0 || !p.dispatch().holds(moeLayer, expert, me)) {
                if (!loaded.contains((long) moeLayer * model.experts() + expert)) takenOver.incrementAndGet();
            }
            load(moeLayer, expert);
            float[][] y = new float[n][h];
            model.compute(moeLayer, expert, group.gather(rows), n, y);
            for (float[] row : y) for (float v : row) out.appendFloat(v);
        }
        served.incrementAndGet();
        return out;
    }

    /** Leaves the cluster cleanly (a killed JVM leaves uncleanly: the others notice within the heartbeat timeout). */
    @Override
    public void close() {
        try {
            vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            System.err.println("cluster: leaving: " + e);
        }
    }
}
