//! Bad input: one line naming the file, line and field; exit 2; nothing
//! created, nothing written.

use crate::{oomsim, text};

fn run_yaml(yaml: &str) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = dir.path().join("out");
    let o = oomsim()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    (o, dir)
}

const GOOD: &str = "name: ok\npods:\n  - name: app\n    resources:\n      limits: {memory: 64Mi}\n    workload: {kind: steady, size: 1Mi, duration: 1s}\n";

fn assert_refused(yaml: &str, needle: &str) {
    let (o, dir) = run_yaml(yaml);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("bad.yaml:") && err.contains(needle), "{err}");
    assert!(
        !dir.path().join("out").exists(),
        "nothing written on bad input"
    );
}

pub fn malformed_yaml() {
    assert_refused("name: [x\n", "bad.yaml:1:");
}

pub fn tabs() {
    assert_refused(&GOOD.replace("  - name", "\t- name"), "tab");
}

pub fn empty_file() {
    assert_refused("", "empty");
}

pub fn unknown_field() {
    assert_refused(
        &GOOD.replace("    workload", "    colour: red\n    workload"),
        "unknown field `colour`",
    );
}

pub fn bad_quantities() {
    assert_refused(
        &GOOD.replace("64Mi", "12Qi"),
        ":5: pods[0].resources.limits.memory",
    );
    assert_refused(&GOOD.replace("64Mi", "-5Mi"), "negative");
    assert_refused(&GOOD.replace("64Mi", "99999999Ei"), "too large");
    assert_refused(&GOOD.replace("64Mi", "0"), "zero");
}

pub fn missing_file() {
    let o = oomsim()
        .args(["run", "/nonexistent/scenario.yaml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/scenario.yaml: cannot read"));
}

pub fn bad_command_flags() {
    let o = oomsim()
        .args(["run", "--limit", "5Zi", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--limit"));
    let o = oomsim().args(["run"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

pub fn validate_accepts_shipped_scenarios() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let o = oomsim().arg("validate").arg(&path).output().unwrap();
            assert_eq!(o.status.code(), Some(0), "{}: {}", path.display(), text(&o));
        }
    }
}

pub fn limit_larger_than_host_is_refused() {
    let (o, dir) = run_yaml(&GOOD.replace("64Mi", "4Pi"));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("pods[0].resources.limits.memory: 4.0Pi is more than this host can give"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());
}
