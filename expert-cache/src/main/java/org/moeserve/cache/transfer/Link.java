package org.moeserve.cache.transfer;

import org.moeserve.units.LinkModel;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The schedule of a serial link, in the clock's time. Transfers wait in order of priority (0 = needed now; 1, 2, ...
 * = a prefetch for that many layers ahead), then of arrival (one already begun before any of its priority not
 * begun), and each runs when the one before it ends. An expert is copied as its {@value #CHUNKS} weight matrices one
 * after another, so a more urgent transfer overtakes one on the wire at its next matrix boundary: a demand load waits
 * at most a third of a load behind a prefetch, never a whole one. Cancelling a transfer that has not begun gives its
 * time back. Not thread-safe: the cache guards it.
 */
public final class Link {
    /** Chunks a transfer is copied in (an expert's gate, up and down matrices): where it can be overtaken. */
    public static final int CHUNKS = 3;

    /** One transfer. */
    public static final class Transfer {
        final long nanos;
        int priority;
        final long order;
        int lane = -1;                           // readers model: the reader it runs on, or -1 (the caller's thread)
        long startAt = Long.MAX_VALUE, readyAt = Long.MAX_VALUE; // first start (fixed once reached), planned end
        boolean cancelled;
        long base, baseAt;                       // link time done by baseAt
        final List<long[]> segments = new ArrayList<>(); // planned segments [start, end) after baseAt

        Transfer(long nanos, int priority, long order) {
            this.nanos = nanos;
            this.priority = priority;
            this.order = order;
        }

        public long readyAt() { return readyAt; }

        public int priority() { return priority; }

        /** Link time done by t (t >= the last plan's time). */
        long progress(long t) {
            long p = base;
            for (long[] s : segments) if (t > s[0]) p += Math.min(t, s[1]) - s[0];
            return Math.min(p, nanos);
        }

        boolean begun(long now) { return startAt <= now; }
    }

    private final LinkModel model;
    private final int readers;
    private final List<Transfer> active = new ArrayList<>(); // not yet finished
    private long arrivals;
    private long busyNanos;

    /** A serial link: one transfer at a time, the most urgent first, overtaking at matrix boundaries. */
    public Link(LinkModel model) { this(model, 0); }

    /**
     * With {@code readers > 0}, the schedule of a disk tier's reads instead of a serial link: that many reader threads
     * take queued loads most urgent first, each read running to its end (no overtaking), while a demand load that no
     * reader has begun is read at once on the caller's thread (one after another there), beside the readers. Each read
     * takes the link model's time for its bytes: reads in parallel overlap their latency, which is what a disk with
     * several reads in flight does for expert-sized reads.
     */
    public Link(LinkModel model, int readers) {
        if (readers < 0) throw new IllegalArgumentException("readers is " + readers + " but must be >= 0");
        this.model = model;
        this.readers = readers;
    }

    /** Reader threads modelled (0: a serial link). */
    public int readers() { return readers; }

    public LinkModel model() { return model; }

    /** Total time the link has been (or is scheduled to be) busy with transfers that were not cancelled. */
    public long busyNanos() { return busyNanos; }

    public Transfer submit(long bytes, int priority, long now) {
        Transfer t = new Transfer(model.nanosFor(bytes), priority, arrivals++);
        t.baseAt = now;
        active.add(t);
        reschedule(now);
        busyNanos += t.nanos;
        return t;
    }

    /** When a transfer of these bytes at this priority would be ready if submitted now (nothing is changed). */
    public long projectedReady(long bytes, int priority, long now) {
        if (readers > 0) return plan(now, null, bytes, priority);
        long cursor = now;
        Transfer wire = onWire(now);
        for (Transfer t : ordered(now)) {
            long left = t.nanos - t.progress(now);
            if (t == wire) {
                long chunk = chunkNanos(t), done = t.progress(now);
                long boundary = Math.min(t.nanos, (done + chunk - 1) / chunk * chunk);
                cursor += boundary - done; // the wire finishes its chunk in any case
                left = t.nanos - boundary;
                if (t.priority > priority) continue; // the rest of it would wait behind the new one
            } else if (t.priority > priority) {
                continue;
            }
            cursor += left;
        }
        return cursor + model.nanosFor(bytes);
    }

    /** Whether a transfer submitted now at a prefetch's priority would start at once (serial: nothing on the link). */
    public boolean idle(long now) {
        if (readers == 0) return freeAt(now) <= now;
        long[] free = laneFree(now);
        for (long f : free) if (f <= now) return true;
        return false;
    }

    /** When every transfer now on the link or waiting is done: {@code now} when the link is idle. */
    public long freeAt(long now) {
        long cursor = now;
        for (Transfer t : active) if (t.readyAt > now) cursor = Math.max(cursor, t.readyAt);
        return cursor;
    }

    /** Raises a transfer's priority (a prefetch that is now needed): it moves ahead of what is less urgent. */
    public void promote(Transfer t, int priority, long now) {
        if (t.priority > priority && t.readyAt > now) {
            t.priority = priority;
            reschedule(now);
        }
    }

    /** Cancels a transfer that has not begun; false if it has. */
    public boolean cancel(Transfer t, long now) {
        if (t.begun(now)) return false;
        t.cancelled = true;
        active.remove(t);
        busyNanos -= t.nanos;
        reschedule(now);
        return true;
    }

    public boolean started(Transfer t, long now) { return t.begun(now); }

    private long chunkNanos(Transfer t) { return Math.max(1, (t.nanos + CHUNKS - 1) / CHUNKS); }

    /** The transfer being copied at {@code now}, if any. */
    private Transfer onWire(long now) {
        for (Transfer t : active) {
            for (long[] s : t.segments) if (s[0] <= now && now < s[1]) return t;
        }
        return null;
    }

    /** Unfinished transfers in the order they get the link: priority, then begun before not, then arrival. */
    private List<Transfer> ordered(long now) {
        List<Transfer> out = new ArrayList<>();
        for (Transfer t : active) if (t.progress(now) < t.nanos) out.add(t);
        out.sort(Comparator.comparingInt((Transfer t) -> t.priority).thenComparing(t -> !t.begun(now)).thenComparingLong(t -> t.order));
        return out;
    }

    private void reschedule(long now) {
        if (readers > 0) {
            active.removeIf(t -> t.readyAt <= now && t.begun(now));
            plan(now, active, 0, 0);
            return;
        }
        active.removeIf(t -> t.readyAt <= now && t.progress(now) >= t.nanos);
        Transfer wire = onWire(now);
        List<Transfer> order = ordered(now);
        long cursor = now;
        for (Transfer t : order) { // rebase every plan at now
            t.base = t.progress(now);
            t.baseAt = now;
        }
        List<long[]> wireFirst = new ArrayList<>();
        if (wire != null) { // the chunk on the wire runs to its boundary whatever comes next
            long chunk = chunkNanos(wire), done = wire.base;
            long boundary = Math.min(wire.nanos, (done + chunk - 1) / chunk * chunk);
            if (boundary > done) {
                wireFirst.add(new long[]{now, now + boundary - done});
                cursor = now + boundary - done;
            }
        }
        for (Transfer t : order) {
            t.segments.clear();
            if (t == wire && !wireFirst.isEmpty()) t.segments.add(wireFirst.getFirst());
        }
        for (Transfer t : order) {
            long done = t.base + (t == wire && !wireFirst.isEmpty() ? wireFirst.getFirst()[1] - wireFirst.getFirst()[0] : 0);
            long left = t.nanos - done;
            if (left > 0) {
                if (!t.begun(now) || t.startAt == Long.MAX_VALUE) t.startAt = cursor;
                t.segments.add(new long[]{cursor, cursor + left});
                cursor += left;
            }
            t.readyAt = t.segments.isEmpty() ? now : t.segments.getLast()[1];
            if (t.startAt == Long.MAX_VALUE) t.startAt = t.segments.isEmpty() ? now : t.segments.getFirst()[0];
        }
    }
    /** The readers' free times from the reads already begun (they run to their end). */
    private long[] laneFree(long now) {
        long[] free = new long[readers];
        java.util.Arrays.fill(free, now);
        for (Transfer t : active) if (t.begun(now) && t.lane >= 0 && t.readyAt > now) free[t.lane] = Math.max(free[t.lane], t.readyAt);
        return free;
    }

    /**
     * The readers model. With {@code commit} (the active list), plans every read not begun: demand on the caller's
     * thread at once (one after another), the rest on the reader that frees first, most urgent first; returns 0.
     * Without, returns when a new read of {@code bytes} at {@code priority} would be ready, changing nothing.
     */
    private long plan(long now, List<Transfer> commit, long bytes, int priority) {
        long[] free = laneFree(now);
        long caller = now;
        for (Transfer t : active) if (t.begun(now) && t.lane < 0 && t.readyAt > now) caller = Math.max(caller, t.readyAt);
        List<Transfer> queued = new ArrayList<>();
        for (Transfer t : active) if (!t.begun(now)) queued.add(t);
        queued.sort(Comparator.comparingInt((Transfer t) -> t.priority).thenComparingLong(t -> t.order));
        for (Transfer t : queued) {
            if (commit == null && t.priority > priority) break; // a new read goes before less urgent ones
            long start;
            int lane = -1;
            if (t.priority == 0) {
                start = caller;
            } else {
                lane = 0;
                for (int i = 1; i < readers; i++) if (free[i] < free[lane]) lane = i;
                start = Math.max(now, free[lane]);
            }
            long end = start + t.nanos;
            if (lane < 0) caller = end;
            else free[lane] = end;
            if (commit != null) {
                t.lane = lane;
                t.startAt = start;
                t.readyAt = end;
                t.base = 0;
                t.baseAt = now;
                t.segments.clear();
                t.segments.add(new long[]{start, end});
            }
        }
        if (commit != null) return 0;
        long nanos = model.nanosFor(bytes);
        if (priority == 0) return caller + nanos;
        long first = Long.MAX_VALUE;
        for (long f : free) first = Math.min(first, f);
        return Math.max(now, first) + nanos;
    }
}
