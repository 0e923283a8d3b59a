package org.moeserve.runtime.serve;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.moeserve.runtime.engine.SamplingParams;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A validated /v1/completions or /v1/chat/completions body. Every field is checked for its type and range; a bad
 * one fails with HTTP 400 naming it, in OpenAI's error shape.
 */
record CompletionRequest(String prompt, List<Map<String, Object>> messages, int maxTokens, SamplingParams sampling,
                         List<String> stop, boolean stream, boolean chat, String model, int n, int logprobs) {
    /** Roles a chat message may have. */
    static final java.util.Set<String> ROLES = java.util.Set.of("system", "developer", "user", "assistant");
    /** The most choices one request may ask for ({@code n}), and the most alternatives per token ({@code top_logprobs}). */
    static final int MAX_N = 8, MAX_TOP_LOGPROBS = 20;

    /** logprobs: -1 when not asked; else how many alternatives per token (0: only the chosen token's). */
    static CompletionRequest parse(JsonObject b, boolean chat) {
        refuse(b, "best_of", v -> v instanceof Number x && x.doubleValue() == 1, "best_of is not supported; leave it out (or 1) and use n");
        refuse(b, "echo", v -> Boolean.FALSE.equals(v), "echo is not supported; leave it out (or false)");
        refuse(b, "suffix", v -> false, "suffix (insertion) is not supported; leave it out");
        refuse(b, "logit_bias", v -> v instanceof JsonObject o && o.isEmpty(), "logit_bias is not supported; leave it out");
        refuse(b, "tools", v -> v instanceof JsonArray a && a.isEmpty(), "tools (function calling) are not supported; leave them out");
        Object model = b.getValue("model");
        if (model != null && !(model instanceof String)) throw ApiException.invalid("model", "model must be a string");
        String prompt;
        List<Map<String, Object>> messages = new ArrayList<>();
        if (chat) {
            Object m = b.getValue("messages");
            if (!(m instanceof JsonArray msgs) || msgs.isEmpty()) {
                throw ApiException.invalid("messages", "messages must be a non-empty array of {role, content}");
            }
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < msgs.size(); i++) {
                if (!(msgs.getValue(i) instanceof JsonObject msg) || !(msg.getValue("role") instanceof String role)
                        || !(msg.getValue("content") instanceof String content)) {
                    throw ApiException.invalid("messages[" + i + "]", "messages[" + i + "] must be {\"role\": string, \"content\": string}");
                }
                if (!ROLES.contains(role)) {
                    throw ApiException.invalid("messages[" + i + "].role", "messages[" + i + "].role is '" + role
                            + "' but must be one of system, developer, user, assistant");
                }
                sb.append(template(role, content));
                messages.add(Map.of("role", role, "content", content));
            }
            prompt = sb.append("Assistant:").toString();
        } else {
            Object p = b.getValue("prompt");
            if (p instanceof JsonArray a && a.size() == 1 && a.getValue(0) instanceof String s) p = s;
            if (!(p instanceof String s) || s.isEmpty()) {
                throw ApiException.invalid("prompt", "prompt must be a non-empty string (one prompt per request)");
            }
            prompt = s;
        }
        String tokensField = chat && b.getValue("max_completion_tokens") != null ? "max_completion_tokens" : "max_tokens";
        int maxTokens = intField(b, tokensField, 16, 1, Integer.MAX_VALUE);
        int n = intField(b, "n", 1, 1, MAX_N);
        int logprobs = -1;
        if (chat) {
            Object lp = b.getValue("logprobs");
            if (lp != null && !(lp instanceof Boolean)) throw ApiException.invalid("logprobs", "logprobs must be true or false");
            int top = intField(b, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS);
            if (Boolean.TRUE.equals(lp)) logprobs = top;
            else if (b.getValue("top_logprobs") != null) throw ApiException.invalid("top_logprobs", "top_logprobs needs logprobs: true");
        } else if (b.getValue("logprobs") != null) {
            logprobs = intField(b, "logprobs", 0, 0, 5);
        }
        double temperature = number(b, "temperature", 1.0);
        if (temperature < 0 || temperature > 2) {
            throw ApiException.invalid("temperature", "temperature is " + temperature + " but must be in [0, 2]");
        }
        double topP = number(b, "top_p", 1.0);
        if (!(topP > 0 && topP <= 1)) throw ApiException.invalid("top_p", "top_p is " + topP + " but must be in (0, 1]");
        long seed = b.getValue("seed") == null ? System.nanoTime() : (long) number(b, "seed", 0);
        List<String> stop = new ArrayList<>();
        Object st = b.getValue("stop");
        if (st instanceof String s) {
            if (s.isEmpty()) throw ApiException.invalid("stop", "stop is an empty string, which would end every generation at once; leave it out");
            stop.add(s);
        }
        else if (st instanceof JsonArray a) {
            for (int i = 0; i < a.size(); i++) {
                if (!(a.getValue(i) instanceof String s) || s.isEmpty()) {
                    throw ApiException.invalid("stop", "stop must be a string or an array of non-empty strings");
                }
                stop.add(s);
            }
        } else if (st != null) throw ApiException.invalid("stop", "stop must be a string or an array of strings");
        if (stop.size() > 4) throw ApiException.invalid("stop", "stop has " + stop.size() + " strings but at most 4 are allowed");
        Object stream = b.getValue("stream");
        if (stream != null && !(stream instanceof Boolean)) throw ApiException.invalid("stream", "stream must be true or false");
        return new CompletionRequest(prompt, messages, maxTokens, new SamplingParams(temperature, topP, seed), stop,
                Boolean.TRUE.equals(stream), chat, (String) model, n, logprobs);
    }

    /** The plain chat layout used when the model ships no chat template. */
    static String template(String role, String content) {
        String who = switch (role) {
            case "system" -> "System";
            case "assistant" -> "Assistant";
            default -> "User";
        };
        return who + ": " + content + "\n";
    }

    /** An integer field in [min, max], checked as written (no wrapping: 4294967299 is out of range, not 3). */
    private static int intField(JsonObject b, String f, int dflt, int min, int max) {
        Object v = b.getValue(f);
        if (v == null) return dflt;
        if (!(v instanceof Number n)) throw ApiException.invalid(f, f + " must be an integer, not " + v);
        java.math.BigDecimal d;
        try {
            d = new java.math.BigDecimal(n.toString());
        } catch (NumberFormatException e) {
            throw ApiException.invalid(f, f + " must be an integer, not " + v);
        }
        if (d.signum() != 0 && d.stripTrailingZeros().scale() > 0) throw ApiException.invalid(f, f + " must be an integer, not " + v);
        if (d.compareTo(java.math.BigDecimal.valueOf(min)) < 0 || d.compareTo(java.math.BigDecimal.valueOf(max)) > 0) {
            throw ApiException.invalid(f, f + " is " + d.toPlainString() + " but must be in " + min + ".." + max);
        }
        return d.intValueExact();
    }

    /** A field the server does not implement: a 400 naming it unless its value means "off". */
    private static void refuse(JsonObject b, String f, java.util.function.Predicate<Object> harmless, String message) {
        Object v = b.getValue(f);
        if (v != null && !harmless.test(v)) throw ApiException.invalid(f, message);
    }

    private static double number(JsonObject b, String f, double dflt) {
        Object v = b.getValue(f);
        if (v == null) return dflt;
        if (!(v instanceof Number n)) throw ApiException.invalid(f, f + " must be a number, not " + v);
        return n.doubleValue();
    }
}
