package org.moeserve.runtime.cli;

import org.moeserve.routing.predict.AffinityPredictor;
import org.moeserve.routing.predict.ExpertPredictor;
import org.moeserve.routing.predict.LearnedPathPredictor;
import org.moeserve.routing.predict.OraclePredictor;
import org.moeserve.routing.predict.PopularityPredictor;
import org.moeserve.routing.stats.TraceStatistics;
import org.moeserve.runtime.engine.LookaheadGates;
import org.moeserve.runtime.model.MoeModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** Predictors by the names the commands take, with the inputs each needs checked and named. */
final class Predictors {
    private Predictors() {}

    static final List<String> NAMES = List.of("popularity", "affinity", "lookahead-gate", "learned", "oracle");

    /**
     * @param model   needed by lookahead-gate (its routers) and learned (hidden states); may be null otherwise
     * @param stats   needed by popularity and affinity (fitted statistics); may be null otherwise
     * @param weights needed by learned
     */
    static ExpertPredictor create(String name, MoeModel model, TraceStatistics stats, Path weights, int layers, int experts)
            throws IOException {
        return switch (name) {
            case "popularity", "affinity" -> {
                if (stats == null) throw new IllegalArgumentException(name + " needs statistics to fit on: pass --fit-trace TRACE");
                yield name.equals("popularity") ? new PopularityPredictor(stats.loads()) : new AffinityPredictor(stats.transitions(1));
            }
            case "lookahead-gate" -> {
                if (model == null) throw new IllegalArgumentException("lookahead-gate reads hidden states: pass --model DIR");
                yield LookaheadGates.of(model);
            }
            case "learned" -> {
                if (model == null) throw new IllegalArgumentException("learned reads hidden states: pass --model DIR");
                if (weights == null) throw new IllegalArgumentException("learned needs its file: pass --predictor-weights FILE (made by moe predictor train)");
                yield LearnedPathPredictor.load(weights);
            }
            case "oracle" -> new OraclePredictor(layers, experts);
            default -> throw new UsageError("--predictor is " + name + " but must be one of " + String.join(", ", NAMES));
        };
    }
}
