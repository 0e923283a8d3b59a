package org.moeserve.runtime.engine;

import org.moeserve.runtime.kernel.Kernels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.Family;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.MoeModel;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The layer loop. One call of {@link #forward} runs a batch of steps (each: a sequence and its new tokens) as one
 * set of rows through every layer: a prefill is one step with many tokens, batched decode is many steps with one
 * token each, and the two mix freely. Per layer:
 *
 * <pre>
 *   xb = RMSNorm(x)                                   rows x hidden
 *   q,k,v = xb Wq^T, xb Wk^T, xb Wv^T ; q/k norm ; RoPE ; k,v -> each sequence's KV cache
 *   x += causal GQA attention(q, cache) Wo^T
 *   xb = RMSNorm(x)
 *   MoE: router softmax -> top-k (observers told) -> rows grouped by expert -> SwiGLU expert -> weighted sum
 *   x += that
 * </pre>
 *
 * Experts come only through the {@link ExpertStore}. A row's arithmetic never depends on which other rows share
 * its batch or how many threads run, so batched, incremental and single-sequence runs give the same bits.
 * Not thread-safe: one forward at a time (the scheduler owns the engine).
 */
public final class Engine {
    private final MoeModel model;
    private final ModelConfig c;
    private final ExpertStore experts;
    private final Parallel par;
    private final Rope rope;
    private final List<RoutingObserver> observers = new CopyOnWriteArrayList<>();
    private final List<LayerObserver> layerObservers = new CopyOnWriteArrayList<>();
    private final AtomicLong nextSequenceId = new AtomicLong();
    private volatile ExpertExecutor executor = new LocalExecutor();

    /** A sequence and the tokens to run through it now. */
    public record Step(Sequence sequence, int[] tokens) {
        public Step {
            if (tokens.length == 0) throw new IllegalArgumentException("a step needs at least one token");
            tokens = tokens.clone();
        }
    }

    public Engine(MoeModel model, ExpertStore experts, Parallel par) {
        this.model = model;
        this.c = model.config();
        this.experts = experts;
        this.par = par;
        this.rope = new Rope(c.headDim(), c.ropeTheta(), c.maxPositions());
    }

    public Engine(MoeModel model, Parallel par) { this(model, new ResidentExpertStore(model), par); }

    public MoeModel model() { return model; }

    /** Who computes the experts (this thread's store by default; expert parallelism otherwise). */
    public void setExecutor(ExpertExecutor executor) { this.executor = executor == null ? new LocalExecutor() : executor; }

    public ExpertExecutor executor() { return executor; }

    public ModelConfig config() { return c; }

    public void addObserver(RoutingObserver o) { observers.add(o); }

    public void removeObserver(RoutingObserver o) { observers.remove(o); }

    public void addLayerObserver(LayerObserver o) { layerObservers.add(o); }

    public void removeLayerObserver(LayerObserver o) { layerObservers.remove(o); }

    public Sequence newSequence() {
        return new Sequence(nextSequenceId.getAndIncrement(), new KVCache(c.layers(), c.kvDim(), 64, c.maxPositions()));
    }

    /** Runs the steps; returns the logits of each step's last token, one row per step. */
    public float[][] forward(List<Step> steps) { return forward(steps, false); }

    /**
     * Runs the steps. With {@code allPositions} the logits of every token come back (rows in step order, then
     * token order); otherwise those of each step's last token.
     */
    public float[][] forward(List<Step> steps, boolean allPositions) {
        // ---- rows: (sequence, position, token) ----
        int rows = 0;
        for (Step s : steps) rows += s.tokens().length;
        Sequence[] seqOf = new Sequence[rows];
        int[] pos = new int[rows];
        int[] tok = new int[rows];
        int r = 0;
        for (Step s : steps) {
            Sequence seq = s.sequence();
            int end = seq.length() + s.tokens().length;
            if (end > c.maxPositions()) {
                throw new IllegalArgumentException("sequence " + seq.id() + " would reach " + end + " tokens but the "
                        + "model's context is " + c.maxPositions() + " (max_position_embeddings); shorten the prompt "
                        + "or ask for fewer tokens");
            }
            for (int i = 0; i < s.tokens().length; i++, r++) {
                int t = s.tokens()[i];
                if (t < 0 || t >= c.vocabSize()) {
                    throw new IllegalArgumentException("token id " + t + " is out of range; the vocabulary has ids 0.."
                            + (c.vocabSize() - 1));
                }
                seqOf[r] = seq;
                pos[r] = seq.length() + i;
                tok[r] = t;
            }
        }
        for (Step s : steps) s.sequence().cache.ensureCapacity(s.sequence().length() + s.tokens().length);

        int h = c.hiddenSize();
        float[][] x = new float[rows][h];
        float[][] xb = new float[rows][h];
        float[][] out = new float[rows][h];
        float[][] q = new float[rows][c.qDim()];
        float[][] k = new float[rows][c.kvDim()];
        float[][] v = new float[rows][c.kvDim()];
        float[][] att = new float[rows][c.qDim()];
        for (r = 0; r < rows; r++) model.embed().row(tok[r], x[r]);
        long[] seqIds = new long[rows];
        for (r = 0; r < rows; r++) seqIds[r] = seqOf[r].id();
        ExpertExecutor.StepRun run = executor.begin(seqIds);

        for (int l = 0; l < c.layers(); l++) {
            MoeModel.Layer layer = model.layer(l);
            // ---- attention ----
            for (r = 0; r < rows; r++) Kernels.rmsnorm(xb[r], x[r], 0, layer.inputNorm(), h, c.rmsNormEps());
            Kernels.matmul(layer.wq(), xb, rows, q, par);
            Kernels.matmul(layer.wk(), xb, rows, k, par);
            Kernels.matmul(layer.wv(), xb, rows, v, par);
            normQk(layer, q, k, rows);
            for (r = 0; r < rows; r++) {
                float[] cos = rope.cos[pos[r]], sin = rope.sin[pos[r]];
                for (int hd = 0; hd < c.heads(); hd++) Kernels.rope(q[r], hd * c.headDim(), c.headDim(), cos, sin);
                for (int hd = 0; hd < c.kvHeads(); hd++) Kernels.rope(k[r], hd * c.headDim(), c.headDim(), cos, sin);
                KVCache cache = seqOf[r].cache;
                System.arraycopy(k[r], 0, cache.k[l], pos[r] * c.kvDim(), c.kvDim());
                System.arraycopy(v[r], 0, cache.v[l], pos[r] * c.kvDim(), c.kvDim());
            }
            attention(l, q, att, seqOf, pos, rows);
            Kernels.matmul(layer.wo(), att, rows, out, par);
            for (r = 0; r < rows; r++) Kernels.axpy(1f, out[r], 0, x[r], 0, h);

            // ---- MLP: MoE block or dense ----
            for (r = 0; r < rows; r++) Kernels.rmsnorm(xb[r], x[r], 0, layer.postAttentionNorm(), h, c.rmsNormEps());
            if (layer.sparse()) moe(l, layer, xb, out, seqOf, pos, rows, run);
            else swigluMlp(layer.dense(), xb, rows, out, par);
            for (r = 0; r < rows; r++) Kernels.axpy(1f, out[r], 0, x[r], 0, h);
            for (LayerObserver o : layerObservers) {
                for (r = 0; r < rows; r++) o.onLayerEnd(seqOf[r].id(), pos[r], l, x[r].clone());
            }
        }

        run.end();
        // ---- final norm and logits for the rows asked for ----
        int[] pick;
        if (allPositions) {
            pick = new int[rows];
            for (r = 0; r < rows; r++) pick[r] = r;
        } else {
            pick = new int[steps.size()];
            int end = 0;
            for (int s = 0; s < steps.size(); s++) {
                end += steps.get(s).tokens().length;
                pick[s] = end - 1;
            }
        }
        float[][] normed = new float[pick.length][h];
        for (int i = 0; i < pick.length; i++) Kernels.rmsnorm(normed[i], x[pick[i]], 0, model.finalNorm(), h, c.rmsNormEps());
        float[][] logits = new float[pick.length][c.vocabSize()];
        Kernels.matmul(model.lmHead(), normed, pick.length, logits, par);
        for (Step s : steps) s.sequence().append(s.tokens());
        return logits;
    }

    private void normQk(MoeModel.Layer layer, float[][] q, float[][] k, int rows) {
        Family.QkNorm mode = c.family().qkNorm;
        if (mode == Family.QkNorm.NONE) return;
        int hd = c.headDim();
        for (int r = 0; r < rows; r++) {
            if (mode == Family.QkNorm.PER_HEAD) {
                for (int i = 0; i < c.heads(); i++) Kernels.rmsnorm(q[r], q[r], i * hd, layer.qNorm(), hd, c.rmsNormEps());
                for (int i = 0; i < c.kvHeads(); i++) Kernels.rmsnorm(k[r], k[r], i * hd, layer.kNorm(), hd, c.rmsNormEps());
            } else {
                Kernels.rmsnorm(q[r], q[r], 0, layer.qNorm(), c.qDim(), c.rmsNormEps());
                Kernels.rmsnorm(k[r], k[r], 0, layer.kNorm(), c.kvDim(), c.rmsNormEps());
            }
        }
    }

    /** Causal grouped-query attention of each row over its sequence's cache, positions 0..pos. */
    private void attention(int l, float[][] q, float[][] att, Sequence[] seqOf, int[] pos, int rows) {
        int hd = c.headDim(), kvDim = c.kvDim(), group = c.heads() / c.kvHeads();
        float scale = (float) (1.0 / Math.sqrt(hd));
        long work = 0; // multiply-adds: below ~32k a fork costs more than it saves (single-stream decode)
        for (int r = 0; r < rows; r++) work += 2L * (pos[r] + 1) * c.qDim();
        Parallel p = work < (1 << 15) ? Parallel.SERIAL : par;
        p.forEach(rows * c.heads(), task -> {
            int r = task / c.heads(), head = task % c.heads();
            int n = pos[r] + 1;
            Kernels.attention(q[r], head * hd, seqOf[r].cache.k[l], seqOf[r].cache.v[l], kvDim, (head / group) * hd, n,
                    hd, scale, new float[n], att[r], head * hd);
        });
    }

    /** One expert applied to rows of x, on this thread (for executors that run experts elsewhere: cluster members). */
    public static void expertForward(ExpertWeights w, float[][] x, int rows, float[][] out) { swigluMlp(w, x, rows, out, Parallel.SERIAL); }

    /** down(silu(gate x) * up x) for rows of x: a dense layer, or one expert's group of rows. */
    static void swigluMlp(ExpertWeights w, float[][] x, int rows, float[][] out, Parallel par) {
        int inter = w.gate().rows();
        float[][] g = new float[rows][inter], u = new float[rows][inter];
        Kernels.matmul(w.gate(), x, rows, g, par);
        Kernels.matmul(w.up(), x, rows, u, par);
        for (int r = 0; r < rows; r++) Kernels.swiglu(g[r], u[r], inter);
        Kernels.matmul(w.down(), g, rows, out, par);
    }

    /** The MoE block: route, group rows by expert, run each expert once over its group, combine. */
    private void moe(int l, MoeModel.Layer layer, float[][] xb, float[][] out, Sequence[] seqOf, int[] pos, int rows,
                     ExpertExecutor.StepRun run) {
        int e = c.experts(), topK = c.topK(), h = c.hiddenSize();
        // ---- route: softmax over all experts, top-k, optional renormalisation ----
        float[][] probs = new float[rows][e];
        Kernels.matmul(layer.router(), xb, rows, probs, par);
        int[][] idx = new int[rows][topK];
        float[][] w = new float[rows][topK];
        int[] count = new int[e];
        for (int r = 0; r < rows; r++) {
            Kernels.softmax(probs[r], 0, e);
            Kernels.topK(probs[r], e, topK, idx[r], w[r]);
            if (c.normTopKProb()) {
                float sum = 0;
                for (int j = 0; j < topK; j++) sum += w[r][j];
                for (int j = 0; j < topK; j++) w[r][j] /= sum;
            }
            for (int j = 0; j < topK; j++) count[idx[r][j]]++;
        }
        for (RoutingObserver o : observers) {
            for (int r = 0; r < rows; r++) o.onRouting(seqOf[r].id(), pos[r], l, idx[r].clone(), w[r].clone());
        }
        float[][][] contrib = new float[rows][topK][];
        run.run(l, xb, rows, idx, contrib);
        // ---- combine in the row's own top-k order (independent of grouping) ----
        for (int r = 0; r < rows; r++) {
            java.util.Arrays.fill(out[r], 0f);
            for (int j = 0; j < topK; j++) Kernels.axpy(w[r][j], contrib[r][j], 0, out[r], 0, h);
        }
    }

    /** Every expert here, from the engine's store: rows grouped by expert, each expert run once over its group. */
    private final class LocalExecutor implements ExpertExecutor, ExpertExecutor.StepRun {
        @Override
        public StepRun begin(long[] sequences) { return this; }

        @Override
        public void run(int l, float[][] xb, int rows, int[][] idx, float[][][] contrib) {
            int e = c.experts(), topK = c.topK(), h = c.hiddenSize();
            int[] count = new int[e];
            for (int r = 0; r < rows; r++) for (int j = 0; j < topK; j++) count[idx[r][j]]++;
            // ---- group: members[e] = rows routed to expert e, slot[e] = which of the row's k choices ----
            int[][] members = new int[e][], slot = new int[e][];
            List<Integer> active = new ArrayList<>();
            for (int ex = 0; ex < e; ex++) {
                if (count[ex] == 0) continue;
                members[ex] = new int[count[ex]];
                slot[ex] = new int[count[ex]];
                count[ex] = 0;
                active.add(ex);
            }
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < topK; j++) {
                    int ex = idx[r][j];
                    members[ex][count[ex]] = r;
                    slot[ex][count[ex]++] = j;
                }
            }
            // ---- compute: many active experts -> one per thread; few -> threads inside each product ----
            boolean acrossExperts = active.size() >= par.threads();
            Parallel inner = acrossExperts ? Parallel.SERIAL : par;
            Parallel.Body runExpert = a -> {
                int ex = active.get(a);
                int n = members[ex].length;
                float[][] xg = new float[n][];
                for (int i = 0; i < n; i++) xg[i] = xb[members[ex][i]];
                float[][] y = new float[n][h];
                ExpertWeights weights = experts.acquire(l, ex);
                try {
                    swigluMlp(weights, xg, n, y, inner);
                } finally {
                    experts.release(l, ex);
                }
                for (int i = 0; i < n; i++) contrib[members[ex][i]][slot[ex][i]] = y[i];
            };
            if (acrossExperts) par.forEach(active.size(), runExpert);
            else for (int a = 0; a < active.size(); a++) runExpert.run(a);
        }
    }
}
