//! Real runs: each ends with the verdict Kubernetes would show, and leaves
//! no cgroup behind.

use std::time::{Duration, Instant};

use crate::{assert_cleaned, cgroup_root, oomsim, report, run_yaml, text};

pub(crate) fn run_cmd(limit: &str, cmd: &[&str]) -> (std::process::Output, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    let o = oomsim()
        .args(["run", "--limit", limit, "--out"])
        .arg(out.path())
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    let r = report(out.path());
    assert_cleaned(&r);
    (o, r)
}

pub(crate) fn verdict(r: &serde_json::Value) -> (String, i64, String) {
    let v = &r["pods"][0]["verdict"];
    (
        v["reason"].as_str().unwrap().into(),
        v["exit_code"].as_i64().unwrap(),
        v["cause"].as_str().unwrap().into(),
    )
}

pub fn leak_in_64mi_is_oomkilled() {
    let out = tempfile::tempdir().unwrap();
    let (code, printed, r) = run_yaml(
        out.path(),
        "name: leak64\npods:\n  - name: app\n    resources:\n      limits: {memory: 64Mi}\n    workload: {kind: leak, rate: 128Mi/s, duration: 20s}\n    expect: {reason: OOMKilled, exit_code: 137, within: 5s}\n",
    );
    assert_eq!(code, Some(0), "{printed}");
    let pod = &r["pods"][0];
    assert_eq!(
        verdict(&r),
        ("OOMKilled".into(), 137, "cgroup_oom_kill".into())
    );
    assert_eq!(pod["oom_kill_count"], 1);
    let peak = pod["peak_bytes"].as_u64().unwrap();
    assert!(peak > 60 << 20 && peak <= 64 << 20, "peak {peak}");
    let at = pod["verdict"]["at_s"].as_f64().unwrap();
    assert!(at > 0.2 && at < 5.0, "at_s {at}");
    assert!(
        pod["samples"].as_array().unwrap().len() > 20,
        "sampled at 100 Hz"
    );
    if r["host"]["kmsg_readable"] == true {
        assert!(
            pod["kernel_kill"]["line"]
                .as_str()
                .unwrap()
                .contains("Killed process")
        );
        assert_eq!(pod["kernel_kill"]["pid"], pod["pid"]);
        assert_eq!(pod["verdict"]["at_source"], "kmsg");
        assert!(pod["verdict"]["detect_latency_us"].as_f64().is_some());
    }
    assert!(
        printed.contains("Reason:     OOMKilled") && printed.contains("Exit Code:  137"),
        "{printed}"
    );
}

pub fn kill_dash_9_is_error_137_not_oom() {
    let (o, r) = run_cmd("64Mi", &["sh", "-c", "kill -9 $$"]);
    // A one-off run expects Completed: anything else exits 1.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("EXPECTATIONS FAILED"), "{}", text(&o));
    assert_eq!(
        verdict(&r),
        ("Error".into(), 137, "external_sigkill".into())
    );
    assert_eq!(r["pods"][0]["oom_kill_count"], 0);
}

