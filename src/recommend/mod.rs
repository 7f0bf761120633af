//! `oomsim recommend`: what oomsim measured, turned into what a user
//! applies: a resources patch (strategic-merge YAML and the `kubectl set
//! resources` line) with its headroom and why, QoS advice from node runs,
//! the runtime's flags for the recommended limit, vLLM's planner for GPU
//! runs. "Raise the limit" is never the advice for an eviction, a CUDA OOM
//! or a runtime's own cap.

pub mod manifest;

use std::path::Path;

use crate::report::search::SearchResult;
use crate::report::{PodReport, Report, Saved};
use crate::runtime::Runtime;
use crate::runtime::stats::RuntimeMemory;
use crate::units::{fmt_human, fmt_quantity};
use crate::verdict::Cause;

const MIB: u64 = 1 << 20;
/// Over a search's smallest safe limit: covers the search's precision and
/// what one host's runs cannot show (other inputs, other load).
pub const SEARCH_HEADROOM: f64 = 0.15;
/// Over one run's peak: one run is one sample of the peak, not its bound.
pub const RUN_HEADROOM: f64 = 0.25;

/// One container's advice.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Advice {
    pub pod: String,
    pub container: String,
    /// The limit and request to set, when memory settings are the fix.
    pub limit_bytes: Option<u64>,
    pub request_bytes: Option<u64>,
    /// How the numbers were reached.
    pub why: Vec<String>,
    /// When raising limits.memory is not the fix: what is.
    pub not_the_limit: Option<String>,
    /// QoS and eviction-order advice (node runs).
    pub qos: Vec<String>,
    /// Runtime flags for the recommended limit.
    pub flags: Vec<String>,
}

impl Advice {
    /// The strategic-merge patch for the container.
    pub fn patch(&self) -> Option<String> {
        let (l, r) = (self.limit_bytes?, self.request_bytes?);
        Some(format!(
            "spec:\n  template:\n    spec:\n      containers:\n      - name: {}\n        resources:\n          limits:\n            memory: {}\n          requests:\n            memory: {}\n",
            self.container,
            fmt_quantity(l),
            fmt_quantity(r)
        ))
    }

    /// `kubectl set resources deployment/POD -c CONTAINER --limits=... --requests=...`.
    pub fn kubectl(&self) -> Option<String> {
        let (l, r) = (self.limit_bytes?, self.request_bytes?);
        Some(format!(
            "kubectl set resources deployment/{} -c {} --limits=memory={} --requests=memory={}",
            self.pod,
            self.container,
            fmt_quantity(l),
            fmt_quantity(r)
        ))
    }
}

/// The advice as `oomsim recommend` prints it.
pub fn text(advice: &[Advice]) -> String {
    let mut s = String::new();
    for a in advice {
        s += &format!("Pod:        {}\nContainer:  {}\n", a.pod, a.container);
        if let (Some(l), Some(r)) = (a.limit_bytes, a.request_bytes) {
            s += &format!(
                "Limits:     memory: {}\nRequests:   memory: {}\n",
                fmt_quantity(l),
                fmt_quantity(r)
            );
        }
        for w in &a.why {
            s += &format!("  because {w}\n");
        }
        if let Some(n) = &a.not_the_limit {
            s += &format!("Not the limit: {n}\n");
        }
        for q in &a.qos {
            s += &format!("QoS:        {q}\n");
        }
        for f in &a.flags {
            s += &format!("Flag:       {f}\n");
        }
        if let (Some(p), Some(k)) = (a.patch(), a.kubectl()) {
            s += &format!(
                "Patch (kubectl patch deployment {} --patch-file patch.yaml):\n",
                a.pod
            );
            for l in p.lines() {
                s += &format!("  {l}\n");
            }
            s += &format!("Or:\n  {k}\n");
        }
        s += "\n";
    }
    s
}

fn round_up(bytes: f64, to: u64) -> u64 {
    ((bytes / to as f64).ceil() as u64).saturating_mul(to)
}

/// Advice from a saved search or run; `base` is the file's folder (trial
/// reports are found from it).
pub fn advise(saved: &Saved, base: &Path) -> Vec<Advice> {
    match saved {
        Saved::Search(s) => vec![from_search(s, base)],
        Saved::Report(r) => from_report(r),
    }
}

