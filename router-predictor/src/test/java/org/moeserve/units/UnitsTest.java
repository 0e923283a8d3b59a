package org.moeserve.units;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one parser of bytes, bandwidths, durations and links every module and command uses. */
class UnitsTest {
    @Test
    void parsesWhatTheFlagsTake() {
        assertEquals(16e9, Units.parseBandwidth("16GB/s"));
        assertEquals(2.5 * 1024 * 1024 * 1024, Units.parseBandwidth("2.5GiB/s"));
        assertEquals(900e6, Units.parseBandwidth("900 MB/s"));
        assertEquals(10_000, Units.parseDuration("10us"));
        assertEquals(2_000_000, Units.parseDuration("2ms"));
        assertEquals(30_000_000_000L, Units.parseDuration("30s"));
        assertEquals(0, Units.parseDuration("0"));
        assertEquals(147_456, Units.parseBytes("147456"));
        assertEquals(6_000_000, Units.parseBytes("6MB"));
        assertEquals(2L << 30, Units.parseBytes("2GiB"));
        assertEquals(new LinkModel(450e9, 3_000), Units.parseLink("450GB/s,3us", 10_000));
        assertEquals(new LinkModel(16e9, 10_000), Units.parseLink("16GB/s", 10_000));
        assertEquals("450GB/s,3us", Units.formatLink(new LinkModel(450e9, 3_000)));
        assertEquals("80us", Units.formatDuration(80_000));
        assertEquals("1.5ms", Units.formatDuration(1_500_000));
    }

    @Test
    void badTextSaysWhatItShouldLookLike() {
        for (String bad : new String[]{"fast", "16GB", "-1GB/s", "0GB/s", ""}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Units.parseBandwidth(bad), bad);
            assertTrue(e.getMessage().contains("16GB/s"), e.getMessage());
        }
        for (String bad : new String[]{"soon", "-5us", "5 parsecs", "1e3s"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Units.parseDuration(bad), bad);
            assertTrue(e.getMessage().contains("10us"), e.getMessage());
        }
        for (String bad : new String[]{"lots", "6M", "-3", "1e30"}) {
            assertThrows(IllegalArgumentException.class, () -> Units.parseBytes(bad), bad);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Units.parseLink("1GB/s,2us,3", 0));
        assertTrue(e.getMessage().contains("bandwidth, latency"), e.getMessage());
    }
}
