package org.moeserve.runtime.serve;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.Test;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Generator;
import org.moeserve.runtime.engine.LookaheadGates;
import org.moeserve.runtime.engine.SamplingParams;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Continuous and expert-aware batching never change a sequence's tokens; expert-aware steps share experts. */
class SchedulerTest {
    static final String[] PROMPTS = {"In the beginning", "hacker n.", "A fool and", "def main():", "And it came to pass",
            "kludge /kluhj/", "Q: How many", "import sys\n", "Thou shalt not", "%\nThe best"};

    /** Runs every prompt through a scheduler; returns each text and the mean distinct experts per decode step. */
    static Object[] run(MoeModel m, Tokenizer tok, int running, int step, boolean aware) throws Exception {
        return run(m, tok, running, step, aware, null);
    }

    static Object[] run(MoeModel m, Tokenizer tok, int running, int step, boolean aware,
                        java.util.function.IntFunction<int[][]> guess) throws Exception {
        SimpleMeterRegistry reg = new SimpleMeterRegistry();
        try (Parallel par = new Parallel(1);
             Scheduler s = new Scheduler(new Engine(m, par), tok, running, step, aware, 64, 8, reg)) {
            if (guess != null) s.setPathGuess(guess);
            List<CompletableFuture<String>> out = new ArrayList<>();
            for (String p : PROMPTS) {
                CompletableFuture<String> f = new CompletableFuture<>();
                StringBuilder sb = new StringBuilder();
                out.add(f);
                assertTrue(s.submit(new Scheduler.Job(tok.encode(p), 40, SamplingParams.GREEDY, List.of(), new Scheduler.Sink() {
                    public void text(String d) { sb.append(d); }

                    public void done(Scheduler.Finish fin, int pt, int ct) { f.complete(sb.toString()); }

                    public void failed(Exception e) { f.completeExceptionally(e); }
                })));
            }
            List<String> texts = new ArrayList<>();
            for (CompletableFuture<String> f : out) texts.add(f.get(120, TimeUnit.SECONDS));
            return new Object[]{texts, s.meanDistinctExperts()};
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void groupingChangesWhoRunsWhenButNeverWhatTheyGenerate() throws Exception {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv")); Tokenizer tok = Tokenizer.load(m.dir(), m.config())) {
            // the reference: each prompt alone
            List<String> alone = new ArrayList<>();
            try (Parallel par = new Parallel(1)) {
                Generator g = new Generator(new Engine(m, par));
                for (String p : PROMPTS) {
                    int[] ids = g.generate(new Generator.Request(tok.encode(p), 40, SamplingParams.GREEDY, true), t -> { }).tokens();
                    alone.add(tok.decode(java.util.Arrays.stream(ids).filter(t -> !m.config().isEos(t)).toArray()));
                }
            }
            Object[] off = run(m, tok, 10, 4, false), on = run(m, tok, 10, 4, true);
            assertEquals(alone, off[0], "round robin");
            assertEquals(alone, on[0], "expert-aware");
            double distinctOff = (double) off[1], distinctOn = (double) on[1];
            System.out.println("distinct experts per decode step: expert-aware " + distinctOn + ", round robin " + distinctOff);
            assertTrue(distinctOn < distinctOff, "expert-aware steps touch fewer experts: " + distinctOn + " vs " + distinctOff);
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void pathGuessesFromTheTokenItselfOrderWorkButNeverChangeIt() throws Exception {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv")); Tokenizer tok = Tokenizer.load(m.dir(), m.config())) {
            java.util.function.IntFunction<int[][]> gate = LookaheadGates.fromToken(m);
            java.util.concurrent.atomic.AtomicInteger asked = new java.util.concurrent.atomic.AtomicInteger();
            java.util.function.IntFunction<int[][]> counting = t -> {
                asked.incrementAndGet();
                int[][] p = gate.apply(t);
                assertEquals(m.config().moeLayers(), p.length, "a guess per MoE layer");
                for (int[] layer : p) assertEquals(m.config().topK(), layer.length);
                return p;
            };
            Object[] plain = run(m, tok, 10, 4, false), guessed = run(m, tok, 10, 4, true, counting);
            assertEquals(plain[0], guessed[0], "the same texts with pre-gating guesses (what --expert-aware uses)");
            assertTrue(asked.get() > 0, "the scheduler asked for guesses");
            assertTrue((double) guessed[1] > 0, "decode steps were measured");
        }
    }

    @Test
    void aStepHoldingTheLastPrefillChunkIsNotCountedAsDecode() throws Exception {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv")); Tokenizer tok = Tokenizer.load(m.dir(), m.config());
             Parallel par = new Parallel(1)) {
            SimpleMeterRegistry reg = new SimpleMeterRegistry();
            int[] prompt = tok.encode("In the beginning God created"); // 28 tokens: prefill chunks of 8, 8, 8, 4
            CompletableFuture<Integer> done = new CompletableFuture<>();
            try (Scheduler s = new Scheduler(new Engine(m, par), tok, 1, 1, false, 4, 8, reg)) {
                s.submit(new Scheduler.Job(prompt, 10, SamplingParams.GREEDY, List.of(), new Scheduler.Sink() {
                    public void text(String d) { }

                    public void done(Scheduler.Finish fin, int pt, int ct) { done.complete(ct); }

                    public void failed(Exception e) { done.completeExceptionally(e); }
                }));
                int generated = done.get(60, TimeUnit.SECONDS);
                assertEquals(10, generated);
            }
            // the first token comes from the last prefill step; the other 9 from decode-only steps
            assertEquals(9, reg.find("moe.scheduler.distinct.experts").summary().count());
            assertEquals(4 + 9, (long) reg.find("moe.scheduler.steps").counter().count());
        }
    }
}
