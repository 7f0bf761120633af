//! vLLM 0.33's KV cache planning, layer by layer
//! (vllm/v1/kv_cache_interface.py, vllm/v1/core/kv_cache_planning.py,
//! vllm/v1/core/kv_cache_utils.py).
//!
//! - Each layer has a spec: full attention and MLA hold every token, a
//!   sliding window the last `window - 1` plus the tokens in flight (+1 block:
//!   the window need not start on a block boundary), chunked local attention
//!   its chunk plus the tokens in flight, a mamba layer one state. A page is
//!   one block of one layer: `block x kv_heads x 2 x head x dtype` (MLA: one
//!   latent, no 2), a mamba page its state.
//! - Layers with equal specs form one group; a hybrid model's pages are made
//!   equal (smaller attention pages take a larger block, mamba pages are
//!   padded), its layers bucketed by spec and split into groups of the
//!   smallest bucket's size (the largest, when under 1.5x the smallest),
//!   round-robin. With the hybrid manager off (`--disable-hybrid-kv-cache-manager`,
//!   or a KV connector without it) local layers count as full attention.
//! - One pool of blocks serves every group: a block is one page of each
//!   layer of the widest group, `num_blocks = available // bytes_per_block`.
//!   A request of max_model_len takes each group's pages; the start-up check
//!   reserves the null block; the log line's concurrency is `num_blocks /
//!   pages per request`, its tokens that times max_model_len, truncated.

use serde::{Deserialize, Serialize};

use super::model::{Dtype, Mixer, ModelConfig};

/// What one layer's cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpecKind {
    FullAttention,
    SlidingWindow { window: u64 },
    ChunkedLocal { chunk: u64 },
    Mla,
    Mamba,
}

impl std::fmt::Display for SpecKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpecKind::FullAttention => f.write_str("full attention"),
            SpecKind::SlidingWindow { window } => write!(f, "sliding window {window}"),
            SpecKind::ChunkedLocal { chunk } => write!(f, "chunked local {chunk}"),
            SpecKind::Mla => f.write_str("MLA latent"),
            SpecKind::Mamba => f.write_str("mamba state"),
        }
    }
}

/// One layer's KV cache spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Spec {
    #[serde(flatten)]
    pub kind: SpecKind,
    /// Tokens a block holds (for a mamba state: the attention block it is padded to).
    pub block_size: u64,
    /// Bytes of one block of one layer.
    pub page_bytes: u64,
}

/// What the per-request sizes depend on besides the model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub max_model_len: u64,
    pub block_size: u64,
    /// Tokens scheduled but not yet freed: max_num_batched_tokens x the
    /// concurrent batches (2 with async scheduling, vLLM's default).
    pub in_flight_tokens: u64,
    pub kv_dtype: Dtype,
    pub tensor_parallel: u64,
    /// `--disable-hybrid-kv-cache-manager`.
    pub hybrid_disabled: bool,
    /// Mamba states kept per request: 1, or 2 in `align` cache mode (prefix caching).
    pub mamba_states: u64,
}

impl Spec {
    /// Blocks one request of `len` tokens may hold (the most, as planned).
    pub fn pages_for(&self, len: u64, s: &Settings) -> u64 {
        let bs = self.block_size;
        match self.kind {
            SpecKind::FullAttention | SpecKind::Mla => len.div_ceil(bs),
            SpecKind::SlidingWindow { window } => {
                (window - 1 + s.in_flight_tokens).min(len).div_ceil(bs) + 1
            }
            SpecKind::ChunkedLocal { chunk } => (chunk + s.in_flight_tokens).min(len).div_ceil(bs),
            SpecKind::Mamba => s.mamba_states,
        }
    }

    /// Blocks a running sequence of `len` tokens holds while decoding:
    /// out-of-window blocks are freed as the window moves on.
    pub fn held_at(&self, len: u64, s: &Settings) -> u64 {
        if len == 0 {
            return 0;
        }
        let bs = self.block_size;
        let last = (len - 1) / bs;
        match self.kind {
            SpecKind::FullAttention | SpecKind::Mla => last + 1,
            SpecKind::SlidingWindow { window } => last + 1 - len.saturating_sub(window) / bs,
            SpecKind::ChunkedLocal { chunk } => last + 1 - (len - 1) / chunk * chunk / bs,
            SpecKind::Mamba => s.mamba_states,
        }
    }
}

/// A group of layers sharing one block table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    #[serde(flatten)]
    pub spec: Spec,
    /// The layers' indices in the model.
    pub layers: Vec<u64>,
}

