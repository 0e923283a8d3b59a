package org.moeserve.routing;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The router's selection rules as Hugging Face computes them: DeepSeek-V2's group-limited greedy (a group scores by
 * its best expert), V3's noaux_tc (sigmoid scores, a bias for selection only, groups ranked by their best two), the
 * scaling factor after renormalisation. Hand-made cases where the rule changes the answer, then random rows against
 * a literal re-statement of the reference (sorting instead of {@link TopK}, double precision).
 */
class RouterTest {
    static Router router(int experts, Router.Rule rule) {
        return new Router(Router.dense(new float[experts][1]), rule);
    }

    static int[] pick(Router r, float[] logits, float[] w) {
        int[] idx = new int[r.topK()];
        r.select(logits.clone(), idx, w);
        return idx;
    }

    @Test
    void groupLimitedGreedyChoosesOnlyFromTheBestGroups() {
        float[] logits = {5, 0, 4.9f, 4.8f, 0, 0, 0, 0}; // groups of 2: {0,1} {2,3} {4,5} {6,7}
        float[] w = new float[2];
        assertArrayEquals(new int[]{0, 2}, pick(router(8, Router.Rule.softmax(2, false)), logits, w), "greedy");
        Router limited = router(8, new Router.Rule(2, false, false, 4, 1, false, null, 2f));
        int[] idx = pick(limited, logits, w);
        assertArrayEquals(new int[]{0, 1}, idx, "only group 0 (best expert 5) may be chosen from");
        float[] p = logits.clone();
        Router.softmax(p, 0, p.length);
        assertEquals(2 * p[0], w[0], 1e-7f, "softmax score times routed_scaling_factor, not renormalised");
        assertEquals(2 * p[1], w[1], 1e-7f);
    }

    @Test
    void theSelectionBiasMovesTheChoiceButNotTheWeight() {
        float[] zero = new float[4]; // sigmoid(0) = 0.5 for every expert
        float[] bias = {0, 0, 1, 0};
        float[] w = new float[1];
        assertArrayEquals(new int[]{2}, pick(router(4, new Router.Rule(1, false, true, 1, 1, false, bias, 2.5f)), zero, w));
        assertEquals(0.5f * 2.5f, w[0], 1e-7f, "the unbiased score, scaled");
        pick(router(4, new Router.Rule(1, true, true, 1, 1, false, bias, 2.5f)), zero, w);
        assertEquals(2.5f, w[0], 1e-7f, "renormalised over the one chosen, then scaled");
    }

    @Test
    void noauxTcRanksGroupsByTheirBestTwo() {
        float[] zero = new float[4];
        float[] bias = {0.4f, -0.5f, 0.1f, 0.1f}; // selection scores 0.9 0.0 | 0.6 0.6
        float[] w = new float[1];
        assertArrayEquals(new int[]{2}, pick(router(4, new Router.Rule(1, false, true, 2, 1, true, bias, 1f)), zero, w),
                "group {2,3} sums to 1.2 against 0.9");
        assertArrayEquals(new int[]{0}, pick(router(4, new Router.Rule(1, false, true, 2, 1, false, bias, 1f)), zero, w),
                "by best expert alone group {0,1} wins");
    }

    /** HF's steps, literally: scores, biased choice, group scores, sorted groups, mask to 0, sorted experts, gather. */
    static int[] reference(float[] logits, Router.Rule rule, double[] weights) {
        int n = logits.length, per = n / rule.groups();
        double[] score = new double[n];
        if (rule.sigmoid()) {
            for (int i = 0; i < n; i++) score[i] = 1 / (1 + Math.exp(-logits[i]));
        } else {
            double max = Arrays.stream(IntStream.range(0, n).mapToDouble(i -> logits[i]).toArray()).max().orElseThrow(), sum = 0;
            for (int i = 0; i < n; i++) sum += score[i] = Math.exp(logits[i] - max);
            for (int i = 0; i < n; i++) score[i] /= sum;
        }
        double[] choice = score.clone();
        if (rule.bias() != null) for (int i = 0; i < n; i++) choice[i] += rule.bias()[i];
        Integer[] groups = IntStream.range(0, rule.groups()).boxed().toArray(Integer[]::new);
        double[] gs = new double[rule.groups()];
        for (int g = 0; g < gs.length; g++) {
            double[] members = Arrays.copyOfRange(choice, g * per, (g + 1) * per);
            Arrays.sort(members);
            gs[g] = rule.top2Sum() ? members[per - 1] + members[per - 2] : members[per - 1];
        }
        Arrays.sort(groups, Comparator.comparingDouble((Integer g) -> -gs[g]).thenComparing(g -> g));
        boolean[] keep = new boolean[rule.groups()];
        for (int i = 0; i < rule.topkGroup(); i++) keep[groups[i]] = true;
        for (int i = 0; i < n; i++) if (!keep[i / per]) choice[i] = 0;
        Integer[] order = IntStream.range(0, n).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -choice[i]).thenComparing(i -> i));
        int[] idx = new int[rule.topK()];
        double sum = 0;
        for (int j = 0; j < idx.length; j++) sum += weights[j] = score[idx[j] = order[j]];
        for (int j = 0; j < idx.length; j++) weights[j] = (rule.renormalise() ? weights[j] / sum : weights[j]) * rule.scale();
        return idx;
    }

    @Test
    void randomRowsMatchTheLiteralReference() {
        Random rnd = new Random(7);
        float[] bias = new float[64];
        for (int i = 0; i < bias.length; i++) bias[i] = (float) (rnd.nextGaussian() * 0.05);
        Router.Rule[] rules = {
                new Router.Rule(6, false, false, 1, 1, false, null, 1f),     // DeepSeek-V2-Lite: greedy
                new Router.Rule(6, false, false, 8, 3, false, null, 16f),    // DeepSeek-V2: group-limited greedy
                new Router.Rule(8, true, true, 8, 4, true, bias, 2.5f),      // DeepSeek-V3: noaux_tc
        };
        for (Router.Rule rule : rules) {
            Router r = router(64, rule);
            for (int row = 0; row < 2000; row++) {
                float[] logits = new float[64];
                for (int i = 0; i < 64; i++) logits[i] = (float) (rnd.nextGaussian() * 2);
                double[] want = new double[rule.topK()];
                int[] ref = reference(logits, rule, want);
                float[] w = new float[rule.topK()];
                int[] got = pick(r, logits, w);
                int[] a = ref.clone(), b = got.clone();
                Arrays.sort(a);
                Arrays.sort(b);
                assertArrayEquals(a, b, rule + " row " + row);
                for (int j = 0; j < w.length; j++) {
                    int e = got[j];
                    int at = IntStream.range(0, ref.length).filter(k -> ref[k] == e).findFirst().orElseThrow();
                    assertEquals(want[at], w[j], 1e-5 * rule.scale(), rule + " row " + row + " weight of expert " + e);
                }
            }
        }
    }

    @Test
    void rulesThatCannotSelectAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> router(16, new Router.Rule(9, false, false, 4, 2, false, null, 1f)),
                "9 experts from 2 groups of 4");
        assertThrows(IllegalArgumentException.class, () -> router(16, new Router.Rule(2, false, false, 3, 1, false, null, 1f)),
                "3 groups do not divide 16");
        assertThrows(IllegalArgumentException.class, () -> router(16, new Router.Rule(2, false, true, 1, 1, false, new float[8], 1f)));
    }
}
