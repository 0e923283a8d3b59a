package org.moeserve.routing;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/** The dot product the predictors run per token and layer, on the Vector API (scalar twin beside it). */
public final class VectorMath {
    private VectorMath() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();

    /** sum_i a[ao + i] * b[i], i < n. */
    public static float dot(float[] a, int ao, float[] b, int n) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0;
        int i = 0;
        for (int up = n - n % (2 * L); i < up; i += 2 * L) {
            a0 = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, i), a0);
            a1 = FloatVector.fromArray(F, a, ao + i + L).fma(FloatVector.fromArray(F, b, i + L), a1);
        }
        for (int up = n - n % L; i < up; i += L) {
            a0 = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, i), a0);
        }
        FloatVector v = a0.add(a1);
        float s = 0;
        for (int k = 0; k < L; k++) s += v.lane(k);
        for (; i < n; i++) s += a[ao + i] * b[i];
        return s;
    }

    public static float dotScalar(float[] a, int ao, float[] b, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += a[ao + i] * b[i];
        return s;
    }
}