/// The groups and the pool's block size in bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub groups: Vec<Group>,
    /// One block of the pool: a page of every layer of the widest group.
    pub bytes_per_block: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LayoutError {
    #[error(
        "Total number of attention heads ({heads}) must be divisible by tensor parallel size ({tp})."
    )]
    Heads { heads: u64, tp: u64 },
    #[error(
        "Total number of key-value heads ({kv}) must be divisible by tensor parallel size ({tp}), or tensor parallel size by it."
    )]
    KvHeads { kv: u64, tp: u64 },
}

/// vLLM rounds the attention block up so that one block of an attention
/// layer is at least one mamba state, in steps of 16 tokens
/// (vllm/model_executor/models/config.py, HybridAttentionMambaModelConfig).
const MAMBA_BLOCK_ALIGN: u64 = 16;

impl ModelConfig {
    /// KV heads one GPU holds: divided among the GPUs, replicated when fewer.
    pub fn kv_heads_per_rank(&self, tp: u64) -> u64 {
        if self.mla.is_some() {
            1
        } else {
            (self.num_key_value_heads / tp.max(1)).max(1)
        }
    }

    /// vLLM's tensor-parallel checks: attention heads split evenly, and KV
    /// heads split evenly or replicate evenly.
    pub fn check_tp(&self, tp: u64) -> Result<(), LayoutError> {
        let heads = self.num_attention_heads;
        if !heads.is_multiple_of(tp) {
            return Err(LayoutError::Heads { heads, tp });
        }
        let kv = self.num_key_value_heads;
        if self.mla.is_none() && !(kv.is_multiple_of(tp) || tp.is_multiple_of(kv)) {
            return Err(LayoutError::KvHeads { kv, tp });
        }
        Ok(())
    }

    /// One token of one attention layer on one GPU, in bytes (K and V, or MLA's latent).
    fn attention_token_bytes(&self, s: &Settings) -> u64 {
        let per_head = self.head_size * s.kv_dtype.bytes();
        match self.mla {
            Some(_) => per_head,
            None => 2 * self.kv_heads_per_rank(s.tensor_parallel) * per_head,
        }
    }

    /// Bytes of one mamba layer's state on one GPU: the convolution state
    /// `(d_conv - 1) x inner` and the SSM state `inner x d_state`, split by TP.
    pub fn mamba_state_bytes(&self, s: &Settings, dtype: Dtype) -> u64 {
        self.mamba.map_or(0, |m| {
            let inner = m.inner / s.tensor_parallel.max(1);
            ((m.d_conv - 1) * inner + inner * m.d_state) * dtype.bytes()
        })
    }

    /// Every layer's KV bytes for one token (mamba layers hold none per token).
    pub fn kv_bytes_per_token(&self, s: &Settings) -> u64 {
        self.attention_layers().count() as u64 * self.attention_token_bytes(s)
    }

    /// The block size vLLM runs with: asked for, or raised for a mamba state.
    pub fn effective_block_size(&self, s: &Settings, dtype: Dtype) -> u64 {
        let state = self.mamba_state_bytes(s, dtype);
        if state == 0 {
            return s.block_size;
        }
        let token = self.attention_token_bytes(s);
        let needed = MAMBA_BLOCK_ALIGN * state.div_ceil(MAMBA_BLOCK_ALIGN * token);
        s.block_size.max(needed)
    }

    /// Each layer's spec, in layer order.
    pub fn specs(&self, s: &Settings, dtype: Dtype) -> Vec<(u64, Spec)> {
        let bs = self.effective_block_size(s, dtype);
        let page = bs * self.attention_token_bytes(s);
        let hybrid_off = s.hybrid_disabled;
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let kind = match l.mixer {
                    Mixer::Mamba => SpecKind::Mamba,
                    _ if self.mla.is_some() => SpecKind::Mla,
                    Mixer::Full => SpecKind::FullAttention,
                    Mixer::Sliding { window } => SpecKind::SlidingWindow { window },
                    Mixer::Chunked { chunk } => SpecKind::ChunkedLocal { chunk },
                };
                let page_bytes = match kind {
                    // The state is padded to an attention page.
                    SpecKind::Mamba => page.max(self.mamba_state_bytes(s, dtype)),
                    _ => page,
                };
                (
                    i as u64,
                    Spec {
                        kind,
                        block_size: bs,
                        page_bytes,
                    },
                )
            })
            .map(|(i, spec)| (i, if hybrid_off { promote(spec) } else { spec }))
            .collect()
    }

    /// The layers grouped as vLLM groups them.
    pub fn layout(&self, s: &Settings, dtype: Dtype) -> Result<Layout, LayoutError> {
        self.check_tp(s.tensor_parallel)?;
        Ok(group(self.specs(s, dtype)))
    }
}

