package org.moeserve.runtime.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.moeserve.routing.TraceReader;
import org.moeserve.routing.TraceRecord;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * {@code moe stats}: a trace's routing as moe-stats/1 (../shared/TRACE-FORMAT.md): load and top-1 load of every
 * layer, and the top-1 and rank-aligned transitions of every consecutive layer pair: what `moe plan --stats` and
 * `moe simulate --stats` read, in the form published statistics come in.
 */
@Command(name = "stats", mixinStandardHelpOptions = true, description = "Write a trace's routing statistics as moe-stats/1.")
final class StatsCommand implements Callable<Integer> {
    @Option(names = "--trace", required = true, paramLabel = "FILE", description = "moe-trace/1 or an SGLang per_token dump (.pt) (repeatable; one model).")
    List<Path> traces;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "The moe-stats/1 file to write.")
    Path out;

    @Option(names = "--domain", paramLabel = "NAME", description = "The domain to record (default: the traces' domains joined).")
    String domain;

    @Override
    public Integer call() throws IOException {
        TraceReader.Trace t = PredictorCommand.readAll(traces);
        int layers = t.header().layers(), experts = t.header().experts(), k = t.header().topK();
        long[][] load = new long[layers][experts], load1 = new long[layers][experts];
        long[][][] top1 = new long[layers - 1][experts][experts], aligned = new long[layers - 1][experts][experts];
        long tokens = 0;
        java.util.Set<String> domains = new java.util.TreeSet<>();
        for (TraceRecord r : t.records()) {
            domains.add(r.domain());
            for (int[][] tok : r.experts()) {
                tokens++;
                for (int l = 0; l < layers; l++) {
                    for (int e : tok[l]) if (e >= 0) load[l][e]++;
                    if (tok[l][0] >= 0) load1[l][tok[l][0]]++;
                    if (l + 1 == layers) continue;
                    if (tok[l][0] >= 0 && tok[l + 1][0] >= 0) top1[l][tok[l][0]][tok[l + 1][0]]++;
                    for (int j = 0; j < k; j++) if (tok[l][j] >= 0 && tok[l + 1][j] >= 0) aligned[l][tok[l][j]][tok[l + 1][j]]++;
                }
            }
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode n = json.createObjectNode().put("format", "moe-stats/1").put("model", t.header().model()).put("layers", layers)
                .put("experts", experts).put("top_k", k).put("domain", domain != null ? domain : String.join("+", domains))
                .put("tokens", tokens);
        ObjectNode l0 = n.putObject("load"), l1 = n.putObject("load_top1"), tt = n.putObject("transitions_top1"),
                ta = n.putObject("transitions_rank_aligned");
        for (int l = 0; l < layers; l++) {
            row(l0.putArray(String.valueOf(l)), load[l]);
            row(l1.putArray(String.valueOf(l)), load1[l]);
            if (l + 1 == layers) continue;
            ArrayNode a = tt.putArray(l + "->" + (l + 1)), b = ta.putArray(l + "->" + (l + 1));
            for (int i = 0; i < experts; i++) {
                row(a.addArray(), top1[l][i]);
                row(b.addArray(), aligned[l][i]);
            }
        }
        json.writeValue(out.toFile(), n);
        System.err.printf("moe stats: %d tokens of %s; wrote %s%n", tokens, traces, out);
        return 0;
    }

    private static void row(ArrayNode a, long[] v) { for (long x : v) a.add(x); }
}
