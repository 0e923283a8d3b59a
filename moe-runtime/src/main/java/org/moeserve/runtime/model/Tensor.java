package org.moeserve.runtime.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A named, typed, row-major tensor over a {@link MemorySegment}: a slice of a memory-mapped checkpoint, never a
 * heap copy. A 2-D weight {@code W} has shape (rows, cols) = (out_features, in_features) as PyTorch stores it.
 */
public record Tensor(String name, DType dtype, int[] shape, MemorySegment data) {
    static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public Tensor {
        shape = shape.clone();
        long n = 1;
        for (int d : shape) n *= d;
        if (dtype.quantized() && shape[shape.length - 1] % dtype.blockElems() != 0) {
            throw new IllegalArgumentException("tensor " + name + ": rows of " + shape[shape.length - 1] + " are not a whole number of "
                    + dtype + " blocks of " + dtype.blockElems());
        }
        if (data.byteSize() != dtype.byteSize(n)) {
            throw new IllegalArgumentException("tensor " + name + ": " + data.byteSize() + " bytes but shape "
                    + Arrays.toString(shape) + " of " + dtype + " needs " + dtype.byteSize(n));
        }
    }

    public int rows() { return shape[0]; }

    /** Pages the tensor in (one read per 4 KiB page): "loading" a memory-mapped expert. */
    public long touch() {
        long s = 0;
        for (long i = 0; i < data.byteSize(); i += 4096) s += data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i);
        return s;
    }

    public int cols() { return shape.length == 1 ? 1 : shape[1]; }

    public long elements() { return data.byteSize() / dtype.blockBytes() * dtype.blockElems(); }

    /** Bytes of one row of a 2-D tensor. */
    public long rowBytes() { return dtype.byteSize(cols()); }

    /** Element i (flat, row-major) as fp32. For setup paths and scalar twins, never for hot loops. */
    public float get(long i) {
        return switch (dtype) {
            case F32 -> data.get(FLOAT_LE, i * 4);
            case BF16 -> Float.intBitsToFloat((data.get(SHORT_LE, i * 2) & 0xffff) << 16);
            case F16 -> Float.float16ToFloat(data.get(SHORT_LE, i * 2));
            default -> Blocks.element(dtype, data, i);
        };
    }

    /** The whole tensor as fp32 on the heap: only for small tensors (norm weights, embeddings rows). */
    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact(elements())];
        if (dtype.quantized()) {
            Blocks.dequantize(dtype, data, 0, out.length, out, 0);
            return out;
        }
        for (int i = 0; i < out.length; i++) out[i] = get(i);
        return out;
    }

    /** Row r of a 2-D tensor copied into dst as fp32 (an embedding lookup). */
    public void row(int r, float[] dst) {
        if (dtype.quantized()) {
            Blocks.dequantize(dtype, data, r * rowBytes(), cols(), dst, 0);
            return;
        }
        long base = (long) r * cols();
        for (int i = 0; i < cols(); i++) dst[i] = get(base + i);
    }

    /** A tensor over raw fp32 values, for tests and for weights built in memory. */
    public static Tensor ofFloats(String name, float[] values, int... shape) {
        MemorySegment seg = MemorySegment.ofArray(values.clone());
        return new Tensor(name, DType.F32, shape, seg);
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }

}
