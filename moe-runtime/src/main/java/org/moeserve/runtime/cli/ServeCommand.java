package org.moeserve.runtime.cli;

import org.moeserve.runtime.cluster.ClusterExecutor;
import org.moeserve.comms.cluster.ClusterMember;
import org.moeserve.comms.cluster.ClusterPlan;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import org.moeserve.cache.ExpertCache;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.LookaheadGates;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tokenizer;
import org.moeserve.runtime.serve.ApiServer;
import org.moeserve.runtime.serve.Scheduler;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code moe serve}: the OpenAI-compatible server, on the bundled demo model unless --model names another. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve the model over an OpenAI-compatible HTTP API (SSE streaming), a WebSocket, /health and /metrics.")
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model = new ModelOptions();

    @Option(names = "--host", paramLabel = "ADDR", description = "Address to bind (default ${DEFAULT-VALUE}: this machine only).")
    String host = "127.0.0.1";

    @Option(names = "--port", paramLabel = "N", description = "Port (default ${DEFAULT-VALUE}; 0 picks a free one).")
    int port = 8000;

    @Option(names = "--api-key", paramLabel = "KEY",
            description = "Require Authorization: Bearer KEY on /v1/* (visible in ps: prefer --api-key-file or $MOE_API_KEY).")
    String apiKey;

    @Option(names = "--api-key-file", paramLabel = "FILE", description = "Read the API key from the first line of FILE.")
    java.nio.file.Path apiKeyFile;

    @Option(names = "--private-metrics", description = "Require the API key on /health and /metrics too.")
    boolean privateMetrics;

    @Option(names = "--allow-origin", paramLabel = "ORIGIN", split = ",",
            description = "Browser origins (https://app.example) allowed to call the API and open /v1/stream; default none.")
    java.util.List<String> allowOrigins = new java.util.ArrayList<>();

    @Option(names = "--allow-host", paramLabel = "NAME", split = ",",
            description = "Host header names to accept besides the bound address's (e.g. a DNS name in front of it).")
    java.util.List<String> allowHosts = new java.util.ArrayList<>();

    @Option(names = "--request-timeout", paramLabel = "T", converter = Converters.Duration.class,
            description = "A client must send each whole request (head and body) within this time (default 30s).")
    long requestTimeoutNanos = 30_000_000_000L;

    @Option(names = "--ws-max-in-flight", paramLabel = "N", description = "Requests one WebSocket may run at once (default ${DEFAULT-VALUE}).")
    int wsMaxInFlight = 4;

    @Option(names = "--max-batch", paramLabel = "N", description = "Sequences decoded per step (default ${DEFAULT-VALUE}).")
    int maxBatch = 8;

    @Option(names = "--max-running", paramLabel = "N",
            description = "Sequences holding a KV cache at once (default: --max-batch, or twice it with --expert-aware).")
    Integer maxRunning;

    @Option(names = "--expert-aware", description = "Choose each step's sequences so they share experts (Read-ME, ExpertFlow).")
    boolean expertAware;

    @Option(names = "--max-queue", paramLabel = "N", description = "Requests waiting before 429 (default ${DEFAULT-VALUE}).")
    int maxQueue = 64;

    @Option(names = "--prefill-chunk", paramLabel = "N", description = "Prompt tokens prefilled per step (default ${DEFAULT-VALUE}).")
    int prefillChunk = 64;

    @Option(names = "--max-context", paramLabel = "N",
            description = "Tokens a sequence may hold (prompt and completion), below the model's max_position_embeddings: "
                    + "bounds the KV cache and the heap the launcher reserves. Default: the model's.")
    Integer maxContext;

    @Option(names = "--max-body", paramLabel = "BYTES", converter = Converters.Bytes.class,
            description = "Request body limit (default 1MiB).")
    long maxBody = 1 << 20;

    @Mixin
    OffloadOptions offload = new OffloadOptions();

    @Mixin
    ReplayOptions replay = new ReplayOptions();

    @Option(names = "--cluster", paramLabel = "NAME",
            description = "Join (or found) the cluster NAME: experts spread over its members by a versioned plan, any member serves.")
    String cluster;

    @Option(names = "--cluster-host", paramLabel = "ADDR", description = "This member's cluster address (default ${DEFAULT-VALUE}).")
    String clusterHost = "127.0.0.1";

    @Option(names = "--cluster-port", paramLabel = "N", description = "First Hazelcast port to try (default ${DEFAULT-VALUE}).")
    int clusterPort = 5701;

    @Option(names = "--cluster-members", paramLabel = "HOST:PORT[,...]",
            description = "Where to look for the other members (default: --cluster-host, ports --cluster-port to +19).")
    String clusterMembers;

    @Option(names = "--plan", paramLabel = "FILE", description = "With --cluster: the moe-plan/1 to run while the members match its devices.")
    java.nio.file.Path plan;

    /**
     * The heap this server needs, in MiB: every running sequence's KV cache at the full context, a step's activations
     * (decode rows plus a prefill chunk, through the widest layer and the logits), twice that for the collector's
     * headroom, plus 256 MiB for Vert.x, Netty and the JIT. Weights are mmap'd and the expert cache is off-heap, so
     * neither counts. The launcher starts {@code serve} with this as -Xmx (MOE_JAVA_OPTS=-Xmx... overrides).
     */
    long heapMegabytes() throws java.io.IOException {
        ModelConfig c = org.moeserve.runtime.model.Checkpoint.configOf(model.modelDir());
        int running = maxRunning != null ? maxRunning : expertAware ? 2 * maxBatch : maxBatch;
        long ctx = maxContext != null ? Math.min(maxContext, c.maxPositions()) : c.maxPositions();
        long kv = (long) running * c.layers() * ctx * c.kvCacheFloatsPerToken() * Float.BYTES;
        long rows = (long) maxBatch + prefillChunk;
        long width = Math.max(Math.max(c.hiddenSize(), c.qDim()), Math.max(c.expertIntermediate(), c.denseIntermediate()));
        long activations = rows * (12 * width + c.vocabSize()) * Float.BYTES;
        return 256 + 2 * (kv + activations) / (1 << 20);
    }

    /** The API key: --api-key, else --api-key-file, else $MOE_API_KEY; null for none. */
    String key() throws java.io.IOException {
        if (apiKey != null && apiKeyFile != null) throw new UsageError("give the API key once: --api-key or --api-key-file");
        if (apiKey != null) return apiKey;
        if (apiKeyFile != null) {
            if (!java.nio.file.Files.isRegularFile(apiKeyFile)) throw new UsageError("--api-key-file " + apiKeyFile + ": no such file");
            String k = java.nio.file.Files.readAllLines(apiKeyFile).stream().findFirst().orElse("").strip();
            if (k.isEmpty()) throw new UsageError("--api-key-file " + apiKeyFile + " is empty; put the key on its first line");
            return k;
        }
        String env = System.getenv("MOE_API_KEY");
        return env == null || env.isBlank() ? null : env.strip();
    }

    @Override
    public Integer call() throws Exception {
        model.validate();
        offload.validate(false);
        if (cluster != null && offload.device.equals("gpu")) { // refused on every machine, with a GPU or without
            throw new UsageError("--cluster and --device gpu cannot be combined yet; choose one");
        }
        ApiServer.Options opts;
        try {
            opts = new ApiServer.Options(host, port, key(), maxBody, allowOrigins, allowHosts, privateMetrics,
                    java.time.Duration.ofNanos(requestTimeoutNanos), wsMaxInFlight);
        } catch (IllegalArgumentException e) {
            throw new UsageError(e.getMessage());
        }
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MoeModel m = MoeModel.load(model.modelDir());
        Tokenizer tok = Tokenizer.load(m.dir(), m.config());
        Parallel par = new Parallel(model.threads);
        OffloadOptions.Built built = offload.engine(m, par, null, () -> LookaheadGates.of(m));
        Engine engine = built.engine();
        ExpertCache cache = built.cache();
        org.moeserve.runtime.gpu.GpuTier gpu = built.gpu();
        if (cache != null) cache.bindTo(registry);
        if (maxContext != null) {
            try {
                engine.limitContext(maxContext);
            } catch (IllegalArgumentException e) {
                throw new UsageError(e.getMessage());
            }
        }
        replay.apply(engine);
        int running = maxRunning != null ? maxRunning : expertAware ? 2 * maxBatch : maxBatch;
        Scheduler scheduler = new Scheduler(engine, tok, running, Math.min(maxBatch, running), expertAware, maxQueue,
                prefillChunk, registry);
        if (expertAware) scheduler.setPathGuess(LookaheadGates.fromToken(m));
        Vertx vertx;
        ClusterMember member = null;
        if (cluster != null) {
            if (offload.offloading()) throw new IllegalArgumentException("--cluster and --expert-budget cannot be combined yet; choose one");
            java.util.List<String> peers = clusterMembers != null ? java.util.List.of(clusterMembers.split(","))
                    : ClusterMember.Options.ports(clusterHost, clusterPort);
            member = ClusterMember.join(ClusterExecutor.host(m), new ClusterMember.Options(cluster, clusterHost, clusterPort, peers, 4,
                    plan == null ? null : org.moeserve.placement.PlacementPlan.read(plan)));
            engine.setExecutor(new ClusterExecutor(member, java.time.Duration.ofSeconds(10), java.time.Duration.ofSeconds(60)));
            vertx = member.vertx();
            ClusterPlan cp = member.awaitPlan(p -> true, java.time.Duration.ofSeconds(60), "any members");
            System.out.printf("moe serve: member %s of cluster %s (plan version %d over %d members)%n", member.nodeId(), cluster,
                    cp.version(), cp.members().size());
        } else {
            vertx = Vertx.vertx();
        }
        ApiServer server = new ApiServer(vertx, scheduler, tok, m.name(), registry, opts);
        int bound;
        try {
            bound = server.start();
        } catch (IllegalArgumentException e) { // bad --host, busy --port: one line, and nothing left running
            scheduler.close();
            if (member != null) member.close();
            else vertx.close();
            par.close();
            throw new UsageError(e.getMessage());
        }
        System.out.printf("moe serve: %s on http://%s:%d/v1 (OpenAI-compatible; WebSocket /v1/stream; /health, /metrics)%s%n",
                m.name(), host, bound, cache == null ? gpu == null ? "" : "; routed experts on " + gpu.describe()
                        : "; " + cache.slots() + " experts resident, " + offload.slowTier());
        CountDownLatch stop = new CountDownLatch(1);
        ExpertCache c = cache;
        ClusterMember clusterMember = member;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            scheduler.close();
            if (clusterMember != null) clusterMember.close(); // closes its clustered Vert.x
            else vertx.close();
            if (c != null) c.close();
            par.close();
            stop.countDown();
        }));
        stop.await();
        return 0;
    }
}
