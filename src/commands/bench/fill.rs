//! `oomsim bench fill`: the leak workload's fill rate with no rate cap,
//! against a plain C page-touch loop (and `stress-ng --vm 1 --vm-keep`
//! where installed), each measured the same way, from the cgroup's charge
//! (10% to 90% of the size) sampled at 10 kHz.
//!
//! On a VM whose host takes freed memory back (a balloon, free page
//! reporting), touching memory the host took costs far more than touching
//! memory the guest kept, and how much the host took changes from one
//! moment to the next. So: warm-up rounds first (not counted), then rounds
//! that run every contender once in a rotating order, ratios taken within a
//! round, and a round in which either side of a ratio ran under half its
//! best rate is left out of that ratio with a line saying so: the host was
//! handing memory back then.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{Spread, compile_c, run_plan, spread};
use crate::cli::Failure;
use crate::monitor::sampler::Sample;
use crate::plan::{Leak, Pages, Phase, Plan, Program};
use crate::signals;

/// A plain page-touch loop: the baseline for the fill rate.
pub const TOUCH_C: &str = r#"
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

/// Rounds run first and not counted.
const WARM_UP: u32 = 2;
/// A round whose C loop ran under this share of its best is left out.
const BALLOON_SHARE: f64 = 0.5;

#[derive(Debug, Default, Serialize)]
pub struct FillStats {
    pub gb_per_s: Vec<(String, Option<Spread>)>,
    pub leak_over_loop_4k: Option<Spread>,
    pub leak_over_loop_huge: Option<Spread>,
    pub leak_over_stress_ng: Option<Spread>,
    pub warm_up_rounds: u32,
    pub rounds: u32,
    /// Rounds left out, each with why.
    pub unusable: Vec<String>,
}

/// GB/s between the samples where the charge crossed 10% and 90% of `size`.
pub fn fill_rate(samples: &[Sample], size: u64) -> Option<f64> {
    let crossing = |share: f64| {
        samples
            .iter()
            .find(|s| s.bytes as f64 >= size as f64 * share)
            .map(|s| s.t_s)
    };
    let (t10, t90) = (crossing(0.1)?, crossing(0.9)?);
    (t90 > t10).then(|| 0.8 * size as f64 / (t90 - t10) / 1e9)
}

/// The rounds in which a contender ran under [`BALLOON_SHARE`] of its best.
fn balloon_rounds(reference: &[f64]) -> Vec<usize> {
    let best = reference.iter().copied().fold(0.0, f64::max);
    reference
        .iter()
        .enumerate()
        // A failed round (NaN) is unusable too.
        .filter(|(_, r)| r.is_nan() || **r < best * BALLOON_SHARE)
        .map(|(i, _)| i)
        .collect()
}

