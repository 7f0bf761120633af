//! `oomsim bench load`: a model load of a weights file onto the sim device
//! by each strategy, from `load_start` to `device_copy_done` (the file's
//! pages dropped from the cache first, as every load does), against a cold
//! read of the same file by `dd bs=256M` (the loader's read size; cache
//! dropped first), in turn, round by round, after a warm-up round. Beside
//! them, where a read-then-copy load's time goes: `dd iflag=direct`
//! (O_DIRECT), the first touch of as many fresh 4 KiB pages by a C loop,
//! and the same load with its host buffer on huge pages.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Spread, compile_c, run_plan, spread};
use crate::cli::Failure;
use crate::gpu::{BackendChoice, GpuSpec};
use crate::plan::{
    DEFAULT_LOAD_CHUNK, LoadStrategy, ModelLoad, Pages, Phase, Plan, Program, default_model_file,
};
use crate::signals;
use crate::workload::events::Event;

const WARM_UP: usize = 1;
const ROUNDS: usize = 3;
const STRATEGIES: [LoadStrategy; 3] = [
    LoadStrategy::ReadThenCopy,
    LoadStrategy::Chunked,
    LoadStrategy::Mmap,
];

#[derive(Debug, Serialize)]
pub struct LoadStats {
    pub model_bytes: u64,
    pub cold_read_s: Option<Spread>,
    pub direct_read_s: Option<Spread>,
    /// A C loop touching as many fresh 4 KiB pages, in a cgroup.
    pub first_touch_s: Option<Spread>,
    /// read-then-copy with its host buffer on huge pages, over the cold read.
    pub read_then_copy_huge_s: Option<Spread>,
    pub read_then_copy_huge_ratio: Option<Spread>,
    /// Per strategy: its load time, and its ratio to the cold read of the same round.
    pub strategies: Vec<(String, Option<Spread>, Option<Spread>)>,
}

