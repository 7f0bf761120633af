//! Pods with several containers, run for real: a pod cgroup holding one
//! cgroup per container, init containers in order, sidecars beside the
//! app, restarts with the kubelet's back-off, and a pod `from:` a manifest.

use serde_json::Value;

use crate::{oomsim, pod, run_yaml, text};

/// A container of a pod in a report, by name.
fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// Seconds after the pod's start that a termination started and ended.
fn span(t: &Value) -> (f64, f64) {
    let start = t["started_s"].as_f64().unwrap();
    (start, start + t["verdict"]["at_s"].as_f64().unwrap())
}

/// Prints the memory limit of the cgroup above its own (the pod's) and its
/// own memory.oom.group when the kernel has one, then outlives the hog.
const PROBE: &str = r#"
import os, time
line = [l for l in open('/proc/self/cgroup') if ':memory:' in l or l.startswith('0::')][0]
rel = line.strip().split(':', 2)[2]
root = '/sys/fs/cgroup/memory' if os.path.exists('/sys/fs/cgroup/memory/memory.limit_in_bytes') else '/sys/fs/cgroup'
me = root + rel
for name in ('memory.limit_in_bytes', 'memory.max'):
    if os.path.exists(os.path.dirname(me) + '/' + name):
        print('pod-limit', open(os.path.dirname(me) + '/' + name).read().strip())
if os.path.exists(me + '/memory.oom.group'):
    print('oom-group', open(me + '/memory.oom.group').read().strip())
time.sleep(1.5)
"#;

/// The hog goes over its own 64Mi and is OOMKilled; the probe, in its own
/// cgroup of the same pod, keeps running and completes; the pod's cgroup
/// limit is the sum of the two.
pub fn one_container_oomkilled_the_other_completes_in_a_pod_cgroup_of_their_sum() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"name: two-containers
pods:
  - name: web
    timeout: 30s
    containers:
      - name: hog
        resources: {{limits: {{memory: 64Mi}}}}
        workload: {{kind: leak, rate: 256Mi/s, duration: 30s}}
        expect: {{reason: OOMKilled, exit_code: 137}}
      - name: probe
        resources: {{limits: {{memory: 96Mi}}}}
        workload:
          kind: command
          command: [python3, -c, {probe:?}]
        expect: {{reason: Completed}}
"#,
        probe = PROBE
    );
    let (code, out, r) = run_yaml(dir.path(), &yaml);
    assert_eq!(code, Some(0), "{out}");
    let web = pod(&r, "web");
    assert_eq!(web["limit_bytes"], 160u64 << 20);
    let hog = container(web, "hog");
    let probe = container(web, "probe");
    assert_eq!(hog["verdict"]["reason"], "OOMKilled", "{out}");
    assert_eq!(hog["verdict"]["cause"], "cgroup_oom_kill", "{out}");
    assert_eq!(hog["oom_kill_count"], 1);
    assert_eq!(probe["verdict"]["reason"], "Completed", "{out}");
    assert_eq!(probe["oom_kill_count"], 0);
    // The probe ended after the hog's kill: it kept running.
    let (_, hog_end) = span(&hog["terminations"][0]);
    let (_, probe_end) = span(&probe["terminations"][0]);
    assert!(probe_end > hog_end + 0.5, "{hog_end} {probe_end}");
    // The pod's own verdict is its first failure.
    assert_eq!(web["verdict"]["reason"], "OOMKilled");
    let log = std::fs::read_to_string(probe["log"].as_str().unwrap()).unwrap();
    assert!(
        log.contains(&format!("pod-limit {}", 160u64 << 20)),
        "the pod cgroup's limit is the sum of its containers': {log}"
    );
    // cgroup v2: the kubelet's memory.oom.group=1 on each container.
    match r["oom_kill_mode"].as_str() {
        Some("group") => assert!(log.contains("oom-group 1"), "{log}"),
        Some("cgroup_v1") => assert!(!log.contains("oom-group"), "{log}"),
        other => panic!("oom_kill_mode {other:?}"),
    }
    assert!(out.contains("Containers:\n  hog:"), "{out}");
}

