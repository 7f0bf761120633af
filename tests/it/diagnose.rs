//! `oomsim diagnose` and `oomsim recommend` through the binary: files and
//! stdin, the JSON contract, a scenario emitted from evidence that loads
//! and (with cgroups) reproduces the failure, which diagnose then reads
//! back; bad input in one line with exit 2 and nothing written.

use std::io::Write as _;
use std::process::Stdio;

use crate::{oomsim, text};

const DESCRIBE: &str = "Name:         api-0\nContainers:\n  app:\n    State:          Running\n    Last State:     Terminated\n      Reason:       OOMKilled\n      Exit Code:    137\n    Restart Count:  2\n    Limits:\n      memory:  96Mi\n    Requests:\n      memory:  64Mi\n";

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

pub fn stdin_and_files_and_the_json_contract() {
    let mut child = oomsim()
        .args(["diagnose", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"2024-05-01T10:00:00.000000001Z Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&o);
    assert_eq!(v["class"], "runtime_oom");
    assert_eq!(v["runtime"], "java");
    assert_eq!(v["confidence"], "high");
    assert_eq!(v["evidence"][0]["file"], "stdin");
    assert_eq!(v["evidence"][0]["line"], 1);
    for key in ["ruled_out", "fix", "facts"] {
        assert!(!v[key].is_null(), "{key}");
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("describe.txt");
    std::fs::write(&d, DESCRIBE).unwrap();
    let o = oomsim().arg("diagnose").arg(&d).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("Class:       cgroup_oom\n"), "{out}");
    assert!(
        out.contains("describe.txt:6  Reason:       OOMKilled"),
        "{out}"
    );
    assert!(out.contains("Limit:         96Mi"), "{out}");
}

pub fn bad_input_is_one_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    let o = oomsim().arg("diagnose").arg(&missing).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("nope.txt"), "{err}");
    // Not memory: nothing to reproduce, nothing written.
    let ev = dir.path().join("ev.txt");
    std::fs::write(
        &ev,
        "    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    143\n",
    )
    .unwrap();
    let s = dir.path().join("s.yaml");
    let o = oomsim()
        .arg("diagnose")
        .arg(&ev)
        .arg("--emit-scenario")
        .arg(&s)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sigterm is not a memory failure"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the input: {s:?} not written"
    );
    let o = oomsim().args(["recommend"]).arg(&ev).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// Evidence -> a scenario -> a real run that dies the same way -> the
/// run's report diagnosed the same.
pub fn emitted_scenario_reproduces_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("describe.txt");
    std::fs::write(&d, DESCRIBE).unwrap();
    let s = dir.path().join("repro.yaml");
    let o = oomsim()
        .arg("diagnose")
        .arg(&d)
        .arg("--emit-scenario")
        .arg(&s)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let yaml = std::fs::read_to_string(&s).unwrap();
    assert!(
        yaml.contains("limits: {memory: 96Mi}") && yaml.contains("requests: {memory: 64Mi}"),
        "{yaml}"
    );
    // The run alone, not the search block.
    let run_only = yaml.split("search:").next().unwrap().to_string();
    std::fs::write(&s, run_only).unwrap();
    let out = dir.path().join("out");
    let o = oomsim()
        .arg("run")
        .arg(&s)
        .arg("--out")
        .arg(&out)
        .arg("-q")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "the expectation (OOMKilled) held: {}",
        text(&o)
    );
    let o = oomsim()
        .args(["diagnose", "--json"])
        .arg(out.join("report.json"))
        .output()
        .unwrap();
    let v = json(&o);
    assert_eq!(v["class"], "cgroup_oom", "{v}");
    assert_eq!(v["facts"]["limit_bytes"], 96 << 20);
}

pub fn recommend_patches_a_manifest_from_a_search() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let search = root.join("reports/baselines/sizing-python/search.json");
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("deploy.yaml");
    std::fs::write(&m, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: worker\nspec:\n  template:\n    spec:\n      containers:\n      - name: worker  # the app\n        image: python:3\n        resources:\n          limits: {memory: 128Mi}\n").unwrap();
    let o = oomsim()
        .arg("recommend")
        .arg(&search)
        .arg("--manifest")
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let patched = String::from_utf8_lossy(&o.stdout);
    assert!(patched.contains("limits: {memory: 240Mi}"), "{patched}");
    assert!(
        patched.contains("requests:\n            memory: 240Mi"),
        "{patched}"
    );
    assert!(patched.contains("- name: worker  # the app"));
    let why = String::from_utf8_lossy(&o.stderr);
    assert!(
        why.contains("smallest limit that survived all 3 trial(s) at it was 200Mi"),
        "{why}"
    );
    let o = oomsim().arg("recommend").arg(&search).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("kubectl set resources deployment/worker -c worker --limits=memory=240Mi --requests=memory=240Mi"), "{out}");
}
