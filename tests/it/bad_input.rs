//! Bad input: one line naming the file, line and field; exit 2; nothing
//! created, nothing written.

use crate::{oomsim, text};

fn run_yaml(yaml: &str) -> (std::process::Output, tempfile::TempDir) {
    run_with(yaml, &[])
}

/// Run `yaml` as bad.yaml with other files (a manifest) beside it.
fn run_with(yaml: &str, beside: &[(&str, &str)]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in beside {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
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
    assert_refused_with(yaml, &[], needle);
}

fn assert_refused_with(yaml: &str, beside: &[(&str, &str)], needle: &str) {
    let (o, dir) = run_with(yaml, beside);
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
        err.contains(
            "bad.yaml:5: pods[0].resources.limits.memory: 4.0Pi is more than this host can give"
        ),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());
    // A node bigger than the host: its capacity bounds every pod, so it is refused.
    let (o, dir) = run_yaml(&format!("node: {{capacity: 4Pi}}\n{GOOD}"));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.yaml:1: node.capacity: 4.0Pi is more than this host can give"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());
}

const TWO: &str = "name: two\npods:\n  - name: web\n    containers:\n      - name: app\n        resources: {limits: {memory: 64Mi}}\n        workload: {kind: steady, size: 1Mi, duration: 1s}\n      - name: side\n        workload: {kind: steady, size: 1Mi, duration: 1s}\n";

const MANIFEST: &str = "kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        resources: {limits: {memory: 64Mi}}\n      - name: shipper\n";

const FROM: &str = "name: from\npods:\n  - name: web\n    from: m.yaml\n    containers:\n      - name: app\n        workload: {kind: steady, size: 1Mi, duration: 1s}\n      - name: shipper\n        workload: {kind: steady, size: 1Mi, duration: 1s}\n";

/// Pods with containers, and pods from a manifest: exit 2, one line naming
/// the scenario's line and field.
pub fn bad_containers_and_manifests() {
    assert_refused(
        &TWO.replace(
            "        workload: {kind: steady, size: 1Mi, duration: 1s}\n      - name: side",
            "      - name: side",
        ),
        ":5: pods[0].containers[0].workload: container \"app\" has no workload",
    );
    assert_refused(
        &TWO.replace("name: side", "name: app"),
        ":8: pods[0].containers[1].name: container \"app\" is named twice",
    );
    assert_refused(
        &TWO.replace(
            "limits: {memory: 64Mi}",
            "requests: {memory: 96Mi}, limits: {memory: 64Mi}",
        ),
        "pods[0].containers[0].resources.requests.memory: request 96Mi must be less than or equal",
    );
    assert_refused(
        &TWO.replace(
            "    containers:",
            "    workload: {kind: steady, size: 1Mi, duration: 1s}\n    containers:",
        ),
        "pods[0].workload: a pod with containers gives each container its own workload",
    );
    assert_refused(
        &TWO.replace("    containers:", "    initContainers:\n      - name: init\n        restartPolicy: Never\n        workload: {kind: steady, size: 1Mi, duration: 1s}\n    containers:"),
        "pods[0].initContainers[0].restartPolicy: \"Never\": an init container may only say Always",
    );
    assert_refused(
        &TWO.replace(
            "    containers:",
            "    resources: {requests: {memory: 32Mi}}\n    containers:",
        ),
        ":4: pods[0].resources.requests: the pod-level request (32Mi) is below its containers' (64Mi)",
    );
    assert_refused(
        &TWO.replace(
            "    containers:",
            "    backoffScale: 0.0000001\n    containers:",
        ),
        "pods[0].backoffScale: 0.0000001 is outside",
    );
}

pub fn bad_pods_from_manifests() {
    let m = [("m.yaml", MANIFEST)];
    // The good one first: it validates.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.yaml"), MANIFEST).unwrap();
    std::fs::write(dir.path().join("s.yaml"), FROM).unwrap();
    let o = oomsim()
        .arg("validate")
        .arg(dir.path().join("s.yaml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_refused_with(
        &FROM.replace(
            "      - name: shipper\n        workload: {kind: steady, size: 1Mi, duration: 1s}\n",
            "",
        ),
        &m,
        ":4: pods[0].from: container \"shipper\" of pod web has no workload",
    );
    assert_refused_with(
        &FROM.replace("name: shipper", "name: shiper"),
        &m,
        ":8: pods[0].containers[1].name: m.yaml has no container \"shiper\" in pod web (it has: app, shipper)",
    );
    assert_refused_with(
        &FROM.replace("  - name: web", "  - name: api"),
        &m,
        ":3: pods[0].name: m.yaml holds no pod named \"api\" (it has: web)",
    );
    assert_refused_with(FROM, &[], ":4: pods[0].from: cannot read");
    assert_refused_with(
        FROM,
        &[("m.yaml", "kind: Service\nmetadata: {name: web}\nspec: {}\n")],
        "pods[0].from: m.yaml: Service \"web\" has no pod template",
    );
    assert_refused_with(
        &FROM.replace(
            "    from: m.yaml",
            "    from: m.yaml\n    resources: {limits: {memory: 1Gi}}",
        ),
        &m,
        "pods[0].from: resources comes from the manifest",
    );
}