pub fn from_search(s: &SearchResult, base: &Path) -> Advice {
    let mut a = Advice {
        pod: s.pod.clone(),
        container: s.pod.clone(),
        ..Advice::default()
    };
    if let Some(r) = &s.no_limit_helps {
        a.not_the_limit = Some(r.advice());
        return a;
    }
    let Some(min) = s.min_safe_limit_bytes else {
        a.not_the_limit = Some(format!(
            "no limit up to {} survived: widen the search's range before sizing",
            fmt_quantity(s.range_bytes.1)
        ));
        return a;
    };
    let flaky = s
        .per_limit
        .iter()
        .filter(|l| l.survival_rate > 0.0 && l.survival_rate < 1.0)
        .map(|l| l.limit_bytes)
        .max();
    let floor = flaky.map_or(min, |f| f.max(min));
    let limit = round_up(floor as f64 * (1.0 + SEARCH_HEADROOM), 16 * MIB);
    a.limit_bytes = Some(limit);
    a.request_bytes = Some(limit);
    a.why.push(format!(
        "the smallest limit that survived all {} trial(s) at it was {} (precision {}); {:.0}% over it, rounded up to 16Mi, covers the search's precision and what this host's runs cannot show",
        s.repeat,
        fmt_quantity(min),
        fmt_human(s.precision_bytes),
        SEARCH_HEADROOM * 100.0
    ));
    if let Some(f) = flaky {
        a.why.push(format!(
            "at {} it survived only some trials: the headroom starts from there",
            fmt_quantity(f)
        ));
    }
    a.why.push("requests equal to limits: Guaranteed QoS, last in the kubelet's eviction order, oom_score_adj -997".into());
    if let Some((container, rt)) = trial_runtime(s, base) {
        a.flags = flags(&rt, limit);
        a.container = container;
    }
    a
}

/// The container whose runtime memory the largest surviving trial
/// recorded, and that memory, from the trial's report.
fn trial_runtime(s: &SearchResult, base: &Path) -> Option<(String, RuntimeMemory)> {
    let t = s
        .trials
        .iter()
        .filter(|t| t.survived)
        .max_by_key(|t| t.limit_bytes)?;
    let path = base.join(&t.report);
    let path = if path.exists() {
        path
    } else {
        Path::new(&t.report).to_path_buf()
    };
    let Saved::Report(r) = crate::report::load(&path).ok()? else {
        return None;
    };
    r.pods
        .iter()
        .flat_map(|p| &p.containers)
        .find_map(|c| Some((c.name.clone(), c.runtime_memory.clone()?)))
}

/// The runtime's flags for `limit`, from where its memory went at its peak.
pub fn flags(rt: &RuntimeMemory, limit: u64) -> Vec<String> {
    let peak = rt
        .samples
        .iter()
        .max_by_key(|s| s.bytes.iter().sum::<u64>());
    let non_heap = peak.map_or(0, |s| s.bytes.iter().skip(1).sum::<u64>());
    let heap = peak.and_then(|s| s.bytes.first().copied()).unwrap_or(0);
    let heap_room = limit.saturating_sub(non_heap + non_heap / 10);
    let mib = |b: u64| b / MIB;
    match rt.runtime {
        Runtime::Java => vec![
            format!(
                "-Xmx{}m: the most heap that fits, the limit less the {} of non-heap measured at the peak plus 10% (the heap held {} then)",
                mib(heap_room),
                fmt_human(non_heap),
                fmt_human(heap)
            ),
            format!(
                "or -XX:MaxRAMPercentage={:.0}",
                (heap_room as f64 / limit as f64 * 100.0).floor()
            ),
        ],
        Runtime::Go => vec![format!(
            "GOMEMLIMIT={}MiB (90% of the limit: the GC runs before the kernel kills)",
            mib(limit * 9 / 10)
        )],
        Runtime::Node => vec![format!(
            "NODE_OPTIONS=--max-old-space-size={} (the limit less {} outside V8's heap at the peak, plus 10%)",
            mib(heap_room),
            fmt_human(non_heap)
        )],
        Runtime::Python => Vec::new(),
    }
}

pub fn from_report(r: &Report) -> Vec<Advice> {
    r.pods.iter().map(|p| pod_advice(r, p)).collect()
}

