//! GPU runs: the sim device's contract (capacity, CUDA's out-of-memory text,
//! accounting shared by pods), the CUDA OOM verdict, model loading under real
//! cgroups, and the real CUDA backend where libcuda.so is present.

use std::path::Path;

use crate::{assert_cleaned, oomsim, pod, report, run_yaml, text};

fn ledgers() -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("oomsim-") && n.ends_with("-gpu"))
                .collect()
        })
        .unwrap_or_default()
}

pub fn two_pods_share_one_sim_device_and_one_gets_cuda_oom() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, r) = run_yaml(
        dir.path(),
        "name: share\ngpu: {backend: sim, memory: 1Gi}\npods:\n\
         - name: a\n  resources: {limits: {memory: 256Mi}}\n  workload: {kind: model-load, size: 600Mi, source: synthetic, strategy: chunked, chunk: 8Mi, hold: 5s}\n\
         - name: b\n  resources: {limits: {memory: 256Mi}}\n  phases:\n  - {kind: steady, size: 1Mi, duration: 4s}\n  - {kind: model-load, size: 600Mi, source: synthetic, strategy: chunked, chunk: 8Mi, hold: 300ms}\n",
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(r["gpu"]["backend"], "sim");
    assert_eq!(r["gpu"]["total_bytes"], 1u64 << 30);
    let (a, b) = (pod(&r, "a"), pod(&r, "b"));
    let reasons = [
        a["verdict"]["reason"].as_str().unwrap(),
        b["verdict"]["reason"].as_str().unwrap(),
    ];
    // b starts loading 4 s in, while a holds its 600Mi: b runs out.
    let (winner, loser) = match reasons {
        ["Completed", "Error"] => (a, b),
        other => panic!("600Mi + 600Mi on a 1Gi device: b must fail, got {other:?}\n{out}"),
    };
    let v = &loser["verdict"];
    assert_eq!(
        (v["exit_code"].as_i64(), v["cause"].as_str()),
        (Some(1), Some("cuda_oom"))
    );
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.starts_with("CUDA out of memory. Tried to allocate 8.00 MiB. GPU 0 has a total capacity of 1.00 GiB of which"),
        "{msg}"
    );
    assert_eq!(
        loser["oom_kill_count"], 0,
        "a CUDA OOM is not a kernel OOM kill"
    );
    let log = std::fs::read_to_string(loser["log"].as_str().unwrap()).unwrap();
    assert!(
        log.contains("torch.OutOfMemoryError: CUDA out of memory."),
        "{log}"
    );
    // The failing allocation saw the other pod's bytes: less than 1Gi - its own was free.
    let ev = loser["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "cuda_oom")
        .unwrap();
    assert!(ev["free_bytes"].as_u64().unwrap() < 8 << 20);
    assert_eq!(winner["device_peak_bytes"], 600u64 << 20);
    assert!(
        loser["samples"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["device_bytes"].as_u64() > Some(0)),
        "the device samples that show the loser's bytes are kept"
    );
    // Device bytes were never host bytes.
    assert!(winner["peak_bytes"].as_u64().unwrap() < 64 << 20);
    assert!(
        !ledgers()
            .iter()
            .any(|l| l.contains(r["run_id"].as_str().unwrap())),
        "ledger left behind"
    );
}

fn load_yaml(file: &Path, strategy: &str, limit: &str) -> String {
    format!(
        "name: load\ngpu: {{backend: sim, memory: 1Gi}}\npods:\n\
         - name: app\n  resources: {{limits: {{memory: {limit}}}}}\n  workload: {{kind: model-load, size: 256Mi, strategy: {strategy}, overhead: 16Mi, file: {}}}\n",
        file.display()
    )
}

pub fn read_then_copy_256mi_dies_in_200mi_completes_in_400mi_and_mmap_fits_200mi() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("weights.bin");
    let run = |strategy: &str, limit: &str| {
        let d = dir.path().join(format!("{strategy}-{limit}"));
        std::fs::create_dir(&d).unwrap();
        let (_, out, r) = run_yaml(&d, &load_yaml(&weights, strategy, limit));
        (out, r["pods"][0].clone())
    };
    let (out, p) = run("read-then-copy", "200Mi");
    assert_eq!(p["verdict"]["reason"], "OOMKilled", "{out}");
    assert_eq!(p["verdict"]["cause"], "cgroup_oom_kill");
    assert!(
        p["dual_residency"].is_null(),
        "killed while reading, before any copy"
    );
    assert_eq!(
        std::fs::metadata(&weights).unwrap().len(),
        256 << 20,
        "weights file created at size"
    );

    let (out, p) = run("read-then-copy", "400Mi");
    assert_eq!(p["verdict"]["reason"], "Completed", "{out}");
    let anon = p["anon_peak_bytes"].as_u64().unwrap();
    assert!(
        anon >= 256 << 20,
        "the whole host copy is anonymous: anon peak {anon}"
    );
    assert_eq!(p["device_peak_bytes"], 256u64 << 20);
    let d = &p["dual_residency"];
    assert_eq!(d["host_bytes"], 256u64 << 20);
    assert_eq!(d["page_cache"], false);
    assert!(d["end_s"].as_f64() >= d["start_s"].as_f64());

    let (out, p) = run("mmap", "200Mi");
    assert_eq!(p["verdict"]["reason"], "Completed", "{out}");
    assert_eq!(p["oom_kill_count"], 0);
    assert!(
        p["anon_peak_bytes"].as_u64().unwrap() < 64 << 20,
        "mmap holds no anonymous copy"
    );
    assert!(
        p["file_peak_bytes"].as_u64().unwrap() > 64 << 20,
        "page cache was charged to the pod"
    );
    assert_eq!(p["dual_residency"]["page_cache"], true);
}

pub fn cuda_backend_runs_where_libcuda_is_present_and_refuses_clearly_where_not() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(
        &file,
        "name: cuda\ngpu: {backend: cuda}\npods:\n- name: app\n  resources: {limits: {memory: 512Mi}}\n  workload: {kind: model-load, size: 64Mi, source: synthetic, chunk: 16Mi}\n  expect: {reason: Completed}\n",
    )
    .unwrap();
    let o = oomsim()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let has_cuda = [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/lib64/libcuda.so.1",
        "/usr/local/nvidia/lib64/libcuda.so.1",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    if !has_cuda {
        eprintln!("\n!!! cuda_backend: libcuda.so is not present; checked only the refusal !!!\n");
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("gpu.backend: cuda was asked for, but"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            !dir.path().join("out/report.json").exists(),
            "nothing half-written"
        );
        // `auto` falls back to the sim device and says why, in the report
        // and in the text.
        let yaml = std::fs::read_to_string(&file)
            .unwrap()
            .replace("backend: cuda", "backend: auto");
        let (code, out, r) = run_yaml(dir.path(), &yaml);
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(r["gpu"]["backend"], "sim");
        assert_eq!(
            r["gpu"]["cuda_unavailable"],
            "libcuda.so is not present on this host"
        );
        assert!(out.contains("gpu.backend auto found no CUDA"), "{out}");
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&dir.path().join("out"));
    assert_cleaned(&r);
    assert_eq!(r["gpu"]["backend"], "cuda");
    assert_eq!(r["pods"][0]["device_peak_bytes"], 64u64 << 20);
}
