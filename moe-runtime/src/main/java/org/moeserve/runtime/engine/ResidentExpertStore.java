package org.moeserve.runtime.engine;

import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.MoeModel;

/** Every expert resident: the checkpoint's memory-mapped weights, served as they are. */
public final class ResidentExpertStore implements ExpertStore {
    private final MoeModel model;

    public ResidentExpertStore(MoeModel model) { this.model = model; }

    @Override
    public boolean neverWaits() { return true; }

    @Override
    public ExpertWeights acquire(int layer, int expert) { return model.expert(layer, expert); }
}
