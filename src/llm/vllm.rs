//! vLLM 0.33's memory budget and start-up, on one GPU of a tensor-parallel
//! group: what it requests, what the profile run takes from that, what is
//! left for the KV cache, how that is cut into blocks (see [`super::kv`]),
//! whether the engine starts, and the error it stops with when not.
//!
//! Followed from vllm/v1/worker/gpu_worker.py (`determine_available_memory`),
//! vllm/v1/worker/utils.py (`request_memory`), vllm/config/model.py
//! (`_get_and_verify_max_len`, the tensor-parallel check),
//! vllm/engine/arg_utils.py (`get_batch_defaults`) and
//! vllm/v1/core/kv_cache_planning.py (`get_kv_cache_configs`,
//! `_check_enough_kv_cache_memory`), vLLM 0.33.0.

use serde::{Deserialize, Serialize};

use super::kv::{self, Layout, Settings};
use super::model::{Dtype, ModelConfig};

/// The vLLM release this arithmetic follows.
pub const VLLM_VERSION: &str = "0.33.0";
pub const DEFAULT_UTILIZATION: f64 = 0.92;
pub const DEFAULT_BLOCK_SIZE: u64 = 16;
pub const DEFAULT_NON_TORCH: u64 = 512 << 20;
pub const DEFAULT_CUDA_GRAPHS: u64 = 512 << 20;
/// The CUDA context and what else this process holds outside vLLM's count.
pub const DEFAULT_MARGIN: u64 = 1 << 30;
/// Batches in flight at once: two with async scheduling (the default) and no pipeline parallelism.
pub const CONCURRENT_BATCHES: u64 = 2;
const GIB: f64 = (1u64 << 30) as f64;

/// `vllm serve`'s max_num_seqs and max_num_batched_tokens for a GPU:
/// 1024 and 16384 from 160 GiB, 1024 and 8192 from 70 GiB (not an A100),
/// else 256 and 2048.
pub fn serve_defaults(gpu_memory_bytes: u64, gpu_name: &str) -> (u64, u64) {
    let gib = 1u64 << 30;
    if gpu_memory_bytes >= 160 * gib {
        (1024, 16384)
    } else if gpu_memory_bytes >= 70 * gib && !gpu_name.to_ascii_lowercase().contains("a100") {
        (1024, 8192)
    } else {
        (256, 2048)
    }
}

/// Everything the arithmetic depends on (carried to a kv-cache workload,
/// which fills in the device's capacity when it starts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    pub model: ModelConfig,
    /// What the model computes in (`--dtype`).
    pub dtype: Dtype,
    pub kv_dtype: Dtype,
    pub gpu_memory_bytes: u64,
    pub utilization: f64,
    pub tensor_parallel: u64,
    pub max_model_len: u64,
    pub max_num_seqs: u64,
    pub max_num_batched_tokens: u64,
    pub block_size: u64,
    pub hybrid_disabled: bool,
    /// Prefix caching keeps two mamba states a request (`align` mode).
    pub prefix_caching: bool,
    pub kv_cache_memory: Option<u64>,
    pub weights: Option<u64>,
    pub activation: Option<u64>,
    pub non_torch_bytes: u64,
    pub cuda_graph_bytes: u64,
    /// Held on the same GPU by another process.
    pub other_bytes: u64,
    pub margin_bytes: u64,
}

impl Inputs {
    /// vLLM's defaults for everything but the model and the GPU.
    pub fn new(model: ModelConfig, gpu_memory_bytes: u64) -> Inputs {
        let (seqs, batched) = serve_defaults(gpu_memory_bytes, "");
        Inputs {
            max_model_len: model.max_len.tokens,
            dtype: model.auto_dtype(),
            kv_dtype: model.auto_dtype(),
            model,
            gpu_memory_bytes,
            utilization: DEFAULT_UTILIZATION,
            tensor_parallel: 1,
            max_num_seqs: seqs,
            max_num_batched_tokens: batched,
            block_size: DEFAULT_BLOCK_SIZE,
            hybrid_disabled: false,
            prefix_caching: true,
            kv_cache_memory: None,
            weights: None,
            activation: None,
            non_torch_bytes: DEFAULT_NON_TORCH,
            cuda_graph_bytes: DEFAULT_CUDA_GRAPHS,
            other_bytes: 0,
            margin_bytes: DEFAULT_MARGIN,
        }
    }

