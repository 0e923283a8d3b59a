package org.moeserve.runtime.engine;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.moeserve.routing.TraceReader;
import org.moeserve.routing.TraceRecord;
import org.moeserve.routing.predict.LookaheadGatePredictor;
import org.moeserve.routing.predict.PopularityPredictor;
import org.moeserve.routing.predict.PredictorEvaluation;
import org.moeserve.routing.predict.TokenSample;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Predictors on the demo model's real routing: the shared held-out trace (PyTorch, 4 domains x 16 x 256 bytes).
 * The engine must reproduce the trace's paths, the lookahead gate must beat the popularity prior, and a
 * predictor run online inside the forward pass must score exactly as it does offline.
 */
class PredictorIntegrationTest {
    static MoeModel model;
    static Parallel par;
    static TraceReader.Trace trace;

    @BeforeAll
    static void load() throws IOException {
        model = MoeModel.load(TestModels.dir("tiny-mixtral-kjv"));
        par = new Parallel(2);
        Path f = null;
        for (Path p = Path.of("").toAbsolutePath(); p != null && f == null; p = p.getParent()) {
            Path c = p.resolve("shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl");
            if (Files.isRegularFile(c)) f = c;
        }
        assertTrue(f != null, "../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl must sit beside the checkout");
        trace = TraceReader.read(f);
    }

    @AfterAll
    static void close() {
        par.close();
        model.close();
    }

    /** Sequences i, i+16, i+32, i+48: one of each domain. */
    static List<TraceRecord> oneOfEachDomain(int i) {
        List<TraceRecord> out = new ArrayList<>();
        for (int d = 0; d < 4; d++) out.add(trace.records().get(d * 16 + i));
        return out;
    }

    static List<TokenSample> rerun(List<TraceRecord> recs) {
        List<PathRecorder.Input> in = new ArrayList<>();
        for (TraceRecord r : recs) in.add(new PathRecorder.Input(r.domain(), r.tokens()));
        return new PathRecorder(new Engine(model, par)).record(in, true, n -> { });
    }

    @Test
    void engineReproducesThePyTorchTrace() {
        List<TraceRecord> recs = new ArrayList<>();
        for (int i = 0; i < 4; i++) recs.addAll(oneOfEachDomain(i));
        List<TokenSample> samples = rerun(recs);
        int s = 0, compared = 0;
        for (TraceRecord r : recs) {
            for (int t = 0; t < r.length(); t++, s++) {
                for (int l = 0; l < 6; l++) {
                    int[] want = r.experts()[t][l].clone(), got = samples.get(s).path()[l].clone();
                    Arrays.sort(want);
                    Arrays.sort(got);
                    assertEquals(Arrays.toString(want), Arrays.toString(got), r.id() + " token " + t + " layer " + l);
                    compared++;
                }
                assertEquals(6, samples.get(s).hidden().length);
                assertEquals(128, samples.get(s).hidden()[0].length);
            }
        }
        assertEquals(16 * 256 * 6, compared);
    }

    @Test
    void lookaheadGateBeatsPopularityAtDistancesOneAndTwo() {
        List<TokenSample> fit = rerun(oneOfEachDomain(5)), test = rerun(oneOfEachDomain(6));
        long[][] load = new long[6][16];
        for (TokenSample s : fit) for (int l = 0; l < 6; l++) for (int e : s.path()[l]) load[l][e]++;
        PredictorEvaluation gate = PredictorEvaluation.run(LookaheadGates.of(model), test, 6, 2, 2);
        PredictorEvaluation pop = PredictorEvaluation.run(new PopularityPredictor(load), test, 6, 2, 2);
        for (int d = 1; d <= 2; d++) {
            assertTrue(gate.at(d).precision() > pop.at(d).precision() + 0.2,
                    "d=" + d + ": gate " + gate.at(d).precision() + " vs popularity " + pop.at(d).precision());
        }
    }

    @Test
    void onlineTapScoresExactlyAsTheOfflineEvaluation() {
        List<TraceRecord> recs = oneOfEachDomain(7);
        LookaheadGatePredictor gate = LookaheadGates.of(model);
        PredictorEvaluation offline = PredictorEvaluation.run(gate, rerun(recs), 6, 3, 2);
        Engine e = new Engine(model, par);
        PredictorTap tap = new PredictorTap(gate, 3, 2);
        tap.attach(e);
        for (TraceRecord r : recs) e.forward(List.of(new Engine.Step(e.newSequence(), r.tokens()))).logits();
        for (int d = 1; d <= 3; d++) {
            assertEquals(offline.at(d).precision(), tap.precision(d), 1e-12, "distance " + d);
            assertEquals(offline.at(d).recall(), tap.recall(d), 1e-12, "distance " + d);
        }
        assertTrue(tap.nanosPerTokenPerLayer() > 0);
    }
}
