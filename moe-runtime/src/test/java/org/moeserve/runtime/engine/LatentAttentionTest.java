package org.moeserve.runtime.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.model.ModelConfig;
import org.moeserve.runtime.model.MoeModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Multi-head latent attention at the published DeepSeek shapes (the goldens cover the arithmetic at tiny ones): the
 * latent cache's size against a plain one, YaRN's tables and softmax scale against values computed in Python from
 * DeepSeek's formulas (DeepseekV2YarnRotaryEmbedding, yarn_get_mscale), and the cache really holding latents.
 */
class LatentAttentionTest {
    static ModelConfig published(String name) throws IOException {
        Path f = TestModels.dir("tiny-mixtral-kjv").getParent().resolve("configs").resolve(name + ".config.json");
        return ModelConfig.fromJson(new ObjectMapper().readTree(f.toFile()), f);
    }

    @Test
    void theLatentCacheHoldsUnderAQuarterOfAPlainCachesBytesPerToken() throws IOException {
        ModelConfig lite = published("deepseek-ai--DeepSeek-V2-Lite"), v3 = published("deepseek-ai--DeepSeek-V3");
        assertEquals(512 + 64, lite.kvCacheFloatsPerToken(), "kv_lora_rank + qk_rope_head_dim");
        assertEquals(16 * (192 + 128), lite.plainKvCacheFloatsPerToken(), "16 heads x (192 key + 128 value)");
        assertTrue(4 * lite.kvCacheFloatsPerToken() <= lite.plainKvCacheFloatsPerToken());
        assertEquals(576, v3.kvCacheFloatsPerToken());
        assertEquals(128 * 320, v3.plainKvCacheFloatsPerToken());
        assertEquals(List.of(1, 64, 6, 2 * 1408), List.of(lite.layers() - lite.moeLayers(), lite.experts(), lite.topK(),
                lite.sharedIntermediate()), "dense layers, routed experts, top-k, shared width");
        assertEquals(List.of(3, 256, 8, 8, 4), List.of(v3.layers() - v3.moeLayers(), v3.experts(), v3.topK(),
                v3.gating().groups(), v3.gating().topkGroup()));
    }

    @Test
    void yarnTablesAndScaleMatchDeepSeeksFormulas() throws IOException {
        ModelConfig lite = published("deepseek-ai--DeepSeek-V2-Lite"), v3 = published("deepseek-ai--DeepSeek-V3");
        assertNotNull(lite.yarn());
        // (192)^-0.5 x yarn_get_mscale(40, mscale_all_dim)^2
        assertEquals(0.11472138679292611, lite.attentionScale(), 1e-6);
        assertEquals(0.1352337788608801, v3.attentionScale(), 1e-6);
        Rope r = new Rope(lite.ropeDim(), lite.ropeTheta(), lite.maxPositions(), lite.yarn());
        r.ensure(1001);
        int[] at = {0, 10, 20, 31};
        float[] cos = {0.5623790621757507f, 0.9509385824203491f, 0.7034407258033752f, 0.9999944567680359f};
        float[] sin = {0.8268795609474182f, -0.3093797564506531f, 0.7107539772987366f, 0.003333797212690115f};
        for (int i = 0; i < at.length; i++) {
            assertEquals(cos[i], r.cos[1000][at[i]], 2e-4f, "cos, position 1000, pair " + at[i]);
            assertEquals(sin[i], r.sin[1000][at[i]], 2e-4f, "sin, position 1000, pair " + at[i]);
        }
    }

    @Test
    void theCacheHoldsTheNormalisedLatentAndTheRotatedRopeKeyOnly() {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-deepseekv2-random"))) {
            Engine e = new Engine(m, org.moeserve.runtime.kernel.Parallel.SERIAL);
            Sequence s = e.newSequence();
            e.forward(List.of(new Engine.Step(s, "In the beginning".chars().toArray())));
            ModelConfig.Mla mla = m.config().mla();
            assertEquals((long) m.config().layers() * s.cache.capacity() * (mla.kvLoraRank() + mla.qkRope()) * Float.BYTES,
                    s.cache.byteSize());
            // position 0's rope key is unrotated (angle 0): the raw tail of kv_a_proj_with_mqa's output
            float[] x = new float[m.config().hiddenSize()], xb = new float[x.length];
            m.embed().row('I', x);
            org.moeserve.runtime.kernel.Kernels.rmsnorm(xb, x, 0, m.layer(0).inputNorm(), x.length, m.config().rmsNormEps());
            float[] kv = new float[mla.kvLoraRank() + mla.qkRope()];
            org.moeserve.runtime.kernel.Kernels.matvec(m.layer(0).mla().kvA(), xb, kv, org.moeserve.runtime.kernel.Parallel.SERIAL);
            assertArrayEquals(java.util.Arrays.copyOfRange(kv, mla.kvLoraRank(), kv.length),
                    java.util.Arrays.copyOf(s.cache.v[0], mla.qkRope()));
            double ss = 0;
            for (int i = 0; i < mla.kvLoraRank(); i++) ss += (double) kv[i] * kv[i];
            float inv = (float) (1 / Math.sqrt(ss / mla.kvLoraRank() + 1e-6));
            assertEquals(kv[0] * inv * m.layer(0).mla().kvANorm()[0], s.cache.k[0][0], 1e-5f, "the latent, normalised");
        }
    }

    @Test
    void theUpProjectionsAreKvBsOwnRowsAndTheAbsorbedProductIsTheirTranspose() {
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-deepseekv2-random"))) {
            ModelConfig.Mla mla = m.config().mla();
            int nope = mla.qkNope(), vd = mla.vHead(), rank = mla.kvLoraRank();
            java.util.Random rnd = new java.util.Random(7);
            for (int l = 0; l < m.config().layers(); l++) {
                MoeModel.MlaWeights w = m.layer(l).mla();
                for (int hd = 0; hd < m.config().heads(); hd++) {
                    org.moeserve.runtime.model.Tensor k = w.kUp()[hd];
                    assertEquals(w.kvB().dtype(), k.dtype(), "a slice of kv_b_proj, no copy");
                    assertArrayEquals(new int[]{nope, rank}, k.shape());
                    float[] q = new float[nope], got = new float[rank];
                    for (int i = 0; i < nope; i++) q[i] = (float) rnd.nextGaussian();
                    org.moeserve.runtime.kernel.Kernels.matvecTransposed(k, q, got);
                    for (int j = 0; j < rank; j++) {
                        double want = 0;
                        for (int i = 0; i < nope; i++) want += (double) q[i] * w.kvB().get((long) (hd * (nope + vd) + i) * rank + j);
                        assertEquals(want, got[j], 1e-5 * Math.max(1, Math.abs(want)), "layer " + l + " head " + hd + " latent " + j);
                    }
                }
            }
        }
    }
}