    /// The settings the per-layer specs depend on.
    pub fn settings(&self) -> Settings {
        // The scheduler never batches more than every sequence at full length.
        let batched = self
            .max_num_batched_tokens
            .min(self.max_num_seqs.saturating_mul(self.max_model_len));
        Settings {
            max_model_len: self.max_model_len,
            block_size: self.block_size,
            in_flight_tokens: CONCURRENT_BATCHES * batched,
            kv_dtype: self.kv_dtype,
            tensor_parallel: self.tensor_parallel,
            hybrid_disabled: self.hybrid_disabled,
            mamba_states: if self.prefix_caching { 2 } else { 1 },
        }
    }

    pub fn layout(&self) -> Result<Layout, kv::LayoutError> {
        self.model.layout(&self.settings(), self.dtype)
    }

    /// Weights on one GPU.
    pub fn weights_bytes(&self) -> u64 {
        self.weights
            .unwrap_or_else(|| self.model.weight_bytes(self.dtype, self.tensor_parallel))
    }

    /// The profile run's peak (an estimate unless `--activation` gives the
    /// figure vLLM logged): every batched token through the widest layer
    /// (hidden + MLP width, two live buffers), and the sampler's fp32 logits
    /// for up to max_num_seqs rows, which the profile run samples too.
    pub fn activation_bytes(&self) -> u64 {
        self.activation.unwrap_or_else(|| {
            let m = &self.model;
            let width = (m.hidden_size + m.intermediate_size) / self.tensor_parallel.max(1);
            let rows = self.max_num_batched_tokens.min(self.max_num_seqs);
            self.max_num_batched_tokens * width * 2 * self.dtype.bytes() + rows * m.vocab_size * 4
        })
    }

    /// `math.ceil(total x gpu_memory_utilization)`.
    pub fn requested_bytes(&self, utilization: f64) -> u64 {
        (self.gpu_memory_bytes as f64 * utilization).ceil() as u64
    }

    /// What vLLM's share holds besides the KV cache (each part counted once).
    pub fn fixed(&self) -> Fixed {
        let weights = self.weights_bytes();
        let activation = self.activation_bytes();
        Fixed {
            weights,
            activation,
            all: weights + activation + self.non_torch_bytes + self.cuda_graph_bytes,
        }
    }

    /// Free on the GPU when vLLM starts: all but other processes and this one's context.
    pub fn free_at_start(&self) -> u64 {
        self.gpu_memory_bytes
            .saturating_sub(self.other_bytes + self.margin_bytes)
    }

    /// The pool's blocks at a utilization, and the longest max_model_len
    /// that starts with them (0 if none).
    pub fn capacity_at(&self, utilization: f64) -> (u64, u64) {
        let Ok(l) = self.layout() else {
            return (0, 0);
        };
        let budget = self.kv_budget_at(utilization);
        let check = budget - l.bytes_per_block as i64;
        if check <= 0 {
            return (0, 0);
        }
        (
            l.num_blocks(budget as u64),
            l.largest_len(check as u64, &self.settings()),
        )
    }

    /// Requests of `len` tokens that hold their blocks at once in a pool of
    /// `blocks` (the null block kept back).
    pub fn concurrent_with(&self, blocks: u64, len: u64) -> u64 {
        let s = self.settings();
        self.layout().map_or(0, |l| {
            blocks.saturating_sub(1) / l.pages_for(len.max(1), &s).max(1)
        })
    }

    /// Bytes vLLM gives the KV cache at a utilization (negative: short by that much).
    pub fn kv_budget_at(&self, utilization: f64) -> i64 {
        self.kv_budget_with(utilization, &self.fixed())
    }

    fn kv_budget_with(&self, utilization: f64, fixed: &Fixed) -> i64 {
        match self.kv_cache_memory {
            Some(b) => b as i64,
            None => self.requested_bytes(utilization) as i64 - fixed.all as i64,
        }
    }
}

/// Why vLLM would not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// max_model_len above what the config allows.
    MaxModelLen,
    /// Heads that do not split over the GPUs.
    TensorParallel,
    /// Less free than it is asked to take.
    FreeMemory,
    /// The weights alone do not fit: CUDA out of memory while loading.
    Weights,
    /// Nothing left for the KV cache.
    NoKvMemory,
    /// Not enough for one request of max_model_len.
    KvTooSmall,
}

/// One layer group as `--json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    #[serde(flatten)]
    pub spec: kv::Spec,
    pub num_layers: u64,
    pub layers: Vec<u64>,
    /// Pages of this group one request of max_model_len takes.
    pub pages_per_request: u64,
}

