package org.moeserve.runtime.kernel;

import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The read pattern follows the steps' times: it explores every 32nd step and keeps what is faster. */
class ReadPatternTest {
    /**
     * Runs n steps whose time is cost[streams in use] under a host that drifts by {@code drift} from step to step;
     * returns how many steps used each pattern.
     */
    private static Map<Integer, Integer> run(ReadPattern p, int n, Map<Integer, Double> cost, double drift) {
        Map<Integer, Integer> used = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            p.beginStep();
            int s = p.streams();
            used.merge(s, 1, Integer::sum);
            p.endStep((long) (1e6 * (1 + drift * Math.sin(i / 5.0)) * cost.get(s)));
        }
        return used;
    }

    @Test
    void startsWithFourRowsExploresTheOthersInTurnAndMovesToTheFastest() {
        ReadPattern p = new ReadPattern(2);
        assertEquals(4, p.favoured(), "several threads start with four rows each");
        Map<Integer, Integer> used = run(p, 384, Map.of(1, 1.15, 2, 1.12, 4, 1.0), 0);
        assertEquals(Map.of(1, 6, 2, 6, 4, 372), used, "four rows fastest: every 32nd step explores, one row and two in turn");
        run(p, 640, Map.of(1, 1.0, 2, 1.06, 4, 1.12), 0.2); // one row 12% faster, the host drifting 20% a step
        assertEquals(1, p.favoured(), "moved to one row");
        used = run(p, 384, Map.of(1, 1.0, 2, 1.06, 4, 1.12), 0.2);
        assertEquals(372, used.get(1), "and keeps exploring every 32nd step");
        run(p, 640, Map.of(1, 1.1, 2, 1.0, 4, 1.1), 0.2);
        assertEquals(2, p.favoured(), "and moves again when two rows become the fastest");
    }

    @Test
    void oneThreadStartsWithTwoRowsAndATieKeepsThePattern() {
        ReadPattern p = new ReadPattern(1);
        assertEquals(2, p.streams());
        for (int i = 0; i < 400; i++) {
            p.beginStep();
            p.endStep(1_000_000);
        }
        assertEquals(2, p.favoured(), "equal times never switch");
    }

    @Test
    void aPinnedPatternStaysWhateverTheTimes() {
        ReadPattern p = new ReadPattern(2);
        p.pin(1);
        assertEquals(Map.of(1, 200), run(p, 200, Map.of(1, 2.0, 2, 1.0, 4, 1.0), 0));
        assertThrows(IllegalArgumentException.class, () -> p.pin(3));
    }
}
