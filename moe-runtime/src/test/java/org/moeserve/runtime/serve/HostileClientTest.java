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

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The server attacked as a hostile client or web page would, on loopback: each hole found once, closed for good. */
class HostileClientTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    static MoeModel model;
    static Tokenizer tokenizer;
    static Parallel par;
    static Vertx vertx;
    static Scheduler scheduler;
    static PrometheusMeterRegistry registry;
    static ApiServer api;
    static int port;

    @BeforeAll
    static void start() throws Exception {
        model = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"));
        tokenizer = Tokenizer.load(model.dir(), model.config());
        par = new Parallel(2);
        registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        scheduler = new Scheduler(new Engine(model, par), tokenizer, 4, 16, 16, registry);
        vertx = Vertx.vertx();
        api = new ApiServer(vertx, scheduler, tokenizer, model.name(), registry, new ApiServer.Options("127.0.0.1", 0, "sekret",
                64 * 1024, List.of("https://friend.example"), List.of(), true, Duration.ofSeconds(1), 2));
        port = api.start();
    }

    @AfterAll
    static void stop() {
        api.close();
        scheduler.close();
        vertx.close();
        par.close();
        tokenizer.close();
        model.close();
    }

    static String url(String path) { return "http://127.0.0.1:" + port + path; }

    static HttpResponse<String> post(String path, String body, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url(path))).timeout(Duration.ofSeconds(60))
                .POST(HttpRequest.BodyPublishers.ofString(body));
        boolean typed = false;
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
            typed |= headers[i].equalsIgnoreCase("content-type");
        }
        if (!typed) b.header("content-type", "application/json");
        return http.send(b.header("Authorization", "Bearer sekret").build(), HttpResponse.BodyHandlers.ofString());
    }

    static void assertError(HttpResponse<String> r, int status, String param, String text) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertNotNull(e, r.body());
        if (param != null) assertEquals(param, e.get("param").asText(), r.body());
        assertTrue(e.get("message").asText().contains(text), e.get("message").asText());
    }

    @Test
    void noRequestWritesToDiskEvenMultipartWithoutAKey() throws Exception {
        Path uploads = Path.of("file-uploads");
        String boundary = "xyz";
        String body = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.bin\"\r\n"
                + "Content-Type: application/octet-stream\r\n\r\n" + "A".repeat(20_000) + "\r\n--" + boundary + "--\r\n";
        for (String path : List.of("/anything", "/v1/completions", "/health")) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url(path)))
                    .header("content-type", "multipart/form-data; boundary=" + boundary)
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
            assertTrue(r.statusCode() >= 400 && r.statusCode() < 500, path + ": " + r.statusCode());
            r = post(path, body, "content-type", "multipart/form-data; boundary=" + boundary);
            assertTrue(r.statusCode() >= 400 && r.statusCode() < 500, path + " with the key: " + r.statusCode());
        }
        assertFalse(Files.exists(uploads), "no upload directory was made");
    }

    @Test
    void webPagesOnOtherOriginsAndRebindingHostsAreRefused() throws Exception {
        String ok = "{\"prompt\":\"x\",\"max_tokens\":2}";
        assertError(post("/v1/completions", ok, "Origin", "https://evil.example"), 403, null, "--allow-origin https://evil.example");
        HttpResponse<String> friend = post("/v1/completions", ok, "Origin", "https://friend.example");
        assertEquals(200, friend.statusCode(), friend.body());
        assertEquals("https://friend.example", friend.headers().firstValue("Access-Control-Allow-Origin").orElse(null));
        // a "simple" cross-site form post: text/plain, no preflight
        assertError(post("/v1/completions", ok, "content-type", "text/plain"), 415, null, "application/json");
        try (RawClient c = new RawClient(port, 5000)) { // DNS rebinding: a page on attacker.example resolved to 127.0.0.1
            c.send("GET /v1/models HTTP/1.1\r\nHost: attacker.example:" + port + "\r\nAuthorization: Bearer sekret\r\n\r\n");
            String head = c.readHead();
            assertTrue(head.startsWith("HTTP/1.1 403"), head);
        }
        try (RawClient c = new RawClient(port, 5000)) {
            String head = c.upgrade("/v1/stream", "Authorization", "Bearer sekret", "Origin", "https://evil.example");
            assertTrue(head.startsWith("HTTP/1.1 403"), "a cross-origin WebSocket is refused: " + head);
        }
        try (RawClient c = new RawClient(port, 5000)) {
            String head = c.upgrade("/v1/stream", "Authorization", "Bearer sekret", "Origin", "https://friend.example");
            assertTrue(head.startsWith("HTTP/1.1 101"), head);
        }
    }

    @Test
    void theKeyGuardsEverythingWhenAskedAndMethodsAreNamed() throws Exception {
        for (String path : List.of("/health", "/metrics", "/v1/models")) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url(path))).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(401, r.statusCode(), path);
            r = http.send(HttpRequest.newBuilder(URI.create(url(path))).header("Authorization", "Bearer sekreT").build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(401, r.statusCode(), path + ": a key differing in one character");
            r = http.send(HttpRequest.newBuilder(URI.create(url(path))).header("Authorization", "Bearer sekret").build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), path);
        }
        HttpResponse<String> get = http.send(HttpRequest.newBuilder(URI.create(url("/v1/completions"))).header("Authorization",
                "Bearer sekret").build(), HttpResponse.BodyHandlers.ofString());
        assertError(get, 405, null, "use POST");
        assertEquals("POST", get.headers().firstValue("Allow").orElse(null));
        assertError(post("/v1/models", "{}"), 405, null, "use GET");
    }

    @Test
    void slowHeadsAndSlowBodiesAreCutOff() throws Exception {
        try (RawClient head = new RawClient(port, 200); RawClient body = new RawClient(port, 200)) {
            head.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"); // never finishes its head
            body.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sekret\r\n"
                    + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\"");
            assertTrue(head.closedWithin(5000), "a slow head is closed within the request timeout");
            assertTrue(body.closedWithin(5000), "a slow body is closed within the request timeout");
        }
        assertEquals(200, post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}").statusCode(), "and the server serves on");
    }

    @Test
    void requestFieldsAreCheckedAsWritten() throws Exception {
        assertError(post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":4294967299}"), 400, "max_tokens", "4294967299");
        assertError(post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":4294967295}"), 400, "max_tokens", "4294967295");
        assertError(post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1e40}"), 400, "max_tokens", "must be in 1..");
        assertError(post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2.5}"), 400, "max_tokens", "integer");
        assertError(post("/v1/completions", "{\"prompt\":\"x\",\"stop\":\"\"}"), 400, "stop", "empty");
        assertError(post("/v1/completions", "{\"prompt\":\"x\",\"best_of\":3}"), 400, "best_of", "not supported");
        assertError(post("/v1/completions", "{\"prompt\":\"x\",\"echo\":true}"), 400, "echo", "not supported");
        assertError(post("/v1/completions", "{\"prompt\":\"x\",\"n\":100}"), 400, "n", "1..8");
        assertError(post("/v1/completions", "{\"prompt\":\"x\",\"model\":\"gpt-4\"}"), 404, "model", "tiny-mixtral-kjv");
        assertError(post("/v1/chat/completions", "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}"), 400,
                "messages[0].role", "wizard");
        assertError(post("/v1/completions", "[1,2]"), 400, null, "is an array");
        assertError(post("/v1/completions", "\"hi\""), 400, null, "is a string");
        for (String r : List.of(post("/v1/completions", "[1,2]").body(), post("/v1/completions", "{bad").body())) {
            assertFalse(r.contains("java.") || r.contains("Exception") || r.contains("JsonObject"), r);
        }
        HttpResponse<String> named = post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2,\"model\":\"tiny-mixtral-kjv\"}");
        assertEquals(200, named.statusCode(), named.body());
    }

    @Test
    void nChoicesAndLogprobs() throws Exception {
        HttpResponse<String> r = post("/v1/completions", "{\"prompt\":\"In the beginning\",\"max_tokens\":6,\"temperature\":0.9,"
                + "\"seed\":7,\"n\":3,\"logprobs\":2}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode b = JSON.readTree(r.body());
        assertEquals(3, b.get("choices").size());
        int total = 0;
        for (int i = 0; i < 3; i++) {
            JsonNode c = b.get("choices").get(i);
            assertEquals(i, c.get("index").asInt());
            JsonNode lp = c.get("logprobs");
            assertEquals(6, lp.get("tokens").size(), c.toString());
            StringBuilder joined = new StringBuilder();
            for (JsonNode t : lp.get("tokens")) joined.append(t.asText());
            assertEquals(c.get("text").asText(), joined.toString(), "the tokens spell the text");
            for (int t = 0; t < 6; t++) {
                double chosen = lp.get("token_logprobs").get(t).asDouble();
                assertTrue(chosen <= 0, "a log probability");
                assertEquals(2, lp.get("top_logprobs").get(t).size());
                double best = Double.NEGATIVE_INFINITY;
                for (JsonNode v : lp.get("top_logprobs").get(t)) best = Math.max(best, v.asDouble());
                assertTrue(best >= chosen - 1e-6, "the top alternative is at least as likely as the chosen token");
            }
            total += 6;
        }
        assertEquals(total, b.get("usage").get("completion_tokens").asInt());
        // greedy chat with logprobs: the chosen token is the most likely one
        JsonNode chat = JSON.readTree(post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                + "\"max_tokens\":4,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":3}").body());
        JsonNode content = chat.get("choices").get(0).get("logprobs").get("content");
        assertEquals(4, content.size(), chat.toString());
        for (JsonNode t : content) {
            assertEquals(3, t.get("top_logprobs").size());
            assertEquals(t.get("token").asText(), t.get("top_logprobs").get(0).get("token").asText(), "greedy picks the top");
            assertTrue(t.get("bytes").isArray());
        }
    }

    @Test
    void aWebSocketTagsFramesCapsItsRequestsAndCancelsThemAllOnClose() throws Exception {
        double before = registry.counter("moe.requests.cancelled").count();
        try (RawClient c = new RawClient(port, 30_000)) {
            assertTrue(c.upgrade("/v1/stream", "Authorization", "Bearer sekret").startsWith("HTTP/1.1 101"));
            for (int i = 0; i < 3; i++) c.text("{\"id\":\"r" + i + "\",\"prompt\":\"In the\",\"max_tokens\":200,\"temperature\":0}");
            Set<String> ids = new HashSet<>();
            List<JsonNode> errors = new ArrayList<>();
            while (ids.size() < 2 || errors.isEmpty()) {
                RawClient.Frame f = c.read();
                assertNotNull(f);
                JsonNode m = JSON.readTree(f.text());
                assertTrue(m.has("id"), "every frame names its request: " + m);
                if (m.has("error")) errors.add(m);
                else ids.add(m.get("id").asText());
            }
            assertEquals(Set.of("r0", "r1"), ids);
            assertEquals("r2", errors.getFirst().get("id").asText());
            assertEquals(429, errors.getFirst().get("error").get("status").asInt(), "two in flight at most on this server");
        } // the socket goes away with two generations running
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline && registry.counter("moe.requests.cancelled").count() < before + 2) Thread.sleep(50);
        assertEquals(before + 2, registry.counter("moe.requests.cancelled").count(), "both generations were cancelled");
    }

    @Test
    void badFramesGetAReasonedClose() throws Exception {
        record Case(String what, int code, RawClientAction send) {}
        List<Case> cases = List.of(
                new Case("binary", 1003, c -> c.frame(true, 0, 2, "{\"prompt\":\"x\"}".getBytes(StandardCharsets.UTF_8))),
                new Case("a frame over 64 KiB", 1009, c -> c.frame(true, 0, 1, new byte[70_000])),
                new Case("a fragmented message over the limit", 1009, c -> {
                    for (int i = 0; i < 20; i++) c.frame(false, 0, i == 0 ? 1 : 0, new byte[60_000]);
                    c.frame(true, 0, 0, new byte[10]);
                }),
                new Case("invalid UTF-8", 1007, c -> c.frame(true, 0, 1, "{\"prompt\":\"\u00c3(\"}".getBytes(StandardCharsets.ISO_8859_1))));
        for (Case k : cases) {
            try (RawClient c = new RawClient(port, 10_000)) {
                assertTrue(c.upgrade("/v1/stream", "Authorization", "Bearer sekret").startsWith("HTTP/1.1 101"));
                k.send().run(c);
                RawClient.Frame close = c.untilClose();
                assertNotNull(close, k.what() + ": a close frame, not a silent drop");
                assertEquals(k.code(), close.closeCode(), k.what() + ": " + close.closeReason());
                assertFalse(close.closeReason().isEmpty(), k.what() + ": the close says why");
            }
        }
        // RSV bits (no extension was negotiated): Netty's decoder inside Vert.x refuses the frame; it may drop the
        // connection before we can say why, so what is checked is what matters: nothing runs, the connection ends at once
        List<RawClientAction> refused = List.of(
                c -> c.frame(true, 4, 1, "{\"prompt\":\"x\"}".getBytes(StandardCharsets.UTF_8))); // RSV1 without an extension
        for (RawClientAction send : refused) {
            try (RawClient c = new RawClient(port, 10_000)) {
                assertTrue(c.upgrade("/v1/stream", "Authorization", "Bearer sekret").startsWith("HTTP/1.1 101"));
                send.run(c);
                long t0 = System.nanoTime();
                RawClient.Frame f = c.read(); // the first thing back: the end, or a close frame; never a reply
                assertTrue(f == null || f.opcode() == 8, "refused: " + (f == null ? "dropped" : f.text()));
                assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "at once, not by a read timeout");
            }
        }
        assertEquals(200, post("/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2}").statusCode(), "the server serves on");
    }

    @FunctionalInterface
    interface RawClientAction {
        void run(RawClient c) throws Exception;
    }
}
