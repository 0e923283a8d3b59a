package org.moeserve.cache.transfer;

import org.junit.jupiter.api.Test;
import org.moeserve.units.LinkModel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The two schedules a link keeps: a serial link, and a disk tier's reader threads beside demand reads. */
class LinkTest {
    /** 1000 bytes at 1 GB/s and no latency: 1 us a load. */
    static final LinkModel ONE_US = new LinkModel(1e9, 0);
    static final long T = 1_000;

    @Test
    void aSerialLinkRunsOneLoadAtATimeAndDemandOvertakesAtAMatrixBoundary() {
        Link l = new Link(ONE_US);
        Link.Transfer a = l.submit(1000, 1, 0), b = l.submit(1000, 1, 0);
        assertEquals(T, a.readyAt());
        assertEquals(2 * T, b.readyAt());
        Link.Transfer d = l.submit(1000, 0, 100); // demand while a is on the wire: a's first third finishes, then d
        assertEquals(Link.CHUNKS == 3 ? 334 + T : d.readyAt(), d.readyAt());
        assertFalse(l.idle(100));
    }

    @Test
    void readersRunLoadsInParallelMostUrgentFirstWithoutOvertaking() {
        Link l = new Link(ONE_US, 2);
        Link.Transfer a = l.submit(1000, 2, 0), b = l.submit(1000, 2, 0);
        assertEquals(T, a.readyAt(), "two readers: both at once");
        assertEquals(T, b.readyAt());
        assertFalse(l.idle(0));
        assertEquals(2 * T, l.projectedReady(1000, 1, 0), "a third waits for the first reader to free");
        Link.Transfer c = l.submit(1000, 3, 0), u = l.submit(1000, 1, 0);
        assertEquals(2 * T, u.readyAt(), "the more urgent queued load takes the first free reader");
        assertEquals(2 * T, c.readyAt(), "the other reader");
        Link.Transfer d = l.submit(1000, 0, 10);
        assertEquals(10 + T, d.readyAt(), "a demand load is read at once on the caller's thread, beside the readers");
        assertEquals(10 + 2 * T, l.projectedReady(1000, 0, 10), "demand loads on the caller's thread follow each other");
        assertEquals(T, a.readyAt(), "reads already running are never overtaken");
        assertEquals(T, b.readyAt());
        assertTrue(l.idle(2 * T));
    }

    @Test
    void aQueuedLoadPromotedToDemandStartsOnTheCallerAndACancelledOneGivesItsReaderBack() {
        Link l = new Link(ONE_US, 1);
        Link.Transfer a = l.submit(1000, 1, 0), b = l.submit(1000, 2, 0), c = l.submit(1000, 2, 0);
        assertEquals(2 * T, b.readyAt());
        assertEquals(3 * T, c.readyAt());
        l.promote(c, 0, 100);
        assertEquals(100 + T, c.readyAt(), "needed now: read on the caller's thread");
        assertTrue(l.cancel(b, 200));
        assertFalse(l.cancel(a, 200), "a read begun runs to its end");
        assertEquals(2 * T, l.projectedReady(1000, 1, 200), "b's place on the reader is free again");
        assertEquals(2 * T, l.busyNanos(), "a and c; b's time given back");
        assertThrows(IllegalArgumentException.class, () -> new Link(ONE_US, -1));
    }
}
