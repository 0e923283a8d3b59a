package org.moeserve.runtime.serve;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.Sampler;
import org.moeserve.runtime.engine.SamplingParams;
import org.moeserve.runtime.engine.Sequence;
import org.moeserve.runtime.model.TextStream;
import org.moeserve.runtime.model.Tokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Continuous batching on one thread that owns the engine: every step runs one decode token for each running
 * sequence plus a chunk of the prompt of sequences still prefilling (at most {@code prefillChunk} prompt tokens per
 * step, so a long prompt never stalls running decodes for long). Sequences join when a slot is free and leave at
 * any token boundary (finished, stopped, or cancelled because the client went away), freeing their KV cache.
 * Requests wait in a bounded queue; a full queue refuses new ones (the server answers 429).
 *
 * <p>Expert-aware batching (Read-ME's expert-aware batching, ExpertFlow's token regrouping): up to
 * {@code maxRunning} sequences hold a KV cache, but a step decodes at most {@code stepBatch} of them. When more are
 * ready, the step is filled greedily with the sequence whose previous token's experts add the fewest new
 * (layer, expert) pairs to the step's set (a token's experts resemble its predecessor's), so the step touches fewer
 * distinct experts: fewer loads, fewer messages. A sequence that has waited twice its round-robin turn
 * (2 x ready / stepBatch steps) goes first, so none starves. Off, the step takes the longest-waiting sequences
 * (round robin).
 */
