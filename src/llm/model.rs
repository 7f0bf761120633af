//! Hugging Face `config.json`: the numbers memory depends on (layers,
//! heads, key-value heads, hidden size, head_dim, vocabulary, MLP size,
//! dtype, sliding window), the weight bytes they imply, and the KV cache
//! bytes per token vLLM computes from them.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot read the model config: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a Hugging Face config.json with the fields oomsim needs: {source}")]
    Shape {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: {field} is {value}: it must be more than zero")]
    Zero {
        path: String,
        field: &'static str,
        value: u64,
    },
    #[error("{0:?} is not a dtype (fp32, fp16, bf16, fp8)")]
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

/// The fields of config.json that memory depends on.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ModelConfig {
    pub num_hidden_layers: u64,
    pub num_attention_heads: u64,
    /// Absent: multi-head attention, as many KV heads as attention heads.
    #[serde(default)]
    pub num_key_value_heads: Option<u64>,
    pub hidden_size: u64,
    #[serde(default)]
    pub head_dim: Option<u64>,
    pub vocab_size: u64,
    #[serde(default)]
    pub intermediate_size: Option<u64>,
    #[serde(default)]
    pub torch_dtype: Option<String>,
    #[serde(default)]
    pub sliding_window: Option<u64>,
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    #[serde(default)]
    pub max_position_embeddings: Option<u64>,
}

impl ModelConfig {
    pub fn load(path: &Path) -> Result<ModelConfig, ModelError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: shown.clone(),
            source,
        })?;
        let cfg: ModelConfig = serde_json::from_str(&text).map_err(|source| ModelError::Shape {
            path: shown.clone(),
            source,
        })?;
        cfg.validate(&shown)?;
        Ok(cfg)
    }

    /// Every count the arithmetic divides by or multiplies with is non-zero;
    /// `shown` names the config (or the flags it came from).
    pub fn validate(&self, shown: &str) -> Result<(), ModelError> {
        let zero = |field, value: Option<u64>| match value {
            Some(0) => Err(ModelError::Zero {
                path: shown.to_string(),
                field,
                value: 0,
            }),
            _ => Ok(()),
        };
        zero("num_hidden_layers", Some(self.num_hidden_layers))?;
        zero("num_attention_heads", Some(self.num_attention_heads))?;
        zero("hidden_size", Some(self.hidden_size))?;
        zero("num_key_value_heads", self.num_key_value_heads)?;
        zero("head_dim", self.head_dim)?;
        // hidden_size / heads: a config with more heads than hidden units has none.
        zero(
            "head_dim (hidden_size / num_attention_heads)",
            Some(self.head_dim()),
        )
    }

    pub fn kv_heads(&self) -> u64 {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> u64 {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// The dtype config.json declares, if it names one oomsim knows.
    pub fn dtype(&self) -> Option<Dtype> {
        self.torch_dtype
            .as_deref()
            .and_then(|d| Dtype::parse(d).ok())
    }

    /// Parameters of a Llama-style decoder (attention with grouped KV heads,
    /// gated MLP, RMS norms, untied or tied output): Llama, Mistral, Qwen2
    /// (whose QKV biases are left out, under 0.01%).
    pub fn parameters(&self) -> u64 {
        let h = self.hidden_size;
        let hd = self.head_dim();
        let q = h * self.num_attention_heads * hd;
        let kv = 2 * h * self.kv_heads() * hd;
        let o = self.num_attention_heads * hd * h;
        let mlp = 3 * h * self.intermediate_size.unwrap_or(4 * h);
        let per_layer = q + kv + o + mlp + 2 * h;
        let embed = self.vocab_size * h;
        let head = if self.tie_word_embeddings.unwrap_or(false) {
            0
        } else {
            embed
        };
        self.num_hidden_layers * per_layer + embed + head + h
    }

    pub fn weight_bytes(&self, dtype: Dtype) -> u64 {
        self.parameters() * dtype.bytes()
    }

    /// K and V for every layer: 2 x layers x kv_heads x head_dim x dtype bytes.
    pub fn kv_bytes_per_token(&self, kv_dtype: Dtype) -> u64 {
        2 * self.num_hidden_layers * self.kv_heads() * self.head_dim() * kv_dtype.bytes()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Llama-3-8B's config.json, as shipped in scenarios/models/.
    pub(crate) fn llama3_8b() -> ModelConfig {
        serde_json::from_str(
            r#"{"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,
            "hidden_size":4096,"vocab_size":128256,"intermediate_size":14336,
            "torch_dtype":"bfloat16","max_position_embeddings":8192,"rope_theta":500000.0}"#,
        )
        .unwrap()
    }

    #[test]
    fn zero_counts_are_refused_with_the_field_named() {
        let mut c = llama3_8b();
        assert!(c.validate("m.json").is_ok());
        c.num_key_value_heads = Some(0);
        let e = c.validate("m.json").unwrap_err().to_string();
        assert_eq!(
            e,
            "m.json: num_key_value_heads is 0: it must be more than zero"
        );
        let mut c = llama3_8b();
        c.head_dim = Some(0);
        assert!(
            c.validate("m.json")
                .unwrap_err()
                .to_string()
                .contains("head_dim")
        );
        let mut c = llama3_8b();
        c.hidden_size = 16;
        assert!(
            c.validate("m.json")
                .unwrap_err()
                .to_string()
                .contains("hidden_size / num_attention_heads")
        );
    }

    #[test]
    fn llama3_8b_by_hand() {
        let c = llama3_8b();
        // 2 x 32 layers x 8 kv heads x 128 x 2 bytes = 131072 bytes (128 KiB) a token.
        assert_eq!(c.kv_bytes_per_token(Dtype::Bf16), 131_072);
        assert_eq!(c.kv_bytes_per_token(Dtype::Fp8), 65_536);
        // 32 x 218,112,000 + 2 x 525,336,576 + 4096 = 8,030,261,248 (Meta: 8.03B).
        assert_eq!(c.parameters(), 8_030_261_248);
        assert_eq!(c.dtype(), Some(Dtype::Bf16));
    }

    #[test]
    fn multi_head_without_kv_heads() {
        // Llama-2-7B: no num_key_value_heads, 32 x 128 head_dim.
        let c: ModelConfig = serde_json::from_str(
            r#"{"num_hidden_layers":32,"num_attention_heads":32,"hidden_size":4096,
            "vocab_size":32000,"intermediate_size":11008,"torch_dtype":"float16"}"#,
        )
        .unwrap();
        assert_eq!(c.kv_heads(), 32);
        // 2 x 32 x 32 x 128 x 2 = 524288 (512 KiB a token).
        assert_eq!(c.kv_bytes_per_token(Dtype::Fp16), 524_288);
        // 6,738,415,616 parameters (Meta: 6.74B).
        assert_eq!(c.parameters(), 6_738_415_616);
    }

    #[test]
    fn dtype_names() {
        assert_eq!(Dtype::parse("bfloat16").unwrap(), Dtype::Bf16);
        assert_eq!(Dtype::parse("FP8_E5M2").unwrap(), Dtype::Fp8);
        assert!(
            Dtype::parse("int4")
                .unwrap_err()
                .to_string()
                .contains("not a dtype")
        );
    }
}
