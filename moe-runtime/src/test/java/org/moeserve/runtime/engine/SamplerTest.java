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

    @Test
    void invalidParametersNameTheRule() {
        IllegalArgumentException t = assertThrows(IllegalArgumentException.class, () -> new SamplingParams(-1, 1, 0));
        assertTrue(t.getMessage().contains("temperature is -1.0 but must be >= 0"), t.getMessage());
        IllegalArgumentException p = assertThrows(IllegalArgumentException.class, () -> new SamplingParams(1, 0, 0));
        assertTrue(p.getMessage().contains("top_p is 0.0"), p.getMessage());
    }
}
