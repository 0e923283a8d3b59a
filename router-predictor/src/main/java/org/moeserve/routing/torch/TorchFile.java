package org.moeserve.routing.torch;

import org.moeserve.routing.TraceFormatException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * A restricted reader of {@code torch.save} files (the zip format of torch 1.6 and later: {@code ARCHIVE/data.pkl},
 * a pickle, and one entry {@code ARCHIVE/data/KEY} per tensor storage).
 *
 * <p>Pickle is a program, not a data format: an ordinary unpickler imports and calls whatever the file names. This one
 * runs nothing. It interprets the opcodes that build data (dicts, lists, tuples, strings, numbers, None, booleans)
 * and recognises exactly three callables by name: {@code torch._utils._rebuild_tensor_v2} (a tensor view of a
 * storage), the {@code torch.*Storage} classes (persistent ids of storages) and {@code collections.OrderedDict}. Any
 * other global, and any opcode outside that set, stops the read with the file, the byte offset and the opcode or
 * global named. Sizes are checked against the bytes actually present before anything is allocated.
 *
 * <p>What it returns: {@code Map<String|Long|..., Object>} (insertion order), {@code List<Object>} for lists and
 * tuples, {@code Long}, {@code Double}, {@code String}, {@code Boolean}, {@code null}, {@link Tensor}.
 */
public final class TorchFile {
    /** Largest data.pkl read (SGLang's per-token dumps keep their big arrays in storages, not in the pickle). */
    static final long MAX_PICKLE_BYTES = 256L << 20;
    /** Largest tensor materialised, in elements. */
    static final long MAX_TENSOR_ELEMENTS = 1L << 28;
    /**
     * Bytes of Java arrays one file may materialise, and bytes of one storage read (a Java array holds at most 2^31).
     * A 100,000-token per_token dump of DeepSeek-V3's 61 layers x 8 ids is 196 MB.
     */
    static final long MAX_MATERIALISED_BYTES = 2L << 30, MAX_STORAGE_BYTES = Integer.MAX_VALUE - 16;
    private static final int MAX_STACK = 1 << 20;

    private TorchFile() {}

    /**
     * A tensor, materialised in row-major order (the view's shape, strides and offset applied), in the narrowest Java
     * array that holds its type exactly: int[] up to 32-bit integers, long[] for int64, float[] up to 32-bit floats,
     * double[] for float64 (a per-token dump's ids are int32: half the memory of longs).
     */
    public static final class Tensor {
        private final String dtype;
        private final int[] shape;
        private final Object data;

        Tensor(String dtype, int[] shape, Object data) {
            this.dtype = dtype;
            this.shape = shape;
            this.data = data;
        }

        public String dtype() { return dtype; }

        public int[] shape() { return shape.clone(); }

        public long size() { return java.lang.reflect.Array.getLength(data); }

        public boolean isIntegral() { return data instanceof int[] || data instanceof long[]; }

        /** Element at a flat row-major index, as a long (integral tensors only). */
        public long longAt(long flat) {
            int i = Math.toIntExact(flat);
            return data instanceof int[] a ? a[i] : ((long[]) data)[i];
        }

        public double doubleAt(long flat) {
            int i = Math.toIntExact(flat);
            return switch (data) {
                case int[] a -> a[i];
                case long[] a -> a[i];
                case float[] a -> a[i];
                case double[] a -> a[i];
                default -> throw new IllegalStateException(dtype);
            };
        }

        /** Every element as a long (integral tensors). */
        public long[] ints() {
            long[] out = new long[(int) size()];
            for (int i = 0; i < out.length; i++) out[i] = longAt(i);
            return out;
        }

        /** Every element as a double. */
        public double[] floats() {
            double[] out = new double[(int) size()];
            for (int i = 0; i < out.length; i++) out[i] = doubleAt(i);
            return out;
        }

        public String describe() { return dtype + java.util.Arrays.toString(shape); }
    }

