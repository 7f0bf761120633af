//! Settings that serve: a utilization that leaves room for what vLLM's
//! budget does not cover, a max_model_len at which several full-length
//! sequences fit at once, and a max_num_seqs they all fit in. Never a zero
//! setting; when nothing fits, which knob and how far.

use serde::Serialize;

use super::vllm::{Inputs, plan};
use crate::units::fmt_human;

/// vLLM never recommends past this.
const MAX_UTILIZATION: f64 = 0.98;
/// Full-length sequences that should fit at once before a shorter
/// max_model_len is preferred: with fewer, the scheduler cannot batch and a
/// GPU serves one request at a time.
pub const SERVING_CONCURRENCY: u64 = 4;
/// max_model_len is not shortened below this (or below what was asked, if less).
pub const MIN_MODEL_LEN: u64 = 2048;

/// What to raise when nothing fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Knob {
    /// The GPU itself (or, the same bytes, smaller weights: fp8, a smaller model).
    GpuMemory,
    /// The `--kv-cache-memory-bytes` given outright.
    KvCacheMemory,
}

impl std::fmt::Display for Knob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Knob::GpuMemory => "GPU memory",
            Knob::KvCacheMemory => "--kv-cache-memory-bytes",
        })
    }
}

/// Settings that serve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub gpu_memory_utilization: f64,
    pub max_model_len: u64,
    pub max_num_seqs: u64,
    /// vLLM's "GPU KV cache size" figure with these settings.
    pub kv_tokens: u64,
    /// Requests of max_model_len that hold their blocks at once.
    pub concurrent: u64,
    /// The max_model_len asked for, when a shorter one is recommended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortened_from: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recommendation {
    Settings(Settings),
    /// Not even one sequence of `min_len` tokens fits at the highest
    /// utilization vLLM allows.
    NothingFits {
        /// The setting to change.
        knob: Knob,
        /// How far: this much more of it.
        short_bytes: u64,
        min_len: u64,
        /// Or: the fewest GPUs (tensor parallel) on which it serves.
        #[serde(skip_serializing_if = "Option::is_none")]
        tensor_parallel_size: Option<u64>,
    },
}

/// The `Recommended:` line: settings that serve, or which knob and how far.
impl std::fmt::Display for Recommendation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recommendation::Settings(Settings {
                gpu_memory_utilization,
                max_model_len,
                max_num_seqs,
                kv_tokens,
                concurrent,
                shortened_from,
            }) => {
                write!(
                    f,
                    "Recommended:    --gpu-memory-utilization {gpu_memory_utilization:.2} --max-model-len {max_model_len} --max-num-seqs {max_num_seqs} ({kv_tokens} KV tokens)"
                )?;
                if let Some(asked) = shortened_from {
                    write!(
                        f,
                        "\n  max_model_len {asked} does not serve {SERVING_CONCURRENCY} requests at once; {max_model_len} serves {concurrent}"
                    )?;
                }
                Ok(())
            }
            Recommendation::NothingFits {
                knob,
                short_bytes,
                min_len,
                tensor_parallel_size,
            } => {
                write!(
                    f,
                    "Recommended:    nothing fits: one request of {min_len} tokens needs {} more {knob}{}",
                    fmt_human(*short_bytes),
                    match knob {
                        Knob::GpuMemory =>
                            " (a larger GPU, or weights that much smaller: fp8, a smaller model)",
                        Knob::KvCacheMemory => "",
                    }
                )?;
                if let Some(tp) = tensor_parallel_size {
                    write!(f, ", or --tensor-parallel-size {tp}")?;
                }
                Ok(())
            }
        }
    }
}

/// Floor to two decimals, as people write utilizations.
fn floor2(x: f64) -> f64 {
    (x * 100.0).floor() / 100.0
}

/// max_model_len candidates: the one asked for, halved while above
/// MIN_MODEL_LEN, and MIN_MODEL_LEN itself last (or what was asked, if less).
fn lengths(asked: u64) -> impl Iterator<Item = u64> {
    let floor = MIN_MODEL_LEN.min(asked).max(1);
    let halvings = std::iter::successors(Some(asked.max(1)), move |&l| {
        Some(l / 2).filter(|&h| h > floor)
    });
    halvings.chain((asked > floor).then_some(floor))
}

