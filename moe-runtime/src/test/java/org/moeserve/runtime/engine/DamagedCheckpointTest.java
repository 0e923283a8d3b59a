package org.moeserve.runtime.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moeserve.runtime.TestModels;
import org.moeserve.runtime.kernel.Parallel;
import org.moeserve.runtime.model.MoeModel;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A checkpoint whose weights hold a NaN gives a clear error at the first step that reads it, on one thread and on
 * two (the logits' check, {@code Kernels.firstNonFinite}), instead of NaN logits and arbitrary tokens.
 */
class DamagedCheckpointTest {
    @Test
    void aNaNInTheOutputHeadIsReportedAsADamagedCheckpoint(@TempDir Path tmp) throws IOException {
        Path src = TestModels.dir("tiny-mixtral-kjv");
        for (String f : List.of("config.json", "model.safetensors")) Files.copy(src.resolve(f), tmp.resolve(f));
        try (RandomAccessFile f = new RandomAccessFile(tmp.resolve("model.safetensors").toFile(), "rw")) {
            byte[] len = new byte[8];
            f.readFully(len);
            long headerLen = ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong();
            byte[] header = new byte[(int) headerLen];
            f.readFully(header);
            JsonNode lmHead = new ObjectMapper().readTree(new String(header, StandardCharsets.UTF_8)).get("lm_head.weight");
            assertEquals("BF16", lmHead.get("dtype").asText());
            long at = 8 + headerLen + lmHead.get("data_offsets").get(0).asLong() + 2L * 200; // row 1, column 72
            f.seek(at);
            f.write(new byte[]{(byte) 0xC0, 0x7F}); // BF16 quiet NaN, little-endian
        }
        try (MoeModel m = MoeModel.load(tmp); Parallel two = new Parallel(2)) {
            for (Parallel p : new Parallel[]{Parallel.SERIAL, two}) {
                Engine e = new Engine(m, p);
                IllegalStateException x = assertThrows(IllegalStateException.class,
                        () -> e.forward(List.of(new Engine.Step(e.newSequence(), new int[]{72, 101, 32}))));
                assertTrue(x.getMessage().contains("non-finite logit (NaN)") && x.getMessage().contains("damaged"), x.getMessage());
            }
        }
    }
}
