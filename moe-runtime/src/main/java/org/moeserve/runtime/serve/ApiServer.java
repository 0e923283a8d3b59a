package org.moeserve.runtime.serve;

import io.micrometer.core.instrument.Counter;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.ServerWebSocket;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import org.moeserve.runtime.model.Tokenizer;

import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServerRequest;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The OpenAI-compatible HTTP and WebSocket API on Vert.x. Handlers run on the event loop and never block: they
 * validate, tokenize and queue a {@link Scheduler.Job}; the scheduler's thread produces tokens, which are written
 * back on the request's own context.
 *
 * <pre>
 *   POST /v1/completions, /v1/chat/completions   (stream: SSE)     GET /v1/models
 *   GET  /v1/stream   (WebSocket: send a completion body, receive {"text"} ... {"done"})
 *   GET  /health      GET /metrics (Prometheus)
 * </pre>
 *
 * Errors are OpenAI-shaped: 400 for a bad body (naming the field), 401 without the API key, 413 for a body over
 * the limit, 429 with Retry-After when the queue is full.
 */
public final class ApiServer implements AutoCloseable {
    /**
     * Options, each with a default and a bound.
     *
     * @param allowedOrigins  browser origins (scheme://host[:port]) whose requests and WebSocket upgrades are served;
     *                        every other request that carries an Origin header is refused (403)
     * @param allowedHosts    Host header names accepted besides the ones the server is bound to (DNS rebinding)
     * @param protectAll      require the API key on /health and /metrics too
     * @param requestTimeout  a connection must deliver each whole request (head and body) within this time
     * @param maxWsInFlight   generations one WebSocket may have running or queued at once
     */
    public record Options(String host, int port, String apiKey, long maxBodyBytes, List<String> allowedOrigins,
                          List<String> allowedHosts, boolean protectAll, Duration requestTimeout, int maxWsInFlight) {
        public Options {
            if (port < 0 || port > 65535) throw new IllegalArgumentException("port is " + port + " but must be in 0..65535");
            if (maxBodyBytes < 1024) throw new IllegalArgumentException("max body is " + maxBodyBytes + " bytes but must be >= 1024");
            if (apiKey != null && apiKey.isBlank()) throw new IllegalArgumentException("the API key is empty; give a non-empty key or none");
            if (requestTimeout.isNegative() || requestTimeout.isZero()) {
                throw new IllegalArgumentException("request timeout is " + requestTimeout + " but must be > 0");
            }
            if (maxWsInFlight < 1) throw new IllegalArgumentException("WebSocket in-flight cap is " + maxWsInFlight + " but must be >= 1");
            allowedOrigins = List.copyOf(allowedOrigins);
            allowedHosts = List.copyOf(allowedHosts);
        }

        /** The defaults: no cross-origin browser access, only the bound names as Host, 30 s per request, 4 per socket. */
        public Options(String host, int port, String apiKey, long maxBodyBytes) {
            this(host, port, apiKey, maxBodyBytes, List.of(), List.of(), false, Duration.ofSeconds(30), 4);
        }
    }

    private final Vertx vertx;
    private final Scheduler scheduler;
    private final Tokenizer tokenizer;
    private final String modelName;
    private final PrometheusMeterRegistry registry;
    private final Options options;
    private final long created = System.currentTimeMillis() / 1000;
    private final ChatTemplate chatTemplate; // null: the plain layout
    private final byte[] keyBytes;
    private final Set<String> hostNames;
    private final Map<HttpConnection, Long> deadlines = new ConcurrentHashMap<>(); // connection -> its request timer
    private HttpServer server;

    public ApiServer(Vertx vertx, Scheduler scheduler, Tokenizer tokenizer, String modelName, PrometheusMeterRegistry registry,
                     Options options) {
        this.vertx = vertx;
        this.scheduler = scheduler;
        this.tokenizer = tokenizer;
        this.modelName = modelName;
        this.registry = registry;
        this.options = options;
        this.chatTemplate = tokenizer.chatTemplate() == null ? null : ChatTemplate.parse(tokenizer.chatTemplate());
        this.keyBytes = options.apiKey() == null ? null : ("Bearer " + options.apiKey()).getBytes(StandardCharsets.UTF_8);
        this.hostNames = hostNames(options);
    }

