package org.moeserve.runtime.engine;

import org.moeserve.comms.Dispatch;
import org.moeserve.comms.Scheme;
import org.moeserve.comms.Traffic;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.ModelConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * In-process expert parallelism: {@code devices} partitions of one JVM, each holding only the experts the plan gives
 * it. Per MoE layer the rows are dispatched to the devices of their experts (a copy of the row's vector into the
 * device's inbox when it is not already there), each device runs its experts over its inbox, and the outputs are
 * sent to where the row is combined: its home device (two all-to-alls) or the device of its first expert, where it
 * then stays (ExFlow's context-coherent scheme); see {@link Scheme}. Every copy between devices is counted in
 * {@link #traffic()} as it is made, so the counts are measured, not modelled. Devices run in parallel; each row's
 * arithmetic is the same as on one device, so greedy output is identical.
 */
public final class ExpertParallel implements ExpertExecutor {
    private final Dispatch dispatch;
    private final Scheme scheme;
    private final ExpertStore store;
    private final Parallel par;
    private final int[] moeIndex;
    private final int hidden;
    private volatile Traffic traffic;

    public ExpertParallel(ModelConfig config, ExpertStore store, Dispatch dispatch, Scheme scheme, Parallel par) {
        if (dispatch.plan().layers() != config.moeLayers()) {
            throw new IllegalArgumentException("the plan has " + dispatch.plan().layers() + " layers but the model has "
                    + config.moeLayers() + " MoE layers; plan for this model");
        }
        this.dispatch = dispatch;
        this.scheme = scheme;
        this.store = store;
        this.par = par;
        this.moeIndex = config.moeLayerIndex();
        this.hidden = config.hiddenSize();
        this.traffic = new Traffic(dispatch.topology(), config.moeLayers());
    }

    public Traffic traffic() { return traffic; }

    /** Starts counting afresh. */
    public void resetTraffic() { traffic = new Traffic(dispatch.topology(), dispatch.plan().layers()); }

    public Scheme scheme() { return scheme; }

    public Dispatch dispatch() { return dispatch; }

    /** Device d's view of the expert store: only the experts the plan gives it. */
    private ExpertWeights acquire(int device, int moeLayer, int layer, int expert) {
        if (!dispatch.holds(moeLayer, expert, device)) {
            throw new IllegalStateException("device " + device + " does not hold expert " + expert + " of MoE layer " + moeLayer);
        }
        return store.acquire(layer, expert);
    }

    @Override
    public StepRun begin(long[] sequences) {
        int rows = sequences.length;
        int[] home = new int[rows], at = new int[rows];
        for (int r = 0; r < rows; r++) home[r] = at[r] = dispatch.home(sequences[r]);
        Traffic t = traffic;
        return new StepRun() {
            @Override
            public void run(int layer, float[][] x, int n, int[][] idx, float[][][] contrib) {
                step(t, layer, x, n, idx, contrib, home, at);
            }

            @Override
            public void end() {
                if (scheme != Scheme.CONTEXT_COHERENT) return;
                for (int r = 0; r < rows; r++) if (at[r] != home[r]) t.add(Dispatch.Kind.RETURN, -1, at[r], home[r], (long) hidden * Float.BYTES);
            }
        };
    }

    /** One row's work on one device: its input (the device's own copy) and where the output goes. */
    private record Job(int row, int slot, int expert, float[] input) { }

    private void step(Traffic t, int layer, float[][] x, int rows, int[][] idx, float[][][] contrib, int[] home, int[] at) {
        int ml = moeIndex[layer], devices = dispatch.devices();
        List<List<Job>> inbox = new ArrayList<>();
        for (int d = 0; d < devices; d++) inbox.add(new ArrayList<>());
        int[][] ran = new int[rows][];
        int[] after = new int[rows];
        // ---- dispatch: the row's vector is copied once to each other device that runs one of its experts ----
        for (int r = 0; r < rows; r++) {
            int k = idx[r].length;
            ran[r] = new int[k];
            float[][] copyOn = new float[devices][];
            copyOn[at[r]] = x[r];
            for (int j = 0; j < k; j++) ran[r][j] = dispatch.device(ml, idx[r][j], at[r]);
            for (int j = 0; j < k; j++) {
                int d = ran[r][j];
                if (copyOn[d] == null) {
                    copyOn[d] = x[r].clone();
                    t.add(Dispatch.Kind.DISPATCH, ml, at[r], d, (long) copyOn[d].length * Float.BYTES);
                }
                inbox.get(d).add(new Job(r, j, idx[r][j], copyOn[d]));
            }
            after[r] = Dispatch.combineAt(scheme, ran[r], home[r]);
        }
        // ---- each device runs its experts over its inbox (devices in parallel) ----
        float[][][] out = new float[rows][][];
        for (int r = 0; r < rows; r++) out[r] = new float[idx[r].length][];
        par.forEach(devices, d -> {
            List<Job> jobs = inbox.get(d);
            java.util.Map<Integer, List<Job>> byExpert = new java.util.TreeMap<>();
            for (Job j : jobs) byExpert.computeIfAbsent(j.expert(), e -> new ArrayList<>()).add(j);
            for (var en : byExpert.entrySet()) {
                List<Job> g = en.getValue();
                float[][] xg = new float[g.size()][];
                for (int i = 0; i < g.size(); i++) xg[i] = g.get(i).input();
                float[][] y = new float[g.size()][hidden];
                ExpertWeights w = acquire(d, ml, layer, en.getKey());
                try {
                    Engine.swigluMlp(w, xg, g.size(), y, Parallel.SERIAL);
                } finally {
                    store.release(layer, en.getKey());
                }
                for (int i = 0; i < g.size(); i++) out[g.get(i).row()][g.get(i).slot()] = y[i];
            }
        });
        // ---- combine: each expert's output goes to where the row is combined ----
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < idx[r].length; j++) {
                float[] y = out[r][j];
                if (ran[r][j] != after[r]) {
                    y = y.clone();
                    t.add(Dispatch.Kind.COMBINE, ml, ran[r][j], after[r], (long) y.length * Float.BYTES);
                }
                contrib[r][j] = y;
            }
            at[r] = after[r];
        }
    }
}
