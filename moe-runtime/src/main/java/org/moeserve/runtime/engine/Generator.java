package org.moeserve.runtime.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Prompt in, tokens out, for one or several sequences at once: prefill every prompt (one forward over all of
 * them), then decode one token per live sequence per step, batched. Stops a sequence at EOS, at its token
 * budget or at the model's context length.
 */
public final class Generator {
    /** Why a sequence stopped. */
    public enum Stop { EOS, MAX_TOKENS, CONTEXT }

    public record Request(int[] prompt, int maxTokens, SamplingParams sampling, boolean stopAtEos) {
        public Request {
            if (prompt.length == 0) throw new IllegalArgumentException("the prompt is empty; give at least one token");
            if (maxTokens < 0) throw new IllegalArgumentException("max_tokens is " + maxTokens + " but must be >= 0");
        }
    }

    public record Result(int[] tokens, Stop stop) {}

    /** Totals over one {@link #generate} call; nanoseconds of wall time. */
    public record Timing(int promptTokens, long prefillNanos, int decodeTokens, long decodeNanos) {
        public double prefillTokensPerSecond() { return promptTokens / (prefillNanos / 1e9); }

        public double decodeTokensPerSecond() { return decodeTokens / (decodeNanos / 1e9); }
    }

    private final Engine engine;
    private Timing lastTiming;

    public Generator(Engine engine) { this.engine = engine; }

    public Timing lastTiming() { return lastTiming; }

    public Result generate(Request request, IntConsumer onToken) {
        return generate(List.of(request), (i, t) -> onToken.accept(t)).getFirst();
    }

    @FunctionalInterface
    public interface TokenSink { void accept(int request, int token); }

    public List<Result> generate(List<Request> requests, TokenSink onToken) {
        int n = requests.size();
        Sequence[] seqs = new Sequence[n];
        Sampler[] samplers = new Sampler[n];
        List<List<Integer>> out = new ArrayList<>();
        Stop[] stop = new Stop[n];
        List<Engine.Step> steps = new ArrayList<>();
        int promptTokens = 0;
        for (int i = 0; i < n; i++) {
            Request r = requests.get(i);
            engine.checkFits(r.prompt().length);
            seqs[i] = engine.newSequence();
            samplers[i] = new Sampler(r.sampling());
            out.add(new ArrayList<>());
            steps.add(new Engine.Step(seqs[i], r.prompt()));
            promptTokens += r.prompt().length;
        }
        long t0 = System.nanoTime();
        float[][] logits = engine.forward(steps).logits();
        long t1 = System.nanoTime();
        int decoded = 0;
        int[] live = new int[n];
        int nLive = 0;
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            if (requests.get(i).maxTokens() == 0) stop[i] = Stop.MAX_TOKENS;
            else live[nLive++] = i;
        }
        float[][] cur = logits;
        int[] curIdx = new int[n];
        for (int i = 0; i < n; i++) curIdx[i] = i;
        while (nLive > 0) {
            // sample one token for each live sequence from its logits
            steps.clear();
            int s = 0, keep = 0;
            for (int j = 0; j < nLive; j++) {
                int i = live[j];
                int tok = samplers[i].sample(cur[curIdx[i]]);
                out.get(i).add(tok);
                onToken.accept(i, tok);
                Request r = requests.get(i);
                if (r.stopAtEos() && engine.config().isEos(tok)) stop[i] = Stop.EOS;
                else if (out.get(i).size() >= r.maxTokens()) stop[i] = Stop.MAX_TOKENS;
                else if (engine.room(seqs[i].length()) == 0) stop[i] = Stop.CONTEXT;
                else {
                    live[keep++] = i;
                    next[i] = tok;
                }
            }
            nLive = keep;
            if (nLive == 0) break;
            for (int j = 0; j < nLive; j++) {
                steps.add(new Engine.Step(seqs[live[j]], new int[]{next[live[j]]}));
                curIdx[live[j]] = s++;
            }
            cur = engine.forward(steps).logits();
            decoded += nLive;
        }
        long t2 = System.nanoTime();
        // decode tokens: rows run by decode steps (each sequence's first token came from prefill's logits)
        lastTiming = new Timing(promptTokens, t1 - t0, decoded, t2 - t1);
        List<Result> results = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            results.add(new Result(out.get(i).stream().mapToInt(Integer::intValue).toArray(), stop[i]));
        }
        return results;
    }
}
