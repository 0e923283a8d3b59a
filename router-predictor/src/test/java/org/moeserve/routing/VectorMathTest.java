package org.moeserve.routing;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

class VectorMathTest {
    @Test
    void dotMatchesScalarTwin() {
        SplittableRandom r = new SplittableRandom(4);
        for (int n : new int[]{1, 7, 8, 15, 16, 17, 64, 144, 145}) {
            float[] a = new float[n + 3], b = new float[n];
            for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
            for (int i = 0; i < n; i++) b[i] = (float) r.nextGaussian();
            double mag = 0;
            for (int i = 0; i < n; i++) mag += Math.abs(a[i + 3] * b[i]);
            // different summation orders: within fp32 rounding of the magnitude sum
            assertEquals(VectorMath.dotScalar(a, 3, b, n), VectorMath.dot(a, 3, b, n), 1e-5 * Math.max(1, mag), "n=" + n);
        }
    }
}
