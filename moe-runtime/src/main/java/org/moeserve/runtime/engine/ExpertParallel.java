package org.moeserve.runtime.engine;

import org.moeserve.comms.Dispatch;
import org.moeserve.comms.ExpertGroups;
import org.moeserve.comms.Scheme;
import org.moeserve.comms.Traffic;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.ModelConfig;


/**
 * In-process expert parallelism: {@code devices} partitions of one JVM, each holding only the experts the plan gives
 * it. Per MoE layer the rows are dispatched to the devices of their experts (a copy of the row's vector into the
 * device's inbox when it is not already there), each device runs its experts over its inbox, and the outputs are
 * sent to where the row is combined: its home device (two all-to-alls) or the device of its first expert, where it
 * then stays (ExFlow's context-coherent scheme); see {@link Scheme}. Every copy between devices is counted in
 * {@link #traffic()} through {@link Dispatch#route}, the rule the simulator counts with, and the copies follow
 * exactly its messages. Devices run in parallel; each row's
 * arithmetic is the same as on one device, so greedy output is identical.
 */
public final class ExpertParallel implements ExpertExecutor {
    private final Dispatch dispatch;
    private final Scheme scheme;
    private final ExpertStore store;
    private final Parallel par;
    private final int hidden, experts;
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
        this.hidden = config.hiddenSize();
        this.experts = config.experts();
        this.traffic = new Traffic(dispatch.topology(), config.moeLayers());
    }

    public Traffic traffic() { return traffic; }

    /** Starts counting afresh. */
    public void resetTraffic() { traffic = new Traffic(dispatch.topology(), dispatch.plan().layers()); }

    public Scheme scheme() { return scheme; }

    public Dispatch dispatch() { return dispatch; }

    /** Device d's view of the expert store: only the experts the plan gives it. */
    private ExpertWeights acquire(int device, int moeLayer, int expert) {
        if (!dispatch.holds(moeLayer, expert, device)) {
            throw new IllegalStateException("device " + device + " does not hold expert " + expert + " of MoE layer " + moeLayer);
        }
        return store.acquire(moeLayer, expert);
    }

    @Override
    public StepRun begin(long[] sequences) {
        int rows = sequences.length;
        int[] home = new int[rows], at = new int[rows];
        for (int r = 0; r < rows; r++) home[r] = at[r] = dispatch.home(sequences[r]);
        Traffic t = traffic;
        return new StepRun() {
            @Override
            public void run(int moeLayer, float[][] x, int n, int[][] idx, float[][][] contrib) {
                step(t, moeLayer, x, n, idx, contrib, home, at);
            }

            @Override
            public void end() {
                if (scheme != Scheme.CONTEXT_COHERENT) return;
                for (int r = 0; r < rows; r++) if (at[r] != home[r]) t.add(Dispatch.Kind.RETURN, -1, at[r], home[r], (long) hidden * Float.BYTES);
            }
        };
    }

    private void step(Traffic t, int ml, float[][] x, int rows, int[][] idx, float[][][] contrib, int[] home, int[] at) {
        int devices = dispatch.devices();
        long rowBytes = (long) hidden * Float.BYTES;
        int[][] ran = new int[rows][];
        int[] after = new int[rows];
        float[][][] input = new float[rows][][]; // [row][device] -> that device's copy of the row
        // ---- dispatch: Dispatch.route decides every message (and counts it); the copies follow its decisions ----
        for (int r = 0; r < rows; r++) {
            ran[r] = new int[idx[r].length];
            input[r] = new float[devices][];
            input[r][at[r]] = x[r];
            int row = r;
            after[r] = dispatch.route(scheme, ml, idx[r], at[r], home[r], ran[r], (kind, from, to) -> {
                t.add(kind, ml, from, to, rowBytes);
                if (kind == Dispatch.Kind.DISPATCH) input[row][to] = x[row].clone();
            });
        }
        // ---- each device runs its experts over its inbox (devices in parallel), grouped by expert ----
        float[][][] out = new float[rows][][];
        for (int r = 0; r < rows; r++) out[r] = new float[idx[r].length][];
        par.forEach(devices, d -> {
            float[][] inbox = new float[rows][];
            for (int r = 0; r < rows; r++) inbox[r] = input[r][d];
            for (ExpertGroups.Group g : ExpertGroups.of(idx, rows, experts, (r, j) -> ran[r][j] == d)) {
                float[][] y = new float[g.size()][hidden];
                ExpertWeights w = acquire(d, ml, g.expert());
                try {
                    ExpertFfn.SWIGLU.apply(w, g.gather(inbox), g.size(), y, Parallel.SERIAL);
                } finally {
                    store.release(ml, g.expert());
                }
                g.scatter(y, out);
            }
        });
        // ---- combine: an output computed away from where its row is combined travels there (a copy) ----
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < idx[r].length; j++) contrib[r][j] = ran[r][j] != after[r] ? out[r][j].clone() : out[r][j];
            at[r] = after[r];
        }
    }
}
