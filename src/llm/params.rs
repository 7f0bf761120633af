//! Parameter counts and weight bytes from a model's shape: attention (or
//! MLA's projections, or a mamba mixer), a dense MLP or experts (every
//! expert is loaded, not just the active ones), norms, embeddings and the
//! output layer unless tied; what a quantization stores for the linear
//! layers; and what one GPU holds under tensor parallelism.

use super::model::{Dtype, Mixer, ModelConfig, Quantization};

/// Parameters by how they are stored and split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    /// Linear layers' weights: quantized when the model is, split across GPUs.
    pub linear: u64,
    /// Embeddings and the output layer: never quantized, split across GPUs.
    pub vocab: u64,
    /// Norms, biases, routers, mamba's small tensors: in the model's dtype,
    /// every GPU holding its own copy.
    pub replicated: u64,
}

impl Params {
    pub fn total(&self) -> u64 {
        self.linear + self.vocab + self.replicated
    }

    fn add(&mut self, other: Params) {
        self.linear += other.linear;
        self.vocab += other.vocab;
        self.replicated += other.replicated;
    }
}

fn linear(n: u64) -> Params {
    Params {
        linear: n,
        ..Params::default()
    }
}

fn replicated(n: u64) -> Params {
    Params {
        replicated: n,
        ..Params::default()
    }
}

impl ModelConfig {
    pub fn params(&self) -> Params {
        let h = self.hidden_size;
        let mut p = Params {
            vocab: self.vocab_size * h * if self.tie_word_embeddings { 1 } else { 2 },
            // The final norm.
            replicated: h,
            ..Params::default()
        };
        for layer in &self.layers {
            p.add(match layer.mixer {
                Mixer::Mamba => self.mamba_params(),
                _ => self.attention_params(),
            });
            p.add(self.mlp_params(layer.moe));
            p.add(replicated(self.norms_per_layer * h));
        }
        p
    }

    /// Every parameter, as a model card counts them.
    pub fn parameters(&self) -> u64 {
        self.params().total()
    }

    fn attention_params(&self) -> Params {
        let h = self.hidden_size;
        let heads = self.num_attention_heads;
        if let Some(m) = self.mla {
            let qk = m.qk_nope_head_dim + m.qk_rope_head_dim;
            let q = match m.q_lora_rank {
                Some(r) => linear(h * r + r * heads * qk).with_replicated(r),
                None => linear(h * heads * qk),
            };
            let mut p = q;
            // kv_a_proj_with_mqa (replicated in vLLM), its norm, kv_b_proj, o_proj.
            p.add(replicated(
                h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank,
            ));
            p.add(linear(
                m.kv_lora_rank * heads * (m.qk_nope_head_dim + m.v_head_dim)
                    + heads * m.v_head_dim * h,
            ));
            return p;
        }
        let d = self.head_size;
        let kv = self.num_key_value_heads;
        let mut p = linear(h * heads * d + 2 * h * kv * d + heads * d * h);
        if self.qkv_bias {
            p.add(replicated((heads + 2 * kv) * d));
        }
        if self.qk_norm {
            p.add(replicated(2 * d));
        }
        p
    }

    /// Jamba's mamba mixer: in/x/dt/out projections, the convolution, A and
    /// D, and the dt/B/C norms.
    fn mamba_params(&self) -> Params {
        let Some(m) = self.mamba else {
            return Params::default();
        };
        let h = self.hidden_size;
        let i = m.inner;
        let mut p = linear(h * 2 * i + i * (m.dt_rank + 2 * m.d_state) + m.dt_rank * i + i * h);
        let conv_bias = if m.conv_bias { i } else { 0 };
        p.add(replicated(
            i * m.d_conv + conv_bias + i + i * m.d_state + i + m.dt_rank + 2 * m.d_state,
        ));
        p
    }

    /// A gated MLP (gate, up, down), or the experts, their router and the shared experts.
    fn mlp_params(&self, moe: bool) -> Params {
        let h = self.hidden_size;
        match (moe, self.moe) {
            (true, Some(m)) => {
                let mut p = linear(
                    m.experts * 3 * h * m.expert_intermediate + 3 * h * m.shared_intermediate,
                );
                p.add(replicated(h * m.experts));
                p
            }
            _ => linear(3 * h * self.intermediate_size),
        }
    }

    /// Bytes of weights one GPU holds when the model runs in `dtype` over
    /// `tp` GPUs: the split parts divided (rounded up), the rest whole.
    pub fn weight_bytes(&self, dtype: Dtype, tp: u64) -> u64 {
        let p = self.params();
        let linear = match self.quantization {
            None => p.linear * dtype.bytes(),
            Some(q) => quantized_bytes(p.linear, q),
        };
        (linear + p.vocab * dtype.bytes()).div_ceil(tp.max(1)) + p.replicated * dtype.bytes()
    }
}

impl Params {
    fn with_replicated(mut self, n: u64) -> Params {
        self.replicated += n;
        self
    }
}

/// What `n` linear weights take in a quantized checkpoint.
fn quantized_bytes(n: u64, q: Quantization) -> u64 {
    match q {
        // One byte each; an fp32 scale per block x block tile.
        Quantization::Fp8 { block } => n + block.map_or(0, |b| n / (b * b).max(1) * 4),
        // bits each, packed; per group an fp16 scale and a packed zero point.
        Quantization::Int { bits, group } => {
            let groups = n / group.max(1);
            (n * bits).div_ceil(8) + groups * 2 + (groups * bits).div_ceil(8)
        }
        // NF4 with an fp32 absmax per 64 weights; int8 with an fp32 scale per row (small).
        Quantization::Bnb { bits: 4 } => n.div_ceil(2) + n / 64 * 4,
        Quantization::Bnb { .. } => n,
    }
}
