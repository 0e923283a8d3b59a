package org.moeserve.runtime.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.routing.TraceFormatException;
import org.moeserve.routing.TraceReader;
import org.moeserve.runtime.TestModels;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Mutated checkpoint headers, configs and traces (seeded): each either loads or fails with one line that names the
 * file, never another exception or a stack trace, and never by running out of memory or time.
 */
class FileFuzzTest {
    static final String[] VALUES = {"null", "true", "-1", "0", "1e400", "2147483647", "-2147483648", "4294967299", "\"\"", "[]", "{}",
            "1.5", "\"BF16\"", "\"F8\"", "[1,2]", "[-1]", "[0,99999999999]", "\"x\""};

    @TempDir
    Path tmp;
    int dirs;

    static String mutate(String s, SplittableRandom r) {
        StringBuilder b = new StringBuilder(s);
        for (int e = 0, n = 1 + r.nextInt(3); e < n && b.length() > 0; e++) {
            int at = r.nextInt(b.length());
            switch (r.nextInt(4)) {
                case 0 -> b.deleteCharAt(at);
                case 1 -> b.insert(at, (char) r.nextInt(0x20, 0x7f));
                case 2 -> {
                    int colon = b.indexOf(":", at);
                    if (colon < 0) break;
                    int end = colon + 1;
                    while (end < b.length() && ",}]".indexOf(b.charAt(end)) < 0) end++;
                    b.replace(colon + 1, end, VALUES[r.nextInt(VALUES.length)]);
                }
                default -> b.setCharAt(at, (char) r.nextInt(0x20, 0x7f));
            }
        }
        return b.toString();
    }

    static void oneLine(Throwable e, Path file) {
        String m = String.valueOf(e.getMessage());
        assertTrue(m.lines().count() == 1, "one line: " + m);
        assertTrue(m.contains(file.getFileName().toString()) || m.contains(file.getParent().getFileName().toString()),
                "names the file: " + m);
    }

    @Test
    void mutatedConfigsAndCheckpointHeadersFailInOneLine() throws IOException {
        Path src = TestModels.dir("tiny-olmoe-random");
        String config = Files.readString(src.resolve("config.json"));
        byte[] st = Files.readAllBytes(src.resolve("model.safetensors"));
        int hn = (int) ByteBuffer.wrap(st, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(st, 8, hn, StandardCharsets.UTF_8);
        byte[] data = Arrays.copyOfRange(st, 8 + hn, st.length);
        SplittableRandom r = new SplittableRandom(7 + Long.parseLong(System.getenv().getOrDefault("MOE_FUZZ_SEED", "0")));
        int loaded = 0, refused = 0;
        for (int i = 0; i < 120; i++) {
            Path dir = tmp.resolve("m" + dirs++);
            Files.createDirectories(dir);
            for (String f : List.of("tokenizer.json", "tokenizer_config.json")) Files.copy(src.resolve(f), dir.resolve(f));
            boolean cfg = i % 2 == 0;
            Files.writeString(dir.resolve("config.json"), cfg ? mutate(config, r) : config);
            byte[] h = (cfg ? header : mutate(header, r)).getBytes(StandardCharsets.UTF_8);
            ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
            b.putLong(h.length).put(h).put(data);
            Files.write(dir.resolve("model.safetensors"), b.array());
            try (MoeModel m = MoeModel.load(dir)) {
                loaded++;
            } catch (CheckpointException e) {
                oneLine(e, dir.resolve(cfg ? "config.json" : "model.safetensors"));
                assertTrue(e.getMessage().startsWith(dir.toAbsolutePath().toString()), "the whole path: " + e.getMessage());
                refused++;
            } catch (Throwable t) {
                fail("mutation " + i + " (" + (cfg ? "config" : "header") + ") threw " + t, t);
            }
        }
        assertTrue(refused > 30 && loaded + refused == 120, loaded + " loaded, " + refused + " refused");
    }

    /**
     * GGUF headers with bytes overwritten, lengths and counts made huge, negative or zero (seeded): the file loads
     * (tokenizer included) or fails with one line that names it; never another exception, never out of memory.
     */
    @Test
    void mutatedGgufHeadersFailInOneLine() throws IOException {
        Path good = tmp.resolve("good.gguf");
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            GgufExport.write(m, good, new GgufExport.Quantization(GgufExport.Target.Q4_0, false));
        }
        byte[] all = Files.readAllBytes(good);
        int header = 0; // where the tensor data starts: mutate only the header (metadata and tensor table)
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            var g = GgufFile.open(good, arena);
            long min = Long.MAX_VALUE;
            for (GgufFile.Info i : g.tensors().values()) min = Math.min(min, g.fileOffsetOf(g.bytes(i)));
            header = (int) min;
        }
        SplittableRandom r = new SplittableRandom(13 + Long.parseLong(System.getenv().getOrDefault("MOE_FUZZ_SEED", "0")));
        long[] extremes = {0, 1, -1, Integer.MAX_VALUE, Long.MAX_VALUE, 1L << 40, 255, 13};
        int loaded = 0, refused = 0;
        for (int i = 0; i < 150; i++) {
            byte[] b = all.clone();
            for (int e = 0, n = 1 + r.nextInt(3); e < n; e++) {
                int at = r.nextInt(header - 8);
                if (r.nextBoolean()) b[at] = (byte) r.nextInt(256);
                else ByteBuffer.wrap(b, at, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(extremes[r.nextInt(extremes.length)]);
            }
            Path f = tmp.resolve("f" + i + ".gguf");
            Files.write(f, b);
            try (MoeModel m = MoeModel.load(f); Tokenizer t = Tokenizer.load(f, m.config())) {
                loaded++;
            } catch (CheckpointException e) {
                oneLine(e, f);
                refused++;
            } catch (Throwable t) {
                fail("mutation " + i + " threw " + t, t);
            }
        }
        assertTrue(refused > 50 && loaded + refused == 150, loaded + " loaded, " + refused + " refused");
    }

    @Test
    void mutatedTracesFailInOneLine() throws IOException {
        String trace = "{\"format\":\"moe-trace/1\",\"model\":\"m\",\"layers\":2,\"experts\":4,\"top_k\":2}\n"
                + "{\"id\":\"a\",\"domain\":\"d\",\"tokens\":[5,6],\"experts\":[[[0,1],[2,3]],[[3,2],[1,0]]],"
                + "\"weights\":[[[0.6,0.4],[0.5,0.5]],[[0.7,0.3],[0.9,0.1]]]}\n";
        SplittableRandom r = new SplittableRandom(11 + Long.parseLong(System.getenv().getOrDefault("MOE_FUZZ_SEED", "0")));
        int refused = 0;
        for (int i = 0; i < 300; i++) {
            Path f = tmp.resolve("t" + i + ".jsonl");
            Files.writeString(f, mutate(trace, r));
            try {
                TraceReader.read(f);
            } catch (TraceFormatException e) {
                oneLine(e, f);
                refused++;
            } catch (Throwable t) {
                fail("trace mutation " + i + " threw " + t + ":\n" + Files.readString(f), t);
            }
        }
        assertTrue(refused > 100, refused + " refused");
    }
}
