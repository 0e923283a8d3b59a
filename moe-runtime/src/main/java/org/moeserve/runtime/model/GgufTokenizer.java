package org.moeserve.runtime.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file's tokenizer as tokenizer.json and tokenizer_config.json. llama.cpp stores a byte-level BPE
 * ({@code tokenizer.ggml.model = gpt2}) as its token strings, token types and merges, and names the pre-tokenizer's
 * split rule in {@code tokenizer.ggml.pre}; those rebuild the Hugging Face tokenizer exactly for the split rules known
 * here (GPT-2's, Qwen2's, Llama 3's). Anything else (SentencePiece files, other split rules) is read from a
 * tokenizer.json beside the GGUF file, or refused with a line saying to put one there.
 */
final class GgufTokenizer {
    private GgufTokenizer() {}

    private static final ObjectMapper JSON = new ObjectMapper();
    /** Split rules by tokenizer.ggml.pre (llama.cpp's names), the regex of the Hugging Face pre-tokenizer. */
    private static final Map<String, String> SPLITS = Map.of(
            "qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            "llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
    private static final List<String> GPT2_SPLIT = List.of("gpt-2", "default", "olmo");

    /** {tokenizer.json, tokenizer_config.json} for a GGUF file. */
    static JsonNode[] of(Path file) {
        Path f = file.toAbsolutePath().normalize();
        String why;
        try (Arena arena = Arena.ofConfined()) {
            GgufFile g = GgufFile.open(f, arena);
            Object model = g.metadata().get("tokenizer.ggml.model"), pre = g.metadata().get("tokenizer.ggml.pre");
            List<Object> tokens = GgufModel.list(g, "tokenizer.ggml.tokens");
            if (tokens != null && "gpt2".equals(model) && (pre == null || GPT2_SPLIT.contains(pre) || SPLITS.containsKey(pre))) {
                return new JsonNode[]{tokenizerJson(g, tokens, pre == null ? "gpt-2" : pre.toString()), config(g, tokens)};
            }
            why = tokens == null ? "has no tokenizer.ggml.tokens" : "stores a " + model + " tokenizer" + (pre == null ? "" : " with split rule " + pre);
        }
        Path beside = f.resolveSibling("tokenizer.json");
        if (Files.isRegularFile(beside)) {
            Path tc = f.resolveSibling("tokenizer_config.json");
            return new JsonNode[]{Checkpoint.readJson(beside), Files.isRegularFile(tc) ? Checkpoint.readJson(tc) : null};
        }
        throw new CheckpointException(f + ": the file " + why + ", which moe-serve cannot rebuild (it rebuilds byte-level BPE with "
                + "the split rules gpt-2, qwen2, llama-bpe); put the model's tokenizer.json (and tokenizer_config.json) beside it");
    }

    /** llama.cpp's name (tokenizer.ggml.pre) of a tokenizer.json pre-tokenizer, or null if it is not one of ours. */
    static String splitName(JsonNode pre) {
        if ("ByteLevel".equals(pre.path("type").asText()) && pre.path("use_regex").asBoolean(true)) return "gpt-2";
        JsonNode ps = pre.path("pretokenizers");
        if ("Sequence".equals(pre.path("type").asText()) && ps.size() == 2 && "ByteLevel".equals(ps.get(1).path("type").asText())) {
            String regex = ps.get(0).path("pattern").path("Regex").asText();
            for (Map.Entry<String, String> e : SPLITS.entrySet()) if (e.getValue().equals(regex)) return e.getKey();
        }
        return null;
    }

    private static ObjectNode tokenizerJson(GgufFile g, List<Object> tokens, String pre) {
        List<Object> types = GgufModel.list(g, "tokenizer.ggml.token_type"), merges = GgufModel.list(g, "tokenizer.ggml.merges");
        ObjectNode t = JSON.createObjectNode();
        t.put("version", "1.0");
        t.putNull("truncation");
        t.putNull("padding");
        ArrayNode added = t.putArray("added_tokens");
        t.putNull("normalizer");
        ObjectNode byteLevel = JSON.createObjectNode().put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", !SPLITS.containsKey(pre));
        if (SPLITS.containsKey(pre)) {
            ObjectNode seq = t.putObject("pre_tokenizer").put("type", "Sequence");
            ArrayNode ps = seq.putArray("pretokenizers");
            ObjectNode split = ps.addObject().put("type", "Split");
            split.putObject("pattern").put("Regex", SPLITS.get(pre));
            split.put("behavior", "Isolated").put("invert", false);
            ps.add(byteLevel);
        } else {
            t.set("pre_tokenizer", byteLevel);
        }
        t.putNull("post_processor");
        t.set("decoder", byteLevel.deepCopy().put("use_regex", true));
        ObjectNode m = t.putObject("model");
        m.put("type", "BPE").putNull("dropout");
        m.putNull("unk_token");
        m.putNull("continuing_subword_prefix");
        m.putNull("end_of_word_suffix");
        m.put("fuse_unk", false).put("byte_fallback", false).put("ignore_merges", false);
        ObjectNode vocab = m.putObject("vocab");
        for (int id = 0; id < tokens.size(); id++) {
            long type = types != null && id < types.size() && types.get(id) instanceof Long l ? l : 1;
            String tok = String.valueOf(tokens.get(id));
            if (type == 5) continue; // unused (padding ids)
            if (type == 3 || type == 4) { // control / user-defined: matched whole, before the BPE
                added.addObject().put("id", id).put("content", tok).put("single_word", false).put("lstrip", false)
                        .put("rstrip", false).put("normalized", false).put("special", type == 3);
                continue;
            }
            vocab.put(tok, id);
        }
        ArrayNode ms = m.putArray("merges");
        if (merges != null) for (Object x : merges) ms.add(String.valueOf(x));
        return t;
    }

    private static ObjectNode config(GgufFile g, List<Object> tokens) {
        ObjectNode c = JSON.createObjectNode();
        c.put("add_bos_token", g.metadata().get("tokenizer.ggml.add_bos_token") instanceof Boolean b && b);
        if (g.metadata().get("tokenizer.chat_template") instanceof String s) c.put("chat_template", s);
        if (g.metadata().get("tokenizer.ggml.bos_token_id") instanceof Long b && b >= 0 && b < tokens.size()) c.put("bos_token", String.valueOf(tokens.get(b.intValue())));
        if (g.metadata().get("tokenizer.ggml.eos_token_id") instanceof Long e && e >= 0 && e < tokens.size()) c.put("eos_token", String.valueOf(tokens.get(e.intValue())));
        return c;
    }
}
