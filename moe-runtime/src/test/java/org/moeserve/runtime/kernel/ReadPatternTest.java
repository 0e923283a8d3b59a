package org.moeserve.runtime.kernel;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The read pattern follows the steps' times: it explores every 8th step and keeps what is faster. */
class ReadPatternTest {
    /** Runs n steps whose time is fast when the pattern in use is pairs (and slow otherwise); counts pair steps. */
    private static int run(ReadPattern p, int n, boolean pairsFaster, double drift) {
        int withPairs = 0;
        for (int i = 0; i < n; i++) {
            p.beginStep();
            boolean pairs = p.pairs();
            if (pairs) withPairs++;
            double t = 1e6 * (1 + drift * Math.sin(i / 5.0)) * (pairs == pairsFaster ? 1.0 : 1.12);
            p.endStep((long) t);
        }
        return withPairs;
    }

    @Test
    void startsWithOneRowExploresEveryEighthStepAndSwitchesWhenTheOtherIsFaster() {
        ReadPattern p = new ReadPattern();
        assertFalse(p.favoursPairs());
        assertEquals(12, run(p, 96, false, 0), "one row faster: only the explored steps (every 8th) read pairs");
        assertFalse(p.favoursPairs());
        run(p, 96, true, 0.2); // now pairs are 12% faster, under a host that drifts 20% from step to step
        assertTrue(p.favoursPairs(), "switched to pairs");
        int pairs = run(p, 96, true, 0.2);
        assertEquals(96 - 12, pairs, "and explores one row every 8th step");
        run(p, 96, false, 0.2);
        assertFalse(p.favoursPairs(), "and back");
    }

    @Test
    void aTieKeepsThePattern() {
        ReadPattern p = new ReadPattern();
        for (int i = 0; i < 400; i++) {
            p.beginStep();
            p.endStep(1_000_000);
        }
        assertFalse(p.favoursPairs(), "equal times never switch");
    }
}
