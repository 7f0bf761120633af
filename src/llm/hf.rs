//! Reading a Hugging Face `config.json` as vLLM 0.33 reads it.
//!
//! - The text model's fields may be nested: `text_config` (Gemma-3,
//!   Llama-4, most vision-language models), `thinker_config.text_config`
//!   (Omni), `llm_config`, `language_config` (transformers'
//!   `get_text_config`, vllm/transformers_utils/config.py).
//! - Fields a config leaves out take the defaults of its transformers
//!   config class (Gemma-3's text config lists almost nothing); a missing
//!   `num_key_value_heads` means as many as attention heads.
//! - Head size: MLA's `kv_lora_rank + qk_rope_head_dim`, else `head_dim`,
//!   else hidden / heads (vllm/config/model.py `get_head_size`).
//! - Per-layer attention kind: `layer_types` when given, else the model's
//!   own pattern (Gemma-2 every other layer, Gemma-3 five local to one
//!   global, Qwen2/3 from `max_window_layers` when `use_sliding_window`,
//!   Jamba's attention period among mamba layers), else the config's
//!   `sliding_window` on every layer (Mistral).
//! - The longest max_model_len: the smallest of the length keys, scaled by
//!   the RoPE factor (vllm/config/model.py `_get_and_verify_max_len`).

use std::path::Path;

use serde_json::{Map, Value};

use super::model::{Layer, Mamba, MaxLen, Mixer, Mla, ModelConfig, ModelError, Moe, Quantization};

pub fn load(path: &Path) -> Result<ModelConfig, ModelError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
        path: shown.clone(),
        source,
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: shown.clone(),
        source,
    })?;
    from_value(&v, &shown)
}

/// Where the text model's fields are, and the name errors give them.
fn text_config(root: &Map<String, Value>) -> (&Map<String, Value>, &'static str) {
    let nested = |outer: &str, inner: Option<&str>| {
        let o = root.get(outer)?.as_object()?;
        match inner {
            Some(i) => o.get(i)?.as_object(),
            None => Some(o),
        }
    };
    for (outer, inner, prefix) in [
        ("text_config", None, "text_config."),
        (
            "thinker_config",
            Some("text_config"),
            "thinker_config.text_config.",
        ),
        ("llm_config", None, "llm_config."),
        ("language_config", None, "language_config."),
        ("decoder", None, "decoder."),
        ("generator", None, "generator."),
    ] {
        if let Some(t) = nested(outer, inner) {
            return (t, prefix);
        }
    }
    (root, "")
}

/// transformers' config-class defaults for the fields memory depends on, for
/// model types whose published configs leave them out (Gemma2Config,
/// Gemma3TextConfig, MistralConfig, Qwen3Config, LlamaConfig, Phi3Config).
fn class_default(model_type: &str, key: &str) -> Option<u64> {
    // Gemma2Config and Gemma3TextConfig share their 2B-sized defaults.
    const GEMMA: [(&str, u64); 7] = [
        ("hidden_size", 2304),
        ("intermediate_size", 9216),
        ("num_hidden_layers", 26),
        ("num_attention_heads", 8),
        ("num_key_value_heads", 4),
        ("head_dim", 256),
        ("sliding_window", 4096),
    ];
    let table: &[(&str, u64)] = match model_type {
        "gemma3_text" | "gemma3" => &[
            ("vocab_size", 262_208),
            ("max_position_embeddings", 131_072),
            ("sliding_window_pattern", 6),
        ],
        "gemma2" => &[("vocab_size", 256_000), ("max_position_embeddings", 8192)],
        // MistralConfig slides over 4096 tokens unless the config says otherwise.
        "mistral" => &[
            ("sliding_window", 4096),
            ("max_position_embeddings", 131_072),
        ],
        "qwen3" => &[("head_dim", 128)],
        "llama" => &[("max_position_embeddings", 2048)],
        "phi3" => &[("max_position_embeddings", 4096)],
        _ => &[],
    };
    let gemma = model_type.starts_with("gemma2") || model_type.starts_with("gemma3");
    let common: &[(&str, u64)] = if gemma { &GEMMA } else { &[] };
    table
        .iter()
        .chain(common)
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

/// Gemma ties its output layer to the embeddings unless told otherwise;
/// the other config classes do not.
fn ties_by_default(model_type: &str) -> bool {
    model_type.starts_with("gemma")
}

struct Fields<'a> {
    map: &'a Map<String, Value>,
    root: &'a Map<String, Value>,
    prefix: &'static str,
    path: &'a str,
    model_type: String,
}

