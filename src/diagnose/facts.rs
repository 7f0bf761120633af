//! The numbers the evidence carries, gathered once, and what each finding
//! means in words, for the evidence list.

use super::finding::{Finding, KillScope, Kind, Probe, Scope, VllmKv};
use super::{Class, Facts};
use crate::units::{fmt_human, fmt_quantity};

/// Reasons a container waits under; not how it ended.
const WAITING: [&str; 5] = [
    "CrashLoopBackOff",
    "ContainerCreating",
    "PodInitializing",
    "ImagePullBackOff",
    "ErrImagePull",
];

/// Every fact the findings hold; the first of each wins, except the
/// termination, which prefers Last State (the crash) to State.
pub fn gather(findings: &[Finding], mut f: Facts) -> Facts {
    let ended = |scope: Scope| {
        findings.iter().find_map(|x| match &x.kind {
            Kind::Reason { reason, scope: s }
                if *s == scope && !WAITING.contains(&reason.as_str()) =>
            {
                Some(reason.clone())
            }
            _ => None,
        })
    };
    let code = |scope: Scope| {
        findings.iter().find_map(|x| match x.kind {
            Kind::ExitCode { code, scope: s } if s == scope => Some(code),
            _ => None,
        })
    };
    let order = [Scope::LastState, Scope::State, Scope::Pod, Scope::Unknown];
    f.reason = f.reason.or_else(|| order.iter().find_map(|s| ended(*s)));
    f.exit_code = f
        .exit_code
        .or_else(|| order.iter().find_map(|s| code(*s)))
        .or_else(|| {
            findings.iter().find_map(|x| match x.kind {
                Kind::ExitText(c) => Some(c),
                Kind::Signal(s) => Some(128 + s),
                _ => None,
            })
        });
    for x in findings {
        match &x.kind {
            Kind::RestartCount(n) => set(&mut f.restart_count, *n),
            Kind::Limit(b) => set(&mut f.limit_bytes, *b),
            Kind::Request(b) => set(&mut f.request_bytes, *b),
            Kind::Qos(q) => set(&mut f.qos, q.clone()),
            Kind::Pod(p) => set(&mut f.pod, p.clone()),
            Kind::Container(c) => set(&mut f.container, c.clone()),
            Kind::NodeAllocatable(b) => set(&mut f.node_allocatable_bytes, *b),
            Kind::Finished(t) => set(&mut f.killed_at, t.clone()),
            Kind::Evicted {
                resource,
                threshold,
                available,
                usage,
                request,
                container,
            } => {
                opt(&mut f.eviction_resource, resource.clone());
                opt(&mut f.eviction_threshold_bytes, *threshold);
                opt(&mut f.available_bytes, *available);
                opt(&mut f.usage_bytes, *usage);
                opt(&mut f.request_bytes, *request);
                opt(&mut f.container, container.clone());
            }
            Kind::SystemOom { victim } | Kind::KernelKill { victim, .. } => {
                opt(
                    &mut f.victim,
                    victim
                        .as_ref()
                        .map(|v| format!("{} (pid {})", v.comm, v.pid)),
                );
                if let Kind::KernelKill { anon_rss, .. } = &x.kind {
                    opt(&mut f.anon_rss_bytes, *anon_rss);
                }
            }
            Kind::Constraint { oom_memcg, .. } => opt(&mut f.memcg, oom_memcg.clone()),
            Kind::TaskInMemcg { limit_of } => set(&mut f.memcg, limit_of.clone()),
            Kind::MemcgUsage { usage, limit } => {
                set(&mut f.usage_bytes, *usage);
                set(&mut f.limit_bytes, *limit);
            }
            Kind::Cuda(c) => {
                opt(&mut f.gpu_total_bytes, c.total_bytes);
                opt(&mut f.gpu_free_bytes, c.free_bytes);
                opt(&mut f.gpu_tried_bytes, c.tried_bytes);
                opt(&mut f.gpu_in_use_bytes, c.in_use_bytes);
                opt(&mut f.gpu_reserved_bytes, c.reserved_bytes);
            }
            Kind::Vllm(v) => vllm_facts(&mut f, v),
            Kind::VllmUtilization(u) => set(&mut f.gpu_memory_utilization, *u),
            Kind::Runtime(r) => set(&mut f.runtime_kind, r.kind.clone()),
            Kind::ProbeFailed { probe, .. } if *probe != Probe::Readiness => {
                set(&mut f.probe, probe.name().to_string())
            }
            _ => {}
        }
    }
    f
}

