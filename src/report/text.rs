//! The kubectl-describe-style block printed per pod after a run.

use std::fmt::Write;

use super::search::SearchResult;
use super::{ContainerState, Format, PodReport, Report, ReportError, Termination};
use crate::k8s::ContainerKind;
use crate::plan::LoadStrategy;
use crate::units::{fmt_human, fmt_quantity};
use crate::verdict::Cause;
use crate::workload::events::{KvRun, kv_run};

/// The kubectl-describe-style text of a run, and the summary of a search.
pub struct Text;

impl Format<Report> for Text {
    fn render(&self, report: &Report) -> Result<String, ReportError> {
        Ok(describe(report))
    }
}

impl Format<SearchResult> for Text {
    fn render(&self, r: &SearchResult) -> Result<String, ReportError> {
        Ok(describe_search(r))
    }
}

/// Headroom suggested above the smallest safe limit, for inputs a run did not see.
pub const HEADROOM: f64 = 0.20;
/// Limits are shown rounded up to whole MiB.
const STEP: u64 = 1 << 20;

fn opt_quantity(v: Option<u64>) -> String {
    v.map_or_else(|| "<none>".into(), fmt_quantity)
}

/// One block per pod, in the order and words of `kubectl describe pod`.
fn describe(report: &Report) -> String {
    let mut out = String::new();
    for pod in &report.pods {
        describe_pod(&mut out, report, pod);
        out.push('\n');
    }
    if let Some(node) = &report.node {
        let allocatable = node
            .allocatable_bytes
            .filter(|&a| a < node.capacity_bytes)
            .map_or(String::new(), |a| {
                format!(", allocatable {}", fmt_quantity(a))
            });
        let _ = writeln!(
            out,
            "Node:         capacity {}{allocatable}, evictionHard memory.available<{}, housekeeping {}s",
            fmt_quantity(node.capacity_bytes),
            fmt_quantity(node.hard_threshold_bytes),
            node.housekeeping_s
        );
        let min_available = node.samples.iter().map(|s| s.available_bytes).min();
        if let Some(a) = min_available {
            let _ = writeln!(out, "  lowest memory.available: {}Ki", a.div_euclid(1024));
        }
        for c in &node.conditions {
            let _ = writeln!(out, "  {:>7.2}s  {}={}", c.t_s, c.kind, c.status);
        }
        for e in &node.evictions {
            let _ = writeln!(
                out,
                "  {:>7.2}s  evicted {} ({} threshold); kubelet order: {}",
                e.t_s,
                e.pod,
                e.signal,
                e.ranking.join(" > ")
            );
        }
        out.push('\n');
    }
    if let Some(why) = report
        .gpu
        .as_ref()
        .and_then(|g| g.cuda_unavailable.as_ref())
    {
        let _ = writeln!(
            out,
            "GPU:          simulated: gpu.backend auto found no CUDA ({why})"
        );
    }
    if let Some(mode) = report
        .oom_kill_mode
        .filter(|_| report.pods.iter().any(|p| p.oom_kill_count > 0))
    {
        let _ = writeln!(out, "OOM kill:     {}", mode.describe());
    }
    for w in &report.warnings {
        let _ = writeln!(out, "Warning:      {w}");
    }
    let verdict = match (&report.interrupted, report.ok) {
        (Some(sig), _) => format!("interrupted by {sig}: oomsim stopped the pods"),
        (None, true) => "all expectations held".into(),
        (None, false) => "EXPECTATIONS FAILED".into(),
    };
    let _ = writeln!(
        out,
        "Scenario {}: {} pod(s), cgroup {}, kernel {}: {verdict}",
        report.scenario,
        report.pods.len(),
        report.host.cgroup_version,
        report.host.kernel
    );
    out
}

