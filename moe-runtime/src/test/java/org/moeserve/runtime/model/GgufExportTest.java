package org.moeserve.runtime.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.runtime.TestModels;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GGUF export read back by an independent reader (written here from the GGUF v3 layout): header, metadata,
 * tensor table, alignment, and the bytes of an expert stack and of a RoPE-permuted q matrix. (llama.cpp itself
 * loads the file and reproduces the engine's 64 greedy tokens: bench/scripts/peers.sh.)
 */
class GgufExportTest {
    @TempDir
    Path tmp;

    record Info(long[] dims, int type, long offset) { }

    @Test
    void theDemoModelExportsAsLlamaArchitectureGgufWithTheSameBytes() throws IOException {
        Path f = tmp.resolve("m.gguf");
        try (MoeModel m = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"))) {
            GgufExport.write(m, f);
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(f)).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(0x46554747, b.getInt(), "magic GGUF");
            assertEquals(3, b.getInt());
            long tensors = b.getLong(), kvs = b.getLong();
            assertEquals(1 + 6 * 10 + 2, tensors);
            Map<String, Object> kv = new HashMap<>();
            for (long i = 0; i < kvs; i++) kv.put(str(b), value(b, b.getInt()));
            assertEquals("llama", kv.get("general.architecture"));
            assertEquals(16, kv.get("llama.expert_count"));
            assertEquals(2, kv.get("llama.expert_used_count"));
            assertEquals(6, kv.get("llama.block_count"));
            assertEquals(258, ((Object[]) kv.get("tokenizer.ggml.tokens")).length);
            Map<String, Info> table = new HashMap<>();
            for (long i = 0; i < tensors; i++) {
                String name = str(b);
                long[] dims = new long[b.getInt()];
                for (int d = 0; d < dims.length; d++) dims[d] = b.getLong();
                table.put(name, new Info(dims, b.getInt(), b.getLong()));
            }
            int data = (b.position() + 31) / 32 * 32;
            for (Info i : table.values()) assertEquals(0, i.offset() % 32, "aligned");

            Info gate = table.get("blk.3.ffn_gate_exps.weight");
            assertArrayEquals(new long[]{128, 192, 16}, gate.dims());
            assertEquals(30, gate.type(), "BF16 stays BF16");
            byte[] e5 = m.expert(3, 5).gate().data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            byte[] got = new byte[e5.length];
            b.get(data + (int) gate.offset() + 5 * e5.length, got);
            assertArrayEquals(e5, got, "expert 5's gate, byte for byte, fifth in the stack");

            Info q = table.get("blk.0.attn_q.weight"); // head 1, interleaved row 2i+1 = HF row 16 + i (head_dim 32)
            Tensor wq = m.layer(0).wq();
            long rowBytes = wq.data().byteSize() / wq.rows();
            for (int i = 0; i < 16; i++) {
                for (int j = 0; j < 2; j++) {
                    byte[] want = wq.data().asSlice((32 + j * 16 + i) * rowBytes, rowBytes).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
                    byte[] row = new byte[(int) rowBytes];
                    b.get(data + (int) q.offset() + (int) ((32 + 2 * i + j) * rowBytes), row);
                    assertArrayEquals(want, row, "q head 1, pair " + i + "." + j);
                }
            }
            assertTrue(Files.size(f) >= data + table.get("output.weight").offset() + 258L * 128 * 2);
        }
        try (MoeModel ds = MoeModel.load(TestModels.dir("tiny-deepseekv2-random"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GgufExport.write(ds, tmp.resolve("d.gguf")));
            assertTrue(e.getMessage().contains("Qwen3-MoE") && e.getMessage().contains("DEEPSEEK_V2"), e.getMessage());
        }
    }

    static String str(ByteBuffer b) {
        byte[] s = new byte[(int) b.getLong()];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    static Object value(ByteBuffer b, int type) {
        return switch (type) {
            case 4, 5 -> b.getInt();
            case 6 -> b.getFloat();
            case 7 -> b.get() != 0;
            case 8 -> str(b);
            case 9 -> {
                int et = b.getInt();
                Object[] a = new Object[(int) b.getLong()];
                for (int i = 0; i < a.length; i++) a[i] = value(b, et);
                yield a;
            }
            default -> throw new IllegalStateException("type " + type);
        };
    }
}
