package org.moeserve.placement.greedy;

import java.util.Arrays;

/**
 * A port of DeepSeek's EPLB (github.com/deepseek-ai/EPLB, MIT), step for step, float32 arithmetic and tie-breaking as
 * its torch code does them (stable descending sort, first minimum, first maximum):
 * <pre>
 *   rebalance(weight[layers][logical], replicas, groups, nodes, gpus) -> phy2log[layers][replicas]
 *   Step 1: pack expert groups onto nodes by load (balanced packing)
 *   Step 2: within each node, replicate the expert with the highest load per replica until the slots are used
 *   Step 3: pack the node's physical experts onto its GPUs by load (balanced packing)
 * </pre>
 * When groups do not divide evenly across nodes, the global policy: one group, one node.
 */
public final class Eplb {
    private Eplb() {}

    public static int[][] rebalance(float[][] weight, int replicas, int groups, int nodes, int gpus) {
        return groups % nodes == 0 ? hierarchical(weight, replicas, groups, nodes, gpus) : hierarchical(weight, replicas, 1, 1, gpus);
    }

    static int[][] hierarchical(float[][] w, int numPhy, int numGroups, int numNodes, int numGpus) {
        int layers = w.length, experts = w[0].length;
        require(experts % numGroups == 0, "experts (" + experts + ") must be a multiple of groups (" + numGroups + ")");
        require(numGpus % numNodes == 0, "GPUs (" + numGpus + ") must be a multiple of nodes (" + numNodes + ")");
        require(numPhy % numGpus == 0, "physical experts (" + numPhy + ") must be a multiple of GPUs (" + numGpus + ")");
        require(numPhy >= experts, "physical experts (" + numPhy + ") must be at least the logical ones (" + experts + ")");
        int groupSize = experts / numGroups, groupsPerNode = numGroups / numNodes, phyPerGpu = numPhy / numGpus;
        int logPerNode = experts / numNodes, phyPerNode = numPhy / numNodes;
        int[][] out = new int[layers][numPhy];
        for (int l = 0; l < layers; l++) {
            // Step 1: pack groups to nodes
            float[] perGroup = new float[numGroups];
            for (int g = 0; g < numGroups; g++) for (int k = 0; k < groupSize; k++) perGroup[g] += w[l][g * groupSize + k];
            int[][] gp = balancedPacking(perGroup, numNodes);
            int[] log2mlog = new int[experts];
            for (int g = 0; g < numGroups; g++) {
                for (int k = 0; k < groupSize; k++) log2mlog[g * groupSize + k] = (gp[0][g] * groupsPerNode + gp[1][g]) * groupSize + k;
            }
            int[] mlog2log = inverse(log2mlog);
            for (int n = 0; n < numNodes; n++) {
                // Step 2: construct redundant experts within the node
                float[] perMlog = new float[logPerNode];
                for (int k = 0; k < logPerNode; k++) perMlog[k] = w[l][mlog2log[n * logPerNode + k]];
                int[][] rep = replicate(perMlog, phyPerNode); // phy2mlog, rank, logcnt
                // Step 3: pack physical experts to GPUs
                float[] perPhy = new float[phyPerNode];
                for (int k = 0; k < phyPerNode; k++) perPhy[k] = perMlog[rep[0][k]] / rep[2][rep[0][k]];
                int[][] pp = balancedPacking(perPhy, numGpus / numNodes);
                int[] phy2pphy = new int[phyPerNode];
                for (int k = 0; k < phyPerNode; k++) phy2pphy[k] = pp[0][k] * phyPerGpu + pp[1][k];
                int[] pphy2phy = inverse(phy2pphy);
                for (int k = 0; k < phyPerNode; k++) {
                    out[l][n * phyPerNode + k] = mlog2log[rep[0][pphy2phy[k]] + n * logPerNode];
                }
            }
        }
        return out;
    }

    /** Items onto packs of equal item counts, heaviest first onto the lightest pack: {packIndex[], rankInPack[]}. */
    static int[][] balancedPacking(float[] weight, int packs) {
        int n = weight.length;
        require(n % packs == 0, n + " items do not split evenly into " + packs + " packs");
        int per = n / packs;
        int[] packIndex = new int[n], rank = new int[n];
        if (per == 1) {
            for (int i = 0; i < n; i++) packIndex[i] = i;
            return new int[][]{packIndex, rank};
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Float.compare(weight[b], weight[a])); // stable, descending
        float[] packWeight = new float[packs];
        int[] items = new int[packs];
        for (int item : order) {
            int best = -1;
            for (int p = 0; p < packs; p++) if (items[p] < per && (best < 0 || packWeight[p] < packWeight[best])) best = p;
            packIndex[item] = best;
            rank[item] = items[best];
            packWeight[best] += weight[item];
            items[best]++;
        }
        return new int[][]{packIndex, rank};
    }

    /** Logical experts onto numPhy replicas, minimising the largest load per replica: {phy2log, rank, logcnt}. */
    static int[][] replicate(float[] weight, int numPhy) {
        int numLog = weight.length;
        int[] phy2log = new int[numPhy], rank = new int[numPhy], logcnt = new int[numLog];
        for (int i = 0; i < numLog; i++) phy2log[i] = i;
        Arrays.fill(logcnt, 1);
        for (int i = numLog; i < numPhy; i++) {
            int best = 0;
            for (int e = 1; e < numLog; e++) if (weight[e] / logcnt[e] > weight[best] / logcnt[best]) best = e;
            phy2log[i] = best;
            rank[i] = logcnt[best];
            logcnt[best]++;
        }
        return new int[][]{phy2log, rank, logcnt};
    }

    static int[] inverse(int[] perm) {
        int[] inv = new int[perm.length];
        for (int i = 0; i < perm.length; i++) inv[perm[i]] = i;
        return inv;
    }

    private static void require(boolean ok, String rule) {
        if (!ok) throw new IllegalArgumentException("EPLB: " + rule);
    }
}
