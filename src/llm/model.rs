//! A model as vLLM sees it: per layer, what mixes tokens (full attention,
//! a sliding window, chunked local attention, a mamba state) and what
//! follows it (a dense MLP or experts), the attention shape (heads, KV
//! heads, head size, or MLA's latent), the vocabulary and the weights'
//! storage. Read from a Hugging Face `config.json` by [`super::hf`].

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot read the model config: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a JSON config.json: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: {field} is missing (and {model_type:?} has no default for it)")]
    Missing {
        path: String,
        field: String,
        model_type: String,
    },
    #[error("{path}: {field} is {value}: {expected}")]
    Invalid {
        path: String,
        field: String,
        value: String,
        expected: &'static str,
    },
    #[error("{path}: {field} is 0: it must be more than zero")]
    Zero { path: String, field: String },
    #[error(
        "{path}: {field} is {value:?}: not an attention kind vLLM knows (full_attention, sliding_attention, chunked_attention, mamba)"
    )]
    UnknownLayer {
        path: String,
        field: String,
        value: String,
    },
    #[error(
        "{path}: {field}: {what} is not sized by oomsim (attention, MLA and Jamba's mamba are)"
    )]
    Unsupported {
        path: String,
        field: String,
        what: &'static str,
    },
    #[error("{0:?} is not a dtype (auto, fp32, fp16, bf16, fp8)")]
    Dtype(String),
}

/// Element types a model's weights or KV cache are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Fp32,
    Fp16,
    Bf16,
    Fp8,
}

impl Dtype {
    pub fn bytes(self) -> u64 {
        match self {
            Dtype::Fp32 => 4,
            Dtype::Fp16 | Dtype::Bf16 => 2,
            Dtype::Fp8 => 1,
        }
    }

    /// `fp16`, `float16`, `half`, `bf16`, `bfloat16`, `fp32`, `float32`,
    /// `float`, `fp8` and vLLM's `fp8_e4m3` / `fp8_e5m2`.
    pub fn parse(s: &str) -> Result<Dtype, ModelError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "fp32" | "float32" | "float" => Dtype::Fp32,
            "fp16" | "float16" | "half" => Dtype::Fp16,
            "bf16" | "bfloat16" => Dtype::Bf16,
            "fp8" | "fp8_e4m3" | "fp8_e5m2" | "float8_e4m3fn" => Dtype::Fp8,
            other => return Err(ModelError::Dtype(other.to_string())),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::Fp32 => "fp32",
            Dtype::Fp16 => "fp16",
            Dtype::Bf16 => "bf16",
            Dtype::Fp8 => "fp8",
        }
    }
}

/// What mixes tokens in one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mixer {
    /// Attention over every earlier token (MLA's latent when the model has one).
    Full,
    /// Attention over the last `window` tokens.
    Sliding { window: u64 },
    /// Attention within chunks of `chunk` tokens (Llama-4's local layers).
    Chunked { chunk: u64 },
    /// A mamba layer: a fixed-size state per request, not a cache per token.
    Mamba,
}

/// One decoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub mixer: Mixer,
    /// Experts instead of a dense MLP.
    pub moe: bool,
}

/// Multi-head latent attention (DeepSeek-V2/V3): one latent of
/// `kv_lora_rank + qk_rope_head_dim` per token is cached, not K and V per head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mla {
    pub kv_lora_rank: u64,
    pub q_lora_rank: Option<u64>,
    pub qk_nope_head_dim: u64,
    pub qk_rope_head_dim: u64,
    pub v_head_dim: u64,
}

/// Mamba (v1, Jamba's) layer sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mamba {
    /// expand x hidden_size.
    pub inner: u64,
    pub d_state: u64,
    pub d_conv: u64,
    pub dt_rank: u64,
    pub conv_bias: bool,
}

/// Mixture of experts, for the layers whose `moe` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moe {
    pub experts: u64,
    /// Each expert's MLP width.
    pub expert_intermediate: u64,
    /// The always-on shared experts' total MLP width (0: none).
    pub shared_intermediate: u64,
}

/// How the linear layers' weights are stored (`quantization_config`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Quantization {
    /// One byte a weight, plus an fp32 scale per `block` x `block` tile when blocked.
    Fp8 { block: Option<u64> },
    /// `bits` a weight, an fp16 scale and a packed zero point per `group` weights (AWQ, GPTQ).
    Int { bits: u64, group: u64 },
    /// bitsandbytes: 4-bit with an fp32 absmax per 64 weights, or 8-bit with one per row.
    Bnb { bits: u64 },
}

impl Quantization {
    pub fn name(&self) -> String {
        match self {
            Quantization::Fp8 { .. } => "fp8".into(),
            Quantization::Int { bits, group } => format!("int{bits} (group {group})"),
            Quantization::Bnb { bits } => format!("bitsandbytes {bits}-bit"),
        }
    }
}

