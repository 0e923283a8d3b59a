package org.moeserve.placement;

import java.util.Locale;
import java.util.Map;

/**
 * How good a plan is for a problem. For every known pair of layers (a, b) and token transition i -> j: the token
 * sits on one of i's devices (each equally likely) and goes to a replica of j on the same device if there is one,
 * else on the same node, else elsewhere. crossDevice / crossNode = the share of transitions that leave the device /
 * the node; bytesPerToken = crossing transitions per token and MoE layer x hidden bytes x 2 (dispatch and combine);
 * load imbalance = max over devices / mean device load, per layer (a replica takes an equal share of its expert's
 * load), averaged and worst over layers.
 */
public record PlanMetrics(double crossDevice, double crossNode, double bytesPerToken, double meanImbalance,
                          double maxImbalance) {

    public static PlanMetrics of(PlacementPlan plan, PlacementProblem p) {
        Topology t = p.topology();
        double total = 0, crossD = 0, crossN = 0;
        for (Map.Entry<String, long[][]> e : p.transitions().entrySet()) {
            int[] ab = PlacementProblem.pair(e.getKey());
            long[][] T = e.getValue();
            for (int i = 0; i < p.experts(); i++) {
                var from = plan.devicesOf(ab[0], i);
                for (int j = 0; j < p.experts(); j++) {
                    if (T[i][j] == 0) continue;
                    var to = plan.devicesOf(ab[1], j);
                    double dev = 0, node = 0;
                    for (int d : from) {
                        boolean sameDev = to.contains(d), sameNode = false;
                        for (int q : to) if (t.node(q) == t.node(d)) sameNode = true;
                        if (!sameDev) dev++;
                        if (!sameNode) node++;
                    }
                    total += T[i][j];
                    crossD += T[i][j] * dev / from.size();
                    crossN += T[i][j] * node / from.size();
                }
            }
        }
        double devFrac = total == 0 ? 0 : crossD / total, nodeFrac = total == 0 ? 0 : crossN / total;
        double meanImb = 0, maxImb = 0;
        for (int l = 0; l < p.layers(); l++) {
            double imb = imbalance(plan, p, l);
            meanImb += imb / p.layers();
            maxImb = Math.max(maxImb, imb);
        }
        return new PlanMetrics(devFrac, nodeFrac, devFrac * p.topK() * p.hiddenBytes() * 2.0, meanImb, maxImb);
    }

    static double imbalance(PlacementPlan plan, PlacementProblem p, int l) {
        int[] reps = plan.replicaCounts(l, p.experts());
        double[] dev = new double[p.topology().devices()];
        double sum = 0;
        for (int s = 0; s < plan.phy2log()[l].length; s++) {
            int e = plan.phy2log()[l][s];
            double share = (double) p.load()[l][e] / reps[e];
            dev[plan.device(s)] += share;
            sum += share;
        }
        double max = 0;
        for (double d : dev) max = Math.max(max, d);
        return sum == 0 ? 1 : max / (sum / dev.length);
    }

    public String row(String name, double seconds, String gap) {
        return String.format(Locale.ROOT, "| %s | %.1f%% | %.1f%% | %.0f | %.3f | %.3f | %.2f s | %s |", name, 100 * crossDevice,
                100 * crossNode, bytesPerToken, meanImbalance, maxImbalance, seconds, gap);
    }

    /** As {@link #row(String, double, String)} with the top-1 pairs' crossing share beside the all-pairs one. */
    public String row(String name, double top1CrossDevice, double seconds, String gap) {
        return String.format(Locale.ROOT, "| %s | %.1f%% | %.1f%% | %.1f%% | %.0f | %.3f | %.3f | %.2f s | %s |", name, 100 * crossDevice,
                100 * top1CrossDevice, 100 * crossNode, bytesPerToken, meanImbalance, maxImbalance, seconds, gap);
    }
}