/// Drop the file's pages, then read it with dd; the wall seconds.
pub fn dd(file: &Path, direct: bool) -> Result<f64, Failure> {
    let f = std::fs::File::open(file)
        .map_err(|e| Failure::internal(format!("{}: {e}", file.display())))?;
    crate::llm::weights::drop_cached(&f, 0, 0)
        .map_err(|e| Failure::internal(format!("{}: {e}", file.display())))?;
    let mut cmd = Command::new("dd");
    cmd.arg(format!("if={}", file.display()))
        .args(["of=/dev/null", "bs=256M"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if direct {
        cmd.arg("iflag=direct");
    }
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| Failure::internal(format!("dd: {e}")))?;
    if !status.success() {
        return Err(Failure::internal(format!(
            "dd {}: {status}",
            file.display()
        )));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// A C loop's first touch of `size` fresh bytes, in a cgroup; its seconds.
fn first_touch(bin: &Path, size: u64, work: &Path) -> Result<f64, Failure> {
    let plan = Plan::single_pod(
        "first-touch",
        Some(size + (256 << 20)),
        None,
        Duration::from_secs(600),
        vec![Phase::Command(Program::new(
            vec![bin.display().to_string(), size.to_string()],
            vec![],
        ))],
    );
    Ok(run_plan(&plan, work)?.pods[0].verdict.at_s)
}

fn load_plan(file: &Path, size: u64, strategy: LoadStrategy) -> Plan {
    let mut plan = Plan::single_pod(
        &format!("load-{}", strategy.as_str()),
        Some(size * 2 + (512 << 20)),
        None,
        Duration::from_secs(600),
        vec![Phase::ModelLoad(ModelLoad {
            size_bytes: size,
            strategy,
            keep_host: false,
            chunk_bytes: DEFAULT_LOAD_CHUNK,
            pinned: false,
            file: Some(file.to_path_buf()),
            overhead_bytes: 0,
            hold_s: 0.0,
        })],
    );
    plan.gpu = Some(GpuSpec {
        backend: BackendChoice::Sim,
        device: 0,
        memory_bytes: size + (1 << 30),
    });
    plan
}

/// The load's seconds, from the workload's own events.
fn load_s(plan: &Plan, work: &Path) -> Result<f64, Failure> {
    let report = run_plan(plan, work)?;
    let at = |want: fn(&Event) -> bool| {
        report.pods[0]
            .events
            .iter()
            .find(|e| want(&e.event))
            .map(|e| e.t_s)
    };
    match (
        at(|e| matches!(e, Event::LoadStart { .. })),
        at(|e| matches!(e, Event::DeviceCopyDone)),
    ) {
        (Some(a), Some(b)) => Ok(b - a),
        _ => Err(Failure::internal(format!(
            "bench load: {} did not finish its load: {}",
            plan.name, report.pods[0].verdict.message
        ))),
    }
}

pub fn load(work: &Path, size: u64) -> Result<Option<LoadStats>, Failure> {
    let file: PathBuf = default_model_file(size);
    crate::llm::weights::ensure(&file, size, true).map_err(|e| Failure::internal(e.to_string()))?;
    let touch = compile_c(work, "touch", super::fill::TOUCH_C)
        .map_err(|e| Failure::internal(format!("bench load: {e}")))?;
    let (mut cold, mut direct, mut touched) = (Vec::new(), Vec::new(), Vec::new());
    let (mut huge, mut huge_ratio) = (Vec::new(), Vec::new());
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); STRATEGIES.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); STRATEGIES.len()];
    for round in 0..WARM_UP + ROUNDS {
        if signals::caught().is_some() {
            return Ok(None);
        }
        let c = dd(&file, false)?;
        let d = dd(&file, true)?;
        let f = first_touch(&touch, size, work)?;
        let mut rtc_huge = load_plan(&file, size, LoadStrategy::ReadThenCopy);
        rtc_huge.pods[0].main_mut().workload.pages = Pages::Huge;
        let h = load_s(&rtc_huge, work)?;
        let mut line = format!(
            "cold read {c:.2}s, direct {d:.2}s, first touch {f:.2}s, read-then-copy huge {h:.2}s"
        );
        let mut these = Vec::new();
        for s in STRATEGIES {
            let t = load_s(&load_plan(&file, size, s), work)?;
            line += &format!(", {} {t:.2}s", s.as_str());
            these.push(t);
        }
        eprintln!(
            "oomsim bench: load round {}/{}{}: {line}",
            round + 1,
            WARM_UP + ROUNDS,
            if round < WARM_UP { " (warm-up)" } else { "" }
        );
        if round < WARM_UP {
            continue;
        }
        cold.push(c);
        direct.push(d);
        touched.push(f);
        huge.push(h);
        huge_ratio.push(h / c);
        for (i, t) in these.into_iter().enumerate() {
            times[i].push(t);
            ratios[i].push(t / c);
        }
    }
    Ok(Some(LoadStats {
        model_bytes: size,
        cold_read_s: spread(&cold),
        direct_read_s: spread(&direct),
        first_touch_s: spread(&touched),
        read_then_copy_huge_s: spread(&huge),
        read_then_copy_huge_ratio: spread(&huge_ratio),
        strategies: STRATEGIES
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.as_str().to_string(),
                    spread(&times[i]),
                    spread(&ratios[i]),
                )
            })
            .collect(),
    }))
}

pub fn print(s: &LoadStats, show: impl Fn(&Option<Spread>) -> String) {
    println!(
        "model load of {} onto the sim device, s (the same file read cold by dd bs=256M, in turn):",
        crate::units::fmt_human(s.model_bytes)
    );
    println!("  dd cold        {}", show(&s.cold_read_s));
    for (name, t, r) in &s.strategies {
        println!("  {name:<14} {}", show(t));
        println!("    /cold read   {}  (goal: 1.5 or less)", show(r));
    }
    println!("  where read-then-copy's time goes:");
    println!("    dd O_DIRECT  {}", show(&s.direct_read_s));
    println!(
        "    first touch of as many fresh 4k pages (C) {}",
        show(&s.first_touch_s)
    );
    println!(
        "    read-then-copy, host buffer on huge pages {}",
        show(&s.read_then_copy_huge_s)
    );
    println!("      /cold read {}", show(&s.read_then_copy_huge_ratio));
}
