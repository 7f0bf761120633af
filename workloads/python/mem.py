"""mem.py: Python memory workloads for oomsim. Python has no heap cap: it
grows until the cgroup's OOM kill, unless one allocation is larger than
the system will give (MemoryError, never caught here).
  leak     bytearray chunks kept in a list, touched, at --rate
  native   libc malloc'd chunks (ctypes), memset and kept: native memory
           outside Python objects, as C extensions and their buffers use
  big      one allocation of --size at once (1Pi: MemoryError)
  prefork  a pre-forking server (gunicorn-like): the master forks workers
           that each hold --baseline; worker 0 grows by --grow; the master
           logs each worker death and respawns it up to --respawn times,
           then exits 0 after --duration. Under a limit below the workers'
           total the kernel kills the biggest worker and the master lives
           on: the container exits 0, and the runtime still says OOMKilled.
Usage: python3 mem.py leak --size SIZE [--rate SIZE] [--chunk SIZE] [--hold DUR]
       python3 mem.py native --size SIZE [--rate SIZE] [--chunk SIZE] [--hold DUR]
       python3 mem.py big --size SIZE [--hold DUR]
       python3 mem.py prefork --workers N --baseline SIZE --grow SIZE [--respawn N] [--duration DUR] [--rate SIZE] [--chunk SIZE]
Sizes: 512Mi, 64Ki, 1Gi, 1Ti, 1Pi or bytes; durations: 500ms, 2s, 1m or seconds.
"""
import ctypes
import ctypes.util
import os
import re
import signal
import sys
import time
import traceback

GROWTH = {"size", "rate", "chunk", "hold"}
MODES = {
    "leak": GROWTH,
    "native": GROWTH,
    "big": {"size", "hold"},
    "prefork": {"workers", "baseline", "grow", "respawn", "duration", "rate", "chunk"},
}
REQUIRED = {"leak": {"size"}, "native": {"size"}, "big": {"size"}, "prefork": {"workers", "baseline", "grow"}}


def usage():
    print("usage: python3 mem.py " + " | ".join(
        line.strip().removeprefix("python3 mem.py ")
        for line in __doc__.split("Usage: ")[1].split("Sizes")[0].strip().splitlines()), file=sys.stderr)
    sys.exit(2)


def size(s):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|Pi)?", s or "")
    if not m:
        usage()
    return int(m[1]) << {None: 0, "Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50}[m[2]]


def count(s):
    if not re.fullmatch(r"\d+", s or ""):
        usage()
    return int(s)


def seconds(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", s or "")
    if not m:
        usage()
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m[2]]


def touched(n):
    b = bytearray(n)  # a MemoryError here propagates: the process ends with its traceback
    b[::4096] = b"\1" * len(range(0, n, 4096))  # one byte per page, written
    return b


libc = None


def native_chunk(n):
    """n bytes from libc's malloc, every byte written by memset; never freed."""
    global libc
    if libc is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
    p = libc.malloc(n)
    if not p:
        raise MemoryError(f"malloc({n}) returned NULL")
    ctypes.memset(p, 1, n)
    return p


def hold_bytes(total, rate=0, chunk=1 << 20, label="live", alloc=touched):
    keep, have, start, last = [], 0, time.monotonic(), 0.0
    while have < total:
        if rate and have > rate * (time.monotonic() - start):
            time.sleep(0.01)
            continue
        n = min(chunk, total - have)
        keep.append(alloc(n))
        have += n
        if time.monotonic() - last > 0.25 or have >= total:
            print(f"{label} {have >> 20} MiB", flush=True)
            last = time.monotonic()
    return keep


def prefork(o):
    workers, baseline, grow = count(o["workers"]), size(o["baseline"]), size(o["grow"])
    respawns, deadline = count(o.get("respawn", "1")), time.monotonic() + seconds(o.get("duration", "5s"))
    rate, chunk = size(o.get("rate", "0")), size(o.get("chunk", "1Mi"))

    def worker(i):
        sys.stdout.flush()  # nothing buffered twice across the fork
        pid = os.fork()
        if pid == 0:
            # The child never returns into the master's loop: any exception
            # (MemoryError included) prints its traceback and exits 1.
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                keep = hold_bytes(baseline, chunk=chunk, label=f"worker {i} pid {os.getpid()}")
                if i == 0:  # the worker that grows: a leak, or one request's big payload
                    keep += hold_bytes(grow, rate, chunk, label=f"worker {i} pid {os.getpid()} grew")
                print(f"worker {i} pid {os.getpid()} holds {(baseline + (grow if i == 0 else 0)) >> 20} MiB", flush=True)
                while True:
                    time.sleep(1)
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
        return pid

    print(f"master pid {os.getpid()}: {workers} workers", flush=True)
    alive = {worker(i): i for i in range(workers)}
    while time.monotonic() < deadline:
        if not alive:  # every worker dead and no respawns left: the master idles on
            time.sleep(0.05)
            continue
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.05)
            continue
        i = alive.pop(pid)
        why = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit code {os.WEXITSTATUS(status)}"
        print(f"worker {pid} died: {why}", flush=True)
        if respawns > 0:
            respawns -= 1
            alive[worker(i)] = i
            print(f"respawned worker {i}", flush=True)
    for pid in alive:
        os.kill(pid, signal.SIGTERM)
    for pid in alive:
        os.waitpid(pid, 0)
    print("done", flush=True)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in MODES or len(sys.argv) % 2:
        usage()
    mode, args = sys.argv[1], sys.argv[2:]
    o = dict(zip((a[2:] for a in args[::2]), args[1::2]))
    if any(not a.startswith("--") for a in args[::2]) or not set(o) <= MODES[mode] or not REQUIRED[mode] <= set(o):
        usage()
    if mode == "prefork":
        prefork(o)
        return
    chunk = size(o.get("chunk", "1Mi"))
    if chunk <= 0:
        usage()
    if mode == "leak":
        keep = hold_bytes(size(o["size"]), size(o.get("rate", "0")), chunk)
    elif mode == "native":
        keep = hold_bytes(size(o["size"]), size(o.get("rate", "0")), chunk, "native", native_chunk)
    else:
        print(f"one allocation of {size(o['size'])} bytes", flush=True)
        keep = touched(size(o["size"]))
        print(f"live {len(keep) >> 20} MiB", flush=True)
    hold = seconds(o.get("hold", "0"))
    if hold:
        print(f"holding for {hold:g} s", flush=True)
        time.sleep(hold)
    print("done", flush=True)


if __name__ == "__main__":
    main()
