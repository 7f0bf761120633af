//! Real runtimes giving up under caps of their own: the JVM's -Xmx, V8's
//! --max-old-space-size, Python's failed allocation. Kubernetes shows
//! `Error` (the kernel killed nothing); oomsim's cause says which runtime and
//! what kind, and that the flag, not the limit, is what helps.

use crate::harness::{run_cmd, verdict};

pub fn runtime_ooms_are_error_with_the_runtime_named() {
    let dir = tempfile::tempdir().unwrap();
    let hog = dir.path().join("Hog.java");
    std::fs::write(
        &hog,
        "import java.util.*;\npublic class Hog { public static void main(String[] a) { List<byte[]> l = new ArrayList<>(); while (true) l.add(new byte[1 << 20]); } }\n",
    )
    .unwrap();
    let hog = hog.to_string_lossy().into_owned();
    let cases: [(&[&str], i64, &str, &str); 3] = [
        (&["java", "-Xmx32m", &hog], 1, "java", "Java heap space"),
        (
            &[
                "node",
                "--max-old-space-size=32",
                "-e",
                "a=[];while(1)a.push(new Array(1e5).fill(1.5))",
            ],
            134,
            "node",
            "JavaScript heap out of memory",
        ),
        (
            &["python3", "-c", "bytearray(1 << 50)"],
            1,
            "python",
            "MemoryError",
        ),
    ];
    for (cmd, code, runtime, kind) in cases {
        // A limit well above the heap cap: the runtime gives up first.
        let (_, r) = run_cmd("512Mi", cmd);
        assert_eq!(
            verdict(&r),
            ("Error".to_string(), code, "runtime_oom".to_string()),
            "{cmd:?}"
        );
        let v = &r["pods"][0]["verdict"];
        assert_eq!(v["runtime_oom"]["runtime"], runtime, "{cmd:?}");
        assert_eq!(v["runtime_oom"]["kind"], kind, "{cmd:?}");
        assert_eq!(r["pods"][0]["oom_kill_count"], 0, "{cmd:?}");
    }
    // JDK 17's own wording of the direct-buffer cap ("Cannot reserve ... of
    // direct buffer memory"), from a real JVM.
    let mem = repo().join("workloads/java/Mem.java");
    let (_, r) = run_cmd(
        "512Mi",
        &[
            "java",
            "-Xmx32m",
            &mem.to_string_lossy(),
            "direct",
            "--size",
            "100Mi",
        ],
    );
    assert_eq!(
        r["pods"][0]["verdict"]["runtime_oom"]["kind"],
        "Direct buffer memory"
    );
    let (_, r) = run_cmd("512Mi", &["java", "-Xmx32m", &hog]);
    assert!(
        r["pods"][0]["verdict"]["message"]
            .as_str()
            .unwrap()
            .contains("raising limits.memory does not help a heap cap")
    );
}

/// The repository's root: the scenarios name `workloads/...` from there.
fn repo() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `{EXPR:UNIT}` is rendered for each trial from that trial's limit: a
/// program told (through `--env`) to hold 90% of its limit as a buffer needs
/// the limit to cover the interpreter besides it, which only larger limits do.
pub fn templates_follow_each_trial_limit() {
    let out = tempfile::tempdir().unwrap();
    let o = crate::oomsim()
        .args(["search", "--range", "48Mi..256Mi", "--repeat", "1", "-q", "--name", "ninety"])
        .args(["--env", "SIZE={limit*0.9:B}", "--out"])
        .arg(out.path())
        .args(["--", "python3", "-c"])
        .arg("import os\nb = bytearray(int(os.environ['SIZE']))\nfor i in range(0, len(b), 4096): b[i] = 1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", crate::text(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("search.json")).unwrap())
            .unwrap();
    let trials = s["trials"].as_array().unwrap();
    assert!(trials.len() >= 3, "{s}");
    let mut limits = std::collections::BTreeSet::new();
    for t in trials {
        let limit = t["limit_bytes"].as_u64().unwrap();
        let r = crate::report(
            std::path::Path::new(t["report"].as_str().unwrap())
                .parent()
                .unwrap(),
        );
        let flags = &r["pods"][0]["containers"][0]["flags"];
        assert_eq!(
            flags[0],
            format!("SIZE={}", limit * 9 / 10),
            "trial at {limit}"
        );
        limits.insert(limit);
    }
    assert!(limits.len() >= 3, "each trial its own limit: {limits:?}");
    // 90% held plus an interpreter: neither the bottom nor the top of the range.
    let min = s["min_safe_limit_bytes"].as_u64().expect("an answer");
    assert!((64 << 20..256 << 20).contains(&min), "{min}");
}

