package org.moeserve.placement.cpsat;

import com.google.ortools.Loader;
import com.google.ortools.sat.BoolVar;
import com.google.ortools.sat.CpModel;
import com.google.ortools.sat.CpSolver;
import com.google.ortools.sat.CpSolverSolutionCallback;
import com.google.ortools.sat.CpSolverStatus;
import com.google.ortools.sat.LinearExpr;
import com.google.ortools.sat.LinearExprBuilder;
import org.moeserve.placement.PlacementPlan;
import org.moeserve.placement.PlacementProblem;
import org.moeserve.placement.PlanMetrics;
import org.moeserve.placement.Placer;
import org.moeserve.placement.Topology;
import org.moeserve.placement.greedy.Baselines;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * ExFlow's affinity placement as an integer program (OR-Tools CP-SAT), improved with top-k > 1, replicas and a
 * load-balance bound. Replica counts per logical expert come from EPLB's rule (the hottest get the spare slots);
 * the program decides which devices hold them:
 *
 * <pre>
 *   x[l][e][d] in {0,1}      expert e of layer l has a copy on device d
 *   sum_d x[l][e][d] = replicas[l][e]        sum_e x[l][e][d] = slots
 *   sum_e share[l][e] x[l][e][d] <= cap[l]   (cap = max(balance x mean, EPLB's own max): never looser than EPLB)
 *   for each known pair (a, b) and i -> j with T[i][j] > 0:
 *     dev[i][j] <= sum_d (x[a][i][d] AND x[b][j][d])      node[i][j] <= sum_n (i on n AND j on n)
 *   maximise sum T[i][j] ((inter - intra) node[i][j] + intra dev[i][j])   ==  minimise the expected hop cost
 * </pre>
 *
 * Small problems with no spare slots and chained pairs (8 experts on 4 devices) are solved exactly by
 * {@link ExactChain}'s dynamic programme: a proof of optimality. Others of moderate size are solved whole,
 * warm-started from the best baseline, under a time limit, with the bound (the better of CP-SAT's and
 * {@link #slotBound}) and gap reported. Large ones (the model would exceed {@code maxMonolithic} pair-device terms) are decomposed along the
 * layer chain: each layer is placed with its neighbours fixed, which makes its objective linear (cost of e on d =
 * transitions from and to the fixed neighbours' devices), solved exactly as a min-cost flow when the result respects
 * the load cap (else repaired into the cap and improved by {@link LayerSwaps}, then, for small layers, CP-SAT with the
 * cap), then the chain is swept again while time remains (a
 * large-neighbourhood search whose neighbourhood is one layer).
 */
public final class AffinityPlacer implements Placer {
    /** Solver settings, each with a default and a bound. */
    public record Options(double timeLimitSeconds, double balance, int threads, long maxMonolithic, long maxExactStates) {
        public static final Options DEFAULT = new Options(30, 1.10, Math.max(1, Runtime.getRuntime().availableProcessors()), 200_000);

        /** With the exact dynamic programme for problems of up to 5,000 placements per layer. */
        public Options(double timeLimitSeconds, double balance, int threads, long maxMonolithic) {
            this(timeLimitSeconds, balance, threads, maxMonolithic, 5_000);
        }

        public Options {
            if (!(timeLimitSeconds > 0)) throw new IllegalArgumentException("time limit is " + timeLimitSeconds + " s but must be > 0");
            if (!(balance >= 1)) throw new IllegalArgumentException("balance is " + balance + " but must be >= 1 (max/mean load)");
            if (threads < 1) throw new IllegalArgumentException("threads is " + threads + " but must be >= 1");
        }
    }

    /**
     * What the last solve reached: status, objective (expected hop cost), the best bound on it, and which search
     * produced the plan returned ({@link #producer}: "exact layer-chain programme", "layer chain" or "CP-SAT").
     */
    public record Report(String status, double cost, double bound, boolean decomposed, double seconds, String producer) {
        public Report(String status, double cost, double bound, boolean decomposed, double seconds) {
            this(status, cost, bound, decomposed, seconds, decomposed ? "layer chain" : "CP-SAT");
        }

        public double gap() { return cost <= 0 ? 0 : Math.max(0, (cost - bound) / cost); }
    }

    /** Layers with more expert-device variables than this skip CP-SAT in the chain (swaps only). */
    private static final long LARGE_LAYER = 4_096;
    /** The layer chain's restarts end after this many in a row that found nothing better (or at the time limit). */
    static final int MAX_FRUITLESS_RESTARTS = 30;

    private final Options options;
    private final Consumer<String> progress;
    private Report last;
    private PlacementPlan current;   // re-placement: the plan in force
    private double migrationCost;    // hop-cost units per expert copy that moves

    /**
     * Re-placement: start from {@code current} and charge {@code costPerExpert} (in hop-cost units) for every expert
     * copy placed on a device that did not hold it, so a new plan moves experts only where the gain pays for the
     * bytes (the migration budget users of vLLM's and SGLang's EPLB ask for). Layer-chain search only.
     */
    public AffinityPlacer replacing(PlacementPlan current, double costPerExpert) {
        if (costPerExpert < 0) throw new IllegalArgumentException("migration cost is " + costPerExpert + " but must be >= 0");
        this.current = current;
        this.migrationCost = costPerExpert;
        return this;
    }

    /** Expert copies a plan has on devices that {@code before} did not give them, over all layers. */
    public static int moved(PlacementPlan before, PlacementPlan after, int experts) {
        int n = 0;
        for (int l = 0; l < after.layers(); l++) {
            for (int e = 0; e < experts; e++) {
                var was = before.devicesOf(l, e);
                for (int d : after.devicesOf(l, e)) if (!was.contains(d)) n++;
            }
        }
        return n;
    }

    public AffinityPlacer(Options options, Consumer<String> progress) {
        this.options = options;
        this.progress = progress;
        Loader.loadNativeLibraries();
    }

    @Override
    public String name() { return "affinity (CP-SAT)"; }

    public Report lastReport() { return last; }

    @Override
    public PlacementPlan place(PlacementProblem p) {
        long t0 = System.nanoTime();
        PlacementPlan eplb = Baselines.eplb(groups(p)).place(p);
        // the search keeps EPLB's replica counts, so with spare slots it starts from EPLB's plan (the others replicate
        // by another rule)
        PlacementPlan start = p.redundant() > 0 ? eplb
                : best(p, List.of(eplb, Baselines.contiguous().place(p), Baselines.roundRobin().place(p)));
        if (current != null) {
            current.validate(p);
            PlacementPlan plan = chain(p, current, current, t0, t0 + (long) (options.timeLimitSeconds() * 1e9));
            plan.validate(p);
            return plan;
        }
        if (ExactChain.states(p) <= options.maxExactStates()) { // small: solved exactly, a proof instead of a gap
            int[][] reps = replicas(p, eplb);
            long[][] share = shares(p, reps);
            PlacementPlan exact = ExactChain.solve(p, share, caps(p, eplb, share, options.balance()), eplb, name());
            if (exact != null) {
                double c = cost(exact, p);
                last = new Report("OPTIMAL (exact layer-chain programme, " + ExactChain.states(p) + " placements per layer)", c, c,
                        false, (System.nanoTime() - t0) / 1e9, "exact layer-chain programme");
                progress.accept(String.format(java.util.Locale.ROOT, "  exact layer-chain programme: expected hop cost %.0f, optimal", c));
                exact.validate(p);
                return exact;
            }
        }
        long terms = 0;
        for (long[][] t : p.transitions().values()) for (long[] row : t) for (long v : row) if (v > 0) terms += p.topology().devices();
        boolean whole = terms <= options.maxMonolithic();
        double budget = options.timeLimitSeconds();
        // 1. the layer chain, fast and good; 2. the whole model warm-started from it, to improve it and bound it
        PlacementPlan chained = chain(p, eplb, start, t0, t0 + (long) ((whole ? 0.5 : 1.0) * budget * 1e9));
        Report chainReport = last;
        if (!whole) {
            chained.validate(p);
            return chained;
        }
        PlacementPlan mono = monolithic(p, eplb, chained, t0, t0 + (long) (budget * 1e9));
        Report monoReport = last;
        PlacementPlan plan = monoReport.cost() <= chainReport.cost() ? mono : chained;
        double bound = Math.max(monoReport.bound(), slotBound(p));
        last = new Report(monoReport.status(), Math.min(monoReport.cost(), chainReport.cost()), bound, false,
                (System.nanoTime() - t0) / 1e9, plan == mono && monoReport.cost() < chainReport.cost() ? "CP-SAT" : "layer chain");
        plan.validate(p);
        return plan;
    }

    static int groups(PlacementProblem p) { return p.experts() % p.topology().nodes() == 0 ? p.topology().nodes() : 1; }

    private static PlacementPlan best(PlacementProblem p, List<PlacementPlan> plans) {
        PlacementPlan best = null;
        double bestCost = Double.MAX_VALUE;
        for (PlacementPlan pl : plans) {
            double c = cost(pl, p);
            if (c < bestCost) {
                bestCost = c;
                best = pl;
            }
        }
        return best;
    }

    /**
     * A bound no plan can beat, from slots alone: a token on expert i stays on its device only if its next expert is
     * one of the {@code slots} experts there, so at most the {@code slots} largest entries of row i (and of column j)
     * stay; likewise on a node with {@code devicesPerNode x slots}. Often far tighter than CP-SAT's relaxation.
     */
    public static double slotBound(PlacementProblem p) {
        Topology t = p.topology();
        double cost = 0;
        for (long[][] T : p.transitions().values()) {
            double total = 0;
            for (long[] row : T) for (long v : row) total += v;
            double dev = Math.min(topSum(T, t.slots(), false), topSum(T, t.slots(), true));
            double node = Math.min(topSum(T, t.slots() * t.devicesPerNode(), false), topSum(T, t.slots() * t.devicesPerNode(), true));
            cost += t.intraNodeCost() * (total - dev) + (t.interNodeCost() - t.intraNodeCost()) * (total - node);
        }
        return cost;
    }

    private static double topSum(long[][] T, int k, boolean columns) {
        double sum = 0;
        for (int a = 0; a < T.length; a++) {
            long[] v = new long[T.length];
            for (int b = 0; b < T.length; b++) v[b] = columns ? T[b][a] : T[a][b];
            java.util.Arrays.sort(v);
            for (int i = 0; i < Math.min(k, v.length); i++) sum += v[v.length - 1 - i];
        }
        return sum;
    }

    /** Expected hop cost of a plan (the objective, in the metrics' convention). */
    public static double cost(PlacementPlan plan, PlacementProblem p) {
        PlanMetrics m = PlanMetrics.of(plan, p);
        double total = 0;
        for (long[][] t : p.transitions().values()) for (long[] row : t) for (long v : row) total += v;
        Topology topo = p.topology();
        return total * (m.crossNode() * topo.interNodeCost() + (m.crossDevice() - m.crossNode()) * topo.intraNodeCost());
    }

    // ---------------------------------------------------------------------------------------------------------
    // Shared model pieces
    // ---------------------------------------------------------------------------------------------------------

    /** Replica counts and load shares per layer, from EPLB's plan (which follows the same replication rule). */
    static int[][] replicas(PlacementProblem p, PlacementPlan eplb) {
        int[][] r = new int[p.layers()][];
        for (int l = 0; l < p.layers(); l++) r[l] = eplb.replicaCounts(l, p.experts());
        return r;
    }

    /** Per-layer load cap in integer units: max(balance x mean, EPLB's heaviest device). */
    static long[] caps(PlacementProblem p, PlacementPlan eplb, long[][] share, double balance) {
        long[] cap = new long[p.layers()];
        int devices = p.topology().devices();
        for (int l = 0; l < p.layers(); l++) {
            long total = 0;
            int[] r = eplb.replicaCounts(l, p.experts());
            for (int e = 0; e < p.experts(); e++) total += share[l][e] * r[e];
            long[] dev = new long[devices];
            for (int s = 0; s < eplb.phy2log()[l].length; s++) dev[eplb.device(s)] += share[l][eplb.phy2log()[l][s]];
            long max = 0;
            for (long d : dev) max = Math.max(max, d);
            cap[l] = Math.max((long) Math.ceil(balance * total / devices), max);
        }
        return cap;
    }

    static long[][] shares(PlacementProblem p, int[][] reps) {
        long[][] s = new long[p.layers()][p.experts()];
        for (int l = 0; l < p.layers(); l++) for (int e = 0; e < p.experts(); e++) s[l][e] = Math.round(p.load()[l][e] * 16.0 / reps[l][e]);
        return s;
    }

    /** x[l][e][d] with replica-count, slot and load constraints. */
    private static BoolVar[][][] placementVars(CpModel m, PlacementProblem p, int[][] reps, long[][] share, long[] cap, int[] layers) {
        int devices = p.topology().devices();
        BoolVar[][][] x = new BoolVar[p.layers()][][];
        for (int l : layers) {
            x[l] = new BoolVar[p.experts()][devices];
            for (int e = 0; e < p.experts(); e++) {
                for (int d = 0; d < devices; d++) x[l][e][d] = m.newBoolVar("x" + l + "_" + e + "_" + d);
                m.addEquality(LinearExpr.sum(x[l][e]), reps[l][e]);
            }
            for (int d = 0; d < devices; d++) {
                BoolVar[] col = new BoolVar[p.experts()];
                long[] w = new long[p.experts()];
                for (int e = 0; e < p.experts(); e++) {
                    col[e] = x[l][e][d];
                    w[e] = share[l][e];
                }
                m.addEquality(LinearExpr.sum(col), p.topology().slots());
                m.addLessOrEqual(LinearExpr.weightedSum(col, w), cap[l]);
            }
        }
        return x;
    }

    /** A plan from x's values: each device's slots filled with the experts placed on it. */
    private static PlacementPlan decode(PlacementProblem p, int[][][] onDevice, PlacementPlan fallback, int version, String solver) {
        int devices = p.topology().devices(), slots = p.topology().slots();
        int[][] out = new int[p.layers()][];
        for (int l = 0; l < p.layers(); l++) {
            if (onDevice[l] == null) {
                out[l] = fallback.phy2log()[l].clone();
                continue;
            }
            out[l] = new int[devices * slots];
            int[] fill = new int[devices];
            for (int e = 0; e < p.experts(); e++) {
                for (int d = 0; d < devices; d++) if (onDevice[l][e][d] == 1) out[l][d * slots + fill[d]++] = e;
            }
        }
        return new PlacementPlan(version, solver, slots, out);
    }

    /**
     * x[l][e][d] of a plan. EPLB's packing may put two replicas of an expert on one device, which x cannot express
     * (nor would it help: a token stays on the device either way); such a layer becomes the valid placement nearest
     * to it (a min-cost flow that keeps every copy it can).
     */
    private static int[][][] onDevice(PlacementPlan plan, PlacementProblem p) {
        int devices = p.topology().devices();
        int[][][] on = new int[p.layers()][p.experts()][devices];
        for (int l = 0; l < p.layers(); l++) {
            boolean twice = false;
            for (int s = 0; s < plan.phy2log()[l].length; s++) twice |= on[l][plan.phy2log()[l][s]][plan.device(s)]++ > 0;
            if (!twice) continue;
            long[][] away = new long[p.experts()][devices];
            for (int e = 0; e < p.experts(); e++) for (int d = 0; d < devices; d++) away[e][d] = on[l][e][d] > 0 ? 0 : 1;
            on[l] = flowStep(away, plan.replicaCounts(l, p.experts()), p.topology().slots());
        }
        return on;
    }

    static int[] knownLayers(PlacementProblem p) {
        java.util.TreeSet<Integer> s = new java.util.TreeSet<>();
        for (String k : p.transitions().keySet()) {
            int[] ab = PlacementProblem.pair(k);
            s.add(ab[0]);
            s.add(ab[1]);
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }

    private static long scale(double c) { return Math.round(c * 100); }

    // ---------------------------------------------------------------------------------------------------------
    // Monolithic model
    // ---------------------------------------------------------------------------------------------------------

    private PlacementPlan monolithic(PlacementProblem p, PlacementPlan eplb, PlacementPlan start, long t0, long deadline) {
        Topology topo = p.topology();
        int devices = topo.devices();
        int[][] reps = replicas(p, eplb);
        long[][] share = shares(p, reps);
        long[] cap = caps(p, eplb, share, options.balance());
        int[] layers = knownLayers(p);
        CpModel m = new CpModel();
        BoolVar[][][] x = placementVars(m, p, reps, share, cap, layers);
        long inter = scale(topo.interNodeCost()), intra = scale(topo.intraNodeCost());
        LinearExprBuilder kept = LinearExpr.newBuilder();
        long worst = 0;
        // the warm start is hinted completely (placements and every derived variable), so CP-SAT's first solution is
        // at least as good as it; symmetry: nodes are interchangeable, and devices within a node, so expert 0 of the
        // first layer may be fixed where the warm start has it
        int[][][] hint = onDevice(start, p);
        int d0 = 0;
        while (d0 < devices - 1 && hint[layers[0]][0][d0] == 0) d0++;
        m.addEquality(x[layers[0]][0][d0], 1);
        for (Map.Entry<String, long[][]> en : p.transitions().entrySet()) {
            int[] ab = PlacementProblem.pair(en.getKey());
            long[][] T = en.getValue();
            // cuts: from i on device d, a token can stay local to at most `slots` experts of layer b (and symmetrically);
            // from i on node n, to at most devicesPerNode * slots. They give the relaxation the structure it lacks.
            List<List<List<BoolVar>>> rowY = new ArrayList<>(), colY = new ArrayList<>(), rowZ = new ArrayList<>();
            for (int e = 0; e < p.experts(); e++) {
                rowY.add(new ArrayList<>());
                colY.add(new ArrayList<>());
                rowZ.add(new ArrayList<>());
                for (int d = 0; d < devices; d++) {
                    rowY.get(e).add(new ArrayList<>());
                    colY.get(e).add(new ArrayList<>());
                }
                for (int n = 0; n < topo.nodes(); n++) rowZ.get(e).add(new ArrayList<>());
            }
            for (int i = 0; i < p.experts(); i++) {
                for (int j = 0; j < p.experts(); j++) {
                    if (T[i][j] == 0) continue;
                    worst += T[i][j] * inter;
                    List<BoolVar> same = new ArrayList<>();
                    boolean together = false;
                    for (int d = 0; d < devices; d++) {
                        BoolVar y = m.newBoolVar("");
                        m.addImplication(y, x[ab[0]][i][d]);
                        m.addImplication(y, x[ab[1]][j][d]);
                        boolean both = hint[ab[0]][i][d] == 1 && hint[ab[1]][j][d] == 1;
                        m.addHint(y, both ? 1 : 0);
                        together |= both;
                        same.add(y);
                        rowY.get(i).get(d).add(y);
                        colY.get(j).get(d).add(y);
                    }
                    BoolVar dev = m.newBoolVar("");
                    m.addLessOrEqual(dev, LinearExpr.sum(same.toArray(BoolVar[]::new)));
                    m.addHint(dev, together ? 1 : 0);
                    kept.addTerm(dev, T[i][j] * intra);
                    if (topo.nodes() > 1 && inter > intra) {
                        List<BoolVar> sameNode = new ArrayList<>();
                        boolean nodeTogether = false;
                        for (int n = 0; n < topo.nodes(); n++) {
                            BoolVar z = m.newBoolVar("");
                            List<BoolVar> ai = new ArrayList<>(), bj = new ArrayList<>();
                            boolean hi = false, hj = false;
                            for (int d = n * topo.devicesPerNode(); d < (n + 1) * topo.devicesPerNode(); d++) {
                                ai.add(x[ab[0]][i][d]);
                                bj.add(x[ab[1]][j][d]);
                                hi |= hint[ab[0]][i][d] == 1;
                                hj |= hint[ab[1]][j][d] == 1;
                            }
                            m.addLessOrEqual(z, LinearExpr.sum(ai.toArray(BoolVar[]::new)));
                            m.addLessOrEqual(z, LinearExpr.sum(bj.toArray(BoolVar[]::new)));
                            m.addHint(z, hi && hj ? 1 : 0);
                            nodeTogether |= hi && hj;
                            sameNode.add(z);
                            rowZ.get(i).get(n).add(z);
                        }
                        BoolVar node = m.newBoolVar("");
                        m.addLessOrEqual(node, LinearExpr.sum(sameNode.toArray(BoolVar[]::new)));
                        m.addHint(node, nodeTogether ? 1 : 0);
                        kept.addTerm(node, T[i][j] * (inter - intra));
                    } else if (topo.nodes() == 1) {
                        kept.add(T[i][j] * (inter - intra)); // one node: every transition stays on it
                    }
                }
            }
            int slots = topo.slots(), perNode = topo.devicesPerNode() * slots;
            for (int e = 0; e < p.experts(); e++) {
                for (int d = 0; d < devices; d++) {
                    List<BoolVar> r = rowY.get(e).get(d), c = colY.get(e).get(d);
                    if (r.size() > slots) {
                        m.addLessOrEqual(LinearExpr.sum(r.toArray(BoolVar[]::new)), LinearExpr.term(x[ab[0]][e][d], slots));
                    }
                    if (c.size() > slots) {
                        m.addLessOrEqual(LinearExpr.sum(c.toArray(BoolVar[]::new)), LinearExpr.term(x[ab[1]][e][d], slots));
                    }
                }
                for (int n = 0; n < topo.nodes(); n++) {
                    List<BoolVar> r = rowZ.get(e).get(n);
                    if (r.size() <= perNode) continue;
                    LinearExprBuilder onNode = LinearExpr.newBuilder();
                    for (int d = n * topo.devicesPerNode(); d < (n + 1) * topo.devicesPerNode(); d++) onNode.addTerm(x[ab[0]][e][d], perNode);
                    m.addLessOrEqual(LinearExpr.sum(r.toArray(BoolVar[]::new)), onNode);
                }
            }
        }
        m.maximize(kept);
        for (int l : layers) for (int e = 0; e < p.experts(); e++) for (int d = 0; d < devices; d++) m.addHint(x[l][e][d], hint[l][e][d]);
        CpSolver s = new CpSolver();
        s.getParameters().setMaxTimeInSeconds(Math.max(0.5, (deadline - System.nanoTime()) / 1e9)).setNumWorkers(options.threads());
        long worstFinal = worst;
        double slot = slotBound(p); // progress shows the bound the table shows: the better of CP-SAT's and the slot bound
        CpSolverStatus st = s.solve(m, new CpSolverSolutionCallback() {
            @Override
            public void onSolutionCallback() {
                progress.accept(String.format(java.util.Locale.ROOT, "  CP-SAT %.1f s: expected hop cost %.0f (bound %.0f)",
                        wallTime(), (worstFinal - objectiveValue()) / 100.0, Math.max(slot, (worstFinal - bestObjectiveBound()) / 100.0)));
            }
        });
        double seconds = (System.nanoTime() - t0) / 1e9;
        if (st != CpSolverStatus.OPTIMAL && st != CpSolverStatus.FEASIBLE) {
            last = new Report(st.name() + " (kept the warm start)", cost(start, p), 0, false, seconds);
            return start;
        }
        int[][][] on = new int[p.layers()][][];
        for (int l : layers) {
            on[l] = new int[p.experts()][devices];
            for (int e = 0; e < p.experts(); e++) for (int d = 0; d < devices; d++) on[l][e][d] = s.booleanValue(x[l][e][d]) ? 1 : 0;
        }
        PlacementPlan plan = decode(p, on, eplb, 1, name());
        last = new Report(st.name(), (worst - s.objectiveValue()) / 100.0, (worst - s.bestObjectiveBound()) / 100.0, false, seconds);
        return plan;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Decomposition along the layer chain
    // ---------------------------------------------------------------------------------------------------------

    private PlacementPlan chain(PlacementProblem p, PlacementPlan eplb, PlacementPlan start, long t0, long deadlineNanos) {
        int[][] reps = replicas(p, eplb);
        long[][] share = shares(p, reps);
        long[] cap = caps(p, eplb, share, options.balance());
        int[] layers = knownLayers(p);
        int[][][] on = onDevice(start, p);
        double deadline = deadlineNanos / 1e9;
        int sweep = 0, restarts = 0, fruitless = 0;
        PlacementPlan best = fits(on, share, cap, layers) ? decode(p, on, eplb, 1, name()) : null;
        double bestCost = best == null ? Double.MAX_VALUE : cost(best, p);
        int[][][] bestOn = best == null ? null : copy(on);
        java.util.Random rnd = new java.util.Random(1);
        // iterated local search: the layer-by-layer descent ends in a local optimum; while time is left, a copy of the
        // best plan with a third of its layers shuffled is descended again, and kept if it ends lower (re-placement
        // stays a single descent from the plan in force, so that few copies move)
        while (System.nanoTime() / 1e9 < deadline) {
            double before = Double.POSITIVE_INFINITY, now = Double.MAX_VALUE;
            while (System.nanoTime() / 1e9 < deadline && now < before - 1e-9) {
                before = now;
                sweep++;
                for (int l : layers) {
                    double left = deadline - System.nanoTime() / 1e9;
                    if (left <= 0) break;
                    solveLayer(p, l, on, reps, share, cap, Math.max(0.05, Math.min(left, options.timeLimitSeconds() / (2.0 * layers.length))));
                }
                PlacementPlan plan = decode(p, on, eplb, 1, name());
                now = cost(plan, p);
                // (with replicas a layer step's linear cost only approximates the metrics' one)
                if (now < bestCost - 1e-9 && fits(on, share, cap, layers)) {
                    best = plan;
                    bestCost = now;
                    bestOn = copy(on);
                    fruitless = -1;
                }
                if (restarts == 0) progress.accept(String.format(java.util.Locale.ROOT, "  layer-chain sweep %d: expected hop cost %.0f", sweep, now));
            }
            if (current != null || bestOn == null || ++fruitless >= MAX_FRUITLESS_RESTARTS) break;
            on = copy(bestOn);
            shuffleLayers(on, reps, layers, rnd);
            restarts++;
        }
        if (restarts > 0) {
            progress.accept(String.format(java.util.Locale.ROOT, "  layer chain: %d restarts from shuffled copies, best expected hop cost %.0f",
                    restarts, bestCost));
        }
        if (best == null) { // no descent reached the cap in time: the last one, as it is
            best = decode(p, on, eplb, 1, name());
            bestCost = cost(best, p);
        }
        last = new Report("FEASIBLE (decomposed: " + sweep + " sweeps, " + restarts + " restarts)", bestCost, slotBound(p), true,
                (System.nanoTime() - t0) / 1e9);
        return best;
    }

    private static int[][][] copy(int[][][] on) {
        int[][][] c = new int[on.length][][];
        for (int l = 0; l < on.length; l++) {
            if (on[l] == null) continue;
            c[l] = new int[on[l].length][];
            for (int e = 0; e < on[l].length; e++) c[l][e] = on[l][e].clone();
        }
        return c;
    }

    /** A third of the layers (at least one): experts with the same number of copies trade devices at random. */
    private static void shuffleLayers(int[][][] on, int[][] reps, int[] layers, java.util.Random rnd) {
        int n = Math.max(1, layers.length / 3);
        for (int i = 0; i < n; i++) {
            int l = layers[rnd.nextInt(layers.length)];
            int experts = on[l].length;
            for (int e = experts - 1; e > 0; e--) {
                int f = rnd.nextInt(e + 1);
                if (reps[l][e] != reps[l][f]) continue;
                int[] t = on[l][e];
                on[l][e] = on[l][f];
                on[l][f] = t;
            }
        }
    }

    /** Whether every layer's device loads are within the cap. */
    private static boolean fits(int[][][] on, long[][] share, long[] cap, int[] layers) {
        for (int l : layers) if (!fits(on[l], share[l], cap[l])) return false;
        return true;
    }

    private static boolean fits(int[][] on, long[] share, long cap) {
        int devices = on[0].length;
        for (int d = 0; d < devices; d++) {
            long load = 0;
            for (int e = 0; e < on.length; e++) load += share[e] * on[e][d];
            if (load > cap) return false;
        }
        return true;
    }

    /** A layer's candidate replaces its current placement if it is within the cap and cheaper, or the current is not within it. */
    private static boolean better(int[][] candidate, int[][] current, long[][] costOf, long[] share, long cap) {
        if (!fits(candidate, share, cap)) return false;
        return !fits(current, share, cap) || linearCost(costOf, candidate) <= linearCost(costOf, current);
    }

    /** Re-places layer l with every other layer fixed: a linear objective over x[l]. */
    private void solveLayer(PlacementProblem p, int l, int[][][] on, int[][] reps, long[][] share, long[] cap, double seconds) {
        Topology topo = p.topology();
        int devices = topo.devices();
        long[][] costOf = new long[p.experts()][devices]; // cost of putting e on d given the neighbours
        for (Map.Entry<String, long[][]> en : p.transitions().entrySet()) {
            int[] ab = PlacementProblem.pair(en.getKey());
            long[][] T = en.getValue();
            if (ab[1] == l) addCosts(costOf, T, on[ab[0]], reps[l], topo, false);
            if (ab[0] == l) addCosts(costOf, T, on[ab[1]], reps[l], topo, true);
        }
        if (current != null) { // moving a copy off the devices it is on costs bytes
            for (int e = 0; e < p.experts(); e++) {
                var was = current.devicesOf(l, e);
                for (int d = 0; d < devices; d++) if (!was.contains(d)) costOf[e][d] += Math.round(migrationCost * 100);
            }
        }
        // first the exact transportation step (min-cost flow): experts supply their replicas, devices take their
        // slots, one replica per device; kept if it also respects the load cap, else CP-SAT with the cap
        int[][] flow = flowStep(costOf, reps[l], topo.slots());
        if (flow != null) {
            boolean capped = true;
            for (int d = 0; d < devices && capped; d++) {
                long load = 0;
                for (int e = 0; e < p.experts(); e++) load += share[l][e] * flow[e][d];
                capped = load <= cap[l];
            }
            if (capped) {
                if (better(flow, on[l], costOf, share[l], cap[l])) on[l] = flow;
                return;
            }
        }
        // large layers: the flow's plan repaired into the cap by the cheapest swaps, then improved by swaps (fast);
        // small ones: CP-SAT with the cap, hinted with the better of that and the current placement
        int[][] local = on[l];
        if (flow != null) {
            int[][] repaired = LayerSwaps.repair(flow, costOf, share[l], cap[l]);
            if (repaired != null && linearCost(costOf, repaired) < linearCost(costOf, local)) local = repaired;
        }
        local = LayerSwaps.improve(local, costOf, share[l], cap[l]);
        if (better(local, on[l], costOf, share[l], cap[l])) on[l] = local;
        if ((long) p.experts() * devices > LARGE_LAYER) return;
        CpModel m = new CpModel();
        BoolVar[][][] x = placementVars(m, p, reps, share, cap, new int[]{l});
        LinearExprBuilder obj = LinearExpr.newBuilder();
        for (int e = 0; e < p.experts(); e++) {
            for (int d = 0; d < devices; d++) {
                obj.addTerm(x[l][e][d], costOf[e][d]);
                m.addHint(x[l][e][d], on[l][e][d]);
            }
        }
        m.minimize(obj);
        CpSolver s = new CpSolver();
        s.getParameters().setMaxTimeInSeconds(seconds).setNumWorkers(options.threads());
        CpSolverStatus st = s.solve(m);
        if (st == CpSolverStatus.OPTIMAL || st == CpSolverStatus.FEASIBLE) {
            int[][] sol = new int[p.experts()][devices];
            for (int e = 0; e < p.experts(); e++) for (int d = 0; d < devices; d++) sol[e][d] = s.booleanValue(x[l][e][d]) ? 1 : 0;
            if (better(sol, on[l], costOf, share[l], cap[l])) on[l] = sol;
        }
    }

    /** The optimal transportation of replicas onto device slots by cost (no load cap), or null if the solver fails. */
    private static int[][] flowStep(long[][] costOf, int[] reps, int slots) {
        int experts = costOf.length, devices = costOf[0].length;
        com.google.ortools.graph.MinCostFlow f = new com.google.ortools.graph.MinCostFlow();
        for (int e = 0; e < experts; e++) {
            f.setNodeSupply(e, reps[e]);
            for (int d = 0; d < devices; d++) f.addArcWithCapacityAndUnitCost(e, experts + d, 1, costOf[e][d]);
        }
        for (int d = 0; d < devices; d++) f.setNodeSupply(experts + d, -slots);
        if (f.solve() != com.google.ortools.graph.MinCostFlowBase.Status.OPTIMAL) return null;
        int[][] out = new int[experts][devices];
        for (int a = 0; a < f.getNumArcs(); a++) if (f.getFlow(a) > 0) out[f.getTail(a)][f.getHead(a) - experts] = 1;
        return out;
    }

    static long linearCost(long[][] costOf, int[][] on) {
        long c = 0;
        for (int e = 0; e < costOf.length; e++) for (int d = 0; d < costOf[e].length; d++) c += costOf[e][d] * on[e][d];
        return c;
    }

    /**
     * Adds to costOf[e][d] the expected hop cost of a copy of e on d against a fixed neighbour layer; e's tokens are
     * split evenly over its {@code reps[e]} copies. {@code eIsSource} (e at the earlier layer, T[e][k]): a token on
     * this copy goes to the nearest replica of k (exact, as the metrics count it). Otherwise (T[k][e]) it comes from
     * any of k's copies alike; the metrics send it to e's nearest copy, which this linear cost can only approximate
     * (it is exact without replicas).
     */
    private static void addCosts(long[][] costOf, long[][] T, int[][] neighbour, int[] reps, Topology topo, boolean eIsSource) {
        int experts = costOf.length, devices = topo.devices();
        double[][] hop = new double[experts][devices]; // nearest (eIsSource) or mean hop from d to k's copies
        for (int k = 0; k < experts; k++) {
            int n = 0;
            for (int q = 0; q < devices; q++) n += neighbour[k][q];
            for (int d = 0; d < devices; d++) {
                double best = Double.MAX_VALUE, sum = 0;
                for (int q = 0; q < devices; q++) {
                    if (neighbour[k][q] == 0) continue;
                    best = Math.min(best, topo.cost(d, q));
                    sum += topo.cost(d, q);
                }
                hop[k][d] = eIsSource ? best : sum / n;
            }
        }
        for (int e = 0; e < experts; e++) {
            for (int k = 0; k < experts; k++) {
                long t = eIsSource ? T[e][k] : T[k][e];
                if (t == 0) continue;
                double w = (double) t / reps[e] * 100;
                for (int d = 0; d < devices; d++) costOf[e][d] += Math.round(w * hop[k][d]);
            }
        }
    }
}
