package org.moeserve.bench.suite;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The machine a result was measured on, in one line: cores, CPU model, memory, JDK. */
public final class Machine {
    private Machine() {}

    public static String describe() {
        return Runtime.getRuntime().availableProcessors() + " cores of " + cpuModel() + ", " + memory() + ", "
                + System.getProperty("os.arch") + ", JDK " + Runtime.version();
    }

    private static String cpuModel() {
        String v = procField("/proc/cpuinfo", "model name");
        return v == null ? "an unknown CPU" : v;
    }

    private static String memory() {
        String v = procField("/proc/meminfo", "MemTotal");
        if (v == null) return "unknown memory";
        return Math.round(Double.parseDouble(v.replaceAll("[^0-9]", "")) / (1 << 20)) + " GiB";
    }

    private static String procField(String file, String key) {
        try {
            for (String l : Files.readAllLines(Path.of(file))) {
                if (l.startsWith(key)) return l.substring(l.indexOf(':') + 1).trim();
            }
        } catch (IOException e) {
            // not Linux: say unknown
        }
        return null;
    }
}
