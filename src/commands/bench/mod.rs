//! `oomsim bench`: oomsim measured by its own real runs.
//!
//! - `fill`: the leak workload's fill rate with no rate cap, against a plain C
//!   page-touch loop and `stress-ng --vm 1 --vm-keep`, interleaved round by
//!   round so drift hits all alike; each measured the same way, from the
//!   cgroup's charge (10% to 90% of the size) sampled at 10 kHz.
//! - `detect`: OOM detection latency over repeated real kills, against the
//!   kernel's /dev/kmsg timestamp.
//! - `sampler`: CPU the sampler thread uses at 1 kHz, and the harness's RSS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

mod diagnose;
mod planner;

use diagnose::DiagnoseStats;
use planner::{PlannerStats, planner};

use crate::cli::args::{Bench, BenchArgs};
use crate::cli::{Failure, exit};
use crate::k8s::Resource;
use crate::monitor::sampler::Sample;
use crate::plan::{Leak, Pages, Phase, Plan, Program, SearchSpec, Steady};
use crate::report::Report;
use crate::units::{fmt_human, parse_bytes};
use crate::{run, signals};

/// A plain page-touch loop: the baseline for the fill rate.
const TOUCH_C: &str = r#"
#include <stdlib.h>
#include <sys/mman.h>
int main(int argc, char **argv) {
    size_t n = strtoull(argv[1], 0, 10);
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 1;
    if (argc > 2) madvise(p, n, MADV_HUGEPAGE);
    for (size_t i = 0; i < n; i += 4096) ((volatile char *)p)[i] = 1;
    return 0;
}
"#;

/// The floor for any sleeping sampler: a bare loop of 1 ms sleeps, 3000 wakes.
const SLEEP_C: &str = r#"
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec ms = {0, 1000000}, wall0, wall1, cpu;
    clock_gettime(CLOCK_MONOTONIC, &wall0);
    for (int i = 0; i < 3000; i++) nanosleep(&ms, 0);
    clock_gettime(CLOCK_MONOTONIC, &wall1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    double wall = (wall1.tv_sec - wall0.tv_sec) + (wall1.tv_nsec - wall0.tv_nsec) / 1e9;
    printf("%f\n", (cpu.tv_sec + cpu.tv_nsec / 1e9) / wall * 100.0);
    return 0;
}
"#;

#[derive(Debug, Serialize)]
pub(super) struct Spread {
    min: f64,
    median: f64,
    max: f64,
    n: usize,
}

