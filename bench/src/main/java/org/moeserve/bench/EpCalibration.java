package org.moeserve.bench;

import org.moeserve.units.LinkModel;
import org.moeserve.comms.Dispatch;
import org.moeserve.comms.Scheme;
import org.moeserve.comms.sim.ClusterSimulator;
import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.Topology;
import org.moeserve.placement.greedy.Baselines;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.ExpertExecutor;
import org.moeserve.runtime.engine.ExpertParallel;
import org.moeserve.runtime.engine.Generator;
import org.moeserve.runtime.engine.ResidentExpertStore;
import org.moeserve.runtime.engine.SamplingParams;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The simulator's times against the real in-process expert parallelism: the demo model on 2 devices (one core
 * each), 1, 2, 4 and 8 streams decoding 128 tokens greedily under both dispatch schemes, interleaved rep by rep. The
 * measured quantity is the MoE blocks' time per decode step (dispatch, the devices' experts in parallel, combine);
 * the rest of a layer runs centrally in the in-process engine, not per device as the simulator models a cluster, so
 * it is left out. The simulator is given exactly the routed tokens, and two constants fitted by least squares on 1,
 * 2 and 4 streams: the engine's fixed cost per layer and its cost per routed (token, expert); 8 streams are the
 * held-out check. Beside it, the simulator with the microbenchmark's constant alone (one token through one expert).
 * Usage: ./moe bench ep-calibrate [reps]
 */
