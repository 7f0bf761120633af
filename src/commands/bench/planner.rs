//! `oomsim bench planner`: the vLLM planner over a 256 x 256 grid of
//! settings, and the sim device's allocation rate through the shared ledger.

use std::path::Path;

use serde::Serialize;

use crate::cli::Failure;

#[derive(Debug, Serialize)]
pub struct PlannerStats {
    /// A 256 x 256 grid of (max_model_len, max_num_seqs), each a full plan.
    pub grid_plans: u64,
    pub grid_s: f64,
    pub plans_per_s: f64,
    /// Sim-device block allocations and frees (one each), through the shared ledger.
    pub sim_allocs: u64,
    pub sim_allocs_per_s: f64,
}

/// The vLLM planner over a 256 x 256 grid, and the sim device's allocation rate.
pub fn planner(work: &Path) -> Result<PlannerStats, Failure> {
    use crate::gpu::Ledger;
    let cfg = crate::llm::hf::from_value(
        &serde_json::json!({"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,
        "hidden_size":4096,"vocab_size":128256,"intermediate_size":14336,
        "max_position_embeddings":131072}),
        "llama",
    )
    .map_err(|e| Failure::internal(e.to_string()))?;
    let mut inp = crate::llm::vllm::Inputs::new(cfg, 80 << 30);
    let started = std::time::Instant::now();
    let mut fits = 0u64;
    for i in 1..=256u64 {
        for j in 1..=256u64 {
            inp.max_model_len = i * 512;
            inp.max_num_seqs = j;
            let p = crate::llm::vllm::plan(std::hint::black_box(&inp));
            fits += u64::from(p.starts && p.max_concurrent_at_max_len >= j);
        }
    }
    let grid_s = started.elapsed().as_secs_f64();
    std::hint::black_box(fits);
    let path = work.join("oomsim-bench-gpu");
    let ledger = std::sync::Arc::new(
        Ledger::create(&path, 80 << 30, crate::gpu::DeviceBackend::Sim, 0, "bench")
            .map_err(|e| Failure::internal(e.to_string()))?,
    );
    let dev = crate::gpu::sim_device(ledger).map_err(|e| Failure::internal(e.to_string()))?;
    let n = 200_000u64;
    let started = std::time::Instant::now();
    for _ in 0..n {
        let m = dev
            .alloc(2 << 20)
            .map_err(|e| Failure::internal(e.to_string()))?;
        drop(std::hint::black_box(m));
    }
    let alloc_s = started.elapsed().as_secs_f64();
    Ok(PlannerStats {
        grid_plans: 256 * 256,
        grid_s,
        plans_per_s: 65536.0 / grid_s,
        sim_allocs: n,
        sim_allocs_per_s: n as f64 / alloc_s,
    })
}