    /** Host header names that reach this server: the bound address (loopback: all its names) and the allowed ones. */
    static Set<String> hostNames(Options o) {
        Set<String> names = new HashSet<>();
        String h = o.host().toLowerCase(Locale.ROOT);
        names.add(h.startsWith("[") ? h : h.contains(":") ? "[" + h + "]" : h);
        if (Set.of("127.0.0.1", "localhost", "::1", "[::1]").contains(h)) names.addAll(Set.of("127.0.0.1", "localhost", "[::1]"));
        for (String a : o.allowedHosts()) names.add(a.toLowerCase(Locale.ROOT));
        return names;
    }

    /** Starts listening; returns the bound port (useful with port 0). */
    public int start() throws Exception {
        Router router = Router.router(vertx);
        router.route().handler(this::guard);
        router.route("/v1/*").handler(this::authorize);
        if (options.protectAll()) {
            router.route("/health").handler(this::authorize);
            router.route("/metrics").handler(this::authorize);
        }
        // bodies are read only where one is expected, after the key check, in memory (never to disk), within the limit
        BodyHandler body = BodyHandler.create(false).setBodyLimit(options.maxBodyBytes()).setHandleFileUploads(false);
        for (String path : List.of("/v1/completions", "/v1/chat/completions")) {
            router.post(path).handler(this::requireJson); // its own route: vert.x wants a body handler first on a route
            router.post(path).handler(body).handler(this::bodyDone);
            router.post(path).handler(ctx -> complete(ctx, path.contains("chat")));
            router.route(path).handler(ctx -> methodNotAllowed(ctx, "POST"));
        }
        router.get("/health").handler(this::health);
        router.get("/metrics").handler(this::metrics);
        router.get("/v1/models").handler(this::models);
        router.get("/v1/stream").handler(this::webSocket);
        router.route("/v1/models/:id").method(io.vertx.core.http.HttpMethod.GET).handler(this::model);
        for (String path : List.of("/health", "/metrics", "/v1/models", "/v1/stream", "/v1/models/:id")) {
            router.route(path).handler(ctx -> methodNotAllowed(ctx, "GET"));
        }
        router.route().last().handler(ctx -> error(ctx.response(), new ApiException(404, "not_found", null,
                "no route " + ctx.request().method() + " " + ctx.request().path())));
        router.route().failureHandler(this::failure);
        HttpServerOptions so = new HttpServerOptions().setHost(options.host()).setPort(options.port())
                .setIdleTimeout((int) Math.max(1, options.requestTimeout().toSeconds() * 2)).setIdleTimeoutUnit(TimeUnit.SECONDS)
                .setMaxHeaderSize(16 * 1024).setMaxInitialLineLength(8 * 1024)
                .setMaxWebSocketFrameSize(WS_MAX_FRAME).setMaxWebSocketMessageSize(WS_MAX_MESSAGE)
                // no compression extensions: a frame with RSV bits set is then a protocol error, as RFC 6455 says
                .setPerMessageWebSocketCompressionSupported(false).setPerFrameWebSocketCompressionSupported(false);
        server = vertx.createHttpServer(so)
                .connectionHandler(this::connected)
                .invalidRequestHandler(this::invalidRequest)
                .requestHandler(req -> { requestArrived(req); router.handle(req); });
        try {
            server.listen().toCompletionStage().toCompletableFuture().get();
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable c = e.getCause();
            String why = c instanceof java.net.BindException || String.valueOf(c.getMessage()).contains("Address already in use")
                    ? "port " + options.port() + " on " + options.host() + " is in use (another server?); choose another with --port"
                    : c instanceof java.net.UnknownHostException || c instanceof java.nio.channels.UnresolvedAddressException
                    ? "--host " + options.host() + " is not an address of this machine"
                    : "cannot listen on " + options.host() + ":" + options.port() + ": " + c.getMessage();
            throw new IllegalArgumentException(why, c);
        }
        return server.actualPort();
    }

    /** Frames and messages on /v1/stream: a completion body is a few KB; 64 KiB frames, whole messages up to the body limit. */
    static final int WS_MAX_FRAME = 64 * 1024, WS_MAX_MESSAGE = 1024 * 1024;

    /** A request HTTP itself cannot parse (bad request line or version, broken headers): 400, not Netty's 501. */
    private void invalidRequest(HttpServerRequest req) {
        Throwable cause = req.decoderResult() == null ? null : req.decoderResult().cause();
        String why = cause == null ? "the request is not valid HTTP/1.1" : "the request is not valid HTTP/1.1: " + cause.getMessage();
        count(400);
        req.response().setStatusCode(400).putHeader("content-type", "application/json").putHeader("connection", "close")
                .end(new JsonObject().put("error", new JsonObject().put("message", why).put("type", "invalid_request_error")
                        .putNull("param").putNull("code")).encode())
                .onComplete(v -> req.connection().close());
    }

