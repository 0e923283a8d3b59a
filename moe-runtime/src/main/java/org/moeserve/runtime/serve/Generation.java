package org.moeserve.runtime.serve;

import io.vertx.core.Context;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.moeserve.runtime.engine.SamplingParams;
import org.moeserve.runtime.model.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One request's generations: {@code n} choices (each its own scheduler job, seeds seed, seed+1, ...), their text
 * and, when asked, each token's log probability with its most likely alternatives, in OpenAI's two shapes (chat:
 * {@code logprobs.content[]}; completions: {@code tokens / token_logprobs / top_logprobs / text_offset}). Every
 * event is handed to the {@link Out} on the request's own context, so HTTP (JSON or SSE) and WebSocket writers never
 * race. Cancelling cancels every choice.
 */
final class Generation {
    /** Where the events go; all calls on the request's context. */
    interface Out {
        /** Text (and the logprobs of the tokens it completes, or null) for choice {@code index}. */
        void delta(int index, String text, JsonObject logprobs);

        /** Every choice has finished: the whole result (choices with text, finish_reason and logprobs) and usage. */
        void done(JsonArray choices, JsonObject usage);

        void failed(Exception e);
    }

    private final boolean chat;
    private final Tokenizer tokenizer;
    private final Context context;
    private final Out out;
    private final List<Scheduler.Job> jobs = new ArrayList<>();
    private final Choice[] choices;
    private final int promptTokens;
    private int finished;
    private boolean failed;

    private final class Choice {
        final StringBuilder text = new StringBuilder();
        final List<JsonObject> tokens = new ArrayList<>(), pending = new ArrayList<>();
        String finish;
        int completionTokens;
    }

    Generation(CompletionRequest req, int[] prompt, int maxTokens, Tokenizer tokenizer, Context context, Out out) {
        this.chat = req.chat();
        this.tokenizer = tokenizer;
        this.context = context;
        this.out = out;
        this.promptTokens = prompt.length;
        choices = new Choice[req.n()];
        for (int i = 0; i < choices.length; i++) {
            choices[i] = new Choice();
            SamplingParams s = req.sampling();
            SamplingParams si = i == 0 ? s : new SamplingParams(s.temperature(), s.topP(), s.seed() + i);
            jobs.add(new Scheduler.Job(prompt, maxTokens, si, req.stop(), sink(i)).withLogprobs(req.logprobs()));
        }
    }

    List<Scheduler.Job> jobs() { return jobs; }

    void cancel() { jobs.forEach(Scheduler.Job::cancel); }

    /** Queues every choice; false (and nothing queued) if the scheduler is full. */
    boolean submit(Scheduler scheduler) {
        for (int i = 0; i < jobs.size(); i++) {
            if (!scheduler.submit(jobs.get(i))) {
                for (int k = 0; k < i; k++) jobs.get(k).cancel();
                return false;
            }
        }
        return true;
    }

    private Scheduler.Sink sink(int index) {
        Choice c = choices[index];
        return new Scheduler.Sink() {
            @Override
            public void token(int id, float logprob, int[] top, float[] topLogprobs) {
                JsonObject t = tokenEntry(id, logprob);
                JsonArray alts = new JsonArray();
                for (int k = 0; k < top.length; k++) alts.add(tokenEntry(top[k], topLogprobs[k]));
                t.put("top_logprobs", alts);
                context.runOnContext(v -> {
                    c.tokens.add(t);
                    c.pending.add(t);
                });
            }

            @Override
            public void text(String delta) {
                context.runOnContext(v -> {
                    if (failed) return;
                    c.text.append(delta);
                    JsonObject lp = c.pending.isEmpty() ? null : logprobs(c.pending, c.text.length() - delta.length());
                    c.pending.clear();
                    out.delta(index, delta, lp);
                });
            }

            @Override
            public void done(Scheduler.Finish finish, int pt, int completionTokens) {
                context.runOnContext(v -> {
                    if (failed || finish == Scheduler.Finish.CANCELLED) return;
                    c.finish = finish == Scheduler.Finish.LENGTH ? "length" : "stop";
                    c.completionTokens = completionTokens;
                    if (!c.pending.isEmpty()) { // tokens whose text was held back (a stop string, a split character)
                        out.delta(index, "", logprobs(c.pending, c.text.length()));
                        c.pending.clear();
                    }
                    if (++finished == choices.length) allDone();
                });
            }

            @Override
            public void failed(Exception e) {
                context.runOnContext(v -> {
                    if (failed) return;
                    failed = true;
                    cancel();
                    out.failed(e);
                });
            }
        };
    }

    private void allDone() {
        JsonArray arr = new JsonArray();
        int completion = 0;
        for (int i = 0; i < choices.length; i++) {
            Choice c = choices[i];
            completion += c.completionTokens;
            JsonObject choice = new JsonObject().put("index", i).put("finish_reason", c.finish);
            if (chat) choice.put("message", new JsonObject().put("role", "assistant").put("content", c.text.toString()));
            else choice.put("text", c.text.toString());
            choice.put("logprobs", jobs.get(i).logprobs < 0 ? null : logprobs(c.tokens, 0));
            arr.add(choice);
        }
        out.done(arr, new JsonObject().put("prompt_tokens", promptTokens).put("completion_tokens", completion)
                .put("total_tokens", promptTokens + completion));
    }

    private JsonObject tokenEntry(int id, float logprob) {
        byte[] b = tokenizer.tokenBytes(id);
        JsonArray bytes = new JsonArray();
        for (byte x : b) bytes.add(x & 0xff);
        return new JsonObject().put("token", new String(b, StandardCharsets.UTF_8)).put("logprob", (double) logprob).put("bytes", bytes);
    }

    /** Chat: {content: [...]}; completions: the legacy parallel arrays, offsets from {@code offset} in the text. */
    private JsonObject logprobs(List<JsonObject> tokens, int offset) {
        if (chat) return new JsonObject().put("content", new JsonArray(new ArrayList<>(tokens)));
        JsonArray toks = new JsonArray(), lps = new JsonArray(), tops = new JsonArray(), offs = new JsonArray();
        int at = offset;
        for (JsonObject t : tokens) {
            toks.add(t.getString("token"));
            lps.add(t.getDouble("logprob"));
            JsonObject top = new JsonObject();
            for (Object o : t.getJsonArray("top_logprobs")) top.put(((JsonObject) o).getString("token"), ((JsonObject) o).getDouble("logprob"));
            tops.add(top);
            offs.add(at);
            at += t.getString("token").length();
        }
        return new JsonObject().put("tokens", toks).put("token_logprobs", lps).put("top_logprobs", tops).put("text_offset", offs);
    }
}
