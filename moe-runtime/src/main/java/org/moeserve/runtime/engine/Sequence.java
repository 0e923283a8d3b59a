package org.moeserve.runtime.engine;

import java.util.Arrays;

/** One sequence being decoded: its id, the tokens it has processed so far, and its KV cache. */
public final class Sequence {
    private final long id;
    final KVCache cache;
    private int[] tokens = new int[16];
    private int length;
    private int[][] lastPath; // the expert path (per MoE layer) of the last token processed

    /** The expert path of the last token processed (per MoE layer), or null before the first forward. */
    public int[][] lastPath() { return lastPath; }

    void setLastPath(int[][] path) { lastPath = path; }

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
