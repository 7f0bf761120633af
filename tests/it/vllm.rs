//! vLLM: the planner's arithmetic through the CLI, and kv-cache runs on the
//! sim device failing (dynamic) where the plan says and surviving (paged).

use std::path::Path;

use crate::{assert_cleaned, oomsim, report, text};

fn plan_json_of(model: &str, args: &[&str]) -> serde_json::Value {
    let o = oomsim()
        .args(["vllm", "plan", "--model", model, "--json"])
        .args(args)
        .output()
        .unwrap();
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Exit 1 exactly when vLLM would refuse to start.
    let expected = if p["starts"] == true { 0 } else { 1 };
    assert_eq!(o.status.code(), Some(expected), "{}", text(&o));
    p
}

fn plan_json(args: &[&str]) -> serde_json::Value {
    plan_json_of("scenarios/models/llama-3-8b.json", args)
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
    assert_eq!(p["vllm_version"], "0.33.0");
    assert_eq!(p["kv_bytes_per_token"], 131072);
    assert_eq!(p["groups"][0]["kind"], "full_attention");
    assert_eq!(p["groups"][0]["page_bytes"], 65536);
    assert_eq!(p["bytes_per_block"], 2 << 20);
    // ceil(80Gi x 0.92) - 16,060,522,496 weights - 2Gi - 512Mi - 512Mi, in 2 MiB blocks.
    let budget = (80u64 << 30) * 92 / 100 + 1 - 16_060_522_496 - (3 << 30);
    assert_eq!(p["kv_budget_bytes"], budget);
    assert_eq!(p["kv_blocks"], budget / (2 << 20));
    assert_eq!(p["kv_tokens"], 16 * (budget / (2 << 20)));
    assert_eq!(p["starts"], true);
    assert!(p["error"].is_null());
    assert!(
        p["log_line"]
            .as_str()
            .unwrap()
            .starts_with("GPU KV cache size: ")
    );
    let p = plan_json_of(
        "scenarios/models/llama-3.1-8b-instruct.json",
        &["--gpu-memory", "24Gi", "--max-model-len", "131072"],
    );
    assert_eq!(p["starts"], false);
    assert_eq!(p["refusal"], "kv_too_small");
    assert!(
        p["error"]
            .as_str()
            .unwrap()
            .contains("To serve at least one request with the model's max seq len (131072)")
    );
    assert!(p["largest_max_model_len"].as_u64().unwrap() < 131072);
    for (args, line) in [
        (
            vec!["--gpu-memory-utilization", "1.5"],
            "--gpu-memory-utilization: 1.5 is outside (0, 1]",
        ),
        (
            vec!["--tensor-parallel-size", "3"],
            "--tensor-parallel-size: Total number of attention heads (32) must be divisible by tensor parallel size (3).",
        ),
        (vec!["--dtype", "fp8"], "--dtype: \"fp8 (a compute dtype"),
    ] {
        let o = oomsim()
            .args([
                "vllm",
                "plan",
                "--model",
                "scenarios/models/llama-3-8b.json",
            ])
            .args(["--gpu-memory", "80Gi"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(line) && err.lines().count() == 1, "{err}");
    }
}

pub fn bad_model_configs_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (body, says) in [
        (
            r#"{"num_hidden_layers": 0, "num_attention_heads": 4, "hidden_size": 64, "vocab_size": 10}"#,
            "num_hidden_layers is 0: it must be more than zero",
        ),
        (
            r#"{"text_config": {"num_attention_heads": 4, "hidden_size": 64, "vocab_size": 10}}"#,
            "text_config.num_hidden_layers is missing",
        ),
        (
            r#"{"num_hidden_layers": 1, "num_attention_heads": 4, "hidden_size": 64, "vocab_size": 10, "layer_types": ["linear"]}"#,
            "layer_types[0] is \"linear\": not an attention kind vLLM knows",
        ),
        ("{not json", "not a JSON config.json"),
    ] {
        let path = dir.path().join("config.json");
        std::fs::write(&path, body).unwrap();
        let o = oomsim()
            .args(["vllm", "plan", "--gpu-memory", "80Gi", "--model"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(says) && err.contains("config.json") && err.lines().count() == 1,
            "{err}"
        );
    }
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
    let p = plan_json(&[
        "--gpu-memory",
        "24Gi",
        "--gpu-memory-utilization",
        "0.90",
        "--max-model-len",
        "8192",
    ]);
    assert_eq!(start["predicted_kv_tokens"], p["kv_tokens"]);
    assert!(done["blocks"].as_u64().unwrap() * 16 <= p["kv_tokens"].as_u64().unwrap());
}
