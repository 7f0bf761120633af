//! The allocation patterns, run inside a pod's child process (the hidden
//! `oomsim __workload` subcommand, already inside its cgroup).
//!
//! Every byte a workload says it holds is written, one byte per 4 KiB page,
//! so the kernel charges it to the cgroup. Memory is measured by the harness
//! from the kernel's counters; what only the workload knows (a CUDA
//! out-of-memory error, when a copy began) goes back as [`events`].

pub mod events;
mod kv;
mod load;
mod region;

use std::process::Command;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, raise, sigaction};
use std::time::{Duration, Instant};

pub use region::Region;

use crate::plan::{Burst, Leak, Pages, Phase, Program, Steady, WorkloadSpec};

/// The hidden subcommand a pod's child runs (this binary, re-executed).
pub const SUBCOMMAND: &str = "__workload";

/// How often a rate-limited leak tops up its allocation.
const LEAK_TICK: Duration = Duration::from_millis(5);

/// The child's side of `oomsim __workload SPEC`: the exit code it ends with.
pub fn child(spec: &str) -> u8 {
    // A panic here is oomsim's bug: the harness must not take it for the
    // pod's own exit, so it is told before the process unwinds.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let mut message = crate::cli::panic::message(info.payload());
        if let Some(l) = info.location() {
            message.push_str(&format!(" at {}:{}", l.file(), l.line()));
        }
        events::Events::from_env().emit(events::Event::Panicked { message });
        hook(info);
    }));
    crate::fault::point(crate::fault::Point::Workload);
    match serde_json::from_str::<WorkloadSpec>(spec) {
        Ok(spec) => run(&spec).clamp(0, 255) as u8,
        Err(e) => {
            eprintln!("oomsim workload: bad spec: {e}");
            2
        }
    }
}

/// Run every phase in order; returns the process exit code.
pub fn run(spec: &WorkloadSpec) -> i32 {
    let events = events::Events::from_env();
    let mut device: Option<Box<dyn crate::gpu::Device>> = None;
    for phase in &spec.phases {
        let result = match phase {
            Phase::Leak(l) => leak(spec.pages, l),
            Phase::Burst(b) => burst(spec.pages, b),
            Phase::Steady(st) => steady(spec.pages, st),
            Phase::Command(p) => command(p),
            Phase::ModelLoad(m) => match open_device(&mut device) {
                Ok(dev) => load::model_load(spec.pages, m, dev, &events),
                Err(e) => Err(e),
            },
            Phase::KvCache(k) => match open_device(&mut device) {
                Ok(dev) => kv::kv_cache(k, dev, &events),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(0) => {}
            Ok(code) => return code,
            Err(e) => {
                eprintln!("oomsim workload: {e}");
                return 1;
            }
        }
    }
    0
}

/// The run's GPU, opened on first use and kept across phases.
fn open_device(
    slot: &mut Option<Box<dyn crate::gpu::Device>>,
) -> std::io::Result<&dyn crate::gpu::Device> {
    if slot.is_none() {
        let dev = crate::gpu::open_from_env()
            .map_err(|e| std::io::Error::other(format!("cannot open the GPU: {e}")))?
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "no GPU was prepared for this pod ({} is not set)",
                    crate::gpu::ENV_LEDGER
                ))
            })?;
        *slot = Some(dev);
    }
    Ok(slot.as_deref().expect("set above"))
}

/// The largest a leak without a cap may reserve: the host's RAM.
fn host_ram() -> u64 {
    use nix::unistd::{SysconfVar, sysconf};
    let get = |v| sysconf(v).ok().flatten().unwrap_or(0).max(0) as u64;
    get(SysconfVar::_PHYS_PAGES).saturating_mul(get(SysconfVar::PAGE_SIZE))
}

fn leak(pages: Pages, l: &Leak) -> std::io::Result<i32> {
    let (baseline, rate, duration_s) = (l.baseline_bytes, l.rate_bytes_per_s, l.duration_s);
    let cap = l.cap_bytes.unwrap_or_else(host_ram).max(baseline);
    let mut region = Region::reserve(cap, pages)?;
    region.touch_to(baseline);
    let start = Instant::now();
    let deadline = duration_s.map(|d| start + Duration::from_secs_f64(d));
    match rate {
        None => region.touch_to(cap),
        Some(rate) => {
            while region.touched() < cap && deadline.is_none_or(|d| Instant::now() < d) {
                let grown = (rate as f64 * start.elapsed().as_secs_f64()) as u64;
                region.touch_to(baseline.saturating_add(grown).min(cap));
                std::thread::sleep(LEAK_TICK);
            }
        }
    }
    if let Some(d) = deadline {
        sleep_until(d);
    }
    Ok(0)
}

fn burst(pages: Pages, b: &Burst) -> std::io::Result<i32> {
    let (baseline, spike, count) = (b.baseline_bytes, b.spike_bytes, b.count);
    let (period_s, hold_s, duration_s) = (b.period_s, b.hold_s, b.duration_s);
    let mut base = Region::reserve(baseline, pages)?;
    base.touch_to(baseline);
    let mut spike_region = Region::reserve(spike, pages)?;
    let start = Instant::now();
    let end = duration_s.map(|d| start + Duration::from_secs_f64(d));
    let period = Duration::from_secs_f64(period_s);
    let hold = Duration::from_secs_f64(hold_s);
    let mut n = 0u32;
    loop {
        if count.is_some_and(|c| n >= c) {
            break;
        }
        // Each period: steady first, then the spike for its hold time.
        let spike_at = start + period * n + (period - hold);
        if end.is_some_and(|e| spike_at >= e) {
            break;
        }
        sleep_until(spike_at);
        spike_region.touch_to(spike);
        sleep_until(spike_at + hold);
        spike_region.release();
        n += 1;
    }
    if let Some(e) = end {
        sleep_until(e);
    }
    Ok(0)
}

fn steady(pages: Pages, st: &Steady) -> std::io::Result<i32> {
    let mut region = Region::reserve(st.size_bytes, pages)?;
    region.touch_to(st.size_bytes);
    std::thread::sleep(Duration::from_secs_f64(st.duration_s));
    Ok(0)
}

/// Run a program as a phase; a signal that killed it kills us the same way,
/// so the harness sees what a container runtime would.
fn command(p: &Program) -> std::io::Result<i32> {
    let (argv, env) = (&p.argv, &p.env);
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start {:?}: {e}", argv[0])))?;
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal().and_then(|s| Signal::try_from(s).ok()) {
        // Restore the default action and re-raise the child's signal.
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_DFL runs no handler code of ours.
        let _ = unsafe { sigaction(sig, &default) };
        let _ = raise(sig);
    }
    Ok(status.code().unwrap_or(1))
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}
