//! vLLM's memory arithmetic: how much of the GPU it gives the KV cache, how
//! many tokens and sequences that holds, whether the engine would start, and
//! which settings leave room for what its budget does not cover.
//!
//! vLLM (worker memory profiling): the KV cache gets
//! `total x gpu_memory_utilization - (weights + peak activation + non-torch
//! + CUDA graphs)`, or `--kv-cache-memory` outright, cut into blocks of 16
//! tokens; start-up fails when one sequence of `max_model_len` does not fit.

use std::fmt::Write;

use serde::Serialize;

use super::model::{Dtype, ModelConfig};
use crate::units::fmt_human;

pub const DEFAULT_UTILIZATION: f64 = 0.90;
pub const DEFAULT_MAX_NUM_SEQS: u64 = 256;
pub const DEFAULT_BATCHED_TOKENS: u64 = 8192;
pub const DEFAULT_BLOCK_SIZE: u64 = 16;
pub const DEFAULT_NON_TORCH: u64 = 512 << 20;
pub const DEFAULT_CUDA_GRAPHS: u64 = 512 << 20;
/// Left for the CUDA context and allocator fragmentation, outside vLLM's count.
pub const DEFAULT_MARGIN: u64 = 1 << 30;

/// Everything the arithmetic depends on (carried to a kv-cache workload,
/// which fills in the device's capacity when it starts).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Inputs {
    pub model: ModelConfig,
    pub dtype: Dtype,
    pub kv_dtype: Dtype,
    pub gpu_memory_bytes: u64,
    pub utilization: f64,
    pub max_model_len: u64,
    pub max_num_seqs: u64,
    pub max_num_batched_tokens: u64,
    pub block_size: u64,
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
    /// Defaults for everything but the model and the GPU.
    pub fn new(model: ModelConfig, dtype: Dtype, gpu_memory_bytes: u64) -> Inputs {
        Inputs {
            max_model_len: model
                .max_position_embeddings
                .filter(|&n| n > 0)
                .unwrap_or(4096),
            model,
            dtype,
            kv_dtype: dtype,
            gpu_memory_bytes,
            utilization: DEFAULT_UTILIZATION,
            max_num_seqs: DEFAULT_MAX_NUM_SEQS,
            max_num_batched_tokens: DEFAULT_BATCHED_TOKENS,
            block_size: DEFAULT_BLOCK_SIZE,
            kv_cache_memory: None,
            weights: None,
            activation: None,
            non_torch_bytes: DEFAULT_NON_TORCH,
            cuda_graph_bytes: DEFAULT_CUDA_GRAPHS,
            other_bytes: 0,
            margin_bytes: DEFAULT_MARGIN,
        }
    }

    pub fn weights_bytes(&self) -> u64 {
        self.weights
            .unwrap_or_else(|| self.model.weight_bytes(self.dtype))
    }

    /// Default peak activation of the profiling run: every batched token
    /// through the widest layer (hidden + MLP width, two live buffers).
    pub fn activation_bytes(&self) -> u64 {
        self.activation.unwrap_or_else(|| {
            let width = self.model.hidden_size
                + self
                    .model
                    .intermediate_size
                    .unwrap_or(4 * self.model.hidden_size);
            self.max_num_batched_tokens * width * 2 * self.dtype.bytes()
        })
    }

    /// The sampler's logits, fp32 for every running sequence: outside the KV budget.
    pub fn logits_bytes(&self) -> u64 {
        self.max_num_seqs * self.model.vocab_size * 4
    }

    pub fn block_bytes(&self) -> u64 {
        self.block_size * self.model.kv_bytes_per_token(self.kv_dtype)
    }

    /// Bytes vLLM gives the KV cache at a utilization (negative: short by that much).
    pub fn kv_budget_at(&self, utilization: f64) -> i64 {
        if let Some(b) = self.kv_cache_memory {
            return b as i64;
        }
        let usable = (self.gpu_memory_bytes as f64 * utilization) as i64;
        usable - self.fixed_bytes() as i64
    }

    /// What vLLM's share holds besides the KV cache.
    pub fn fixed_bytes(&self) -> u64 {
        self.weights_bytes()
            + self.activation_bytes()
            + self.non_torch_bytes
            + self.cuda_graph_bytes
    }

    /// Whole blocks' worth of tokens in a budget.
    pub fn tokens_in(&self, budget: i64) -> u64 {
        if budget <= 0 {
            return 0;
        }
        budget as u64 / self.block_bytes() * self.block_size
    }
}

