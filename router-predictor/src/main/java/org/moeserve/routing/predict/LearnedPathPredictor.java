package org.moeserve.routing.predict;

import org.moeserve.routing.VectorMath;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.IntConsumer;

/**
 * A learned expert-path predictor in the spirit of ExpertFlow: for each layer l, a small MLP reads what is known
 * when l finishes (the hidden state, RMS-normalised, and the experts chosen at l as a multi-hot vector) and
 * predicts the experts of every remaining layer at once, one softmax over the experts per future layer:
 *
 * <pre>
 *   x (hidden + experts) -> W1 (units, hidden + experts) -> ReLU -> W2 ((layers-1-l) * experts, units) -> logits
 * </pre>
 *
 * Trained with cross-entropy against the true top-k (uniform over them) by Adam, from recorded
 * (hidden state, path) pairs ({@code moe predictor train}); saved as a small binary file (moe-predictor/1).
 */
public final class LearnedPathPredictor implements ExpertPredictor {
    static final String MAGIC = "moe-predictor/1";

    /** Training settings; each with a default and a bound. */
    public record Options(int units, int epochs, int batch, double learningRate, long seed) {
        public static final Options DEFAULT = new Options(64, 12, 32, 2e-3, 1);

        public Options {
            if (units < 1) throw new IllegalArgumentException("units is " + units + " but must be >= 1");
            if (epochs < 1) throw new IllegalArgumentException("epochs is " + epochs + " but must be >= 1");
            if (batch < 1) throw new IllegalArgumentException("batch is " + batch + " but must be >= 1");
            if (!(learningRate > 0)) throw new IllegalArgumentException("learning rate is " + learningRate + " but must be > 0");
        }
    }

    private final int layers, experts, hiddenDim, units;
    private final Mlp[] nets; // one per source layer 0..layers-2

    private LearnedPathPredictor(int layers, int experts, int hiddenDim, int units, Mlp[] nets) {
        this.layers = layers;
        this.experts = experts;
        this.hiddenDim = hiddenDim;
        this.units = units;
        this.nets = nets;
    }

    @Override
    public String name() { return "learned"; }

    @Override
    public boolean needsHidden() { return true; }

    public int layers() { return layers; }

    @Override
    public float[][] predict(TokenContext ctx, int horizon) {
        if (ctx.hidden() == null) throw new IllegalStateException("learned needs hidden states; run it with the model");
        if (ctx.hidden().length != hiddenDim) {
            throw new IllegalArgumentException("hidden state has " + ctx.hidden().length + " values but this predictor was "
                    + "trained on " + hiddenDim + "; train it for this model");
        }
        int l = ctx.layer();
        int rows = ExpertPredictor.rows(layers, l, horizon);
        float[][] out = new float[rows][experts];
        if (rows == 0) return out;
        float[] logits = nets[l].forward(input(ctx.hidden(), ctx.path()[l]), new float[units]);
        for (int j = 0; j < rows; j++) System.arraycopy(logits, j * experts, out[j], 0, experts);
        return out;
    }

