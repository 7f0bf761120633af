//! The remedy in the seeds' terms, with the evidence's numbers: raise
//! `limits.memory` only for a cgroup's OOM kill; requests and the node for
//! an eviction or a node OOM; vLLM's knobs for the GPU, their direction as
//! the evidence says (utilization goes down when something else holds the
//! GPU, up when the KV cache has too little); the flag for a runtime's cap;
//! and for what was never memory, what it was.

use super::finding::{Finding, Kind, VllmKv};
use super::{Class, Facts};
use crate::units::{fmt_human, fmt_quantity};

const MIB: u64 = 1 << 20;

pub fn fix(class: Class, f: &Facts, findings: &[Finding]) -> String {
    let q = |b: Option<u64>| b.map(fmt_quantity);
    match class {
        Class::CgroupOom => {
            let at = match (q(f.limit_bytes), f.usage_bytes) {
                (Some(l), Some(u)) => format!(" It died at its {l} limit with {} charged.", fmt_human(u)),
                (Some(l), None) => format!(" It died at its {l} limit."),
                _ => String::new(),
            };
            let start = f
                .limit_bytes
                .map(|l| format!(" Start above {}:", fmt_quantity(round_up(l.saturating_add(l / 4), 64 * MIB))))
                .unwrap_or_default();
            let heap = match f.runtime_kind.is_some() || findings.iter().any(|x| matches!(x.kind, Kind::Runtime(_))) {
                true => " If a heap flag (-Xmx, --max-old-space-size) sits at or above the limit, lower it so the runtime's non-heap memory fits too.",
                false => "",
            };
            format!(
                "Raise limits.memory: the container needed more than its limit.{at}{start} measure the smallest safe limit with `oomsim diagnose ... --emit-scenario s.yaml && oomsim search s.yaml`, then `oomsim recommend reports/<name>/search.json`.{heap}"
            )
        }
        Class::NodeEviction => match f.eviction_resource.as_deref() {
            Some(r) if r != "memory" => format!(
                "Not the pod's memory: the node ran low on {r}. Free {r} on the node, or set the pod's {r} requests and limits; memory settings do not help."
            ),
            _ => {
                let used = match (q(f.usage_bytes), q(f.request_bytes)) {
                    (Some(u), Some(r)) => format!(" It used {u} against a request of {r}: the kubelet evicts pods over their request first."),
                    (Some(u), None) => format!(" It used {u} with no request: first in the kubelet's eviction order."),
                    _ => String::new(),
                };
                let node = match (q(f.eviction_threshold_bytes), q(f.available_bytes)) {
                    (Some(t), Some(a)) => format!(" The node had {a} available against its {t} threshold."),
                    _ => String::new(),
                };
                format!(
                    "Do not raise the limit: raise requests.memory to what the pod uses (requests equal to limits makes it Guaranteed, last in the eviction order), or give the node room (fewer pods, kube-reserved / system-reserved that match the daemons).{used}{node}"
                )
            }
        },
        Class::NodeOom => "Not the pod's limit: the node itself ran out before the kubelet evicted anything. Set requests.memory to what pods really use so the scheduler does not overcommit, give every pod a limit, and reserve memory for the system (systemReserved / kubeReserved) with an evictionHard memory.available threshold so the kubelet evicts before the kernel kills.".into(),
        Class::CudaOom => cuda_fix(f),
        Class::VllmKvStartup => vllm_fix(f, findings),
        Class::RuntimeOom => findings
            .iter()
            .find_map(|x| match &x.kind {
                Kind::Runtime(r) => Some(r.advice()),
                _ => None,
            })
            .unwrap_or_default(),
        Class::ExternalSigkill => match f.probe.as_deref() {
            Some(p) => format!(
                "Not memory: the kubelet killed the container because its {p} probe failed. Give the probe room (a startupProbe for a slow start; larger timeoutSeconds, periodSeconds or failureThreshold) or fix what made the endpoint slow; raising limits.memory does not help."
            ),
            None => "Not memory: someone else sent SIGKILL (preemption: a priorityClassName; a grace period: handle SIGTERM or raise terminationGracePeriodSeconds). Raising limits.memory does not help.".into(),
        },
        Class::Sigterm => "Not memory: the container was asked to stop (a rollout, scale-down, drain or node shutdown) and exited 143. Handle SIGTERM and exit 0; `kubectl get events` says who stopped it.".into(),
        Class::AppError => {
            let line = findings.iter().find_map(|x| match &x.kind {
                Kind::AppError(l) => Some(l.as_str()),
                _ => None,
            });
            let code = f.exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default();
            match line {
                Some(l) => format!("Not memory: the application failed by itself{code}: `{l}`. Fix that; memory settings do not help."),
                None => format!("Not memory: the application failed by itself{code}; its log says why (`kubectl logs POD --previous`). Memory settings do not help."),
            }
        }
        Class::Unknown => "Not enough evidence to choose a fix: run the command under Decide and diagnose its output with the rest.".into(),
    }
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to).saturating_mul(to)
}

