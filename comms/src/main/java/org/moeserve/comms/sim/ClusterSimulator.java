package org.moeserve.comms.sim;

import org.moeserve.units.LinkModel;
import org.moeserve.comms.Dispatch;
import org.moeserve.comms.Scheme;
import org.moeserve.comms.Traffic;
import org.moeserve.placement.Topology;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
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
 *   <li>expert compute: {@code expertNanosPerToken} per (token, expert) on the device running the expert, plus
 *   {@code expertCallNanos} per distinct expert it runs and {@code layerFixedNanos} once (an engine's fixed costs;
 *   0 unless calibrated, see {@link Config#withFixedCosts}), once its inbox has arrived; with an expert cache ({@code cachedExperts} > 0 per device, LRU), each expert not in it is
 *   first loaded over {@code hostLink} ({@code expertBytes});</li>
 *   <li>combine all-to-all likewise; after the last layer, context-coherent tokens go home.</li>
 * </ol>
 * Byte counts follow {@link Dispatch#route} exactly, as the real engines' do; times are a model.
 */
public final class ClusterSimulator {
    /** The modelled cluster. Times per token are for one token's activation through one expert / one layer's rest. */
    public record Config(Topology topology, LinkModel intraNode, LinkModel interNode, double expertNanosPerToken,
                         double layerNanosPerToken, int hiddenBytes, int cachedExperts, LinkModel hostLink, long expertBytes,
                         double layerFixedNanos, double expertCallNanos) {
        public Config {
            if (expertNanosPerToken < 0 || layerNanosPerToken < 0 || layerFixedNanos < 0 || expertCallNanos < 0) {
                throw new IllegalArgumentException("compute times must be >= 0");
            }
            if (hiddenBytes < 1) throw new IllegalArgumentException("hidden bytes is " + hiddenBytes + " but must be >= 1");
            if (cachedExperts < 0) throw new IllegalArgumentException("cached experts per device is " + cachedExperts + " but must be >= 0 (0: all resident)");
            if (cachedExperts > 0 && (hostLink == null || expertBytes < 1)) {
                throw new IllegalArgumentException("an expert cache needs the host link and the bytes of one expert");
            }
        }

        /** No fixed costs: every piece of work is per token. */
        public Config(Topology topology, LinkModel intraNode, LinkModel interNode, double expertNanosPerToken, double layerNanosPerToken,
                      int hiddenBytes, int cachedExperts, LinkModel hostLink, long expertBytes) {
            this(topology, intraNode, interNode, expertNanosPerToken, layerNanosPerToken, hiddenBytes, cachedExperts, hostLink, expertBytes, 0, 0);
        }

        /**
         * The same cluster with fixed costs: {@code layerFixedNanos} on each device that has expert work in a layer (an
         * engine's grouping of rows, buffers, handing the device its task and joining it), {@code expertCallNanos} per
         * distinct expert a device runs in a layer (one call over all its rows, whatever their number).
         */
        public Config withFixedCosts(double layerFixedNanos, double expertCallNanos) {
            return new Config(topology, intraNode, interNode, expertNanosPerToken, layerNanosPerToken, hiddenBytes, cachedExperts, hostLink,
                    expertBytes, layerFixedNanos, expertCallNanos);
        }

        /** Every device holds all its experts in fast memory. */
        public Config(Topology topology, LinkModel intraNode, LinkModel interNode, double expertNanosPerToken, double layerNanosPerToken,
                      int hiddenBytes) {
            this(topology, intraNode, interNode, expertNanosPerToken, layerNanosPerToken, hiddenBytes, 0, null, 0);
        }
    }

    /** One batch: sequences[t] and experts[t][moeLayer][k] (highest weight first) of each token. */
    public record Step(long[] sequences, int[][][] experts) { }

    /**
     * What a run measured. Nanos are simulated time; a layer's all-to-all time is its exposed communication: the
     * layer's span (slowest device before to slowest after) less the busiest device's compute in it.
     */
    public record Result(Scheme scheme, Traffic traffic, long[] layerAllToAllNanos, long totalNanos, long steps, long tokens,
                         double[] utilisation, long cacheHits, long cacheMisses) {
        public double hitRate() { return cacheHits + cacheMisses == 0 ? 1 : (double) cacheHits / (cacheHits + cacheMisses); }

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
        long[] hits = new long[1], misses = new long[1];
        double[] loadNanos = new double[D];
        List<java.util.LinkedHashMap<Long, Boolean>> caches = new ArrayList<>();
        for (int d = 0; d < D && config.cachedExperts() > 0; d++) caches.add(new java.util.LinkedHashMap<>(16, 0.75f, true));
        long[][] msg = new long[D][D];
        int[] perDevice = new int[D], jobs = new int[D];
        double[] work = new double[D];
        int[] ran = new int[0];
        boolean countCalls = config.expertCallNanos() > 0; // distinct experts per device: only when a call costs something
        java.util.BitSet[] calls = new java.util.BitSet[D];
        for (int d = 0; d < D; d++) calls[d] = new java.util.BitSet();
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
                Arrays.fill(loadNanos, 0);
                if (countCalls) for (java.util.BitSet b : calls) b.clear();
                long[][] comb = new long[D][D];
                for (int t = 0; t < n; t++) {
                    int[] ex = known(st.experts()[t][l]); // -1 cells (unknown experts, as traces allow) do no work
                    if (ran.length != ex.length) ran = new int[ex.length];
                    at[t] = dispatch.route(scheme, l, ex, at[t], home[t], ran, (kind, from, to) -> {
                        traffic.add(kind, layer, from, to, config.hiddenBytes());
                        if (kind == Dispatch.Kind.DISPATCH) msg[from][to] += config.hiddenBytes();
                        else comb[from][to] += config.hiddenBytes();
                    });
                    for (int j = 0; j < ex.length; j++) {
                        jobs[ran[j]]++;
                        if (countCalls) calls[ran[j]].set(ex[j]);
                        if (!caches.isEmpty()) loadNanos[ran[j]] += cache(caches.get(ran[j]), (long) l << 32 | ex[j], hits, misses);
                    }
                }
                // dispatch phase
                exchange(msg, attnEnd, arrive);
                for (int d = 0; d < D; d++) {
                    double start = Math.max(attnEnd[d], arrive[d]);
                    double dur = jobs[d] * config.expertNanosPerToken() + loadNanos[d]; // misses load before compute
                    if (jobs[d] > 0) dur += config.layerFixedNanos() + calls[d].cardinality() * config.expertCallNanos();
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
        return new Result(scheme, traffic, layerA2a, (long) now, nSteps, nTokens, util, hits[0], misses[0]);
    }

    /** The known experts of a cell (-1: unknown, left out). */
    static int[] known(int[] ex) {
        int n = 0;
        for (int e : ex) if (e >= 0) n++;
        if (n == ex.length) return ex;
        int[] out = new int[n];
        n = 0;
        for (int e : ex) if (e >= 0) out[n++] = e;
        return out;
    }

    /** A device's expert cache (LRU over experts it runs): 0 on a hit, the host link's time for one expert on a miss. */
    private double cache(java.util.LinkedHashMap<Long, Boolean> lru, long key, long[] hits, long[] misses) {
        if (lru.get(key) != null) {
            hits[0]++;
            return 0;
        }
        misses[0]++;
        lru.put(key, Boolean.TRUE);
        if (lru.size() > config.cachedExperts()) lru.remove(lru.keySet().iterator().next());
        return config.hostLink().nanosFor(config.expertBytes());
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
