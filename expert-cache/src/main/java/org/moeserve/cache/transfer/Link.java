package org.moeserve.cache.transfer;

import org.moeserve.units.LinkModel;

import java.util.ArrayList;
import java.util.List;

/**
 * The schedule of a serial link, in the clock's time. A transfer that has started keeps its times; those still
 * waiting are ordered by priority (0 = needed now; 1, 2, ... = a prefetch for that many layers ahead), then by
 * arrival, and each starts when the one before it ends. So a demand load overtakes queued prefetches (never one
 * already on the wire), and cancelling a waiting prefetch gives its time back. Not thread-safe: the cache guards it.
 */
public final class Link {
    /** One transfer. Times are fixed once {@code startAt <= now}. */
    public static final class Transfer {
        final long bytes;
        int priority;
        final long order;
        long startAt, readyAt;
        boolean cancelled;

        Transfer(long bytes, int priority, long order) {
            this.bytes = bytes;
            this.priority = priority;
            this.order = order;
            this.startAt = Long.MAX_VALUE; // not placed yet: waiting
            this.readyAt = Long.MAX_VALUE;
        }

        public long readyAt() { return readyAt; }

        public int priority() { return priority; }
    }

    private final LinkModel model;
    private final List<Transfer> active = new ArrayList<>(); // started or waiting, not yet finished
    private long arrivals;
    private long busyNanos;

    public Link(LinkModel model) { this.model = model; }

    public LinkModel model() { return model; }

    /** Total time the link has been (or is scheduled to be) busy with transfers that were not cancelled. */
    public long busyNanos() { return busyNanos; }

    public Transfer submit(long bytes, int priority, long now) {
        Transfer t = new Transfer(bytes, priority, arrivals++);
        active.add(t);
        reschedule(now);
        busyNanos += model.nanosFor(bytes);
        return t;
    }

    /** When a transfer of these bytes at this priority would be ready if submitted now (nothing is changed). */
    public long projectedReady(long bytes, int priority, long now) {
        long cursor = now;
        for (Transfer t : active) {
            if (t.readyAt <= now && t.startAt <= now) continue; // finished
            if (t.startAt <= now || t.priority <= priority) cursor = Math.max(cursor, t.readyAt);
        }
        return cursor + model.nanosFor(bytes);
    }

    /** When every transfer now on the link or waiting is done: {@code now} or earlier when the link is idle. */
    public long freeAt(long now) {
        long cursor = now;
        for (Transfer t : active) if (!(t.readyAt <= now && t.startAt <= now)) cursor = Math.max(cursor, t.readyAt);
        return cursor;
    }

    /** Raises a waiting transfer's priority (a prefetch that is now needed). */
    public void promote(Transfer t, int priority, long now) {
        if (t.priority > priority && t.startAt > now) {
            t.priority = priority;
            reschedule(now);
        }
    }

    /** Cancels a transfer that has not started; false if it already has. */
    public boolean cancel(Transfer t, long now) {
        if (t.startAt <= now) return false;
        t.cancelled = true;
        active.remove(t);
        busyNanos -= model.nanosFor(t.bytes);
        reschedule(now);
        return true;
    }

    public boolean started(Transfer t, long now) { return t.startAt <= now; }

    private void drop(long now) { active.removeIf(t -> t.readyAt <= now && t.startAt <= now); }

    private void reschedule(long now) {
        drop(now);
        long cursor = now;
        List<Transfer> waiting = new ArrayList<>();
        for (Transfer t : active) {
            if (t.startAt <= now) cursor = Math.max(cursor, t.readyAt);
            else waiting.add(t);
        }
        waiting.sort((a, b) -> a.priority != b.priority ? Integer.compare(a.priority, b.priority) : Long.compare(a.order, b.order));
        for (Transfer t : waiting) {
            t.startAt = cursor;
            t.readyAt = cursor + model.nanosFor(t.bytes);
            cursor = t.readyAt;
        }
    }
}
