package org.moeserve.runtime.cluster;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.comms.cluster.ClusterMember;
import org.moeserve.comms.cluster.ClusterPlan;
import org.moeserve.comms.cluster.RemoteExperts;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Generator;
import org.moeserve.runtime.engine.SamplingParams;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real cluster on loopback: this JVM and two more ({@code moe serve --cluster}, separate processes) form a
 * Hazelcast cluster; the plan spreads the demo model's experts over the three. Greedy generations from this member
 * send rows to the others' experts over the clustered event bus; one member is killed (SIGKILL) in the middle of a
 * generation; every generation completes with exactly the single-node tokens, the survivors run under a new plan
 * version without it, and the surviving child still answers HTTP requests itself.
 */
class ClusterTest {
    static final String[] PROMPTS = {"And it came to pass, when the king", "In the beginning God created", "Blessed are the meek: for"};
    static final int TOKENS = 24;
    final List<Process> children = new ArrayList<>();
    ClusterMember member;

    @TempDir
    Path tmp;

    @AfterEach
    void stop() {
        if (member != null) member.close();
        for (Process p : children) p.destroyForcibly();
    }

    /** A child JVM running moe serve --cluster; completes with its HTTP port once it serves. */
    CompletableFuture<Integer> child(String cluster, int port, int i) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (a.startsWith("--add") || a.startsWith("--enable") || a.startsWith("-D") || a.startsWith("-Xss")) cmd.add(a);
        }
        cmd.addAll(List.of("-Xmx512m", "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
                "org.moeserve.runtime.cli.Moe", "serve", "--model", TestModels.dir("tiny-mixtral-kjv").toString(), "--port", "0",
                "--threads", "1", "--cluster", cluster, "--cluster-port", String.valueOf(port)));
        Process p = new ProcessBuilder(cmd).redirectError(tmp.resolve("child" + i + ".err").toFile()).start();
        children.add(p);
        CompletableFuture<Integer> http = new CompletableFuture<>();
        Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                Pattern on = Pattern.compile("on http://127\\.0\\.0\\.1:(\\d+)/v1");
                for (String line; (line = r.readLine()) != null; ) {
                    Matcher m = on.matcher(line);
                    if (m.find()) http.complete(Integer.parseInt(m.group(1)));
                }
                http.completeExceptionally(new IllegalStateException("child " + i + " exited: see " + tmp.resolve("child" + i + ".err")));
            } catch (Exception e) {
                http.completeExceptionally(e);
            }
        });
        return http;
    }

    @Test
    void threeMembersLoseOneMidGenerationAndEveryRequestCompletesWithTheSingleNodeTokens() throws Exception {
        String cluster = "moe-test-" + java.util.UUID.randomUUID();
        int port = 21000 + new java.util.Random().nextInt(400) * 20;
        try (MoeModel model = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            int[][] single = new int[PROMPTS.length][];
            for (int i = 0; i < PROMPTS.length; i++) single[i] = generate(new Engine(model, Parallel.SERIAL), PROMPTS[i], t -> { });

            CompletableFuture<Integer> keep = child(cluster, port, 1), doomed = child(cluster, port, 2);
            member = ClusterMember.join(ClusterExecutor.host(model), ClusterMember.Options.loopback(cluster, port));
            int httpPort = keep.get(180, TimeUnit.SECONDS);
            doomed.get(180, TimeUnit.SECONDS);
            ClusterPlan three = member.awaitPlan(p -> p.members().size() == 3, Duration.ofSeconds(120), "3 members");
            assertTrue(three.members().contains(member.nodeId()));
            int mine = 0, me = three.indexOf(member.nodeId());
            for (int l = 0; l < model.config().moeLayers(); l++) {
                for (int e = 0; e < model.config().experts(); e++) if (three.placement().devicesOf(l, e).contains(me)) mine++;
            }
            assertTrue(mine < model.config().moeLayers() * model.config().experts());
            assertEquals(mine, member.expertsLoaded(), "a member holds only its plan's experts");

            Engine engine = new Engine(model, Parallel.SERIAL);
            ClusterExecutor executor = new ClusterExecutor(member, Duration.ofSeconds(5), Duration.ofSeconds(90));
            RemoteExperts cluster3 = executor.remote();
            engine.setExecutor(executor);
            assertArrayEquals(single[0], generate(engine, PROMPTS[0], t -> { }), "three members");
            assertTrue(cluster3.remoteCalls() > 0 && cluster3.bytesSent() > 0, "rows went to the other members");

            AtomicInteger produced = new AtomicInteger();
            Process victim = children.get(1);
            int[] during = generate(engine, PROMPTS[1], t -> {
                if (produced.incrementAndGet() == 8) {
                    victim.destroyForcibly();
                    try {
                        victim.waitFor(30, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            });
            assertFalse(victim.isAlive());
            assertArrayEquals(single[1], during, "a member killed mid-generation: the same tokens");
            assertTrue(cluster3.retried() > 0, "the kill hit the generation in flight: calls to the dead member failed and were sent again");
            ClusterPlan two = member.awaitPlan(p -> p.members().size() == 2, Duration.ofSeconds(90), "2 members");
            assertTrue(two.version() > three.version(), "a new plan version");
            assertTrue(two.members().contains(member.nodeId()));
            assertArrayEquals(single[2], generate(engine, PROMPTS[2], t -> { }), "two survivors");
            System.out.printf("cluster: %d remote calls, %d bytes out, %d back, %d (row, expert) jobs retried after the kill, "
                    + "plan %d -> %d%n", cluster3.remoteCalls(), cluster3.bytesSent(), cluster3.bytesReceived(), cluster3.retried(),
                    three.version(), two.version());

            // any member accepts requests: the surviving child serves one itself
            HttpResponse<String> r = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + httpPort + "/v1/completions")).timeout(Duration.ofSeconds(120))
                    .header("content-type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"" + PROMPTS[1] + "\",\"max_tokens\":" + TOKENS + ",\"temperature\":0}"))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            assertTrue(r.body().contains("\"completion_tokens\":" + TOKENS), r.body());
        }
    }

    static int[] generate(Engine e, String prompt, java.util.function.IntConsumer onToken) {
        return new Generator(e).generate(new Generator.Request(prompt.chars().toArray(), TOKENS, SamplingParams.GREEDY, false), onToken)
                .tokens();
    }
}
