package org.moeserve.runtime.engine;

/**
 * How the next token is chosen. Temperature 0 is greedy (argmax); otherwise softmax(logits / temperature),
 * cut to the smallest set of tokens whose probability reaches topP (nucleus sampling), drawn with a random
 * generator seeded by {@code seed}, so a seeded request is reproducible.
 *
 * @param temperature >= 0; 0 means greedy
 * @param topP        in (0, 1]; 1 keeps every token
 * @param seed        seed of the sequence's generator
 */
public record SamplingParams(double temperature, double topP, long seed) {
    public static final SamplingParams GREEDY = new SamplingParams(0, 1, 0);

    public SamplingParams {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature is " + temperature + " but must be >= 0 (0 = greedy)");
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p is " + topP + " but must be in (0, 1]");
        }
    }

    public boolean greedy() { return temperature == 0; }
}