fn describe_pod(out: &mut String, report: &Report, pod: &PodReport) {
    let v = &pod.verdict;
    let _ = writeln!(out, "Name:         {}", pod.name);
    let _ = writeln!(out, "Scenario:     {}", report.scenario);
    let _ = writeln!(out, "Container:    {}", pod.container_name());
    for c in pod.containers.iter().filter(|c| !c.flags.is_empty()) {
        let _ = writeln!(out, "Flags:        {} ({})", c.flags.join(" "), c.name);
    }
    let _ = writeln!(out, "QoS Class:    {}", pod.qos);
    let _ = writeln!(out, "Priority:     {}", pod.priority);
    match pod.oom_score_adj_applied {
        Some(a) if a != pod.oom_score_adj => {
            let _ = writeln!(
                out,
                "OOM Score Adj: {} (kubelet policy; {a} applied: this host lacks CAP_SYS_RESOURCE)",
                pod.oom_score_adj
            );
        }
        _ => {
            let _ = writeln!(out, "OOM Score Adj: {}", pod.oom_score_adj);
        }
    }
    let _ = writeln!(
        out,
        "Limits:\n  memory:     {}",
        opt_quantity(pod.limit_bytes)
    );
    let _ = writeln!(
        out,
        "Requests:\n  memory:     {}",
        opt_quantity(pod.request_bytes)
    );
    if pod.swap == Some(crate::cgroup::Swap::Uncontrolled) {
        let _ = writeln!(
            out,
            "Swap:         not controlled (this kernel keeps no swap account for cgroups)"
        );
    }
    let _ = writeln!(out, "State:        Terminated");
    let _ = writeln!(out, "  Reason:     {}", v.reason);
    let _ = writeln!(out, "  Exit Code:  {}", v.exit_code);
    let _ = writeln!(out, "  Started:    {}", pod.started_at);
    let _ = writeln!(
        out,
        "  Finished:   {} ({:.3}s after start, from {})",
        pod.finished_at, v.at_s, v.at_source
    );
    let _ = writeln!(out, "Cause:        {}", v.message);
    let peak_share = pod
        .limit_bytes
        .map(|l| {
            format!(
                " ({:.0}% of limit)",
                pod.peak_bytes as f64 * 100.0 / l as f64
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Peak:         {} ({} bytes){peak_share}",
        fmt_human(pod.peak_bytes),
        pod.peak_bytes
    );
    if let (Some(anon), Some(file)) = (pod.anon_peak_bytes, pod.file_peak_bytes) {
        let _ = writeln!(
            out,
            "  anon:       {} peak (heap, buffers)\n  page cache: {} peak (reclaimable)",
            fmt_human(anon),
            fmt_human(file)
        );
    }
    super::runtime::describe(out, pod);
    if let (Some(gpu), Some(dev)) = (&report.gpu, pod.device_peak_bytes) {
        let _ = writeln!(
            out,
            "GPU:          {} peak on GPU {} ({} backend, {}, {} total)",
            fmt_human(dev),
            gpu.index,
            gpu.backend,
            gpu.name,
            fmt_human(gpu.total_bytes)
        );
    }
    if let Some(d) = &pod.dual_residency {
        let what = if d.page_cache {
            "page cache"
        } else {
            "host buffer"
        };
        let _ = writeln!(
            out,
            "Dual residency: {:.2}s..{:.2}s ({:.2}s) with {} of {what} beside the device copy",
            d.start_s,
            d.end_s,
            d.end_s - d.start_s,
            fmt_human(d.host_bytes)
        );
    }
    if let Some(line) = kv_line(pod) {
        let _ = writeln!(out, "KV cache:     {line}");
    }
    let _ = writeln!(out, "OOM kills:    {}", pod.oom_kill_count);
    if let Some(kill) = &pod.kernel_kill {
        let _ = writeln!(out, "Kernel:       {}", kill.line);
    }
    if let Some(us) = v.detect_latency_us {
        let _ = writeln!(out, "Detected:     {us:.0} us after the kernel's kill");
    }
    let _ = writeln!(out, "Logs:         {}", pod.log);
    if pod.containers.len() > 1 || pod.containers.iter().any(|c| c.restart_count > 0) {
        describe_containers(out, pod);
    }
    let events = pod_events(report, pod);
    if !events.is_empty() {
        let _ = writeln!(
            out,
            "Events:\n  Type     Reason      Age     From      Message"
        );
        for line in events {
            let _ = writeln!(out, "  {line}");
        }
    }
    if pod.expect.is_some() || pod.containers.iter().any(|c| c.expect.is_some()) {
        let held = if pod.unmet.is_empty() {
            "held".to_string()
        } else {
            format!("FAILED: {}", pod.unmet.join("; "))
        };
        let _ = writeln!(out, "Expectation:  {held}");
    }
}

/// `kubectl describe pod`'s container sections: State, Last State,
/// Restart Count, Limits and Requests, per init container and container.
fn describe_containers(out: &mut String, pod: &PodReport) {
    let sections = [("Init Containers", true), ("Containers", false)];
    for (title, init) in sections {
        let mut listed = pod
            .containers
            .iter()
            .filter(|c| (c.kind != ContainerKind::Regular) == init)
            .peekable();
        if listed.peek().is_none() {
            continue;
        }
        let _ = writeln!(out, "{title}:");
        for c in listed {
            let sidecar = if c.kind == ContainerKind::Sidecar {
                " (sidecar: restartPolicy Always)"
            } else {
                ""
            };
            let _ = writeln!(out, "  {}:{sidecar}", c.name);
            match &c.state {
                ContainerState::Running => {
                    let since = c.terminations.first().map_or(String::new(), |t| {
                        format!("\n      Started:      {}", t.started_at)
                    });
                    let _ = writeln!(
                        out,
                        "    State:          Running{since}\n      (oomsim's timeout ended the run here)"
                    );
                }
                ContainerState::Waiting { reason } => {
                    let _ = writeln!(
                        out,
                        "    State:          Waiting\n      Reason:       {reason}"
                    );
                }
                ContainerState::Terminated => {
                    if let Some(t) = c.terminations.first() {
                        terminated(out, "State:     ", t);
                    }
                }
            }
            if let Some(t) = c.last_state() {
                terminated(out, "Last State:", t);
            }
            let _ = writeln!(out, "    Restart Count:  {}", c.restart_count);
            let _ = writeln!(
                out,
                "    Limits:\n      memory:       {}\n    Requests:\n      memory:       {}",
                opt_quantity(c.limit_bytes),
                opt_quantity(c.request_bytes)
            );
            let _ = writeln!(
                out,
                "    OOM Score Adj:  {}\n    Peak:           {}, OOM kills {}",
                c.oom_score_adj,
                fmt_human(c.peak_bytes),
                c.oom_kill_count
            );
            if let Some(v) = &c.verdict
                && v.cause != Cause::Completed
            {
                let _ = writeln!(out, "    Cause:          {}", v.message);
            }
        }
    }
}

/// A Terminated state block, as `kubectl describe` prints it.
fn terminated(out: &mut String, label: &str, t: &Termination) {
    let _ = writeln!(
        out,
        "    {label}     Terminated\n      Reason:       {}\n      Exit Code:    {}\n      Started:      {}\n      Finished:     {}",
        t.verdict.reason, t.verdict.exit_code, t.started_at, t.finished_at
    );
}

/// What a kv-cache workload predicted and what happened.
fn kv_line(pod: &PodReport) -> Option<String> {
    let KvRun { start, oom, done } = kv_run(&pod.events)?;
    let predicted = format!(
        "{}, {} KV tokens predicted ({:.1} requests at once)",
        start.mode, start.predicted_kv_tokens, start.predicted_concurrency
    );
    Some(match (oom, done) {
        (Some(o), _) => format!(
            "{predicted}; CUDA OOM at concurrency {} with {} tokens in flight ({} allocated in {} blocks)",
            o.concurrency, o.tokens_in_flight, o.allocated_tokens, o.blocks
        ),
        (None, Some(d)) => format!(
            "{predicted}; peak concurrency {}, {} preemptions, {} requests completed",
            d.peak_concurrency.unwrap_or(0),
            d.preemptions,
            d.completed
        ),
        (None, None) => predicted,
    })
}

/// The pod's Events, as `kubectl describe pod` lists them.
fn pod_events(report: &Report, pod: &PodReport) -> Vec<String> {
    let mut lines = Vec::new();
    let v = &pod.verdict;
    let age = format!("{:.1}s", v.at_s);
    match v.cause {
        Cause::Evicted => {
            lines.push(format!(
                "Warning  Evicted     {age:<7} kubelet   {}",
                v.message
            ));
            lines.push(format!(
                "Normal   Killing     {age:<7} kubelet   Stopping container {}",
                pod.container_name()
            ));
        }
        Cause::CgroupOomKill | Cause::CgroupOomKillOfOtherProcess | Cause::NodeOomKill => {
            let what = match &pod.kernel_kill {
                Some(k) => k.line.clone(),
                None => "Memory cgroup out of memory".into(),
            };
            let scope = if v.cause == Cause::NodeOomKill {
                " (node-level: the node cgroup ran out)"
            } else {
                ""
            };
            lines.push(format!(
                "Warning  OOMKilling  {age:<7} kernel    {what}{scope}"
            ));
        }
        _ => {}
    }
    // kuberuntime_manager.go doBackOff's event, for a container left waiting.
    for c in pod.containers.iter().filter(
        |c| matches!(&c.state, ContainerState::Waiting { reason } if reason == "CrashLoopBackOff"),
    ) {
        let at = c
            .terminations
            .first()
            .map_or(0.0, |t| t.started_s + t.verdict.at_s);
        lines.push(format!(
            "Warning  BackOff     {:<7} kubelet   Back-off restarting failed container {} in pod {}",
            format!("{at:.1}s"),
            c.name,
            pod.name
        ));
    }
    if let Some(node) = &report.node
        && v.cause != Cause::Evicted
    {
        for e in node
            .evictions
            .iter()
            .filter(|e| e.ranking.contains(&pod.name))
        {
            let pos = e.ranking.iter().position(|n| *n == pod.name).unwrap_or(0) + 1;
            lines.push(format!(
                "Normal   Ranked      {:<7} kubelet   #{pos} in the eviction order when {} was evicted",
                format!("{:.1}s", e.t_s),
                e.pod
            ));
        }
    }
    lines
}

/// The text summary printed after a search.
fn describe_search(r: &SearchResult) -> String {
    let mut out = String::new();
    match r.min_safe_limit_bytes {
        Some(m) => {
            let _ = writeln!(
                out,
                "Smallest safe limit for {}: {} ({m} bytes), survived {}/{} trials there",
                r.pod,
                fmt_quantity(m.next_multiple_of(STEP)),
                r.per_limit
                    .iter()
                    .find(|s| s.limit_bytes == m)
                    .map_or(0, |s| s.survived),
                r.repeat,
            );
            if let Some(peak) = r.peak_bytes {
                let with = ((m as f64 * (1.0 + HEADROOM)) as u64).next_multiple_of(STEP);
                let _ = writeln!(
                    out,
                    "  Peak {} there ({:.0}% of it): at the smallest safe limit there is no headroom, the kernel reclaims page cache to stay under it. Add headroom for load this run did not see: +{:.0}% is {}.",
                    fmt_human(peak),
                    peak as f64 * 100.0 / m as f64,
                    HEADROOM * 100.0,
                    fmt_quantity(with)
                );
            }
        }
        None => match &r.no_limit_helps {
            Some(oom) => {
                let _ = writeln!(
                    out,
                    "No limit helps {}: at {}, the top of {}..{}, {}",
                    r.pod,
                    fmt_quantity(r.range_bytes.1),
                    fmt_quantity(r.range_bytes.0),
                    fmt_quantity(r.range_bytes.1),
                    oom.advice()
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "No limit in {}..{} survived for {}",
                    fmt_quantity(r.range_bytes.0),
                    fmt_quantity(r.range_bytes.1),
                    r.pod
                );
            }
        },
    }
    let _ = writeln!(
        out,
        "{} trials ({} at a time) in {:.1}s; precision {}",
        r.trials_count,
        r.parallel,
        r.wall_s,
        fmt_human(r.precision_bytes)
    );
    // What the trials at each limit cost: a model load's trials dominate.
    let _ = writeln!(
        out,
        "{:<10} {:>7} {:>9} {:>9}",
        "LIMIT", "TRIALS", "SURVIVED", "TIME"
    );
    for s in &r.per_limit {
        let spent: f64 = r
            .trials
            .iter()
            .filter(|t| t.limit_bytes == s.limit_bytes)
            .map(|t| t.wall_s)
            .sum();
        let _ = writeln!(
            out,
            "{:<10} {:>7} {:>8.0}% {:>8.1}s",
            fmt_quantity(s.limit_bytes),
            s.trials,
            s.survival_rate * 100.0,
            spent
        );
    }
    if !r.formulas.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<20} {:>10} {:>8}  {:<9} RULE",
            "FORMULA", "SAYS", "MARGIN", "VERDICT"
        );
        for f in &r.formulas {
            let _ = match &f.error {
                Some(e) => writeln!(
                    out,
                    "{:<20} {:>10} {:>8}  {:<9} {}: {e}",
                    f.name,
                    "-",
                    "-",
                    f.fit.as_str(),
                    f.rule
                ),
                None => writeln!(
                    out,
                    "{:<20} {:>10} {:>+7.0}%  {:<9} {}",
                    f.name,
                    fmt_human(f.recommended_bytes),
                    f.margin * 100.0,
                    f.fit.as_str(),
                    f.rule
                ),
            };
        }
    }
    out
}

/// The strategies side by side, with the dual-residency rule against each.
pub fn describe_strategies(results: &[(LoadStrategy, SearchResult)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>12} {:>10} {:>14} {:>8}",
        "STRATEGY", "MIN SAFE", "PEAK", "1.5xMODEL+4Gi", "MARGIN"
    );
    for (st, r) in results {
        let rule = r.formulas.iter().find(|f| f.name == "dual-residency");
        let _ = writeln!(
            out,
            "{:<16} {:>12} {:>10} {:>14} {:>8}",
            st.as_str(),
            r.min_safe_limit_bytes
                .map_or("none".into(), |m| fmt_quantity(m.next_multiple_of(STEP))),
            r.peak_bytes.map_or("-".into(), fmt_human),
            rule.map_or("-".into(), |f| fmt_human(f.recommended_bytes)),
            rule.map_or("-".into(), |f| format!("{:+.0}%", f.margin * 100.0)),
        );
    }
    out
}
