package org.moeserve.runtime.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tokenizer;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A real server on loopback, driven over HTTP, SSE and WebSocket as clients drive it. */
class ServerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static MoeModel model;
    static Tokenizer tokenizer;
    static Parallel par;
    static JsonNode golden;
    static Server main;
    /** HTTP/1.1: one connection per concurrent request (an h2c upgrade would queue them behind the first). */
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    /** A server with its own scheduler and options. */
    record Server(Vertx vertx, Scheduler scheduler, ApiServer api, PrometheusMeterRegistry registry, int port) {
        static Server start(int maxBatch, int maxQueue, String apiKey, long maxBody) throws Exception {
            PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            Scheduler s = new Scheduler(new Engine(model, par), tokenizer, maxBatch, maxQueue, 16, reg);
            Vertx v = Vertx.vertx();
            ApiServer api = new ApiServer(v, s, tokenizer, model.name(), reg, new ApiServer.Options("127.0.0.1", 0, apiKey, maxBody));
            return new Server(v, s, api, reg, api.start());
        }

        String url(String path) { return "http://127.0.0.1:" + port + path; }

        void stop() {
            api.close();
            scheduler.close();
            vertx.close();
        }
    }

    @BeforeAll
    static void start() throws Exception {
        model = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"));
        tokenizer = Tokenizer.load(model.dir(), model.config());
        par = new Parallel(2);
        golden = JSON.readTree(TestModels.dir("tiny-mixtral-kjv").resolve("golden.json").toFile()).get("prompts");
        main = Server.start(4, 16, null, 4096);
    }

    @AfterAll
    static void stop() {
        main.stop();
        par.close();
        tokenizer.close();
        model.close();
    }

    static HttpResponse<String> post(Server s, String path, String body, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(s.url(path))).header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static String greedyBody(int prompt, boolean stream) {
        return "{\"prompt\":" + golden.get(prompt).get("text").toString() + ",\"max_tokens\":48,\"temperature\":0,\"stream\":" + stream + "}";
    }

    @Test
    void completionIsTheGreedyContinuationWithUsage() throws Exception {
        HttpResponse<String> r = post(main, "/v1/completions", greedyBody(0, false));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode b = JSON.readTree(r.body());
        assertEquals("text_completion", b.get("object").asText());
        assertEquals(golden.get(0).get("greedy_text").asText(), b.get("choices").get(0).get("text").asText());
        assertEquals("length", b.get("choices").get(0).get("finish_reason").asText());
        assertEquals(28, b.get("usage").get("prompt_tokens").asInt());
        assertEquals(48, b.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void concurrentRequestsBatchedTogetherEachGetTheirOwnContinuation() throws Exception {
        List<CompletableFuture<HttpResponse<String>>> rs = new ArrayList<>();
        for (int p = 0; p < 4; p++) {
            rs.add(http.sendAsync(HttpRequest.newBuilder(URI.create(main.url("/v1/completions")))
                    .header("content-type", "application/json").POST(HttpRequest.BodyPublishers.ofString(greedyBody(p, false)))
                    .build(), HttpResponse.BodyHandlers.ofString()));
        }
        for (int p = 0; p < 4; p++) {
            JsonNode b = JSON.readTree(rs.get(p).get(60, TimeUnit.SECONDS).body());
            assertEquals(golden.get(p).get("greedy_text").asText(), b.get("choices").get(0).get("text").asText(), "prompt " + p);
        }
    }

    @Test
    void streamingSendsTheSameTextAsServerSentEvents() throws Exception {
        HttpResponse<String> r = post(main, "/v1/completions", greedyBody(3, true));
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"));
        StringBuilder text = new StringBuilder();
        String finish = null;
        List<String> events = new ArrayList<>();
        for (String line : r.body().split("\n")) if (line.startsWith("data: ")) events.add(line.substring(6));
        assertEquals("[DONE]", events.getLast());
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode c = JSON.readTree(e).get("choices").get(0);
            text.append(c.get("text").asText());
            if (!c.get("finish_reason").isNull()) finish = c.get("finish_reason").asText();
        }
        assertEquals(golden.get(3).get("greedy_text").asText(), text.toString());
        assertEquals("length", finish);
    }

    @Test
    void chatCompletionsAndStopStrings() throws Exception {
        HttpResponse<String> r = post(main, "/v1/chat/completions",
                "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"In the beginning\"}],"
                        + "\"max_tokens\":20,\"temperature\":0}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode b = JSON.readTree(r.body());
        assertEquals("chat.completion", b.get("object").asText());
        assertEquals("assistant", b.get("choices").get(0).get("message").get("role").asText());
        assertTrue(b.get("usage").get("completion_tokens").asInt() > 0);
        // the greedy continuation of prompt 0 is " up the same things that were as a stranger of t": stop at "same"
        HttpResponse<String> s = post(main, "/v1/completions", "{\"prompt\":" + golden.get(0).get("text")
                + ",\"max_tokens\":48,\"temperature\":0,\"stop\":[\"same\"]}");
        JsonNode c = JSON.readTree(s.body()).get("choices").get(0);
        assertEquals(" up the ", c.get("text").asText());
        assertEquals("stop", c.get("finish_reason").asText());
    }

    @Test
    void webSocketStreamsTokensThenDone() throws Exception {
        StringBuilder text = new StringBuilder();
        CompletableFuture<JsonNode> done = new CompletableFuture<>();
        WebSocket ws = http.newWebSocketBuilder().buildAsync(URI.create("ws://127.0.0.1:" + main.port() + "/v1/stream"),
                new WebSocket.Listener() {
                    final StringBuilder part = new StringBuilder();

                    @Override
                    public CompletionStage<?> onText(WebSocket w, CharSequence data, boolean last) {
                        part.append(data);
                        if (last) {
                            try {
                                JsonNode m = JSON.readTree(part.toString());
                                if (m.has("text")) text.append(m.get("text").asText());
                                else done.complete(m);
                            } catch (Exception e) {
                                done.completeExceptionally(e);
                            }
                            part.setLength(0);
                        }
                        w.request(1);
                        return null;
                    }
                }).get(10, TimeUnit.SECONDS);
        ws.sendText(greedyBody(2, false), true);
        JsonNode end = done.get(60, TimeUnit.SECONDS);
        assertTrue(end.get("done").asBoolean(), end.toString());
        assertEquals(golden.get(2).get("greedy_text").asText(), text.toString());
        ws.sendClose(WebSocket.NORMAL_CLOSURE, "bye").get(5, TimeUnit.SECONDS);
    }

    @Test
    void modelsHealthAndMetrics() throws Exception {
        JsonNode models = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(main.url("/v1/models"))).build(),
                HttpResponse.BodyHandlers.ofString()).body());
        assertEquals("tiny-mixtral-kjv", models.get("data").get(0).get("id").asText());
        HttpResponse<String> h = http.send(HttpRequest.newBuilder(URI.create(main.url("/health"))).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, h.statusCode());
        post(main, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}");
        String metrics = http.send(HttpRequest.newBuilder(URI.create(main.url("/metrics"))).build(), HttpResponse.BodyHandlers.ofString()).body();
        for (String m : List.of("moe_requests_total", "moe_request_ttft_seconds", "moe_request_tpot_seconds", "moe_tokens_generated_total", "moe_queue_depth")) {
            assertTrue(metrics.contains(m), m + " missing from /metrics");
        }
    }

    static void assertError(HttpResponse<String> r, int status, String param, String text) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertNotNull(e, r.body());
        if (param != null) assertEquals(param, e.get("param").asText());
        assertTrue(e.get("message").asText().contains(text), e.get("message").asText());
        assertFalse(e.get("message").asText().contains("\n"), "one line: " + e.get("message").asText());
    }

    @Test
    void badRequestsFailAloneWithOpenAiShapedErrors() throws Exception {
        assertError(post(main, "/v1/completions", "{not json"), 400, null, "not valid JSON");
        assertError(post(main, "/v1/completions", "{\"prompt\":"), 400, null, "not valid JSON"); // cut off mid-object
        assertError(post(main, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":0}"), 400, "max_tokens", "must be in 1..");
        assertError(post(main, "/v1/completions", "{\"prompt\":\"x\",\"temperature\":\"hot\"}"), 400, "temperature", "number");
        assertError(post(main, "/v1/completions", "{\"prompt\":\"" + "a".repeat(300) + "\"}"), 400, "prompt", "context is 256");
        assertError(post(main, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\"}]}"), 400, "messages[0]", "content");
        assertError(post(main, "/v1/completions", "{\"prompt\":\"" + "a".repeat(5000) + "\"}"), 413, null, "over the limit");
        assertError(post(main, "/v1/nothing", "{}"), 404, null, "no route");
        // and the server still serves
        assertEquals(200, post(main, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}").statusCode());
    }

    @Test
    void apiKeyIsRequiredWhenSet() throws Exception {
        Server s = Server.start(2, 4, "sekret", 4096);
        try {
            assertError(post(s, "/v1/completions", "{\"prompt\":\"x\"}"), 401, null, "Authorization: Bearer");
            assertError(post(s, "/v1/completions", "{\"prompt\":\"x\"}", "Authorization", "Bearer wrong"), 401, null, "API key");
            assertEquals(200, post(s, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}", "Authorization", "Bearer sekret").statusCode());
            assertEquals(200, http.send(HttpRequest.newBuilder(URI.create(s.url("/health"))).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode(), "/health needs no key");
        } finally {
            s.stop();
        }
    }

    @Test
    void aFullQueueAnswers429AndTheServerStaysUp() throws Exception {
        Server s = Server.start(1, 1, null, 4096);
        try {
            // bursts of concurrent requests against a batch of 1 and a queue of 1, until one burst overlaps enough to
            // overflow the queue (on a loaded machine the first burst may trickle in as fast as it is served)
            int ok = 0, limited = 0, sent = 0;
            for (int burst = 0; burst < 5 && limited == 0; burst++) {
                List<CompletableFuture<HttpResponse<String>>> rs = new ArrayList<>();
                for (int i = 0; i < 12; i++) {
                    rs.add(http.sendAsync(HttpRequest.newBuilder(URI.create(s.url("/v1/completions"))).header("content-type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"A fool\",\"max_tokens\":240,\"temperature\":0}")).build(),
                            HttpResponse.BodyHandlers.ofString()));
                }
                sent += rs.size();
                for (CompletableFuture<HttpResponse<String>> f : rs) {
                    HttpResponse<String> r = f.get(120, TimeUnit.SECONDS);
                    if (r.statusCode() == 200) ok++;
                    if (r.statusCode() == 429) {
                        limited++;
                        assertEquals("1", r.headers().firstValue("Retry-After").orElse(null));
                        assertTrue(r.body().contains("rate_limit_exceeded"), r.body());
                    }
                }
            }
            assertTrue(ok >= 1 && limited >= 1, ok + " ok, " + limited + " refused");
            assertEquals(sent, ok + limited, "every request got an answer: 200 or 429");
            assertEquals(200, post(s, "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}").statusCode());
        } finally {
            s.stop();
        }
    }

    @Test
    void aClientThatDisconnectsCancelsItsGeneration() throws Exception {
        Server s = Server.start(2, 4, null, 4096);
        try {
            HttpResponse<InputStream> r = http.send(HttpRequest.newBuilder(URI.create(s.url("/v1/completions")))
                    .header("content-type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"In the\",\"max_tokens\":250,\"stream\":true}")).build(),
                    HttpResponse.BodyHandlers.ofInputStream());
            BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
            assertTrue(in.readLine().startsWith("data: "), "the stream started");
            in.close(); // the client goes away mid-generation
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            double cancelled = 0;
            while (System.nanoTime() < deadline && (cancelled = s.registry().counter("moe.requests.cancelled").count()) < 1) {
                Thread.sleep(50);
            }
            assertEquals(1.0, cancelled, "the generation was cancelled");
            assertEquals(0, s.scheduler().runningCount(), "its sequence (and KV cache) left the batch");
        } finally {
            s.stop();
        }
    }

    @Test
    void chatUsesTheModelsChatTemplateWhenItShipsOne(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        java.nio.file.Path src = TestModels.dir("tiny-mixtral-kjv");
        java.nio.file.Files.copy(src.resolve("tokenizer.json"), tmp.resolve("tokenizer.json"));
        com.fasterxml.jackson.databind.node.ObjectNode cfg = (com.fasterxml.jackson.databind.node.ObjectNode)
                JSON.readTree(src.resolve("tokenizer_config.json").toFile());
        cfg.put("chat_template", ChatTemplateTest.MIXTRAL);
        JSON.writeValue(tmp.resolve("tokenizer_config.json").toFile(), cfg);
        try (Tokenizer templated = Tokenizer.load(tmp, model.config())) {
            PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            Scheduler sch = new Scheduler(new Engine(model, par), templated, 2, 4, 16, reg);
            Vertx v = Vertx.vertx();
            ApiServer api = new ApiServer(v, sch, templated, model.name(), reg, new ApiServer.Options("127.0.0.1", 0, null, 4096));
            Server s = new Server(v, sch, api, reg, api.start());
            try {
                HttpResponse<String> r = post(s, "/v1/chat/completions",
                        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":4,\"temperature\":0}");
                assertEquals(200, r.statusCode(), r.body());
                // "<s>[INST] Hi [/INST]": <s> is one special token, the rest one token per byte
                assertEquals(1 + "[INST] Hi [/INST]".length(), JSON.readTree(r.body()).get("usage").get("prompt_tokens").asInt());
                assertError(post(s, "/v1/chat/completions", "{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}"),
                        400, "messages", "must alternate");
            } finally {
                s.stop();
            }
        }
    }
}