    // ---- slow clients: every request (head and body) must arrive within the request timeout ----

    private void connected(HttpConnection conn) {
        arm(conn);
        conn.closeHandler(v -> disarm(conn));
    }

    private void arm(HttpConnection conn) {
        long id = vertx.setTimer(options.requestTimeout().toMillis(), t -> {
            if (deadlines.remove(conn) != null) conn.close();
        });
        Long old = deadlines.put(conn, id);
        if (old != null) vertx.cancelTimer(old);
    }

    private void disarm(HttpConnection conn) {
        Long id = deadlines.remove(conn);
        if (id != null) vertx.cancelTimer(id);
    }

    /** The head arrived: the body (if any) must follow within the timeout; after the response, the next request. */
    private void requestArrived(HttpServerRequest req) {
        HttpConnection conn = req.connection();
        arm(conn);
        req.response().endHandler(v -> arm(conn)); // keep-alive: the next request, or close when idle
        req.response().closeHandler(v -> disarm(conn));
        String method = req.method().name();
        if (!method.equals("POST") && !method.equals("PUT") && !method.equals("PATCH")) bodyLess(req);
    }

    /** A request without a body is whole once its head is in. */
    private void bodyLess(HttpServerRequest req) { disarm(req.connection()); }

    private void bodyDone(RoutingContext ctx) {
        disarm(ctx.request().connection());
        ctx.next();
    }

    // ---- browsers, DNS rebinding, content types ----

    private void guard(RoutingContext ctx) {
        HttpServerRequest req = ctx.request();
        String host = req.getHeader("Host");
        if (host == null) {
            error(ctx.response(), ApiException.invalid(null, "the request has no Host header; HTTP/1.1 clients send one"));
            return;
        }
        String name = host.toLowerCase(Locale.ROOT).replaceFirst(":[0-9]+$", "");
        if (!options.host().equals("0.0.0.0") && !options.host().equals("::") && !hostNames.contains(name)) {
            error(ctx.response(), new ApiException(403, "forbidden", null, "Host " + host + " is not a name of this server "
                    + hostNames + "; if it is, start the server with --allow-host " + name));
            return;
        }
        String origin = req.getHeader("Origin");
        if (origin != null && !options.allowedOrigins().contains(origin) && !options.allowedOrigins().contains("*")) {
            error(ctx.response(), new ApiException(403, "forbidden", null, "cross-origin requests are refused (Origin " + origin
                    + "); to let a web page use this server, start it with --allow-origin " + origin));
            return;
        }
        if (origin != null) {
            ctx.response().putHeader("Access-Control-Allow-Origin", origin).putHeader("Vary", "Origin");
        }
        ctx.next();
    }

    private void requireJson(RoutingContext ctx) {
        String ct = ctx.request().getHeader("Content-Type");
        String base = ct == null ? "" : ct.split(";", 2)[0].trim().toLowerCase(Locale.ROOT);
        if (!base.equals("application/json")) {
            error(ctx.response(), new ApiException(415, "invalid_request_error", null, "the body must be JSON: send the header "
                    + "Content-Type: application/json" + (ct == null ? "" : " (not " + ct + ")")));
            return;
        }
        ctx.next();
    }

    private void methodNotAllowed(RoutingContext ctx, String allow) {
        ctx.response().putHeader("Allow", allow);
        error(ctx.response(), new ApiException(405, "invalid_request_error", null,
                ctx.request().method() + " " + ctx.request().path() + " is not served; use " + allow));
    }

    private void authorize(RoutingContext ctx) {
        if (keyBytes != null) {
            String given = ctx.request().getHeader("Authorization");
            // constant time: how much of the key matched must not show in how long the refusal takes
            byte[] g = given == null ? new byte[0] : given.getBytes(StandardCharsets.UTF_8);
            if (!MessageDigest.isEqual(keyBytes, g)) {
                error(ctx.response(), new ApiException(401, "invalid_api_key", null,
                        "this server needs an API key: send the header Authorization: Bearer <key>"));
                return;
            }
        }
        ctx.next();
    }

    private void health(RoutingContext ctx) {
        ctx.json(new JsonObject().put("status", "ok").put("model", modelName).put("queue", scheduler.queueDepth())
                .put("running", scheduler.runningCount()));
    }

