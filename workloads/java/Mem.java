// Mem.java: memory workloads for oomsim that reproduce the JVM's real ways of
// running out of memory inside a container whose -Xmx "fits":
//   heap      live byte[] fill the heap      -> OutOfMemoryError: Java heap space
//   direct    ByteBuffer.allocateDirect      -> OutOfMemoryError: Direct buffer memory,
//             off-heap, outside -Xmx            or the cgroup's OOM kill when no cap is hit
//   threads   N platform threads with touched stacks: native memory outside -Xmx
//   classes   N generated classes, one loader each -> OutOfMemoryError: Metaspace
//   gc-burst  live data plus short-lived garbage at a rate (GC bursts)
//   mixed     heap + direct + threads, then hold: "Xmx fits but the pod does not"
// Build: javac -d OUT Mem.java    Run: java -cp OUT Mem MODE [--name value ...]
// The JVM's own OutOfMemoryError is never caught: it ends the process the default way.
import java.nio.ByteBuffer;
import java.util.*;
import java.util.concurrent.CountDownLatch;
import java.util.regex.*;

public class Mem {
    static final String USAGE = "usage: java Mem heap --live SIZE | direct --size SIZE | threads --count N [--stack-touch SIZE] [--stack-size SIZE]"
        + " | classes --count N | gc-burst --live SIZE --garbage SIZE --duration DUR"
        + " | mixed --heap SIZE --direct SIZE --threads N  [--hold DUR] [--rate SIZE] [--chunk SIZE]";
    static final List<Object> keep = new ArrayList<>();   // everything reachable lives here
    static volatile Object sink;                           // garbage escapes here
    static long lastPrint = 0;
    static Map<String, String> opts = new HashMap<>();

    static void usage() { System.err.println(USAGE); System.exit(2); }

    // Sizes: integer with optional Ki, Mi, Gi, Ti, Pi suffix (Kubernetes style).
    static long size(String s) {
        Matcher m = Pattern.compile("(\\d+)(Ki|Mi|Gi|Ti|Pi)?").matcher(s);
        if (!m.matches()) usage();
        long n = Long.parseLong(m.group(1));
        String u = m.group(2) == null ? "" : m.group(2);
        int shift = u.isEmpty() ? 0 : 10 * ("KiMiGiTiPi".indexOf(u) / 2 + 1);
        return n << shift;
    }

    // Durations: 500ms, 2s, 1m, or plain seconds; returned in milliseconds.
    static long millis(String s) {
        Matcher m = Pattern.compile("(\\d+)(ms|s|m)?").matcher(s);
        if (!m.matches()) usage();
        long n = Long.parseLong(m.group(1));
        String u = m.group(2) == null ? "s" : m.group(2);
        return u.equals("ms") ? n : u.equals("s") ? n * 1000 : n * 60000;
    }

    static int count(String s) {
        if (!s.matches("\\d{1,9}")) usage();
        return Integer.parseInt(s);
    }

    static String opt(String name, String dflt) {
        String v = opts.get(name);
        if (v == null && dflt == null) usage();
        return v == null ? dflt : v;
    }

    static void progress(String line, boolean force) {
        long now = System.currentTimeMillis();
        if (!force && now - lastPrint < 250) return;
        lastPrint = now;
        System.out.println(line);
        System.out.flush();
    }

    static long mib(long b) { return b >> 20; }

    // Sleep so that `done` bytes since `start` keep to `rate` bytes per second.
    static void pace(long start, long done, long rate) throws InterruptedException {
        if (rate <= 0) return;
        long due = start + done * 1000 / rate - System.currentTimeMillis();
        if (due > 0) Thread.sleep(due);
    }

    // `n` bytes as byte[64Ki] pieces, every page written. Pieces stay far below G1's
    // humongous size (half a region, >= 512 KiB), like an application's ordinary objects.
    static byte[][] touchedArrays(int n) {
        byte[][] pieces = new byte[(n + 65535) / 65536][];
        for (int p = 0; p < pieces.length; p++) {
            byte[] b = new byte[Math.min(65536, n - p * 65536)];
            for (int i = 0; i < b.length; i += 4096) b[i] = 1;
            pieces[p] = b;
        }
        return pieces;
    }