/// vLLM's derived maximum length and the key it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxLen {
    pub tokens: u64,
    pub key: String,
    /// Multiplied by a RoPE factor: vLLM prints it as a float (`131072.0`).
    pub scaled: bool,
}

impl MaxLen {
    /// As vLLM prints it in its error.
    pub fn shown(&self) -> String {
        if self.scaled {
            format!("{}.0", self.tokens)
        } else {
            self.tokens.to_string()
        }
    }
}

/// The numbers memory depends on, for the text model vLLM serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The text config's `model_type` ("" when the config names none).
    pub model_type: String,
    pub hidden_size: u64,
    pub num_attention_heads: u64,
    /// Before tensor parallelism (1 for MLA: the latent is shared).
    pub num_key_value_heads: u64,
    /// The attention head size vLLM caches: `head_dim`, or hidden / heads,
    /// or MLA's `kv_lora_rank + qk_rope_head_dim`.
    pub head_size: u64,
    pub vocab_size: u64,
    pub intermediate_size: u64,
    pub tie_word_embeddings: bool,
    /// The config's `torch_dtype`, as written.
    pub torch_dtype: Option<String>,
    /// The longest max_model_len the config allows (vLLM's derived limit).
    pub max_len: MaxLen,
    pub layers: Vec<Layer>,
    pub mla: Option<Mla>,
    pub mamba: Option<Mamba>,
    pub moe: Option<Moe>,
    pub quantization: Option<Quantization>,
    /// RMS norms in each layer (2; Gemma-2 and -3 have 4).
    pub norms_per_layer: u64,
    /// Per-head q and k norms (Qwen3, Gemma-3).
    pub qk_norm: bool,
    /// Biases on q, k and v (Qwen2).
    pub qkv_bias: bool,
}

impl ModelConfig {
    /// Read a Hugging Face config.json.
    pub fn load(path: &std::path::Path) -> Result<ModelConfig, ModelError> {
        super::hf::load(path)
    }

    pub fn num_layers(&self) -> u64 {
        self.layers.len() as u64
    }

    /// Layers with a per-token KV cache.
    pub fn attention_layers(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter().filter(|l| l.mixer != Mixer::Mamba)
    }

    /// What `torch_dtype` runs as with vLLM's `--dtype auto`: a float32
    /// config runs in bfloat16, as does a float16 Gemma-2/3 (they overflow
    /// in float16); no dtype at all is float32, so bfloat16.
    pub fn auto_dtype(&self) -> Dtype {
        let declared = self
            .torch_dtype
            .as_deref()
            .and_then(|d| Dtype::parse(d).ok());
        let no_fp16 =
            self.model_type.starts_with("gemma2") || self.model_type.starts_with("gemma3");
        match declared {
            Some(Dtype::Fp16) if !no_fp16 => Dtype::Fp16,
            _ => Dtype::Bf16,
        }
    }
}

impl ModelConfig {
    /// A plain full-attention model from its sizes alone (no config.json).
    pub fn synthetic(layers: u64, kv_heads: u64, head_dim: u64, vocab: u64) -> ModelConfig {
        ModelConfig {
            model_type: String::new(),
            hidden_size: kv_heads * head_dim,
            num_attention_heads: kv_heads,
            num_key_value_heads: kv_heads,
            head_size: head_dim,
            vocab_size: vocab,
            intermediate_size: 4 * kv_heads * head_dim,
            tie_word_embeddings: false,
            torch_dtype: None,
            max_len: MaxLen {
                tokens: 2048,
                key: "default".into(),
                scaled: false,
            },
            layers: vec![
                Layer {
                    mixer: Mixer::Full,
                    moe: false
                };
                layers as usize
            ],
            mla: None,
            mamba: None,
            moe: None,
            quantization: None,
            norms_per_layer: 2,
            qk_norm: false,
            qkv_bias: false,
        }
    }

    /// vLLM's `--dtype`: `auto` (see [`ModelConfig::auto_dtype`]) or a float type it computes in.
    pub fn compute_dtype(&self, flag: Option<&str>) -> Result<Dtype, ModelError> {
        match flag {
            None | Some("auto") => Ok(self.auto_dtype()),
            Some(d) => match Dtype::parse(d)? {
                Dtype::Fp8 => Err(ModelError::Dtype(format!(
                    "{d} (a compute dtype: fp8 weights come from quantization)"
                ))),
                t => Ok(t),
            },
        }
    }
}

/// vLLM's `--kv-cache-dtype`: `auto` stores the cache in the compute dtype.
pub fn kv_cache_dtype(flag: Option<&str>, compute: Dtype) -> Result<Dtype, ModelError> {
    match flag {
        None | Some("auto") => Ok(compute),
        Some(d) => Dtype::parse(d),
    }
}
