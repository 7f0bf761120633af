//! `oomsim vllm plan`: vLLM's KV cache arithmetic line by line, whether it
//! starts, the settings that leave room, and the safe-region map.

use crate::cli::args::VllmPlanArgs;
use crate::cli::{Failure, exit};
use crate::llm::model::{ModelConfig, Quantization, kv_cache_dtype};
use crate::llm::recommend::{Recommendation, recommend};
use crate::llm::vllm;
use crate::report::Format;
use crate::units;

/// The plan's inputs from the flags, checked.
fn inputs(a: &VllmPlanArgs) -> Result<vllm::Inputs, Failure> {
    let bytes = |flag: &str, v: &str| units::parse_bytes(v).map_err(|e| Failure::flag(flag, e));
    // Far above any real model or server, so the arithmetic stays in 64 bits.
    let within = |flag: &str, v: u64, max: u64| match v {
        0 => Err(Failure::input(format!("{flag}: must be more than zero"))),
        v if v > max => Err(Failure::input(format!("{flag}: {v} is more than {max}"))),
        v => Ok(v),
    };
    let positive = |flag: &str, v: u64| within(flag, v, 1 << 26);
    let mut cfg = match (&a.model, a.layers) {
        (Some(path), _) => ModelConfig::load(path)?,
        (None, Some(layers)) => {
            let kv = within("--kv-heads", a.kv_heads.unwrap_or(1), 1 << 10)?;
            let hd = within("--head-dim", a.head_dim.unwrap_or(128), 1 << 14)?;
            let layers = within("--layers", layers, 1 << 10)?;
            let vocab = within("--vocab", a.vocab, 1 << 22)?;
            let mut cfg = ModelConfig::synthetic(layers, kv, hd, vocab);
            // No config, no limit of its own: what is asked for is allowed.
            cfg.max_len.tokens = cfg.max_len.tokens.max(a.max_model_len.unwrap_or(0));
            cfg
        }
        (None, None) => return Err(Failure::input("--model: give a config.json or --layers")),
    };
    match (a.quantization.as_deref(), &cfg.quantization) {
        (None, _) => {}
        (Some("fp8"), None) => cfg.quantization = Some(Quantization::Fp8 { block: None }),
        (Some(q), Some(has)) => {
            return Err(Failure::input(format!(
                "--quantization: the config is already quantized ({}); vLLM refuses {q:?} for it",
                has.name()
            )));
        }
        (Some(q), None) => {
            return Err(Failure::input(format!(
                "--quantization: {q:?} is not one oomsim sizes without a quantization_config (fp8)"
            )));
        }
    }
    let gpu = bytes("--gpu-memory", &a.gpu_memory)?;
    if gpu == 0 {
        return Err(Failure::input("--gpu-memory: must be more than zero"));
    }
    if !(a.gpu_memory_utilization > 0.0 && a.gpu_memory_utilization <= 1.0) {
        return Err(Failure::input(format!(
            "--gpu-memory-utilization: {} is outside (0, 1]",
            a.gpu_memory_utilization
        )));
    }
    let dt = cfg
        .compute_dtype(a.dtype.as_deref())
        .map_err(|e| Failure::flag("--dtype", e))?;
    let kv_dt = kv_cache_dtype(a.kv_cache_dtype.as_deref(), dt)
        .map_err(|e| Failure::flag("--kv-cache-dtype", e))?;
    let mut inp = vllm::Inputs::new(cfg, gpu);
    let (seqs, batched) = vllm::serve_defaults(gpu, &a.gpu_name);
    inp.dtype = dt;
    inp.kv_dtype = kv_dt;
    inp.utilization = a.gpu_memory_utilization;
    inp.tensor_parallel = within("--tensor-parallel-size", a.tensor_parallel_size, 1 << 10)?;
    inp.model
        .check_tp(inp.tensor_parallel)
        .map_err(|e| Failure::flag("--tensor-parallel-size", e))?;
    if let Some(n) = a.max_model_len {
        inp.max_model_len = positive("--max-model-len", n)?;
    }
    inp.max_num_seqs = positive("--max-num-seqs", a.max_num_seqs.unwrap_or(seqs))?;
    inp.max_num_batched_tokens = positive(
        "--max-num-batched-tokens",
        a.max_num_batched_tokens.unwrap_or(batched),
    )?;
    inp.block_size = within("--block-size", a.block_size, 1 << 16)?;
    inp.hybrid_disabled = a.disable_hybrid_kv_cache_manager;
    inp.prefix_caching = !a.no_enable_prefix_caching;
    let opt = |flag: &str, v: &Option<String>| v.as_deref().map(|v| bytes(flag, v)).transpose();
    inp.kv_cache_memory = opt("--kv-cache-memory-bytes", &a.kv_cache_memory_bytes)?;
    inp.weights = opt("--weights", &a.weights)?;
    inp.activation = opt("--activation", &a.activation)?;
    inp.non_torch_bytes = bytes("--non-torch", &a.non_torch)?;
    inp.cuda_graph_bytes = bytes("--cuda-graphs", &a.cuda_graphs)?;
    inp.other_bytes = bytes("--other", &a.other)?;
    inp.margin_bytes = bytes("--margin", &a.margin)?;
    Ok(inp)
}

pub fn plan(a: &VllmPlanArgs) -> Result<u8, Failure> {
    let inp = inputs(a)?;
    let p = vllm::plan(&inp);
    let recommended = recommend(&inp);
    if a.json {
        /// The plan and, beside it, the settings that serve.
        #[derive(serde::Serialize)]
        struct Output<'a> {
            #[serde(flatten)]
            plan: &'a vllm::VllmPlan,
            recommended: &'a Recommendation,
        }
        let out = Output {
            plan: &p,
            recommended: &recommended,
        };
        println!("{}", crate::report::Json.render(&out)?.trim_end());
    } else {
        print!("{}", crate::llm::describe::describe(&inp, &p));
        println!("{recommended}");
    }
    if let Some(dir) = &a.plot {
        let mut points = Vec::new();
        for r in &a.runs {
            points.extend(crate::plot::kv_points(r).map_err(|e| Failure::flag("--runs", e))?);
        }
        let mut files = crate::plot::safe_region(&inp, &points, dir)?;
        let io = |e: std::io::Error| Failure::flag("--plot", format!("{}: {e}", dir.display()));
        let text = format!(
            "{}{recommended}\n",
            crate::llm::describe::describe(&inp, &p)
        );
        files.push(crate::html::write(dir, &crate::html::plan(&inp, &points, &text)).map_err(io)?);
        for f in files {
            eprintln!("oomsim: drew {}", f.display());
        }
    }
    // vLLM would refuse to start with these settings: that is a failed check.
    Ok(if p.starts {
        exit::OK
    } else {
        exit::EXPECTATION_FAILED
    })
}
