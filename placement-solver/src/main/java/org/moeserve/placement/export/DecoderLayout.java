package org.moeserve.placement.export;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Where a model's MoE layers sit among its decoder layers: serving engines number layers by decoder layer id (dense
 * layers included), plans and traces number MoE layers only. Read from a Hugging Face config.json of any MoE family
 * (DeepSeek's {@code first_k_dense_replace}/{@code moe_layer_freq}, Qwen's {@code decoder_sparse_step}/
 * {@code mlp_only_layers}, otherwise every layer), or assumed all-MoE when only a trace is at hand.
 *
 * @param decoderLayers  num_hidden_layers
 * @param moeLayerIds    the decoder layer id of each MoE layer, ascending
 * @param experts        routed experts per MoE layer
 */
public record DecoderLayout(int decoderLayers, int[] moeLayerIds, int experts) {
    public DecoderLayout {
        moeLayerIds = moeLayerIds.clone();
        for (int i = 0; i < moeLayerIds.length; i++) {
            if (moeLayerIds[i] < 0 || moeLayerIds[i] >= decoderLayers || (i > 0 && moeLayerIds[i] <= moeLayerIds[i - 1])) {
                throw new IllegalArgumentException("MoE layer ids " + Arrays.toString(moeLayerIds) + " must ascend within 0.."
                        + (decoderLayers - 1));
            }
        }
    }

    /** Every decoder layer a MoE layer: what a trace alone can say. */
    public static DecoderLayout allMoe(int layers, int experts) {
        int[] ids = new int[layers];
        for (int i = 0; i < layers; i++) ids[i] = i;
        return new DecoderLayout(layers, ids, experts);
    }

    /** From config.json; {@code where} names it in errors. */
    public static DecoderLayout fromConfig(JsonNode c, String where) {
        int layers = positive(c, "num_hidden_layers", where);
        int experts = c.hasNonNull("n_routed_experts") ? positive(c, "n_routed_experts", where)
                : c.hasNonNull("num_experts") ? positive(c, "num_experts", where)
                : c.hasNonNull("num_local_experts") ? positive(c, "num_local_experts", where) : -1;
        if (experts < 0) throw new IllegalArgumentException(where + ": no n_routed_experts, num_experts or num_local_experts: not a MoE config");
        List<Integer> moe = new ArrayList<>();
        if (c.hasNonNull("first_k_dense_replace") || c.hasNonNull("moe_layer_freq")) { // DeepSeek
            int k = c.path("first_k_dense_replace").asInt(0), freq = Math.max(1, c.path("moe_layer_freq").asInt(1));
            for (int l = 0; l < layers; l++) if (l >= k && l % freq == 0) moe.add(l);
        } else {
            int step = Math.max(1, c.path("decoder_sparse_step").asInt(1));
            java.util.Set<Integer> dense = new java.util.HashSet<>();
            for (JsonNode l : c.path("mlp_only_layers")) dense.add(l.asInt());
            for (int l = 0; l < layers; l++) if (!dense.contains(l) && (l + 1) % step == 0) moe.add(l);
        }
        return new DecoderLayout(layers, moe.stream().mapToInt(Integer::intValue).toArray(), experts);
    }

    public int moeLayers() { return moeLayerIds.length; }

    private static int positive(JsonNode c, String f, String where) {
        JsonNode v = c.get(f);
        if (v == null || !v.canConvertToInt() || v.asInt() < 1) {
            throw new IllegalArgumentException(where + ": " + f + " is " + (v == null ? "missing" : v) + " but must be a positive integer");
        }
        return v.asInt();
    }
}
