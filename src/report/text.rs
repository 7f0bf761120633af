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
    let mode = start.data.get("mode").and_then(|v| v.as_str()).unwrap_or("?");
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
