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
}
