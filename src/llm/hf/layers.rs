//! Per-layer shape from a config: each layer's attention kind (from
//! `layer_types` or the model's own pattern), which layers have experts,
//! and Jamba's mamba sizes.

use serde_json::Value;

use super::Fields;
use crate::llm::model::{Mamba, Mixer, ModelError, Moe};

/// The attention kind of each layer.
pub(super) fn mixers(f: &Fields, n: u64) -> Result<Vec<Mixer>, ModelError> {
    let sliding = match f.flag("use_sliding_window")? {
        Some(false) => None,
        _ => f.optional_positive("sliding_window")?,
    };
    let window = |key: &str| -> Result<Mixer, ModelError> {
        Ok(Mixer::Sliding {
            window: sliding.ok_or_else(|| ModelError::Missing {
                path: f.path.to_string(),
                field: f.name("sliding_window"),
                model_type: format!("{} with {key}", f.model_type),
            })?,
        })
    };
    if let Some(types) = f.value("layer_types") {
        let list = types
            .as_array()
            .ok_or_else(|| f.invalid("layer_types", types, "it must be a list"))?;
        if list.len() as u64 != n {
            return Err(f.invalid(
                "layer_types",
                &Value::from(list.len()),
                "it must list one kind per layer (num_hidden_layers)",
            ));
        }
        return list
            .iter()
            .enumerate()
            .map(|(i, t)| match t.as_str() {
                Some("full_attention" | "attention") => Ok(Mixer::Full),
                Some("sliding_attention") => window("sliding_attention"),
                Some("chunked_attention") => Ok(Mixer::Chunked {
                    chunk: f.positive("attention_chunk_size")?,
                }),
                Some("mamba") => Ok(Mixer::Mamba),
                Some("linear_attention") => Err(ModelError::Unsupported {
                    path: f.path.to_string(),
                    field: f.name(&format!("layer_types[{i}]")),
                    what: "a linear-attention state",
                }),
                _ => Err(ModelError::UnknownLayer {
                    path: f.path.to_string(),
                    field: f.name(&format!("layer_types[{i}]")),
                    value: t.as_str().map_or_else(|| t.to_string(), str::to_string),
                }),
            })
            .collect();
    }
    let mt = f.model_type.as_str();
    let every = |is_sliding: &dyn Fn(u64) -> bool| -> Vec<Mixer> {
        (0..n)
            .map(|i| match sliding {
                Some(window) if is_sliding(i) => Mixer::Sliding { window },
                _ => Mixer::Full,
            })
            .collect()
    };
    if mt == "jamba" {
        let period = f.positive("attn_layer_period")?;
        let offset = f.u("attn_layer_offset")?.unwrap_or(0);
        return Ok((0..n)
            .map(|i| {
                if i % period == offset {
                    Mixer::Full
                } else {
                    Mixer::Mamba
                }
            })
            .collect());
    }
    if let Some(chunk) = f.optional_positive("attention_chunk_size")? {
        // Llama-4: `no_rope_layers[i] == 0` marks a global (NoPE) layer; the
        // others attend within chunks. transformers' default: every 4th is global.
        let nope: Vec<bool> = match f.value("no_rope_layers").and_then(Value::as_array) {
            Some(l) => l.iter().map(|x| x.as_u64() == Some(0)).collect(),
            None => (0..n).map(|i| (i + 1) % 4 == 0).collect(),
        };
        return Ok((0..n as usize)
            .map(|i| {
                if nope.get(i).copied().unwrap_or(false) {
                    Mixer::Full
                } else {
                    Mixer::Chunked { chunk }
                }
            })
            .collect());
    }
    Ok(if mt.starts_with("gemma2") {
        every(&|i| i % 2 == 0)
    } else if mt.starts_with("gemma3") {
        let pattern = f.positive("sliding_window_pattern")?;
        every(&|i| (i + 1) % pattern != 0)
    } else if mt.starts_with("qwen2") || mt.starts_with("qwen3") {
        let from = f.u("max_window_layers")?.unwrap_or(n);
        every(&|i| i >= from)
    } else {
        every(&|_| true)
    })
}

pub(super) type MoeAt = Box<dyn Fn(u64) -> bool>;

/// Experts, and which layers have them instead of a dense MLP.
pub(super) fn moe_layers(f: &Fields) -> Result<Option<(Moe, MoeAt)>, ModelError> {
    if let Some(experts) = f.optional_positive("n_routed_experts")? {
        // DeepSeek: dense for the first `first_k_dense_replace` layers, then
        // experts every `moe_layer_freq` layers, plus shared experts.
        let inter = f.positive("moe_intermediate_size")?;
        let shared = f.u("n_shared_experts")?.unwrap_or(0);
        let first = f.u("first_k_dense_replace")?.unwrap_or(0);
        let freq = f.optional_positive("moe_layer_freq")?.unwrap_or(1);
        return Ok(Some((
            Moe {
                experts,
                expert_intermediate: inter,
                shared_intermediate: shared * inter,
            },
            Box::new(move |i| i >= first && i % freq == 0),
        )));
    }
    let experts = match (f.u("num_local_experts")?, f.u("num_experts")?) {
        (Some(e), _) | (None, Some(e)) if e > 1 => e,
        _ => return Ok(None),
    };
    let mt = f.model_type.as_str();
    if mt == "jamba" {
        let period = f.optional_positive("expert_layer_period")?.unwrap_or(1);
        let offset = f.u("expert_layer_offset")?.unwrap_or(0);
        return Ok(Some((
            Moe {
                experts,
                expert_intermediate: f.positive("intermediate_size")?,
                shared_intermediate: 0,
            },
            Box::new(move |i| i % period == offset),
        )));
    }
    // Mixtral: every layer, experts as wide as intermediate_size. Qwen-MoE:
    // moe_intermediate_size, a shared expert, `decoder_sparse_step` and
    // `mlp_only_layers`.
    let expert_intermediate = match f.optional_positive("moe_intermediate_size")? {
        Some(n) => n,
        None => f.positive("intermediate_size")?,
    };
    let step = f.optional_positive("decoder_sparse_step")?.unwrap_or(1);
    let dense: Vec<u64> = f
        .value("mlp_only_layers")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    Ok(Some((
        Moe {
            experts,
            expert_intermediate,
            shared_intermediate: f.u("shared_expert_intermediate_size")?.unwrap_or(0),
        },
        Box::new(move |i| !dense.contains(&i) && (i + 1) % step == 0),
    )))
}

/// Jamba's mamba layers (mamba v1).
pub(super) fn mamba(f: &Fields, hidden: u64) -> Result<Mamba, ModelError> {
    // Mamba2 (heads and groups) keeps a differently shaped state.
    for key in ["mamba_n_heads", "mamba_n_groups", "mamba_d_head"] {
        if f.value(key).is_some() {
            return Err(ModelError::Unsupported {
                path: f.path.to_string(),
                field: f.name(key),
                what: "a mamba2 state",
            });
        }
    }
    let expand = f.positive("mamba_expand")?;
    Ok(Mamba {
        inner: expand * hidden,
        d_state: f.positive("mamba_d_state")?,
        d_conv: f.positive("mamba_d_conv")?,
        dt_rank: match f.optional_positive("mamba_dt_rank")? {
            Some(r) => r,
            None => hidden.div_ceil(16),
        },
        conv_bias: f.flag("mamba_conv_bias")?.unwrap_or(true),
    })
}