/// What `oomsim vllm plan --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct VllmPlan {
    pub gpu_memory_bytes: u64,
    pub gpu_memory_utilization: f64,
    pub max_model_len: u64,
    pub max_num_seqs: u64,
    pub kv_bytes_per_token: u64,
    pub block_size: u64,
    pub block_bytes: u64,
    pub parameters: u64,
    pub weights_bytes: u64,
    pub activation_bytes: u64,
    pub non_torch_bytes: u64,
    pub cuda_graph_bytes: u64,
    /// Negative when the fixed costs alone exceed what vLLM may use.
    pub kv_budget_bytes: i64,
    pub kv_blocks: u64,
    pub kv_tokens: u64,
    /// Sequences of max_model_len tokens that fit at once.
    pub max_concurrent_at_max_len: u64,
    /// vLLM's "Maximum concurrency for N tokens per request" figure.
    pub max_concurrency: f64,
    pub starts: bool,
    /// The error vLLM would stop with, when it would not start.
    pub error: Option<String>,
    /// The longest max_model_len that would start at this utilization.
    pub largest_max_model_len: u64,
    /// Outside vLLM's budget: sampler logits, other processes, margin.
    pub logits_bytes: u64,
    pub other_bytes: u64,
    pub margin_bytes: u64,
    /// What the GPU has left beyond vLLM's share, against what needs it.
    pub headroom_bytes: i64,
}

pub fn plan(inp: &Inputs) -> VllmPlan {
    let budget = inp.kv_budget_at(inp.utilization);
    let kv_tokens = inp.tokens_in(budget);
    let starts = budget > 0 && kv_tokens >= inp.max_model_len;
    let error = if budget <= 0 {
        Some("ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.".to_string())
    } else if !starts {
        Some(format!(
            "ValueError: The model's max seq len ({}) is larger than the maximum number of tokens that can be stored in KV cache ({}). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
            inp.max_model_len, kv_tokens
        ))
    } else {
        None
    };
    let outside = inp.logits_bytes() + inp.other_bytes + inp.margin_bytes;
    let total = inp.gpu_memory_bytes as f64;
    VllmPlan {
        gpu_memory_bytes: inp.gpu_memory_bytes,
        gpu_memory_utilization: inp.utilization,
        max_model_len: inp.max_model_len,
        max_num_seqs: inp.max_num_seqs,
        kv_bytes_per_token: inp.model.kv_bytes_per_token(inp.kv_dtype),
        block_size: inp.block_size,
        block_bytes: inp.block_bytes(),
        parameters: inp.model.parameters(),
        weights_bytes: inp.weights_bytes(),
        activation_bytes: inp.activation_bytes(),
        non_torch_bytes: inp.non_torch_bytes,
        cuda_graph_bytes: inp.cuda_graph_bytes,
        kv_budget_bytes: budget,
        kv_blocks: kv_tokens / inp.block_size,
        kv_tokens,
        max_concurrent_at_max_len: kv_tokens / inp.max_model_len.max(1),
        max_concurrency: kv_tokens as f64 / inp.max_model_len.max(1) as f64,
        starts,
        error,
        largest_max_model_len: kv_tokens,
        logits_bytes: inp.logits_bytes(),
        other_bytes: inp.other_bytes,
        margin_bytes: inp.margin_bytes,
        headroom_bytes: (total * (1.0 - inp.utilization)) as i64 - outside as i64,
    }
}

fn signed(b: i64) -> String {
    if b < 0 {
        format!("-{}", fmt_human(b.unsigned_abs()))
    } else {
        fmt_human(b as u64)
    }
}