/// What each runtime reported of its own memory is in the report, named as
/// the runtime names it, and never more than the cgroup held.
pub fn runtime_split_is_reported_within_the_charge() {
    let java = [
        "java",
        "-Xmx128m",
        "workloads/java/Mem.java",
        "mixed",
        "--heap",
        "48Mi",
    ];
    let cases: [(&[&str], &str, usize, u64); 4] = [
        (
            &[
                &java[..],
                &[
                    "--direct",
                    "32Mi",
                    "--threads",
                    "10",
                    "--rate",
                    "64Mi",
                    "--hold",
                    "1s",
                ],
            ]
            .concat(),
            "direct buffers",
            1,
            32 << 20,
        ),
        (
            &[
                "node",
                "workloads/node/mem.js",
                "buffers",
                "--size",
                "48Mi",
                "--rate",
                "64Mi",
            ],
            "array buffers",
            1,
            40 << 20,
        ),
        (
            &[
                "workloads/go/mem.go",
                "heap",
                "--live",
                "48Mi",
                "--duration",
                "1s",
            ],
            "live heap",
            0,
            40 << 20,
        ),
        (
            &[
                "python3",
                "workloads/python/mem.py",
                "leak",
                "--size",
                "48Mi",
                "--rate",
                "64Mi",
                "--hold",
                "1s",
            ],
            "objects (malloc heap and arenas)",
            0,
            40 << 20,
        ),
    ];
    for (cmd, part, index, at_least) in cases {
        let out = tempfile::tempdir().unwrap();
        let o = crate::oomsim()
            .current_dir(repo())
            .args(["run", "--limit", "256Mi", "-q", "--out"])
            .arg(out.path())
            .arg("--")
            .args(cmd)
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd:?}: {}", crate::text(&o));
        let r = crate::report(out.path());
        crate::assert_cleaned(&r);
        let pod = &r["pods"][0];
        let m = &pod["containers"][0]["runtime_memory"];
        assert_eq!(m["parts"][index], part, "{cmd:?}: {m}");
        let peak = pod["peak_bytes"].as_u64().unwrap();
        let samples = m["samples"].as_array().expect("samples");
        let sums: Vec<u64> = samples
            .iter()
            .map(|s| {
                s["bytes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b.as_u64().unwrap())
                    .sum()
            })
            .collect();
        assert!(
            sums.iter().all(|&s| s <= peak),
            "{cmd:?}: {sums:?} over the peak {peak}"
        );
        let most = samples
            .iter()
            .map(|s| s["bytes"][index].as_u64().unwrap())
            .max()
            .unwrap();
        assert!(most >= at_least, "{cmd:?}: {part} reached only {most}");
    }
}

/// A runtime that is not installed is one line and exit 3, before anything
/// is created.
pub fn missing_runtime_is_one_line_and_exit_3() {
    let out = tempfile::tempdir().unwrap();
    let o = crate::oomsim()
        .env("PATH", "/nonexistent")
        .args(["run", "--limit", "64Mi", "--out"])
        .arg(out.path())
        .args(["--", "node", "-e", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("oomsim: node is not installed"), "{err}");
    assert!(!out.path().join("report.json").exists());
}

/// A user's own image, run with podman inside oomsim's cgroup: the kernel's
/// kill is oomsim's verdict, the templated block size follows the limit,
/// and nothing is left in any hierarchy or in podman.
pub fn image_runs_in_oomsims_cgroup() {
    let built = std::process::Command::new(repo().join("workloads/image/build.sh"))
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", crate::text(&built));
    let out = tempfile::tempdir().unwrap();
    let o = crate::oomsim()
        .arg("run")
        .arg(repo().join("scenarios/image-dd.yaml"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", crate::text(&o));
    let r = crate::report(out.path());
    crate::assert_cleaned(&r);
    let (hog, quarter) = (&r["pods"][0], &r["pods"][1]);
    assert_eq!(
        verdict(&r),
        ("OOMKilled".into(), 137, "cgroup_oom_kill".into())
    );
    assert_eq!(hog["containers"][0]["oom_kill_count"], 1);
    assert_eq!(quarter["verdict"]["reason"], "Completed");
    assert_eq!(quarter["containers"][0]["flags"][0], "bs=16M");
    let run_id = r["run_id"].as_str().unwrap();
    for m in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let left = m.path().join("oomsim").join(run_id);
        assert!(!left.exists(), "{} left behind", left.display());
    }
    let ps = std::process::Command::new("podman")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains("oomsim-"),
        "a container left behind"
    );
}

/// A CPU limit is the kubelet's CFS quota in the container's cgroup, and the
/// JVM reads it: with 2Gi and the host's 2 CPUs it picks G1; limited to one
/// CPU it falls back to Serial.
pub fn cpu_limit_is_the_cfs_quota_the_jvm_reads() {
    let dir = tempfile::tempdir().unwrap();
    let pod = |name: &str, cpu: &str| {
        format!(
            "  - name: {name}\n    resources:\n      limits: {{memory: 2Gi{cpu}}}\n    workload:\n      kind: command\n      command: [java, -Xlog:gc, -version]\n"
        )
    };
    let yaml = format!(
        "name: cpu-gc\npods:\n{}{}",
        pod("one-cpu", ", cpu: \"1\""),
        pod("host-cpus", "")
    );
    let (code, out, r) = crate::run_yaml(dir.path(), &yaml);
    assert_eq!(code, Some(0), "{out}");
    let log = |name: &str| {
        std::fs::read_to_string(dir.path().join(format!("out/logs/{name}.log"))).unwrap()
    };
    assert!(
        log("one-cpu").contains("Using Serial"),
        "{}",
        log("one-cpu")
    );
    if std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2) {
        assert!(
            log("host-cpus").contains("Using G1"),
            "{}",
            log("host-cpus")
        );
    }
    let run_id = r["run_id"].as_str().unwrap();
    for m in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let left = m.path().join("oomsim").join(run_id);
        assert!(!left.exists(), "{} left behind", left.display());
    }
}
