//! `oomsim bench sampler`: the CPU the usage sampler costs at 1 kHz, against
//! a C loop doing the same reads at the same rate (the charge every tick,
//! `memory.stat`'s anon and file lines every fifth, each sample kept),
//! measured in turn, round by round, as CPU time per sample.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use super::{ReferenceError, Spread, compile_c, io, run_plan, spread};
use crate::cgroup::{self, MEMORY_STAT};
use crate::cli::Failure;
use crate::monitor::sampler::STAT_EVERY;
use crate::plan::{Phase, Plan, Steady};
use crate::signals;

/// The sampler's work by hand: argv = usage file, stat file, anon key, file
/// key, rate (Hz), seconds, stat every Nth tick. Prints CPU seconds and
/// samples taken.
const SAMPLER_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
struct sample { double t; unsigned long long bytes, anon, file; };
static unsigned long long key(const char *text, const char *k) {
    size_t n = strlen(k);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : 0)
        if (!strncmp(l, k, n) && l[n] == ' ') return strtoull(l + n + 1, 0, 10);
    return 0;
}
int main(int argc, char **argv) {
    int usage = open(argv[1], O_RDONLY), stat = open(argv[2], O_RDONLY);
    if (usage < 0 || stat < 0) return 1;
    double rate = atof(argv[5]), secs = atof(argv[6]);
    int every = atoi(argv[7]);
    size_t cap = (size_t)(rate * secs) + 16, n = 0;
    struct sample *out = malloc(cap * sizeof *out);
    struct timespec period = {0, (long)(1e9 / rate)}, t0, t, cpu;
    char buf[8192];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned tick = 1;; tick++) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double now = (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
        if (now >= secs || n == cap) break;
        ssize_t got = pread(usage, buf, sizeof buf - 1, 0);
        if (got <= 0) return 1;
        buf[got] = 0;
        struct sample s = {now, strtoull(buf, 0, 10), 0, 0};
        if (tick % every == 0) {
            got = pread(stat, buf, sizeof buf - 1, 0);
            if (got <= 0) return 1;
            buf[got] = 0;
            s.anon = key(buf, argv[3]);
            s.file = key(buf, argv[4]);
        }
        out[n++] = s;
        nanosleep(&period, 0);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    printf("%f %zu\n", cpu.tv_sec + cpu.tv_nsec / 1e9, n);
    return 0;
}
"#;

const RATE_HZ: u32 = 1000;
const HOLD_S: f64 = 3.0;
const WARM_UP: usize = 1;
const ROUNDS: usize = 4;

#[derive(Debug, Serialize)]
pub struct SamplerStats {
    pub rate_hz_asked: u32,
    pub rate_hz_achieved: Option<Spread>,
    /// CPU per sample, µs: oomsim's sampler thread, and the C loop.
    pub sampler_us_per_sample: Option<Spread>,
    pub c_loop_us_per_sample: Option<Spread>,
    /// Round by round, oomsim's over the C loop's.
    pub ratio: Option<Spread>,
    pub watcher_cpu_percent_of_one_core: Option<Spread>,
    pub harness_rss_hwm_bytes: Option<u64>,
}

/// One run of the C loop over a cgroup of its own; (CPU s, samples).
fn c_loop(bin: &Path, work: &Path) -> Result<(f64, usize), Failure> {
    let backend = cgroup::detect().map_err(crate::run::RunError::from)?;
    let dir = backend
        .root()
        .join(format!("oomsim-bench-{}", std::process::id()));
    let failed = |e: ReferenceError| Failure::internal(format!("the C sampler: {e}"));
    std::fs::create_dir_all(&dir).map_err(|e| failed(io(&dir)(e)))?;
    let [anon, file, _] = backend.stat_keys();
    let out = Command::new(bin)
        .arg(dir.join(backend.usage_file()))
        .arg(dir.join(MEMORY_STAT))
        .args([anon, file])
        .args([
            RATE_HZ.to_string(),
            HOLD_S.to_string(),
            STAT_EVERY.to_string(),
        ])
        .current_dir(work)
        .output();
    let _ = std::fs::remove_dir(&dir);
    let out = out.map_err(|e| failed(io(bin)(e)))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut words = text.split_whitespace();
    match (
        words.next().and_then(|w| w.parse().ok()),
        words.next().and_then(|w| w.parse().ok()),
    ) {
        (Some(cpu), Some(n)) if out.status.success() => Ok((cpu, n)),
        _ => Err(failed(ReferenceError::Output(bin.to_path_buf(), text))),
    }
}

pub fn sampler(work: &Path, notes: &mut Vec<String>) -> Result<Option<SamplerStats>, Failure> {
    let bin = match compile_c(work, "sampler", SAMPLER_C) {
        Ok(b) => b,
        Err(e) => {
            notes.push(format!("sampler skipped: {e}"));
            return Ok(None);
        }
    };
    let steady = vec![Phase::Steady(Steady {
        size_bytes: 16 << 20,
        duration_s: HOLD_S,
    })];
    let mut plan = Plan::single_pod(
        "sampler",
        Some(1 << 30),
        None,
        Duration::from_secs(30),
        steady,
    );
    plan.sampling_hz = RATE_HZ;
    let (mut ours, mut theirs, mut achieved, mut watcher) = (vec![], vec![], vec![], vec![]);
    let mut rss = None;
    for round in 0..WARM_UP + ROUNDS {
        if signals::caught().is_some() {
            return Ok(None);
        }
        let report = run_plan(&plan, work)?;
        let h = &report.harness;
        let ran_s = report.pods[0].verdict.at_s.max(HOLD_S);
        let (cpu, n) = c_loop(&bin, work)?;
        eprintln!(
            "oomsim bench: sampler round {}/{}: oomsim {:.1} us/sample, C loop {:.1} us/sample",
            round + 1,
            WARM_UP + ROUNDS,
            h.sampler_cpu_s / h.samples_taken.max(1) as f64 * 1e6,
            cpu / n.max(1) as f64 * 1e6
        );
        if round < WARM_UP {
            continue;
        }
        ours.push(h.sampler_cpu_s / h.samples_taken.max(1) as f64 * 1e6);
        theirs.push(cpu / n.max(1) as f64 * 1e6);
        achieved.push(h.samples_taken as f64 / ran_s);
        watcher.push(h.watcher_cpu_s / ran_s * 100.0);
        rss = rss.max(h.rss_hwm_bytes);
    }
    let ratio: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a / b).collect();
    Ok(Some(SamplerStats {
        rate_hz_asked: RATE_HZ,
        rate_hz_achieved: spread(&achieved),
        sampler_us_per_sample: spread(&ours),
        c_loop_us_per_sample: spread(&theirs),
        ratio: spread(&ratio),
        watcher_cpu_percent_of_one_core: spread(&watcher),
        harness_rss_hwm_bytes: rss,
    }))
}

pub fn print(s: &SamplerStats, show: impl Fn(&Option<Spread>) -> String) {
    println!(
        "sampler at {} Hz (CPU per sample, us; the same reads in C at the same rate, in turn):",
        s.rate_hz_asked
    );
    println!("  oomsim         {}", show(&s.sampler_us_per_sample));
    println!("  C loop         {}", show(&s.c_loop_us_per_sample));
    println!("  oomsim/C       {}  (goal: 1.1 or less)", show(&s.ratio));
    println!("  achieved Hz    {}", show(&s.rate_hz_achieved));
    println!(
        "  watcher % core {}; harness RSS peak {}",
        show(&s.watcher_cpu_percent_of_one_core),
        s.harness_rss_hwm_bytes
            .map_or("-".into(), crate::units::fmt_human)
    );
}
