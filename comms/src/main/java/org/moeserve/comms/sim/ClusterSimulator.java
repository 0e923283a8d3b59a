package org.moeserve.comms.sim;

import org.moeserve.cache.transfer.LinkModel;
import org.moeserve.comms.Dispatch;
import org.moeserve.comms.Scheme;
import org.moeserve.comms.Traffic;
import org.moeserve.placement.Topology;

import java.util.Arrays;
import java.util.function.LongConsumer;

/**
 * Replays routing on a modelled cluster. Every device and every device's two send ports (one for links inside its
 * node, one for the network) is a timeline; each piece of work is scheduled on its resource at the earliest time
 * its inputs are ready and the resource is free (a discrete-event simulation whose events are these starts and
 * ends). Per step (a batch of tokens, run to completion before the next) and per MoE layer:
 * <ol>
 *   <li>attention and the dense parts: {@code layerNanosPerToken} per token, on the device where the token is
 *   (its home, or under {@link Scheme#CONTEXT_COHERENT} where its last layer left it);</li>
 *   <li>dispatch all-to-all: the messages of {@link Dispatch#route}, aggregated per (from, to), each on the
 *   sender's port for its class at latency + bytes / bandwidth, in destination order;</li>
 *   <li>expert compute: {@code expertNanosPerToken} per (token, expert) on the device running the expert, once its
 *   inbox has arrived;</li>
 *   <li>combine all-to-all likewise; after the last layer, context-coherent tokens go home.</li>
 * </ol>
 * Byte counts follow {@link Dispatch#route} exactly, as the real engines' do; times are a model.
 */
public final class ClusterSimulator {
    /** The modelled cluster. Times per token are for one token's activation through one expert / one layer's rest. */
    public record Config(Topology topology, LinkModel intraNode, LinkModel interNode, double expertNanosPerToken,
                         double layerNanosPerToken, int hiddenBytes) {
        public Config {
            if (expertNanosPerToken < 0 || layerNanosPerToken < 0) throw new IllegalArgumentException("compute times must be >= 0");
            if (hiddenBytes < 1) throw new IllegalArgumentException("hidden bytes is " + hiddenBytes + " but must be >= 1");
        }
    }

    /** One batch: sequences[t] and experts[t][moeLayer][k] (highest weight first) of each token. */
    public record Step(long[] sequences, int[][][] experts) { }

    /**
     * What a run measured. Nanos are simulated time; a layer's all-to-all time is its exposed communication: the
     * layer's span (slowest device before to slowest after) less the busiest device's compute in it.
     */
    public record Result(Scheme scheme, Traffic traffic, long[] layerAllToAllNanos, long totalNanos, long steps, long tokens,
                         double[] utilisation) {
        public double meanUtilisation() { return Arrays.stream(utilisation).average().orElse(0); }

        public long allToAllNanos() { return Arrays.stream(layerAllToAllNanos).sum(); }
    }

    private final Config config;

    public ClusterSimulator(Config config) { this.config = config; }

