//! One classifier for how a pod ended: the reason Kubernetes would show
//! (`OOMKilled`, `Error`, `Completed`), the exit code it would report, and
//! oomsim's finer cause, so exit 137 from an OOM kill is never confused with
//! exit 137 from someone's `kill -9`.

use serde::{Deserialize, Serialize};

use crate::k8s::Reason;
use crate::plan::Expect;
use crate::runtime::oom::RuntimeOom;

/// How the pod's main process ended, as waitpid saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The exit code Kubernetes reports: 128 + signal for a signal.
    pub fn k8s_code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// oomsim's diagnosis, finer than the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The kernel's OOM killer killed the main process: the pod hit its own limit.
    CgroupOomKill,
    /// The OOM killer killed another process in the pod; the main one then failed.
    CgroupOomKillOfOtherProcess,
    /// SIGKILL from someone other than the OOM killer: not an OOM.
    ExternalSigkill,
    /// SIGTERM (143), e.g. a graceful shutdown request.
    Sigterm,
    /// Another signal.
    Signal,
    /// The application exited non-zero by itself.
    AppError,
    /// Exit 0.
    Completed,
    /// The harness killed it after the pod's timeout.
    Timeout,
    /// The program could not be started at all.
    StartFailed,
    /// oomsim itself stopped it: Ctrl-C, SIGTERM or SIGHUP reached the harness.
    Interrupted,
    /// A device allocation failed (CUDA out of memory) and the program exited
    /// with an error: the GPU ran out, not the container's memory.
    CudaOom,
    /// The kubelet-style eviction loop evicted the pod: the node was low on memory.
    Evicted,
    /// The runtime ran out of memory of its own (a heap cap, an allocation
    /// it could not get) and the program exited: the kernel killed nothing.
    RuntimeOom,
    /// The kernel's OOM killer acted for the node (the pods' parent cgroup),
    /// not for the pod's own limit: raising the pod's limit would not help.
    NodeOomKill,
    /// The kernel's OOM killer acted at the node's allocatable limit (the
    /// kubepods cgroup: capacity less kubeReserved and systemReserved),
    /// below the pod's own limit and before the kubelet evicted anything.
    AllocatableOomKill,
}

/// Which cgroup above the pod ran out, when the kill was not the pod's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeLevel {
    /// The node itself (capacity).
    Node,
    /// The kubepods cgroup (allocatable).
    Allocatable,
}

impl Cause {
    pub fn describe(self) -> &'static str {
        match self {
            Cause::CgroupOomKill => {
                "the kernel's OOM killer killed it: the container went over its own memory limit"
            }
            Cause::CgroupOomKillOfOtherProcess => {
                "the OOM killer killed another process in the container; the main process then exited (containerd reports OOMKilled whatever its exit code)"
            }
            Cause::ExternalSigkill => {
                "killed by SIGKILL from outside the kernel's OOM killer (oom_kill did not rise): not an OOM"
            }
            Cause::Sigterm => "terminated by SIGTERM (exit 143): a shutdown request, not an OOM",
            Cause::Signal => "killed by a signal other than SIGKILL or SIGTERM",
            Cause::AppError => "the application exited with a non-zero code by itself: not an OOM",
            Cause::Completed => "exited 0",
            Cause::Timeout => "still running at the pod's timeout; oomsim killed it",
            Cause::StartFailed => "the program could not be started",
            Cause::Interrupted => {
                "oomsim stopped it: the run was interrupted (Ctrl-C, SIGTERM or SIGHUP); not an OOM"
            }
            Cause::Evicted => "evicted by the kubelet: the node was low on memory",
            Cause::NodeOomKill => {
                "the kernel's OOM killer acted for the node, not for the pod's own limit (it was below it): the node ran out, and it picked this pod by oom_score_adj"
            }
            Cause::AllocatableOomKill => {
                "the kernel's OOM killer acted at the node's allocatable limit (kubepods: capacity minus kubeReserved and systemReserved), below the pod's own limit, before the kubelet evicted anything: the pods together outgrew allocatable"
            }
            Cause::RuntimeOom => {
                "the runtime ran out of memory of its own (a heap cap or an allocation it could not get) and exited; the kernel killed nothing"
            }
            Cause::CudaOom => {
                "CUDA out of memory: a device allocation failed and the program exited with an error; the GPU ran out, not the container's memory limit"
            }
        }
    }
}

/// Where a verdict's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AtSource {
    /// The kernel's own timestamp on its kill line.
    Kmsg,
    /// When oomsim saw the cgroup's oom_kill counter rise.
    OomKillCounter,
    /// When waitpid returned.
    Waitpid,
    /// When the eviction loop evicted the pod.
    Eviction,
    /// When the workload reported the failure (a CUDA OOM).
    WorkloadEvent,
}

