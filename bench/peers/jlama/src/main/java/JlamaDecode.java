import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.model.ModelSupport;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.safetensors.prompt.PromptContext;

import java.io.File;
import java.util.Arrays;
import java.util.Locale;
import java.util.UUID;

/**
 * Jlama decoding a Hugging Face checkpoint greedily, as the peer in bench/scripts/peers.sh: tokens/s of the
 * generation phase, median of REPS after two warm-up reps. Usage: JlamaDecode MODEL_DIR REPS TOKENS PROMPT
 */
public class JlamaDecode {
    public static void main(String[] a) {
        AbstractModel m = ModelSupport.loadModel(new File(a[0]), DType.F32, DType.F32); // working memory F32, weights as stored
        int reps = Integer.parseInt(a[1]), tokens = Integer.parseInt(a[2]);
        double[] rate = new double[reps];
        String text = "";
        int generated = 0;
        for (int r = -2; r < reps; r++) {
            var resp = m.generate(UUID.randomUUID(), PromptContext.of(a[3]), 0.0f, tokens, (s, f) -> { });
            if (r < 0) continue;
            rate[r] = resp.generatedTokens * 1000.0 / Math.max(1, resp.generateTimeMs);
            generated = resp.generatedTokens;
            if (r == 0) text = resp.responseText;
        }
        double[] s = rate.clone();
        Arrays.sort(s);
        System.out.printf(Locale.ROOT, "{\"engine\": \"jlama 0.8.4\", \"median_tokens_per_s\": %.1f, \"min\": %.1f, \"max\": %.1f, \"tokens\": %d, "
                + "\"text\": \"%s\"}%n", s[s.length / 2], s[0], s[s.length - 1], generated, text.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n"));
    }
}
