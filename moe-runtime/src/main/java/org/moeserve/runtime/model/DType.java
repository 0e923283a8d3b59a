package org.moeserve.runtime.model;

/**
 * Element types of weights we compute with; activations are always fp32. Besides the float types, llama.cpp's block
 * formats (their layout is ggml's, byte for byte, so a GGUF file's tensors are used where they are mapped): a block
 * of {@link #blockElems()} consecutive elements of a row is stored in {@link #blockBytes()} bytes. A quantized row's
 * length must be a whole number of blocks. See {@link Blocks} for each layout.
 */
public enum DType {
    F32(1, 4, 0), F16(1, 2, 1), BF16(1, 2, 30),
    /** 32 x int8 times one fp16 scale. */
    Q8_0(32, 34, 8),
    /** 32 x 4-bit (value - 8) times one fp16 scale. */
    Q4_0(32, 18, 2),
    /** 32 x 5-bit (value - 16) times one fp16 scale: what llama.cpp's Q4_K_M uses where a row is not 256 wide. */
    Q5_0(32, 22, 6),
    /** 256 x 4-bit in 8 groups of 32, each with a 6-bit scale and a 6-bit min, under two fp16 super-scales. */
    Q4_K(256, 144, 12),
    /** 256 x 6-bit (value - 32) in 16 groups of 16, each with an int8 scale, under one fp16 super-scale. */
    Q6_K(256, 210, 14);

    private final int blockElems, blockBytes, ggmlType;

    DType(int blockElems, int blockBytes, int ggmlType) {
        this.blockElems = blockElems;
        this.blockBytes = blockBytes;
        this.ggmlType = ggmlType;
    }

    /** Bytes of one element of a float type. A block format has no per-element size: use {@link #byteSize}. */
    public int bytes() {
        if (quantized()) throw new IllegalStateException(this + " is a block format; use byteSize(elements)");
        return blockBytes;
    }

    public int blockElems() { return blockElems; }

    public int blockBytes() { return blockBytes; }

    /** ggml's type number, as GGUF files store it. */
    public int ggmlType() { return ggmlType; }

    public boolean quantized() { return blockElems > 1; }

    /** Bytes of {@code elements} consecutive elements (a whole number of blocks). */
    public long byteSize(long elements) {
        if (elements % blockElems != 0) {
            throw new IllegalArgumentException(elements + " elements are not a whole number of " + this + " blocks of " + blockElems);
        }
        try {
            return Math.multiplyExact(elements / blockElems, (long) blockBytes);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(elements + " elements of " + this + " are more bytes than a long counts");
        }
    }

    /** Average bits per weight. */
    public double bitsPerWeight() { return 8.0 * blockBytes / blockElems; }

    /** The dtype named by a safetensors header, or null if we do not compute with it. */
    public static DType fromSafetensors(String name) {
        return switch (name) {
            case "F32" -> F32;
            case "F16" -> F16;
            case "BF16" -> BF16;
            default -> null;
        };
    }

    /** The dtype of a ggml type number, or null if we do not compute with it. */
    public static DType fromGgml(int type) {
        for (DType d : values()) if (d.ggmlType == type) return d;
        return null;
    }

    /** ggml's name of a type number (for messages about the ones we do not support). */
    public static String ggmlName(int type) {
        String[] names = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
                "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",
                "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8",
                "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
        return type >= 0 && type < names.length ? names[type] : "type " + type;
    }
}
