package org.moeserve.cache;

import java.lang.foreign.MemorySegment;

/** The slow tier: where an expert's bytes come from (the memory-mapped checkpoint, host memory). */
public interface ExpertSource {
    /** Bytes of one expert; every expert of a model has the same size. */
    long expertBytes();

    /** Copies expert k's bytes into {@code dst} ({@link #expertBytes()} long). */
    void copyTo(ExpertKey k, MemorySegment dst);
}
