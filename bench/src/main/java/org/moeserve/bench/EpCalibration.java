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
 * each), 8 streams decoding 64 tokens greedily. The simulator's constants are measured first, on one thread: one
 * token through one expert, and the in-process copy bandwidth. Then the real time the MoE blocks take per decode step
 * (dispatch, the devices' experts in parallel, combine; median of reps) is compared with the simulated time of
 * exactly the routed tokens with no other layer work, for both schemes. The rest of a layer (attention, norms,
 * router) runs centrally in the in-process engine, not per device as the simulator models a cluster, so it is
 * left out of the comparison; its one-device time is reported. Usage: ./moe bench ep-calibrate [reps]
 */
final class EpCalibration {
    static final int STREAMS = 8, TOKENS = 64;

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        Path dir = Path.of(System.getProperty("moe.home", ".")).resolve("models/tiny-mixtral-kjv");
        try (MoeModel m = MoeModel.load(dir); Parallel two = new Parallel(2)) {
            int h = m.config().hiddenSize(), layers = m.config().moeLayers(), experts = m.config().experts();
            Topology topo = Topology.of(1, 2, experts / 2);
            PlacementPlan plan = Baselines.contiguous().place(PlacementProblem.uniform(layers, experts, m.config().topK(), topo, 4 * h));
            Dispatch dispatch = new Dispatch(plan, topo, experts);

            // 1. the constants, on one device, one thread
            double expertNs1 = expertNanos(m, 1), expertNs = expertNanos(m, 2), copyBw = copyBandwidth(h);
            double[] serialStep = new double[reps], serialMoe = new double[reps];
            for (int r = -2; r < reps; r++) {
                Engine e = new Engine(m, Parallel.SERIAL);
                double[] t = decode(e, e.executor());
                if (r < 0) continue;
                serialStep[r] = t[0];
                serialMoe[r] = t[1];
            }
            double restPerToken = (Bench.median(serialStep) - Bench.median(serialMoe)) / (STREAMS * layers);

            System.out.println("machine: " + Bench.machine());
            System.out.printf(Locale.ROOT, "constants: %.0f ns per token per expert alone, %.0f ns with both devices busy (shared memory "
                    + "bandwidth), in-process copies at %.1f GB/s; the rest of a layer %.0f ns per token (one thread)%n", expertNs1, expertNs,
                    copyBw / 1e9, restPerToken);
            System.out.println("| scheme | measured MoE time per decode step (median of " + reps + ") | simulated | error |");
            System.out.println("|---|---|---|---|");
            ClusterSimulator sim = new ClusterSimulator(new ClusterSimulator.Config(topo, new LinkModel(copyBw, 0), new LinkModel(copyBw, 0),
                    expertNs, 0, 4 * h));
            for (Scheme s : Scheme.values()) {
                double[] real = new double[reps];
                List<ClusterSimulator.Step> steps = new ArrayList<>();
                for (int r = -2; r < reps; r++) {
                    Engine e = new Engine(m, two);
                    Map<Integer, Map<Long, int[][]>> byPos = new TreeMap<>();
                    e.addListener((rt, ml) -> {
                        if (ml < rt.moeLayers() - 1) return;
                        for (int row = 0; row < rt.rows(); row++) {
                            byPos.computeIfAbsent(rt.position(row), k -> new TreeMap<>()).put(rt.sequence(row), rt.path(row));
                        }
                    });
                    double[] t = decode(e, new ExpertParallel(m.config(), new ResidentExpertStore(m), dispatch, s, two));
                    if (r < 0) continue;
                    real[r] = t[1];
                    if (r == 0) {
                        int prompt = requests().getFirst().prompt().length;
                        for (var en : byPos.entrySet()) {
                            if (en.getKey() < prompt) continue; // decode steps only: one token of each stream
                            long[] seq = en.getValue().keySet().stream().mapToLong(Long::longValue).toArray();
                            steps.add(new ClusterSimulator.Step(seq, en.getValue().values().toArray(int[][][]::new)));
                        }
                    }
                }
                ClusterSimulator.Result res = sim.run(dispatch, s, steps, layers, null);
                double simulated = res.totalNanos() / (double) res.steps(), measured = Bench.median(real);
                System.out.printf(Locale.ROOT, "| %s | %.0f us | %.0f us | %+.0f%% |%n", s.label(), measured / 1e3, simulated / 1e3,
                        100 * (simulated - measured) / measured);
            }
        }
    }

    static List<Generator.Request> requests() {
        List<Generator.Request> reqs = new ArrayList<>();
        for (int s = 0; s < STREAMS; s++) {
            reqs.add(new Generator.Request(DecodeThroughput.PROMPTS[s].chars().toArray(), TOKENS, SamplingParams.GREEDY, false));
        }
        return reqs;
    }

    /**
     * Generates the streams with {@code executor} timed: {decode step time, MoE time per decode step} in ns. The
     * first token comes after the prefill, so the MoE clock restarts there and counts decode steps only.
     */
    static double[] decode(Engine e, ExpertExecutor executor) {
        long[] moeNs = {0};
        e.setExecutor(timed(executor, moeNs));
        Generator g = new Generator(e);
        boolean[] prefilled = {false};
        g.generate(requests(), (i, t) -> {
            if (!prefilled[0]) {
                prefilled[0] = true;
                moeNs[0] = 0;
            }
        });
        double steps = g.lastTiming().decodeTokens() / (double) STREAMS;
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
     * One token through one expert while {@code devices} threads do the same at once (devices of one machine share
     * its memory bandwidth, which a cluster's devices do not): median over the experts of layer 0.
     */
    static double expertNanos(MoeModel m, int devices) {
        int h = m.config().hiddenSize(), n = 400, experts = m.config().experts();
        double[][] per = new double[devices][experts / devices];
        for (int rep = 0; rep < 2; rep++) {
            List<Thread> ts = new ArrayList<>();
            for (int d = 0; d < devices; d++) {
                int dev = d;
                ts.add(Thread.ofPlatform().start(() -> {
                    float[][] x = {new float[h]}, y = {new float[h]};
                    java.util.Arrays.fill(x[0], 0.01f);
                    for (int k = 0; k < experts / devices; k++) {
                        long t0 = System.nanoTime();
                        for (int i = 0; i < n; i++) org.moeserve.runtime.engine.ExpertFfn.SWIGLU.apply(m.expert(0, dev * (experts / devices) + k), x, 1, y, org.moeserve.runtime.kernel.Parallel.SERIAL);
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