impl std::fmt::Display for AtSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AtSource::Kmsg => "kmsg",
            AtSource::OomKillCounter => "oom_kill_counter",
            AtSource::Waitpid => "waitpid",
            AtSource::Eviction => "eviction",
            AtSource::WorkloadEvent => "workload_event",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub reason: Reason,
    pub exit_code: i32,
    pub cause: Cause,
    pub message: String,
    /// Seconds after the pod started that it ended, from the kernel's event when there was one.
    pub at_s: f64,
    /// Where `at_s` came from.
    pub at_source: AtSource,
    /// Microseconds from the kernel's kill (its /dev/kmsg timestamp) to oomsim seeing the counter rise.
    pub detect_latency_us: Option<f64>,
    /// With cause `runtime_oom`: which runtime, its kind, the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_oom: Option<RuntimeOom>,
}

impl Verdict {
    /// Survived: it completed, or was still running at its timeout (a
    /// server), with no OOM kill in the pod. The one definition the search,
    /// `compare` and the reports share.
    pub fn survived(&self, oom_kills: u64) -> bool {
        oom_kills == 0 && matches!(self.cause, Cause::Completed | Cause::Timeout)
    }
}

/// Everything the classifier looks at.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub exit: Option<Exit>,
    pub start_error: Option<String>,
    pub timed_out: bool,
    /// Rise of the pod cgroup's oom_kill counter over the run.
    pub oom_kills: u64,
    /// The main process was the victim named in the kernel log.
    pub main_was_victim: bool,
    /// Seconds after start: waitpid returned, the counter rise was seen, the kernel logged the kill.
    pub waited_s: f64,
    pub counter_seen_s: Option<f64>,
    pub kernel_kill_s: Option<f64>,
    /// A CUDA out-of-memory error the pod reported: seconds after start (when
    /// known) and the error's text.
    pub cuda_oom: Option<(Option<f64>, String)>,
    /// The eviction loop evicted the pod: seconds after start, the kubelet's message.
    pub evicted: Option<(f64, String)>,
    /// The program printed a runtime's own out-of-memory.
    pub runtime_oom: Option<RuntimeOom>,
    /// The OOM kill was the node's or kubepods', not the pod's own.
    pub node_oom: Option<NodeLevel>,
    /// The signal that stopped the run, when oomsim stopped the pod for it.
    pub interrupted: Option<&'static str>,
}

