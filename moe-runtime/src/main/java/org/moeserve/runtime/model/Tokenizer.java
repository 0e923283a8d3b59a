package org.moeserve.runtime.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/**
 * The model's tokenizer.json, encoded by the Hugging Face tokenizers library (through DJL, native code bundled
 * in its jar). Decoding is ours: for byte-level BPE vocabularies (GPT-2 style byte-to-unicode map, as every
 * bundled model uses) each token maps to the bytes it stands for, so a stream of tokens can be turned into
 * text incrementally without splitting a UTF-8 character ({@link #tokenBytes}). BOS is prepended only where
 * tokenizer_config.json says {@code add_bos_token: true}.
 */
public final class Tokenizer implements AutoCloseable {
    private final HuggingFaceTokenizer hf;
    private final byte[][] tokenBytes;   // id -> bytes; special tokens -> empty
    private final boolean addBos;
    private final int bosId;
    private final String chatTemplate, bosToken, eosToken;

    private Tokenizer(HuggingFaceTokenizer hf, byte[][] tokenBytes, boolean addBos, int bosId, String chatTemplate,
                      String bosToken, String eosToken) {
        this.hf = hf;
        this.tokenBytes = tokenBytes;
        this.addBos = addBos;
        this.bosId = bosId;
        this.chatTemplate = chatTemplate;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
    }

    /** tokenizer_config.json's chat_template (the "default" one of a list), or null. */
    public String chatTemplate() { return chatTemplate; }

    public String bosToken() { return bosToken; }

    public String eosToken() { return eosToken; }

    /**
     * The tokenizer of a model directory (tokenizer.json, tokenizer_config.json) or of a GGUF file: rebuilt from its
     * metadata where it is a byte-level BPE ({@link GgufTokenizer}), else the tokenizer.json beside the file.
     */
    public static Tokenizer load(Path model, ModelConfig config) {
        // DJL extracts its native library into a cache directory; default it somewhere writable and stable.
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR",
                    Path.of(System.getProperty("user.home"), ".cache", "moe-serve", "djl").toString());
        }
        JsonNode tj, tc = null;
        String where;
        if (Files.isRegularFile(model) && GgufFile.looksLikeGguf(model)) {
            JsonNode[] both = GgufTokenizer.of(model);
            tj = both[0];
            tc = both[1];
            where = model.toAbsolutePath().normalize().toString();
        } else {
            Path file = model.resolve("tokenizer.json");
            if (!Files.isRegularFile(file)) {
                throw new CheckpointException(file + ": file not found; the model directory needs its tokenizer.json");
            }
            tj = Checkpoint.readJson(file);
            Path tcf = model.resolve("tokenizer_config.json");
            if (Files.isRegularFile(tcf)) tc = Checkpoint.readJson(tcf);
            where = file.toString();
        }
        HuggingFaceTokenizer hf;
        try {
            byte[] json = new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsBytes(tj);
            hf = HuggingFaceTokenizer.newInstance(new java.io.ByteArrayInputStream(json),
                    Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false"));
        } catch (IOException | RuntimeException e) {
            throw new CheckpointException(where + ": cannot load tokenizer: " + e.getMessage(), e);
        }
        byte[][] bytes = new byte[config.vocabSize()][];
        Arrays.fill(bytes, new byte[0]);
        Map<Integer, Byte> unicodeToByte = byteLevelDecoder();
        for (Iterator<Map.Entry<String, JsonNode>> it = tj.path("model").path("vocab").properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            int id = e.getValue().asInt();
            if (id < 0 || id >= bytes.length) continue;
            bytes[id] = decodeByteLevel(e.getKey(), unicodeToByte);
        }
        for (JsonNode t : tj.path("added_tokens")) {
            int id = t.path("id").asInt(-1);
            if (id < 0 || id >= bytes.length) continue;
            bytes[id] = t.path("special").asBoolean(false) ? new byte[0]
                    : t.path("content").asText().getBytes(StandardCharsets.UTF_8);
        }
        boolean addBos = false;
        String template = null, bos = "", eos = "";
        if (tc != null) {
            JsonNode c = tc;
            addBos = c.path("add_bos_token").asBoolean(false);
            JsonNode t = c.path("chat_template");
            if (t.isTextual()) template = t.asText();
            else if (t.isArray()) {
                for (JsonNode named : t) if ("default".equals(named.path("name").asText())) template = named.path("template").asText(null);
            }
            bos = tokenText(c.get("bos_token"));
            eos = tokenText(c.get("eos_token"));
        }
        return new Tokenizer(hf, bytes, addBos, config.bosTokenId(), template, bos, eos);
    }

    /** A special token in tokenizer_config.json: a string or {"content": string}. */
    private static String tokenText(JsonNode n) {
        if (n == null || n.isNull()) return "";
        return n.isTextual() ? n.asText() : n.path("content").asText("");
    }

    /** GPT-2's byte-to-unicode table, inverted: printable bytes map to themselves, the rest to 256+n. */
    private static Map<Integer, Byte> byteLevelDecoder() {
        Map<Integer, Byte> m = new HashMap<>();
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            m.put(printable ? b : 256 + n++, (byte) b);
        }
        return m;
    }

    private static byte[] decodeByteLevel(String token, Map<Integer, Byte> table) {
        byte[] out = new byte[token.length()];
        int len = 0;
        for (int i = 0; i < token.length(); ) {
            int cp = token.codePointAt(i);
            i += Character.charCount(cp);
            Byte b = table.get(cp);
            if (b == null) return token.getBytes(StandardCharsets.UTF_8); // not byte-level: take it literally
            out[len++] = b;
        }
        return Arrays.copyOf(out, len);
    }

    /** Token ids of {@code text}, with BOS first where the tokenizer config asks for it. */
    public int[] encode(String text) { return encode(text, addBos); }

    /** Token ids of {@code text}; BOS first only if {@code bos} (a rendered chat template carries its own). */
    public int[] encode(String text, boolean bos) {
        long[] ids = hf.encode(text, false, false).getIds();
        int off = bos && bosId >= 0 ? 1 : 0;
        int[] out = new int[ids.length + off];
        if (off == 1) out[0] = bosId;
        for (int i = 0; i < ids.length; i++) out[i + off] = (int) ids[i];
        return out;
    }

    /** The bytes token {@code id} stands for; empty for special tokens. */
    public byte[] tokenBytes(int id) {
        return id >= 0 && id < tokenBytes.length ? tokenBytes[id] : new byte[0];
    }

    /** Text of a token sequence (special tokens dropped; invalid UTF-8 becomes U+FFFD). */
    public String decode(int[] ids) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int id : ids) out.writeBytes(tokenBytes(id));
        return out.toString(StandardCharsets.UTF_8);
    }

    @Override
    public void close() { hf.close(); }
}
