//! Scenario files checked: valid ones into plans, bad ones into one line
//! naming the file, the line and the field.

use super::*;
use crate::k8s::Qos;
use crate::plan::{Leak, LoadStrategy, Pages, Phase, Plan};

fn check(yaml: &str) -> Result<Plan, String> {
    parse(yaml, "t.yaml", false)
        .map(|l| l.plan)
        .map_err(|e| e.to_string())
}

const LEAK: &str = "name: leak\npods:\n  - name: app\n    resources:\n      limits: {memory: 64Mi}\n    workload:\n      kind: leak\n      rate: 32Mi/s\n    expect: {reason: OOMKilled, within: 30s}\n";

#[test]
fn valid_leak() {
    let plan = check(LEAK).unwrap();
    let pod = &plan.pods[0];
    assert_eq!(pod.limit_bytes(), Some(64 << 20));
    assert_eq!(
        pod.request_bytes(),
        Some(64 << 20),
        "request defaults to the limit"
    );
    assert_eq!(pod.qos, Qos::Burstable, "no CPU limit: not Guaranteed");
    assert_eq!(
        pod.main().workload.phases[0],
        Phase::Leak(Leak {
            baseline_bytes: 0,
            rate_bytes_per_s: Some(32 << 20),
            cap_bytes: None,
            duration_s: None
        })
    );
    assert_eq!(pod.expect.as_ref().unwrap().within_s, Some(30.0));
}

#[test]
fn guaranteed_needs_cpu_and_memory_limits() {
    let g = "name: g\npods:\n  - name: a\n    resources:\n      limits: {memory: 1Gi, cpu: 500m}\n    workload: {kind: steady, size: 1Mi, duration: 1s}\n";
    assert_eq!(check(g).unwrap().pods[0].qos, Qos::Guaranteed);
}

