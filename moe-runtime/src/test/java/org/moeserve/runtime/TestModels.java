package org.moeserve.runtime;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Where the bundled checkpoints are, from any checkout: the demo model ships at the repository's top level
 * (models/tiny-mixtral-kjv), the other families in this module's test resources.
 */
public final class TestModels {
    private TestModels() {}

    public static final List<String> ALL = List.of("tiny-mixtral-kjv", "tiny-qwen3moe-random", "tiny-olmoe-random",
            "tiny-qwen2moe-random", "tiny-deepseekv2-random", "tiny-deepseekv3-random");

    public static Path dir(String name) {
        Path here = Path.of("").toAbsolutePath();
        for (Path p = here; p != null; p = p.getParent()) {
            for (Path cand : List.of(p.resolve("models").resolve(name),
                    p.resolve("moe-runtime/src/test/resources/models").resolve(name),
                    p.resolve("src/test/resources/models").resolve(name))) {
                if (Files.isRegularFile(cand.resolve("config.json"))) return cand;
            }
        }
        throw new IllegalStateException("bundled model " + name + " not found above " + here);
    }
}
