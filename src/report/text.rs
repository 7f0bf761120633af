//! The kubectl-describe-style block printed per pod after a run.

use std::fmt::Write;

use crate::report::{PodReport, Report};
use crate::units::{fmt_human, fmt_quantity};

fn opt_quantity(v: Option<u64>) -> String {
    v.map_or_else(|| "<none>".into(), fmt_quantity)
}

/// One block per pod, in the order and words of `kubectl describe pod`.
pub fn describe(report: &Report) -> String {
    let mut out = String::new();
    for pod in &report.pods {
        describe_pod(&mut out, report, pod);
        out.push('\n');
    }
    if let Some(node) = &report.node {
        let _ = writeln!(
            out,
            "Node:         capacity {}, evictionHard memory.available<{}, housekeeping {}s",
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
    let verdict = if report.ok {
        "all expectations held"
    } else {
        "EXPECTATIONS FAILED"
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
    let _ = writeln!(out, "QoS Class:    {:?}", pod.qos);
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
    if pod.expect.is_some() {
        let held = if pod.unmet.is_empty() {
            "held".to_string()
        } else {
            format!("FAILED: {}", pod.unmet.join("; "))
        };
        let _ = writeln!(out, "Expectation:  {held}");
    }
}

/// What a kv-cache workload predicted and what happened.
fn kv_line(pod: &PodReport) -> Option<String> {
    let find = |name: &str| pod.events.iter().find(|e| e.event == name);
    let start = find("kv_start")?;
    let n = |e: &crate::workload::events::Event, k: &str| {
        e.data.get(k).and_then(|v| v.as_u64()).unwrap_or(0)
    };
    let mode = start
        .data
        .get("mode")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let predicted = format!(
        "{mode}, {} KV tokens predicted ({:.1} requests at once)",
        n(start, "predicted_kv_tokens"),
        start
            .data
            .get("predicted_concurrency")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0)
    );
    Some(match (find("kv_oom"), find("kv_done")) {
        (Some(o), _) => format!(
            "{predicted}; CUDA OOM at concurrency {} with {} tokens in flight ({} allocated in {} blocks)",
            n(o, "concurrency"),
            n(o, "tokens_in_flight"),
            n(o, "allocated_tokens"),
            n(o, "blocks")
        ),
        (None, Some(d)) => format!(
            "{predicted}; peak concurrency {}, {} preemptions, {} requests completed",
            n(d, "peak_concurrency"),
            n(d, "preemptions"),
            n(d, "completed")
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
        crate::verdict::Cause::Evicted => {
            lines.push(format!(
                "Warning  Evicted     {age:<7} kubelet   {}",
                v.message
            ));
            lines.push(format!(
                "Normal   Killing     {age:<7} kubelet   Stopping container app"
            ));
        }
        crate::verdict::Cause::CgroupOomKill
        | crate::verdict::Cause::CgroupOomKillOfOtherProcess
        | crate::verdict::Cause::NodeOomKill => {
            let what = match &pod.kernel_kill {
                Some(k) => k.line.clone(),
                None => "Memory cgroup out of memory".into(),
            };
            let scope = if v.cause == crate::verdict::Cause::NodeOomKill {
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
    if let Some(node) = &report.node
        && v.cause != crate::verdict::Cause::Evicted
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
