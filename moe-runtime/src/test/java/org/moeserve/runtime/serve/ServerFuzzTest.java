package org.moeserve.runtime.serve;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.Test;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tokenizer;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A bounded fuzz run against a real server on loopback (seeded, so a failure replays): mutated JSON bodies, headers
 * and raw bytes over HTTP, and mutated frames over the WebSocket. Nothing may answer 5xx, nothing may be written to
 * disk, the heap stays bounded, and afterwards a valid request is answered.
 */
class ServerFuzzTest {
    static final String[] BODIES = {
            "{\"prompt\":\"In the beginning\",\"max_tokens\":8,\"temperature\":0}",
            "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":4,\"stream\":true,\"n\":2,\"logprobs\":true,\"top_logprobs\":2}",
            "{\"prompt\":[\"x\"],\"max_tokens\":3,\"stop\":[\"a\",\"b\"],\"top_p\":0.5,\"seed\":3,\"logprobs\":1}"};
    static final String[] VALUES = {"null", "true", "-1", "0", "1e400", "-1e400", "4294967299", "\"\"", "\"\\u0000\"", "[]", "{}",
            "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]", "\"" + "x".repeat(3000) + "\"", "0.5", "NaN", "\"\\ud800\"", "1.0e-400"};
    static final String[] TYPES = {"application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x", "", "application/json;;;", "APPLICATION/JSON"};

    static String mutate(String s, SplittableRandom r) {
        StringBuilder b = new StringBuilder(s);
        int edits = 1 + r.nextInt(4);
        for (int e = 0; e < edits && b.length() > 0; e++) {
            int at = r.nextInt(b.length());
            switch (r.nextInt(6)) {
                case 0 -> b.deleteCharAt(at);
                case 1 -> b.insert(at, (char) r.nextInt(0x20, 0x7f));
                case 2 -> b.insert(at, VALUES[r.nextInt(VALUES.length)]);
                case 3 -> { // replace the value after a colon
                    int colon = b.indexOf(":", at);
                    if (colon < 0) break;
                    int end = colon + 1;
                    while (end < b.length() && ",}]".indexOf(b.charAt(end)) < 0) end++;
                    b.replace(colon + 1, end, VALUES[r.nextInt(VALUES.length)]);
                }
                case 4 -> b.insert(at, "\"" + List.of("n", "echo", "best_of", "model", "stream", "max_tokens", "role", "id").get(r.nextInt(8)) + "\":");
                default -> b.setCharAt(at, (char) r.nextInt(0x7f));
            }
        }
        return b.toString();
    }