fn cuda_fix(f: &Facts) -> String {
    let mut s = String::from("The GPU ran out, not the container: limits.memory does not help.");
    if let (Some(t), Some(fr)) = (f.gpu_tried_bytes, f.gpu_free_bytes) {
        s += &format!(" It asked {} with {} free", fmt_human(t), fmt_human(fr));
        if let Some(total) = f.gpu_total_bytes {
            s += &format!(" of {}", fmt_human(total));
        }
        s += ".";
    }
    if let (Some(total), Some(free), Some(used)) =
        (f.gpu_total_bytes, f.gpu_free_bytes, f.gpu_in_use_bytes)
    {
        let other = total.saturating_sub(free).saturating_sub(used);
        if other > total / 20 {
            s += &format!(
                " Another process holds {} of the GPU: give this one the GPU alone, or size it for what is left.",
                fmt_human(other)
            );
        }
    }
    if f.gpu_memory_utilization.is_some() {
        s += " For vLLM: lower --max-num-seqs or --max-num-batched-tokens (the activation peak), or --gpu-memory-utilization if another process shares the GPU; `oomsim vllm plan` finds settings that fit.";
    } else {
        s += " Lower the batch size or sequence length, load the model quantized, or spread it over more GPUs (tensor parallel).";
    }
    if let (Some(r), Some(t)) = (f.gpu_reserved_bytes, f.gpu_total_bytes)
        && r > t / 20
    {
        s += &format!(
            " PyTorch held {} reserved but unallocated: PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True cuts fragmentation.",
            fmt_human(r)
        );
    }
    s
}

fn vllm_fix(f: &Facts, findings: &[Finding]) -> String {
    let util = f.gpu_memory_utilization;
    let now = util.map(|u| format!(" (now {u})")).unwrap_or_default();
    let which = findings.iter().rev().find_map(|x| match &x.kind {
        Kind::Vllm(v) if !matches!(v, VllmKv::NegativeAvailable { .. }) => Some(v),
        _ => None,
    });
    let plan = " `oomsim vllm plan --model CONFIG --gpu-memory SIZE` finds settings that start.";
    match which {
        Some(VllmKv::FreeBelowUtilization {
            free: Some(free),
            total: Some(total),
            ..
        }) if *total > 0 => {
            let fits = ((*free as f64 / *total as f64) * 100.0).floor() / 100.0 - 0.01;
            format!(
                "Lower --gpu-memory-utilization{now} to {fits:.2} or less: only {} of {} was free when vLLM started, because another process holds the rest. Or free the GPU of it.{plan}",
                fmt_human(*free),
                fmt_human(*total)
            )
        }
        Some(VllmKv::FreeBelowUtilization { .. }) => format!(
            "Lower --gpu-memory-utilization{now}: less is free at start-up than it asks, because another process holds the GPU. Or free the GPU of it.{plan}"
        ),
        Some(VllmKv::MaxLenOverCache {
            max_model_len,
            kv_tokens,
        }) => format!(
            "Set --max-model-len {kv_tokens} or less (the KV cache holds {kv_tokens} tokens, {max_model_len} were asked), or raise --gpu-memory-utilization{now} so the cache holds {max_model_len}.{plan}"
        ),
        Some(VllmKv::NeedsMore {
            needed,
            available,
            estimated_max_len,
            max_model_len,
        }) => {
            let len = estimated_max_len.map_or("a shorter value".into(), |e| e.to_string());
            let more = match (needed, available) {
                (Some(n), Some(a)) => format!(
                    " ({} more KV cache memory for {} tokens)",
                    fmt_human(n.saturating_sub(*a)),
                    max_model_len.map_or("max_model_len".into(), |m| m.to_string())
                ),
                _ => String::new(),
            };
            format!(
                "Set --max-model-len {len}, or raise --gpu-memory-utilization{now}{more}.{plan}"
            )
        }
        _ => format!(
            "Raise --gpu-memory-utilization{now}: weights and the activation peak leave nothing for the KV cache. Or lower --max-num-seqs / --max-num-batched-tokens (a smaller activation peak), load the model quantized, or use tensor parallel.{plan}"
        ),
    }
}
