//! vLLM: the planner's arithmetic through the CLI, and kv-cache runs on the
//! sim device failing (dynamic) where the plan says and surviving (paged).

use std::path::Path;

use crate::{assert_cleaned, oomsim, report, text};

fn plan_json(args: &[&str]) -> serde_json::Value {
    let o = oomsim()
        .args([
            "vllm",
            "plan",
            "--model",
            "scenarios/models/llama-3-8b.json",
            "--json",
        ])
        .args(args)
        .output()
        .unwrap();
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Exit 1 exactly when vLLM would refuse to start.
    let expected = if p["starts"] == true { 0 } else { 1 };
    assert_eq!(o.status.code(), Some(expected), "{}", text(&o));
    p
}

pub fn plan_json_has_the_budget_and_the_start_check() {
    let p = plan_json(&[
        "--gpu-memory",
        "80Gi",
        "--activation",
        "2Gi",
        "--max-model-len",
        "8192",
    ]);
    assert_eq!(p["kv_bytes_per_token"], 131072);
    assert_eq!(p["kv_tokens"], 442704);
    assert_eq!(p["max_concurrent_at_max_len"], 54);
    assert_eq!(p["starts"], true);
    assert!(p["error"].is_null());
    assert!(p["kv_budget_bytes"].as_i64().unwrap() > 0);
    let p = plan_json(&["--gpu-memory", "24Gi", "--max-model-len", "131072"]);
    assert_eq!(p["starts"], false);
    assert!(
        p["error"]
            .as_str()
            .unwrap()
            .contains("larger than the maximum number of tokens that can be stored in KV cache")
    );
    assert!(p["largest_max_model_len"].as_u64().unwrap() < 131072);
    let o = oomsim()
        .args([
            "vllm",
            "plan",
            "--model",
            "scenarios/models/llama-3-8b.json",
            "--gpu-memory",
            "80Gi",
            "--gpu-memory-utilization",
            "1.5",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--gpu-memory-utilization: 1.5 is outside (0, 1]")
    );
}

fn run(scenario: &Path, out: &Path) -> serde_json::Value {
    let o = oomsim()
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(out);
    assert_cleaned(&r);
    r
}

fn event<'a>(pod: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    pod["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event"))
}

pub fn dynamic_cache_dies_where_the_plan_says_and_paged_preempts() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        Path::new("scenarios/vllm-dynamic-oom.yaml"),
        &dir.path().join("d"),
    );
    let pod = &r["pods"][0];
    assert_eq!(pod["verdict"]["cause"], "cuda_oom");
    assert_eq!(pod["verdict"]["reason"], "Error");
    let oom = event(pod, "kv_oom");
    // Dynamic blocks take every free byte: the plan at utilization 1.0 predicts the capacity.
    let p = plan_json(&[
        "--gpu-memory",
        "24Gi",
        "--gpu-memory-utilization",
        "1.0",
        "--max-model-len",
        "8192",
    ]);
    let predicted = p["kv_tokens"].as_i64().unwrap();
    let allocated = oom["allocated_tokens"].as_i64().unwrap();
    assert!(
        (allocated - predicted).abs() <= 16,
        "allocated {allocated}, predicted {predicted}"
    );
    let in_flight = oom["tokens_in_flight"].as_i64().unwrap();
    assert!(
        in_flight <= allocated && in_flight > allocated - 16 * oom["concurrency"].as_i64().unwrap()
    );

    let r = run(
        Path::new("scenarios/vllm-paged-preempt.yaml"),
        &dir.path().join("p"),
    );
    let pod = &r["pods"][0];
    assert_eq!(pod["verdict"]["reason"], "Completed");
    let done = event(pod, "kv_done");
    assert!(
        done["preemptions"].as_u64().unwrap() > 0,
        "paged mode preempts instead of failing"
    );
    let start = event(pod, "kv_start");
    let p = plan_json(&["--gpu-memory", "24Gi", "--max-model-len", "8192"]);
    assert_eq!(start["predicted_kv_tokens"], p["kv_tokens"]);
    assert!(done["blocks"].as_u64().unwrap() * 16 <= p["kv_tokens"].as_u64().unwrap());
}