    private float[] input(float[] hidden, int[] experts) {
        float[] x = new float[hiddenDim + this.experts];
        double ss = 0;
        for (float v : hidden) ss += v * v;
        float inv = (float) (1.0 / Math.sqrt(ss / hiddenDim + 1e-6));
        for (int i = 0; i < hiddenDim; i++) x[i] = hidden[i] * inv;
        for (int e : experts) if (e >= 0) x[hiddenDim + e] = 1f;
        return x;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Training
    // ---------------------------------------------------------------------------------------------------------

    /**
     * Trains on samples that carry hidden states. {@code progress} is told each finished epoch.
     */
    public static LearnedPathPredictor train(List<TokenSample> samples, int layers, int experts, Options o,
                                             IntConsumer progress) {
        List<TokenSample> data = new ArrayList<>();
        for (TokenSample s : samples) if (s.hidden() != null) data.add(s);
        if (data.isEmpty()) {
            throw new IllegalArgumentException("no training sample has hidden states; record them by running the model");
        }
        int hiddenDim = data.getFirst().hidden()[0].length;
        SplittableRandom rnd = new SplittableRandom(o.seed());
        Mlp[] nets = new Mlp[layers - 1];
        for (int l = 0; l < layers - 1; l++) nets[l] = new Mlp(hiddenDim + experts, o.units(), layers - 1 - l, experts, rnd);
        LearnedPathPredictor p = new LearnedPathPredictor(layers, experts, hiddenDim, o.units(), nets);
        int[] order = new int[data.size()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        for (int epoch = 0; epoch < o.epochs(); epoch++) {
            for (int i = order.length - 1; i > 0; i--) { // Fisher-Yates, seeded
                int j = rnd.nextInt(i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            for (int l = 0; l < layers - 1; l++) {
                Mlp net = nets[l];
                for (int b = 0; b < order.length; b += o.batch()) {
                    net.zeroGrad();
                    int end = Math.min(order.length, b + o.batch());
                    for (int i = b; i < end; i++) {
                        TokenSample s = data.get(order[i]);
                        net.accumulate(p.input(s.hidden()[l], s.path()[l]), target(s.path(), l, layers, experts));
                    }
                    net.adamStep(o.learningRate(), end - b);
                }
            }
            progress.accept(epoch + 1);
        }
        return p;
    }

    /** For each future layer, the true top-k as a distribution (uniform over the known experts). */
    private static float[] target(int[][] path, int l, int layers, int experts) {
        float[] t = new float[(layers - 1 - l) * experts];
        for (int m = l + 1; m < layers; m++) {
            int n = 0;
            for (int e : path[m]) if (e >= 0) n++;
            for (int e : path[m]) if (e >= 0) t[(m - l - 1) * experts + e] += 1f / n;
        }
        return t;
    }

    /** One hidden layer, softmax cross-entropy per block of {@code experts} outputs, Adam. */
    private static final class Mlp {
        final int in, units, out, experts;
        final float[] w1, b1, w2, b2;
        final float[] g1, gb1, g2, gb2;
        final float[][] m, v;
        int step;

        /** {@code blocks} future layers of {@code experts} logits each. */
        Mlp(int in, int units, int blocks, int experts, SplittableRandom rnd) {
            this.in = in;
            this.units = units;
            this.experts = experts;
            this.out = blocks * experts;
            w1 = new float[units * in];
            b1 = new float[units];
            w2 = new float[out * units];
            b2 = new float[out];
            double s1 = Math.sqrt(2.0 / in), s2 = Math.sqrt(1.0 / units);
            for (int i = 0; i < w1.length; i++) w1[i] = (float) (rnd.nextGaussian() * s1);
            for (int i = 0; i < w2.length; i++) w2[i] = (float) (rnd.nextGaussian() * s2);
            g1 = new float[w1.length];
            gb1 = new float[b1.length];
            g2 = new float[w2.length];
            gb2 = new float[b2.length];
            m = new float[][]{new float[w1.length], new float[b1.length], new float[w2.length], new float[b2.length]};
            v = new float[][]{new float[w1.length], new float[b1.length], new float[w2.length], new float[b2.length]};
        }

        /** logits for x; {@code a} receives the hidden activations. */
        float[] forward(float[] x, float[] a) {
            for (int u = 0; u < units; u++) a[u] = Math.max(0f, b1[u] + VectorMath.dot(w1, u * in, x, in));
            float[] z = new float[out];
            for (int k = 0; k < out; k++) z[k] = b2[k] + VectorMath.dot(w2, k * units, a, units);
            return z;
        }

        void zeroGrad() {
            java.util.Arrays.fill(g1, 0);
            java.util.Arrays.fill(gb1, 0);
            java.util.Arrays.fill(g2, 0);
            java.util.Arrays.fill(gb2, 0);
        }

        void accumulate(float[] x, float[] target) {
            float[] a = new float[units];
            float[] z = forward(x, a);
            // dz = softmax(z) - target, per block of experts
            float[] dz = new float[out];
            for (int b0 = 0; b0 < out; b0 += experts) {
                float max = Float.NEGATIVE_INFINITY;
                for (int k = 0; k < experts; k++) max = Math.max(max, z[b0 + k]);
                double sum = 0;
                for (int k = 0; k < experts; k++) sum += Math.exp(z[b0 + k] - max);
                for (int k = 0; k < experts; k++) {
                    dz[b0 + k] = (float) (Math.exp(z[b0 + k] - max) / sum) - target[b0 + k];
                }
            }
            float[] da = new float[units];
            for (int k = 0; k < out; k++) {
                float d = dz[k];
                gb2[k] += d;
                int row = k * units;
                for (int u = 0; u < units; u++) {
                    g2[row + u] += d * a[u];
                    da[u] += d * w2[row + u];
                }
            }
            for (int u = 0; u < units; u++) {
                if (a[u] <= 0) continue;
                float d = da[u];
                gb1[u] += d;
                int row = u * in;
                for (int i = 0; i < in; i++) g1[row + i] += d * x[i];
            }
        }

        void adamStep(double lr, int batch) {
            step++;
            double b1c = 1 - Math.pow(0.9, step), b2c = 1 - Math.pow(0.999, step);
            float[][] params = {w1, b1, w2, b2}, grads = {g1, gb1, g2, gb2};
            for (int p = 0; p < 4; p++) {
                float[] w = params[p], g = grads[p], mm = m[p], vv = v[p];
                for (int i = 0; i < w.length; i++) {
                    float gi = g[i] / batch;
                    mm[i] = 0.9f * mm[i] + 0.1f * gi;
                    vv[i] = 0.999f * vv[i] + 0.001f * gi * gi;
                    w[i] -= (float) (lr * (mm[i] / b1c) / (Math.sqrt(vv[i] / b2c) + 1e-8));
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // File format: "moe-predictor/1", layers, experts, hiddenDim, units, then per source layer W1, b1, W2, b2
    // ---------------------------------------------------------------------------------------------------------

    public void save(Path file) throws IOException {
        try (OutputStream os = Files.newOutputStream(file);
             DataOutputStream out = new DataOutputStream(new java.io.BufferedOutputStream(os))) {
            out.writeUTF(MAGIC);
            out.writeInt(layers);
            out.writeInt(experts);
            out.writeInt(hiddenDim);
            out.writeInt(units);
            for (Mlp n : nets) for (float[] a : new float[][]{n.w1, n.b1, n.w2, n.b2}) for (float f : a) out.writeFloat(f);
        }
    }

    public static LearnedPathPredictor load(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(file + ": predictor file not found; make one with moe predictor train");
        }
        try (InputStream is = Files.newInputStream(file);
             DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(is))) {
            String magic;
            try {
                magic = in.readUTF();
            } catch (IOException e) {
                magic = "";
            }
            if (!MAGIC.equals(magic)) {
                throw new IllegalArgumentException(file + ": not a " + MAGIC + " file (it starts with \"" + magic
                        + "\"); make one with moe predictor train");
            }
            int layers = in.readInt(), experts = in.readInt(), hiddenDim = in.readInt(), units = in.readInt();
            if (layers < 2 || experts < 1 || hiddenDim < 1 || units < 1) {
                throw new IllegalArgumentException(file + ": corrupt header (layers " + layers + ", experts " + experts
                        + ", hidden " + hiddenDim + ", units " + units + ")");
            }
            Mlp[] nets = new Mlp[layers - 1];
            SplittableRandom unused = new SplittableRandom(0);
            for (int l = 0; l < layers - 1; l++) {
                Mlp n = new Mlp(hiddenDim + experts, units, layers - 1 - l, experts, unused);
                for (float[] a : new float[][]{n.w1, n.b1, n.w2, n.b2}) for (int i = 0; i < a.length; i++) a[i] = in.readFloat();
                nets[l] = n;
            }
            return new LearnedPathPredictor(layers, experts, hiddenDim, units, nets);
        } catch (java.io.EOFException e) {
            throw new IllegalArgumentException(file + ": truncated predictor file; train it again", e);
        }
    }
}
