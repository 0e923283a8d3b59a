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

import java.util.UUID;

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
    /** Options, each with a default and a bound. */
    public record Options(String host, int port, String apiKey, long maxBodyBytes) {
        public Options {
            if (port < 0 || port > 65535) throw new IllegalArgumentException("port is " + port + " but must be in 0..65535");
            if (maxBodyBytes < 1024) throw new IllegalArgumentException("max body is " + maxBodyBytes + " bytes but must be >= 1024");
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
    }

    /** Starts listening; returns the bound port (useful with port 0). */
    public int start() throws Exception {
        Router router = Router.router(vertx);
        router.route().handler(BodyHandler.create().setBodyLimit(options.maxBodyBytes()));
        router.route("/v1/*").handler(this::authorize);
        router.get("/health").handler(this::health);
        router.get("/metrics").handler(this::metrics);
        router.get("/v1/models").handler(this::models);
        router.post("/v1/completions").handler(ctx -> complete(ctx, false));
        router.post("/v1/chat/completions").handler(ctx -> complete(ctx, true));
        router.get("/v1/stream").handler(this::webSocket);
        router.route().last().handler(ctx -> error(ctx.response(), new ApiException(404, "not_found", null,
                "no route " + ctx.request().method() + " " + ctx.request().path())));
        router.route().failureHandler(this::failure);
        server = vertx.createHttpServer(new HttpServerOptions().setHost(options.host()).setPort(options.port()))
                .requestHandler(router).listen().toCompletionStage().toCompletableFuture().get();
        return server.actualPort();
    }

    private void authorize(RoutingContext ctx) {
        if (options.apiKey() != null && !("Bearer " + options.apiKey()).equals(ctx.request().getHeader("Authorization"))) {
            error(ctx.response(), new ApiException(401, "invalid_api_key", null,
                    "this server needs an API key: send the header Authorization: Bearer <key>"));
            return;
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

    private void models(RoutingContext ctx) {
        ctx.json(new JsonObject().put("object", "list").put("data", new JsonArray().add(new JsonObject()
                .put("id", modelName).put("object", "model").put("created", created).put("owned_by", "moe-serve"))));
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

    /** Parses, checks the prompt against the context and queues; throws ApiException for the client. */
    private Scheduler.Job job(JsonObject body, boolean chat, Scheduler.Sink sink, CompletionRequest[] parsed) {
        CompletionRequest req = CompletionRequest.parse(body, chat);
        parsed[0] = req;
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
        int maxTokens;
        try {
            maxTokens = scheduler.admit(ids.length, req.maxTokens());
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid(chat ? "messages" : "prompt", e.getMessage());
        }
        return new Scheduler.Job(ids, maxTokens, req.sampling(), req.stop(), sink);
    }

    private static JsonObject bodyOf(RoutingContext ctx) {
        try {
            JsonObject b = ctx.body().asJsonObject();
            if (b == null) throw ApiException.invalid(null, "the request body must be a JSON object");
            return b;
        } catch (DecodeException | ClassCastException e) {
            throw ApiException.invalid(null, "the request body is not valid JSON: " + e.getMessage());
        }
    }

    private void complete(RoutingContext ctx, boolean chat) {
        HttpServerResponse resp = ctx.response();
        Context context = vertx.getOrCreateContext();
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "").substring(0, 24);
        long now = System.currentTimeMillis() / 1000;
        CompletionRequest[] parsed = new CompletionRequest[1];
        StringBuilder full = new StringBuilder();
        boolean[] started = {false};
        Scheduler.Sink sink = new Scheduler.Sink() {
            @Override
            public void text(String delta) {
                context.runOnContext(v -> {
                    if (resp.closed()) return;
                    if (parsed[0].stream()) {
                        boolean first = !started[0];
                        if (first) {
                            started[0] = true;
                            resp.setChunked(true).putHeader("content-type", "text/event-stream").putHeader("cache-control", "no-cache");
                        }
                        resp.write("data: " + chunk(id, now, chat, delta, null, first).encode() + "\n\n");
                    } else {
                        full.append(delta);
                    }
                });
            }

            @Override
            public void done(Scheduler.Finish finish, int promptTokens, int completionTokens) {
                context.runOnContext(v -> {
                    if (resp.closed() || finish == Scheduler.Finish.CANCELLED) return;
                    count(200);
                    String reason = finish == Scheduler.Finish.LENGTH ? "length" : "stop";
                    JsonObject usage = new JsonObject().put("prompt_tokens", promptTokens)
                            .put("completion_tokens", completionTokens).put("total_tokens", promptTokens + completionTokens);
                    if (parsed[0].stream()) {
                        if (!started[0]) resp.setChunked(true).putHeader("content-type", "text/event-stream");
                        resp.write("data: " + chunk(id, now, chat, "", reason, false).put("usage", usage).encode() + "\n\n");
                        resp.end("data: [DONE]\n\n");
                    } else {
                        JsonObject choice = new JsonObject().put("index", 0).put("finish_reason", reason);
                        if (chat) choice.put("message", new JsonObject().put("role", "assistant").put("content", full.toString()));
                        else choice.put("text", full.toString()).putNull("logprobs");
                        resp.putHeader("content-type", "application/json").end(new JsonObject().put("id", id)
                                .put("object", chat ? "chat.completion" : "text_completion").put("created", now)
                                .put("model", modelName).put("choices", new JsonArray().add(choice)).put("usage", usage).encode());
                    }
                });
            }

            @Override
            public void failed(Exception e) {
                context.runOnContext(v -> error(resp, new ApiException(500, "server_error", null, String.valueOf(e.getMessage()))));
            }
        };
        Scheduler.Job job;
        try {
            job = job(bodyOf(ctx), chat, sink, parsed);
        } catch (ApiException e) {
            error(resp, e);
            return;
        } catch (IllegalArgumentException e) {
            error(resp, ApiException.invalid(null, e.getMessage()));
            return;
        }
        resp.closeHandler(v -> job.cancel());
        if (!scheduler.submit(job)) {
            error(resp, new ApiException(429, "rate_limit_exceeded", null,
                    "the server is at capacity (" + scheduler.queueDepth() + " requests waiting); retry after a second"));
        }
    }

    private JsonObject chunk(String id, long created, boolean chat, String delta, String finish, boolean first) {
        JsonObject choice = new JsonObject().put("index", 0).put("finish_reason", finish);
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

    private void webSocket(RoutingContext ctx) {
        ctx.request().toWebSocket().onSuccess(ws -> {
            Context context = vertx.getOrCreateContext();
            ws.textMessageHandler(msg -> {
                Scheduler.Sink sink = new Scheduler.Sink() {
                    @Override
                    public void text(String delta) {
                        context.runOnContext(v -> { if (!ws.isClosed()) ws.writeTextMessage(new JsonObject().put("text", delta).encode()); });
                    }

                    @Override
                    public void done(Scheduler.Finish finish, int promptTokens, int completionTokens) {
                        context.runOnContext(v -> {
                            if (ws.isClosed()) return;
                            ws.writeTextMessage(new JsonObject().put("done", true)
                                    .put("finish_reason", finish == Scheduler.Finish.LENGTH ? "length" : "stop")
                                    .put("usage", new JsonObject().put("prompt_tokens", promptTokens)
                                            .put("completion_tokens", completionTokens)).encode());
                        });
                    }

                    @Override
                    public void failed(Exception e) {
                        context.runOnContext(v -> wsError(ws, 500, e.getMessage()));
                    }
                };
                try {
                    JsonObject body;
                    try {
                        body = new JsonObject(msg);
                    } catch (DecodeException e) {
                        throw ApiException.invalid(null, "the message is not valid JSON: " + e.getMessage());
                    }
                    Scheduler.Job job = job(body, body.containsKey("messages"), sink, new CompletionRequest[1]);
                    ws.closeHandler(v -> job.cancel());
                    if (!scheduler.submit(job)) wsError(ws, 429, "the server is at capacity; retry after a second");
                } catch (ApiException e) {
                    wsError(ws, e.status, e.getMessage());
                } catch (IllegalArgumentException e) {
                    wsError(ws, 400, e.getMessage());
                }
            });
        }).onFailure(e -> error(ctx.response(), ApiException.invalid(null, "GET /v1/stream is a WebSocket: " + e.getMessage())));
    }

    private static void wsError(ServerWebSocket ws, int status, String message) {
        if (!ws.isClosed()) ws.writeTextMessage(new JsonObject().put("error", new JsonObject().put("status", status).put("message", message)).encode());
    }

    @Override
    public void close() {
        if (server != null) server.close();
    }
}
