//! Faults from outside a run: its cgroup removed under it, a /dev/kmsg that
//! is not the kernel log, a full disk for the report, a child that ignores
//! SIGTERM. Each ends with one clear line (or a correct verdict) and leaves
//! nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{verdict, wait_for_run_cgroup};
use crate::soak::leftovers;
use crate::{assert_cleaned, cgroup_root, oomsim, report, text};

/// A leak into 48Mi: OOMKilled within a second.
const LEAK: &str = "name: fault-oom\npods:\n  - name: app\n    resources: {limits: {memory: 48Mi}}\n    workload: {kind: leak, baseline: 8Mi, rate: 128Mi/s, duration: 10s}\n    expect: {reason: OOMKilled, exit_code: 137}\n";

/// `oomsim run -q FILE --out OUT`, its output piped.
fn spawn_run(file: &Path, out: &Path) -> std::process::Child {
    oomsim()
        .arg("run")
        .arg("-q")
        .arg(file)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn write_scenario(dir: &Path, yaml: &str) -> PathBuf {
    let file = dir.join("s.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

/// The lines oomsim wrote to stderr.
fn stderr_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Running, not a zombie waiting for whichever init adopted it.
fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|st| !st.trim_start().starts_with('Z'))
    })
}

fn first_pid(procs: &Path) -> i32 {
    std::fs::read_to_string(procs)
        .unwrap()
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no process in {}", procs.display()))
}

/// Someone else moves the container's process out and removes the pod's
/// and the container's cgroups while the pod runs: the pod is stopped at
/// once, the run says so in one line (exit 4), and the rest is cleaned up.
pub fn a_cgroup_removed_mid_run_stops_the_pod_in_one_line() {
    let out = tempfile::tempdir().unwrap();
    let child = oomsim()
        .args(["run", "-q", "--limit", "64Mi", "--out"])
        .arg(out.path())
        .args(["--", "sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_for_run_cgroup(child.id());
    let (pod, container) = (run.join("sleep"), run.join("sleep/sleep"));
    let sleeper = first_pid(&container.join("cgroup.procs"));
    std::fs::write(cgroup_root().join("cgroup.procs"), sleeper.to_string()).unwrap();
    std::fs::remove_dir(&container).unwrap();
    std::fs::remove_dir(&pod).unwrap();
    let removed = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(
        removed.elapsed() < Duration::from_secs(5),
        "the run went on for {:?} without its cgroup",
        removed.elapsed()
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let lines = stderr_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("oomsim: pod sleep: its cgroup went away during the run (")
            && lines[0].ends_with("oomsim stopped the pod: no verdict"),
        "{lines:?}"
    );
    assert!(!pid_alive(sleeper), "the moved-out child was left running");
    assert!(!run.exists(), "the run's cgroup was left behind");
    assert!(
        !out.path().join("report.json").exists(),
        "a report without a verdict was written"
    );
}

/// /dev/kmsg bound to /dev/null (as some container runtimes leave it): it
/// opens, and says nothing. oomsim must see it is not the kernel log, warn
/// once, and still get the verdict from the cgroup's oom_kill counter.
pub fn a_kmsg_that_is_not_the_kernel_log_leaves_the_counter() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), LEAK);
    let out = dir.path().join("out");
    let o = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount --bind /dev/null /dev/kmsg && exec "$0" run -q "$1" --out "$2""#,
        ])
        .arg(env!("CARGO_BIN_EXE_oomsim"))
        .arg(&file)
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let warnings: Vec<String> = stderr_lines(&o)
        .into_iter()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(
        warnings,
        [
            "oomsim: warning: cannot read /dev/kmsg: it is not the kernel log (device 1:3, not char 1:11); kill lines and detection latency will be missing"
        ],
    );
    let r = report(&out);
    assert_cleaned(&r);
    assert_eq!(r["host"]["kmsg_readable"], false);
    assert_eq!(
        verdict(&r),
        ("OOMKilled".into(), 137, "cgroup_oom_kill".into())
    );
    let pod = &r["pods"][0];
    assert_eq!(pod["verdict"]["at_source"], "oom_kill_counter");
    assert!(pod["kernel_kill"].is_null(), "{}", pod["kernel_kill"]);
}

/// A small tmpfs, unmounted however the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot mount a tmpfs at {}", at.display());
        Tmpfs(at)
    }

    /// Write zeros until the filesystem refuses.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The report's disk fills between two runs: the second run ends with one
/// line (exit 4), the first run's report.json is byte for byte what it was
/// (written to a temporary file and renamed), no temporary file is left,
/// and no cgroup.
pub fn a_full_disk_keeps_the_previous_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), LEAK);
    let disk = Tmpfs::mount(dir.path().join("disk"), "4m");
    let out = disk.0.join("out");
    let run = || {
        let child = spawn_run(&file, &out);
        let pid = child.id();
        let o = child.wait_with_output().unwrap();
        let left = leftovers(pid);
        assert!(left.is_empty(), "left behind: {left:?}");
        o
    };
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let before = std::fs::read(out.join("report.json")).unwrap();
    let files_before = listing(&out);
    disk.fill();
    let second = run();
    assert_eq!(second.status.code(), Some(4), "{}", text(&second));
    let lines = stderr_lines(&second);
    assert_eq!(
        lines,
        [format!(
            "oomsim: cannot write the report: {}: No space left on device (os error 28)",
            out.join("report.json").display()
        )],
    );
    assert_eq!(
        std::fs::read(out.join("report.json")).unwrap(),
        before,
        "the previous report changed"
    );
    assert_eq!(listing(&out), files_before, "files appeared or went");
}

/// Every file under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                names.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    names.sort();
    names
}

/// A container whose shell and its child ignore SIGTERM: at the pod's
/// timeout oomsim kills it (Error 137, the timeout named); a SIGTERM to
/// oomsim itself ends the run (143) and the child with it. Neither the
/// shell nor its child is left.
pub fn a_child_that_ignores_sigterm_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let yaml = format!(
        "name: stubborn\npods:\n  - name: app\n    resources: {{limits: {{memory: 64Mi}}}}\n    timeout: 2s\n    workload: {{kind: command, command: [sh, -c, \"trap '' TERM; sleep 60 & echo $! > {}; wait\"]}}\n    expect: {{reason: Error, exit_code: 137}}\n",
        pidfile.display()
    );
    let file = write_scenario(dir.path(), &yaml);
    let out = dir.path().join("out");
    let started = Instant::now();
    let o = oomsim()
        .arg("run")
        .arg("-q")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(took < Duration::from_secs(6), "a 2 s timeout took {took:?}");
    let r = report(&out);
    assert_cleaned(&r);
    assert_eq!(verdict(&r), ("Error".into(), 137, "timeout".into()));
    let grandchild: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!pid_alive(grandchild), "the shell's child outlived the pod");

    // Now oomsim itself is asked to stop while the child ignores SIGTERM.
    std::fs::remove_file(&pidfile).unwrap();
    let long = yaml.replace("timeout: 2s", "timeout: 60s");
    let file = write_scenario(dir.path(), &long);
    let child = spawn_run(&file, &out);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pidfile.exists() {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", text(&o));
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        stopped.elapsed()
    );
    let grandchild: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!pid_alive(grandchild), "the shell's child outlived the run");
    let r = report(&out);
    assert_cleaned(&r);
    assert_eq!(r["interrupted"], "SIGTERM");
}
