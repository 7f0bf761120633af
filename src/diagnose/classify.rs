//! Findings weighed into one class. The strongest record wins: what vLLM or
//! PyTorch said of the GPU, the kubelet's eviction, the kernel's own kill
//! line (which OOM killer ran), the container runtime's `OOMKilled`, the
//! language runtime's own OOM; only then the exit code, read with what the
//! kubelet did around it (a probe, preemption, a grace period). Exit 137
//! with nothing else is not enough, and says which command would decide.

use super::finding::{Finding, KillScope, Kind, Probe};
use super::input::Source;
use super::{Class, Confidence, Diagnosis, Evidence, Facts, fix};
use crate::units::fmt_quantity;

/// At most this many lines are quoted.
const MAX_EVIDENCE: usize = 12;

struct Seen<'a> {
    f: &'a [Finding],
}

impl Seen<'_> {
    fn any(&self, p: impl Fn(&Kind) -> bool) -> bool {
        self.f.iter().any(|f| p(&f.kind))
    }
    fn reason(&self, r: &str) -> bool {
        self.any(|k| matches!(k, Kind::Reason { reason, .. } if reason == r))
    }
}

pub fn classify(sources: &[Source], findings: &[Finding], saved: Facts) -> Diagnosis {
    let seen = Seen { f: findings };
    let mut facts = super::facts::gather(findings, saved);
    if facts.killed_at.is_none() {
        // The kernel's kill line's own stamp (dmesg uptime, -T, syslog).
        facts.killed_at = findings
            .iter()
            .filter(|f| matches!(f.kind, Kind::KernelKill { .. } | Kind::Constraint { .. }))
            .find_map(|f| sources.get(f.source)?.lines.get(f.line)?.stamp.clone());
    }
    let (class, confidence, summary, mut ruled_out) = decide(&seen, &facts);
    let runtime = findings.iter().find_map(|f| match &f.kind {
        Kind::Runtime(r) => Some(r.runtime),
        _ => None,
    });
    let conflict = conflict(&seen, class);
    if let Some(c) = &conflict {
        ruled_out.push(c.clone());
    }
    let confidence = if conflict.is_some() {
        confidence.min(Confidence::Medium)
    } else {
        confidence
    };
    let evidence = evidence(sources, findings, class);
    let decide = deciding_command(&seen, class, confidence, &facts);
    Diagnosis {
        class,
        runtime,
        confidence,
        summary,
        fix: fix::fix(class, &facts, findings),
        evidence,
        ruled_out,
        decide,
        facts,
        read: Vec::new(),
    }
}

type Decision = (Class, Confidence, String, Vec<String>);

