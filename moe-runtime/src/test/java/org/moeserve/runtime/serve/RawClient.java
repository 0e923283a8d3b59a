package org.moeserve.runtime.serve;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A client that speaks raw HTTP/1.1 and WebSocket frames over a socket, so tests can send what well-behaved clients
 * never do: a head a byte at a time, binary or malformed frames, RSV bits, invalid UTF-8.
 */
final class RawClient implements AutoCloseable {
    final Socket socket;
    final InputStream in;
    final OutputStream out;

    RawClient(int port, int readTimeoutMillis) throws IOException {
        socket = new Socket("127.0.0.1", port);
        socket.setSoTimeout(readTimeoutMillis);
        in = socket.getInputStream();
        out = socket.getOutputStream();
    }

    void send(String s) throws IOException {
        out.write(s.getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
    }

    /** Reads until the server closes or {@code millis} pass; true if the server closed the connection. */
    boolean closedWithin(long millis) throws IOException {
        long end = System.currentTimeMillis() + millis;
        byte[] buf = new byte[4096];
        while (System.currentTimeMillis() < end) {
            try {
                if (in.read(buf) < 0) return true;
            } catch (SocketTimeoutException e) {
                // keep waiting
            } catch (IOException e) {
                return true; // reset
            }
        }
        return false;
    }

    /** The response head (status line and headers) as text. */
    String readHead() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c, n = 0;
        while ((c = in.read()) >= 0) {
            b.write(c);
            n = (c == '\r' || c == '\n') ? n + 1 : 0;
            if (n == 4) break;
        }
        return b.toString(StandardCharsets.ISO_8859_1);
    }

    /** Opens a WebSocket on {@code path}; returns the response head (101 on success). */
    String upgrade(String path, String... headers) throws IOException {
        StringBuilder sb = new StringBuilder("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                + "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
                + Base64.getEncoder().encodeToString(new byte[16]) + "\r\n");
        for (int i = 0; i < headers.length; i += 2) sb.append(headers[i]).append(": ").append(headers[i + 1]).append("\r\n");
        send(sb.append("\r\n").toString());
        return readHead();
    }

    /** One client frame: FIN as given, RSV bits, opcode, masked payload. */
    void frame(boolean fin, int rsv, int opcode, byte[] payload) throws IOException {
        ByteArrayOutputStream f = new ByteArrayOutputStream();
        f.write((fin ? 0x80 : 0) | (rsv << 4) | opcode);
        int n = payload.length;
        if (n < 126) f.write(0x80 | n);
        else if (n < 65536) {
            f.write(0x80 | 126);
            f.write(n >> 8);
            f.write(n & 0xff);
        } else {
            f.write(0x80 | 127);
            for (int i = 7; i >= 0; i--) f.write((int) ((long) n >> (8 * i)) & 0xff);
        }
        byte[] mask = new byte[4];
        ThreadLocalRandom.current().nextBytes(mask);
        f.write(mask);
        for (int i = 0; i < n; i++) f.write(payload[i] ^ mask[i & 3]);
        out.write(f.toByteArray());
        out.flush();
    }

    void text(String s) throws IOException { frame(true, 0, 1, s.getBytes(StandardCharsets.UTF_8)); }

    /** A server frame: opcode and payload; null if the connection ended. */
    record Frame(int opcode, byte[] payload) {
        String text() { return new String(payload, StandardCharsets.UTF_8); }

        /** A close frame's status code. */
        int closeCode() { return payload.length < 2 ? 1005 : ((payload[0] & 0xff) << 8) | (payload[1] & 0xff); }

        String closeReason() { return payload.length <= 2 ? "" : new String(payload, 2, payload.length - 2, StandardCharsets.UTF_8); }
    }

    Frame read() throws IOException {
        DataInputStream d = new DataInputStream(in);
        int b0;
        try {
            b0 = d.read();
        } catch (IOException e) {
            return null;
        }
        if (b0 < 0) return null;
        int b1 = d.readUnsignedByte();
        long n = b1 & 0x7f;
        if (n == 126) n = d.readUnsignedShort();
        else if (n == 127) n = d.readLong();
        byte[] p = new byte[(int) n];
        d.readFully(p);
        return new Frame(b0 & 0x0f, p);
    }

    /** Frames until a close frame (returned) or the end (null). */
    Frame untilClose() throws IOException {
        for (Frame f; (f = read()) != null; ) if (f.opcode() == 8) return f;
        return null;
    }

    @Override
    public void close() throws IOException { socket.close(); }
}