/// Init containers run one after another, the sidecar starts before the
/// app and is stopped (SIGTERM) once the app is done; the pod completes.
pub fn init_containers_run_in_order_and_the_sidecar_is_stopped_after_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"name: init-order
pods:
  - name: job
    timeout: 30s
    initContainers:
      - name: fetch
        workload: {kind: steady, size: 4Mi, duration: 200ms}
      - name: proxy
        restartPolicy: Always
        workload: {kind: steady, size: 4Mi, duration: 10m}
      - name: migrate
        workload: {kind: steady, size: 4Mi, duration: 200ms}
    containers:
      - name: app
        workload: {kind: steady, size: 4Mi, duration: 300ms}
        expect: {reason: Completed}
"#;
    let (code, out, r) = run_yaml(dir.path(), yaml);
    assert_eq!(code, Some(0), "{out}");
    let job = pod(&r, "job");
    let span_of = |name: &str| span(&container(job, name)["terminations"][0]);
    let (fetch, proxy, migrate, app) = (
        span_of("fetch"),
        span_of("proxy"),
        span_of("migrate"),
        span_of("app"),
    );
    assert!(
        fetch.1 <= proxy.0,
        "the sidecar starts after fetch ends: {out}"
    );
    assert!(
        proxy.0 <= migrate.0,
        "migrate starts once the sidecar started"
    );
    assert!(
        migrate.1 <= app.0,
        "the app starts after the last init container"
    );
    assert!(proxy.1 >= app.1, "the sidecar outlives the app");
    let sidecar = container(job, "proxy");
    assert_eq!(sidecar["kind"], "sidecar");
    assert_eq!(sidecar["verdict"]["exit_code"], 143, "stopped by SIGTERM");
    assert_eq!(job["verdict"]["reason"], "Completed", "{out}");
    assert!(out.contains("Init Containers:"), "{out}");
}

/// The shipped scenario from a real Deployment manifest: only the leaking
/// container is OOMKilled; it is restarted with the kubelet's back-off
/// (immediately, then after 10 s scaled to 100 ms) and left in
/// CrashLoopBackOff after 2 restarts while the others keep running.
pub fn a_deployment_manifest_runs_and_its_leaking_container_crash_loops() {
    let dir = tempfile::tempdir().unwrap();
    let o = oomsim()
        .args(["run", "scenarios/api-rollout.yaml", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let r = crate::report(dir.path());
    crate::assert_cleaned(&r);
    assert_eq!(r["schema_version"], 3);
    let p = pod(&r, "api");
    let api = container(p, "api");
    assert_eq!(api["restart_count"], 2, "{out}");
    assert_eq!(api["state"]["state"], "waiting");
    assert_eq!(api["state"]["reason"], "CrashLoopBackOff");
    let runs: Vec<(f64, f64)> = api["terminations"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|t| {
            assert_eq!(t["verdict"]["reason"], "OOMKilled", "{out}");
            assert_eq!(t["oom_kill_count"], 1);
            span(t)
        })
        .collect();
    let first_gap = runs[1].0 - runs[0].1;
    let second_gap = runs[2].0 - runs[1].1;
    assert!(
        first_gap < 0.09,
        "the first restart is immediate: {first_gap}"
    );
    assert!(
        (0.095..1.0).contains(&second_gap),
        "then 10 s x 0.01: {second_gap}"
    );
    assert_eq!(container(p, "migrate")["verdict"]["reason"], "Completed");
    for running in ["proxy", "log-shipper"] {
        let c = container(p, running);
        assert_eq!(c["state"]["state"], "running", "{running}: {out}");
        assert_eq!(c["oom_kill_count"], 0);
    }
    // The kubelet's per-container oom_score_adj: a larger request, a lower score.
    assert!(api["oom_score_adj"].as_i64() < container(p, "log-shipper")["oom_score_adj"].as_i64());
    // The pod cgroup: max(api + log-shipper + proxy, migrate + 0) = 288Mi.
    assert_eq!(p["limit_bytes"], 288u64 << 20);
    assert!(
        out.contains("Reason:       CrashLoopBackOff")
            && out.contains("Last State:     Terminated\n      Reason:       OOMKilled")
            && out.contains("Restart Count:  2")
            && out.contains("BackOff     ")
            && out.contains("Back-off restarting failed container api in pod api"),
        "{out}"
    );
}