/// With the hybrid manager off, local attention is allocated as full attention.
fn promote(spec: Spec) -> Spec {
    match spec.kind {
        SpecKind::SlidingWindow { .. } | SpecKind::ChunkedLocal { .. } => Spec {
            kind: SpecKind::FullAttention,
            ..spec
        },
        _ => spec,
    }
}

/// `get_kv_cache_groups` for the specs a decoder has.
fn group(specs: Vec<(u64, Spec)>) -> Layout {
    // Most models: one spec for every layer, one group.
    if let Some(&(_, first)) = specs.first()
        && specs.iter().all(|(_, s)| *s == first)
    {
        return Layout {
            bytes_per_block: specs.len() as u64 * first.page_bytes,
            groups: vec![Group {
                spec: first,
                layers: specs.into_iter().map(|(i, _)| i).collect(),
            }],
        };
    }
    let max_page = specs.iter().map(|(_, s)| s.page_bytes).max().unwrap_or(0);
    // unify_kv_cache_spec_page_size: a smaller attention page takes a
    // proportionally larger block, or is padded when that does not divide.
    let specs = specs.into_iter().map(|(i, s)| {
        let unified = if s.page_bytes == max_page || s.kind == SpecKind::Mamba {
            Spec {
                page_bytes: max_page,
                ..s
            }
        } else if max_page.is_multiple_of(s.page_bytes) {
            Spec {
                block_size: s.block_size * (max_page / s.page_bytes),
                page_bytes: max_page,
                ..s
            }
        } else {
            Spec {
                page_bytes: max_page,
                ..s
            }
        };
        (i, unified)
    });
    // Buckets of equal specs, in the order of each one's first layer.
    let mut buckets: Vec<(Spec, Vec<u64>)> = Vec::new();
    for (i, s) in specs {
        match buckets.iter_mut().find(|(b, _)| *b == s) {
            Some((_, layers)) => layers.push(i),
            None => buckets.push((s, vec![i])),
        }
    }
    let min = buckets.iter().map(|(_, l)| l.len()).min().unwrap_or(0);
    let max = buckets.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
    let group_size = if (max as f64) < min as f64 * 1.5 {
        max
    } else {
        min
    };
    let mut groups = Vec::new();
    for (spec, layers) in buckets {
        let n = layers.len().div_ceil(group_size.max(1));
        for k in 0..n {
            groups.push(Group {
                spec,
                layers: layers.iter().skip(k).step_by(n).copied().collect(),
            });
        }
    }
    let widest = groups
        .iter()
        .map(|g| g.layers.len() as u64)
        .max()
        .unwrap_or(0);
    Layout {
        bytes_per_block: widest * max_page,
        groups,
    }
}

impl Layout {
    /// Blocks of the pool one request of `len` tokens takes, over all groups.
    pub fn pages_for(&self, len: u64, s: &Settings) -> u64 {
        self.groups.iter().map(|g| g.spec.pages_for(len, s)).sum()
    }

    /// KV memory one request of `len` tokens needs.
    pub fn needed_bytes(&self, len: u64, s: &Settings) -> u64 {
        self.bytes_per_block * self.pages_for(len, s)
    }

    /// The smallest group's block, in tokens (vLLM counts the pool in these).
    pub fn min_block_size(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| g.spec.block_size)
            .min()
            .unwrap_or(1)
    }

    pub fn num_blocks(&self, available: u64) -> u64 {
        available / self.bytes_per_block.max(1)
    }

    /// vLLM's "Maximum concurrency for N tokens per request".
    pub fn max_concurrency(&self, num_blocks: u64, s: &Settings) -> f64 {
        num_blocks as f64 / self.pages_for(s.max_model_len, s).max(1) as f64
    }

    /// The longest max_model_len whose request fits in `check_bytes` (0: not
    /// even one token): vLLM's binary search over [1, max_model_len].
    pub fn largest_len(&self, check_bytes: u64, s: &Settings) -> u64 {
        let fits = |len: u64| self.needed_bytes(len, s) <= check_bytes;
        let (mut lo, mut hi) = (1u64, s.max_model_len);
        if fits(hi) {
            return hi;
        }
        if !fits(lo) {
            return 0;
        }
        let mut best = 1;
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                best = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        best
    }
}
