package org.moeserve.runtime.model;

/**
 * One SwiGLU expert (or a dense MLP): {@code down(silu(gate x) * up x)}.
 *
 * @param gate W_gate (intermediate, hidden)   [Mixtral w1]
 * @param up   W_up   (intermediate, hidden)   [Mixtral w3]
 * @param down W_down (hidden, intermediate)   [Mixtral w2]
 */
public record ExpertWeights(Tensor gate, Tensor up, Tensor down) {
    public long byteSize() {
        return gate.data().byteSize() + up.data().byteSize() + down.data().byteSize();
    }
}
