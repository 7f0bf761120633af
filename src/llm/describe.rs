//! `oomsim vllm plan`'s text: the model, the budget line by line, the layer
//! groups, vLLM's own log line or error, and what is outside vLLM's share.

use std::fmt::Write;

use super::kv::SpecKind;
use super::model::Mixer;
use super::vllm::{Inputs, VLLM_VERSION, VllmPlan};
use crate::units::fmt_human;

fn signed(b: i64) -> String {
    if b < 0 {
        format!("-{}", fmt_human(b.unsigned_abs()))
    } else {
        fmt_human(b as u64)
    }
}

/// "32 layers (28 sliding window 1024, 6 full attention)".
fn layers_line(inp: &Inputs) -> String {
    let m = &inp.model;
    let mut kinds: Vec<(String, u64)> = Vec::new();
    for l in &m.layers {
        let name = match l.mixer {
            Mixer::Full if m.mla.is_some() => "MLA".to_string(),
            Mixer::Full => "full attention".to_string(),
            Mixer::Sliding { window } => format!("sliding window {window}"),
            Mixer::Chunked { chunk } => format!("chunked local {chunk}"),
            Mixer::Mamba => "mamba".to_string(),
        };
        match kinds.iter_mut().find(|(k, _)| *k == name) {
            Some((_, n)) => *n += 1,
            None => kinds.push((name, 1)),
        }
    }
    let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!("{} layers ({})", m.num_layers(), parts.join(", "))
}

pub fn describe(inp: &Inputs, p: &VllmPlan) -> String {
    let m = &inp.model;
    let mut out = String::new();
    let _ = writeln!(out, "vLLM:           {VLLM_VERSION} (V1 engine)");
    let attention = match m.mla {
        Some(mla) => format!(
            "MLA (kv_lora_rank {} + qk_rope_head_dim {} = {} a token)",
            mla.kv_lora_rank, mla.qk_rope_head_dim, m.head_size
        ),
        None => format!(
            "{} heads, {} KV heads ({} a GPU), head size {}",
            m.num_attention_heads,
            m.num_key_value_heads,
            m.kv_heads_per_rank(inp.tensor_parallel),
            m.head_size
        ),
    };
    let _ = writeln!(
        out,
        "Model:          {}{}; {attention}",
        if m.model_type.is_empty() {
            String::new()
        } else {
            format!("{}, ", m.model_type)
        },
        layers_line(inp)
    );
    let moe = m.moe.map_or(String::new(), |e| {
        format!(", {} experts of width {}", e.experts, e.expert_intermediate)
    });
    let quant = m
        .quantization
        .map_or(String::new(), |q| format!(", {} weights", q.name()));
    let _ = writeln!(
        out,
        "Weights:        {} ({:.2}B parameters{moe}{quant}, {} compute) on each of {} GPU(s)",
        fmt_human(p.weights_bytes),
        p.parameters as f64 / 1e9,
        p.dtype.as_str(),
        p.tensor_parallel_size
    );
    let _ = writeln!(
        out,
        "KV per token:   {} over {} attention layers ({} KV cache)",
        fmt_human(p.kv_bytes_per_token),
        m.attention_layers().count(),
        p.kv_cache_dtype.as_str()
    );
    match inp.kv_cache_memory {
        Some(b) => {
            let _ = writeln!(
                out,
                "KV cache:       {} (--kv-cache-memory-bytes; the utilization is not used)",
                fmt_human(b)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "GPU memory:     {} x {:.2} = {} requested",
                fmt_human(p.gpu_memory_bytes),
                p.gpu_memory_utilization,
                fmt_human(p.requested_bytes)
            );
            let _ = writeln!(out, "  weights       - {}", fmt_human(p.weights_bytes));
            let _ = writeln!(
                out,
                "  activation    - {} (profile run: {} batched tokens, sampler included)",
                fmt_human(p.activation_bytes),
                p.max_num_batched_tokens
            );
            let _ = writeln!(out, "  non-torch     - {}", fmt_human(p.non_torch_bytes));
            let _ = writeln!(out, "  CUDA graphs   - {}", fmt_human(p.cuda_graph_bytes));
            let _ = writeln!(out, "  = KV cache      {}", signed(p.kv_budget_bytes));
        }
    }
    // Groups of one spec (a bucket split up) on one line.
    let mut i = 0;
    while i < p.groups.len() {
        let g = &p.groups[i];
        let same = p.groups[i..]
            .iter()
            .take_while(|h| h.spec == g.spec)
            .count();
        let what = match g.spec.kind {
            SpecKind::Mamba => "a state".to_string(),
            _ => format!("{} tokens", g.spec.block_size),
        };
        let sizes: Vec<String> = p.groups[i..i + same]
            .iter()
            .map(|h| h.num_layers.to_string())
            .collect();
        let label = if same == 1 {
            format!("Group {i}:")
        } else {
            format!("Groups {i}-{}:", i + same - 1)
        };
        let _ = writeln!(
            out,
            "{label:<16}{} x {} layers, page {} ({what}), {} pages a request{}",
            g.spec.kind,
            sizes.join("+"),
            fmt_human(g.spec.page_bytes),
            g.pages_per_request,
            if same == 1 { "" } else { " in each" }
        );
        i += same;
    }
    let _ = writeln!(
        out,
        "Blocks:         {} of {} (a page of each of {} layers)",
        p.kv_blocks,
        fmt_human(p.bytes_per_block),
        p.bytes_per_block / p.groups.first().map_or(1, |g| g.spec.page_bytes.max(1))
    );
    match (&p.log_line, &p.error) {
        (Some(line), _) => {
            let _ = writeln!(out, "vLLM logs:      {line}");
            let _ = writeln!(
                out,
                "Starts:         yes; {} requests of {} tokens hold their blocks at once",
                p.max_concurrent_at_max_len, p.max_model_len
            );
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "Starts:         NO\n  {e}");
            if p.largest_max_model_len > 0 {
                let _ = writeln!(
                    out,
                    "  The largest max_model_len that fits: {}",
                    p.largest_max_model_len
                );
            }
        }
        (None, None) => {}
    }
    let _ = writeln!(
        out,
        "Outside vLLM's share: other processes {} + CUDA context and margin {}; the GPU has {} beyond it",
        fmt_human(p.other_bytes),
        fmt_human(p.margin_bytes),
        fmt_human(p.gpu_memory_bytes.saturating_sub(p.requested_bytes))
    );
    if p.headroom_bytes < 0 && inp.kv_cache_memory.is_none() {
        let _ = writeln!(
            out,
            "  WARNING: {} short: vLLM refuses to start (free memory below the utilization)",
            fmt_human(p.headroom_bytes.unsigned_abs())
        );
    }
    out
}
