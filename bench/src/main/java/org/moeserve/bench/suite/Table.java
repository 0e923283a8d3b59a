package org.moeserve.bench.suite;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One Markdown table a benchmark printed, as kept in the results JSON. {@code section} is the last {@code ###}
 * heading above it, {@code caption} the text line right above it, {@code note} a parenthesised line right below.
 */
public record Table(String section, String caption, List<String> columns, List<List<String>> rows, String note) {
    private static final Pattern NUMBER = Pattern.compile("-?\\d[\\d,]*(\\.\\d+)?([eE][-+]?\\d+)?");

    /** The tables in a benchmark's standard output, in order, and the text lines that are neither table nor caption. */
    public record Parsed(List<Table> tables, List<String> text) {}

    public static Parsed parse(String output) {
        List<Table> tables = new ArrayList<>();
        List<String> text = new ArrayList<>();
        String section = "", pending = null;
        List<String> lines = output.lines().toList();
        for (int i = 0; i < lines.size(); i++) {
            String l = lines.get(i).strip();
            if (l.startsWith("|")) {
                List<String> cols = cells(l);
                List<List<String>> rows = new ArrayList<>();
                int j = i + 1;
                if (j < lines.size() && lines.get(j).strip().startsWith("|---")) j++;
                for (; j < lines.size() && lines.get(j).strip().startsWith("|"); j++) rows.add(cells(lines.get(j).strip()));
                String note = null;
                if (j < lines.size() && lines.get(j).strip().startsWith("(")) note = lines.get(j++).strip();
                tables.add(new Table(section, pending == null ? "" : pending, cols, rows, note));
                pending = null;
                i = j - 1;
            } else if (l.startsWith("#")) {
                if (pending != null) text.add(pending);
                section = l.replaceFirst("^#+\\s*", "");
                pending = null;
            } else if (!l.isEmpty()) {
                if (pending != null) text.add(pending);
                pending = l;
            }
        }
        if (pending != null) text.add(pending);
        return new Parsed(tables, text);
    }

    private static List<String> cells(String line) {
        String s = line.substring(1, line.endsWith("|") && line.length() > 1 ? line.length() - 1 : line.length());
        List<String> out = new ArrayList<>();
        for (String c : s.split("\\|", -1)) out.add(c.strip());
        return out;
    }

    /** Index of the first column whose header starts with {@code prefix} (case-insensitive), or -1. */
    public int column(String prefix) {
        for (int c = 0; c < columns.size(); c++) if (columns.get(c).toLowerCase().startsWith(prefix.toLowerCase())) return c;
        return -1;
    }

    /** The first row whose first cell equals {@code key}, or null. */
    public List<String> row(String key) {
        for (List<String> r : rows) if (!r.isEmpty() && r.get(0).equals(key)) return r;
        return null;
    }

    /** The first number in a cell ("1,234.5 us" is 1234.5, "61.0%" is 61.0), or NaN when it has none. */
    public static double number(String cell) {
        if (cell == null) return Double.NaN;
        Matcher m = NUMBER.matcher(cell);
        return m.find() ? Double.parseDouble(m.group().replace(",", "")) : Double.NaN;
    }

    /** This table as Markdown, with extra columns appended (one list of cells per row, or null for none). */
    public String markdown(List<String> extraColumns, List<List<String>> extraCells) {
        StringBuilder sb = new StringBuilder();
        List<String> cols = new ArrayList<>(columns);
        if (extraColumns != null) cols.addAll(extraColumns);
        sb.append("| ").append(String.join(" | ", cols)).append(" |\n");
        sb.append("|").append("---|".repeat(cols.size())).append('\n');
        for (int r = 0; r < rows.size(); r++) {
            List<String> cells = new ArrayList<>(rows.get(r));
            while (cells.size() < columns.size()) cells.add("");
            if (extraCells != null) cells.addAll(extraCells.get(r));
            sb.append("| ").append(String.join(" | ", cells)).append(" |\n");
        }
        if (note != null) sb.append('\n').append(note).append('\n');
        return sb.toString();
    }
}