    // Keep byte[] chunks reachable until `live` bytes are held on the heap.
    static void heap(long live, long chunk, long rate) throws InterruptedException {
        long start = System.currentTimeMillis(), held = 0;
        while (held < live) {
            int n = (int) Math.min(chunk, live - held);
            keep.add(touchedArrays(n));
            held += n;
            progress("live " + mib(held) + " MiB", held >= live);
            pace(start, held, rate);
        }
    }

    // Direct (off-heap) buffers, every page written, kept reachable.
    static void direct(long size, long chunk, long rate) throws InterruptedException {
        long start = System.currentTimeMillis(), held = 0;
        while (held < size) {
            int n = (int) Math.min(chunk, size - held);
            ByteBuffer b = ByteBuffer.allocateDirect(n);
            for (int i = 0; i < n; i += 4096) b.put(i, (byte) 1);
            keep.add(b);
            held += n;
            progress("direct " + mib(held) + " MiB", held >= size);
            pace(start, held, rate);
        }
    }

    // Each frame holds 16 long locals; recursion to `limit` frames touches the thread's stack.
    static int reached;
    static long deep(int d, int limit) {
        long a = d, b = a + 1, c = b + 1, e = c + 1, f = e + 1, g = f + 1, h = g + 1, i = h + 1;
        long j = i + 1, k = j + 1, l = k + 1, m = l + 1, n = m + 1, o = n + 1, p = o + 1, q = p + 1;
        if (d > reached) reached = d;
        long r = d < limit ? deep(d + 1, limit) : 0;
        return r + a + b + c + e + f + g + h + i + j + k + l + m + n + o + p + q;
    }

    // Bytes per frame of deep(): warm it up so the JIT compiles it with both branches taken,
    // then recurse until StackOverflowError in a 512 KiB and a 1 MiB stack; the difference
    // in depth leaves out the guard pages both have (an estimate, not exact).
    static long frameBytes() throws InterruptedException {
        for (int w = 0; w < 20000; w++) sink = deep(0, 64);
        int[] depth = new int[3];
        for (int t = 0; t < 3; t++) {             // 512 KiB once more first, to settle the JIT
            reached = 0;
            Thread th = new Thread(null, () -> {
                try { deep(0, Integer.MAX_VALUE); } catch (StackOverflowError e) { }
            }, "calibrate", t < 2 ? 512 << 10 : 1 << 20);
            th.start();
            th.join();
            depth[t] = reached;
        }
        return (512 << 10) / Math.max(depth[2] - depth[1], 1);
    }

    // N platform threads, each touches `touch` bytes of its stack, then sleeps until exit.
    // stackSize 0 means the JVM default (-Xss, 1 MiB on Linux x64).
    static void threads(int count, long touch, long stackSize) throws InterruptedException {
        long frame = frameBytes();
        int depth = (int) (touch / frame);
        progress("stack frame ~" + frame + " bytes, depth " + depth + " per thread", true);
        CountDownLatch ready = new CountDownLatch(count);
        for (int t = 0; t < count; t++) {
            Thread th = new Thread(null, () -> {
                try { sink = deep(0, depth); } finally { ready.countDown(); }
                try { Thread.sleep(Long.MAX_VALUE); } catch (InterruptedException e) { }
            }, "mem-" + t, stackSize);
            th.setDaemon(true);
            th.start();   // "unable to create native thread" propagates from here
            keep.add(th);
            progress("threads " + (t + 1), false);
        }
        ready.await();
        progress("threads " + count + " started, stacks touched", true);
    }