pub(super) fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Spread {
        min: v[0],
        median: percentile(&v, 0.5),
        max: v[v.len() - 1],
        n: v.len(),
    })
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[derive(Debug, Default, Serialize)]
struct Results {
    fill_gb_per_s: Vec<(String, Option<Spread>)>,
    fill_ratio_leak_over_loop_4k: Option<Spread>,
    fill_ratio_leak_over_loop_huge: Option<Spread>,
    fill_ratio_leak_over_stress_ng: Option<Spread>,
    detect_latency_us: Option<DetectStats>,
    sampler: Option<SamplerStats>,
    search: Option<SearchStats>,
    planner: Option<PlannerStats>,
    diagnose: Option<DiagnoseStats>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SearchStats {
    program_bytes: u64,
    search_trials: usize,
    search_wall_s: f64,
    search_min_safe_bytes: Option<u64>,
    sweep_trials: usize,
    sweep_wall_s: f64,
    sweep_min_safe_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct DetectStats {
    kills: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

#[derive(Debug, Serialize)]
struct SamplerStats {
    rate_hz_asked: u32,
    rate_hz_achieved: f64,
    cpu_percent_of_one_core: f64,
    /// A bare C loop of 1 ms sleeps on this host, measured in the same run.
    bare_sleep_loop_percent_of_one_core: Option<f64>,
    watcher_cpu_percent_of_one_core: f64,
    harness_rss_hwm_bytes: Option<u64>,
}

pub fn run(args: &BenchArgs) -> Result<u8, Failure> {
    let size = parse_bytes(&args.size).map_err(|e| Failure::input(format!("--size: {e}")))?;
    let wants = |b: Bench| args.which == b || args.which == Bench::All;
    let work = tempfile_dir()?;
    let mut results = Results::default();
    if wants(Bench::Fill) {
        fill(size, args.repeat.max(1), &work, &mut results)?;
    }
    if wants(Bench::Detect) {
        detect(args.kills.max(1), &work, &mut results)?;
    }
    if wants(Bench::Sampler) {
        sampler(&work, &mut results)?;
    }
    if wants(Bench::Search) {
        search_vs_sweep(&work, &mut results)?;
    }
    if wants(Bench::Planner) {
        results.planner = Some(planner(&work)?);
    }
    if wants(Bench::Diagnose) {
        results.diagnose = Some(diagnose::diagnose()?);
    }
    let _ = std::fs::remove_dir_all(&work);
    print_results(&results);
    if let Some(path) = &args.json {
        crate::report::write_json(path, &results)
            .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    }
    if let Some(sig) = signals::caught() {
        return Ok(128u8.saturating_add(sig as u8));
    }
    Ok(exit::OK)
}

fn tempfile_dir() -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("oomsim-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Failure {
        code: exit::INTERNAL,
        message: format!("{}: {e}", dir.display()),
    })?;
    Ok(dir)
}

/// Run a plan for real and return its report.
fn run_plan(plan: &Plan, work: &Path) -> Result<Report, Failure> {
    let pre = run::preflight(plan).map_err(run::RunError::from)?;
    let out = work.join(&plan.name);
    Ok(run::run(plan, pre, &out, false)?)
}

/// GB/s between the samples where the charge crossed 10% and 90% of `size`.
fn fill_rate(samples: &[Sample], size: u64) -> Option<f64> {
    let crossing = |share: f64| {
        samples
            .iter()
            .find(|s| s.bytes as f64 >= size as f64 * share)
            .map(|s| s.t_s)
    };
    let (t10, t90) = (crossing(0.1)?, crossing(0.9)?);
    (t90 > t10).then(|| 0.8 * size as f64 / (t90 - t10) / 1e9)
}

/// Why a C reference program could not be built or run; the benchmark
/// notes it and goes on without that comparison.
#[derive(Debug, thiserror::Error)]
enum ReferenceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cc failed to build {0}")]
    Compile(PathBuf),
    #[error("{0} printed {1:?}, not a number")]
    Output(PathBuf, String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReferenceError + '_ {
    move |source| ReferenceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn compile_c(work: &Path, name: &str, source: &str) -> Result<PathBuf, ReferenceError> {
    let src = work.join(format!("{name}.c"));
    let bin = work.join(name);
    std::fs::write(&src, source).map_err(io(&src))?;
    let status = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .map_err(io(Path::new("cc")))?;
    if !status.success() {
        return Err(ReferenceError::Compile(src));
    }
    Ok(bin)
}

fn fill(size: u64, repeat: u32, work: &Path, results: &mut Results) -> Result<(), Failure> {
    let touch = compile_c(work, "touch", TOUCH_C);
    let stress_ng = Command::new("stress-ng")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if let Err(e) = &touch {
        results.notes.push(format!("plain loop skipped: {e}"));
    }
    if !stress_ng {
        results
            .notes
            .push("stress-ng skipped: not installed (apt-get install stress-ng)".into());
    }
    let leak = vec![Phase::Leak(Leak {
        baseline_bytes: 0,
        rate_bytes_per_s: None,
        cap_bytes: Some(size),
        duration_s: None,
    })];
    let mut contenders: Vec<(&str, Pages, Vec<Phase>)> = vec![
        ("leak-4k", Pages::Small, leak.clone()),
        ("leak-huge", Pages::Huge, leak),
    ];
    if let Ok(bin) = &touch {
        let argv = |huge: bool| {
            let mut a = vec![bin.display().to_string(), size.to_string()];
            if huge {
                a.push("huge".into());
            }
            vec![Phase::Command(Program::new(a, vec![]))]
        };
        contenders.push(("loop-4k", Pages::Small, argv(false)));
        contenders.push(("loop-huge", Pages::Huge, argv(true)));
    }
    if stress_ng {
        let argv = [
            "stress-ng",
            "--vm",
            "1",
            "--vm-bytes",
            &size.to_string(),
            "--vm-keep",
            "--timeout",
            "3s",
            "--quiet",
        ];
        contenders.push((
            "stress-ng-4k",
            Pages::Small,
            vec![Phase::Command(Program::new(
                argv.iter().map(|s| s.to_string()).collect(),
                vec![],
            ))],
        ));
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let limit = size + (256 << 20);
    for round in 0..repeat {
        // Rotate the order each round: memory just freed is cold for whoever comes next.
        for k in 0..contenders.len() {
            let i = (k + round as usize) % contenders.len();
            let (name, pages, phases) = &contenders[i];
            if signals::caught().is_some() {
                return Ok(());
            }
            let mut plan = Plan::single_pod(
                name,
                Some(limit),
                None,
                Duration::from_secs(60),
                phases.clone(),
            );
            plan.sampling_hz = 10_000;
            plan.pods[0].main_mut().workload.pages = *pages;
            let report = run_plan(&plan, work)?;
            let rate = fill_rate(&report.pods[0].samples, size).unwrap_or(f64::NAN);
            eprintln!(
                "oomsim bench: fill round {}/{repeat} {name}: {rate:.2} GB/s",
                round + 1
            );
            rates[i].push(rate);
        }
    }
    let by_name = |n: &str| contenders.iter().position(|c| c.0 == n).map(|i| &rates[i]);
    let ratio = |a: &str, b: &str| {
        let (a, b) = (by_name(a)?, by_name(b)?);
        spread(&a.iter().zip(b).map(|(x, y)| x / y).collect::<Vec<_>>())
    };
    results.fill_ratio_leak_over_loop_4k = ratio("leak-4k", "loop-4k");
    results.fill_ratio_leak_over_loop_huge = ratio("leak-huge", "loop-huge");
    results.fill_ratio_leak_over_stress_ng = ratio("leak-4k", "stress-ng-4k");
    results.fill_gb_per_s = contenders
        .iter()
        .zip(&rates)
        .map(|(c, r)| (c.0.to_string(), spread(r)))
        .collect();
    Ok(())
}

fn detect(kills: u32, work: &Path, results: &mut Results) -> Result<(), Failure> {
    let mut latencies = Vec::new();
    let leak = vec![Phase::Leak(Leak {
        baseline_bytes: 0,
        rate_bytes_per_s: None,
        cap_bytes: None,
        duration_s: None,
    })];
    for k in 0..kills {
        if signals::caught().is_some() {
            break;
        }
        let plan = Plan::single_pod(
            "detect",
            Some(64 << 20),
            None,
            Duration::from_secs(30),
            leak.clone(),
        );
        let report = run_plan(&plan, work)?;
        if !report.host.kmsg_readable {
            results
                .notes
                .push("detect skipped: /dev/kmsg cannot be read".into());
            return Ok(());
        }
        let v = &report.pods[0].verdict;
        if let Some(us) = v.detect_latency_us {
            latencies.push(us);
        }
        eprintln!(
            "oomsim bench: kill {}/{kills}: {} {:?} us",
            k + 1,
            v.reason,
            v.detect_latency_us
        );
    }
    latencies.sort_by(f64::total_cmp);
    if !latencies.is_empty() {
        results.detect_latency_us = Some(DetectStats {
            kills: latencies.len(),
            p50: percentile(&latencies, 0.5),
            p90: percentile(&latencies, 0.9),
            p99: percentile(&latencies, 0.99),
            max: latencies[latencies.len() - 1],
        });
    }
    Ok(())
}

fn sampler(work: &Path, results: &mut Results) -> Result<(), Failure> {
    let hold_s = 5.0;
    let steady = vec![Phase::Steady(Steady {
        size_bytes: 16 << 20,
        duration_s: hold_s,
    })];
    let mut plan = Plan::single_pod(
        "sampler",
        Some(1 << 30),
        None,
        Duration::from_secs(30),
        steady,
    );
    plan.sampling_hz = 1000;
    let report = run_plan(&plan, work)?;
    let h = &report.harness;
    let ran_s = report.pods[0].verdict.at_s.max(hold_s);
    let bare = compile_c(work, "sleep", SLEEP_C).and_then(|bin| {
        let o = Command::new(&bin).output().map_err(io(&bin))?;
        let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
        text.parse::<f64>()
            .map_err(|_| ReferenceError::Output(bin, text))
    });
    if let Err(e) = &bare {
        results.notes.push(format!("bare sleep loop skipped: {e}"));
    }
    results.sampler = Some(SamplerStats {
        rate_hz_asked: plan.sampling_hz,
        rate_hz_achieved: h.samples_taken as f64 / ran_s,
        cpu_percent_of_one_core: h.sampler_cpu_s / ran_s * 100.0,
        bare_sleep_loop_percent_of_one_core: bare.ok(),
        watcher_cpu_percent_of_one_core: h.watcher_cpu_s / ran_s * 100.0,
        harness_rss_hwm_bytes: h.rss_hwm_bytes,
    });
    Ok(())
}

/// The limit search on a 1 GiB program to 1% precision, against a linear
/// sweep upward in 64Mi steps, one after the other.
fn search_vs_sweep(work: &Path, results: &mut Results) -> Result<(), Failure> {
    let size: u64 = 1 << 30;
    let hold = vec![Phase::Steady(Steady {
        size_bytes: size,
        duration_s: 0.1,
    })];
    let plan = Plan::single_pod(
        "search-bench",
        Some(2 << 30),
        None,
        Duration::from_secs(60),
        hold,
    );
    let spec = SearchSpec {
        pod: plan.pods[0].name.clone(),
        range: Some((64 << 20, 2 << 30)),
        precision_bytes: None,
        repeat: 3,
        strategies: vec![],
    };
    let dir = work.join("search");
    let usable = crate::host::meminfo()
        .map_err(run::RunError::from)?
        .usable_bytes();
    let bounds = crate::search::Bounds {
        range: (64 << 20, 2 << 30),
        precision_bytes: None,
        repeat: 3,
        parallel: crate::search::parallelism(2 << 30, usable),
    };
    let real = crate::search::runner::Real {
        plan: &plan,
        pod: &spec.pod,
        out_dir: &dir,
    };
    let found = crate::search::search(
        &plan,
        &spec,
        bounds,
        &real,
        &crate::search::Progress::new(false),
    )?;
    let started = std::time::Instant::now();
    let (mut sweep_trials, mut sweep_min) = (0, None);
    let mut limit: u64 = 64 << 20;
    while limit <= 2 << 30 && signals::caught().is_none() {
        let mut p = plan.clone();
        p.pods[0].main_mut().resources.memory = Resource {
            request: Some(limit),
            limit: Some(limit),
        };
        sweep_trials += 1;
        let r = run_plan(&p, work)?;
        if r.pods[0].survived() {
            sweep_min = Some(limit);
            break;
        }
        limit += 64 << 20;
    }
    results.search = Some(SearchStats {
        program_bytes: size,
        search_trials: found.trials_count,
        search_wall_s: found.wall_s,
        search_min_safe_bytes: found.min_safe_limit_bytes,
        sweep_trials,
        sweep_wall_s: started.elapsed().as_secs_f64(),
        sweep_min_safe_bytes: sweep_min,
    });
    Ok(())
}

fn print_results(r: &Results) {
    if let Some(d) = &r.diagnose {
        let ms = |s: &Option<Spread>| {
            s.as_ref().map_or("-".into(), |s| {
                format!(
                    "min {:.2}  median {:.2}  max {:.2} ms (n={})",
                    s.min, s.median, s.max, s.n
                )
            })
        };
        println!(
            "diagnose: {} bytes, {} lines: {}; anchor (split lines, find a word): {}",
            d.bytes,
            d.lines,
            ms(&d.diagnose_ms),
            ms(&d.anchor_ms)
        );
    }
    if let Some(p) = &r.planner {
        println!(
            "vllm planner: {} plans (256 x 256 grid) in {:.4}s = {:.0} plans/s; sim device: {:.0} block allocs+frees/s",
            p.grid_plans, p.grid_s, p.plans_per_s, p.sim_allocs_per_s
        );
    }
    let show = |s: &Option<Spread>| {
        s.as_ref().map_or("-".into(), |s| {
            format!(
                "min {:.3}  median {:.3}  max {:.3}  (n={})",
                s.min, s.median, s.max, s.n
            )
        })
    };
    if !r.fill_gb_per_s.is_empty() {
        println!("fill rate, GB/s (10%->90% of the size, from the cgroup's charge):");
        for (name, s) in &r.fill_gb_per_s {
            println!("  {name:<14} {}", show(s));
        }
        println!("  leak/loop 4k   {}", show(&r.fill_ratio_leak_over_loop_4k));
        println!(
            "  leak/loop huge {}",
            show(&r.fill_ratio_leak_over_loop_huge)
        );
        println!(
            "  leak/stress-ng {}",
            show(&r.fill_ratio_leak_over_stress_ng)
        );
    }
    if let Some(d) = &r.detect_latency_us {
        println!(
            "OOM detection latency after the kernel's kill, us ({} kills): p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}",
            d.kills, d.p50, d.p90, d.p99, d.max
        );
    }
    if let Some(s) = &r.sampler {
        println!(
            "sampler at {} Hz: {:.0} Hz achieved, {:.2}% of one core (a bare C 1 ms sleep loop here: {}); watcher {:.3}%; harness RSS peak {}",
            s.rate_hz_asked,
            s.rate_hz_achieved,
            s.cpu_percent_of_one_core,
            s.bare_sleep_loop_percent_of_one_core
                .map_or("-".into(), |b| format!("{b:.2}%")),
            s.watcher_cpu_percent_of_one_core,
            s.harness_rss_hwm_bytes.map_or("-".into(), fmt_human)
        );
    }
    if let Some(s) = &r.search {
        let show = |b: Option<u64>| b.map_or("-".into(), fmt_human);
        println!(
            "limit search, {} program: search {} trials {:.1}s -> {} (1% precision, 3 repeats); linear 64Mi sweep {} trials {:.1}s -> {}",
            fmt_human(s.program_bytes),
            s.search_trials,
            s.search_wall_s,
            show(s.search_min_safe_bytes),
            s.sweep_trials,
            s.sweep_wall_s,
            show(s.sweep_min_safe_bytes)
        );
    }
    for n in &r.notes {
        println!("note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_fill_rate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 0.5), 5.0);
        assert_eq!(percentile(&v, 0.99), 10.0);
        assert_eq!(percentile(&v, 0.9), 9.0);
        let samples: Vec<Sample> = (0..=100)
            .map(|i| Sample::new(i as f64 * 0.01, i * 10_000_000))
            .collect();
        // 1 GB charged in 1 s: 1 GB/s.
        let r = fill_rate(&samples, 1_000_000_000).unwrap();
        assert!((r - 1.0).abs() < 1e-9, "{r}");
        assert!(fill_rate(&samples[..5], 1_000_000_000).is_none());
    }
}
