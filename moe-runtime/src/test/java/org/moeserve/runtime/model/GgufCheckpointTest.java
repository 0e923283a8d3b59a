package org.moeserve.runtime.model;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.engine.Engine;
import org.moeserve.runtime.kernel.Parallel;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** GGUF files as checkpoints: what moe-serve writes, read back through the GGUF loader, runs the same forward pass. */
class GgufCheckpointTest {
    @TempDir
    Path tmp;
    static Parallel par;

    @BeforeAll
    static void pool() { par = new Parallel(2); }

    @AfterAll
    static void close() { par.close(); }

    static final String TEXT = "In the beginning God created the heaven and the earth.";

    static float[][] logits(MoeModel m, int[] ids) {
        Engine e = new Engine(m, par);
        return e.forward(List.of(new Engine.Step(e.newSequence(), ids)), true, false).logits();
    }

    @ParameterizedTest(name = "{0}: the unquantized GGUF gives the safetensors logits, bit for bit, and the same tokens")
    @ValueSource(strings = {"tiny-mixtral-kjv", "tiny-qwen3moe-random", "tiny-olmoe-random"})
    void anExportedFileRunsLikeItsSource(String name) throws Exception {
        Path f = tmp.resolve(name + ".gguf");
        try (MoeModel src = MoeModel.load(TestModels.dir(name)); Tokenizer tok = Tokenizer.load(src.dir(), src.config())) {
            GgufExport.write(src, f);
            try (MoeModel g = MoeModel.load(f); Tokenizer gt = Tokenizer.load(f, g.config())) {
                assertEquals(src.config().family(), g.config().family());
                assertEquals(src.config().experts(), g.config().experts());
                assertEquals(src.config().normTopKProb(), g.config().normTopKProb());
                int[] ids = tok.encode(TEXT);
                assertArrayEquals(ids, gt.encode(TEXT), "the tokenizer rebuilt from GGUF metadata encodes alike");
                assertEquals(TEXT, gt.decode(ids));
                float[][] a = logits(src, ids), b = logits(g, ids);
                for (int p = 0; p < ids.length; p++) assertArrayEquals(a[p], b[p], 0f, name + " position " + p);
            }
        }
    }
}