    // A minimal class file: public class NAME extends java.lang.Object { public static long x; }
    static byte[] classFile(String name) {
        java.io.ByteArrayOutputStream bo = new java.io.ByteArrayOutputStream();
        java.io.DataOutputStream out = new java.io.DataOutputStream(bo);
        try {
            out.writeInt(0xCAFEBABE);
            out.writeShort(0); out.writeShort(52);          // version: Java 8 (no stack maps needed)
            out.writeShort(7);                               // constant pool count = entries + 1
            out.writeByte(1); out.writeUTF(name);            // #1 Utf8 this name
            out.writeByte(7); out.writeShort(1);             // #2 Class #1
            out.writeByte(1); out.writeUTF("java/lang/Object"); // #3
            out.writeByte(7); out.writeShort(3);             // #4 Class #3
            out.writeByte(1); out.writeUTF("x");             // #5 field name
            out.writeByte(1); out.writeUTF("J");             // #6 field descriptor: long
            out.writeShort(0x21);                            // ACC_PUBLIC | ACC_SUPER
            out.writeShort(2); out.writeShort(4);            // this, super
            out.writeShort(0);                               // interfaces
            out.writeShort(1);                               // fields: one
            out.writeShort(0x09); out.writeShort(5); out.writeShort(6); out.writeShort(0); // public static long x
            out.writeShort(0);                               // methods
            out.writeShort(0);                               // attributes
        } catch (java.io.IOException e) { throw new RuntimeException(e); }
        return bo.toByteArray();
    }

    static class Loader extends ClassLoader {
        Class<?> define(String name, byte[] b) { return defineClass(name, b, 0, b.length); }
    }

    // N distinct classes, each in its own loader, all kept reachable: metaspace grows.
    static void classes(int count) throws Exception {
        for (int i = 0; i < count; i++) {
            String name = "Gen" + i;
            Class<?> c = new Loader().define(name, classFile(name));
            c.getField("x").setLong(null, i);                // links and initialises it
            keep.add(c);
            progress("classes " + (i + 1), i + 1 == count);
        }
    }

    // Hold `live`, then allocate and drop garbage at `garbage` bytes/s for `duration`.
    static void gcBurst(long live, long garbage, long duration, long chunk, long rate) throws InterruptedException {
        heap(live, chunk, rate);
        long start = System.currentTimeMillis(), made = 0;
        while (System.currentTimeMillis() - start < duration) {
            sink = touchedArrays((int) chunk);
            made += chunk;
            progress("live " + mib(live) + " MiB, garbage " + mib(made) + " MiB", false);
            pace(start, made, garbage);
        }
        progress("live " + mib(live) + " MiB, garbage " + mib(made) + " MiB", true);
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 0 || args.length % 2 == 0) usage();
        String mode = args[0];
        Map<String, Set<String>> allowed = Map.of(
            "heap", Set.of("live"), "direct", Set.of("size"), "threads", Set.of("count", "stack-touch", "stack-size"),
            "classes", Set.of("count"), "gc-burst", Set.of("live", "garbage", "duration"),
            "mixed", Set.of("heap", "direct", "threads", "stack-touch", "stack-size"));
        if (!allowed.containsKey(mode)) usage();
        for (int i = 1; i < args.length; i += 2) {
            if (!args[i].startsWith("--")) usage();
            String k = args[i].substring(2);
            if (!allowed.get(mode).contains(k) && !Set.of("hold", "rate", "chunk").contains(k)) usage();
            opts.put(k, args[i + 1]);
        }
        long chunk = size(opt("chunk", "1Mi")), rate = size(opt("rate", "0")), hold = millis(opt("hold", "0"));
        if (chunk <= 0 || chunk > Integer.MAX_VALUE - 16) usage();
        switch (mode) {
            case "heap": heap(size(opt("live", null)), chunk, rate); break;
            case "direct": direct(size(opt("size", null)), chunk, rate); break;
            case "threads": threads(count(opt("count", null)), size(opt("stack-touch", "64Ki")), size(opt("stack-size", "0"))); break;
            case "classes": classes(count(opt("count", null))); break;
            case "gc-burst":
                gcBurst(size(opt("live", null)), size(opt("garbage", "0")), millis(opt("duration", null)), chunk, rate);
                break;
            case "mixed":
                heap(size(opt("heap", null)), chunk, rate);
                direct(size(opt("direct", null)), chunk, rate);
                threads(count(opt("threads", null)), size(opt("stack-touch", "64Ki")), size(opt("stack-size", "0")));
                break;
        }
        if (hold > 0) {
            progress("holding for " + hold + " ms", true);
            Thread.sleep(hold);
        }
        System.out.println("done");
        System.out.flush();
        System.exit(0);
    }
}