pub fn sigterm_is_143() {
    let (_, r) = run_cmd("64Mi", &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(verdict(&r), ("Error".into(), 143, "sigterm".into()));
}

pub fn exit_3_is_app_error() {
    let (_, r) = run_cmd("64Mi", &["sh", "-c", "exit 3"]);
    assert_eq!(verdict(&r), ("Error".into(), 3, "app_error".into()));
}

pub fn fitting_program_completes() {
    let (o, r) = run_cmd(
        "128Mi",
        &["python3", "-c", "b = bytearray(32 << 20); print(len(b))"],
    );
    assert_eq!(verdict(&r), ("Completed".into(), 0, "completed".into()));
    let peak = r["pods"][0]["peak_bytes"].as_u64().unwrap();
    assert!(peak >= 32 << 20, "peak {peak} below what python held");
    assert!(text(&o).contains("Reason:     Completed"));
}

pub fn python_over_its_limit_is_oomkilled() {
    let (_, r) = run_cmd("64Mi", &["python3", "-c", "b = bytearray(256 << 20)"]);
    assert_eq!(
        verdict(&r),
        ("OOMKilled".into(), 137, "cgroup_oom_kill".into())
    );
}

/// containerd's rule: a worker OOM-killed in the container makes the
/// container OOMKilled even when the main process then exits 0.
pub fn worker_oom_kill_then_exit_0_is_oomkilled_with_code_0() {
    let (o, r) = run_cmd(
        "64Mi",
        &["sh", "-c", "python3 -c 'b = bytearray(256 << 20)'; exit 0"],
    );
    assert_eq!(
        verdict(&r),
        (
            "OOMKilled".into(),
            0,
            "cgroup_oom_kill_of_other_process".into()
        )
    );
    assert_eq!(r["pods"][0]["oom_kill_count"], 1);
    // A one-off run expects Completed: this did not complete.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

pub fn missing_program_is_start_error() {
    let (_, r) = run_cmd("64Mi", &["/nonexistent/program"]);
    let (reason, code, cause) = verdict(&r);
    assert_eq!(
        (reason.as_str(), code, cause.as_str()),
        ("StartError", 128, "start_failed")
    );
}

pub fn failed_expectation_exits_1() {
    let out = tempfile::tempdir().unwrap();
    let (code, printed, r) = run_yaml(
        out.path(),
        "name: wrong\npods:\n  - name: app\n    resources:\n      limits: {memory: 64Mi}\n    workload: {kind: steady, size: 8Mi, duration: 100ms}\n    expect: {reason: OOMKilled}\n",
    );
    assert_eq!(code, Some(1), "{printed}");
    assert_eq!(r["ok"], false);
    assert!(
        r["pods"][0]["unmet"][0]
            .as_str()
            .unwrap()
            .contains("expected reason OOMKilled, got Completed")
    );
}

/// Wait until the run started by `child` has a cgroup; return its path.
pub(crate) fn wait_for_run_cgroup(pid: u32) -> std::path::PathBuf {
    let prefix = cgroup_root().join("oomsim");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(entries) = std::fs::read_dir(&prefix) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{pid}-"))
                {
                    // The pod's cgroup holds its container's, as the kubelet lays them out.
                    let procs = e.path().join("sleep").join("sleep").join("cgroup.procs");
                    if std::fs::read_to_string(&procs).is_ok_and(|p| !p.trim().is_empty()) {
                        return e.path();
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("run of pid {pid} never made a cgroup");
}

fn long_run(out: &std::path::Path) -> std::process::Child {
    oomsim()
        .args(["run", "--limit", "64Mi", "--out"])
        .arg(out)
        .args(["--", "sleep", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

pub fn ctrl_c_kills_children_and_removes_cgroups() {
    let out = tempfile::tempdir().unwrap();
    let mut child = long_run(out.path());
    let dir = wait_for_run_cgroup(child.id());
    let sleeper: i32 = std::fs::read_to_string(dir.join("sleep/sleep/cgroup.procs"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let started = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!dir.exists(), "cgroup left after Ctrl-C");
    assert!(
        !std::path::Path::new(&format!("/proc/{sleeper}")).exists(),
        "child left running"
    );
    assert_eq!(report(out.path())["interrupted"], "SIGINT");
}

use std::process::Command;

pub fn next_run_removes_what_a_sigkilled_run_left() {
    let out = tempfile::tempdir().unwrap();
    let mut child = long_run(out.path());
    let dir = wait_for_run_cgroup(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        dir.exists(),
        "SIGKILL leaves the cgroup (nothing can clean up)"
    );
    // PDEATHSIG ends the child; the cgroup empties.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(dir.join("sleep/sleep/cgroup.procs"))
        .is_ok_and(|p| !p.trim().is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "the pod's process outlived a SIGKILLed harness"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, _) = run_cmd("16Mi", &["true"]);
    assert!(
        !dir.exists(),
        "the next run did not remove {}",
        dir.display()
    );
}

pub fn one_off_run_exit_code_follows_expect() {
    let out = tempfile::tempdir().unwrap();
    let run = |expect: &[&str], cmd: &[&str]| {
        oomsim()
            .args(["run", "--limit", "32Mi", "--out"])
            .arg(out.path())
            .args(expect)
            .arg("--")
            .args(cmd)
            .output()
            .unwrap()
    };
    let leak = ["python3", "-c", "b = bytearray(128 << 20)"];
    let o = run(&[], &leak);
    assert_eq!(
        o.status.code(),
        Some(1),
        "OOMKilled is not Completed: {}",
        text(&o)
    );
    let o = run(&["--expect", "OOMKilled"], &leak);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&[], &["/nonexistent/program"]);
    assert_eq!(o.status.code(), Some(1), "a start failure is not Completed");
    let o = run(&[], &["true"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&["--expect", "OOMKiled"], &["true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--expect"), "{}", text(&o));
}
