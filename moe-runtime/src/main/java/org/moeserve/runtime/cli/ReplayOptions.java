package org.moeserve.runtime.cli;

import org.moeserve.routing.TraceReader;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.engine.RoutingReplay;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/** {@code --routing-replay TRACE}: a random-weight checkpoint run with a trained model's routing (generate, serve). */
final class ReplayOptions {
    @Option(names = "--routing-replay", paramLabel = "TRACE",
            description = "Route by this moe-trace/1 file instead of the gates (its sequences cycled, its layers mapped "
                    + "onto the model's): real routing locality on a random-weight checkpoint (moe synth).")
    Path trace;

    /** Sets the replay on the engine, if asked; a trace that does not fit the model is a usage error. */
    void apply(Engine engine) throws IOException {
        if (trace == null) return;
        try {
            engine.setRoutingReplay(RoutingReplay.of(TraceReader.read(trace), engine.config(), trace.toString()));
        } catch (IllegalArgumentException e) {
            throw new UsageError("--routing-replay: " + e.getMessage());
        }
    }
}
