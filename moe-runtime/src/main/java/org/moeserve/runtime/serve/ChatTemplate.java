package org.moeserve.runtime.serve;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Renders a Hugging Face chat template (tokenizer_config.json's {@code chat_template}, a Jinja2 template) for the
 * subset chat templates use: text, {@code {{ expr }}}, {@code {% for x in xs %}} with {@code loop.index0/index/
 * first/last/length}, {@code {% if %}/{% elif %}/{% else %}}, {@code {% set x = expr %}}, comments, whitespace
 * control ({@code {%- -%}}); expressions with string and number literals, variables, {@code a['k']} and
 * {@code a.k}, {@code + ~ %}, {@code == != < > <= >=}, {@code and or not in}, {@code is defined/none}, filters
 * {@code trim length upper lower tojson}, and {@code raise_exception(msg)}. Anything else fails with the construct
 * named, rather than rendering a wrong prompt.
 */
public final class ChatTemplate {
    private final List<Node> nodes;

    private ChatTemplate(List<Node> nodes) { this.nodes = nodes; }

    /** Parses a template; IllegalArgumentException names what is not supported. */
    public static ChatTemplate parse(String src) { return new ChatTemplate(new Parser(lex(src)).block(List.of())); }

    /** Renders with {@code messages} (list of {role, content} maps), bos/eos tokens and add_generation_prompt. */
    public String render(List<Map<String, Object>> messages, String bos, String eos, boolean addGenerationPrompt) {
        Map<String, Object> vars = new HashMap<>();
        vars.put("messages", messages);
        vars.put("bos_token", bos);
        vars.put("eos_token", eos);
        vars.put("add_generation_prompt", addGenerationPrompt);
        StringBuilder out = new StringBuilder();
        for (Node n : nodes) n.render(vars, out);
        return out.toString();
    }

    // ---------------------------------------------------------------------------------------------------------
    // Lexing: text and tags, with whitespace control
    // ---------------------------------------------------------------------------------------------------------

    private record Tok(char kind, String text) {} // kind: 't' text, 'o' output {{ }}, 's' statement {% %}

    private static List<Tok> lex(String src) {
        List<Tok> out = new ArrayList<>();
        int i = 0;
        boolean trimNext = false;
        while (i < src.length()) {
            int open = nextTag(src, i);
            String text = src.substring(i, open < 0 ? src.length() : open);
            if (trimNext) text = text.stripLeading();
            if (open < 0) {
                if (!text.isEmpty()) out.add(new Tok('t', text));
                break;
            }
            char kind = src.charAt(open + 1);
            String close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
            int end = src.indexOf(close, open + 2);
            if (end < 0) throw new IllegalArgumentException("chat template: unclosed " + src.substring(open, open + 2) + " at " + open);
            String inner = src.substring(open + 2, end);
            if (inner.startsWith("-")) {
                text = text.stripTrailing();
                inner = inner.substring(1);
            }
            trimNext = inner.endsWith("-");
            if (trimNext) inner = inner.substring(0, inner.length() - 1);
            if (!text.isEmpty()) out.add(new Tok('t', text));
            if (kind != '#') out.add(new Tok(kind == '{' ? 'o' : 's', inner.trim()));
            i = end + 2;
        }
        return out;
    }

    private static int nextTag(String s, int from) {
        for (int i = s.indexOf('{', from); i >= 0 && i + 1 < s.length(); i = s.indexOf('{', i + 1)) {
            char c = s.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') return i;
        }
        return -1;
    }

    // ---------------------------------------------------------------------------------------------------------
    // The tree
    // ---------------------------------------------------------------------------------------------------------

    private interface Node { void render(Map<String, Object> vars, StringBuilder out); }

    private interface Expr { Object eval(Map<String, Object> vars); }

    private static final class Parser {
        final List<Tok> toks;
        int pos;

        Parser(List<Tok> toks) { this.toks = toks; }

        /** Nodes until one of the end keywords (left unconsumed). */
        List<Node> block(List<String> ends) {
            List<Node> out = new ArrayList<>();
            while (pos < toks.size()) {
                Tok t = toks.get(pos);
                if (t.kind() == 's' && ends.contains(keyword(t.text()))) return out;
                pos++;
                switch (t.kind()) {
                    case 't' -> out.add((v, sb) -> sb.append(t.text()));
                    case 'o' -> {
                        Expr e = new ExprParser(t.text()).parse();
                        out.add((v, sb) -> sb.append(str(e.eval(v))));
                    }
                    default -> out.add(statement(t.text()));
                }
            }
            if (!ends.isEmpty()) throw new IllegalArgumentException("chat template: missing {% " + ends.getLast() + " %}");
            return out;
        }

        static String keyword(String s) {
            int sp = s.indexOf(' ');
            return sp < 0 ? s : s.substring(0, sp);
        }

        Node statement(String s) {
            String kw = keyword(s);
            String rest = s.substring(kw.length()).trim();
            switch (kw) {
                case "for" -> {
                    int in = rest.indexOf(" in ");
                    if (in < 0) throw new IllegalArgumentException("chat template: for without in: " + s);
                    String var = rest.substring(0, in).trim();
                    Expr seq = new ExprParser(rest.substring(in + 4)).parse();
                    List<Node> body = block(List.of("endfor"));
                    pos++;
                    return (v, sb) -> {
                        List<?> items = list(seq.eval(v));
                        for (int i = 0; i < items.size(); i++) {
                            Map<String, Object> loop = Map.of("index0", i, "index", i + 1, "first", i == 0,
                                    "last", i == items.size() - 1, "length", items.size());
                            Object oldVar = v.put(var, items.get(i)), oldLoop = v.put("loop", loop);
                            for (Node n : body) n.render(v, sb);
                            v.put(var, oldVar);
                            v.put("loop", oldLoop);
                        }
                    };
                }
                case "if" -> {
                    List<Expr> conds = new ArrayList<>();
                    List<List<Node>> bodies = new ArrayList<>();
                    conds.add(new ExprParser(rest).parse());
                    bodies.add(block(List.of("elif", "else", "endif")));
                    while (true) {
                        String end = toks.get(pos).text();
                        pos++;
                        if (keyword(end).equals("elif")) {
                            conds.add(new ExprParser(end.substring(4).trim()).parse());
                            bodies.add(block(List.of("elif", "else", "endif")));
                        } else if (keyword(end).equals("else")) {
                            conds.add(v -> true);
                            bodies.add(block(List.of("endif")));
                        } else {
                            break;
                        }
                    }
                    return (v, sb) -> {
                        for (int i = 0; i < conds.size(); i++) {
                            if (truthy(conds.get(i).eval(v))) {
                                for (Node n : bodies.get(i)) n.render(v, sb);
                                return;
                            }
                        }
                    };
                }
                case "set" -> {
                    int eq = rest.indexOf('=');
                    if (eq < 0) throw new IllegalArgumentException("chat template: set without =: " + s);
                    String var = rest.substring(0, eq).trim();
                    Expr e = new ExprParser(rest.substring(eq + 1)).parse();
                    return (v, sb) -> v.put(var, e.eval(v));
                }
                default -> throw new IllegalArgumentException("chat template: {% " + kw + " %} is not supported");
            }
        }
    }

    /** Precedence climbing over: or < and < not < comparison/in/is < + ~ < % < filter < postfix < primary. */
    private static final class ExprParser {
        final String s;
        int i;

        ExprParser(String s) { this.s = s; }

        Expr parse() {
            Expr e = or();
            skip();
            if (i < s.length()) throw new IllegalArgumentException("chat template: cannot read \"" + s.substring(i) + "\" in " + s);
            return e;
        }

        void skip() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }

        boolean word(String w) {
            skip();
            if (s.startsWith(w, i) && (i + w.length() == s.length() || !Character.isJavaIdentifierPart(s.charAt(i + w.length())))) {
                i += w.length();
                return true;
            }
            return false;
        }

        boolean sym(String w) {
            skip();
            if (s.startsWith(w, i)) {
                i += w.length();
                return true;
            }
            return false;
        }

        Expr or() {
            Expr l = and();
            while (word("or")) {
                Expr a = l, b = and();
                l = v -> truthy(a.eval(v)) ? a.eval(v) : b.eval(v);
            }
            return l;
        }

        Expr and() {
            Expr l = not();
            while (word("and")) {
                Expr a = l, b = not();
                l = v -> truthy(a.eval(v)) ? b.eval(v) : a.eval(v);
            }
            return l;
        }

        Expr not() {
            if (word("not")) {
                Expr e = not();
                return v -> !truthy(e.eval(v));
            }
            return compare();
        }

        Expr compare() {
            Expr l = concat();
            while (true) {
                for (String op : new String[]{"==", "!=", "<=", ">=", "<", ">"}) {
                    if (sym(op)) {
                        Expr a = l, b = concat();
                        l = v -> cmp(op, a.eval(v), b.eval(v));
                        continue;
                    }
                }
                if (word("not")) {
                    if (!word("in")) throw new IllegalArgumentException("chat template: expected 'not in' in " + s);
                    Expr a = l, b = concat();
                    l = v -> !contains(b.eval(v), a.eval(v));
                } else if (word("in")) {
                    Expr a = l, b = concat();
                    l = v -> contains(b.eval(v), a.eval(v));
                } else if (word("is")) {
                    boolean neg = word("not");
                    Expr a = l;
                    Expr test;
                    if (word("defined")) test = v -> a.eval(v) != null;
                    else if (word("none")) test = v -> a.eval(v) == null;
                    else throw new IllegalArgumentException("chat template: only 'is defined' and 'is none' are supported in " + s);
                    l = neg ? v -> !(Boolean) test.eval(v) : test;
                } else {
                    return l;
                }
            }
        }

        Expr concat() {
            Expr l = mod();
            while (true) {
                if (sym("+")) {
                    Expr a = l, b = mod();
                    l = v -> {
                        Object x = a.eval(v), y = b.eval(v);
                        if (x instanceof Number p && y instanceof Number q) return p.longValue() + q.longValue();
                        return str(x) + str(y);
                    };
                } else if (sym("~")) {
                    Expr a = l, b = mod();
                    l = v -> str(a.eval(v)) + str(b.eval(v));
                } else {
                    return l;
                }
            }
        }

        Expr mod() {
            Expr l = filter();
            while (sym("%")) {
                Expr a = l, b = filter();
                l = v -> ((Number) a.eval(v)).longValue() % ((Number) b.eval(v)).longValue();
            }
            return l;
        }

        Expr filter() {
            Expr l = postfix();
            while (sym("|")) {
                skip();
                int st = i;
                while (i < s.length() && Character.isJavaIdentifierPart(s.charAt(i))) i++;
                String f = s.substring(st, i);
                Expr a = l;
                l = switch (f) {
                    case "trim" -> v -> str(a.eval(v)).strip();
                    case "upper" -> v -> str(a.eval(v)).toUpperCase(java.util.Locale.ROOT);
                    case "lower" -> v -> str(a.eval(v)).toLowerCase(java.util.Locale.ROOT);
                    case "length" -> v -> a.eval(v) instanceof List<?> li ? (long) li.size() : (long) str(a.eval(v)).length();
                    case "tojson" -> v -> io.vertx.core.json.Json.encode(a.eval(v));
                    default -> throw new IllegalArgumentException("chat template: filter |" + f + " is not supported");
                };
            }
            return l;
        }

        Expr postfix() {
            Expr e = primary();
            while (true) {
                if (sym("[")) {
                    Expr a = e, k = or();
                    if (!sym("]")) throw new IllegalArgumentException("chat template: missing ] in " + s);
                    e = v -> index(a.eval(v), k.eval(v));
                } else if (sym(".")) {
                    skip();
                    int st = i;
                    while (i < s.length() && Character.isJavaIdentifierPart(s.charAt(i))) i++;
                    String name = s.substring(st, i);
                    Expr a = e;
                    e = v -> index(a.eval(v), name);
                } else {
                    return e;
                }
            }
        }

        Expr primary() {
            skip();
            if (i >= s.length()) throw new IllegalArgumentException("chat template: expression ends early: " + s);
            char c = s.charAt(i);
            if (c == '(') {
                i++;
                Expr e = or();
                if (!sym(")")) throw new IllegalArgumentException("chat template: missing ) in " + s);
                return e;
            }
            if (c == '\'' || c == '"') {
                StringBuilder sb = new StringBuilder();
                i++;
                while (i < s.length() && s.charAt(i) != c) {
                    char ch = s.charAt(i++);
                    if (ch == '\\' && i < s.length()) {
                        char n = s.charAt(i++);
                        sb.append(switch (n) { case 'n' -> '\n'; case 't' -> '\t'; default -> n; });
                    } else {
                        sb.append(ch);
                    }
                }
                i++;
                String lit = sb.toString();
                return v -> lit;
            }
            if (Character.isDigit(c)) {
                int st = i;
                while (i < s.length() && Character.isDigit(s.charAt(i))) i++;
                long n = Long.parseLong(s.substring(st, i));
                return v -> n;
            }
            int st = i;
            while (i < s.length() && Character.isJavaIdentifierPart(s.charAt(i))) i++;
            String name = s.substring(st, i);
            if (name.isEmpty()) throw new IllegalArgumentException("chat template: cannot read \"" + s.substring(st) + "\"");
            switch (name) {
                case "true", "True" -> { return v -> true; }
                case "false", "False" -> { return v -> false; }
                case "none", "None" -> { return v -> null; }
                default -> { }
            }
            if (name.equals("raise_exception") && sym("(")) {
                Expr msg = or();
                sym(")");
                return v -> { throw new IllegalArgumentException(str(msg.eval(v))); };
            }
            return v -> v.get(name);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Values
    // ---------------------------------------------------------------------------------------------------------

    static String str(Object o) { return o == null ? "" : o instanceof Boolean b ? (b ? "True" : "False") : o.toString(); }

    static boolean truthy(Object o) {
        if (o == null) return false;
        if (o instanceof Boolean b) return b;
        if (o instanceof Number n) return n.doubleValue() != 0;
        if (o instanceof String s) return !s.isEmpty();
        if (o instanceof List<?> l) return !l.isEmpty();
        return true;
    }

    static List<?> list(Object o) {
        if (o instanceof List<?> l) return l;
        throw new IllegalArgumentException("chat template: for loops over lists, not " + o);
    }

    static Object index(Object o, Object k) {
        if (o instanceof Map<?, ?> m) return m.get(str(k));
        if (o instanceof List<?> l && k instanceof Number n) {
            int i = n.intValue();
            if (i < 0) i += l.size();
            return i >= 0 && i < l.size() ? l.get(i) : null;
        }
        return null;
    }

    static boolean contains(Object container, Object x) {
        if (container instanceof String s) return s.contains(str(x));
        if (container instanceof List<?> l) return l.contains(x);
        if (container instanceof Map<?, ?> m) return m.containsKey(str(x));
        return false;
    }

    static boolean cmp(String op, Object a, Object b) {
        if (a instanceof Number x && b instanceof Number y) {
            double p = x.doubleValue(), q = y.doubleValue();
            return switch (op) { case "==" -> p == q; case "!=" -> p != q; case "<" -> p < q; case ">" -> p > q;
                case "<=" -> p <= q; default -> p >= q; };
        }
        boolean eq = java.util.Objects.equals(a, b);
        return switch (op) {
            case "==" -> eq;
            case "!=" -> !eq;
            default -> {
                int c = str(a).compareTo(str(b));
                yield switch (op) { case "<" -> c < 0; case ">" -> c > 0; case "<=" -> c <= 0; default -> c >= 0; };
            }
        };
    }
}