    public Result run(Dispatch dispatch, Scheme scheme, Iterable<Step> steps, int moeLayers, LongConsumer progress) {
        Topology topo = config.topology();
        int D = topo.devices();
        Traffic traffic = new Traffic(topo, moeLayers);
        long[] layerA2a = new long[moeLayers];
        double[] busy = new double[D];
        double now = 0;
        long nSteps = 0, nTokens = 0;
        long[][] msg = new long[D][D];
        int[] perDevice = new int[D], jobs = new int[D];
        double[] work = new double[D];
        double[] ready = new double[D], attnEnd = new double[D], arrive = new double[D], computeEnd = new double[D];
        for (Step st : steps) {
            int n = st.sequences().length;
            int[] home = new int[n], at = new int[n];
            for (int t = 0; t < n; t++) home[t] = at[t] = dispatch.home(st.sequences()[t]);
            Arrays.fill(ready, now);
            for (int l = 0; l < moeLayers; l++) {
                final int layer = l;
                double layerStart = 0, busiest = 0;
                for (int d = 0; d < D; d++) layerStart = Math.max(layerStart, ready[d]);
                Arrays.fill(perDevice, 0);
                for (int t = 0; t < n; t++) perDevice[at[t]]++;
                for (int d = 0; d < D; d++) {
                    double dur = perDevice[d] * config.layerNanosPerToken();
                    attnEnd[d] = ready[d] + dur;
                    busy[d] += dur;
                    work[d] = dur;
                }
                for (long[] row : msg) Arrays.fill(row, 0);
                Arrays.fill(jobs, 0);
                long[][] comb = new long[D][D];
                for (int t = 0; t < n; t++) {
                    int[] ex = st.experts()[t][l];
                    for (int j = 0; j < ex.length; j++) jobs[dispatch.device(l, ex[j], at[t])]++;
                    at[t] = dispatch.route(scheme, l, ex, at[t], home[t], (kind, from, to) -> {
                        traffic.add(kind, layer, from, to, config.hiddenBytes());
                        if (kind == Dispatch.Kind.DISPATCH) msg[from][to] += config.hiddenBytes();
                        else comb[from][to] += config.hiddenBytes();
                    });
                }
                // dispatch phase
                exchange(msg, attnEnd, arrive);
                for (int d = 0; d < D; d++) {
                    double start = Math.max(attnEnd[d], arrive[d]);
                    double dur = jobs[d] * config.expertNanosPerToken();
                    computeEnd[d] = start + dur;
                    busy[d] += dur;
                    busiest = Math.max(busiest, work[d] + dur);
                }
                // combine phase
                exchange(comb, computeEnd, arrive);
                double layerEnd = 0;
                for (int d = 0; d < D; d++) {
                    ready[d] = Math.max(computeEnd[d], arrive[d]);
                    layerEnd = Math.max(layerEnd, ready[d]);
                }
                layerA2a[l] += (long) Math.max(0, layerEnd - layerStart - busiest);
            }
            if (scheme == Scheme.CONTEXT_COHERENT) {
                for (long[] row : msg) Arrays.fill(row, 0);
                for (int t = 0; t < n; t++) {
                    if (at[t] == home[t]) continue;
                    traffic.add(Dispatch.Kind.RETURN, -1, at[t], home[t], config.hiddenBytes());
                    msg[at[t]][home[t]] += config.hiddenBytes();
                }
                exchange(msg, ready, arrive);
                for (int d = 0; d < D; d++) ready[d] = Math.max(ready[d], arrive[d]);
            }
            for (int d = 0; d < D; d++) now = Math.max(now, ready[d]);
            nSteps++;
            nTokens += n;
            if (progress != null) progress.accept(nTokens);
        }
        double[] util = new double[D];
        for (int d = 0; d < D; d++) util[d] = now == 0 ? 0 : busy[d] / now;
        return new Result(scheme, traffic, layerA2a, (long) now, nSteps, nTokens, util);
    }

    /**
     * One all-to-all: message bytes[a][b] leaves a once a is ready (sendReady[a]) and its port for b's class is
     * free; arrive[b] becomes the latest arrival at b (or stays 0). Returns the phase's span (first send to last
     * arrival), 0 when nothing moves.
     */
    private double exchange(long[][] bytes, double[] sendReady, double[] arrive) {
        Topology topo = config.topology();
        int D = topo.devices();
        Arrays.fill(arrive, 0);
        double first = Double.MAX_VALUE, last = 0;
        for (int a = 0; a < D; a++) {
            double intraFree = sendReady[a], interFree = sendReady[a];
            for (int k = 1; k < D; k++) {
                int b = (a + k) % D; // each sender starts with its neighbour: the usual all-to-all rotation
                long n = bytes[a][b];
                if (n == 0) continue;
                boolean inter = topo.node(a) != topo.node(b);
                LinkModel link = inter ? config.interNode() : config.intraNode();
                double start = inter ? interFree : intraFree;
                double end = start + link.nanosFor(n);
                if (inter) interFree = end;
                else intraFree = end;
                arrive[b] = Math.max(arrive[b], end);
                first = Math.min(first, start);
                last = Math.max(last, end);
            }
        }
        return last == 0 ? 0 : last - first;
    }
}