/// What `oomsim vllm plan --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct VllmPlan {
    pub vllm_version: &'static str,
    pub gpu_memory_bytes: u64,
    pub gpu_memory_utilization: f64,
    pub tensor_parallel_size: u64,
    pub max_model_len: u64,
    pub max_num_seqs: u64,
    pub max_num_batched_tokens: u64,
    pub dtype: Dtype,
    pub kv_cache_dtype: Dtype,
    pub block_size: u64,
    pub parameters: u64,
    /// On one GPU.
    pub weights_bytes: u64,
    pub activation_bytes: u64,
    pub non_torch_bytes: u64,
    pub cuda_graph_bytes: u64,
    pub requested_bytes: u64,
    /// Negative when the fixed costs alone exceed what vLLM may use.
    pub kv_budget_bytes: i64,
    pub groups: Vec<GroupReport>,
    /// One block of the pool: a page of each layer of the widest group.
    pub bytes_per_block: u64,
    /// Every layer's KV bytes for one token, on one GPU.
    pub kv_bytes_per_token: u64,
    /// vLLM's number of GPU blocks (the null block among them).
    pub kv_blocks: u64,
    /// The two figures of vLLM's "GPU KV cache size" line.
    pub kv_tokens: u64,
    pub max_concurrency: f64,
    /// Requests of max_model_len that can hold their blocks at once (the null block excluded).
    pub max_concurrent_at_max_len: u64,
    /// vLLM's log line, when it starts.
    pub log_line: Option<String>,
    pub starts: bool,
    pub refusal: Option<Refusal>,
    /// The error vLLM would stop with, when it would not start.
    pub error: Option<String>,
    /// The longest max_model_len that would start with this memory.
    pub largest_max_model_len: u64,
    pub other_bytes: u64,
    pub margin_bytes: u64,
    /// What the GPU has left beyond vLLM's share and what else is on it.
    pub headroom_bytes: i64,
}

/// vLLM's `format_gib`: GiB rounded to two places, as Python prints a float.
pub fn format_gib(bytes: u64) -> String {
    let g = (bytes as f64 / GIB * 100.0).round() / 100.0;
    if g.fract() == 0.0 {
        format!("{g:.1}")
    } else {
        format!("{g}")
    }
}

/// Python's `f"{n:,}"`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const CONSERVING: &str =
    "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.";

pub fn plan(inp: &Inputs) -> VllmPlan {
    let s = inp.settings();
    let layout = inp.layout();
    let requested = inp.requested_bytes(inp.utilization);
    let fixed = inp.fixed();
    let budget = inp.kv_budget_with(inp.utilization, &fixed);
    let parameters = inp.model.parameters();
    let (bytes_per_block, kv_blocks) = match &layout {
        Ok(l) if budget > 0 => (l.bytes_per_block, l.num_blocks(budget as u64)),
        Ok(l) => (l.bytes_per_block, 0),
        Err(_) => (0, 0),
    };
    let pages = layout
        .as_ref()
        .map_or(0, |l| l.pages_for(s.max_model_len, &s));
    let max_concurrency = layout
        .as_ref()
        .map_or(0.0, |l| l.max_concurrency(kv_blocks, &s));
    let kv_tokens = (max_concurrency * s.max_model_len as f64) as u64;
    // What the start-up check plans against: the null block held back.
    let check = budget - bytes_per_block as i64;
    let largest = match &layout {
        Ok(l) if check > 0 => l.largest_len(check as u64, &s),
        _ => 0,
    };
    let (refusal, error) = match refusal(inp, &layout, fixed, check, largest) {
        Some((r, e)) => (Some(r), Some(e)),
        None => (None, None),
    };
    let starts = refusal.is_none();
    let log_line = starts.then(|| {
        format!(
            "GPU KV cache size: {} tokens, Maximum concurrency for {} tokens per request: {max_concurrency:.2}x",
            thousands(kv_tokens),
            thousands(s.max_model_len)
        )
    });
    let outside = inp.other_bytes + inp.margin_bytes;
    let groups = layout.map_or_else(
        |_| Vec::new(),
        |l| {
            l.groups
                .into_iter()
                .map(|g| GroupReport {
                    spec: g.spec,
                    num_layers: g.layers.len() as u64,
                    pages_per_request: g.spec.pages_for(s.max_model_len, &s),
                    layers: g.layers,
                })
                .collect()
        },
    );
    VllmPlan {
        vllm_version: VLLM_VERSION,
        gpu_memory_bytes: inp.gpu_memory_bytes,
        gpu_memory_utilization: inp.utilization,
        tensor_parallel_size: inp.tensor_parallel,
        max_model_len: s.max_model_len,
        max_num_seqs: inp.max_num_seqs,
        max_num_batched_tokens: inp.max_num_batched_tokens,
        dtype: inp.dtype,
        kv_cache_dtype: inp.kv_dtype,
        block_size: inp.model.effective_block_size(&s, inp.dtype),
        parameters,
        weights_bytes: fixed.weights,
        activation_bytes: fixed.activation,
        non_torch_bytes: inp.non_torch_bytes,
        cuda_graph_bytes: inp.cuda_graph_bytes,
        requested_bytes: requested,
        kv_budget_bytes: budget,
        groups,
        bytes_per_block,
        kv_bytes_per_token: inp.model.kv_bytes_per_token(&s),
        kv_blocks,
        kv_tokens,
        max_concurrency,
        max_concurrent_at_max_len: kv_blocks.saturating_sub(1) / pages.max(1),
        log_line,
        starts,
        refusal,
        error,
        largest_max_model_len: largest,
        other_bytes: inp.other_bytes,
        margin_bytes: inp.margin_bytes,
        headroom_bytes: inp.gpu_memory_bytes as i64 - requested as i64 - outside as i64,
    }
}

