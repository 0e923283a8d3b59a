package org.moeserve.runtime.engine;

import java.util.Arrays;

/** One sequence being decoded: its id, the tokens it has processed so far, and its KV cache. */
public final class Sequence {
    private final long id;
    final KVCache cache;
    private int[] tokens = new int[16];
    private int length;

    Sequence(long id, KVCache cache) {
        this.id = id;
        this.cache = cache;
    }

    public long id() { return id; }

    /** Tokens processed so far: the next token goes to this position. */
    public int length() { return length; }

    public int[] tokens() { return Arrays.copyOf(tokens, length); }

    void append(int[] more) {
        if (length + more.length > tokens.length) tokens = Arrays.copyOf(tokens, Math.max(tokens.length * 2, length + more.length));
        System.arraycopy(more, 0, tokens, length, more.length);
        length += more.length;
    }
}