#[test]
fn errors_name_line_and_field() {
    let bad_q = LEAK.replace("64Mi", "12Qi");
    let e = check(&bad_q).unwrap_err();
    assert!(
        e.starts_with("t.yaml:5: pods[0].resources.limits.memory:"),
        "{e}"
    );
    assert!(e.contains("\"Qi\""), "{e}");

    let e = check(&LEAK.replace("64Mi", "-5Mi")).unwrap_err();
    assert!(e.contains("negative") && e.contains("limits.memory"), "{e}");

    let e = check(&LEAK.replace("64Mi", "0")).unwrap_err();
    assert!(e.contains("zero") && e.contains(":5:"), "{e}");

    let e = check(&LEAK.replace("64Mi", "99999Ei")).unwrap_err();
    assert!(e.contains("too large"), "{e}");

    let e = check(&LEAK.replace("rate: 32Mi/s", "rate: 32Mi/s\n      size: 4Mi")).unwrap_err();
    assert!(
        e.starts_with("t.yaml:9: pods[0].workload.size: not a field of a leak"),
        "{e}"
    );

    let e = check(&LEAK.replace("kind: leak", "kind: lek")).unwrap_err();
    assert!(
        e.contains("pods[0].workload.kind") && e.contains("\"lek\""),
        "{e}"
    );

    let e = check(&LEAK.replace("    expect", "    colour: red\n    expect")).unwrap_err();
    assert!(
        e.starts_with("t.yaml:") && e.contains("unknown field `colour`"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");

    let e = check(&LEAK.replace("  - name", "\t- name")).unwrap_err();
    assert!(e.contains("tab"), "{e}");
    assert_eq!(e.lines().count(), 1);

    let e = check("  \n").unwrap_err();
    assert!(e.contains("empty"), "{e}");

    let e = check(&LEAK.replace("OOMKilled", "OOMKiled")).unwrap_err();
    assert!(e.contains("expect.reason"), "{e}");

    let e = check(&LEAK.replace(
        "limits: {memory: 64Mi}",
        "limits: {memory: 64Mi}\n      requests: {memory: 1Gi}",
    ))
    .unwrap_err();
    assert!(
        e.contains("requests.memory") && e.contains("less than or equal"),
        "{e}"
    );
}

#[test]
fn vars_formulas_and_search() {
    let y = format!(
        "{LEAK}vars: {{model: 14Gi}}\nformulas: {{mine: \"model * 1.5 + 4Gi\"}}\nsearch: {{pod: app, range: 64Mi..1Gi, repeat: 2}}\n"
    );
    let plan = check(&y).unwrap();
    assert_eq!(
        plan.vars,
        vec![("model".to_string(), 14.0 * (1u64 << 30) as f64)]
    );
    assert_eq!(plan.formulas[0].0, "mine");
    let s = plan.search.unwrap();
    assert_eq!(
        (s.pod.as_str(), s.range, s.repeat),
        ("app", Some((64 << 20, 1 << 30)), 2)
    );
    let e = check(&y.replace("model * 1.5", "modle * 1.5")).unwrap_err();
    assert!(
        e.contains(":11: formulas.mine: unknown name \"modle\""),
        "{e}"
    );
    let e = check(&y.replace("pod: app", "pod: ap")).unwrap_err();
    assert!(e.contains("search.pod"), "{e}");
    let e = check(&y.replace("64Mi..1Gi", "1Gi..64Mi")).unwrap_err();
    assert!(e.contains("search.range"), "{e}");
}

#[test]
fn burst_and_phases() {
    let y = "name: b\npods:\n  - name: a\n    pages: huge\n    phases:\n      - {kind: steady, size: 8Mi, duration: 100ms}\n      - {kind: burst, baseline: 8Mi, spike: 32Mi, period: 1s, hold: 200ms, count: 3}\n";
    let plan = check(y).unwrap();
    assert_eq!(plan.pods[0].main().workload.pages, Pages::Huge);
    assert_eq!(plan.pods[0].qos, Qos::BestEffort);
    assert_eq!(plan.pods[0].main().workload.phases.len(), 2);
    let e = check(&y.replace("hold: 200ms", "hold: 2s")).unwrap_err();
    assert!(e.contains("phases[1].hold"), "{e}");
    let e = check(&y.replace(", count: 3", "")).unwrap_err();
    assert!(e.contains("count or duration"), "{e}");
}

#[test]
fn a_fraction_of_a_byte_is_warned_about_or_refused_when_strict() {
    let y = LEAK.replace("64Mi", "512m");
    let loaded = parse(&y, "t.yaml", false).unwrap();
    assert_eq!(loaded.plan.pods[0].limit_bytes(), Some(1));
    assert_eq!(loaded.warnings.len(), 1);
    let w = &loaded.warnings[0];
    assert!(
        w.starts_with("t.yaml:5: pods[0].resources.limits.memory: warning:") && w.contains("512M"),
        "{w}"
    );
    let e = parse(&y, "t.yaml", true).err().unwrap().to_string();
    assert!(
        e.starts_with("t.yaml:5: pods[0].resources.limits.memory:"),
        "{e}"
    );
    assert!(parse(LEAK, "t.yaml", false).unwrap().warnings.is_empty());
}

#[test]
fn the_container_is_named_after_the_pod_or_as_written() {
    assert_eq!(check(LEAK).unwrap().pods[0].main().name, "app");
    let y = LEAK.replace("  - name: app\n", "  - name: app\n    container: nginx\n");
    assert_eq!(check(&y).unwrap().pods[0].main().name, "nginx");
}

#[test]
fn a_kv_cache_model_with_zero_kv_heads_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.json");
    std::fs::write(
            &model,
            r#"{"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":0,"hidden_size":256,"vocab_size":1000,"torch_dtype":"bfloat16"}"#,
        )
        .unwrap();
    let y = format!(
        "name: x\ngpu: {{backend: sim, memory: 1Gi}}\npods:\n- name: a\n  workload: {{kind: kv-cache, model: {}, mode: paged, max_model_len: 2048}}\n",
        model.display()
    );
    let e = check(&y).unwrap_err();
    assert!(
        e.contains("pods[0].workload.model") && e.contains("num_key_value_heads is 0"),
        "{e}"
    );
}

#[test]
fn gpu_node_and_new_workloads_name_their_field() {
    let e = check("name: x\npods:\n- name: a\n  workload: {kind: model-load, size: 1Gi}\n")
        .unwrap_err();
    assert!(
        e.contains("pods[0].workload.kind: a model-load workload needs a gpu: block"),
        "{e}"
    );
    let e = check("name: x\ngpu: {backend: sim}\npods:\n- name: a\n  workload: {kind: model-load, size: 1Gi, source: synthetic, strategy: mmap}\n").unwrap_err();
    assert!(e.contains("source: the mmap strategy maps a file"), "{e}");
    let e = check("name: x\ngpu: {backend: rocm}\npods:\n- name: a\n  workload: {kind: steady, size: 1Mi, duration: 1s}\n").unwrap_err();
    assert!(e.contains("gpu.backend: \"rocm\" is not a backend"), "{e}");
    let e = check("name: x\nnode: {capacity: 1Gi, evictionHard: {memory.available: 150%}}\npods:\n- name: a\n  workload: {kind: steady, size: 1Mi, duration: 1s}\n").unwrap_err();
    assert!(e.contains("node.evictionHard.memory.available"), "{e}");
    let e = check("name: x\nnode: {capacity: 1Gi, evictionSoft: {memory.available: 200Mi}}\npods:\n- name: a\n  workload: {kind: steady, size: 1Mi, duration: 1s}\n").unwrap_err();
    assert!(e.contains("needs a grace period"), "{e}");
    let p = check("name: x\ngpu: {backend: sim, memory: 2Gi}\npods:\n- name: a\n  workload: {kind: model-load, size: 1Gi, strategy: chunked, chunk: 64Mi, pinned: true, source: synthetic}\n").unwrap();
    assert_eq!(p.gpu.as_ref().unwrap().memory_bytes, 2 << 30);
    let Phase::ModelLoad(m) = &p.pods[0].main().workload.phases[0] else {
        panic!("a model-load phase");
    };
    assert_eq!(
        (m.strategy, m.chunk_bytes, m.pinned, m.file.is_none()),
        (LoadStrategy::Chunked, 64 << 20, true, true)
    );
    let p = check("name: x\nnode: {capacity: 6Gi}\npods:\n- name: a\n  workload: {kind: steady, size: 1Mi, duration: 1s}\n").unwrap();
    let n = p.node.unwrap();
    assert_eq!(
        (n.capacity_bytes, n.hard, n.housekeeping_s),
        (6 << 30, crate::k8s::Threshold::Bytes(100 << 20), 10.0)
    );
    assert_eq!(n.allocatable_bytes(), 6 << 30);
    let node = |reserved: &str| {
        check(&format!(
            "name: x\nnode: {{capacity: 1Gi, {reserved}}}\npods:\n- name: a\n  workload: {{kind: steady, size: 1Mi, duration: 1s}}\n"
        ))
    };
    let p = node("kubeReserved: {memory: 100Mi, cpu: 1}, systemReserved: {memory: 28Mi}").unwrap();
    assert_eq!(p.node.unwrap().allocatable_bytes(), 896 << 20);
    let e = node("kubeReserved: {memory: 1Gi}").unwrap_err();
    assert!(
        e.contains(
            "node.capacity: kubeReserved + systemReserved memory (1Gi) leaves nothing allocatable"
        ),
        "{e}"
    );
    let e = node("systemReserved: {gpu: 1}").unwrap_err();
    assert!(
        e.contains("node.systemReserved.gpu: not a reservable resource"),
        "{e}"
    );
}

/// A listed pod: init, sidecar and regular containers in order, the pod
/// cgroup's limit as the kubelet aggregates it, pod-level resources
/// defaulted as the API server does, and Never unless the pod says otherwise.
#[test]
fn listed_containers_become_a_pod_as_the_kubelet_sees_it() {
    use crate::k8s::{ContainerKind, RestartPolicy};
    let yaml = "name: p\npods:\n  - name: web\n    initContainers:\n      - name: setup\n        resources: {limits: {memory: 300Mi}}\n        workload: {kind: steady, size: 1Mi, duration: 1s}\n      - name: proxy\n        restartPolicy: Always\n        resources: {limits: {memory: 64Mi}}\n        workload: {kind: steady, size: 1Mi, duration: 1s}\n    containers:\n      - name: app\n        resources: {requests: {memory: 128Mi}, limits: {memory: 256Mi}}\n        workload: {kind: steady, size: 1Mi, duration: 1s}\n";
    let plan = check(yaml).unwrap();
    let pod = &plan.pods[0];
    let kinds: Vec<_> = pod.containers.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ContainerKind::Init,
            ContainerKind::Sidecar,
            ContainerKind::Regular
        ]
    );
    assert_eq!(pod.main().name, "app");
    assert_eq!(pod.restart.policy, RestartPolicy::Never);
    // max(app 256 + proxy 64, setup 300) = 320Mi.
    assert_eq!(pod.limit_bytes(), Some(320 << 20));
    // max(app 128 + proxy 64, setup 300 + 0) = 300Mi.
    assert_eq!(pod.request_bytes(), Some(300 << 20));
    assert_eq!(pod.qos, Qos::Burstable);
    // A pod-level limit alone: its request is the containers' aggregate.
    let with_pod = yaml.replace(
        "    initContainers:",
        "    resources: {limits: {memory: 1Gi}}\n    restartPolicy: OnFailure\n    initContainers:",
    );
    let plan = check(&with_pod).unwrap();
    let pod = &plan.pods[0];
    let r = pod.resources.unwrap();
    assert_eq!(
        (r.memory.request, r.memory.limit),
        (Some(300 << 20), Some(1 << 30))
    );
    assert_eq!(pod.limit_bytes(), Some(1 << 30));
    assert_eq!(pod.searched_limit(), Some(1 << 30));
    assert_eq!(pod.restart.policy, RestartPolicy::OnFailure);
}