final class EpCalibration {
    static final int STREAMS = 8, TOKENS = 128;

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 11;
        Path dir = Path.of(System.getProperty("moe.home", ".")).resolve("models/tiny-mixtral-kjv");
        try (MoeModel m = MoeModel.load(dir); Parallel two = new Parallel(2)) {
            int h = m.config().hiddenSize(), layers = m.config().moeLayers(), experts = m.config().experts();
            Topology topo = Topology.of(1, 2, experts / 2);
            PlacementPlan plan = Baselines.contiguous().place(PlacementProblem.uniform(layers, experts, m.config().topK(), topo, 4 * h));
            Dispatch dispatch = new Dispatch(plan, topo, experts);

            // 1. the constants, from microbenchmarks: one expert call over 1 and over 8 rows (both devices busy) gives
            //    a cost per call and per token; the in-process copy bandwidth; the rest of a layer on one thread
            double expertNs1 = expertNanos(m, 1, 1), call1 = expertNanos(m, 2, 1), call8 = expertNanos(m, 2, 8);
            double perToken = Math.max(0, (call8 - call1) / 7), perCall = Math.max(0, call1 - perToken), copyBw = copyBandwidth(h);
            double[] serialStep = new double[reps], serialMoe = new double[reps];
            for (int r = -2; r < reps; r++) {
                Engine e = new Engine(m, Parallel.SERIAL);
                double[] t = decode(e, e.executor(), STREAMS);
                if (r < 0) continue;
                serialStep[r] = t[0];
                serialMoe[r] = t[1];
            }
            double restPerToken = (Bench.median(serialStep) - Bench.median(serialMoe)) / (STREAMS * layers);
            System.out.println("machine: " + Bench.machine());
            System.out.printf(Locale.ROOT, "constants: one token through one expert %.0f ns alone; with both devices busy a call costs "
                    + "%.0f ns + %.0f ns per token (1 row: %.0f, 8 rows: %.0f); in-process copies at %.1f GB/s; the rest of a layer %.0f ns "
                    + "per token (one thread)%n", expertNs1, perCall, perToken, call1, call8, copyBw / 1e9, restPerToken);
            ClusterSimulator.Config base = new ClusterSimulator.Config(topo, new LinkModel(copyBw, 0), new LinkModel(copyBw, 0),
                    call1, 0, 4 * h);

            // 2. every run, interleaved rep by rep (this machine's speed drifts): 1 and 4 streams calibrate, 8 are held out
            int[] streams = {1, 2, 4, STREAMS};
            int calibration = streams.length - 1;
            Scheme[] schemes = Scheme.values();
            double[][][] times = new double[streams.length][schemes.length][reps];
            @SuppressWarnings("unchecked") List<ClusterSimulator.Step>[][] routed = new List[streams.length][schemes.length];
            for (int r = -3; r < reps; r++) {
                for (int i = 0; i < streams.length; i++) {
                    for (int j = 0; j < schemes.length; j++) {
                        List<ClusterSimulator.Step> steps = new ArrayList<>();
                        double t = measureOnce(m, two, dispatch, schemes[j], streams[i], steps);
                        if (r < 0) continue;
                        times[i][j][r] = t;
                        if (routed[i][j] == null) routed[i][j] = steps;
                    }
                }
            }
            // 3. the model: a step's MoE time = its simulated communication + layers x F + (critical-path (token, expert)
            //    jobs) x b, with F the engine's fixed cost per layer and b the cost of one routed token through one expert in
            //    the engine; least squares over 1, 2 and 4 streams (both schemes), then predicting 8
            double sxx = 0, sx = 0, sy = 0, sxy = 0;
            int n = 0;
            for (int i = 0; i < calibration; i++) {
                for (int j = 0; j < schemes.length; j++) {
                    double comm = simulate(withExpertTime(base, 0), dispatch, schemes[j], routed[i][j], layers);
                    double perNs = simulate(withExpertTime(base, 1000), dispatch, schemes[j], routed[i][j], layers);
                    double x = (perNs - comm) / 1000, y = Bench.median(times[i][j]) - comm; // y = layers x F + x x b
                    sxx += x * x;
                    sx += x;
                    sy += y;
                    sxy += x * y;
                    n++;
                }
            }
            double b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
            if (!(b > 0)) b = call1;
            double layerFixed = Math.max(0, (sy - b * sx) / n / layers);
            System.out.printf(Locale.ROOT, "calibrated on 1, 2 and 4 streams: %.1f us fixed per layer, %.0f ns per routed (token, expert) "
                    + "(the microbenchmark's %.0f)%n", layerFixed / 1e3, b, call1);
            ClusterSimulator.Config full = withExpertTime(base, b).withFixedCosts(layerFixed, 0);
            System.out.println("| scheme | streams | measured MoE time per decode step (median of " + reps
                    + ") | simulated, microbenchmark constants only | error | simulated, calibrated | error |");
            System.out.println("|---|---|---|---|---|---|---|");
            for (int i = 0; i < streams.length; i++) {
                for (int j = 0; j < schemes.length; j++) {
                    double measured = Bench.median(times[i][j]);
                    double old = simulate(base, dispatch, schemes[j], routed[i][j], layers);
                    double now = simulate(full, dispatch, schemes[j], routed[i][j], layers);
                    System.out.printf(Locale.ROOT, "| %s | %d%s | %.0f us | %.0f us | %+.0f%% | %.0f us | %+.0f%% |%n", schemes[j].label(), streams[i],
                            i < calibration ? " (calibration)" : " (held out)", measured / 1e3, old / 1e3, 100 * (old - measured) / measured, now / 1e3,
                            100 * (now - measured) / measured);
                }
            }
        }
    }

    /** One generation of {@code streams} streams: its MoE time per decode step; the decode steps' routing into {@code steps}. */
    static double measureOnce(MoeModel m, Parallel two, Dispatch dispatch, Scheme s, int streams, List<ClusterSimulator.Step> steps) {
        Engine e = new Engine(m, two);
        Map<Integer, Map<Long, int[][]>> byPos = new TreeMap<>();
        e.addListener((rt, ml) -> {
            if (ml < rt.moeLayers() - 1) return;
            for (int row = 0; row < rt.rows(); row++) {
                byPos.computeIfAbsent(rt.position(row), k -> new TreeMap<>()).put(rt.sequence(row), rt.path(row));
            }
        });
        double[] t = decode(e, new ExpertParallel(m.config(), new ResidentExpertStore(m), dispatch, s, two), streams);
        int prompt = requests(streams).getFirst().prompt().length;
        for (var en : byPos.entrySet()) {
            if (en.getKey() < prompt) continue; // decode steps only: one token of each stream
            long[] seq = en.getValue().keySet().stream().mapToLong(Long::longValue).toArray();
            steps.add(new ClusterSimulator.Step(seq, en.getValue().values().toArray(int[][][]::new)));
        }
        return t[1];
    }

    static double simulate(ClusterSimulator.Config c, Dispatch dispatch, Scheme s, List<ClusterSimulator.Step> steps, int layers) {
        ClusterSimulator.Result res = new ClusterSimulator(c).run(dispatch, s, steps, layers, null);
        return res.totalNanos() / (double) res.steps();
    }

    /** The same cluster with {@code nanos} per (token, expert). */
    static ClusterSimulator.Config withExpertTime(ClusterSimulator.Config c, double nanos) {
        return new ClusterSimulator.Config(c.topology(), c.intraNode(), c.interNode(), nanos, c.layerNanosPerToken(), c.hiddenBytes());
    }

    static List<Generator.Request> requests(int streams) {
        List<Generator.Request> reqs = new ArrayList<>();
        for (int s = 0; s < streams; s++) {
            reqs.add(new Generator.Request(DecodeThroughput.PROMPTS[s].chars().toArray(), TOKENS, SamplingParams.GREEDY, false));
        }
        return reqs;
    }

    /**
     * Generates the streams with {@code executor} timed: {decode step time, MoE time per decode step} in ns. The
     * first token comes after the prefill, so the MoE clock restarts there and counts decode steps only.
     */
    static double[] decode(Engine e, ExpertExecutor executor, int streams) {
        long[] moeNs = {0};
        e.setExecutor(timed(executor, moeNs));
        Generator g = new Generator(e);
        boolean[] prefilled = {false};
        g.generate(requests(streams), (i, t) -> {
            if (!prefilled[0]) {
                prefilled[0] = true;
                moeNs[0] = 0;
            }
        });
        double steps = g.lastTiming().decodeTokens() / (double) streams;
        return new double[]{g.lastTiming().decodeNanos() / steps, moeNs[0] / steps};
    }

    /** An executor that adds the time spent in its layers to {@code nanos[0]}. */
    static ExpertExecutor timed(ExpertExecutor inner, long[] nanos) {
        return seqs -> {
            ExpertExecutor.StepRun run = inner.begin(seqs);
            return (layer, x, rows, idx, contrib) -> {
                long t0 = System.nanoTime();
                run.run(layer, x, rows, idx, contrib);
                nanos[0] += System.nanoTime() - t0;
            };
        };
    }

    /**
     * One call of an expert over {@code rows} tokens while {@code devices} threads do the same at once (devices of one machine share
     * its memory bandwidth, which a cluster's devices do not): median over the experts of layer 0.
     */
    static double expertNanos(MoeModel m, int devices, int rows) {
        int h = m.config().hiddenSize(), n = 400, experts = m.config().experts();
        double[][] per = new double[devices][experts / devices];
        for (int rep = 0; rep < 2; rep++) {
            List<Thread> ts = new ArrayList<>();
            for (int d = 0; d < devices; d++) {
                int dev = d;
                ts.add(Thread.ofPlatform().start(() -> {
                    float[][] x = new float[rows][h], y = new float[rows][h];
                    for (float[] row : x) java.util.Arrays.fill(row, 0.01f);
                    for (int k = 0; k < experts / devices; k++) {
                        long t0 = System.nanoTime();
                        for (int i = 0; i < n; i++) org.moeserve.runtime.engine.ExpertFfn.SWIGLU.apply(m.expert(0, dev * (experts / devices) + k), x, rows, y, org.moeserve.runtime.kernel.Parallel.SERIAL);
                        per[dev][k] = (System.nanoTime() - t0) / (double) n;
                    }
                }));
            }
            for (Thread t : ts) {
                try {
                    t.join();
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
        return Bench.median(java.util.Arrays.stream(per).flatMapToDouble(java.util.Arrays::stream).toArray());
    }

    /** Bytes per second of copying one activation (float[h].clone()), as the in-process devices do. */
    static double copyBandwidth(int h) {
        float[] a = new float[h];
        int n = 200_000;
        long sink = 0, t0 = System.nanoTime();
        for (int i = 0; i < n; i++) sink += a.clone().length;
        double secs = (System.nanoTime() - t0) / 1e9;
        return sink * 4.0 / secs;
    }
}
