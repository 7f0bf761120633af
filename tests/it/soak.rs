//! Soak: runs stopped at random moments by SIGINT, SIGTERM, SIGKILL of the
//! harness, or a panic injected at a random point, some mid-OOM (a leak into
//! its limit), some mid-eviction (a node under pressure), some with a GPU
//! ledger (the sim device). After each: the run ended within its bound (no
//! hang); once a later run has started, nothing of any stopped run is left:
//! no cgroup, no process in it, no ledger file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cgroup_root, oomsim};

/// Runs in one soak (`OOMSIM_SOAK_RUNS` overrides it).
const RUNS: usize = 100;

const LEAK: &str = "name: soak-oom\npods:\n  - name: app\n    resources: {limits: {memory: 48Mi}}\n    workload: {kind: leak, baseline: 8Mi, rate: 64Mi/s, duration: 5s}\n";
const EVICTION: &str = "name: soak-evict\nnode:\n  capacity: 2Gi\n  evictionHard: {memory.available: 1920Mi}\n  housekeeping: 100ms\npods:\n  - name: leaker\n    resources: {requests: {memory: 16Mi}, limits: {memory: 512Mi}}\n    workload: {kind: leak, baseline: 8Mi, rate: 128Mi/s, duration: 5s}\n  - name: steady\n    workload: {kind: steady, size: 8Mi, duration: 2s}\n";
const GPU: &str = "name: soak-gpu\ngpu: {backend: sim, memory: 1Gi}\npods:\n  - name: loader\n    resources: {limits: {memory: 128Mi}}\n    workload: {kind: model-load, size: 64Mi, strategy: chunked, hold: 1s}\n";

/// How a run is stopped.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Signal(i32),
    Panic(&'static str),
}

const STOPS: [Stop; 7] = [
    Stop::Signal(libc::SIGINT),
    Stop::Signal(libc::SIGTERM),
    Stop::Signal(libc::SIGKILL),
    Stop::Panic("cgroups-created"),
    Stop::Panic("pod-started"),
    Stop::Panic("pods-ended"),
    Stop::Panic("workload"),
];

/// A small xorshift generator: the seed is printed, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn spawn(scenario: &Path, out: &Path, stop: Stop) -> std::process::Child {
    let mut cmd = oomsim();
    cmd.arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Stop::Panic(at) = stop {
        cmd.env("OOMSIM_FAULT", format!("panic@{at}"));
    }
    cmd.spawn().unwrap()
}

/// The entries of `dir` whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect()
}

/// What a run with this owner pid may have left: its cgroup, its GPU ledger.
pub(crate) fn leftovers(pid: u32) -> Vec<PathBuf> {
    let mut left = named(&cgroup_root().join("oomsim"), &format!("{pid}-"));
    left.extend(named(Path::new("/dev/shm"), &format!("oomsim-{pid}-")));
    left
}

/// Processes whose command line names this soak's directory: its children.
fn processes_of(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            text.contains(&needle)
                .then(|| format!("{}: {text}", e.file_name().to_string_lossy()))
        })
        .collect()
}

pub fn random_stops_leave_nothing_behind() {
    let runs: usize = std::env::var("OOMSIM_SOAK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RUNS);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("soak: {runs} runs, seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let scenarios: Vec<PathBuf> = [("oom", LEAK), ("evict", EVICTION), ("gpu", GPU)]
        .iter()
        .map(|(name, yaml)| {
            let p = dir.path().join(format!("{name}.yaml"));
            std::fs::write(&p, yaml).unwrap();
            p
        })
        .collect();
    let mut owners = Vec::new();
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..runs {
        let scenario = &scenarios[rng.next(scenarios.len() as u64) as usize];
        let stop = STOPS[rng.next(STOPS.len() as u64) as usize];
        let out = dir.path().join(format!("out-{i}"));
        let mut child = spawn(scenario, &out, stop);
        owners.push(child.id());
        if let Stop::Signal(sig) = stop {
            // Mid-start, mid-ramp, at the OOM or the eviction (about 0.6-1.2 s in).
            std::thread::sleep(Duration::from_millis(rng.next(1500)));
            // SAFETY: the pid is our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, sig) };
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "run {i} ({stop:?}, {}) hangs (seed {seed})",
                scenario.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let name = scenario.file_stem().unwrap().to_string_lossy();
        *tally
            .entry(format!("{name} {stop:?} -> {status}"))
            .or_default() += 1;
        if let Stop::Panic(_) = stop {
            assert_eq!(
                status.code(),
                Some(4),
                "run {i}: a panic exits 4 (seed {seed})"
            );
        }
    }
    // A later run sweeps what SIGKILLed runs left; then nothing of any is left.
    let o = Command::new(env!("CARGO_BIN_EXE_oomsim"))
        .arg("run")
        .arg(&scenarios[0])
        .arg("--out")
        .arg(dir.path().join("out-last"))
        .arg("-q")
        .output()
        .unwrap();
    assert!(o.status.code().is_some(), "the last run ends");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left: Vec<String>;
    loop {
        left = owners
            .iter()
            .flat_map(|&p| leftovers(p))
            .map(|p| p.display().to_string())
            .chain(processes_of(dir.path()))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (what, n) in &tally {
        eprintln!("soak: {n:3} x {what}");
    }
    assert!(
        left.is_empty(),
        "left behind (seed {seed}):\n{}",
        left.join("\n")
    );
}