#[test]
fn command_templates_and_runtime_are_checked_at_load() {
    let yaml = |arg: &str, env: &str, runtime: &str| {
        format!(
            "name: t\npods:\n  - name: app\n    resources: {{limits: {{memory: 256Mi}}}}\n    workload:\n      kind: command\n      runtime: {runtime}\n      command: [sh, -c, 'exec \"$@\"', x, \"{arg}\"]\n      env:\n        GOMEMLIMIT: \"{env}\"\n"
        )
    };
    let plan = check(&yaml("-Xmx{limit*0.7:MiB}m", "{limit*0.9:MiB}MiB", "java")).unwrap();
    let Phase::Command(p) = &plan.pods[0].containers[0].workload.phases[0] else {
        panic!("not a command");
    };
    assert_eq!(
        p.runtime,
        Some(crate::runtime::Runtime::Java),
        "the hint beats sh"
    );
    assert_eq!(
        p.argv[4], "-Xmx{limit*0.7:MiB}m",
        "rendered per run, not at load"
    );
    for (y, says) in [
        (
            yaml("-Xmx{limit*:MiB}m", "1", "java"),
            "t.yaml:8: pods[0].workload.command[4]: {limit*:MiB}: the expression ends too early",
        ),
        (
            yaml("x", "{limit*0.9:Mib}MiB", "java"),
            "t.yaml:10: pods[0].workload.env.GOMEMLIMIT: {limit*0.9:Mib}: unknown unit \"Mib\"",
        ),
        (
            yaml("x", "1", "ruby"),
            "t.yaml:7: pods[0].workload.runtime: \"ruby\" is not a runtime (one of java, node, go, python)",
        ),
    ] {
        let e = check(&y).unwrap_err();
        assert!(e.starts_with(says), "{e}");
    }
}
