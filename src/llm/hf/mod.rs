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

mod layers;
mod quant;

use super::model::{Layer, MaxLen, Mixer, Mla, ModelConfig, ModelError};
use layers::{mamba, mixers, moe_layers};
use quant::quantization;

pub fn load(path: &Path) -> Result<ModelConfig, ModelError> {
    let shown = path.display().to_string();
    let text = crate::bounded::read_text(path, crate::bounded::CONFIG_MAX).map_err(|source| {
        ModelError::Read {
            path: shown.clone(),
            source,
        }
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

/// The longest max_model_len a config may give (Llama-4 Scout's 10M is 2^23.3).
const MAX_TOKENS: u64 = 1 << 26;

/// The largest value a field may have, far above any published model's,
/// so that every product of the memory arithmetic stays within 64 bits
/// (2^32 layers and heads would wrap to 0 bytes a token), and why.
fn ceiling(key: &str) -> (u64, &'static str) {
    match key {
        "num_hidden_layers" => (1 << 10, "at most 1024 layers"),
        "num_attention_heads"
        | "num_key_value_heads"
        | "n_head_kv"
        | "num_kv_heads"
        | "multi_query_group_num" => (1 << 10, "at most 1024 heads"),
        "num_experts" | "num_local_experts" | "n_routed_experts" | "n_shared_experts" => {
            (1 << 11, "at most 2048 experts")
        }
        "hidden_size" => (1 << 17, "at most 131072"),
        "vocab_size" => (1 << 22, "at most 4194304 tokens"),
        "intermediate_size" | "moe_intermediate_size" | "shared_expert_intermediate_size" => {
            (1 << 19, "at most 524288")
        }
        "head_dim" | "kv_lora_rank" | "q_lora_rank" | "qk_nope_head_dim" | "qk_rope_head_dim"
        | "v_head_dim" | "mamba_d_conv" | "mamba_d_state" | "mamba_dt_rank" | "mamba_expand" => {
            (1 << 14, "at most 16384")
        }
        _ => (MAX_TOKENS, "at most 67108864 (2^26)"),
    }
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
    /// its class a default; `null` is none), at most its [`ceiling`].
    fn u(&self, key: &str) -> Result<Option<u64>, ModelError> {
        let n = self.whole(key)?;
        match n {
            Some(n) if n > ceiling(key).0 => {
                Err(self.invalid(key, &Value::from(n), ceiling(key).1))
            }
            n => Ok(n),
        }
    }

    fn whole(&self, key: &str) -> Result<Option<u64>, ModelError> {
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
    if tokens > MAX_TOKENS {
        return Err(ModelError::Invalid {
            path: f.path.to_string(),
            field: f.name(key),
            value: tokens.to_string(),
            expected: "a model's length is at most 67108864 tokens (2^26)",
        });
    }
    Ok(MaxLen {
        tokens,
        key: key.into(),
        scaled,
    })
}
