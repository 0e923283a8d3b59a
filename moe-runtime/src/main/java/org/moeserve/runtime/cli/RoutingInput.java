package org.moeserve.runtime.cli;

import org.moeserve.routing.RoutingStats;
import org.moeserve.routing.TraceReader;
import org.moeserve.routing.TraceRecord;
import org.moeserve.routing.stats.TraceStatistics;
import org.moeserve.routing.torch.SglangDump;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Routing read for planning and simulation, from a moe-trace/1 trace (every consecutive pair; the tokens
 * themselves) or moe-stats/1 statistics (the published top-1 pairs; loads, uniform where a layer is unpublished).
 */
record RoutingInput(String description, int layers, int experts, int topK, long[][] load, Map<String, long[][]> transitions,
                    List<TraceRecord> records, int decoderLayers, int[] moeLayerIds) {
    /** Which decoder layers the routing's layers are, when the input says (SGLang dumps do); null otherwise. */
    int[] decoderLayout() { return moeLayerIds; }

    /** Consecutive-layer transitions of each token's first (highest-weight) expert only: the pairs ExFlow reports. */
    Map<String, long[][]> top1() { return pairs(1); }

    /**
     * What context-coherent dispatch pays: a token stays on the device of its first expert at layer l and goes to each of
     * its top-k experts at l + 1, so each (first at l, any at l + 1) pair is a hop when the two are apart.
     */
    Map<String, long[][]> dispatchPairs() { return pairs(Integer.MAX_VALUE); }

    /** Each token's first expert at l paired with its first {@code next} experts at l + 1 (statistics: as published). */
    private Map<String, long[][]> pairs(int next) {
        if (records == null) return transitions; // statistics publish top-1 pairs only
        Map<String, long[][]> out = new java.util.TreeMap<>();
        for (int l = 0; l + 1 < layers; l++) out.put(l + "->" + (l + 1), new long[experts][experts]);
        for (TraceRecord r : records) {
            for (int[][] tok : r.experts()) {
                for (int l = 0; l + 1 < layers; l++) {
                    int a = tok[l][0];
                    if (a < 0) continue;
                    long[] row = out.get(l + "->" + (l + 1))[a];
                    for (int k = 0; k < Math.min(next, tok[l + 1].length); k++) if (tok[l + 1][k] >= 0) row[tok[l + 1][k]]++;
                }
            }
        }
        return out;
    }

    /** Only load counts: nothing to place by affinity, only balance. */
    boolean loadOnly() { return transitions.isEmpty(); }

    /** A moe-trace/1 (.jsonl), moe-stats/1 or SGLang dump file. */
    static RoutingInput read(Path file) throws IOException {
        SglangDump.Import dump = SglangDump.sniff(file);
        if (dump != null) return of(dump, file);
        return file.toString().endsWith(".jsonl") ? read(file, null) : read(null, file);
    }

    /** The number of tokens behind the statistics (traces only; -1 for published statistics). */
    long tokens() { return records == null ? -1 : records.stream().mapToLong(TraceRecord::length).sum(); }

    static RoutingInput read(Path trace, Path stats) throws IOException {
        if (trace != null) {
            return org.moeserve.routing.torch.TorchFile.looksLikeTorchZip(trace) ? of(SglangDump.trace(trace), trace)
                    : ofTrace(TraceReader.read(trace), trace, "", -1, null);
        }
        SglangDump.Import dump = org.moeserve.routing.torch.TorchFile.looksLikeTorchZip(stats) ? SglangDump.stats(stats)
                : SglangDump.sniff(stats); // SGLang's logical_count JSON, or null
        if (dump != null) return of(dump, stats);
        RoutingStats s = RoutingStats.read(stats);
        return ofStats(s, stats, " (" + s.model() + ", " + s.domain() + ")", -1, null);
    }

    /** An SGLang import, which also says which decoder layers its layers are. */
    private static RoutingInput of(SglangDump.Import dump, Path file) {
        String from = " (" + dump.describe() + ")";
        return dump.trace() != null ? ofTrace(dump.trace(), file, from, dump.decoderLayers(), dump.moeLayerIds())
                : ofStats(dump.stats(), file, from, dump.decoderLayers(), dump.moeLayerIds());
    }

    private static RoutingInput ofTrace(TraceReader.Trace t, Path file, String from, int decoderLayers, int[] moeIds) {
        TraceStatistics st = new TraceStatistics(t.header(), t.records());
        long[][][] c = st.transitions(1);
        Map<String, long[][]> tr = new HashMap<>();
        for (int l = 0; l + 1 < st.layers(); l++) tr.put(l + "->" + (l + 1), c[l]);
        return new RoutingInput("all " + (st.layers() - 1) + " consecutive layer pairs of " + file.getFileName() + from, st.layers(),
                st.experts(), st.topK(), st.loads(), tr, t.records(), decoderLayers, moeIds);
    }

    private static RoutingInput ofStats(RoutingStats s, Path file, String from, int decoderLayers, int[] moeIds) {
        long[][] load = new long[s.layers()][s.experts()];
        for (int l = 0; l < s.layers(); l++) {
            long[] row = s.load().get(l);
            if (row == null) java.util.Arrays.fill(load[l], 1); // unpublished layer: no load information
            else load[l] = row.clone();
        }
        Map<String, long[][]> tr = new HashMap<>(s.transitionsTop1());
        String what = tr.isEmpty() ? "the load counts (no transitions) of " : "the published top-1 pairs " + tr.keySet() + " of ";
        return new RoutingInput(what + file.getFileName() + from, s.layers(), s.experts(), s.topK(), load, tr, null, decoderLayers, moeIds);
    }
}
