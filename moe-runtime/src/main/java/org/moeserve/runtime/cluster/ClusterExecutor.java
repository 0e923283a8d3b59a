package org.moeserve.runtime.cluster;

import org.moeserve.comms.cluster.ClusterMember;
import org.moeserve.comms.cluster.ExpertHost;
import org.moeserve.comms.cluster.RemoteExperts;
import org.moeserve.runtime.engine.ExpertExecutor;
import org.moeserve.runtime.engine.ExpertFfn;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.MoeModel;

import java.time.Duration;

/**
 * The engine's side of cluster mode: an {@link ExpertExecutor} that hands each MoE layer to comms'
 * {@link RemoteExperts} (the transport), and the {@link ExpertHost} a member computes its experts with (the
 * checkpoint's weights through {@link ExpertFfn}).
 */
public final class ClusterExecutor implements ExpertExecutor {
    private final RemoteExperts remote;

    public ClusterExecutor(ClusterMember member, Duration callTimeout, Duration planTimeout) {
        this.remote = new RemoteExperts(member, callTimeout, planTimeout);
    }

    public RemoteExperts remote() { return remote; }

    @Override
    public StepRun begin(long[] sequences) { return remote::run; }

    /** The model as a cluster member sees it: MoE layers, experts paged in on load, computed on the calling thread. */
    public static ExpertHost host(MoeModel model) {
        return new ExpertHost() {
            @Override
            public int hiddenSize() { return model.config().hiddenSize(); }

            @Override
            public int experts() { return model.config().experts(); }

            @Override
            public int moeLayers() { return model.config().moeLayers(); }

            @Override
            public int topK() { return model.config().topK(); }

            @Override
            public void load(int moeLayer, int expert) {
                ExpertWeights w = model.expert(moeLayer, expert);
                w.gate().touch();
                w.up().touch();
                w.down().touch();
            }

            @Override
            public void compute(int moeLayer, int expert, float[][] x, int n, float[][] y) {
                ExpertFfn.SWIGLU.apply(model.expert(moeLayer, expert), x, n, y, Parallel.SERIAL);
            }
        };
    }
}
