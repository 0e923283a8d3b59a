package org.moeserve.runtime.plot;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Small charts as SVG (lines, grouped bars, heat maps): results people would rather look at than read. Used by
 * the CLI's --svg/--plot options and by the benchmark suite's report. */
public final class Svg {
    private Svg() {}

    private static final String[] COLORS = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#444444"};

    /** One polyline per series of (x, y) points; y in [0, 1]. */
    public static String lines(String title, String xLabel, String yLabel, Map<String, List<double[]>> series) {
        int w = 780, h = 440, left = 60, right = 250, top = 40, bottom = 50;
        double xMax = 1;
        for (List<double[]> s : series.values()) for (double[] p : s) xMax = Math.max(xMax, p[0]);
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
                + "font-family='sans-serif' font-size='12'>%n<rect width='100%%' height='100%%' fill='white'/>%n", w, h));
        sb.append(String.format(Locale.ROOT, "<text x='%d' y='22' font-size='15'>%s</text>%n", left, esc(title)));
        int pw = w - left - right, ph = h - top - bottom;
        for (int i = 0; i <= 5; i++) {
            double y = top + ph - ph * i / 5.0;
            sb.append(String.format(Locale.ROOT, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>"
                    + "<text x='%d' y='%.1f' text-anchor='end'>%.1f</text>%n", left, y, left + pw, y, left - 6, y + 4, i / 5.0));
        }
        for (int i = 0; i <= 4; i++) {
            double x = left + pw * i / 4.0;
            sb.append(String.format(Locale.ROOT, "<text x='%.1f' y='%d' text-anchor='middle'>%.0f</text>%n", x, top + ph + 18, xMax * i / 4));
        }
        sb.append(String.format(Locale.ROOT, "<text x='%d' y='%d' text-anchor='middle'>%s</text>%n", left + pw / 2, h - 12, esc(xLabel)));
        sb.append(String.format(Locale.ROOT, "<text x='16' y='%d' transform='rotate(-90 16 %d)' text-anchor='middle'>%s</text>%n",
                top + ph / 2, top + ph / 2, esc(yLabel)));
        int c = 0;
        for (Map.Entry<String, List<double[]>> e : series.entrySet()) {
            String color = COLORS[c % COLORS.length];
            StringBuilder pts = new StringBuilder();
            for (double[] p : e.getValue()) {
                pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", left + pw * p[0] / xMax, top + ph - ph * Math.max(0, Math.min(1, p[1]))));
            }
            String dash = e.getKey().startsWith("belady") ? " stroke-dasharray='6 4'" : "";
            sb.append(String.format(Locale.ROOT, "<polyline fill='none' stroke='%s' stroke-width='2'%s points='%s'/>%n", color, dash, pts.toString().trim()));
            int ly = top + 10 + 20 * c;
            sb.append(String.format(Locale.ROOT, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' stroke-width='2'%s/>"
                    + "<text x='%d' y='%d'>%s</text>%n", left + pw + 14, ly, left + pw + 38, ly, color, dash, left + pw + 44, ly + 4, esc(e.getKey())));
            c++;
        }
        return sb.append("</svg>\n").toString();
    }

    /** A heat map of values[row][col] (any range; scaled to the maximum), white to dark blue, with grid labels. */
    public static String heatmap(String title, String rowLabel, String colLabel, double[][] values, int[] colGroups) {
        int rows = values.length, cols = values[0].length;
        int cell = Math.max(4, Math.min(28, 640 / Math.max(rows, cols)));
        int left = 70, top = 46, w = left + cols * cell + 30, h = top + rows * cell + 50;
        double max = 0;
        for (double[] r : values) for (double v : r) max = Math.max(max, v);
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' "
                + "font-size='11'>%n<rect width='100%%' height='100%%' fill='white'/>%n<text x='%d' y='22' font-size='14'>%s</text>%n",
                w, h, left, esc(title)));
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                double t = max == 0 ? 0 : values[r][c] / max;
                int shade = (int) Math.round(255 * (1 - t));
                sb.append(String.format(Locale.ROOT, "<rect x='%d' y='%d' width='%d' height='%d' fill='rgb(%d,%d,255)'/>%n",
                        left + c * cell, top + r * cell, cell, cell, shade, shade));
            }
        }
        if (colGroups != null) { // device boundaries
            for (int c = 1; c < cols; c++) {
                if (colGroups[c] != colGroups[c - 1]) {
                    sb.append(String.format(Locale.ROOT, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#c00'/>%n",
                            left + c * cell, top, left + c * cell, top + rows * cell));
                    sb.append(String.format(Locale.ROOT, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#c00'/>%n",
                            left, top + c * cell, left + cols * cell, top + c * cell));
                }
            }
        }
        sb.append(String.format(Locale.ROOT, "<text x='%d' y='%d' text-anchor='middle'>%s</text>%n", left + cols * cell / 2,
                top + rows * cell + 20, esc(colLabel)));
        sb.append(String.format(Locale.ROOT, "<text x='18' y='%d' transform='rotate(-90 18 %d)' text-anchor='middle'>%s</text>%n",
                top + rows * cell / 2, top + rows * cell / 2, esc(rowLabel)));
        return sb.append("</svg>\n").toString();
    }

    /**
     * Grouped vertical bars: one group per category, one bar per series ({@code series.get(name)[category]}; NaN
     * leaves a gap). The axis starts at 0 and ends at a round value above the largest bar; each bar carries its value.
     */
    public static String bars(String title, String yLabel, List<String> categories, Map<String, double[]> series) {
        int n = categories.size(), k = Math.max(1, series.size());
        int longest = categories.stream().mapToInt(String::length).max().orElse(0);
        int left = 70, right = 220, top = 40, bottom = 70, group = Math.max(Math.max(60, 7 * longest + 10), Math.min(140, 24 * k + 20));
        int w = left + n * group + right, h = 440, pw = n * group, ph = h - top - bottom;
        double max = 0;
        for (double[] v : series.values()) for (double x : v) if (!Double.isNaN(x)) max = Math.max(max, x);
        double step = niceStep(max / 5);
        double yMax = Math.max(step, Math.ceil(max / step) * step);
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
                + "font-family='sans-serif' font-size='12'>%n<rect width='100%%' height='100%%' fill='white'/>%n", w, h));
        sb.append(String.format(Locale.ROOT, "<text x='%d' y='22' font-size='15'>%s</text>%n", left, esc(title)));
        for (double v = 0; v <= yMax + step / 2; v += step) {
            double y = top + ph - ph * v / yMax;
            sb.append(String.format(Locale.ROOT, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>"
                    + "<text x='%d' y='%.1f' text-anchor='end'>%s</text>%n", left, y, left + pw, y, left - 6, y + 4, label(v)));
        }
        sb.append(String.format(Locale.ROOT, "<text x='16' y='%d' transform='rotate(-90 16 %d)' text-anchor='middle'>%s</text>%n",
                top + ph / 2, top + ph / 2, esc(yLabel)));
        double bw = (group - 16.0) / k;
        for (int c = 0; c < n; c++) {
            int gx = left + c * group;
            sb.append(String.format(Locale.ROOT, "<text x='%.1f' y='%d' text-anchor='middle'>%s</text>%n", gx + group / 2.0,
                    top + ph + 18, esc(categories.get(c))));
            int s = 0;
            for (double[] v : series.values()) {
                double x = c < v.length ? v[c] : Double.NaN;
                if (!Double.isNaN(x)) {
                    double bh = ph * x / yMax, bx = gx + 8 + s * bw;
                    sb.append(String.format(Locale.ROOT, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'/>"
                            + "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='10'>%s</text>%n", bx, top + ph - bh,
                            bw - 2, bh, COLORS[s % COLORS.length], bx + (bw - 2) / 2, top + ph - bh - 3, label(x)));
                }
                s++;
            }
        }
        int s = 0;
        for (String name : series.keySet()) {
            int ly = top + 10 + 20 * s;
            sb.append(String.format(Locale.ROOT, "<rect x='%d' y='%d' width='14' height='10' fill='%s'/><text x='%d' y='%d'>%s</text>%n",
                    left + pw + 14, ly - 5, COLORS[s % COLORS.length], left + pw + 34, ly + 4, esc(name)));
            s++;
        }
        return sb.append("</svg>\n").toString();
    }

    private static double niceStep(double raw) {
        if (raw <= 0) return 1;
        double p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
    }

    private static String label(double v) {
        double a = Math.abs(v);
        return String.format(Locale.ROOT, a >= 100 || v == Math.rint(v) ? "%.0f" : a >= 10 ? "%.1f" : a >= 1 ? "%.2f" : "%.3f", v);
    }

    private static String esc(String s) { return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"); }
}