pub fn classify(ev: &Evidence) -> Verdict {
    let (at_s, at_source) = match (ev.kernel_kill_s, ev.counter_seen_s) {
        (Some(k), _) => (k, AtSource::Kmsg),
        (None, Some(c)) => (c, AtSource::OomKillCounter),
        (None, None) => (ev.waited_s, AtSource::Waitpid),
    };
    let detect_latency_us = match (ev.kernel_kill_s, ev.counter_seen_s) {
        (Some(k), Some(c)) => Some(((c - k) * 1e6 * 10.0).round() / 10.0),
        _ => None,
    };
    let verdict = |reason: Reason, exit_code, cause: Cause, message: String| Verdict {
        reason,
        exit_code,
        cause,
        message,
        at_s,
        at_source,
        detect_latency_us,
        runtime_oom: None,
    };
    let Some(exit) = ev.exit else {
        let why = ev
            .start_error
            .clone()
            .unwrap_or_else(|| "no exit status".into());
        return Verdict {
            at_s: 0.0,
            at_source: AtSource::Waitpid,
            ..verdict(Reason::StartError, 128, Cause::StartFailed, why)
        };
    };
    let code = exit.k8s_code();
    let oom = ev.oom_kills > 0;
    if let Some((at, message)) = &ev.evicted
        && !oom
    {
        return Verdict {
            at_s: *at,
            at_source: AtSource::Eviction,
            ..verdict(Reason::Evicted, code, Cause::Evicted, message.clone())
        };
    }
    if let (true, Some(level)) = (oom, ev.node_oom) {
        let cause = match level {
            NodeLevel::Node => Cause::NodeOomKill,
            NodeLevel::Allocatable => Cause::AllocatableOomKill,
        };
        return verdict(Reason::OomKilled, code, cause, cause.describe().into());
    }
    // A worker killed while the main process lived on: the container ends
    // when its main process does (Finished is then), not at the kill.
    let main_end = |v: Verdict| Verdict {
        at_s: ev.waited_s,
        at_source: AtSource::Waitpid,
        ..v
    };
    let killed_at = match ev.kernel_kill_s.or(ev.counter_seen_s) {
        Some(t) => format!(" at {t:.2}s"),
        None => String::new(),
    };
    match exit {
        // containerd and CRI-O say OOMKilled whenever the container's cgroup
        // had an OOM kill, whatever the exit code (containerd
        // internal/cri/server/events.go: TaskOOM sets the reason; the exit
        // only fills an empty one).
        Exit::Code(0) if oom => main_end(verdict(
            Reason::OomKilled,
            0,
            Cause::CgroupOomKillOfOtherProcess,
            format!(
                "the OOM killer killed {} other process(es) in the container{killed_at} and the main process exited 0 at {:.2}s: the runtime still reports OOMKilled",
                ev.oom_kills, ev.waited_s
            ),
        )),
        _ if oom && ev.timed_out && !ev.main_was_victim => main_end(verdict(
            Reason::OomKilled,
            code,
            Cause::CgroupOomKillOfOtherProcess,
            format!(
                "the OOM killer killed {} other process(es) in the container{killed_at}; the main process kept running with a dead worker until oomsim's timeout ended it at {:.2}s (the runtime reports OOMKilled)",
                ev.oom_kills, ev.waited_s
            ),
        )),
        Exit::Code(0) => verdict(
            Reason::Completed,
            0,
            Cause::Completed,
            Cause::Completed.describe().into(),
        ),
        Exit::Signal(libc::SIGKILL)
            if oom && (ev.main_was_victim || ev.kernel_kill_s.is_none()) =>
        {
            verdict(
                Reason::OomKilled,
                code,
                Cause::CgroupOomKill,
                Cause::CgroupOomKill.describe().into(),
            )
        }
        _ if oom => main_end(verdict(
            Reason::OomKilled,
            code,
            Cause::CgroupOomKillOfOtherProcess,
            format!(
                "the OOM killer killed {} other process(es) in the container{killed_at}; the main process then exited with {code} at {:.2}s (the runtime reports OOMKilled whatever the exit code)",
                ev.oom_kills, ev.waited_s
            ),
        )),
        Exit::Signal(libc::SIGKILL) if ev.interrupted.is_some() => verdict(
            Reason::Error,
            code,
            Cause::Interrupted,
            format!(
                "oomsim stopped it on {}: the run was interrupted; not an OOM",
                ev.interrupted.unwrap_or("a signal")
            ),
        ),
        _ if ev.timed_out => verdict(
            Reason::Error,
            code,
            Cause::Timeout,
            Cause::Timeout.describe().into(),
        ),
        Exit::Signal(libc::SIGKILL) => verdict(
            Reason::Error,
            code,
            Cause::ExternalSigkill,
            Cause::ExternalSigkill.describe().into(),
        ),
        Exit::Signal(libc::SIGTERM) => verdict(
            Reason::Error,
            code,
            Cause::Sigterm,
            Cause::Sigterm.describe().into(),
        ),
        // The runtime gave up by itself (V8 aborts: SIGABRT, exit 134).
        Exit::Code(_) | Exit::Signal(libc::SIGABRT) if ev.runtime_oom.is_some() => {
            let message = ev
                .runtime_oom
                .as_ref()
                .map(RuntimeOom::advice)
                .unwrap_or_default();
            Verdict {
                runtime_oom: ev.runtime_oom.clone(),
                ..verdict(Reason::Error, code, Cause::RuntimeOom, message)
            }
        }
        Exit::Signal(s) => verdict(
            Reason::Error,
            code,
            Cause::Signal,
            format!("killed by signal {s}"),
        ),
        Exit::Code(_) if ev.cuda_oom.is_some() => {
            let (at, text) = ev.cuda_oom.clone().unwrap_or_default();
            let v = verdict(Reason::Error, code, Cause::CudaOom, text);
            match at {
                Some(at_s) => Verdict {
                    at_s,
                    at_source: AtSource::WorkloadEvent,
                    ..v
                },
                None => v,
            }
        }
        Exit::Code(c) => verdict(
            Reason::Error,
            code,
            Cause::AppError,
            format!("the application exited with code {c} by itself: not an OOM"),
        ),
    }
}

/// What failed of a pod's expectation (empty: it held).
pub fn unmet(expect: &Expect, v: &Verdict) -> Vec<String> {
    let mut failed = Vec::new();
    if let Some(reason) = &expect.reason
        && *reason != v.reason
    {
        failed.push(format!("expected reason {reason}, got {}", v.reason));
    }
    if let Some(code) = expect.exit_code
        && code != v.exit_code
    {
        failed.push(format!("expected exit code {code}, got {}", v.exit_code));
    }
    if let Some(within) = expect.within_s
        && v.at_s > within
    {
        failed.push(format!(
            "expected it within {within}s, it ended after {:.2}s",
            v.at_s
        ));
    }
    failed
}

#[cfg(test)]
mod tests;