/// The budget, line by line.
pub fn describe(inp: &Inputs, p: &VllmPlan) -> String {
    let m = &inp.model;
    let mut out = String::new();
    let gqa = if m.kv_heads() < m.num_attention_heads {
        " (grouped-query)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "Model:          {} layers, {} heads, {} KV heads{gqa}, head_dim {}, {} weights, {} KV cache",
        m.num_hidden_layers,
        m.num_attention_heads,
        m.kv_heads(),
        m.head_dim(),
        inp.dtype.as_str(),
        inp.kv_dtype.as_str()
    );
    let _ = writeln!(
        out,
        "KV per token:   {} (2 x {} layers x {} KV heads x {} x {} bytes)",
        fmt_human(p.kv_bytes_per_token),
        m.num_hidden_layers,
        m.kv_heads(),
        m.head_dim(),
        inp.kv_dtype.bytes()
    );
    let _ = writeln!(
        out,
        "Block:          {} ({} tokens)",
        fmt_human(p.block_bytes),
        p.block_size
    );
    match inp.kv_cache_memory {
        Some(b) => {
            let _ = writeln!(out, "KV cache:       {} (--kv-cache-memory)", fmt_human(b));
        }
        None => {
            let usable = (p.gpu_memory_bytes as f64 * p.gpu_memory_utilization) as u64;
            let _ = writeln!(
                out,
                "GPU memory:     {} x {:.2} = {} for vLLM",
                fmt_human(p.gpu_memory_bytes),
                p.gpu_memory_utilization,
                fmt_human(usable)
            );
            let _ = writeln!(
                out,
                "  weights       - {} ({:.2}B parameters x {} bytes)",
                fmt_human(p.weights_bytes),
                p.parameters as f64 / 1e9,
                inp.dtype.bytes()
            );
            let _ = writeln!(
                out,
                "  activation    - {} (peak of {} batched tokens)",
                fmt_human(p.activation_bytes),
                inp.max_num_batched_tokens
            );
            let _ = writeln!(out, "  non-torch     - {}", fmt_human(p.non_torch_bytes));
            let _ = writeln!(out, "  CUDA graphs   - {}", fmt_human(p.cuda_graph_bytes));
            let _ = writeln!(out, "  = KV cache      {}", signed(p.kv_budget_bytes));
        }
    }
    let _ = writeln!(
        out,
        "KV tokens:      {} ({} blocks)",
        p.kv_tokens, p.kv_blocks
    );
    let _ = writeln!(
        out,
        "Concurrency:    {} sequences of max_model_len {} at once ({:.2}x)",
        p.max_concurrent_at_max_len, p.max_model_len, p.max_concurrency
    );
    match &p.error {
        None => {
            let _ = writeln!(out, "Starts:         yes");
        }
        Some(e) => {
            let _ = writeln!(out, "Starts:         NO\n  {e}");
            if p.largest_max_model_len > 0 {
                let _ = writeln!(
                    out,
                    "  The largest max_model_len that fits: {}",
                    p.largest_max_model_len
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "Outside the budget: sampler logits {} ({} seqs x {} vocab x 4 bytes) + other processes {} + margin {}; the GPU has {} beyond vLLM's share",
        fmt_human(p.logits_bytes),
        p.max_num_seqs,
        m.vocab_size,
        fmt_human(p.other_bytes),
        fmt_human(p.margin_bytes),
        fmt_human((p.gpu_memory_bytes as f64 * (1.0 - p.gpu_memory_utilization)) as u64)
    );
    if p.headroom_bytes < 0 {
        let _ = writeln!(
            out,
            "  WARNING: {} short: under load this setting can hit CUDA out of memory",
            fmt_human(p.headroom_bytes.unsigned_abs())
        );
    }
    if let Some(w) = m.sliding_window {
        let _ = writeln!(
            out,
            "Note:           sliding_window {w}: vLLM may keep fewer tokens for sliding layers; counted here as full attention (an upper bound on KV use)"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::model::tests::llama3_8b;

    #[test]
    fn llama3_8b_on_80gi_by_hand() {
        let mut inp = Inputs::new(llama3_8b(), Dtype::Bf16, 80 << 30);
        inp.activation = Some(2 << 30);
        let p = plan(&inp);
        // 80Gi x 0.9 = 77,309,411,328; minus 16,060,522,496 weights, 2Gi, 512Mi, 512Mi.
        assert_eq!(p.weights_bytes, 16_060_522_496);
        assert_eq!(
            p.kv_budget_bytes,
            77_309_411_328 - 16_060_522_496 - (3 << 30)
        );
        // 2 MiB blocks: 58,027,663,360 / 2,097,152 = 27,669.8, so 27,669 whole blocks.
        assert_eq!(p.block_bytes, 2 << 20);
        assert_eq!(p.kv_blocks, 27_669);
        assert_eq!(p.kv_tokens, 442_704);
        // 442,704 / 8192 = 54.04 sequences of the full 8K context.
        assert_eq!(p.max_concurrent_at_max_len, 54);
        assert!(p.starts && p.error.is_none());
    }

    #[test]
    fn start_up_check_on_both_sides_of_the_boundary() {
        let mut inp = Inputs::new(llama3_8b(), Dtype::Bf16, 80 << 30);
        // Exactly 100 blocks of KV: 1600 tokens.
        inp.kv_cache_memory = Some(100 * (2 << 20) + 5);
        inp.max_model_len = 1600;
        assert!(plan(&inp).starts);
        inp.max_model_len = 1601;
        let p = plan(&inp);
        assert!(!p.starts);
        assert_eq!(p.largest_max_model_len, 1600);
        let e = p.error.unwrap();
        assert!(
            e.contains("max seq len (1601) is larger than the maximum number of tokens that can be stored in KV cache (1600)"),
            "{e}"
        );
    }

    #[test]
    fn fp8_kv_doubles_tokens_and_no_budget_is_its_own_error() {
        let mut inp = Inputs::new(llama3_8b(), Dtype::Bf16, 80 << 30);
        let bf16 = plan(&inp).kv_tokens;
        inp.kv_dtype = Dtype::Fp8;
        let fp8 = plan(&inp).kv_tokens;
        assert!(fp8 >= 2 * bf16 && fp8 <= 2 * bf16 + 16, "{bf16} {fp8}");
        let small = Inputs::new(llama3_8b(), Dtype::Bf16, 16 << 30);
        let p = plan(&small);
        assert!(p.kv_budget_bytes < 0 && !p.starts);
        assert!(
            p.error
                .unwrap()
                .contains("No available memory for the cache blocks")
        );
    }
}
