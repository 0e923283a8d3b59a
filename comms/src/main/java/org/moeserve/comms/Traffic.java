package org.moeserve.comms;

import org.moeserve.placement.Topology;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Token messages and bytes between devices, per link (from, to) and per MoE layer, by kind. Thread-safe; the
 * in-process engine counts what it actually copies, the simulator what the routing implies.
 */
public final class Traffic {
    private final Topology topology;
    private final long[][] bytes, messages;
    private final long[] layerBytes;
    private final long[] kindBytes = new long[Dispatch.Kind.values().length];

    public Traffic(Topology topology, int layers) {
        this.topology = topology;
        int d = topology.devices();
        bytes = new long[d][d];
        messages = new long[d][d];
        layerBytes = new long[layers];
    }

    public synchronized void add(Dispatch.Kind kind, int layer, int from, int to, long n) {
        if (from == to) return;
        bytes[from][to] += n;
        messages[from][to]++;
        if (layer >= 0) layerBytes[layer] += n;
        kindBytes[kind.ordinal()] += n;
    }

    public synchronized long bytes(int from, int to) { return bytes[from][to]; }

    public synchronized long messages(int from, int to) { return messages[from][to]; }

    public synchronized long totalBytes() {
        long s = 0;
        for (long[] row : bytes) for (long v : row) s += v;
        return s;
    }

    public synchronized long totalMessages() {
        long s = 0;
        for (long[] row : messages) for (long v : row) s += v;
        return s;
    }

    /** Bytes on links between nodes. */
    public synchronized long interNodeBytes() {
        long s = 0;
        for (int a = 0; a < bytes.length; a++) for (int b = 0; b < bytes.length; b++) if (topology.node(a) != topology.node(b)) s += bytes[a][b];
        return s;
    }

    public synchronized long layerBytes(int layer) { return layerBytes[layer]; }

    public synchronized long kindBytes(Dispatch.Kind k) { return kindBytes[k.ordinal()]; }

    public synchronized long[][] bytesMatrix() {
        long[][] out = new long[bytes.length][];
        for (int a = 0; a < bytes.length; a++) out[a] = bytes[a].clone();
        return out;
    }

    public synchronized Map<String, Object> summary() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("bytes", totalBytes());
        m.put("messages", totalMessages());
        m.put("inter_node_bytes", interNodeBytes());
        for (Dispatch.Kind k : Dispatch.Kind.values()) m.put(k.name().toLowerCase(java.util.Locale.ROOT) + "_bytes", kindBytes(k));
        return m;
    }
}
