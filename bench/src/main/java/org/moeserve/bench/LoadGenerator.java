package org.moeserve.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A load test of a running {@code moe serve} from this separate process, on loopback only: for each client count,
 * that many clients each send {@code requests} streaming completions one after another (bounded count, bounded
 * time). Reports aggregate tokens/s and p50/p99 of time to first token and time per output token, measured at the
 * client from the SSE stream.
 * Usage: ./moe bench load [URL] [clients,clients,...] [requests per client] [max_tokens] [warm-up requests]
 */
final class LoadGenerator {
    static final String[] PROMPTS = {"In the beginning God created", "hacker n. [originally", "A fool and his money",
            "def main():\n    import sys", "And it came to pass", "kludge /kluhj/ n.", "Q: How many programmers",
            "The LORD is my shepherd"};

    public static void main(String[] args) throws Exception {
        String url = args.length > 0 ? args[0] : "http://127.0.0.1:8000";
        URI uri = URI.create(url);
        if (uri.getHost() == null) {
            throw new IllegalArgumentException("usage: ./moe bench load [URL] [CLIENTS,..] [REQUESTS] [MAX_TOKENS] [WARMUP]; '"
                    + url + "' is not a server URL such as http://127.0.0.1:8000");
        }
        if (!List.of("127.0.0.1", "localhost", "[::1]").contains(uri.getHost())) {
            throw new IllegalArgumentException("load tests run on loopback only; " + uri.getHost() + " is not a loopback host");
        }
        String[] counts = (args.length > 1 ? args[1] : "1,8,32").split(",");
        int requests = args.length > 2 ? Integer.parseInt(args[2]) : 3, maxTokens = args.length > 3 ? Integer.parseInt(args[3]) : 64;
        int warmup = args.length > 4 ? Integer.parseInt(args[4]) : 8;
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
        // warm-up, not recorded: a fresh server's first requests run interpreted code
        for (int i = 0; i < warmup; i++) {
            stream(http, url, PROMPTS[i % PROMPTS.length], maxTokens, new ArrayList<>(), new ArrayList<>(), new AtomicLong());
        }
        System.out.println("| clients | requests | tokens | wall s | aggregate tokens/s | TTFT p50 | TTFT p99 | TPOT p50 | TPOT p99 | errors |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|");
        for (String c : counts) {
            int clients = Integer.parseInt(c.trim());
            List<Double> ttft = Collections.synchronizedList(new ArrayList<>()), tpot = Collections.synchronizedList(new ArrayList<>());
            AtomicLong tokens = new AtomicLong(), errors = new AtomicLong();
            long t0 = System.nanoTime();
            try (ExecutorService pool = Executors.newFixedThreadPool(clients)) {
                List<Future<?>> fs = new ArrayList<>();
                for (int i = 0; i < clients; i++) {
                    int id = i;
                    fs.add(pool.submit(() -> {
                        for (int r = 0; r < requests; r++) {
                            try {
                                stream(http, url, PROMPTS[(id + r) % PROMPTS.length], maxTokens, ttft, tpot, tokens);
                            } catch (Exception e) {
                                errors.incrementAndGet();
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : fs) f.get();
            }
            double wall = (System.nanoTime() - t0) / 1e9;
            System.out.printf(Locale.ROOT, "| %d | %d | %d | %.1f | %.0f | %.1f ms | %.1f ms | %.2f ms | %.2f ms | %d |%n", clients,
                    clients * requests, tokens.get(), wall, tokens.get() / wall, pct(ttft, 50), pct(ttft, 99), pct(tpot, 50),
                    pct(tpot, 99), errors.get());
        }
    }

    /** One streaming completion; records TTFT and the gaps between text chunks (ms). */
    static void stream(HttpClient http, String url, String prompt, int maxTokens, List<Double> ttft, List<Double> tpot,
                       AtomicLong tokens) throws Exception {
        ObjectMapper json = new ObjectMapper();
        String body = json.createObjectNode().put("prompt", prompt).put("max_tokens", maxTokens).put("temperature", 0.8)
                .put("seed", 1).put("stream", true).toString();
        long start = System.nanoTime(), last = 0;
        HttpResponse<InputStream> r = http.send(HttpRequest.newBuilder(URI.create(url + "/v1/completions"))
                .timeout(Duration.ofSeconds(120)).header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofInputStream());
        if (r.statusCode() != 200) throw new IllegalStateException("HTTP " + r.statusCode());
        try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
                JsonNode c = json.readTree(line.substring(6)).get("choices").get(0);
                if (c.get("text").asText().isEmpty()) {
                    JsonNode u = json.readTree(line.substring(6)).get("usage");
                    if (u != null) tokens.addAndGet(u.get("completion_tokens").asLong());
                    continue;
                }
                long now = System.nanoTime();
                if (last == 0) ttft.add((now - start) / 1e6);
                else tpot.add((now - last) / 1e6);
                last = now;
            }
        }
    }

    static double pct(List<Double> xs, int p) {
        if (xs.isEmpty()) return Double.NaN;
        List<Double> s = new ArrayList<>(xs);
        Collections.sort(s);
        return s.get(Math.min(s.size() - 1, (int) Math.ceil(p / 100.0 * s.size()) - 1));
    }
}