fn decide(s: &Seen, facts: &Facts) -> Decision {
    use Confidence::*;
    let q = |b: Option<u64>| b.map_or_else(|| "?".to_string(), fmt_quantity);
    if s.any(|k| matches!(k, Kind::Vllm(_))) {
        return (Class::VllmKvStartup, High, "vLLM refused to start: its KV cache does not fit the GPU memory it was given".into(), vec![
            "cgroup_oom / node_oom: vLLM checked its own budget and raised an error; the kernel killed nothing".into(),
        ]);
    }
    if s.any(|k| matches!(k, Kind::Cuda(_))) {
        return (Class::CudaOom, High, "CUDA out of memory: the GPU ran out, not the container's memory".into(), vec![
            "cgroup_oom: a CUDA allocation failed and the program raised an error (reason Error, not OOMKilled); limits.memory does not cover GPU memory".into(),
        ]);
    }
    let evicted = s.reason("Evicted") || s.any(|k| matches!(k, Kind::Evicted { .. }));
    if evicted {
        let mut out = vec!["cgroup_oom: the kubelet evicted the pod for the node's pressure; the kernel's OOM killer did not act on its limit".to_string()];
        if let (Some(u), Some(l)) = (facts.usage_bytes, facts.limit_bytes)
            && u < l
        {
            out.push(format!(
                "raising limits.memory: it used {} of its {} limit",
                q(Some(u)),
                q(Some(l))
            ));
        }
        let resource = facts.eviction_resource.as_deref().unwrap_or("memory");
        return (
            Class::NodeEviction,
            High,
            format!("Evicted: the node was low on {resource}"),
            out,
        );
    }
    let node_kill = s.any(|k| {
        matches!(
            k,
            Kind::KernelKill {
                scope: KillScope::Node,
                ..
            } | Kind::Constraint { memcg: false, .. }
                | Kind::MemInfo
        )
    });
    let memcg_kill = s.any(|k| {
        matches!(
            k,
            Kind::KernelKill {
                scope: KillScope::Memcg,
                ..
            } | Kind::Constraint { memcg: true, .. }
                | Kind::TaskInMemcg { .. }
                | Kind::MemcgUsage { .. }
                | Kind::MemcgStats
        )
    });
    // The kubelet's SystemOOM is a hint, not proof: it has been seen for a
    // cgroup's kill too.
    let system_oom = s.any(|k| matches!(k, Kind::SystemOom { .. }));
    let oom_reason = s.reason("OOMKilled") || s.any(|k| matches!(k, Kind::OomKilledFlag(true)));
    if node_kill && !memcg_kill {
        let mut out = vec!["raising limits.memory: the kernel's OOM killer ran for the whole node (`Out of memory:` / CONSTRAINT_NONE), not at the container's limit".to_string()];
        if oom_reason {
            out.push("the OOMKilled reason alone: the container runtime records any OOM kill in the container's cgroup, the node's included".into());
        }
        return (
            Class::NodeOom,
            High,
            "The node ran out of memory and the kernel's OOM killer chose a victim".into(),
            out,
        );
    }
    if memcg_kill || oom_reason {
        let mut out = vec![
            "node_oom: the kill was scoped to a memory cgroup (its limit), not the node"
                .to_string(),
        ];
        let mut conf = High;
        if system_oom && !memcg_kill {
            conf = Medium;
            out[0] = "node_oom, not yet: a SystemOOM event was recorded too; the kernel's kill line names the cgroup (or none)".into();
        }
        if facts.exit_code == Some(0) {
            out.push("app_error / Completed: exit code 0 does not clear it; the runtime reports OOMKilled when the kernel killed any process in the container's cgroup (a child), and the main process then exited by itself".into());
        }
        if s.any(|k| {
            matches!(
                k,
                Kind::ProbeFailed {
                    probe: Probe::Liveness | Probe::Startup | Probe::Exec,
                    ..
                }
            )
        }) {
            out.push(
                "external_sigkill: probes failed too, but the kill on record is the kernel's"
                    .into(),
            );
        }
        let at = facts
            .limit_bytes
            .map(|l| format!(", at its {} limit", fmt_quantity(l)))
            .unwrap_or_default();
        return (
            Class::CgroupOom,
            conf,
            format!("OOMKilled: the container reached its memory limit{at}"),
            out,
        );
    }
    if s.any(|k| matches!(k, Kind::MemoryPressure)) {
        return (Class::NodeEviction, Medium, "The node reported MemoryPressure: the kubelet evicts pods to reclaim memory".into(), vec![
            "cgroup_oom: no pod's OOM kill on record; the node's pressure is what the evidence shows".into(),
        ]);
    }
    if system_oom {
        return (
            Class::NodeOom,
            Medium,
            "SystemOOM: the kubelet saw the kernel's OOM killer act for the node".into(),
            vec!["cgroup_oom: no OOMKilled reason and no cgroup in a kill line".into()],
        );
    }
    if s.any(|k| matches!(k, Kind::Runtime(_))) {
        return (Class::RuntimeOom, High, format!("The runtime's own out-of-memory ({}): its heap cap, not the container's limit", facts.runtime_kind.as_deref().unwrap_or("?")), vec![
            "cgroup_oom: the runtime gave up under its own cap and exited (reason Error); a kernel kill would say OOMKilled".into(),
        ]);
    }
    let trace_memcg = s.any(|k| matches!(k, Kind::TraceFrame { memcg: true }));
    let trace_node = s.any(|k| matches!(k, Kind::TraceFrame { memcg: false }));
    let unsaid = s.any(|k| {
        matches!(
            k,
            Kind::KernelKill {
                scope: KillScope::Unsaid,
                ..
            } | Kind::OomInvoked { .. }
        )
    });
    if trace_memcg || unsaid || trace_node {
        return if trace_memcg || (unsaid && !trace_node) {
            (
                Class::CgroupOom,
                if trace_memcg { Medium } else { Low },
                "The kernel's OOM killer ran; a memory cgroup's limit by its call trace".into(),
                vec![],
            )
        } else {
            (Class::NodeOom, Medium, "The kernel's OOM killer ran with no memory cgroup in its call trace: the node ran out".into(), vec![])
        };
    }
    let exit = facts.exit_code;
    let killed = exit == Some(137) || s.any(|k| matches!(k, Kind::Signal(9) | Kind::Killed));
    let probe = s.any(|k| {
        matches!(
            k,
            Kind::ProbeFailed {
                probe: Probe::Liveness | Probe::Startup | Probe::Exec,
                ..
            }
        )
    });
    let other_kill = s.any(|k| matches!(k, Kind::Preempted | Kind::GraceExceeded));
    if killed || (exit.is_none() && (probe || other_kill)) {
        let not_memory = "cgroup_oom: exit 137 with reason Error and no OOM event is a SIGKILL from someone else, not the kernel's OOM killer".to_string();
        if probe {
            let p = facts.probe.as_deref().unwrap_or("liveness");
            return (
                Class::ExternalSigkill,
                High,
                format!("Killed by the kubelet after its {p} probe failed: not memory"),
                vec![not_memory],
            );
        }
        if other_kill {
            return (
                Class::ExternalSigkill,
                High,
                "SIGKILL from the kubelet or scheduler (preemption, grace period over): not memory"
                    .into(),
                vec![not_memory],
            );
        }
        if s.any(|k| matches!(k, Kind::OomKilledFlag(false))) {
            return (
                Class::ExternalSigkill,
                Medium,
                "SIGKILL with the runtime's OOMKilled flag false: not the kernel's OOM killer"
                    .into(),
                vec![not_memory],
            );
        }
        if s.any(|k| matches!(k, Kind::Stopping)) {
            return (
                Class::ExternalSigkill,
                Medium,
                "SIGKILL after the kubelet stopped the container and it outlived its grace period"
                    .into(),
                vec![not_memory],
            );
        }
        return (Class::Unknown, Low, "SIGKILL (exit 137) with no record of who sent it: an OOM kill and a kill -9 look alike from here".into(), vec![]);
    }
    if exit == Some(143) || s.any(|k| matches!(k, Kind::NodeShutdown | Kind::Signal(15))) {
        let conf = if exit == Some(143) { High } else { Medium };
        return (Class::Sigterm, conf, "SIGTERM (exit 143): the container was asked to stop (rollout, scale-down, drain, shutdown)".into(), vec![
            "memory: SIGTERM is a request to stop; neither the kernel nor the kubelet's eviction sends it for memory at the limit".into(),
        ]);
    }
    let app_line = s.any(|k| matches!(k, Kind::AppError(_)));
    let failed = exit.is_some_and(|c| c != 0);
    let restarts_clean = exit == Some(0) && s.any(|k| matches!(k, Kind::RestartCount(n) if *n > 0));
    if failed || app_line || restarts_clean {
        let conf = if failed && app_line { High } else { Medium };
        let what = match exit {
            Some(0) => "exit 0 and restarted: the container finishes where it should keep running"
                .to_string(),
            Some(c) => format!("exit {c} by itself"),
            None => "an error in its log".to_string(),
        };
        return (Class::AppError, conf, format!("The application failed: {what}; not memory"), vec![
            "cgroup_oom / runtime_oom: no OOMKilled reason, no kernel OOM line, no runtime out-of-memory message".into(),
        ]);
    }
    (
        Class::Unknown,
        Low,
        "Not enough evidence to say how it ended".into(),
        vec![],
    )
}

