package org.moeserve.runtime.engine;

import org.moeserve.cache.ExpertCache;
import org.moeserve.cache.ExpertKey;
import org.moeserve.runtime.model.ExpertWeights;
import org.moeserve.runtime.model.MoeModel;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * HOBBIT's mixed precision: an expert in the fast tier is served from the cache as usual; a missed one is served at
 * once from a low-bit copy of the model (a quantized GGUF held in memory, e.g. {@code moe quantize --type q4_0
 * --experts-only}: a quarter of the bytes) while its full-precision bytes are loaded for its next use. A miss never
 * stalls on the link; the price is that this step computes with the low-bit weights of that expert.
 *
 * <p>This is the one store that breaks {@link ExpertStore}'s rule that where experts live never changes the result:
 * it is opt-in ({@code --low-bit FILE.gguf}), and its effect on accuracy is measured (bits per byte with
 * {@code moe eval}, greedy agreement with all-resident) beside its effect on speed.
 */
public final class LowBitFallbackStore implements ExpertStore {
    private final CachedExpertStore full;
    private final ExpertCache cache;
    private final MoeModel low;
    private final ConcurrentHashMap<ExpertKey, Integer> lowOut = new ConcurrentHashMap<>();
    private final LongAdder fullUses = new LongAdder(), lowUses = new LongAdder();

    public LowBitFallbackStore(MoeModel model, ExpertCache cache, MoeModel low) {
        var a = model.config();
        var b = low.config();
        if (a.moeLayers() != b.moeLayers() || a.experts() != b.experts() || a.hiddenSize() != b.hiddenSize()
                || a.expertIntermediate() != b.expertIntermediate()) {
            throw new IllegalArgumentException("--low-bit " + low.dir() + " is not a copy of " + model.name() + ": "
                    + b.moeLayers() + " MoE layers of " + b.experts() + " experts " + b.hiddenSize() + "x" + b.expertIntermediate()
                    + " against " + a.moeLayers() + " of " + a.experts() + " " + a.hiddenSize() + "x" + a.expertIntermediate()
                    + "; make it with moe quantize --model <the model> --type q4_0 --experts-only");
        }
        this.full = new CachedExpertStore(model, cache);
        this.cache = cache;
        this.low = low;
    }

    @Override
    public ExpertWeights acquire(int moeLayer, int expert) {
        ExpertKey k = new ExpertKey(moeLayer, expert);
        if (cache.isResident(k)) {
            fullUses.increment();
            return full.acquire(moeLayer, expert);
        }
        cache.prefetch(k, 0); // the full-precision bytes start loading now, for this expert's next use
        lowOut.merge(k, 1, Integer::sum);
        lowUses.increment();
        return low.expert(moeLayer, expert);
    }

    @Override
    public void reserve(int moeLayer, int[] experts) { full.reserve(moeLayer, experts); }

    @Override
    public void release(int moeLayer, int expert) {
        ExpertKey k = new ExpertKey(moeLayer, expert);
        boolean[] wasLow = {false};
        lowOut.computeIfPresent(k, (key, n) -> {
            wasLow[0] = true;
            return n == 1 ? null : n - 1;
        });
        if (!wasLow[0]) full.release(moeLayer, expert);
    }

    /** Expert uses served at full precision from the cache. */
    public long fullUses() { return fullUses.sum(); }

    /** Expert uses served from the low-bit copy (misses). */
    public long lowUses() { return lowUses.sum(); }

    /** One line: how many expert uses each precision served. */
    public String summary() {
        long f = fullUses(), l = lowUses();
        return String.format(java.util.Locale.ROOT, "low-bit fallback: %d of %d expert uses (%.1f%%) served from %s, %d at full precision",
                l, f + l, 100.0 * l / Math.max(1, f + l), low.name(), f);
    }

    public void resetStats() {
        fullUses.reset();
        lowUses.reset();
    }
}