impl Fields<'_> {
    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn invalid(&self, key: &str, v: &Value, expected: &'static str) -> ModelError {
        ModelError::Invalid {
            path: self.path.to_string(),
            field: self.name(key),
            value: v.to_string(),
            expected,
        }
    }

    fn value(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A whole number, if the config has one (or, when the key is absent,
    /// its class a default; `null` is none).
    fn u(&self, key: &str) -> Result<Option<u64>, ModelError> {
        match self.map.get(key) {
            None => Ok(class_default(&self.model_type, key)),
            Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) => Ok(Some(n)),
                // 4096.0 is a whole number too.
                None => match v.as_f64() {
                    Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 1e18 => Ok(Some(f as u64)),
                    _ => Err(self.invalid(key, v, "it must be a whole number")),
                },
            },
        }
    }

    /// A whole number that must be there and more than zero.
    fn positive(&self, key: &str) -> Result<u64, ModelError> {
        match self.u(key)? {
            None => Err(ModelError::Missing {
                path: self.path.to_string(),
                field: self.name(key),
                model_type: self.model_type.clone(),
            }),
            Some(0) => Err(self.zero(key)),
            Some(n) => Ok(n),
        }
    }

    /// Optional, but more than zero when given.
    fn optional_positive(&self, key: &str) -> Result<Option<u64>, ModelError> {
        match self.u(key)? {
            Some(0) => Err(self.zero(key)),
            n => Ok(n),
        }
    }

    fn zero(&self, key: &str) -> ModelError {
        ModelError::Zero {
            path: self.path.to_string(),
            field: self.name(key),
        }
    }

    fn flag(&self, key: &str) -> Result<Option<bool>, ModelError> {
        match self.value(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.invalid(key, v, "it must be true or false")),
        }
    }

    /// A key read from the text config, else from the outer one.
    fn either(&self, key: &str) -> Option<&Value> {
        self.value(key)
            .or_else(|| self.root.get(key).filter(|v| !v.is_null()))
    }
}

