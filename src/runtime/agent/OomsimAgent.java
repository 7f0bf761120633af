// oomsim's Java agent: where the JVM's memory goes, from its own native
// memory tracking (started with -XX:NativeMemoryTracking=summary), read
// in-process through the DiagnosticCommand MBean (what `jcmd PID
// VM.native_memory summary` prints) every 200 ms, written as one JSON line
// of bytes per category to the file named by OOMSIM_RUNTIME_STATS.
// The heap is what is in use (MemoryMXBean), not what is committed: a
// committed heap is reserved address space the kernel has not charged yet.
// The shared class space is a mapped file (page cache), left out.
// A daemon thread: it never keeps the program alive.

import java.io.FileWriter;
import java.lang.management.ManagementFactory;
import javax.management.MBeanServer;
import javax.management.ObjectName;

public class OomsimAgent {
    // Stacking order: heap, metaspace, threads, code, gc, other.
    static final String[] PARTS = {"heap", "metaspace", "threads", "code", "gc", "other"};

    public static void premain(String args) {
        String path = System.getenv("OOMSIM_RUNTIME_STATS");
        if (path == null) return;
        Thread t = new Thread(() -> loop(path), "oomsim-nmt");
        t.setDaemon(true);
        t.start();
    }

    static void loop(String path) {
        try (FileWriter out = new FileWriter(path, true)) {
            MBeanServer server = ManagementFactory.getPlatformMBeanServer();
            ObjectName dcmd = new ObjectName("com.sun.management:type=DiagnosticCommand");
            Object[] params = {new String[] {"summary"}};
            String[] sig = {String[].class.getName()};
            while (true) {
                String summary = (String) server.invoke(dcmd, "vmNativeMemory", params, sig);
                long heapUsed = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
                out.write(line(System.nanoTime(), summary, heapUsed));
                out.flush();
                Thread.sleep(200);
            }
        } catch (Exception e) {
            // Tracking off or the JVM ending: nothing more to report.
        }
    }

    // "-  Java Heap (reserved=262144KB, committed=16384KB)": KB committed per category.
    static String line(long t, String summary, long heapUsed) {
        long[] bytes = new long[PARTS.length];
        for (String l : summary.split("\n")) {
            String s = l.trim();
            int open = s.indexOf("(reserved=");
            int c = s.indexOf("committed=");
            if (!s.startsWith("-") || open < 0 || c < 0) continue;
            String name = s.substring(1, open).trim();
            if (name.equals("Shared class space")) continue;
            int end = s.indexOf("KB", c);
            if (end < 0) continue;
            long kb = Long.parseLong(s.substring(c + "committed=".length(), end));
            bytes[part(name)] += kb * 1024;
        }
        bytes[0] = heapUsed;
        StringBuilder b = new StringBuilder("{\"t_ns\":").append(t).append(",\"bytes\":[");
        for (int i = 0; i < bytes.length; i++) b.append(i == 0 ? "" : ",").append(bytes[i]);
        return b.append("]}\n").toString();
    }

    static int part(String category) {
        switch (category) {
            case "Java Heap": return 0;
            case "Class": return 1;
            case "Thread": return 2;
            case "Code": return 3;
            case "GC": return 4;
            default: return 5;
        }
    }
}
