//! The node: kubelet-style eviction in a real node cgroup, the kernel's OOM
//! killer acting for the node, and `oomsim node plan`.

use crate::{oomsim, pod, run_yaml, text};

pub fn leaking_pod_is_evicted_below_its_own_limit_in_kubelet_order() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, r) = run_yaml(
        dir.path(),
        "name: evict\nnode: {capacity: 1Gi, evictionHard: {memory.available: 300Mi}, housekeeping: 500ms}\npods:\n\
         - name: best-effort\n  workload: {kind: steady, size: 100Mi, duration: 10s}\n\
         - name: leaker\n  resources: {requests: {memory: 64Mi}, limits: {memory: 2Gi}}\n  workload: {kind: leak, rate: 100Mi/s, duration: 30s}\n",
    );
    assert_eq!(code, Some(0), "{out}");
    let leaker = pod(&r, "leaker");
    let v = &leaker["verdict"];
    assert_eq!(
        (v["reason"].as_str(), v["cause"].as_str()),
        (Some("Evicted"), Some("evicted")),
        "{out}"
    );
    assert!(
        v["message"].as_str().unwrap().starts_with(
            "The node was low on resource: memory. Threshold quantity: 300Mi, available: "
        ),
        "{}",
        v["message"]
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("request is 64Mi, has larger consumption of memory. "),
        "the kubelet ends every fragment with \". \": {}",
        v["message"]
    );
    assert_eq!(leaker["oom_kill_count"], 0);
    assert!(
        leaker["peak_bytes"].as_u64().unwrap() < 1 << 30,
        "far below its 2Gi limit"
    );
    let node = &r["node"];
    let e = &node["evictions"][0];
    assert_eq!(e["pod"], "leaker");
    assert_eq!(e["ranking"], serde_json::json!(["leaker", "best-effort"]));
    assert!(e["available_bytes"].as_i64().unwrap() < 300 << 20);
    assert_eq!(node["conditions"][0]["type"], "MemoryPressure");
    assert_eq!(node["conditions"][0]["status"], "True");
    assert!(!node["samples"].as_array().unwrap().is_empty());
    assert_eq!(pod(&r, "best-effort")["verdict"]["reason"], "Completed");
    assert_eq!(pod(&r, "best-effort")["oom_score_adj"], 1000);
    // 1000 - 1000 x 64Mi / 1Gi = 938.
    assert_eq!(leaker["oom_score_adj"], 938);
    assert!(out.contains("Warning  Evicted"), "{out}");
}

pub fn fast_ramp_beats_housekeeping_and_the_kernel_kills_for_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, r) = run_yaml(
        dir.path(),
        "name: race\nnode: {capacity: 512Mi, housekeeping: 10s}\npods:\n\
         - name: best-effort\n  workload: {kind: steady, size: 32Mi, duration: 3s}\n\
         - name: leaker\n  resources: {requests: {memory: 64Mi}, limits: {memory: 2Gi}}\n  phases:\n  - {kind: steady, size: 0, duration: 300ms}\n  - {kind: leak, rate: max, cap: 1Gi}\n",
    );
    assert_eq!(code, Some(0), "{out}");
    let leaker = pod(&r, "leaker");
    let v = &leaker["verdict"];
    assert_eq!(
        (v["reason"].as_str(), v["cause"].as_str()),
        (Some("OOMKilled"), Some("node_oom_kill")),
        "{out}"
    );
    assert_eq!(leaker["oom_kill_count"], 1);
    assert!(
        leaker["peak_bytes"].as_u64().unwrap() <= 512 << 20,
        "below its own 2Gi limit"
    );
    assert!(
        r["node"]["evictions"].as_array().unwrap().is_empty(),
        "housekeeping never ran"
    );
    assert_eq!(pod(&r, "best-effort")["verdict"]["reason"], "Completed");
    if let Some(memcg) = leaker["kernel_kill"]["oom_memcg"].as_str() {
        assert!(
            !memcg.ends_with("/leaker"),
            "the node's memcg ran out: {memcg}"
        );
    }
}