public final class Scheduler implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Scheduler.class);

    /** Why a generation ended, in OpenAI's words. */
    public enum Finish { STOP, LENGTH, CANCELLED }

    /** Receives a generation's output on the scheduler thread; implementations hand it to their own thread. */
    public interface Sink {
        void text(String delta);

        void done(Finish finish, int promptTokens, int completionTokens);

        void failed(Exception e);

        /**
         * With logprobs asked ({@link Job#withLogprobs}): each generated token, before its text, with its log
         * probability under the model (temperature 1) and the {@code top.length} most likely tokens and theirs.
         */
        default void token(int id, float logprob, int[] top, float[] topLogprobs) { }
    }

    /** One generation request. Stop strings end the text before them (they are not part of the output). */
    public static final class Job {
        final int[] prompt;
        final int maxTokens;
        final SamplingParams sampling;
        final List<String> stop;
        final Sink sink;
        final AtomicBoolean cancelled = new AtomicBoolean();
        final long submittedAt = System.nanoTime();
        Sequence seq;
        Sampler sampler;
        int prefilled, generated, lastToken;
        long lastStep = -1;
        int[][] guessedPath;          // the path guessed from the token itself (else its sequence's last path)
        long firstTokenAt, lastTokenAt;
        final TextStream text = new TextStream();
        final StringBuilder held = new StringBuilder(); // text not sent yet: it could be the start of a stop string

        public Job(int[] prompt, int maxTokens, SamplingParams sampling, List<String> stop, Sink sink) {
            this.prompt = prompt;
            this.maxTokens = maxTokens;
            this.sampling = sampling;
            this.stop = List.copyOf(stop);
            this.sink = sink;
        }

        int logprobs = -1; // alternatives per token to report; -1: none

        /** Ends the generation at the next token boundary (the client went away). */
        public void cancel() { cancelled.set(true); }

        /** Report each token's log probability and its {@code top} most likely alternatives to the sink. */
        public Job withLogprobs(int top) {
            this.logprobs = top;
            return this;
        }
    }


    private final Engine engine;
    private final Tokenizer tokenizer;
    private final int maxBatch, prefillChunk, stepBatch;
    private final boolean expertAware;
    private long stepCount;
    private final io.micrometer.core.instrument.DistributionSummary distinct;
    private final BlockingQueue<Job> queue;
    private final List<Job> running = new ArrayList<>();
    private final Thread thread;
    private volatile boolean open = true;
    private final Timer ttft, tpot, e2e;
    private final Counter tokens, cancelledJobs, steps;

    public Scheduler(Engine engine, Tokenizer tokenizer, int maxBatch, int maxQueue, int prefillChunk, MeterRegistry registry) {
        this(engine, tokenizer, maxBatch, maxBatch, false, maxQueue, prefillChunk, registry);
    }

    /**
     * @param maxRunning  sequences that hold a KV cache at once
     * @param stepBatch   sequences decoded per step (at most maxRunning)
     * @param expertAware choose each step's sequences to share experts (else longest-waiting first)
     */
    public Scheduler(Engine engine, Tokenizer tokenizer, int maxRunning, int stepBatch, boolean expertAware, int maxQueue,
                     int prefillChunk, MeterRegistry registry) {
        int maxBatch = maxRunning;
        if (stepBatch < 1 || stepBatch > maxRunning) {
            throw new IllegalArgumentException("step batch is " + stepBatch + " but must be in 1.." + maxRunning + " (max running)");
        }
        this.stepBatch = stepBatch;
        this.expertAware = expertAware;
        if (maxBatch < 1) throw new IllegalArgumentException("max batch is " + maxBatch + " but must be >= 1");
        if (maxQueue < 1) throw new IllegalArgumentException("max queue is " + maxQueue + " but must be >= 1");
        if (prefillChunk < 1) throw new IllegalArgumentException("prefill chunk is " + prefillChunk + " but must be >= 1");
        this.engine = engine;
        this.tokenizer = tokenizer;
        this.maxBatch = maxBatch;
        this.prefillChunk = prefillChunk;
        this.queue = new ArrayBlockingQueue<>(maxQueue);
        ttft = Timer.builder("moe.request.ttft").description("time to first token").publishPercentileHistogram().register(registry);
        tpot = Timer.builder("moe.request.tpot").description("time per output token").publishPercentileHistogram().register(registry);
        e2e = Timer.builder("moe.request.latency").description("whole generation").register(registry);
        tokens = Counter.builder("moe.tokens.generated").register(registry);
        cancelledJobs = Counter.builder("moe.requests.cancelled").register(registry);
        steps = Counter.builder("moe.scheduler.steps").register(registry);
        Gauge.builder("moe.queue.depth", queue, BlockingQueue::size).register(registry);
        Gauge.builder("moe.batch.running", this, s -> s.runningCount()).register(registry);
        distinct = io.micrometer.core.instrument.DistributionSummary.builder("moe.scheduler.distinct.experts")
                .description("distinct (layer, expert) pairs a decode step touches").register(registry);
        thread = Thread.ofPlatform().name("moe-scheduler").daemon().start(this::loop);
    }

    /** Queues a job; false if the queue is full (the caller answers 429). */
    public boolean submit(Job job) { return open && queue.offer(job); }

    public int queueDepth() { return queue.size(); }

    public synchronized int runningCount() { return running.size(); }

    /**
     * Admission: the one check of the context length (see {@link Engine#checkFits}); returns how many tokens the
     * request may generate, {@code maxTokens} capped by the room its prompt leaves.
     */
    public int admit(int promptTokens, int maxTokens) {
        engine.checkFits(promptTokens);
        return Math.min(maxTokens, engine.room(promptTokens));
    }

    private void loop() {
        while (open) {
            try {
                step();
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                LOG.error("scheduler step failed; failing the running requests", e);
                synchronized (this) {
                    for (Job j : running) j.sink.failed(e);
                    running.clear();
                }
            }
        }
    }

    private void step() throws InterruptedException {
        synchronized (this) {
            running.removeIf(j -> {
                if (!j.cancelled.get()) return false;
                cancelledJobs.increment();
                j.sink.done(Finish.CANCELLED, j.prompt.length, j.generated);
                return true;
            });
        }
        // admit: block only when there is nothing to run
        Job next = runningCount() == 0 ? queue.poll(100, TimeUnit.MILLISECONDS) : queue.poll();
        while (next != null) {
            if (!next.cancelled.get()) {
                next.seq = engine.newSequence();
                next.sampler = new Sampler(next.sampling);
                synchronized (this) { running.add(next); }
            }
            next = runningCount() < maxBatch ? queue.poll() : null;
        }
        List<Engine.Step> batch = new ArrayList<>();
        List<Job> owners = new ArrayList<>();
        int budget = prefillChunk;
        List<Job> snapshot;
        synchronized (this) { snapshot = new ArrayList<>(running); }
        List<Job> ready = new ArrayList<>();
        for (Job j : snapshot) {
            if (j.prefilled < j.prompt.length) {
                if (budget == 0) continue;
                int n = Math.min(budget, j.prompt.length - j.prefilled);
                batch.add(new Engine.Step(j.seq, java.util.Arrays.copyOfRange(j.prompt, j.prefilled, j.prefilled + n)));
                j.prefilled += n;
                budget -= n;
                owners.add(j);
            } else {
                ready.add(j);
            }
        }
        for (Job j : choose(ready)) {
            batch.add(new Engine.Step(j.seq, new int[]{j.lastToken}));
            owners.add(j);
            j.lastStep = stepCount;
        }
        if (batch.isEmpty()) return;
        boolean decodeOnly = budget == prefillChunk; // no prompt tokens went into this step
        Engine.Forward fwd = engine.forward(batch);
        float[][] logits = fwd.logits();
        stepCount++;
        steps.increment();
        if (decodeOnly) distinct.record(distinctExperts(fwd.routing()));
        long now = System.nanoTime();
        for (int i = 0; i < owners.size(); i++) {
            Job j = owners.get(i);
            if (j.prefilled < j.prompt.length) continue; // still prefilling: no token yet
            float[] lp = j.logprobs >= 0 ? org.moeserve.runtime.engine.Sampler.logSoftmax(logits[i]) : null;
            int tok = j.sampler.sample(logits[i]);
            if (lp != null) {
                int[] top = org.moeserve.routing.TopK.of(lp, j.logprobs);
                float[] topLp = new float[top.length];
                for (int t = 0; t < top.length; t++) topLp[t] = lp[top[t]];
                j.sink.token(tok, lp[tok], top, topLp);
            }
            j.generated++;
            tokens.increment();
            if (j.firstTokenAt == 0) {
                j.firstTokenAt = now;
                ttft.record(now - j.submittedAt, TimeUnit.NANOSECONDS);
            } else {
                tpot.record(now - j.lastTokenAt, TimeUnit.NANOSECONDS);
            }
            j.lastTokenAt = now;
            j.lastToken = tok;
            Finish f = emit(j, tok);
            if (f == null && j.generated >= j.maxTokens) f = Finish.LENGTH;
            if (f == null && engine.room(j.seq.length()) == 0) f = Finish.LENGTH;
            if (f != null) finish(j, f);
        }
    }

    /** Guesses the path of a sequence's next token from that token (null: use its previous token's path). */
    private volatile java.util.function.IntFunction<int[][]> pathGuess;

    /** Sets how the expert-aware grouping guesses a token's path from the token about to run. */
    public void setPathGuess(java.util.function.IntFunction<int[][]> guess) { this.pathGuess = guess; }

    /** The sequences to decode this step (see the class comment). */
    private List<Job> choose(List<Job> ready) {
        if (ready.size() <= stepBatch) return ready;
        List<Job> pool = new ArrayList<>(ready);
        pool.sort(java.util.Comparator.comparingLong(j -> j.lastStep)); // longest waiting first
        List<Job> chosen = new ArrayList<>();
        if (!expertAware) return new ArrayList<>(pool.subList(0, stepBatch));
        java.util.Set<Long> union = new java.util.HashSet<>();
        java.util.function.IntFunction<int[][]> guess = pathGuess;
        if (guess != null) for (Job j : pool) j.guessedPath = guess.apply(j.lastToken);
        for (Iterator<Job> it = pool.iterator(); it.hasNext() && chosen.size() < stepBatch; ) {
            Job j = it.next();
            long maxWait = 2L * ((ready.size() + stepBatch - 1) / stepBatch); // twice the round-robin period
            if (stepCount - j.lastStep > maxWait) { // waited long enough: runs now
                chosen.add(j);
                addPath(union, j);
                it.remove();
            }
        }
        while (chosen.size() < stepBatch) {
            Job best = null;
            int bestNew = Integer.MAX_VALUE;
            for (Job j : pool) { // pool is in waiting order, so ties go to the longest waiting
                int n = newExperts(union, j);
                if (n < bestNew) {
                    bestNew = n;
                    best = j;
                }
            }
            chosen.add(best);
            addPath(union, best);
            pool.remove(best);
        }
        return chosen;
    }

    private static int[][] path(Job j) { return j.guessedPath != null ? j.guessedPath : j.seq.lastPath(); }

    /** Distinct (MoE layer, expert) pairs a forward touched. */
    static int distinctExperts(org.moeserve.runtime.engine.Routing rt) {
        java.util.Set<Long> seen = new java.util.HashSet<>();
        for (int m = 0; m < rt.moeLayers(); m++) {
            for (int r = 0; r < rt.rows(); r++) for (int e : rt.experts(m, r)) seen.add((long) m << 32 | e);
        }
        return seen.size();
    }

    private static void addPath(java.util.Set<Long> union, Job j) {
        int[][] p = path(j);
        if (p == null) return;
        for (int l = 0; l < p.length; l++) if (p[l] != null) for (int e : p[l]) union.add((long) l << 32 | e);
    }

    private static int newExperts(java.util.Set<Long> union, Job j) {
        int[][] p = path(j);
        if (p == null) return 0;
        int n = 0;
        for (int l = 0; l < p.length; l++) if (p[l] != null) for (int e : p[l]) if (!union.contains((long) l << 32 | e)) n++;
        return n;
    }

    /** Mean distinct (layer, expert) pairs per decode-only step so far. */
    public double meanDistinctExperts() { return distinct.mean(); }

    /** Sends the token's text, holding back what could begin a stop string; STOP if one completed. */
    private Finish emit(Job j, int tok) {
        if (engine.config().isEos(tok)) {
            flushHeld(j, j.held.length());
            return Finish.STOP;
        }
        j.held.append(j.text.push(tokenizer.tokenBytes(tok)));
        for (String s : j.stop) {
            int at = j.held.indexOf(s);
            if (at >= 0) {
                flushHeld(j, at);
                j.held.setLength(0);
                return Finish.STOP;
            }
        }
        int keep = 0;
        for (String s : j.stop) {
            for (int len = Math.min(s.length() - 1, j.held.length()); len > keep; len--) {
                if (j.held.substring(j.held.length() - len).equals(s.substring(0, len))) {
                    keep = len;
                    break;
                }
            }
        }
        flushHeld(j, j.held.length() - keep);
        return null;
    }

    private static void flushHeld(Job j, int upTo) {
        if (upTo <= 0) return;
        j.sink.text(j.held.substring(0, upTo));
        j.held.delete(0, upTo);
    }

    private void finish(Job j, Finish f) {
        if (f == Finish.LENGTH) {
            j.held.append(j.text.finish());
            flushHeld(j, j.held.length());
        }
        e2e.record(System.nanoTime() - j.submittedAt, TimeUnit.NANOSECONDS);
        synchronized (this) { running.remove(j); }
        j.sink.done(f, j.prompt.length, j.generated);
    }

    @Override
    public void close() {
        open = false;
        thread.interrupt();
        try {
            thread.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (Job j : queue) j.sink.failed(new IllegalStateException("the server is shutting down"));
    }
}
