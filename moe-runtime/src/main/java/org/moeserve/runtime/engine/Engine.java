package org.moeserve.runtime.engine;

import org.moeserve.comms.ExpertGroups;
import org.moeserve.routing.Router;
import org.moeserve.runtime.kernel.Kernels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.Family;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.MoeModel;
import org.moeserve.runtime.model.Tensor;

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
 *   MoE: {@link Router} (gate, softmax, top-k) -> executor: rows grouped by expert ({@link ExpertGroups}),
 *        each expert's {@link ExpertFfn} once over its group -> weighted sum in each row's top-k order
 *   x += that ; listeners told the MoE layer is done
 * </pre>
 *
 * The forward returns the logits and its {@link Routing} (what every row routed at every MoE layer). Model layer
 * numbers stay inside this class: everything it hands out (routing, the store, the executor, listeners) numbers MoE
 * layers. Experts come only through the {@link ExpertStore}. A row's arithmetic never depends on which other rows share
 * its batch or how many threads run, so batched, incremental and single-sequence runs give the same bits.
 * Not thread-safe: one forward at a time (the scheduler owns the engine).
 */
public final class Engine {
    private final MoeModel model;
    private final ModelConfig c;
    private final ExpertStore experts;
    private final Parallel par;
    private final Rope rope;
    private final Router[] routers;   // per MoE layer
    private final int[] moeIndex;     // model layer -> MoE layer, -1 if dense
    private final List<MoeLayerListener> listeners = new CopyOnWriteArrayList<>();
    private final AtomicLong nextSequenceId = new AtomicLong();
    private volatile ExpertExecutor executor = new LocalExecutor();
    private int context;              // tokens a sequence may hold: max_position_embeddings unless limited
    private volatile RoutingReplay replay; // routing from a trace instead of the gates, or null

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
        this.rope = new Rope(c.ropeDim(), c.ropeTheta(), c.maxPositions(), c.yarn());
        this.routers = RouterGate.of(model, par);
        this.moeIndex = c.moeLayerIndex();
        this.context = c.maxPositions();
    }

    /**
     * Limits every sequence to {@code tokens} (at most the model's max_position_embeddings): a server's memory bound
     * when the config claims a context far beyond what it will serve (DeepSeek's 163,840). Call before any sequence.
     */
    public void limitContext(int tokens) {
        if (tokens < 2 || tokens > c.maxPositions()) {
            throw new IllegalArgumentException("--max-context is " + tokens + " but must be in 2.." + c.maxPositions()
                    + " (the model's max_position_embeddings)");
        }
        this.context = tokens;
    }

    /** Routes by a recorded trace instead of the gates (null: the gates again). See {@link RoutingReplay}. */
    public void setRoutingReplay(RoutingReplay replay) { this.replay = replay; }

    /** Tokens a sequence may hold. */
    public int context() { return context; }

    /** What a forward returns: the logits asked for and what every row routed. */
    public record Forward(float[][] logits, Routing routing) {}

    public Engine(MoeModel model, Parallel par) { this(model, new ResidentExpertStore(model), par); }

    public MoeModel model() { return model; }

    /** Who computes the experts (this thread's store by default; expert parallelism otherwise). */
    public void setExecutor(ExpertExecutor executor) { this.executor = executor == null ? new LocalExecutor() : executor; }

    public ExpertExecutor executor() { return executor; }

    public ModelConfig config() { return c; }

    /** The router of a MoE layer (the one the lookahead-gate predictor guesses with). */
    public Router router(int moeLayer) { return routers[moeLayer]; }

    public void addListener(MoeLayerListener l) { listeners.add(l); }

    public void removeListener(MoeLayerListener l) { listeners.remove(l); }

    public Sequence newSequence() {
        ModelConfig.Mla mla = c.mla();
        return new Sequence(nextSequenceId.getAndIncrement(), mla == null
                ? new KVCache(c.layers(), c.kvDim(), c.kvDim(), 64, context)
                : new KVCache(c.layers(), mla.kvLoraRank(), mla.qkRope(), 64, context));
    }

    /** Runs the steps; the logits of each step's last token (one row per step) and the routing. */
    public Forward forward(List<Step> steps) { return forward(steps, false, false); }

    /**
     * Runs the steps. With {@code allPositions} the logits of every token come back (rows in step order, then
     * token order); otherwise those of each step's last token. With {@code keepHidden} the routing holds the hidden
     * state after every MoE layer (it does anyway when a listener needs it). Sequences must have room for the
     * steps' tokens: admission checks that ({@link #checkFits}); here it is an invariant.
     */
    public Forward forward(List<Step> steps, boolean allPositions, boolean keepHidden) {
        int rows = 0;
        for (Step s : steps) rows += s.tokens().length;
        if (rows != 1 || par.threads() == 1) return forward(steps, rows, allPositions, keepHidden);
        // one decoded token on several threads: the workers spin between its forks instead of parking, and its time
        // tunes how the threads read the weights (ReadPattern)
        long t0 = System.nanoTime();
        par.reads().beginStep();
        par.wake();
        try {
            return forward(steps, rows, allPositions, keepHidden);
        } finally {
            par.sleep();
            par.reads().endStep(System.nanoTime() - t0);
        }
    }

    private Forward forward(List<Step> steps, int rows, boolean allPositions, boolean keepHidden) {
        // ---- rows: (sequence, position, token) ----
        Sequence[] seqOf = new Sequence[rows];
        int[] pos = new int[rows];
        int[] tok = new int[rows];
        int r = 0;
        for (Step s : steps) {
            Sequence seq = s.sequence();
            int end = seq.length() + s.tokens().length;
            if (end > context) {
                throw new IllegalStateException("sequence " + seq.id() + " would reach " + end + " tokens past the context of "
                        + context + "; admission should have refused it");
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
        int longest = 0;
        for (Step s : steps) {
            s.sequence().cache.ensureCapacity(s.sequence().length() + s.tokens().length);
            longest = Math.max(longest, s.sequence().length() + s.tokens().length);
        }
        rope.ensure(longest);

        int h = c.hiddenSize();
        float[][] x = new float[rows][h];
        float[][] xb = new float[rows][h];
        float[][] out = new float[rows][h];
        boolean mla = c.mla() != null;
        float[][] q = mla ? null : new float[rows][c.qDim()];
        float[][] k = mla ? null : new float[rows][c.kvDim()];
        float[][] v = mla ? null : new float[rows][c.kvDim()];
        float[][] att = new float[rows][c.attentionOutDim()];
        for (r = 0; r < rows; r++) model.embed().row(tok[r], x[r]);
        long[] seqIds = new long[rows];
        for (r = 0; r < rows; r++) seqIds[r] = seqOf[r].id();
        int[] stepEnd = new int[steps.size()];
        int[][][] before = new int[rows][][];
        r = 0;
        for (int s = 0; s < steps.size(); s++) {
            before[r] = steps.get(s).sequence().lastPath();
            r += steps.get(s).tokens().length;
            stepEnd[s] = r;
        }
        boolean keep = keepHidden;
        for (MoeLayerListener o : listeners) keep |= o.needsHidden();
        Routing routing = new Routing(seqIds, pos, tok, stepEnd, before, routers.length, keep);
        ExpertExecutor.StepRun run = executor.begin(seqIds);

        for (int l = 0; l < c.layers(); l++) {
            MoeModel.Layer layer = model.layer(l);
            // ---- attention ----
            for (r = 0; r < rows; r++) Kernels.rmsnorm(xb[r], x[r], 0, layer.inputNorm(), h, c.rmsNormEps());
            if (mla) {
                latentAttention(l, layer, xb, rows, seqOf, pos, att);
            } else {
                Kernels.matmuls(par, rows, new Tensor[]{layer.wq(), layer.wk(), layer.wv()}, new float[][][]{xb, xb, xb},
                        new float[][][]{q, k, v});
                if (layer.bq() != null) {
                    for (r = 0; r < rows; r++) {
                        Kernels.axpy(1f, layer.bq(), 0, q[r], 0, c.qDim());
                        Kernels.axpy(1f, layer.bk(), 0, k[r], 0, c.kvDim());
                        Kernels.axpy(1f, layer.bv(), 0, v[r], 0, c.kvDim());
                    }
                }
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
            }
            Kernels.matmul(layer.wo(), att, rows, out, par);
            for (r = 0; r < rows; r++) Kernels.axpy(1f, out[r], 0, x[r], 0, h);

            // ---- MLP: MoE block or dense ----
            for (r = 0; r < rows; r++) Kernels.rmsnorm(xb[r], x[r], 0, layer.postAttentionNorm(), h, c.rmsNormEps());
            int m = moeIndex[l];
            if (m >= 0) moe(m, layer, xb, out, rows, run, routing);
            else ExpertFfn.SWIGLU.apply(layer.dense(), xb, rows, out, par);
            for (r = 0; r < rows; r++) Kernels.axpy(1f, out[r], 0, x[r], 0, h);
            if (m >= 0) {
                if (keep) for (r = 0; r < rows; r++) routing.setHidden(m, r, x[r].clone());
                for (MoeLayerListener o : listeners) o.onMoeLayer(routing, m);
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
        for (float[] row : logits) {
            int bad = Kernels.firstNonFinite(row);
            if (bad >= 0) {
                throw new IllegalStateException("the model computed a non-finite logit (" + row[bad] + "): its weights in "
                        + model.dir().toAbsolutePath() + " hold NaN or infinite values; the checkpoint is damaged");
            }
        }
        for (int s = 0; s < steps.size(); s++) {
            steps.get(s).sequence().append(steps.get(s).tokens());
            steps.get(s).sequence().setLastPath(routing.path(routing.lastRow(s)));
        }
        return new Forward(logits, routing);
    }

    /**
     * Admission's check, the one place the context length is enforced: a prompt of {@code promptTokens} must leave
     * room for at least one generated token. Throws with what to do.
     */
    public void checkFits(int promptTokens) {
        if (promptTokens < 1) throw new IllegalArgumentException("the prompt is empty; give at least one token");
        if (promptTokens >= context) {
            throw new IllegalArgumentException("the prompt has " + promptTokens + " tokens but the context is " + context
                    + (context < c.maxPositions() ? " (--max-context)" : " (max_position_embeddings)")
                    + ", which must hold the prompt and at least one "
                    + "generated token; shorten the prompt");
        }
    }

    /** Tokens a sequence holding {@code length} tokens may still generate (the context's room). */
    public int room(int length) { return Math.max(0, context - length); }

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
        float scale = c.attentionScale();
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

    /** q_a_layernorm and kv_a_layernorm: DeepSeek builds them with the RMSNorm default, not rms_norm_eps. */
    private static final float MLA_NORM_EPS = 1e-6f;

    /**
     * Multi-head latent attention, absorbed, for prefill and decode alike (so incremental decode computes exactly
     * what recomputation does). Per row: the queries (q_proj, or q_a_proj, its norm, q_b_proj), the latent
     * c = kv_a_layernorm(kv_a_proj(x)[..rank]) and the rope key (the rest, rotated) go to the cache. Per head h:
     * q_abs = W_k,h^T q_nope (so q_nope . k_nope,t = q_abs . c_t); score_t = (q_abs . c_t + q_pe . k_pe,t) * scale;
     * the output is W_v,h (sum_t p_t c_t). RoPE rotates adjacent pairs (2i, 2i+1) of the rope part only.
     */
    private void latentAttention(int l, MoeModel.Layer layer, float[][] xb, int rows, Sequence[] seqOf, int[] pos,
                                 float[][] att) {
        ModelConfig.Mla m = c.mla();
        MoeModel.MlaWeights w = layer.mla();
        int heads = c.heads(), qkHead = m.qkHead(), nope = m.qkNope(), rd = m.qkRope(), rank = m.kvLoraRank();
        int vd = m.vHead();
        float[][] q = new float[rows][c.qDim()];
        float[][] kv = new float[rows][rank + rd];
        // the products of x in one fork: q_proj (or q_a_proj) and kv_a_proj_with_mqa
        float[][] qa = w.qA() == null ? q : new float[rows][m.qLoraRank()];
        Kernels.matmuls(par, rows, new Tensor[]{w.qA() == null ? layer.wq() : w.qA(), w.kvA()}, new float[][][]{xb, xb},
                new float[][][]{qa, kv});
        if (w.qA() != null) {
            for (int r = 0; r < rows; r++) Kernels.rmsnorm(qa[r], qa[r], 0, w.qANorm(), m.qLoraRank(), MLA_NORM_EPS);
            Kernels.matmul(w.qB(), qa, rows, q, par);
        }
        for (int r = 0; r < rows; r++) {
            float[] cos = rope.cos[pos[r]], sin = rope.sin[pos[r]];
            for (int hd = 0; hd < heads; hd++) Kernels.ropeInterleaved(q[r], hd * qkHead + nope, rd, cos, sin);
            Kernels.rmsnorm(kv[r], kv[r], 0, w.kvANorm(), rank, MLA_NORM_EPS);
            Kernels.ropeInterleaved(kv[r], rank, rd, cos, sin);
            KVCache cache = seqOf[r].cache;
            System.arraycopy(kv[r], 0, cache.k[l], pos[r] * rank, rank);
            System.arraycopy(kv[r], rank, cache.v[l], pos[r] * rd, rd);
        }
        float scale = c.attentionScale();
        long work = 0;
        for (int r = 0; r < rows; r++) work += (long) heads * ((pos[r] + 1L) * (2L * rank + rd) + (long) rank * (nope + vd));
        Parallel p = work < (1 << 15) ? Parallel.SERIAL : par;
        // a task is a row's group of heads, which read its latent cache together (Kernels.dotsMany, axpysMany): once
        // a group instead of once a head; each head's outputs have the same bits whatever the grouping
        int group = Math.max(1, (heads + p.threads() - 1) / p.threads()), groups = (heads + group - 1) / group;
        p.forEach(rows * groups, task -> {
            int r = task / groups, h0 = task % groups * group, g = Math.min(heads, h0 + group) - h0, n = pos[r] + 1;
            float[] kc = seqOf[r].cache.k[l], pc = seqOf[r].cache.v[l];
            float[][] qAbs = new float[g][rank], s = new float[g][n], pe = new float[g][n], ctx = new float[g][rank];
            int[] zero = new int[g], ropeAt = new int[g];
            float[][] qr = new float[g][];
            for (int i = 0; i < g; i++) {
                int qo = (h0 + i) * qkHead;
                Kernels.matvecTransposed(w.kUp()[h0 + i], java.util.Arrays.copyOfRange(q[r], qo, qo + nope), qAbs[i]);
                qr[i] = q[r];
                ropeAt[i] = qo + nope;
            }
            Kernels.dotsMany(qAbs, zero, kc, 0, rank, rank, n, s);
            Kernels.dotsMany(qr, ropeAt, pc, 0, rd, rd, n, pe);
            for (int i = 0; i < g; i++) {
                for (int t = 0; t < n; t++) s[i][t] = (s[i][t] + pe[i][t]) * scale;
                Kernels.softmax(s[i], 0, n);
            }
            Kernels.axpysMany(s, kc, 0, rank, rank, n, ctx);
            for (int i = 0; i < g; i++) {
                float[] o = new float[vd];
                Kernels.matvec(w.vUp()[h0 + i], ctx[i], o, Parallel.SERIAL);
                System.arraycopy(o, 0, att[r], (h0 + i) * vd, vd);
            }
        });
    }

    /**
     * The MoE block: route, hand the rows to the executor, combine each row's experts in its own top-k order, then
     * add the shared expert where the family has one (dense: computed here, never routed, cached or offloaded),
     * scaled by sigmoid(shared_expert_gate x) where it is gated.
     */
    private void moe(int m, MoeModel.Layer layer, float[][] xb, float[][] out, int rows, ExpertExecutor.StepRun run,
                     Routing routing) {
        int topK = c.topK(), h = c.hiddenSize();
        RoutingReplay rp = replay;
        Router.Decision d = rp == null ? routers[m].route(xb, rows) : rp.decide(m, routing, routers[m], xb, rows);
        routing.set(m, d);
        float[][][] contrib = new float[rows][topK][];
        float[][] so = layer.shared() == null ? null : new float[rows][h];
        if (so == null) run.run(m, xb, rows, d.experts(), contrib);
        else run.run(m, xb, rows, d.experts(), contrib, layer.shared(), so, par);
        for (int r = 0; r < rows; r++) {
            java.util.Arrays.fill(out[r], 0f);
            for (int j = 0; j < topK; j++) Kernels.axpy(d.weights()[r][j], contrib[r][j], 0, out[r], 0, h);
        }
        if (so != null) {
            for (int r = 0; r < rows; r++) {
                float g = 1f;
                if (layer.sharedGate() != null) {
                    g = (float) (1.0 / (1.0 + Math.exp(-Kernels.dot(layer.sharedGate(), 0, xb[r], h))));
                }
                Kernels.axpy(g, so[r], 0, out[r], 0, h);
            }
        }
    }

    /** Every expert here, from the engine's store: each expert run once over its group of rows. */
    private final class LocalExecutor implements ExpertExecutor, ExpertExecutor.StepRun {
        @Override
        public StepRun begin(long[] sequences) { return this; }

        @Override
        public void run(int m, float[][] xb, int rows, int[][] idx, float[][][] contrib) {
            run(m, xb, rows, idx, contrib, null, null, par);
        }

        /**
         * The routed experts, and the shared expert where given. One decoded token with every expert resident: all
         * their products in two forks ({@link ExpertFfn#applyEach}). Otherwise one fork: many active experts -> one
         * per thread (the shared one, the largest, first); few -> threads inside each product; too little work in all
         * (a small model's decode step) -> this thread alone: a fork costs more than it saves. The bits are the same
         * on every path.
         */
        @Override
        public void run(int m, float[][] xb, int rows, int[][] idx, float[][][] contrib, ExpertWeights shared,
                        float[][] sharedOut, Parallel unused) {
            List<ExpertGroups.Group> groups = ExpertGroups.of(idx, rows, c.experts());
            long work = 3L * rows * c.topK() * c.hiddenSize() * c.expertIntermediate();
            Parallel pool = work < (1 << 18) ? Parallel.SERIAL : par;
            boolean acrossExperts = groups.size() >= pool.threads() && pool != Parallel.SERIAL;
            Parallel inner = acrossExperts ? Parallel.SERIAL : pool;
            int[] chosen = new int[groups.size()];
            for (int a = 0; a < chosen.length; a++) chosen[a] = groups.get(a).expert();
            experts.reserve(m, chosen);
            int first = shared == null ? 0 : 1;
            if (rows == 1 && acrossExperts && experts.neverWaits()) {
                // one decoded token, every expert at hand: all gate and up products in one fork, all down products in another
                int k = first + groups.size();
                ExpertWeights[] ws = new ExpertWeights[k];
                float[][] xs = new float[k][], ys = new float[k][c.hiddenSize()];
                java.util.Arrays.fill(xs, xb[0]);
                if (shared != null) ws[0] = shared;
                for (int a = first; a < k; a++) ws[a] = experts.acquire(m, groups.get(a - first).expert());
                try {
                    ExpertFfn.SWIGLU.applyEach(ws, xs, ys, par);
                } finally {
                    for (int a = first; a < k; a++) experts.release(m, groups.get(a - first).expert());
                }
                if (shared != null) sharedOut[0] = ys[0];
                for (int a = first; a < k; a++) groups.get(a - first).scatter(new float[][]{ys[a]}, contrib);
                return;
            }
            Parallel.Body runItem = a -> {
                if (a < first) {
                    ExpertFfn.SWIGLU.apply(shared, xb, rows, sharedOut, inner);
                    return;
                }
                ExpertGroups.Group g = groups.get(a - first);
                float[][] y = new float[g.size()][c.hiddenSize()];
                ExpertWeights weights = experts.acquire(m, g.expert());
                try {
                    ExpertFfn.SWIGLU.apply(weights, g.gather(xb), g.size(), y, inner);
                } finally {
                    experts.release(m, g.expert());
                }
                g.scatter(y, contrib);
            };
            int items = first + groups.size();
            if (acrossExperts) {
                pool.forEach(items, runItem);
            } else {
                for (int a = 0; a < items; a++) runItem.run(a);
            }
        }
    }
}
