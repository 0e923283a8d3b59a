package org.moeserve.comms.cluster;

/**
 * The model side of a cluster member: what the transport needs to know of the model, and the compute callback it
 * runs experts with. The runtime implements it over its checkpoint and kernels; layer numbers are MoE layers.
 */
public interface ExpertHost {
    int hiddenSize();

    int experts();

    int moeLayers();

    int topK();

    /** Makes expert {@code expert} of MoE layer {@code moeLayer} ready to compute (pages its weights in). */
    void load(int moeLayer, int expert);

    /** y[i] = the expert applied to x[i], i < n, on the calling thread. */
    void compute(int moeLayer, int expert, float[][] x, int n, float[][] y);
}
