package org.moeserve.runtime.model;

import org.junit.jupiter.api.Test;
import org.moeserve.runtime.TestModels;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The bundled tokenizers are byte-level with no merges: ids are the UTF-8 bytes (models/README.md). */
class TokenizerTest {
    @Test
    void encodesToUtf8BytesAndDecodesBack() {
        Checkpoint ck = Checkpoint.open(TestModels.dir("tiny-mixtral-kjv"));
        try (ck; Tokenizer t = Tokenizer.load(ck.dir(), ck.config())) {
            String text = "In the beginning\n\tcafé — ünïcode ✓";
            byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
            int[] ids = t.encode(text);
            int[] want = new int[utf8.length];
            for (int i = 0; i < utf8.length; i++) want[i] = utf8[i] & 0xff;
            assertArrayEquals(want, ids, "no BOS (add_bos_token false), one id per byte");
            assertEquals(text, t.decode(ids));
            assertEquals("", t.decode(new int[]{256, 257}), "special tokens decode to nothing");
        }
    }

    @Test
    void textStreamHoldsBackSplitCharacters() {
        byte[] b = "é✓".getBytes(StandardCharsets.UTF_8); // 2 + 3 bytes
        TextStream s = new TextStream();
        StringBuilder out = new StringBuilder();
        for (byte x : b) out.append(s.push(new byte[]{x}));
        assertEquals("é✓", out.toString());
        assertEquals("", s.push(new byte[]{(byte) 0xe2}));
        assertEquals("\ufffd", s.finish(), "a dangling partial character becomes U+FFFD at the end");
    }

    /** The random-weight families' tokenizers against the ids PyTorch's reference run used (golden.json). */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"tiny-qwen3moe-random", "tiny-olmoe-random", "tiny-mixtral-kjv"})
    void encodesTheGoldenPromptsToTheReferenceIds(String model) throws java.io.IOException {
        Checkpoint ck = Checkpoint.open(TestModels.dir(model));
        com.fasterxml.jackson.databind.JsonNode g = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(TestModels.dir(model).resolve("golden.json").toFile());
        int checked = 0;
        try (ck; Tokenizer t = Tokenizer.load(ck.dir(), ck.config())) {
            for (com.fasterxml.jackson.databind.JsonNode p : g.get("prompts")) {
                int[] want = new int[p.get("input_ids").size()];
                for (int i = 0; i < want.length; i++) want[i] = p.get("input_ids").get(i).asInt();
                String text = p.get("text").asText();
                assertArrayEquals(want, t.encode(text), model + ": " + text);
                assertEquals(text, t.decode(want), model + ": decode");
                checked++;
            }
        }
        assertEquals(g.get("prompts").size(), checked);
        org.junit.jupiter.api.Assertions.assertTrue(checked >= 4, model + ": " + checked + " prompts");
    }
}
