//! The page of each command: the kubectl-style verdicts, the charts, the
//! formula table, the events, the recommended patch, and what ran it.

use super::{Page, esc, figure, pre, table};
use crate::diagnose::Diagnosis;
use crate::llm::vllm;
use crate::plot::KvPoint;
use crate::plot::figures;
use crate::recommend;
use crate::report::compare::Row;
use crate::report::search::{Fit, SearchResult};
use crate::report::text::Text;
use crate::report::{Format, Report};
use crate::units::fmt_human;
use crate::workload::events::Event;

fn fit_class(fit: Fit) -> &'static str {
    match fit {
        Fit::Unsafe | Fit::Failed => "bad",
        Fit::Tight | Fit::Wasteful => "warn",
        Fit::Fine => "ok",
    }
}

fn formulas(r: &SearchResult) -> String {
    let rows: Vec<Vec<String>> = r
        .formulas
        .iter()
        .map(|f| {
            vec![
                esc(&f.name),
                format!("<code>{}</code>", esc(&f.rule)),
                format!(
                    "<span class=\"num\">{}</span>",
                    fmt_human(f.recommended_bytes)
                ),
                format!("{:+.1}%", f.margin * 100.0),
                format!(
                    "<span class=\"{}\">{}</span>{}",
                    fit_class(f.fit),
                    f.fit.as_str(),
                    f.error
                        .as_ref()
                        .map(|e| format!(": {}", esc(e)))
                        .unwrap_or_default()
                ),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "<p>No sizing formula was checked.</p>".into();
    }
    table(
        &[
            "formula",
            "rule",
            "recommends",
            "over the smallest safe",
            "verdict",
        ],
        &rows,
    )
}

fn advice(advice: &[recommend::Advice]) -> String {
    pre(&recommend::text(advice))
}

fn event_text(e: &Event) -> Option<String> {
    Some(match e {
        Event::LoadStart {
            strategy,
            size_bytes,
            device,
            ..
        } => format!(
            "model load began: {strategy}, {} onto {device}",
            fmt_human(*size_bytes)
        ),
        Event::DualResidencyStart { host_bytes, .. } => format!(
            "weights on host and GPU at once ({} on the host)",
            fmt_human(*host_bytes)
        ),
        Event::DualResidencyEnd => "host copy freed".into(),
        Event::DeviceCopyDone => "device copy done".into(),
        Event::HostCopyKept { host_bytes } => {
            format!("host copy kept ({})", fmt_human(*host_bytes))
        }
        Event::CudaOom { message, .. } => format!("CUDA out of memory: {message}"),
        Event::KvStart(s) => format!(
            "KV cache ({}) at utilization {}: {} sequences x {} tokens asked, {} KV tokens predicted",
            s.mode,
            s.gpu_memory_utilization,
            s.max_num_seqs,
            s.max_model_len,
            s.predicted_kv_tokens
        ),
        Event::KvOom(s) => format!(
            "KV cache ran out at {} sequences ({} tokens in flight)",
            s.concurrency, s.tokens_in_flight
        ),
        Event::KvDone(s) => format!(
            "KV cache done: {} completed, {} preemptions, at most {} at once",
            s.completed,
            s.preemptions,
            s.peak_concurrency.unwrap_or(s.concurrency)
        ),
        Event::Error { message } => format!("workload error: {message}"),
        Event::Panicked { message } => format!("oomsim's workload panicked: {message}"),
        Event::KvProgress(_) | Event::Unknown => return None,
    })
}

/// Every termination, workload event, eviction and condition, by time.
fn events(r: &Report) -> String {
    let mut rows: Vec<(f64, String, String)> = Vec::new();
    for pod in &r.pods {
        for c in &pod.containers {
            for t in &c.terminations {
                let v = &t.verdict;
                rows.push((
                    t.started_s + v.at_s,
                    format!("{}/{}", pod.name, c.name),
                    format!("{} (exit {}): {}", v.reason, v.exit_code, v.message),
                ));
            }
        }
        if pod.containers.is_empty() {
            let v = &pod.verdict;
            rows.push((
                v.at_s,
                pod.name.clone(),
                format!("{} (exit {}): {}", v.reason, v.exit_code, v.message),
            ));
        }
        for e in &pod.events {
            if let Some(text) = event_text(&e.event) {
                rows.push((e.t_s, pod.name.clone(), text));
            }
        }
    }
    if let Some(node) = &r.node {
        for e in &node.evictions {
            rows.push((e.t_s, e.pod.clone(), format!("Evicted: {}", e.message)));
        }
        for c in &node.conditions {
            rows.push((c.t_s, "node".into(), format!("{}={}", c.kind, c.status)));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(t, who, what)| vec![format!("{t:.3} s"), esc(who), esc(what)])
        .collect();
    table(&["time", "pod / container", "event"], &cells)
}

fn host(r: &Report) -> String {
    let h = &r.host;
    let device = match &r.gpu {
        Some(g) => format!(
            "GPU {}: {} ({}), {}{}",
            g.index,
            g.name,
            g.backend,
            fmt_human(g.total_bytes),
            g.cuda_unavailable
                .as_ref()
                .map(|w| format!("; CUDA not used: {w}"))
                .unwrap_or_default()
        ),
        None => "none".into(),
    };
    let rows = vec![
        vec!["kernel".into(), esc(&h.kernel)],
        vec![
            "cgroup".into(),
            format!("{} at {}", h.cgroup_version, esc(&h.cgroup_root)),
        ],
        vec![
            "memory".into(),
            format!(
                "{} total, {} available at the start",
                fmt_human(h.mem_total_bytes),
                fmt_human(h.mem_available_bytes)
            ),
        ],
        vec!["CPUs".into(), h.cpus.to_string()],
        vec![
            "kernel log".into(),
            if h.kmsg_readable {
                "/dev/kmsg read".into()
            } else {
                "/dev/kmsg not readable: kill lines missing".into()
            },
        ],
        vec!["device".into(), esc(&device)],
        vec![
            "run".into(),
            format!(
                "{} from {} to {}",
                esc(&r.run_id),
                esc(&r.started_at),
                esc(&r.finished_at)
            ),
        ],
    ];
    table(&["", ""], &rows)
}

/// The page of `oomsim run`, with the searches it ran (each with its folder).
pub fn run(r: &Report, searches: &[(SearchResult, std::path::PathBuf)]) -> String {
    let timeline = figures::timeline(r);
    let mut page = Page::new(timeline.title.clone());
    let text = Text.render(r).unwrap_or_else(|e| e.to_string());
    page.section("verdicts", "Verdicts", pre(&text));
    let mut plots = figure(
        &timeline,
        "What memory did and when each pod ended: limits dashed, requests dotted, kills marked.",
    );
    for (s, _) in searches {
        plots += &search_figures(&figures::search(s), s);
    }
    page.section("plots", "Charts", plots);
    if !searches.is_empty() {
        let mut body = String::new();
        for (s, _) in searches {
            body += &format!("<h3>{}</h3>{}", esc(&s.pod), formulas(s));
        }
        page.section(
            "formulas",
            "Sizing formulas against the smallest safe limit",
            body,
        );
    }
    page.section("events", "Events", events(r));
    let mut patch = advice(&recommend::from_report(r));
    for (s, d) in searches {
        patch += &advice(&[recommend::from_search(s, d)]);
    }
    page.section("patch", "Recommended", patch);
    if !r.warnings.is_empty() {
        page.section("warnings", "Warnings", pre(&r.warnings.join("\n")));
    }
    page.section("host", "Host and device", host(r));
    page.render(&format!("oomsim run · scenario {}", r.scenario))
}

/// The search chart (already built: its title heads the page) and the
/// trials' distribution.
fn search_figures(chart: &crate::plot::Figure, s: &SearchResult) -> String {
    figure(
        chart,
        "Where the boundary is: killed limits shaded, the smallest safe limit in black, each formula coloured by its verdict.",
    ) + &figure(
        &figures::distribution(s),
        "How much the trials varied: each surviving trial's peak and each killed trial's time to OOM, against its limit.",
    )
}

/// The page of `oomsim search`.
pub fn search(s: &SearchResult, dir: &std::path::Path) -> String {
    let chart = figures::search(s);
    let mut page = Page::new(chart.title.clone());
    let text = Text.render(s).unwrap_or_else(|e| e.to_string());
    page.section("verdicts", "Search", pre(&text));
    page.section("plots", "Charts", search_figures(&chart, s));
    page.section(
        "formulas",
        "Sizing formulas against the smallest safe limit",
        formulas(s),
    );
    page.section(
        "patch",
        "Recommended",
        advice(&[recommend::from_search(s, dir)]),
    );
    page.section(
        "host",
        "Host",
        pre(&format!(
            "kernel {}\n{} trials, {} at a time, {:.1} s",
            crate::host::kernel_release(),
            s.trials_count,
            s.parallel,
            s.wall_s
        )),
    );
    page.render(&format!(
        "oomsim search · scenario {} · pod {}",
        s.scenario, s.pod
    ))
}

/// The page of `oomsim compare`.
pub fn compare(rows: &[Row], markdown: &str) -> String {
    let fig = figures::compare(rows);
    let mut page = Page::new(fig.title.clone());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                esc(&r.name),
                esc(&r.baseline),
                esc(&r.current),
                if r.regression {
                    "<span class=\"bad\">regression</span>".into()
                } else {
                    "<span class=\"ok\">ok</span>".into()
                },
                esc(&r.note),
            ]
        })
        .collect();
    page.section(
        "verdicts",
        "Checks",
        table(&["check", "baseline", "current", "result", "note"], &cells),
    );
    page.section(
        "plots",
        "Charts",
        figure(
            &fig,
            "Baseline and current side by side; the dashed line is the most the current may reach.",
        ),
    );
    page.section("markdown", "For a job summary", pre(markdown));
    page.render("oomsim compare")
}

