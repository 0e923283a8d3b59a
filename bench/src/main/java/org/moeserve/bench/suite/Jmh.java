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

/** JMH's JSON result file (-rf json) of MatVecBenchmark as one table: scalar and vector ms per dtype and threads. */
final class Jmh {
    private Jmh() {}

    static Suite.Run table(Path file) throws IOException {
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
        Table t = new Table("", "JMH average time per 4096x4096 product, ms (± JMH's 99.9% error)",
                List.of("dtype", "threads", "scalar ms", "vector ms", "speed-up"), rows, null);
        return new Suite.Run("(read from " + file.getFileName() + ", JMH's -rf json)", 0, 0, List.of(t), List.of(), "");
    }

    private static String fmt(double score, double err) {
        if (Double.isNaN(score)) return "-";
        return Double.isNaN(err) ? String.format(Locale.ROOT, "%.2f", score) : String.format(Locale.ROOT, "%.2f ± %.2f", score, err);
    }
}
