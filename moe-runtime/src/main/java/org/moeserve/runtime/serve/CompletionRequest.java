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
                         List<String> stop, boolean stream, boolean chat) {

    static CompletionRequest parse(JsonObject b, boolean chat) {
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
        int maxTokens = intField(b, "max_tokens", 16);
        if (maxTokens <= 0) throw ApiException.invalid("max_tokens", "max_tokens is " + maxTokens + " but must be > 0");
        double temperature = number(b, "temperature", 1.0);
        if (temperature < 0 || temperature > 2) {
            throw ApiException.invalid("temperature", "temperature is " + temperature + " but must be in [0, 2]");
        }
        double topP = number(b, "top_p", 1.0);
        if (!(topP > 0 && topP <= 1)) throw ApiException.invalid("top_p", "top_p is " + topP + " but must be in (0, 1]");
        long seed = b.getValue("seed") == null ? System.nanoTime() : (long) number(b, "seed", 0);
        List<String> stop = new ArrayList<>();
        Object st = b.getValue("stop");
        if (st instanceof String s) stop.add(s);
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
                Boolean.TRUE.equals(stream), chat);
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

    private static int intField(JsonObject b, String f, int dflt) {
        Object v = b.getValue(f);
        if (v == null) return dflt;
        if (!(v instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
            throw ApiException.invalid(f, f + " must be an integer, not " + v);
        }
        return n.intValue();
    }

    private static double number(JsonObject b, String f, double dflt) {
        Object v = b.getValue(f);
        if (v == null) return dflt;
        if (!(v instanceof Number n)) throw ApiException.invalid(f, f + " must be a number, not " + v);
        return n.doubleValue();
    }
}
