package org.moeserve.runtime.cli;

import org.moeserve.routing.TraceReader;
import org.moeserve.routing.stats.TraceStatistics;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** What a predictor is built from, the same flags in every command that runs one. */
final class PredictorOptions {
    @Option(names = "--predictor-weights", paramLabel = "FILE", description = "The learned predictor's file (from moe predictor train).")
    Path weights;

    @Option(names = "--fit-trace", paramLabel = "TRACE",
            description = "moe-trace/1 to fit statistics on (repeatable): the popularity and affinity predictors, the pin "
                    + "policy's load profile.")
    List<Path> fitTraces;

    /** Statistics of --fit-trace, or of {@code fallback} (may be null) when none was given; null if neither. */
    TraceStatistics stats(TraceReader.Trace fallback) throws IOException {
        TraceReader.Trace t = fitTraces != null ? PredictorCommand.readAll(fitTraces) : fallback;
        return t == null ? null : new TraceStatistics(t.header(), t.records());
    }

    /** Where the statistics came from, for a table's footnote. */
    String fitName() { return fitTraces == null ? null : fitTraces.toString(); }
}