/// Evidence that points two ways, said plainly.
fn conflict(s: &Seen, class: Class) -> Option<String> {
    let oom = s.reason("OOMKilled");
    match class {
        Class::CudaOom | Class::VllmKvStartup if oom => Some(
            "conflict: the container was also OOMKilled (host memory) besides the GPU's failure; two failures, fix both".into(),
        ),
        Class::NodeEviction if oom => Some(
            "conflict: an OOMKilled container beside the eviction; the node was under pressure for both".into(),
        ),
        Class::CgroupOom
            if s.any(|k| matches!(k, Kind::KernelKill { scope: KillScope::Node, .. } | Kind::Constraint { memcg: false, .. })) =>
        {
            Some("conflict: both a cgroup's OOM kill and a node-wide one are in the kernel log".into())
        }
        _ => None,
    }
}

/// The lines that mattered for this class, in order read.
fn evidence(sources: &[Source], findings: &[Finding], class: Class) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = Vec::new();
    for f in findings {
        let Some(means) = super::facts::means(&f.kind, class) else {
            continue;
        };
        if out.iter().any(|e| e.means == means) {
            continue;
        }
        let src = &sources[f.source];
        let Some(line) = src.lines.get(f.line) else {
            continue;
        };
        out.push(Evidence {
            file: src.name.clone(),
            line: line.no,
            text: line.raw.trim().to_string(),
            means,
        });
        if out.len() == MAX_EVIDENCE {
            break;
        }
    }
    out
}

/// The one command whose output would decide, when the evidence did not.
fn deciding_command(
    s: &Seen,
    class: Class,
    confidence: Confidence,
    facts: &Facts,
) -> Option<String> {
    if confidence == Confidence::High {
        return None;
    }
    let pod = facts.pod.as_deref().unwrap_or("POD");
    let has_status = s.any(|k| matches!(k, Kind::Reason { .. }));
    let kernel = s.any(|k| {
        matches!(
            k,
            Kind::KernelKill { .. } | Kind::OomInvoked { .. } | Kind::TraceFrame { .. }
        )
    });
    Some(
        if !has_status && !matches!(class, Class::CgroupOom | Class::NodeOom) {
            format!(
                "kubectl describe pod {pod}   # Last State's Reason (OOMKilled or Error), Exit Code, and the Events"
            )
        } else if !kernel {
            "journalctl -k --since '-2h' | grep -iE 'out of memory|oom-kill|killed process'   # on the pod's node: whether the kernel's OOM killer acted".to_string()
        } else {
            "journalctl -k --since '-2h' | grep -B2 -A3 -iE 'Killed process'   # on the node: the lines around the kill name the memory cgroup (or none)".to_string()
        },
    )
}
