package org.moeserve.runtime.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.Test;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The official OpenAI client library (npm package openai, pinned in src/test/node/package-lock.json) against a
 * running server: models, completions, chat completions, both streamed, and an error it must understand.
 * {@code ./moe test} installs the package (npm ci) before the tests run.
 */
class OpenAiClientTest {
    @Test
    void theOfficialClientWorksUnchanged() throws Exception {
        Path dir = Path.of("src/test/node").toAbsolutePath();
        assertTrue(Files.isDirectory(dir.resolve("node_modules/openai")),
                "the openai npm package is not installed: run (cd moe-runtime/src/test/node && npm ci); ./moe test does it");
        JsonNode golden = new ObjectMapper().readTree(TestModels.dir("tiny-mixtral-kjv").resolve("golden.json").toFile())
                .get("prompts").get(0);
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"));
             Tokenizer tok = Tokenizer.load(m.dir(), m.config());
             Parallel par = new Parallel(2)) {
            PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            Scheduler s = new Scheduler(new Engine(m, par), tok, 4, 16, 64, reg);
            Vertx v = Vertx.vertx();
            ApiServer api = new ApiServer(v, s, tok, m.name(), reg, new ApiServer.Options("127.0.0.1", 0, null, 1 << 20));
            try {
                int port = api.start();
                Process p = new ProcessBuilder("node", "openai-client.mjs", "http://127.0.0.1:" + port + "/v1")
                        .directory(dir.toFile()).redirectErrorStream(true).start();
                assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the client finished");
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertEquals(0, p.exitValue(), out);
                JsonNode r = new ObjectMapper().readTree(out.lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow());
                assertEquals("tiny-mixtral-kjv", r.get("models").get(0).asText());
                assertEquals(golden.get("greedy_text").asText(), r.get("completion").asText());
                assertEquals(golden.get("greedy_text").asText(), r.get("streamed").asText());
                assertEquals("length", r.get("finish").asText());
                assertEquals(76, r.get("usage").get("total_tokens").asInt());
                assertEquals("assistant", r.get("chat").get("role").asText());
                assertEquals(r.get("chat").get("content").asText(), r.get("chatStreamed").asText());
                assertEquals(400, r.get("badRequest").get("status").asInt());
                assertEquals("max_tokens", r.get("badRequest").get("param").asText());
            } finally {
                api.close();
                s.close();
                v.close();
            }
        }
    }
}
