//! Integration tests: the real binary, real cgroups, real kernel OOM kills.
//!
//! Tests that need root and a memory controller say so loudly and skip when
//! the host lacks them, unless OOMSIM_REQUIRE_CGROUPS=1 (set in CI), where
//! they fail instead.

mod bad_input;
mod gpu;
mod harness;
mod node;
mod sizing;
mod vllm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn oomsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oomsim"))
}

/// True when real cgroup tests can run here; loud when they cannot.
pub fn cgroups_available(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc_geteuid() } == 0;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let memory = mountinfo
        .lines()
        .any(|l| l.contains(" - cgroup ") && l.contains("memory"))
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.contains("memory"));
    if root && memory {
        return true;
    }
    let why = if root {
        "no memory cgroup controller"
    } else {
        "not root"
    };
    if std::env::var("OOMSIM_REQUIRE_CGROUPS").as_deref() == Ok("1") {
        panic!("{test}: needs real cgroups but {why}, and OOMSIM_REQUIRE_CGROUPS=1");
    }
    eprintln!("\n!!! SKIPPED {test}: needs root and a memory cgroup controller ({why}) !!!\n");
    false
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// The memory hierarchy's root on this host (v1 memory mount or cgroup2 root).
pub fn cgroup_root() -> PathBuf {
    if Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        PathBuf::from("/sys/fs/cgroup/memory")
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

pub fn report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json parses")
}

/// Assert the run's cgroup is gone, by the run id the report names.
pub fn assert_cleaned(report: &serde_json::Value) {
    let run_id = report["run_id"].as_str().unwrap();
    let dir = cgroup_root().join("oomsim").join(run_id);
    assert!(!dir.exists(), "cgroup {} left behind", dir.display());
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run a scenario written into `dir`; returns (exit code, output, report),
/// having checked that the run left no cgroup behind.
pub fn run_yaml(dir: &Path, yaml: &str) -> (Option<i32>, String, serde_json::Value) {
    let file = dir.join("s.yaml");
    std::fs::write(&file, yaml).unwrap();
    let o = oomsim()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let r = report(&dir.join("out"));
    assert_cleaned(&r);
    (o.status.code(), text(&o), r)
}

/// A pod of a report, by name.
pub fn pod<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
}
