package org.moeserve.routing.torch;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.routing.TraceFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The restricted torch.save reader on files written by a real torch.save (src/test/resources/torch/make_fixtures.py). */
class TorchFileTest {
    static final Path DIR = Path.of("src/test/resources/torch");

    @TempDir
    Path tmp;

    @Test
    void everyValueKindReadsBackAsTorchWroteIt() throws IOException {
        Map<?, ?> m = (Map<?, ?>) TorchFile.read(DIR.resolve("misc.pt"));
        assertEquals(List.of("f32", "bf16", "f16", "bool", "i8", "transposed", "shared_a", "shared_b", "scalar", "big", "neg",
                "pi", "text", "none", "flag", "nested"), List.copyOf(m.keySet()), "insertion order kept");
        TorchFile.Tensor f32 = (TorchFile.Tensor) m.get("f32");
        assertEquals("float32", f32.dtype());
        assertArrayEquals(new int[]{2, 2}, f32.shape());
        assertArrayEquals(new double[]{1.5, -2.25, 3.0, (double) 1e-3f}, f32.floats());
        assertArrayEquals(new double[]{1.0, -0.5, 3.0}, ((TorchFile.Tensor) m.get("bf16")).floats());
        assertArrayEquals(new double[]{0.25, 65504.0}, ((TorchFile.Tensor) m.get("f16")).floats());
        assertArrayEquals(new long[]{1, 0, 1}, ((TorchFile.Tensor) m.get("bool")).ints());
        assertArrayEquals(new long[]{-128, 127}, ((TorchFile.Tensor) m.get("i8")).ints());
        TorchFile.Tensor tr = (TorchFile.Tensor) m.get("transposed");
        assertArrayEquals(new int[]{3, 2}, tr.shape());
        assertArrayEquals(new long[]{0, 3, 1, 4, 2, 5}, tr.ints(), "a transposed view is materialised in its own row order");
        TorchFile.Tensor a = (TorchFile.Tensor) m.get("shared_a"), b = (TorchFile.Tensor) m.get("shared_b");
        assertArrayEquals(new int[]{11}, a.shape());
        assertEquals(0, a.ints()[0], "column 0 of the wide map is zero");
        assertFalse(java.util.Arrays.equals(a.ints(), b.ints()), "two rows of one storage, at their own offsets");
        TorchFile.Tensor scalar = (TorchFile.Tensor) m.get("scalar");
        assertArrayEquals(new int[0], scalar.shape());
        assertArrayEquals(new long[]{42}, scalar.ints());
        assertEquals((1L << 40) + 3, m.get("big"));
        assertEquals(-300000L, m.get("neg"));
        assertEquals(Math.PI, m.get("pi"));
        assertEquals("prefill \u00e9", m.get("text"));
        assertNull(m.get("none"));
        assertTrue(m.containsKey("none"));
        assertEquals(Boolean.TRUE, m.get("flag"));
        List<?> nested = (List<?>) m.get("nested");
        assertEquals(1L, nested.get(0));
        assertEquals(List.of(2L, List.of(3L, "x")), nested.get(1));
        assertEquals(java.util.Arrays.asList(null, false), ((Map<?, ?>) nested.get(2)).get("k"));
    }

    @Test
    void aPickleThatWouldRunCodeIsRefusedNamingWhatItCalls() {
        var e = assertThrows(TraceFormatException.class, () -> TorchFile.read(DIR.resolve("evil.pt")));
        assertTrue(e.getMessage().contains("posix.system") && e.getMessage().contains("not allowed"), e.getMessage());
        assertTrue(e.getMessage().contains("evil.pt") && e.getMessage().contains("data.pkl byte"), e.getMessage());
    }

    @Test
    void otherFilesAreNamedForWhatTheyAre() throws IOException {
        Path text = tmp.resolve("x.pt");
        Files.writeString(text, "not a zip");
        var e = assertThrows(TraceFormatException.class, () -> TorchFile.read(text));
        assertTrue(e.getMessage().contains("not a torch.save zip archive"), e.getMessage());
        var missing = assertThrows(TraceFormatException.class, () -> TorchFile.read(tmp.resolve("none.pt")));
        assertTrue(missing.getMessage().contains("no such file"), missing.getMessage());
    }

    /** Damaged copies of a real dump through the whole import: each fails in one line naming the file, or reads; nothing else escapes. */
    @Test
    void damagedFilesFailInOneLine() throws IOException {
        byte[] good = Files.readAllBytes(DIR.resolve("sglang-per_token.pt"));
        Random rnd = new Random(11);
        int failed = 0;
        for (int i = 0; i < 300; i++) {
            byte[] b = good.clone();
            if (i % 3 == 0) b = java.util.Arrays.copyOf(b, rnd.nextInt(b.length));
            else for (int k = 0; k < 1 + rnd.nextInt(4); k++) b[rnd.nextInt(b.length)] = (byte) rnd.nextInt(256);
            Path f = tmp.resolve("m" + i + ".pt");
            Files.write(f, b);
            try {
                SglangDump.read(f);
            } catch (TraceFormatException e) {
                failed++;
                assertFalse(e.getMessage().contains("\n"), e.getMessage());
                assertTrue(e.getMessage().contains(f.getFileName().toString()), e.getMessage());
            } catch (java.util.zip.ZipException e) {
                throw new AssertionError("a zip error escaped unnamed: " + e, e);
            }
        }
        assertTrue(failed > 100, "most mutations are detected: " + failed);
    }
}
