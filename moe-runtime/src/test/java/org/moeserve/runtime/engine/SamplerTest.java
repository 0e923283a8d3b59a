package org.moeserve.runtime.engine;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {
    static final float[] LOGITS = {1f, 3f, 2f, 3f, -1f};

    @Test
    void greedyTakesTheFirstMaximum() {
        assertEquals(1, new Sampler(SamplingParams.GREEDY).sample(LOGITS));
        assertEquals(1, Sampler.argmax(LOGITS));
    }

    @Test
    void sameSeedSameTokensAndTopPRestrictsTheSupport() {
        Sampler a = new Sampler(new SamplingParams(1.0, 1.0, 11)), b = new Sampler(new SamplingParams(1.0, 1.0, 11));
        for (int i = 0; i < 100; i++) assertEquals(a.sample(LOGITS), b.sample(LOGITS));
        // p ~ [.06, .42, .16, .42, .02]: top_p 0.5 keeps the two tied leaders only
        Sampler nucleus = new Sampler(new SamplingParams(1.0, 0.5, 3));
        for (int i = 0; i < 500; i++) {
            int t = nucleus.sample(LOGITS);
            assertTrue(t == 1 || t == 3, "token " + t + " outside the nucleus");
        }
    }

    @Test
    void frequenciesFollowTheSoftmaxAtTheTemperature() {
        float[] logits = {0f, (float) Math.log(3)}; // at T=1: p = [.25, .75]; at T=2: [.366, .634]
        for (double temp : new double[]{1.0, 2.0}) {
            Sampler s = new Sampler(new SamplingParams(temp, 1.0, 5));
            int n = 20_000, ones = 0;
            for (int i = 0; i < n; i++) ones += s.sample(logits);
            double p1 = Math.pow(3, 1 / temp) / (1 + Math.pow(3, 1 / temp));
            // 5 standard deviations of a binomial proportion: fails by chance about once in 3 million seeds
            assertEquals(p1, ones / (double) n, 5 * Math.sqrt(p1 * (1 - p1) / n), "T=" + temp);
        }
    }

    /**
     * The nucleus at a real vocabulary (150,000 tokens): the heap-drawn prefix gives exactly the token a full sort by
     * (probability, index) and the same random draw give, seed after seed, ties included.
     */
    @Test
    void theNucleusAtARealVocabularyEqualsTheSortedReference() {
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(9);
        float[] logits = new float[150_000];
        for (int i = 0; i < logits.length; i++) logits[i] = (float) (rnd.nextGaussian() * 3);
        for (int i = 0; i < 50; i++) logits[1000 + i] = logits[7]; // ties broken by index
        for (long seed = 0; seed < 30; seed++) {
            SamplingParams sp = new SamplingParams(0.8, 0.9, seed);
            assertEquals(reference(logits, sp), new Sampler(sp).sample(logits), "seed " + seed);
        }
    }

    /** The previous implementation: softmax, every token sorted by (probability desc, index asc), then the walk. */
    static int reference(float[] logits, SamplingParams sp) {
        int n = logits.length;
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double[] p = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) sum += p[i] = Math.exp((logits[i] - max) / sp.temperature());
        for (int i = 0; i < n; i++) p[i] /= sum;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        java.util.Arrays.sort(order, (a, b) -> p[a] != p[b] ? Double.compare(p[b], p[a]) : Integer.compare(a, b));
        int keep = 0;
        double mass = 0;
        while (keep < n && (keep == 0 || mass < sp.topP())) mass += p[order[keep++]];
        double u = new java.util.SplittableRandom(sp.seed()).nextDouble() * mass;
        for (int i = 0; i < keep; i++) {
            u -= p[order[i]];
            if (u <= 0) return order[i];
        }
        return order[keep - 1];
    }

    @Test
    void invalidParametersNameTheRule() {
        IllegalArgumentException t = assertThrows(IllegalArgumentException.class, () -> new SamplingParams(-1, 1, 0));
        assertTrue(t.getMessage().contains("temperature is -1.0 but must be >= 0"), t.getMessage());
        IllegalArgumentException p = assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1, 0, 0));
        assertTrue(p.getMessage().contains("top_p is 0.0"), p.getMessage());
    }
}
