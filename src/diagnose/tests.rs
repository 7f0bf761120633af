//! The classifier on the traps the seeds name, and the corpus of real
//! evidence under tests/diagnose/ (each sample cited in its index).

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

impl Class {
    const ALL: [Class; 10] = [
        Class::CgroupOom,
        Class::NodeEviction,
        Class::NodeOom,
        Class::CudaOom,
        Class::VllmKvStartup,
        Class::RuntimeOom,
        Class::ExternalSigkill,
        Class::Sigterm,
        Class::AppError,
        Class::Unknown,
    ];

    fn parse(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

fn one(text: &str) -> Diagnosis {
    diagnose(&[("t.txt".into(), text.into())])
}

#[test]
fn exit_137_with_a_liveness_kill_is_not_memory() {
    let d = one(
        "    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    137\nEvents:\n  Warning  Unhealthy  1m (x3 over 2m)  kubelet  Liveness probe failed: Get \"http://10.0.0.1:8080/healthz\": context deadline exceeded\n  Normal   Killing    1m               kubelet  Container app failed liveness probe, will be restarted",
    );
    assert_eq!(d.class, Class::ExternalSigkill);
    assert_eq!(d.confidence, Confidence::High);
    assert!(d.fix.contains("liveness probe"), "{}", d.fix);
    assert!(
        d.ruled_out[0].starts_with("cgroup_oom"),
        "{:?}",
        d.ruled_out
    );
}

#[test]
fn oomkilled_with_exit_0_is_still_a_memory_kill() {
    let d = one(
        "    State:          Terminated\n      Reason:       OOMKilled\n      Exit Code:    0\n    Limits:\n      memory:  1Gi\n",
    );
    assert_eq!(d.class, Class::CgroupOom);
    assert_eq!(d.facts.exit_code, Some(0));
    assert_eq!(d.facts.limit_bytes, Some(1 << 30));
    assert!(
        d.ruled_out
            .iter()
            .any(|r| r.contains("exit code 0 does not clear it"))
    );
    assert!(d.fix.contains("Start above 1280Mi"), "{}", d.fix);
}

#[test]
fn exit_137_alone_is_unknown_and_names_the_command() {
    let d = one("command terminated with exit code 137");
    assert_eq!((d.class, d.confidence), (Class::Unknown, Confidence::Low));
    assert!(
        d.decide
            .as_deref()
            .unwrap()
            .starts_with("kubectl describe pod")
    );
    let d =
        one("    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    137\n");
    assert_eq!(d.class, Class::Unknown);
    assert!(
        d.decide.as_deref().unwrap().starts_with("journalctl -k"),
        "{:?}",
        d.decide
    );
}

#[test]
fn a_node_wide_kill_is_not_the_limit_even_with_oomkilled() {
    let d = diagnose(&[
        ("describe.txt".into(), "      Reason:       OOMKilled\n      Exit Code:    137\n".into()),
        ("dmesg.txt".into(), "[ 99.1] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/kubepods/pod1/c1,task=java,pid=77,uid=0\n[ 99.1] Out of memory: Killed process 77 (java) total-vm:4000000kB, anon-rss:3000000kB, file-rss:0kB, shmem-rss:0kB".into()),
    ]);
    assert_eq!(d.class, Class::NodeOom);
    assert_eq!(d.facts.victim.as_deref(), Some("java (pid 77)"));
    assert!(
        d.evidence
            .iter()
            .any(|e| e.file == "dmesg.txt" && e.line == 2)
    );
    assert!(!d.fix.contains("Raise limits.memory"));
}

#[test]
fn vllm_direction_follows_the_evidence() {
    let down = one(
        "ValueError: Free memory on device (13.2/79.1 GiB) on startup is less than desired GPU memory utilization (0.9, 71.19 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.",
    );
    assert_eq!(down.class, Class::VllmKvStartup);
    assert!(
        down.fix
            .starts_with("Lower --gpu-memory-utilization (now 0.9) to 0.15"),
        "{}",
        down.fix
    );
    let up = one(
        "INFO 01-01 00:00:00 [llm_engine.py:1] Initializing an LLM engine with config: gpu_memory_utilization=0.8\nValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
    );
    assert!(
        up.fix
            .starts_with("Raise --gpu-memory-utilization (now 0.8)"),
        "{}",
        up.fix
    );
    let len = one(
        "ValueError: The model's max seq len (32768) is larger than the maximum number of tokens that can be stored in KV cache (27856). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
    );
    assert!(
        len.fix.starts_with("Set --max-model-len 27856"),
        "{}",
        len.fix
    );
}

#[test]
fn an_eviction_never_says_raise_the_limit() {
    let d = one(
        "Status:           Failed\nReason:           Evicted\nMessage:          The node was low on resource: memory. Threshold quantity: 100Mi, available: 91436Ki. Container app was using 1587604Ki, request is 512Mi, has larger consumption of memory.",
    );
    assert_eq!(d.class, Class::NodeEviction);
    assert_eq!(d.facts.request_bytes, Some(512 << 20));
    assert!(d.fix.starts_with("Do not raise the limit"));
    let disk = one(
        "Message: The node was low on resource: ephemeral-storage. Container app was using 2Gi, which exceeds its request of 0.",
    );
    assert_eq!(
        disk.facts.eviction_resource.as_deref(),
        Some("ephemeral-storage")
    );
    assert!(disk.fix.starts_with("Not the pod's memory"));
}

#[test]
fn nothing_is_unknown() {
    let d = one("");
    assert_eq!(d.class, Class::Unknown);
    assert!(d.evidence.is_empty());
    let d =
        one("\u{0}\u{1b}[[[[ {{{{ ]]]] Exit Code: 99999999999999999999 [ 1.] oom-kill:constraint=");
    assert_eq!(d.class, Class::Unknown, "{:?}", d.evidence);
    // Quantities at the edge of what parses: no overflow on the way to a scenario.
    let huge = one(
        "      Reason:       OOMKilled\n    Limits:\n      memory:  8Ei\nmemory: usage 9007199254740988kB, limit 9007199254740988kB, failcnt 0",
    );
    let e = emit::scenario(&huge, Path::new("/tmp/x.yaml")).unwrap();
    assert!(e.scenario.contains("kind: leak"));
}

/// One sample of the corpus: its file, its class, its runtime, its source.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    file: String,
    class: String,
    runtime: Option<String>,
    source: String,
    shape: String,
    note: String,
}

/// Every sample of the corpus is read into its class; the table of
/// accuracy per class is printed (`cargo test corpus -- --nocapture`).
#[test]
fn corpus_accuracy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnose");
    let index = std::fs::read_to_string(root.join("corpus.yaml")).unwrap();
    let cases: Vec<Case> = serde_saphyr::from_str(&index).unwrap();
    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut wrong = Vec::new();
    for c in &cases {
        assert!(c.source.starts_with("https://"), "{}: a source", c.file);
        assert!(!c.shape.is_empty() && !c.note.is_empty());
        let want = Class::parse(&c.class).unwrap_or_else(|| panic!("{}: {}", c.file, c.class));
        let text = std::fs::read_to_string(root.join("corpus").join(&c.file))
            .unwrap_or_else(|e| panic!("{}: {e}", c.file));
        let d = diagnose(&[(c.file.clone(), text)]);
        let e = per.entry(want.as_str()).or_default();
        e.1 += 1;
        let runtime_ok = c.runtime.is_none()
            || d.runtime.is_none()
            || d.runtime.map(|r| r.name()) == c.runtime.as_deref();
        if d.class == want && runtime_ok {
            e.0 += 1;
        } else {
            wrong.push(format!(
                "{}: {} (want {})",
                c.file,
                d.class.as_str(),
                c.class
            ));
        }
    }
    let listed: std::collections::HashSet<&str> = cases.iter().map(|c| c.file.as_str()).collect();
    for class in Class::ALL {
        let dir = root.join("corpus").join(class.as_str());
        let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        let (_, n) = per.get(class.as_str()).copied().unwrap_or_default();
        assert!(n >= 5, "{}: {n} samples, at least 5 wanted", class.as_str());
        assert_eq!(files, n, "{}: every file is in corpus.yaml", class.as_str());
    }
    assert_eq!(listed.len(), cases.len(), "a file listed twice");
    println!("{:<18} {:>7} {:>8}", "class", "samples", "correct");
    for (class, (ok, n)) in &per {
        println!("{class:<18} {n:>7} {ok:>8}");
    }
    let total: usize = per.values().map(|v| v.1).sum();
    let ok: usize = per.values().map(|v| v.0).sum();
    println!("{:<18} {total:>7} {ok:>8}", "all");
    assert!(wrong.is_empty(), "misread:\n{}", wrong.join("\n"));
}