/// Weights and activation on one GPU, and everything vLLM's share holds
/// besides the KV cache.
#[derive(Debug, Clone, Copy)]
pub struct Fixed {
    pub weights: u64,
    pub activation: u64,
    pub all: u64,
}

/// The first check vLLM would fail, in the order it makes them, with its text.
fn refusal(
    inp: &Inputs,
    layout: &Result<Layout, kv::LayoutError>,
    fixed: Fixed,
    check: i64,
    largest: u64,
) -> Option<(Refusal, String)> {
    let m = &inp.model.max_len;
    if inp.max_model_len > m.tokens {
        let warning = "VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution. If the model uses relative position encoding (RoPE), positions exceeding derived_max_model_len lead to nan. If the model uses absolute position encoding, positions exceeding derived_max_model_len will cause a CUDA array out-of-bounds error.";
        return Some((
            Refusal::MaxModelLen,
            format!(
                "ValueError: User-specified max_model_len ({}) is greater than the derived max_model_len ({}={} or model_max_length=None in model's config.json). To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. {warning}",
                inp.max_model_len,
                m.key,
                m.shown()
            ),
        ));
    }
    if let Err(e) = layout {
        return Some((Refusal::TensorParallel, format!("ValueError: {e}")));
    }
    let free = inp.free_at_start();
    let requested = inp.requested_bytes(inp.utilization);
    if inp.kv_cache_memory.is_none() && free < requested {
        return Some((
            Refusal::FreeMemory,
            format!(
                "ValueError: Free memory on device cuda:0 ({}/{} GiB) on startup is less than desired GPU memory utilization ({}, {} GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.",
                format_gib(free),
                format_gib(inp.gpu_memory_bytes),
                inp.utilization,
                format_gib(requested)
            ),
        ));
    }
    let weights = fixed.weights;
    if weights > free {
        return Some((
            Refusal::Weights,
            format!(
                "torch.OutOfMemoryError: CUDA out of memory while loading the weights: {} GiB of weights per GPU, {} GiB free of {} GiB (oomsim's wording: the model does not fit before any KV cache is considered; more GPUs or quantized weights)",
                format_gib(weights),
                format_gib(free),
                format_gib(inp.gpu_memory_bytes)
            ),
        ));
    }
    if let Some(kv) = inp.kv_cache_memory {
        let total = fixed.all + kv;
        if total > free {
            return Some((
                Refusal::Weights,
                format!(
                    "torch.OutOfMemoryError: CUDA out of memory allocating the KV cache: {} GiB of KV cache after {} GiB of weights, activation and graphs, {} GiB free (oomsim's wording: --kv-cache-memory-bytes skips vLLM's own check)",
                    format_gib(kv),
                    format_gib(fixed.all),
                    format_gib(free)
                ),
            ));
        }
    }
    if check <= 0 {
        return Some((
            Refusal::NoKvMemory,
            format!(
                "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine (this flag also controls CPU memory reservation on the CPU backend, despite its name). {CONSERVING}"
            ),
        ));
    }
    let l = layout.as_ref().ok()?;
    let s = inp.settings();
    let needed = l.needed_bytes(s.max_model_len, &s);
    if needed > check as u64 {
        let estimate = if largest > 0 {
            format!(
                "Based on the available memory, the estimated maximum model length is {largest}. "
            )
        } else {
            String::new()
        };
        return Some((
            Refusal::KvTooSmall,
            format!(
                "ValueError: To serve at least one request with the model's max seq len ({}), ({} GiB KV cache is needed, which is larger than the available KV cache memory ({} GiB). {estimate}Try increasing `gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or decreasing `max_model_len` when initializing the engine. {CONSERVING}",
                s.max_model_len,
                format_gib(needed),
                format_gib(check as u64)
            ),
        ));
    }
    None
}