pub fn from_value(v: &Value, path: &str) -> Result<ModelConfig, ModelError> {
    let root = v.as_object().ok_or_else(|| ModelError::Invalid {
        path: path.to_string(),
        field: "(the whole file)".into(),
        value: short(v),
        expected: "a config.json is one JSON object",
    })?;
    let (map, prefix) = text_config(root);
    let model_type = map
        .get("model_type")
        .or_else(|| root.get("model_type"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let f = Fields {
        map,
        root,
        prefix,
        path,
        model_type,
    };
    let hidden_size = f.positive("hidden_size")?;
    let heads = f.positive("num_attention_heads")?;
    let n_layers = f.positive("num_hidden_layers")?;
    let vocab_size = f.positive("vocab_size")?;
    let mla = mla(&f)?;
    let kv_heads = match mla {
        Some(_) => 1,
        None => kv_heads(&f)?.unwrap_or(heads),
    };
    let head_size = match (mla, f.optional_positive("head_dim")?) {
        (Some(m), _) => m.kv_lora_rank + m.qk_rope_head_dim,
        (None, Some(d)) => d,
        (None, None) => match hidden_size / heads {
            0 => return Err(f.zero("hidden_size / num_attention_heads")),
            d => d,
        },
    };
    let intermediate_size = f.u("intermediate_size")?.unwrap_or(4 * hidden_size);
    let mixers = mixers(&f, n_layers)?;
    let moe_at = moe_layers(&f)?;
    let mamba = if mixers.contains(&Mixer::Mamba) {
        Some(mamba(&f, hidden_size)?)
    } else {
        None
    };
    let layers = mixers
        .into_iter()
        .enumerate()
        .map(|(i, mixer)| Layer {
            mixer,
            moe: moe_at.as_ref().is_some_and(|(_, at)| at(i as u64)),
        })
        .collect();
    let gemma = f.model_type.starts_with("gemma2") || f.model_type.starts_with("gemma3");
    Ok(ModelConfig {
        hidden_size,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_size,
        vocab_size,
        intermediate_size,
        tie_word_embeddings: f
            .flag("tie_word_embeddings")?
            .or_else(|| root.get("tie_word_embeddings").and_then(Value::as_bool))
            .unwrap_or_else(|| ties_by_default(&f.model_type)),
        torch_dtype: f
            .either("torch_dtype")
            .or_else(|| f.either("dtype"))
            .and_then(Value::as_str)
            .map(str::to_string),
        max_len: max_len(&f)?,
        layers,
        mla,
        mamba,
        moe: moe_at.map(|(m, _)| m),
        quantization: quantization(&f)?,
        norms_per_layer: if gemma { 4 } else { 2 },
        qk_norm: f.model_type.starts_with("qwen3") || f.model_type.starts_with("gemma3"),
        qkv_bias: f.model_type.starts_with("qwen2"),
        model_type: f.model_type,
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// vLLM's `get_total_num_kv_heads`: the first of the names configs use.
fn kv_heads(f: &Fields) -> Result<Option<u64>, ModelError> {
    if f.flag("multi_query")? == Some(true) {
        return Ok(Some(1));
    }
    for key in [
        "n_head_kv",
        "num_kv_heads",
        "num_key_value_heads",
        "multi_query_group_num",
    ] {
        if let Some(n) = f.optional_positive(key)? {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

fn mla(f: &Fields) -> Result<Option<Mla>, ModelError> {
    let Some(kv_lora_rank) = f.optional_positive("kv_lora_rank")? else {
        return Ok(None);
    };
    Ok(Some(Mla {
        kv_lora_rank,
        q_lora_rank: f.optional_positive("q_lora_rank")?,
        qk_nope_head_dim: f.positive("qk_nope_head_dim")?,
        qk_rope_head_dim: f.positive("qk_rope_head_dim")?,
        v_head_dim: f.positive("v_head_dim")?,
    }))
}

/// The attention kind of each layer.
fn mixers(f: &Fields, n: u64) -> Result<Vec<Mixer>, ModelError> {
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

type MoeAt = Box<dyn Fn(u64) -> bool>;

/// Experts, and which layers have them instead of a dense MLP.
fn moe_layers(f: &Fields) -> Result<Option<(Moe, MoeAt)>, ModelError> {
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
fn mamba(f: &Fields, hidden: u64) -> Result<Mamba, ModelError> {
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

/// vLLM's `_get_and_verify_max_len`: the smallest length key (2048 when
/// there is none), times the RoPE factor unless the rope type already
/// states the full length (llama3, longrope, su, the yarn family) or the
/// model is Gemma-3.
fn max_len(f: &Fields) -> Result<MaxLen, ModelError> {
    let mut derived: Option<(u64, &str)> = None;
    for key in [
        "max_position_embeddings",
        "n_positions",
        "max_seq_len",
        "seq_length",
        "model_max_length",
        "max_sequence_length",
        "max_seq_length",
        "seq_len",
    ] {
        if let Some(n) = f.optional_positive(key)?
            && derived.is_none_or(|(d, _)| n < d)
        {
            derived = Some((n, key));
        }
    }
    let Some((mut tokens, key)) = derived else {
        return Ok(MaxLen {
            tokens: 2048,
            key: "default".into(),
            scaled: false,
        });
    };
    let rope = f
        .value("rope_scaling")
        .or_else(|| f.value("rope_parameters"))
        .and_then(Value::as_object);
    // vLLM multiplies by the factor (a float, 1.0 by default) whenever the
    // model has RoPE parameters (transformers gives every RoPE model some),
    // so the limit it prints is a float.
    const NO_ROPE: [&str; 6] = ["jamba", "gpt2", "gpt_bigcode", "bloom", "mpt", "opt"];
    let has_rope = rope.is_some() || !NO_ROPE.contains(&f.model_type.as_str());
    let scaled = has_rope && !f.model_type.starts_with("gemma3");
    if let Some(r) = rope
        && scaled
    {
        let kind = r
            .get("rope_type")
            .or_else(|| r.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let factor = r.get("factor").and_then(Value::as_f64).unwrap_or(1.0);
        let states_full_length = matches!(
            kind,
            "su" | "longrope" | "llama3" | "yarn" | "deepseek_yarn" | "deepseek_llama_scaling"
        );
        if !states_full_length && factor > 0.0 {
            tokens = (tokens as f64 * factor) as u64;
        }
    }
    Ok(MaxLen {
        tokens,
        key: key.into(),
        scaled,
    })
}

/// `quantization_config`: how many bytes the linear layers' weights take.
fn quantization(f: &Fields) -> Result<Option<Quantization>, ModelError> {
    let Some(q) = f.either("quantization_config") else {
        return Ok(None);
    };
    let bad = |expected| ModelError::Invalid {
        path: f.path.to_string(),
        field: "quantization_config".into(),
        value: short(q),
        expected,
    };
    let o = q.as_object().ok_or_else(|| bad("it must be an object"))?;
    let num = |k: &str| o.get(k).and_then(Value::as_i64);
    let method = o
        .get("quant_method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let int = |bits: Option<i64>, group: Option<i64>| -> Result<Quantization, ModelError> {
        let bits =
            bits.filter(|b| (2..=8).contains(b))
                .ok_or_else(|| bad("it must give bits (or w_bit) from 2 to 8"))? as u64;
        // group_size -1: one scale per output channel, as good as no group at this scale.
        let group = match group {
            Some(g) if g > 0 => g as u64,
            _ => u64::MAX,
        };
        Ok(Quantization::Int { bits, group })
    };
    Ok(Some(match method.as_str() {
        "fp8" | "fbgemm_fp8" | "modelopt" => Quantization::Fp8 {
            block: o
                .get("weight_block_size")
                .and_then(Value::as_array)
                .and_then(|b| b.first())
                .and_then(Value::as_u64),
        },
        "awq" | "awq_marlin" | "gptq" | "gptq_marlin" | "autoround" => int(
            num("bits").or_else(|| num("w_bit")),
            num("group_size").or_else(|| num("q_group_size")),
        )?,
        "bitsandbytes" => Quantization::Bnb {
            bits: if o.get("load_in_8bit").and_then(Value::as_bool) == Some(true) {
                8
            } else {
                4
            },
        },
        "compressed-tensors" => {
            let weights = o
                .get("config_groups")
                .and_then(Value::as_object)
                .and_then(|g| g.values().next())
                .and_then(|g| g.get("weights"))
                .ok_or_else(|| bad("compressed-tensors needs config_groups.*.weights"))?;
            let bits = weights.get("num_bits").and_then(Value::as_i64);
            if weights.get("type").and_then(Value::as_str) == Some("float") && bits == Some(8) {
                Quantization::Fp8 { block: None }
            } else {
                int(bits, weights.get("group_size").and_then(Value::as_i64))?
            }
        }
        _ => {
            return Err(bad(
                "not a quantization oomsim sizes (fp8, awq, gptq, bitsandbytes, compressed-tensors)",
            ));
        }
    }))
}