fn vllm_facts(f: &mut Facts, v: &VllmKv) {
    match v {
        VllmKv::NoCacheBlocks => {}
        VllmKv::MaxLenOverCache {
            max_model_len,
            kv_tokens,
        } => {
            set(&mut f.max_model_len, *max_model_len);
            set(&mut f.kv_cache_tokens, *kv_tokens);
        }
        VllmKv::NeedsMore {
            max_model_len,
            needed,
            available,
            estimated_max_len,
        } => {
            opt(&mut f.max_model_len, *max_model_len);
            opt(&mut f.kv_needed_bytes, *needed);
            opt(&mut f.kv_available_bytes, *available);
            opt(&mut f.estimated_max_model_len, *estimated_max_len);
        }
        VllmKv::NegativeAvailable { .. } => {}
        VllmKv::FreeBelowUtilization {
            free,
            total,
            utilization,
            ..
        } => {
            opt(&mut f.gpu_free_bytes, *free);
            opt(&mut f.gpu_total_bytes, *total);
            opt(&mut f.gpu_memory_utilization, *utilization);
        }
    }
}

fn set<T>(slot: &mut Option<T>, v: T) {
    if slot.is_none() {
        *slot = Some(v);
    }
}

fn opt<T>(slot: &mut Option<T>, v: Option<T>) {
    if slot.is_none() {
        *slot = v;
    }
}

/// What a finding means, when it is evidence for or against `class`.
pub fn means(kind: &Kind, class: Class) -> Option<String> {
    let q = |b: &Option<u64>| b.map_or_else(|| "?".into(), fmt_quantity);
    Some(match kind {
        Kind::Reason { reason, scope } if !WAITING.contains(&reason.as_str()) => {
            let whose = match scope {
                Scope::LastState => "the last termination's reason",
                Scope::State => "the current state's reason",
                Scope::Pod => "the pod's reason",
                Scope::Unknown => "a reason",
            };
            let says = match reason.as_str() {
                "OOMKilled" => {
                    ": the container runtime saw the kernel's OOM killer act in the container's cgroup"
                }
                "Evicted" => ": the kubelet evicted the pod",
                "Error" => ": a non-zero exit that was not an OOM kill",
                "Completed" => ": exit 0",
                _ => "",
            };
            format!("{whose} is {reason}{says}")
        }
        Kind::ExitCode { code, .. } | Kind::ExitText(code) => exit_means(*code),
        Kind::OomKilledFlag(b) => format!("the runtime's OOMKilled flag is {b}"),
        Kind::Signal(s) => format!("killed by signal {s}"),
        Kind::Evicted {
            resource,
            threshold,
            available,
            usage,
            request,
            ..
        } => format!(
            "the kubelet's eviction: node low on {} (threshold {}, available {}); the container used {} against a request of {}",
            resource.as_deref().unwrap_or("memory"),
            q(threshold),
            q(available),
            q(usage),
            q(request)
        ),
        Kind::MemoryPressure => {
            "the node reported MemoryPressure / the eviction threshold met".into()
        }
        Kind::ProbeFailed {
            probe,
            restarts: true,
        } => format!(
            "the kubelet killed the container: its {} probe failed",
            probe.name()
        ),
        Kind::ProbeFailed {
            probe,
            restarts: false,
        } => match probe {
            Probe::Readiness => "a readiness probe failed (it never kills)".into(),
            p => format!(
                "the {} probe failed (the kubelet kills after failureThreshold)",
                p.name()
            ),
        },
        Kind::Preempted => "the scheduler preempted the pod".into(),
        Kind::GraceExceeded => {
            "the container outlived its termination grace period and was SIGKILLed".into()
        }
        Kind::Stopping => {
            "the kubelet stopped the container (SIGTERM, then SIGKILL after the grace period)"
                .into()
        }
        Kind::NodeShutdown => "the node shut down; the kubelet stopped its pods".into(),
        Kind::SystemOom { .. } => {
            "the kubelet's SystemOOM: an OOM kill it took for the node's".into()
        }
        Kind::OomInvoked { comm } => {
            format!("the kernel's OOM killer was invoked ({comm} was allocating)")
        }
        Kind::KernelKill {
            scope,
            victim,
            anon_rss,
        } => {
            let who = victim.as_ref().map_or("a process".into(), |v| {
                format!("{} (pid {})", v.comm, v.pid)
            });
            let rss = anon_rss
                .map(|b| format!(", {} anonymous", fmt_human(b)))
                .unwrap_or_default();
            match scope {
                KillScope::Memcg => {
                    format!("the kernel killed {who} at a memory cgroup's limit{rss}")
                }
                KillScope::Node => format!("the kernel killed {who} for the whole node{rss}"),
                KillScope::Unsaid => format!("the kernel's OOM killer killed {who}{rss}"),
            }
        }
        Kind::Constraint { memcg: true, .. } => {
            "the OOM kill's constraint is CONSTRAINT_MEMCG: a cgroup's limit".into()
        }
        Kind::Constraint { memcg: false, .. } => {
            "the OOM kill's constraint is CONSTRAINT_NONE: the node ran out".into()
        }
        Kind::TaskInMemcg { limit_of } => {
            format!("cgroup v1: killed as a result of the limit of {limit_of}")
        }
        Kind::MemcgUsage { usage, limit } => format!(
            "the cgroup's usage {} had reached its limit {}",
            fmt_human(*usage),
            fmt_quantity(*limit)
        ),
        Kind::MemcgStats => {
            "the OOM report dumps a memory cgroup's stats: a cgroup's limit was hit".into()
        }
        Kind::MemInfo => {
            "the OOM report dumps the machine's Mem-Info: the whole node ran out".into()
        }
        Kind::TraceFrame { memcg: true } => {
            "the OOM call trace runs through the memory cgroup's charge".into()
        }
        Kind::TraceFrame { memcg: false } if class == Class::NodeOom => {
            "the OOM call trace comes from the page allocator with no memory cgroup".into()
        }
        Kind::Cuda(c) => format!(
            "CUDA out of memory: asked {} with {} free of {}",
            q(&c.tried_bytes).replace('?', "an allocation"),
            q(&c.free_bytes),
            q(&c.total_bytes)
        ),
        Kind::Vllm(v) => vllm_means(v),
        Kind::Runtime(r) => format!("{}'s own out-of-memory: {}", r.runtime.name(), r.kind),
        Kind::AppError(_) if matches!(class, Class::AppError | Class::Unknown) => {
            "the application's own error".into()
        }
        Kind::Killed => "a shell reports its child Killed (SIGKILL)".into(),
        _ => return None,
    })
}