/// kubeReserved + systemReserved: the pods die at allocatable, with
/// memory.available still above the eviction threshold.
pub fn reserved_memory_kills_at_allocatable_before_any_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = std::fs::read_to_string("scenarios/node-allocatable.yaml").unwrap();
    let (code, out, r) = run_yaml(dir.path(), &yaml);
    assert_eq!(code, Some(0), "{out}");
    let leaker = pod(&r, "leaker");
    let v = &leaker["verdict"];
    assert_eq!(
        (v["reason"].as_str(), v["cause"].as_str()),
        (Some("OOMKilled"), Some("allocatable_oom_kill")),
        "{out}"
    );
    assert_eq!(r["node"]["allocatable_bytes"], 1280u64 << 20);
    let peak = leaker["peak_bytes"].as_u64().unwrap();
    assert!(peak <= 1280 << 20 && peak > 1200 << 20, "peak {peak}");
    assert!(
        r["node"]["evictions"].as_array().unwrap().is_empty(),
        "available stayed above 100Mi: {out}"
    );
    if let Some(memcg) = leaker["kernel_kill"]["oom_memcg"].as_str() {
        assert!(memcg.ends_with("/kubepods"), "{memcg}");
    }
    assert!(out.contains("allocatable 1280Mi"), "{out}");
}

/// The shipped Deployment and StatefulSet: a row per container with the
/// kubelet's oom_score_adj, the sidecar capped, the request as ranking counts it.
pub fn node_plan_reads_a_deployment_with_init_and_sidecar_containers() {
    let o = oomsim()
        .args(["node", "plan", "scenarios/manifests/web.yaml"])
        .args(["--capacity", "16Gi", "--usage", "web=1500Mi", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let web = pod(&j, "web");
    // app 1Gi + log-shipper 32Mi + the 64Mi sidecar, above migrate's 256Mi.
    assert_eq!(web["request_bytes"], 1120u64 << 20);
    let adj: Vec<(String, i64, bool)> = web["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["oom_score_adj"].as_i64().unwrap(),
                c["sidecar"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("migrate", 985, false),
        ("proxy", 997, true),
        ("app", 938, false),
        ("log-shipper", 999, false),
    ];
    let expected: Vec<(String, i64, bool)> = expected
        .iter()
        .map(|&(n, a, s)| (n.to_string(), a, s))
        .collect();
    assert_eq!(adj, expected);
    let db = pod(&j, "db");
    // system-cluster-critical is admitted at 2000000000, and is not node-critical.
    assert_eq!(
        (db["qos"].as_str(), db["priority"].as_i64()),
        (Some("Guaranteed"), Some(2_000_000_000))
    );
    assert_eq!(db["containers"][0]["oom_score_adj"], -997);
}

pub fn node_plan_reads_kubectl_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods.yaml");
    std::fs::write(
        &pods,
        "apiVersion: v1\nkind: List\nitems:\n\
         - kind: Pod\n  metadata: {name: api}\n  spec:\n    containers:\n    - resources: {requests: {memory: 2Gi}, limits: {memory: 4Gi}}\n\
         - kind: Pod\n  metadata: {name: cache}\n  spec:\n    containers:\n    - resources: {}\n\
         - kind: Pod\n  metadata: {name: db}\n  spec:\n    priority: 1000\n    containers:\n    - resources: {limits: {memory: 8Gi, cpu: '2'}}\n",
    )
    .unwrap();
    let o = oomsim()
        .args(["node", "plan"])
        .arg(&pods)
        .args([
            "--capacity",
            "16Gi",
            "--usage",
            "api=3Gi",
            "--usage",
            "cache=1Gi",
            "--usage",
            "db=8Gi",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = |n: &str| {
        let pod = crate::pod(&j, n).clone();
        let adj = pod["containers"][0]["oom_score_adj"].as_i64();
        (pod, adj)
    };
    let qos = |n: &str| (p(n).0["qos"].as_str().map(str::to_string), p(n).1);
    assert_eq!(qos("api"), (Some("Burstable".into()), Some(875)));
    assert_eq!(qos("cache"), (Some("BestEffort".into()), Some(1000)));
    assert_eq!(qos("db"), (Some("Guaranteed".into()), Some(-997)));
    let p = |n: &str| p(n).0;
    // api and cache are both 1Gi over their requests (equal priority): listed
    // order decides; db is within its request and goes last.
    assert_eq!(p("api")["eviction_rank"], 1);
    assert_eq!(p("cache")["eviction_rank"], 2);
    assert_eq!(p("db")["eviction_rank"], 3);
    let o = oomsim()
        .args(["node", "plan"])
        .arg(&pods)
        .args(["--capacity", "16Gi", "--usage", "nope=1Gi"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--usage: no pod named \"nope\""));
}
