//! `oomsim vllm plan`: vLLM's KV cache arithmetic line by line, whether it
//! starts, the settings that leave room, and the safe-region map.

use crate::cli::args::VllmPlanArgs;
use crate::cli::{Failure, exit};
use crate::llm::model::{Dtype, ModelConfig};
use crate::llm::recommend::{Recommendation, recommend};
use crate::llm::vllm;
use crate::report::Format;
use crate::units;

pub fn plan(a: &VllmPlanArgs) -> Result<u8, Failure> {
    let bytes = |flag: &str, v: &str| units::parse_bytes(v).map_err(|e| Failure::flag(flag, e));
    let dtype = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|d| Dtype::parse(d).map_err(|e| Failure::flag(flag, e)))
            .transpose()
    };
    let cfg = match (&a.model, a.layers) {
        (Some(path), _) => ModelConfig::load(path)?,
        (None, Some(layers)) => {
            let (kv, hd) = (a.kv_heads.unwrap_or(1), a.head_dim.unwrap_or(128));
            let cfg = ModelConfig {
                num_hidden_layers: layers,
                num_attention_heads: kv,
                num_key_value_heads: Some(kv),
                hidden_size: kv * hd,
                head_dim: Some(hd),
                vocab_size: a.vocab,
                intermediate_size: None,
                torch_dtype: None,
                sliding_window: None,
                tie_word_embeddings: None,
                max_position_embeddings: None,
            };
            cfg.validate("--layers/--kv-heads/--head-dim")?;
            cfg
        }
        (None, None) => return Err(Failure::input("--model: give a config.json or --layers")),
    };
    let dt = dtype("--dtype", &a.dtype)?
        .or(cfg.dtype())
        .ok_or_else(|| Failure::input("--dtype: the config names no torch_dtype; give --dtype"))?;
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
    for (flag, v) in [
        ("--max-num-seqs", a.max_num_seqs),
        ("--block-size", a.block_size),
        ("--max-num-batched-tokens", a.max_num_batched_tokens),
    ] {
        if v == 0 {
            return Err(Failure::input(format!("{flag}: must be more than zero")));
        }
    }
    let mut inp = vllm::Inputs::new(cfg, dt, gpu);
    inp.kv_dtype = dtype("--kv-cache-dtype", &a.kv_cache_dtype)?.unwrap_or(dt);
    inp.utilization = a.gpu_memory_utilization;
    if let Some(n) = a.max_model_len {
        if n == 0 {
            return Err(Failure::input("--max-model-len: must be more than zero"));
        }
        inp.max_model_len = n;
    }
    inp.max_num_seqs = a.max_num_seqs;
    inp.max_num_batched_tokens = a.max_num_batched_tokens;
    inp.block_size = a.block_size;
    let opt = |flag: &str, v: &Option<String>| v.as_deref().map(|v| bytes(flag, v)).transpose();
    inp.kv_cache_memory = opt("--kv-cache-memory", &a.kv_cache_memory)?;
    inp.weights = opt("--weights", &a.weights)?;
    inp.activation = opt("--activation", &a.activation)?;
    inp.non_torch_bytes = bytes("--non-torch", &a.non_torch)?;
    inp.cuda_graph_bytes = bytes("--cuda-graphs", &a.cuda_graphs)?;
    inp.other_bytes = bytes("--other", &a.other)?;
    inp.margin_bytes = bytes("--margin", &a.margin)?;
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
        print!("{}", vllm::describe(&inp, &p));
        println!("{recommended}");
    }
    if let Some(dir) = &a.plot {
        let mut points = Vec::new();
        for r in &a.runs {
            points.extend(crate::plot::kv_points(r).map_err(|e| Failure::flag("--runs", e))?);
        }
        let files = crate::plot::safe_region(&inp, &points, dir)?;
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