fn exit_means(code: i32) -> String {
    match code {
        0 => "exit code 0".into(),
        137 => "exit code 137: SIGKILL (the OOM killer's signal, and also kill -9's)".into(),
        143 => "exit code 143: SIGTERM".into(),
        134 => "exit code 134: SIGABRT (an abort, V8's heap limit among them)".into(),
        139 => "exit code 139: SIGSEGV (a crash)".into(),
        c if c > 128 => format!("exit code {c}: signal {}", c - 128),
        c => format!("exit code {c}: the program exited by itself"),
    }
}

fn vllm_means(v: &VllmKv) -> String {
    let g = |b: &Option<u64>| b.map_or_else(|| "?".into(), fmt_human);
    match v {
        VllmKv::NoCacheBlocks => {
            "vLLM: no memory left for the KV cache's blocks after weights and activations".into()
        }
        VllmKv::MaxLenOverCache {
            max_model_len,
            kv_tokens,
        } => format!(
            "vLLM: max_model_len {max_model_len} is more than the {kv_tokens} tokens its KV cache holds"
        ),
        VllmKv::NeedsMore {
            needed,
            available,
            estimated_max_len,
            ..
        } => format!(
            "vLLM: one max-length request needs {} of KV cache, {} is available (longest that fits: {})",
            g(needed),
            g(available),
            estimated_max_len.map_or("?".into(), |e| e.to_string())
        ),
        VllmKv::NegativeAvailable { bytes } => format!(
            "vLLM: available KV cache memory is -{}: weights and activations exceed the utilization's budget",
            fmt_human(*bytes)
        ),
        VllmKv::FreeBelowUtilization {
            free,
            total,
            utilization,
            ..
        } => format!(
            "vLLM: only {} of {} free at start-up, less than utilization {} asks: something else holds the GPU",
            g(free),
            g(total),
            utilization.map_or("?".into(), |u| u.to_string())
        ),
    }
}