/// The utilization vLLM's free-memory check allows beside what else is on
/// the GPU, and the inputs on a GPU of `total` bytes at it.
fn serving(inp: &Inputs, total: u64) -> Inputs {
    let outside = inp.other_bytes + inp.margin_bytes;
    let t = total as f64;
    let mut util = floor2(((t - outside as f64) / t).min(MAX_UTILIZATION)).max(0.0);
    // ceil(total x util) must not exceed what is free.
    while util > 0.0 && (t * util).ceil() > t - outside as f64 {
        util = floor2(util - 0.01);
    }
    Inputs {
        gpu_memory_bytes: total,
        // With --kv-cache-memory-bytes the utilization does not size the cache.
        utilization: if inp.kv_cache_memory.is_some() {
            inp.utilization
        } else {
            util
        },
        ..inp.clone()
    }
}

/// Requests of `len` tokens that hold their blocks at once (0: vLLM would not start).
fn concurrent(inp: &Inputs, len: u64) -> u64 {
    let at = Inputs {
        max_model_len: len,
        ..inp.clone()
    };
    let p = plan(&at);
    if p.starts {
        p.max_concurrent_at_max_len
    } else {
        0
    }
}

pub fn recommend(inp: &Inputs) -> Recommendation {
    let on = serving(inp, inp.gpu_memory_bytes);
    let len = lengths(inp.max_model_len)
        .find(|&l| concurrent(&on, l) >= SERVING_CONCURRENCY)
        .or_else(|| lengths(inp.max_model_len).find(|&l| concurrent(&on, l) >= 1));
    if let Some(len) = len {
        let n = concurrent(&on, len);
        let chosen = Inputs {
            max_model_len: len,
            max_num_seqs: n.min(inp.max_num_seqs),
            ..on.clone()
        };
        return Recommendation::Settings(Settings {
            gpu_memory_utilization: on.utilization,
            max_model_len: len,
            max_num_seqs: chosen.max_num_seqs,
            kv_tokens: plan(&chosen).kv_tokens,
            concurrent: n,
            shortened_from: (len != inp.max_model_len).then_some(inp.max_model_len),
        });
    }
    let min_len = MIN_MODEL_LEN.min(inp.max_model_len);
    let (knob, short_bytes) = match inp.kv_cache_memory {
        Some(given) => {
            let needed = inp.layout().map_or(0, |l| {
                let s = inp.settings();
                (l.pages_for(min_len, &s) + 1) * l.bytes_per_block
            });
            (Knob::KvCacheMemory, needed.saturating_sub(given))
        }
        None => (Knob::GpuMemory, gpu_shortfall(inp, min_len)),
    };
    let tensor_parallel_size = [2u64, 4, 8, 16].into_iter().find(|&tp| {
        tp > inp.tensor_parallel
            && inp.model.check_tp(tp).is_ok()
            && concurrent(
                &serving(
                    &Inputs {
                        tensor_parallel: tp,
                        ..inp.clone()
                    },
                    inp.gpu_memory_bytes,
                ),
                min_len,
            ) >= 1
    });
    Recommendation::NothingFits {
        knob,
        short_bytes: short_bytes.max(1),
        min_len,
        tensor_parallel_size,
    }
}