    private void metrics(RoutingContext ctx) {
        ctx.response().putHeader("content-type", "text/plain; version=0.0.4; charset=utf-8").end(registry.scrape());
    }

    private JsonObject modelCard() {
        return new JsonObject().put("id", modelName).put("object", "model").put("created", created).put("owned_by", "moe-serve");
    }

    private void models(RoutingContext ctx) {
        ctx.json(new JsonObject().put("object", "list").put("data", new JsonArray().add(modelCard())));
    }

    private void model(RoutingContext ctx) {
        String id = ctx.pathParam("id");
        if (!modelName.equals(id)) {
            error(ctx.response(), unknownModel(id));
            return;
        }
        ctx.json(modelCard());
    }

    private ApiException unknownModel(String id) {
        return new ApiException(404, "model_not_found", "model", "the model '" + id + "' does not exist here; this server "
                + "serves '" + modelName + "' (GET /v1/models)");
    }

    private void failure(RoutingContext ctx) {
        int status = ctx.statusCode();
        Throwable f = ctx.failure();
        if (f instanceof ApiException e) error(ctx.response(), e);
        else if (status == 413) {
            error(ctx.response(), new ApiException(413, "invalid_request_error", null,
                    "the request body is over the limit of " + options.maxBodyBytes() + " bytes; send less"));
        } else {
            error(ctx.response(), new ApiException(status > 0 ? status : 500, "server_error", null,
                    f == null ? "request failed" : String.valueOf(f.getMessage())));
        }
    }

    private void error(HttpServerResponse r, ApiException e) {
        if (r.ended()) return;
        if (e.status == 429) r.putHeader("Retry-After", "1");
        count(e.status);
        JsonObject err = new JsonObject().put("message", e.getMessage()).put("type", e.type).put("param", e.param)
                .put("code", e.status == 401 ? "invalid_api_key" : null);
        r.setStatusCode(e.status).putHeader("content-type", "application/json").end(new JsonObject().put("error", err).encode());
    }

    private void count(int status) {
        Counter.builder("moe.requests").tag("status", String.valueOf(status)).register(registry).increment();
    }

    /** A request ready to run: parsed, tokenized, admitted (maxTokens capped by the context). */
    private record Prepared(CompletionRequest req, int[] ids, int maxTokens) {}

    /** Parses, tokenizes and admits; throws ApiException for the client. */
    private Prepared prepare(JsonObject body, boolean chat) {
        CompletionRequest req = CompletionRequest.parse(body, chat);
        if (req.model() != null && !req.model().equals(modelName)) throw unknownModel(req.model());
        int[] ids;
        if (chat && chatTemplate != null) {
            String rendered;
            try {
                rendered = chatTemplate.render(req.messages(), tokenizer.bosToken(), tokenizer.eosToken(), true);
            } catch (IllegalArgumentException e) {
                throw ApiException.invalid("messages", "the model's chat template refused the messages: " + e.getMessage());
            }
            ids = tokenizer.encode(rendered, false);
        } else {
            ids = tokenizer.encode(req.prompt());
        }
        try {
            return new Prepared(req, ids, scheduler.admit(ids.length, req.maxTokens()));
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid(chat ? "messages" : "prompt", e.getMessage());
        }
    }

    /** A JSON object from text, or a 400 that says what the text is instead (without naming Java classes). */
    static JsonObject jsonObject(String text) {
        if (text == null || text.isBlank()) throw ApiException.invalid(null, "the request body is empty; send a JSON object");
        Object v;
        try {
            v = io.vertx.core.json.Json.decodeValue(text);
        } catch (DecodeException e) {
            // the parser's first line only, without its "Failed to decode:" prefix or the source excerpt that follows
            String why = e.getMessage() == null ? "" : e.getMessage().split("\\R", 2)[0].replaceFirst("^Failed to decode:\\s*", "")
                    .replaceAll("\\(.*", "").trim();
            throw ApiException.invalid(null, "the request body is not valid JSON: " + why);
        }
        if (v instanceof JsonObject o) return o;
        String what = v instanceof JsonArray ? "an array" : v instanceof String ? "a string" : v instanceof Number ? "a number"
                : v instanceof Boolean ? "a boolean" : "null";
        throw ApiException.invalid(null, "the request body is " + what + "; it must be a JSON object like {\"prompt\": \"...\"}");
    }

    private static JsonObject bodyOf(RoutingContext ctx) {
        try {
            return jsonObject(ctx.body().asString());
        } catch (IllegalStateException e) {
            throw ApiException.invalid(null, "the request body is not UTF-8 text");
        }
    }