/// The page of `oomsim merge`: the matrix's table, its chart, the text.
pub fn matrix(m: &crate::jobs::merge::Merged, text: &str) -> String {
    let fig = figures::matrix(m);
    let mut page = Page::new(fig.title.clone());
    let rows: Vec<Vec<String>> = m
        .rows
        .iter()
        .map(|r| {
            let safe = r
                .smallest_safe
                .iter()
                .map(|(who, b)| {
                    format!(
                        "{who}: {}",
                        b.map_or("none".into(), crate::units::fmt_quantity)
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>");
            vec![
                r.index.to_string(),
                esc(&r.label),
                esc(&r.device),
                esc(&r.verdicts.join(", ")),
                safe,
                if r.ok {
                    "<span class=\"ok\">ok</span>".into()
                } else {
                    format!("<span class=\"bad\">{}</span>", esc(&r.notes.join("; ")))
                },
            ]
        })
        .collect();
    page.section(
        "verdicts",
        "Cells",
        table(
            &[
                "cell",
                "values",
                "device",
                "verdict",
                "smallest safe",
                "result",
            ],
            &rows,
        ),
    );
    page.section(
        "plots",
        "Charts",
        figure(
            &fig,
            "The smallest safe limit each search found, cell by cell.",
        ),
    );
    page.section("text", "As text", pre(text));
    page.render(&format!("oomsim merge · scenario {}", m.scenario))
}

/// The page of `oomsim vllm plan --plot`.
pub fn plan(inp: &vllm::Inputs, points: &[KvPoint], text: &str) -> String {
    let fig = figures::safe_region(inp, points);
    let mut page = Page::new(fig.title.clone());
    page.section("verdicts", "Plan", pre(text));
    page.section(
        "plots",
        "Charts",
        figure(&fig, "max_num_seqs against max_model_len: under a curve no sequence is preempted; measured runs on top."),
    );
    page.section(
        "host",
        "Device",
        pre(&format!(
            "planned for a {} GPU; no device ran (vLLM {}'s arithmetic)",
            fmt_human(inp.gpu_memory_bytes),
            vllm::VLLM_VERSION
        )),
    );
    page.render("oomsim vllm plan")
}

/// The page of `oomsim diagnose`.
pub fn diagnose(d: &Diagnosis) -> String {
    let mut page = Page::new(d.summary.clone());
    page.section(
        "verdicts",
        "Diagnosis",
        pre(&crate::diagnose::text::render(d)),
    );
    let rows: Vec<Vec<String>> = d
        .evidence
        .iter()
        .map(|e| {
            vec![
                format!("{}:{}", esc(&e.file), e.line),
                format!("<code>{}</code>", esc(&e.text)),
                esc(&e.means),
            ]
        })
        .collect();
    page.section(
        "events",
        "Evidence",
        table(&["where", "line", "what it means"], &rows),
    );
    page.section("patch", "Fix", pre(&d.fix));
    page.render("oomsim diagnose")
}