type Contender = (&'static str, Pages, Vec<Phase>);

fn contenders(size: u64, work: &Path, notes: &mut Vec<String>) -> Vec<Contender> {
    let leak = vec![Phase::Leak(Leak {
        baseline_bytes: 0,
        rate_bytes_per_s: None,
        cap_bytes: Some(size),
        duration_s: None,
    })];
    let mut out: Vec<Contender> = vec![
        ("leak-4k", Pages::Small, leak.clone()),
        ("leak-huge", Pages::Huge, leak),
    ];
    match compile_c(work, "touch", TOUCH_C) {
        Ok(bin) => {
            let argv = |huge: bool| {
                let mut a = vec![bin.display().to_string(), size.to_string()];
                if huge {
                    a.push("huge".into());
                }
                vec![Phase::Command(Program::new(a, vec![]))]
            };
            out.push(("loop-4k", Pages::Small, argv(false)));
            out.push(("loop-huge", Pages::Huge, argv(true)));
        }
        Err(e) => notes.push(format!("plain loop skipped: {e}")),
    }
    let stress_ng = std::process::Command::new("stress-ng")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if stress_ng {
        let size = size.to_string();
        let argv = [
            "stress-ng",
            "--vm",
            "1",
            "--vm-bytes",
            &size,
            "--vm-keep",
            "--timeout",
            "3s",
            "--quiet",
        ];
        out.push((
            "stress-ng-4k",
            Pages::Small,
            vec![Phase::Command(Program::new(
                argv.iter().map(|s| s.to_string()).collect(),
                vec![],
            ))],
        ));
    } else {
        notes.push("stress-ng skipped: not installed (apt-get install stress-ng)".into());
    }
    out
}

pub fn fill(
    size: u64,
    repeat: u32,
    work: &Path,
    notes: &mut Vec<String>,
) -> Result<FillStats, Failure> {
    let contenders = contenders(size, work, notes);
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let limit = size + (256 << 20);
    let total = WARM_UP + repeat;
    for round in 0..total {
        // Rotate the order each round: memory just freed is cold for whoever comes next.
        for k in 0..contenders.len() {
            let i = (k + round as usize) % contenders.len();
            let (name, pages, phases) = &contenders[i];
            if signals::caught().is_some() {
                return Ok(FillStats::default());
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
            let warm = if round < WARM_UP { " (warm-up)" } else { "" };
            eprintln!(
                "oomsim bench: fill round {}/{total}{warm} {name}: {rate:.2} GB/s",
                round + 1
            );
            if round >= WARM_UP {
                rates[i].push(rate);
            }
        }
    }
    let index = |n: &str| contenders.iter().position(|c| c.0 == n);
    let mut stats = FillStats {
        warm_up_rounds: WARM_UP,
        rounds: repeat,
        ..FillStats::default()
    };
    // A ratio is taken only from rounds where neither side ran under half
    // its best: the balloon slows whoever touches memory the host took.
    let mut ratio = |a: &str, b: &str| {
        let (ra, rb) = (&rates[index(a)?], &rates[index(b)?]);
        let mut dropped = balloon_rounds(ra);
        dropped.extend(balloon_rounds(rb));
        dropped.sort_unstable();
        dropped.dedup();
        for &k in &dropped {
            stats.unusable.push(format!(
                "{a}/{b} round {}: {a} {:.2} GB/s, {b} {:.2} GB/s, one under half its best: the host was handing memory back (balloon); round not used",
                k + 1,
                ra[k],
                rb[k]
            ));
        }
        let pairs: Vec<f64> = ra
            .iter()
            .zip(rb)
            .enumerate()
            .filter(|(k, _)| !dropped.contains(k))
            .map(|(_, (x, y))| x / y)
            .collect();
        spread(&pairs)
    };
    let over_4k = ratio("leak-4k", "loop-4k");
    let over_huge = ratio("leak-huge", "loop-huge");
    let over_stress = ratio("leak-4k", "stress-ng-4k");
    stats.leak_over_loop_4k = over_4k;
    stats.leak_over_loop_huge = over_huge;
    stats.leak_over_stress_ng = over_stress;
    stats.gb_per_s = contenders
        .iter()
        .zip(&rates)
        .map(|(c, r)| (c.0.to_string(), spread(r)))
        .collect();
    Ok(stats)
}

pub fn print(f: &FillStats, show: impl Fn(&Option<Spread>) -> String) {
    println!(
        "fill rate, GB/s (10%->90% of the size, from the cgroup's charge; {} warm-up rounds, {} counted):",
        f.warm_up_rounds, f.rounds
    );
    for (name, s) in &f.gb_per_s {
        println!("  {name:<14} {}", show(s));
    }
    println!("  leak/loop 4k   {}", show(&f.leak_over_loop_4k));
    println!("  leak/loop huge {}", show(&f.leak_over_loop_huge));
    println!("  leak/stress-ng {}", show(&f.leak_over_stress_ng));
    for u in &f.unusable {
        println!("  {u}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_rate_and_balloon_rounds() {
        let samples: Vec<Sample> = (0..=100)
            .map(|i| Sample::new(i as f64 * 0.01, i * 10_000_000))
            .collect();
        // 1 GB charged in 1 s: 1 GB/s.
        let r = fill_rate(&samples, 1_000_000_000).unwrap();
        assert!((r - 1.0).abs() < 1e-9, "{r}");
        assert!(fill_rate(&samples[..5], 1_000_000_000).is_none());
        // The host took memory back in round 2; a failed round counts too.
        assert_eq!(balloon_rounds(&[2.0, 0.4, 1.9, f64::NAN]), [1, 3]);
        assert!(balloon_rounds(&[2.0, 1.5, 1.9]).is_empty());
    }
}
