"""mem.py: Python memory workloads for oomsim. Python has no heap cap: it
grows until the cgroup's OOM kill, unless one allocation is larger than
the system will give (MemoryError).
  leak     bytearray chunks kept in a list, touched, at --rate
  big      one allocation of --size at once (1Pi: MemoryError)
  prefork  a pre-forking server (gunicorn-like): the master forks workers
           that each hold --baseline; worker 0 grows by --grow; the master
           logs each worker death and respawns it up to --respawn times,
           then exits 0 after --duration. Under a limit below the workers'
           total the kernel kills the biggest worker and the master lives
           on: the container exits 0, and the runtime still says OOMKilled.
Usage: python3 mem.py leak --size SIZE [--rate SIZE] [--hold DUR]
       python3 mem.py big --size SIZE
       python3 mem.py prefork --workers N --baseline SIZE --grow SIZE [--respawn N] [--duration DUR]
Sizes: 512Mi, 64Ki, 1Gi, 1Ti, 1Pi or bytes; durations: 500ms, 2s, 1m or seconds.
"""
import os
import re
import signal
import sys
import time

CHUNK = 1 << 20
MODES = {
    "leak": {"size", "rate", "hold"},
    "big": {"size"},
    "prefork": {"workers", "baseline", "grow", "respawn", "duration"},
}


def usage():
    print(__doc__.split("Usage: ")[1].split("Sizes")[0].strip(), file=sys.stderr)
    sys.exit(2)


def size(s):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|Pi)?", s or "")
    if not m:
        usage()
    return int(m[1]) << {None: 0, "Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50}[m[2]]


def seconds(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", s or "")
    if not m:
        usage()
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m[2]]


def touched(n):
    b = bytearray(n)
    for i in range(0, n, 4096):
        b[i] = 1
    return b


def hold_bytes(total, rate=0, label="live"):
    keep, have, start, last = [], 0, time.monotonic(), 0.0
    while have < total:
        if rate and have > rate * (time.monotonic() - start):
            time.sleep(0.01)
            continue
        keep.append(touched(min(CHUNK, total - have)))
        have += keep[-1].__len__()
        if time.monotonic() - last > 0.25:
            print(f"{label} {have >> 20} MiB", flush=True)
            last = time.monotonic()
    return keep


def prefork(o):
    workers, baseline, grow = int(o["workers"]), size(o["baseline"]), size(o["grow"])
    respawns, deadline = int(o.get("respawn", "1")), time.monotonic() + seconds(o.get("duration", "5s"))

    def worker(i):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            keep = hold_bytes(baseline + (grow if i == 0 else 0), label=f"worker {i}")
            print(f"worker {i} holds {sum(map(len, keep)) >> 20} MiB", flush=True)
            while True:
                time.sleep(1)
        return pid

    alive = {worker(i): i for i in range(workers)}
    while time.monotonic() < deadline:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.05)
            continue
        i = alive.pop(pid)
        why = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
        print(f"worker {pid} died: {why}", flush=True)
        if respawns > 0:
            respawns -= 1
            alive[worker(i)] = i
    for pid in alive:
        os.kill(pid, signal.SIGTERM)
    for _ in alive:
        os.wait()
    print("done", flush=True)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in MODES or len(sys.argv) % 2:
        usage()
    mode, args = sys.argv[1], sys.argv[2:]
    o = dict(zip((a[2:] for a in args[::2]), args[1::2]))
    if any(not a.startswith("--") for a in args[::2]) or not set(o) <= MODES[mode]:
        usage()
    if mode == "leak":
        keep = hold_bytes(size(o["size"]), size(o.get("rate", "0")))
        time.sleep(seconds(o.get("hold", "0")))
        print(f"done {sum(map(len, keep)) >> 20} MiB", flush=True)
    elif mode == "big":
        print(f"one allocation of {size(o['size'])} bytes", flush=True)
        touched(size(o["size"]))
        print("done", flush=True)
    else:
        prefork(o)


if __name__ == "__main__":
    main()
