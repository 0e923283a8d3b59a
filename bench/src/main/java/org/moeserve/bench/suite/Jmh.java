package org.moeserve.bench.suite;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code ./moe bench jmh-table FILE}: JMH's JSON result file (-rf json) of MatVecBenchmark printed as one Markdown
 * table, scalar and vector ms per dtype and threads, like every other harness prints its results.
 */
public final class Jmh {
    private Jmh() {}

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: ./moe bench jmh-table FILE   (FILE: what ./moe bench jmh MatVecBenchmark -rf json -rff FILE wrote)");
            System.exit(2);
        }
        System.out.print(table(Path.of(args[0])));
    }

    static String table(Path file) throws IOException {
        JsonNode root = new ObjectMapper().readTree(file.toFile());
        Map<String, double[]> byParams = new LinkedHashMap<>(); // "dtype|threads" -> {scalar, vector, scalar err, vector err}
        for (JsonNode b : root) {
            String method = b.path("benchmark").asText().replaceAll(".*\\.", "");
            String key = b.path("params").path("dtype").asText() + "|" + b.path("params").path("threads").asText();
            double[] v = byParams.computeIfAbsent(key, k -> new double[]{Double.NaN, Double.NaN, Double.NaN, Double.NaN});
            int i = method.equals("scalar") ? 0 : 1;
            v[i] = b.path("primaryMetric").path("score").asDouble();
            v[i + 2] = b.path("primaryMetric").path("scoreError").asDouble();
        }
        List<List<String>> rows = new ArrayList<>();
        byParams.forEach((k, v) -> {
            String[] p = k.split("\\|");
            rows.add(List.of(p[0], p[1], fmt(v[0], v[2]), fmt(v[1], v[3]),
                    String.format(Locale.ROOT, "%.1fx", v[0] / v[1])));
        });
        return "JMH average time per 4096x4096 product, ms (± JMH's 99.9% error)\n"
                + new Table("", "", List.of("dtype", "threads", "scalar ms", "vector ms", "speed-up"), rows, null).markdown(null, null);
    }

    private static String fmt(double score, double err) {
        if (Double.isNaN(score)) return "-";
        return Double.isNaN(err) ? String.format(Locale.ROOT, "%.2f", score) : String.format(Locale.ROOT, "%.2f ± %.2f", score, err);
    }
}