    private void complete(RoutingContext ctx, boolean chat) {
        HttpServerResponse resp = ctx.response();
        Context context = vertx.getOrCreateContext();
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "").substring(0, 24);
        long now = System.currentTimeMillis() / 1000;
        Prepared p;
        try {
            p = prepare(bodyOf(ctx), chat);
        } catch (ApiException e) {
            error(resp, e);
            return;
        } catch (IllegalArgumentException e) {
            error(resp, ApiException.invalid(null, e.getMessage()));
            return;
        }
        boolean stream = p.req().stream();
        boolean[] started = {false};
        Generation g = new Generation(p.req(), p.ids(), p.maxTokens(), tokenizer, context, new Generation.Out() {
            void head() {
                if (started[0]) return;
                started[0] = true;
                resp.setChunked(true).putHeader("content-type", "text/event-stream").putHeader("cache-control", "no-cache");
            }

            @Override
            public void delta(int index, String text, JsonObject logprobs) {
                if (resp.closed() || !stream) return;
                boolean first = !started[0];
                head();
                JsonObject c = chunk(id, now, chat, index, text, null, first);
                if (logprobs != null) c.getJsonArray("choices").getJsonObject(0).put("logprobs", logprobs);
                resp.write("data: " + c.encode() + "\n\n");
            }

            @Override
            public void done(JsonArray choices, JsonObject usage) {
                if (resp.closed()) return;
                count(200);
                if (stream) {
                    head();
                    for (int i = 0; i < choices.size(); i++) { // each choice's finish; the usage rides on the last
                        JsonObject c = chunk(id, now, chat, i, "", choices.getJsonObject(i).getString("finish_reason"), false);
                        if (i == choices.size() - 1) c.put("usage", usage);
                        resp.write("data: " + c.encode() + "\n\n");
                    }
                    resp.end("data: [DONE]\n\n");
                } else {
                    resp.putHeader("content-type", "application/json").end(new JsonObject().put("id", id)
                            .put("object", chat ? "chat.completion" : "text_completion").put("created", now)
                            .put("model", modelName).put("choices", choices).put("usage", usage).encode());
                }
            }

            @Override
            public void failed(Exception e) {
                if (started[0]) resp.reset(); // mid-stream: the client sees the stream break, not a false [DONE]
                else error(resp, new ApiException(500, "server_error", null, String.valueOf(e.getMessage())));
            }
        });
        resp.closeHandler(v -> g.cancel());
        if (!g.submit(scheduler)) {
            error(resp, new ApiException(429, "rate_limit_exceeded", null,
                    "the server is at capacity (" + scheduler.queueDepth() + " requests waiting); retry after a second"));
        }
    }

    private JsonObject chunk(String id, long created, boolean chat, int index, String delta, String finish, boolean first) {
        JsonObject choice = new JsonObject().put("index", index).put("finish_reason", finish);
        if (chat) {
            JsonObject d = new JsonObject();
            if (first) d.put("role", "assistant");
            if (!delta.isEmpty() || finish == null) d.put("content", delta);
            choice.put("delta", d);
        } else {
            choice.put("text", delta).putNull("logprobs");
        }
        return new JsonObject().put("id", id).put("object", chat ? "chat.completion.chunk" : "text_completion")
                .put("created", created).put("model", modelName).put("choices", new JsonArray().add(choice));
    }

    /**
     * /v1/stream: each text message is a completion (or, with "messages", a chat) body, optionally with an "id";
     * every frame sent back carries that id (or a number the server gave it): {"id", "index", "text"} as tokens
     * come, {"id", "done", "choices", "usage"} at the end, {"id", "error"} if it fails. A socket may have
     * {@code maxWsInFlight} requests running at once; closing it cancels all of them. Binary frames are refused
     * (close 1003), over-long frames or messages close with 1009, text that is not UTF-8 with 1007.
     */
    private void webSocket(RoutingContext ctx) {
        ctx.request().toWebSocket().onSuccess(ws -> {
            Context context = vertx.getOrCreateContext();
            Set<Generation> live = ConcurrentHashMap.newKeySet();
            long[] counter = {0};
            ws.closeHandler(v -> live.forEach(Generation::cancel));
            ws.exceptionHandler(e -> {
                String m = String.valueOf(e.getMessage()).toLowerCase(Locale.ROOT);
                if (m.contains("too long") || m.contains("too big") || m.contains("exceeded") || m.contains("overflow")) {
                    closeWs(ws, 1009, "frame or message over the limit (" + WS_MAX_FRAME + " bytes a frame, " + WS_MAX_MESSAGE + " a message)");
                } else if (!ws.isClosed()) {
                    closeWs(ws, 1002, "protocol error: " + e.getMessage());
                }
            });
            @SuppressWarnings("unchecked")
            java.util.function.Consumer<String>[] onText = new java.util.function.Consumer[1];
            // messages are assembled here, not by Vert.x, so that text is checked as UTF-8 (1007) and binary refused (1003)
            java.io.ByteArrayOutputStream[] message = {null};
            ws.frameHandler(frame -> {
                if (frame.isBinary()) {
                    closeWs(ws, 1003, "send completion requests as text frames (JSON), not binary");
                    return;
                }
                if (frame.isText()) message[0] = new java.io.ByteArrayOutputStream();
                else if (!frame.isContinuation() || message[0] == null) return; // ping, pong, close: Vert.x's
                byte[] data = frame.binaryData().getBytes();
                if (message[0].size() + data.length > WS_MAX_MESSAGE) {
                    message[0] = null;
                    closeWs(ws, 1009, "message over the limit of " + WS_MAX_MESSAGE + " bytes");
                    return;
                }
                message[0].writeBytes(data);
                if (!frame.isFinal()) return;
                byte[] whole = message[0].toByteArray();
                message[0] = null;
                String text;
                try {
                    text = StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(whole)).toString();
                } catch (java.nio.charset.CharacterCodingException e) {
                    closeWs(ws, 1007, "text frames must be valid UTF-8");
                    return;
                }
                onText[0].accept(text);
            });
            onText[0] = msg -> {
                Object rid = ++counter[0];
                try {
                    JsonObject body = jsonObject(msg);
                    Object given = body.remove("id");
                    if (given instanceof String || given instanceof Number) rid = given;
                    else if (given != null) throw ApiException.invalid("id", "id must be a string or a number");
                    if (live.size() >= options.maxWsInFlight()) {
                        throw new ApiException(429, "rate_limit_exceeded", null, "this socket already has " + live.size()
                                + " requests in flight (at most " + options.maxWsInFlight() + "); wait for one to finish");
                    }
                    Prepared p = prepare(body, body.containsKey("messages"));
                    Object requestId = rid;
                    Generation[] self = new Generation[1];
                    self[0] = new Generation(p.req(), p.ids(), p.maxTokens(), tokenizer, context, new Generation.Out() {
                        @Override
                        public void delta(int index, String text, JsonObject logprobs) {
                            if (ws.isClosed()) return;
                            JsonObject f = new JsonObject().put("id", requestId).put("index", index).put("text", text);
                            if (logprobs != null) f.put("logprobs", logprobs);
                            ws.writeTextMessage(f.encode());
                        }

                        @Override
                        public void done(JsonArray choices, JsonObject usage) {
                            live.remove(self[0]);
                            if (ws.isClosed()) return;
                            ws.writeTextMessage(new JsonObject().put("id", requestId).put("done", true)
                                    .put("finish_reason", choices.getJsonObject(0).getString("finish_reason"))
                                    .put("choices", choices).put("usage", usage).encode());
                        }

                        @Override
                        public void failed(Exception e) {
                            live.remove(self[0]);
                            wsError(ws, requestId, 500, String.valueOf(e.getMessage()));
                        }
                    });
                    live.add(self[0]);
                    if (!self[0].submit(scheduler)) {
                        live.remove(self[0]);
                        wsError(ws, rid, 429, "the server is at capacity; retry after a second");
                    }
                } catch (ApiException e) {
                    wsError(ws, rid, e.status, e.getMessage());
                } catch (IllegalArgumentException e) {
                    wsError(ws, rid, 400, e.getMessage());
                }
            };
        }).onFailure(e -> error(ctx.response(), ApiException.invalid(null, "GET /v1/stream is a WebSocket: " + e.getMessage())));
    }

    private static void closeWs(ServerWebSocket ws, int code, String reason) {
        if (!ws.isClosed()) ws.close((short) code, reason.length() > 120 ? reason.substring(0, 120) : reason);
    }

    private static void wsError(ServerWebSocket ws, Object id, int status, String message) {
        if (!ws.isClosed()) {
            ws.writeTextMessage(new JsonObject().put("id", id).put("error", new JsonObject().put("status", status)
                    .put("message", message)).encode());
        }
    }

    @Override
    public void close() {
        if (server != null) server.close();
    }
}