    /** Element types of the storages torch pickles by class name. */
    private enum Storage {
        LongStorage("int64", 8), IntStorage("int32", 4), ShortStorage("int16", 2), CharStorage("int8", 1),
        ByteStorage("uint8", 1), BoolStorage("bool", 1), DoubleStorage("float64", 8), FloatStorage("float32", 4),
        HalfStorage("float16", 2), BFloat16Storage("bfloat16", 2);

        final String dtype;
        final int bytes;

        Storage(String dtype, int bytes) { this.dtype = dtype; this.bytes = bytes; }

        boolean integral() { return ordinal() <= BoolStorage.ordinal(); }
    }

    /** The callables the pickle may name, and nothing else. */
    private enum Callable { REBUILD_TENSOR_V2, REBUILD_TENSOR, ORDERED_DICT }

    private record StorageRef(Storage type, String key, long numel) {}

    /** True when the file starts as a zip archive does ({@code torch.save}'s format since torch 1.6). */
    public static boolean looksLikeTorchZip(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] b = in.readNBytes(4);
            return b.length == 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4;
        } catch (IOException e) {
            return false;
        }
    }

    /** Reads the object a {@code torch.save} call wrote. */
    public static Object read(Path file) throws IOException {
        String where = file.toAbsolutePath().toString();
        if (!Files.exists(file)) throw new TraceFormatException(where + ": no such file", new NoSuchFileException(where));
        if (!looksLikeTorchZip(file)) {
            throw new TraceFormatException(where + ": not a torch.save zip archive (torch before 1.6 wrote a legacy format, "
                    + "which is not read: load and save it again with torch >= 1.6)");
        }
        try (ZipFile zip = new ZipFile(file.toFile())) {
            ZipEntry pkl = null;
            for (var en = zip.entries(); en.hasMoreElements(); ) {
                ZipEntry e = en.nextElement();
                if (e.getName().endsWith("/data.pkl") && e.getName().indexOf('/') == e.getName().length() - "/data.pkl".length()) {
                    pkl = e;
                    break;
                }
            }
            if (pkl == null) throw new TraceFormatException(where + ": a zip archive but not a torch.save file (no ARCHIVE/data.pkl entry)");
            String prefix = pkl.getName().substring(0, pkl.getName().length() - "data.pkl".length());
            ZipEntry order = zip.getEntry(prefix + "byteorder");
            if (order != null) {
                String bo = new String(readEntry(zip, order, 16, where), StandardCharsets.US_ASCII).trim();
                if (!bo.equals("little")) throw new TraceFormatException(where + ": byteorder is \"" + bo + "\"; only little-endian files are read");
            }
            byte[] program = readEntry(zip, pkl, MAX_PICKLE_BYTES, where);
            return new Unpickler(where, program, zip, prefix).run();
        } catch (TraceFormatException e) {
            throw e;
        } catch (IOException | RuntimeException e) { // ZipException, EOFException, a bad entry name: the archive is damaged
            throw new TraceFormatException(where + ": damaged zip archive (" + e.getClass().getSimpleName() + ": " + e.getMessage() + ")", e);
        }
    }

    private static byte[] readEntry(ZipFile zip, ZipEntry e, long max, String where) throws IOException {
        long size = e.getSize();
        if (size > max) throw new TraceFormatException(where + ": entry " + e.getName() + " is " + size + " bytes; at most " + max + " are read");
        try (InputStream in = zip.getInputStream(e)) {
            byte[] b = in.readNBytes((int) Math.min(max, size < 0 ? max : size));
            if (size >= 0 && b.length != size) {
                throw new TraceFormatException(where + ": entry " + e.getName() + " holds " + b.length + " bytes but its header says " + size);
            }
            return b;
        }
    }

    /** The pickle machine, restricted to data. */
    private static final class Unpickler {
        private static final Object MARK = new Object();
        private final String where;
        private final byte[] p;
        private final ZipFile zip;
        private final String prefix;
        private final ArrayList<Object> stack = new ArrayList<>();
        private final ArrayList<Integer> marks = new ArrayList<>();
        private final HashMap<Long, Object> memo = new HashMap<>();
        private final HashMap<String, Object> storages = new HashMap<>();
        private int pos;
        private int opAt;
        private long materialised;

        Unpickler(String where, byte[] program, ZipFile zip, String prefix) {
            this.where = where;
            this.p = program;
            this.zip = zip;
            this.prefix = prefix;
        }

        private TraceFormatException bad(String what) {
            return new TraceFormatException(where + ": data.pkl byte " + opAt + ": " + what);
        }

        private int u8() {
            if (pos >= p.length) throw bad("the pickle ends in the middle of an opcode (truncated file?)");
            return p[pos++] & 0xff;
        }

        private long le(int n) {
            if (pos + n > p.length) throw bad("the pickle ends in the middle of an opcode (truncated file?)");
            long v = 0;
            for (int i = 0; i < n; i++) v |= (long) (p[pos + i] & 0xff) << (8 * i);
            pos += n;
            return v;
        }

        private byte[] bytes(long n) {
            if (n < 0 || n > p.length - pos) throw bad("a length of " + n + " runs past the end of the pickle (" + (p.length - pos) + " bytes left)");
            byte[] b = java.util.Arrays.copyOfRange(p, pos, pos + (int) n);
            pos += (int) n;
            return b;
        }

        private String line() {
            int start = pos;
            while (pos < p.length && p[pos] != '\n') pos++;
            if (pos >= p.length) throw bad("GLOBAL without its newline (truncated file?)");
            return new String(p, start, pos++ - start, StandardCharsets.UTF_8);
        }

        private void push(Object o) {
            if (stack.size() >= MAX_STACK) throw bad("more than " + MAX_STACK + " objects on the pickle stack");
            stack.add(o);
        }

        private Object pop() {
            if (stack.isEmpty() || stack.getLast() == MARK) throw bad("pops an empty stack (damaged pickle)");
            return stack.removeLast();
        }

        private Object top() {
            if (stack.isEmpty() || stack.getLast() == MARK) throw bad("reads an empty stack (damaged pickle)");
            return stack.getLast();
        }

        /** Everything above the last MARK, which is removed. */
        private List<Object> popMark() {
            if (marks.isEmpty()) throw bad("no MARK to pop to (damaged pickle)");
            int m = marks.removeLast();
            if (m > stack.size()) throw bad("damaged MARK (damaged pickle)");
            List<Object> items = new ArrayList<>(stack.subList(m + 1, stack.size()));
            stack.subList(m, stack.size()).clear();
            return items;
        }

        @SuppressWarnings("unchecked")
        Object run() throws IOException {
            while (true) {
                opAt = pos;
                int op = u8();
                switch (op) {
                    case 0x80 -> { // PROTO
                        int v = u8();
                        if (v > 5) throw bad("pickle protocol " + v + " is newer than any this reader knows (2-5)");
                    }
                    case 0x95 -> le(8); // FRAME: a length hint only
                    case '.' -> { // STOP
                        if (stack.size() != 1) throw bad("STOP with " + stack.size() + " objects on the stack (damaged pickle)");
                        return stack.getFirst();
                    }
                    case '(' -> { marks.add(stack.size()); stack.add(MARK); }
                    case '}' -> push(new LinkedHashMap<>());
                    case ']' -> push(new ArrayList<>());
                    case ')' -> push(List.of());
                    case 't' -> push(java.util.Collections.unmodifiableList(popMark()));
                    case 0x85 -> push(tuple(1));
                    case 0x86 -> push(tuple(2));
                    case 0x87 -> push(tuple(3));
                    case 'N' -> push(null);
                    case 0x88 -> push(Boolean.TRUE);
                    case 0x89 -> push(Boolean.FALSE);
                    case 'K' -> push((long) u8());
                    case 'M' -> push(le(2));
                    case 'J' -> push((long) (int) le(4));
                    case 0x8a -> push(longN(u8()));
                    case 0x8b -> push(longN(le(4)));
                    case 'G' -> push(ByteBuffer.wrap(bytes(8)).order(ByteOrder.BIG_ENDIAN).getDouble());
                    case 'X' -> push(new String(bytes(le(4)), StandardCharsets.UTF_8));
                    case 0x8c -> push(new String(bytes(u8()), StandardCharsets.UTF_8));
                    case 0x8d -> push(new String(bytes(le(8)), StandardCharsets.UTF_8));
                    case 'U' -> push(new String(bytes(u8()), StandardCharsets.ISO_8859_1)); // SHORT_BINSTRING
                    case 'q' -> memo.put((long) u8(), top());
                    case 'r' -> memo.put(le(4), top());
                    case 0x94 -> memo.put((long) memo.size(), top()); // MEMOIZE
                    case 'h' -> push(memoGet(u8()));
                    case 'j' -> push(memoGet(le(4)));
                    case 'a' -> { Object v = pop(); list(top()).add(v); }
                    case 'e' -> { List<Object> items = popMark(); list(top()).addAll(items); }
                    case 's' -> { Object v = pop(); Object k = pop(); dict(top()).put(key(k), v); }
                    case 'u' -> {
                        List<Object> kv = popMark();
                        if (kv.size() % 2 != 0) throw bad("SETITEMS with an odd number of items (damaged pickle)");
                        Map<Object, Object> d = dict(top());
                        for (int i = 0; i < kv.size(); i += 2) d.put(key(kv.get(i)), kv.get(i + 1));
                    }
                    case 'c' -> push(global(line(), line()));
                    case 0x93 -> { // STACK_GLOBAL
                        Object name = pop(), module = pop();
                        if (!(module instanceof String m) || !(name instanceof String n)) throw bad("STACK_GLOBAL of non-strings");
                        push(global(m, n));
                    }
                    case 'Q' -> push(persistent(pop()));
                    case 'R' -> { Object args = pop(); Object f = pop(); push(reduce(f, args)); }
                    case 'b' -> { // BUILD: only the empty state torch writes for plain tensors is accepted
                        Object state = pop();
                        Object target = top();
                        if (!(target instanceof Tensor || target instanceof Map) || !(state == null || isEmpty(state))) {
                            throw bad("BUILD with a state is not allowed (it would set attributes on an object)");
                        }
                    }
                    default -> throw bad(String.format("pickle opcode 0x%02x%s is not allowed: this reader builds only tensors, "
                            + "dicts, lists, numbers and strings and runs no code", op, printable(op)));
                }
            }
        }

        private static String printable(int op) { return op >= 0x20 && op < 0x7f ? " ('" + (char) op + "')" : ""; }

        private static boolean isEmpty(Object o) {
            return o instanceof Map<?, ?> m && m.isEmpty() || o instanceof List<?> l && l.isEmpty();
        }

        private List<Object> tuple(int n) {
            Object[] items = new Object[n];
            for (int i = n - 1; i >= 0; i--) items[i] = pop();
            return java.util.Collections.unmodifiableList(java.util.Arrays.asList(items));
        }

        private Object memoGet(long k) {
            if (!memo.containsKey(k)) throw bad("memo key " + k + " was never stored (damaged pickle)");
            return memo.get(k);
        }

        private Object longN(long n) {
            if (n > 8) throw bad("an integer of " + n + " bytes; at most 8 are read");
            byte[] b = bytes(n);
            long v = 0;
            for (int i = 0; i < n; i++) v |= (long) (b[i] & 0xff) << (8 * i);
            if (n > 0 && n < 8 && (b[(int) n - 1] & 0x80) != 0) v -= 1L << (8 * n); // sign
            return v;
        }

        @SuppressWarnings("unchecked")
        private List<Object> list(Object o) {
            if (o instanceof ArrayList<?> l) return (List<Object>) l;
            throw bad("APPEND to a " + typeName(o) + ", not a list");
        }

        @SuppressWarnings("unchecked")
        private Map<Object, Object> dict(Object o) {
            if (o instanceof LinkedHashMap<?, ?> m) return (Map<Object, Object>) m;
            throw bad("SETITEM on a " + typeName(o) + ", not a dict");
        }

        private Object key(Object k) {
            if (k == null || k instanceof String || k instanceof Long || k instanceof Boolean || k instanceof Double) return k;
            if (k instanceof List<?> l) return java.util.Collections.unmodifiableList(new ArrayList<>(l.stream().map(this::key).toList()));
            throw bad("a dict key of type " + typeName(k));
        }

        private static String typeName(Object o) {
            return o == null ? "None" : o instanceof Tensor ? "tensor" : o instanceof List ? "list" : o instanceof Map ? "dict"
                    : o instanceof Callable || o instanceof Storage ? "callable" : o.getClass().getSimpleName();
        }

        private Object global(String module, String name) {
            String full = module + "." + name;
            switch (full) {
                case "torch._utils._rebuild_tensor_v2": return Callable.REBUILD_TENSOR_V2;
                case "torch._utils._rebuild_tensor": return Callable.REBUILD_TENSOR;
                case "collections.OrderedDict": return Callable.ORDERED_DICT;
                default:
            }
            if (module.equals("torch")) {
                for (Storage s : Storage.values()) if (s.name().equals(name)) return s;
            }
            throw bad("the pickle names " + full + ", which is not allowed: this reader builds only tensors, dicts, "
                    + "lists, numbers and strings and runs no code");
        }

        private Object persistent(Object pid) {
            if (!(pid instanceof List<?> t) || t.size() != 5 || !"storage".equals(t.get(0)) || !(t.get(1) instanceof Storage s)
                    || !(t.get(2) instanceof String key) || !(t.get(4) instanceof Long numel) || numel < 0) {
                throw bad("a persistent id that is not ('storage', torch.XStorage, key, location, numel): " + pid);
            }
            return new StorageRef(s, key, numel);
        }

        private Object reduce(Object f, Object args) throws IOException {
            if (!(args instanceof List<?> a)) throw bad("REDUCE with arguments that are not a tuple");
            if (f == Callable.ORDERED_DICT) {
                if (!a.isEmpty()) throw bad("OrderedDict(...) with arguments is not read");
                return new LinkedHashMap<>();
            }
            if (f == Callable.REBUILD_TENSOR_V2 || f == Callable.REBUILD_TENSOR) {
                if (a.size() < 4 || !(a.get(0) instanceof StorageRef s) || !(a.get(1) instanceof Long offset)
                        || !(a.get(2) instanceof List<?> size) || !(a.get(3) instanceof List<?> stride)) {
                    throw bad("_rebuild_tensor with arguments other than (storage, offset, size, stride, ...)");
                }
                return tensor(s, offset, ints(size, "size"), ints(stride, "stride"));
            }
            throw bad("REDUCE of a " + typeName(f) + " is not allowed: only tensors and OrderedDict are built");
        }

        private long[] ints(List<?> l, String what) {
            long[] out = new long[l.size()];
            for (int i = 0; i < out.length; i++) {
                if (!(l.get(i) instanceof Long v)) throw bad("tensor " + what + " holds " + l.get(i));
                out[i] = v;
            }
            return out;
        }

        private Tensor tensor(StorageRef s, long offset, long[] size, long[] stride) throws IOException {
            if (size.length != stride.length) throw bad("tensor size " + java.util.Arrays.toString(size) + " and stride "
                    + java.util.Arrays.toString(stride) + " differ in rank");
            long n = 1, last = offset;
            int[] shape = new int[size.length];
            for (int d = 0; d < size.length; d++) {
                if (size[d] < 0 || stride[d] < 0) throw bad("negative tensor size or stride");
                if (size[d] > 0 && n > MAX_TENSOR_ELEMENTS / size[d]) throw bad("a tensor of more than " + MAX_TENSOR_ELEMENTS + " elements");
                n *= size[d];
                shape[d] = (int) size[d];
            }
            if (n > 0) {
                for (int d = 0; d < size.length; d++) last += (size[d] - 1) * stride[d];
                if (offset < 0 || last >= s.numel()) {
                    throw bad("a tensor view " + java.util.Arrays.toString(size) + " at offset " + offset + " reaches element " + last
                            + " of a storage of " + s.numel());
                }
            }
            materialised += n * (s.type().bytes > 4 ? 8 : 4);
            if (materialised > MAX_MATERIALISED_BYTES) {
                throw bad("its tensors would take more than " + (MAX_MATERIALISED_BYTES >> 20) + " MB in memory; split the dump "
                        + "(SGLang writes one file per dump call) or read fewer steps");
            }
            ByteBuffer data = storage(s);
            int count = (int) n;
            Object out = switch (s.type()) {
                case LongStorage -> new long[count];
                case DoubleStorage -> new double[count];
                case FloatStorage, HalfStorage, BFloat16Storage -> new float[count];
                default -> new int[count];
            };
            long[] idx = new long[size.length];
            for (int i = 0; i < count; i++) {
                long at = offset;
                for (int d = 0; d < size.length; d++) at += idx[d] * stride[d];
                int b = Math.toIntExact(at * s.type().bytes);
                switch (out) {
                    case long[] a -> a[i] = data.getLong(b);
                    case double[] a -> a[i] = data.getDouble(b);
                    case float[] a -> a[i] = (float) floating(s.type(), data, b);
                    case int[] a -> a[i] = (int) integral(s.type(), data, b);
                    default -> throw new IllegalStateException();
                }
                for (int d = size.length - 1; d >= 0; d--) {
                    if (++idx[d] < size[d]) break;
                    idx[d] = 0;
                }
            }
            return new Tensor(s.type().dtype, shape, out);
        }

        private static long integral(Storage t, ByteBuffer b, int at) {
            return switch (t) {
                case LongStorage -> b.getLong(at);
                case IntStorage -> b.getInt(at);
                case ShortStorage -> b.getShort(at);
                case CharStorage -> b.get(at);
                case ByteStorage, BoolStorage -> b.get(at) & 0xff;
                default -> throw new IllegalStateException(t.name());
            };
        }

        private static double floating(Storage t, ByteBuffer b, int at) {
            return switch (t) {
                case DoubleStorage -> b.getDouble(at);
                case FloatStorage -> b.getFloat(at);
                case HalfStorage -> Float.float16ToFloat(b.getShort(at));
                case BFloat16Storage -> Float.intBitsToFloat((b.getShort(at) & 0xffff) << 16);
                default -> throw new IllegalStateException(t.name());
            };
        }

        private ByteBuffer storage(StorageRef s) throws IOException {
            Object cached = storages.get(s.key());
            if (cached instanceof ByteBuffer b) return b;
            ZipEntry e = zip.getEntry(prefix + "data/" + s.key());
            if (e == null) throw bad("storage " + s.key() + " is missing from the archive (" + prefix + "data/" + s.key() + ")");
            long want = s.numel() * s.type().bytes;
            if (s.numel() > MAX_STORAGE_BYTES / s.type().bytes) {
                throw bad("storage " + s.key() + " holds " + s.numel() + " " + s.type().dtype + " values, more than one read takes (2 GB)");
            }
            if (e.getSize() != want) {
                throw bad("storage " + s.key() + " should hold " + s.numel() + " " + s.type().dtype + " values (" + want
                        + " bytes) but its entry has " + e.getSize());
            }
            ByteBuffer b = ByteBuffer.wrap(readEntry(zip, e, want, where)).order(ByteOrder.LITTLE_ENDIAN);
            storages.put(s.key(), b);
            return b;
        }
    }
}