    @Test
    void mutatedRequestsHeadersAndFramesNeverBreakTheServer() throws Exception {
        try (MoeModel model = MoeModel.load(TestModels.dir("tiny-mixtral-kjv")); Tokenizer tok = Tokenizer.load(model.dir(), model.config());
             Parallel par = new Parallel(2)) {
            PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            Scheduler s = new Scheduler(new Engine(model, par), tok, 4, 64, 16, reg);
            Vertx v = Vertx.vertx();
            ApiServer api = new ApiServer(v, s, tok, model.name(), reg, new ApiServer.Options("127.0.0.1", 0, null, 16 * 1024,
                    List.of(), List.of(), false, Duration.ofSeconds(2), 4));
            int port = api.start();
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
            long seed = Long.parseLong(System.getenv().getOrDefault("MOE_FUZZ_SEED", "20261130")); // MOE_FUZZ_SEED=N: another run
            SplittableRandom r = new SplittableRandom(seed);
            Runtime rt = Runtime.getRuntime();
            System.gc();
            long heapBefore = rt.totalMemory() - rt.freeMemory();
            long end = System.nanoTime() + Duration.ofSeconds(12).toNanos();
            int requests = 0, frames = 0, raw = 0;
            try {
                while (System.nanoTime() < end) {
                    switch (r.nextInt(3)) {
                        case 0 -> { // a mutated JSON body with a random content type
                            String body = mutate(BODIES[r.nextInt(BODIES.length)], r);
                            String path = r.nextBoolean() ? "/v1/completions" : "/v1/chat/completions";
                            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                                    .timeout(Duration.ofSeconds(30)).POST(HttpRequest.BodyPublishers.ofString(body));
                            String type = TYPES[r.nextInt(TYPES.length)];
                            if (!type.isEmpty()) b.header("Content-Type", type);
                            HttpResponse<String> resp = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
                            assertTrue(resp.statusCode() < 500, "5xx for " + body + " (" + type + "): " + resp.body());
                            requests++;
                        }
                        case 1 -> { // raw bytes: a mutated request head, maybe a body
                            try (RawClient c = new RawClient(port, 6000)) {
                                String head = mutate("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                        + "Content-Length: 20\r\n\r\n{\"prompt\":\"x\"}      ", r);
                                c.send(head);
                                c.socket.shutdownOutput(); // all it will ever send: the server sees the end at once
                                String got;
                                try {
                                    got = c.readHead();
                                } catch (java.net.SocketTimeoutException e) {
                                    throw new AssertionError("the server neither answered nor closed within 6 s (request timeout 2 s): "
                                            + head.replace("\r", "\\r").replace("\n", "\\n"));
                                }
                                // Vert.x itself answers a request line whose HTTP version it does not know with 501 (RFC
                                // 9110 15.6.2), before any handler runs; every other 5xx would be ours
                                boolean badVersion = !head.startsWith("POST /v1/completions HTTP/1.1\r\n")
                                        && !head.split("\r\n", 2)[0].matches("[A-Z]+ \\S+ HTTP/1\\.[01]");
                                assertFalse(got.matches("(?s)HTTP/1\\.1 5\\d\\d.*") && !(badVersion && got.startsWith("HTTP/1.1 501")),
                                        "5xx for raw " + head + ": " + got);
                                raw++;
                            }
                        }
                        default -> { // a WebSocket with mutated text and random frames (the server may close it: fine)
                            try (RawClient c = new RawClient(port, 1000)) {
                                if (!c.upgrade("/v1/stream").startsWith("HTTP/1.1 101")) break;
                                int texts = 0;
                                for (int i = 0; i < 3 && !c.socket.isClosed(); i++) {
                                    if (r.nextInt(4) == 0) {
                                        byte[] junk = new byte[r.nextInt(200)];
                                        r.nextBytes(junk);
                                        c.frame(r.nextBoolean(), r.nextInt(8) == 0 ? 1 : 0, new int[]{0, 1, 2, 9, 10, 3}[r.nextInt(6)], junk);
                                    } else {
                                        c.text(mutate(BODIES[r.nextInt(BODIES.length)], r));
                                        texts++;
                                    }
                                    frames++;
                                }
                                try {
                                    int answered = 0; // each text message ends in one "done" or one "error" frame
                                    for (RawClient.Frame f; answered < texts && (f = c.read()) != null; ) {
                                        if (f.opcode() == 8) break;
                                        String text = f.text();
                                        assertFalse(text.contains("\"status\":5"), "a 5xx error frame: " + text);
                                        if (text.contains("\"done\"") || text.contains("\"error\"")) answered++;
                                    }
                                } catch (java.io.IOException e) {
                                    // the server closed or went quiet: fine
                                }
                            } catch (java.io.IOException e) {
                                frames++; // it closed on us mid-send: a refused frame
                            }
                        }
                    }
                }
                assertFalse(Files.exists(Path.of("file-uploads")), "nothing written to disk");
                HttpResponse<String> ok = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                                "{\"prompt\":\"In the beginning\",\"max_tokens\":4,\"temperature\":0}")).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertEquals(200, ok.statusCode(), "a valid request is still answered: " + ok.body());
                System.gc();
                long grown = rt.totalMemory() - rt.freeMemory() - heapBefore;
                assertTrue(grown < 64L << 20, "live heap grew " + (grown >> 20) + " MB");
                System.out.printf("fuzz (seed %d): %d requests, %d raw heads, %d frames; heap %+d MB%n", seed, requests, raw, frames, grown >> 20);
                assertTrue(requests + raw + frames > 100, "the run exercised the server");
            } finally {
                api.close();
                s.close();
                v.close();
            }
        }
    }

    static String utf8(byte[] b) { return new String(b, StandardCharsets.UTF_8); }
}