/// The least GPU memory to add, in whole MiB, for one request of `len`
/// tokens to start at the utilization [`recommend`] would give there.
fn gpu_shortfall(inp: &Inputs, len: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let fits = |extra_mib: u64| {
        concurrent(&serving(inp, inp.gpu_memory_bytes + extra_mib * MIB), len) >= 1
    };
    // Enough by construction: everything vLLM and the rest need, twice over.
    let kv = inp.layout().map_or(0, |l| {
        let s = inp.settings();
        (l.pages_for(len, &s) + 1) * l.bytes_per_block
    });
    let mut hi = inp
        .fixed()
        .all
        .saturating_add(kv)
        .saturating_add(inp.other_bytes + inp.margin_bytes)
        .saturating_mul(2)
        .div_ceil(MIB)
        .max(1);
    if !fits(hi) {
        return hi * MIB;
    }
    let mut lo = 0;
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) { hi = mid } else { lo = mid }
    }
    hi * MIB
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::describe::describe;
    use crate::llm::tests::shipped;
    use crate::llm::vllm::plan;

    fn llama(gpu: u64) -> Inputs {
        Inputs::new(shipped("llama-3-8b"), gpu)
    }

    #[test]
    fn recommendation_leaves_room_for_what_the_budget_does_not_cover() {
        let mut inp = llama(80 << 30);
        inp.utilization = 0.95;
        inp.other_bytes = 6 << 30;
        let p = plan(&inp);
        assert!(p.headroom_bytes < 0, "0.95 leaves 4Gi, 7Gi is held");
        assert!(!p.starts, "vLLM refuses: free memory below the utilization");
        let rec = recommend(&inp);
        let Recommendation::Settings(r) = rec else {
            panic!("80Gi fits: {rec:?}")
        };
        // (80 - 6 other - 1 margin) / 80 = 0.9125, floored to 0.91.
        assert_eq!(r.gpu_memory_utilization, 0.91);
        assert_eq!((r.max_model_len, r.shortened_from), (8192, None));
        assert!(r.max_num_seqs >= 1 && r.max_num_seqs <= r.concurrent);
        let at = Inputs {
            utilization: r.gpu_memory_utilization,
            max_num_seqs: r.max_num_seqs,
            ..inp
        };
        assert!(plan(&at).starts, "the recommended settings start");
    }

    #[test]
    fn on_24gi_a_shorter_max_model_len_serves_rather_than_one_sequence() {
        let mut inp = Inputs::new(shipped("llama-3.1-8b-instruct"), 24 << 30);
        inp.max_model_len = 131_072;
        let rec = recommend(&inp);
        let Recommendation::Settings(Settings {
            max_model_len,
            max_num_seqs,
            concurrent,
            shortened_from,
            ..
        }) = rec
        else {
            panic!("24Gi fits: {rec:?}")
        };
        // Under 131072 tokens of KV: one 128K sequence would not even start.
        assert!(!plan(&inp).starts);
        assert_eq!(shortened_from, Some(131_072));
        assert!(max_num_seqs >= SERVING_CONCURRENCY, "{max_num_seqs}");
        // The longest halving of 131072 at which four fit, and no longer one.
        assert!(concurrent >= SERVING_CONCURRENCY);
        assert!(
            super::concurrent(&serving(&inp, 24 << 30), 2 * max_model_len) < SERVING_CONCURRENCY
        );
        let text = rec.to_string();
        assert!(
            text.contains(&format!("--max-model-len {max_model_len} ")),
            "{text}"
        );
    }

    #[test]
    fn nothing_fits_names_the_knob_and_how_far_and_never_a_zero() {
        let inp = llama(16 << 30);
        let rec = recommend(&inp);
        let Recommendation::NothingFits {
            knob: Knob::GpuMemory,
            short_bytes,
            min_len: 2048,
            tensor_parallel_size: Some(2),
        } = rec
        else {
            panic!("16Gi cannot hold 15GiB of weights and a cache: {rec:?}")
        };
        let line = rec.to_string();
        assert!(!line.contains(" 0 ") && !line.contains("-- "), "{line}");
        assert!(
            line.contains("nothing fits") && line.ends_with("or --tensor-parallel-size 2"),
            "{line}"
        );
        let text = describe(&inp, &plan(&inp));
        assert!(!text.contains("largest max_model_len"), "{text}");
        // How far is exact: that much more GPU memory serves a 2048-token
        // request, one MiB less does not.
        let with = |extra: u64| {
            let mut more = inp.clone();
            more.gpu_memory_bytes += extra;
            recommend(&more)
        };
        assert!(matches!(
            with(short_bytes - (1 << 20)),
            Recommendation::NothingFits { .. }
        ));
        let Recommendation::Settings(r) = with(short_bytes) else {
            panic!("{short_bytes} more should fit")
        };
        assert!(r.max_model_len >= 2048 && r.max_num_seqs >= 1);
        // A given KV cache too small for one request names that flag:
        // 128 pages for 2048 tokens plus the null block, 2 MiB each.
        let mut given = llama(80 << 30);
        given.kv_cache_memory = Some(1 << 20);
        assert!(matches!(
            recommend(&given),
            Recommendation::NothingFits {
                knob: Knob::KvCacheMemory,
                short_bytes,
                ..
            } if short_bytes == 129 * (2 << 20) - (1 << 20)
        ));
    }

    #[test]
    fn recommendations_are_never_zero_across_gpu_sizes() {
        for gib in [17u64, 18, 20, 24, 40, 48, 80, 141] {
            for len in [512u64, 8192] {
                let mut inp = llama(gib << 30);
                inp.max_model_len = len;
                match recommend(&inp) {
                    Recommendation::Settings(r) => {
                        assert!(r.gpu_memory_utilization > 0.0 && r.max_model_len > 0);
                        assert!(r.max_num_seqs >= 1 && r.max_num_seqs <= r.concurrent);
                    }
                    Recommendation::NothingFits { short_bytes, .. } => assert!(short_bytes > 0),
                }
            }
        }
    }

    #[test]
    fn lengths_halve_and_end_at_the_floor() {
        let l: Vec<u64> = lengths(40_960).collect();
        assert_eq!(l, [40_960, 20_480, 10_240, 5_120, 2_560, 2_048]);
        let l: Vec<u64> = lengths(8_192).collect();
        assert_eq!(l, [8_192, 4_096, 2_048]);
        assert_eq!(lengths(1_000).collect::<Vec<_>>(), [1_000]);
        assert_eq!(lengths(0).collect::<Vec<_>>(), [1]);
    }
}
