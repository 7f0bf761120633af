// oomsim's Java agent: where the JVM's memory goes, every 200 ms, as one
// JSON line of bytes per part to the file named by OOMSIM_RUNTIME_STATS.
//   heap           in use (MemoryMXBean): a committed heap is address space
//                  the kernel has not charged yet
//   direct         direct ByteBuffers (the "direct" BufferPoolMXBean)
//   metaspace, threads, code, gc
//                  committed, from the JVM's native memory tracking (started
//                  with -XX:NativeMemoryTracking=summary), read in-process
//                  through the DiagnosticCommand MBean: what `jcmd PID
//                  VM.native_memory summary` prints
//   other          the rest of the process's anonymous memory (RssAnon)
// A daemon thread: it never keeps the program alive.

import java.io.FileWriter;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Paths;
import javax.management.MBeanServer;
import javax.management.ObjectName;

public class OomsimAgent {
    // Stacking order: heap, direct, metaspace, threads, code, gc, other.
    static final int HEAP = 0, DIRECT = 1, OTHER = 6;

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
                long[] bytes = new long[OTHER + 1];
                String summary = (String) server.invoke(dcmd, "vmNativeMemory", params, sig);
                nmt(summary, bytes);
                bytes[HEAP] = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
                for (BufferPoolMXBean b : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
                    if (b.getName().equals("direct")) bytes[DIRECT] = b.getMemoryUsed();
                }
                long named = 0;
                for (int i = 0; i < OTHER; i++) named += bytes[i];
                bytes[OTHER] = Math.max(0, rssAnon() - named);
                out.write(line(System.nanoTime(), bytes));
                out.flush();
                Thread.sleep(200);
            }
        } catch (Exception e) {
            // Tracking off or the JVM ending: nothing more to report.
        }
    }

    // "-  Class (reserved=1048690KB, committed=242KB)": KB committed per category.
    static void nmt(String summary, long[] bytes) {
        for (String l : summary.split("\n")) {
            String s = l.trim();
            int open = s.indexOf("(reserved=");
            int c = s.indexOf("committed=");
            if (!s.startsWith("-") || open < 0 || c < 0) continue;
            int end = s.indexOf("KB", c);
            if (end < 0) continue;
            int part = part(s.substring(1, open).trim());
            if (part > 0) bytes[part] += Long.parseLong(s.substring(c + "committed=".length(), end)) * 1024;
        }
    }

    static int part(String category) {
        switch (category) {
            case "Class": return 2;
            case "Thread": return 3;
            case "Code": return 4;
            case "GC": return 5;
            default: return -1;
        }
    }

    static long rssAnon() throws Exception {
        for (String l : Files.readAllLines(Paths.get("/proc/self/status"))) {
            if (l.startsWith("RssAnon:")) return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
        }
        return 0;
    }

    static String line(long t, long[] bytes) {
        StringBuilder b = new StringBuilder("{\"t_ns\":").append(t).append(",\"bytes\":[");
        for (int i = 0; i < bytes.length; i++) b.append(i == 0 ? "" : ",").append(bytes[i]);
        return b.append("]}\n").toString();
    }
}
