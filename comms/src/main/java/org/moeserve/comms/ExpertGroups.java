package org.moeserve.comms;

import java.util.ArrayList;
import java.util.List;

/**
 * Rows grouped by expert: the one grouping every executor uses (the engine's local one, in-process expert
 * parallelism per device, a cluster member per remote call), so each expert runs once over all the rows routed to it.
 * Groups come in ascending expert order, the rows of a group in ascending row order: the order of work is fixed,
 * and (since each row's arithmetic is its own) the results never depend on it.
 */
public final class ExpertGroups {
    private ExpertGroups() {}

    /** Expert {@code expert}'s rows, and for each which of the row's top-k choices it is. */
    public record Group(int expert, int[] rows, int[] slots) {
        public int size() { return rows.length; }

        /** The group's inputs: x[rows[i]] (shared, not copied). */
        public float[][] gather(float[][] x) {
            float[][] g = new float[rows.length][];
            for (int i = 0; i < rows.length; i++) g[i] = x[rows[i]];
            return g;
        }

        /** contrib[rows[i]][slots[i]] = y[i]. */
        public void scatter(float[][] y, float[][][] contrib) {
            for (int i = 0; i < rows.length; i++) contrib[rows[i]][slots[i]] = y[i];
        }
    }

    /** Which (row, top-k slot) choices to group. */
    @FunctionalInterface
    public interface Selector {
        boolean test(int row, int slot);
    }

    /** Every choice of rows 0..rows-1: {@code idx[r][j]} is row r's j-th expert (-1: none). */
    public static List<Group> of(int[][] idx, int rows, int experts) { return of(idx, rows, experts, (r, j) -> true); }

    /** The selected choices of rows 0..rows-1, grouped by expert. */
    public static List<Group> of(int[][] idx, int rows, int experts, Selector keep) {
        int[] count = new int[experts];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < idx[r].length; j++) {
                int e = idx[r][j];
                if (e < 0) continue;
                if (e >= experts) throw new IllegalArgumentException("row " + r + " names expert " + e + " but there are " + experts);
                if (keep.test(r, j)) count[e]++;
            }
        }
        int[][] rowsOf = new int[experts][], slotsOf = new int[experts][];
        for (int e = 0; e < experts; e++) {
            if (count[e] == 0) continue;
            rowsOf[e] = new int[count[e]];
            slotsOf[e] = new int[count[e]];
            count[e] = 0;
        }
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < idx[r].length; j++) {
                int e = idx[r][j];
                if (e < 0 || !keep.test(r, j)) continue;
                rowsOf[e][count[e]] = r;
                slotsOf[e][count[e]++] = j;
            }
        }
        List<Group> out = new ArrayList<>();
        for (int e = 0; e < experts; e++) if (rowsOf[e] != null) out.add(new Group(e, rowsOf[e], slotsOf[e]));
        return out;
    }
}