fn pod_advice(r: &Report, p: &PodReport) -> Advice {
    let mut a = Advice {
        pod: p.name.clone(),
        container: p.container_name().to_string(),
        ..Advice::default()
    };
    let peak = p.peak_bytes;
    match p.verdict.cause {
        Cause::Evicted => {
            a.not_the_limit = Some("evicted for the node's pressure: raising limits.memory does not help; the request does".into());
            a.qos.push(format!(
                "requests.memory: {} (what it used; it was {} over a request of {}): a pod over its request is first in the kubelet's eviction order",
                fmt_quantity(round_up(peak as f64, 16 * MIB)),
                fmt_human(peak.saturating_sub(p.request_bytes.unwrap_or(0))),
                p.request_bytes.map_or("none".into(), fmt_quantity)
            ));
        }
        Cause::NodeOomKill | Cause::AllocatableOomKill => {
            a.not_the_limit = Some("the node (or its allocatable) ran out before the kubelet evicted: requests that match use, and reservations for the system, are the fix".into());
        }
        Cause::CudaOom => {
            let gpu = r
                .gpu
                .as_ref()
                .map_or("SIZE".into(), |g| fmt_quantity(g.total_bytes));
            a.not_the_limit = Some(format!(
                "the GPU ran out: vLLM's settings are the fix; `oomsim vllm plan --model CONFIG --gpu-memory {gpu}` plans them"
            ));
        }
        Cause::RuntimeOom => {
            a.not_the_limit = p.verdict.runtime_oom.as_ref().map(|o| o.advice());
        }
        Cause::CgroupOomKill | Cause::CgroupOomKillOfOtherProcess => {
            a.not_the_limit = Some(format!(
                "OOMKilled at {}: one run does not say how much more it needs; `oomsim search` measures the smallest safe limit",
                p.limit_bytes.map_or("its limit".into(), fmt_quantity)
            ));
        }
        _ if p.survived() => {
            let limit = round_up(peak as f64 * (1.0 + RUN_HEADROOM), 16 * MIB);
            a.limit_bytes = Some(limit);
            a.request_bytes = Some(limit);
            a.why.push(format!(
                "peak {} in one run; {:.0}% over it, rounded up to 16Mi (one run is one sample: `oomsim search` measures the boundary)",
                fmt_human(peak),
                RUN_HEADROOM * 100.0
            ));
            if let Some(rt) = p.containers.iter().find_map(|c| c.runtime_memory.as_ref()) {
                a.flags = flags(rt, limit);
            }
        }
        _ => {
            a.not_the_limit = Some(format!("{}: not memory", p.verdict.cause.describe()));
        }
    }
    if r.node.is_some()
        && p.request_bytes.is_none_or(|q| q < peak)
        && p.verdict.cause != Cause::Evicted
    {
        a.qos.push(format!(
            "requests.memory below its use ({}): it would be evicted before pods within their requests; requests equal to limits makes it Guaranteed",
            fmt_human(peak)
        ));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::stats::PartSample;

    fn rt(runtime: Runtime, samples: &[&[u64]]) -> RuntimeMemory {
        RuntimeMemory {
            runtime,
            source: "test".into(),
            parts: vec!["heap".into(), "other".into()],
            samples: samples
                .iter()
                .enumerate()
                .map(|(i, b)| PartSample {
                    t_s: i as f64,
                    bytes: b.to_vec(),
                })
                .collect(),
            gc_count: None,
            next_gc_bytes: None,
        }
    }

    /// The flags come from the sample with the largest total, not the last.
    #[test]
    fn flags_leave_room_for_what_the_heap_flag_does_not_cap() {
        let java = rt(
            Runtime::Java,
            &[
                &[100 * MIB, 10 * MIB],
                &[150 * MIB, 100 * MIB],
                &[10 * MIB, 10 * MIB],
            ],
        );
        let f = flags(&java, 300 * MIB);
        // 300 - (100 + 10) = 190.
        assert!(f[0].starts_with("-Xmx190m:"), "{f:?}");
        assert_eq!(f[1], "or -XX:MaxRAMPercentage=63");
        let go = flags(&rt(Runtime::Go, &[&[50 * MIB]]), 200 * MIB);
        assert!(go[0].starts_with("GOMEMLIMIT=180MiB"), "{go:?}");
        assert!(flags(&rt(Runtime::Python, &[&[1]]), MIB).is_empty());
    }
}
