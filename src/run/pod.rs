//! One pod's life, as the kubelet drives it: init containers one after
//! another (each to success, retried with back-off unless the pod's policy
//! is Never), sidecars started in their place and kept running, then the
//! regular containers together; each container restarted as the pod's
//! restartPolicy says, with the kubelet's CrashLoopBackOff; once the
//! regular containers are done, the sidecars are stopped.
//!
//! Followed from Kubernetes master: pkg/kubelet/kuberuntime/
//! kuberuntime_container.go `computeInitContainerActions` (the next init
//! container starts once the previous one exited 0, or once a sidecar
//! started), kuberuntime_manager.go `doBackOff`, pkg/kubelet/container/
//! helpers.go `ShouldContainerBeRestarted`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use super::RunError;
use super::spawn::{ContainerIo, Ended, Halt, Instance, run_once};
use crate::cgroup::Cgroup;
use crate::k8s::ContainerKind;
use crate::monitor::PodStop;
use crate::monitor::clock::{monotonic_ns, seconds_between};
use crate::monitor::sampler::PodClock;
use crate::plan::{BACKOFF_INITIAL_S, BACKOFF_MAX_S, BACKOFF_RESET_S, PodPlan, Restart};

/// The kubelet's CrashLoopBackOff for one container (client-go
/// util/flowcontrol/backoff.go as the kubelet configures it): the first
/// restart is immediate; each later one waits, from the last exit, for the
/// back-off, which starts at 10 s and doubles up to 5 min; it starts over
/// when the container ran more than 10 min after its last restart.
#[derive(Debug)]
pub struct Backoff {
    scale: f64,
    /// The current back-off and when it was last moved on (monotonic ns).
    entry: Option<(f64, u64)>,
}

impl Backoff {
    pub fn new(scale: f64) -> Self {
        Backoff { scale, entry: None }
    }

    fn expired(&self, finished_ns: u64, last_ns: u64) -> bool {
        seconds_between(last_ns, finished_ns) > BACKOFF_RESET_S * self.scale
    }

    /// How long to wait after an exit at `finished_ns`, seen at `now_ns`
    /// (`IsInBackOffSince`).
    pub fn wait(&self, finished_ns: u64, now_ns: u64) -> Duration {
        match self.entry {
            Some((backoff_s, last)) if !self.expired(finished_ns, last) => {
                let until = finished_ns as f64 + backoff_s * 1e9;
                Duration::from_nanos((until - now_ns as f64).max(0.0) as u64)
            }
            _ => Duration::ZERO,
        }
    }

    /// Record a restart at `now_ns` (`Next`).
    pub fn restarted(&mut self, finished_ns: u64, now_ns: u64) {
        let backoff_s = match self.entry {
            Some((b, last)) if !self.expired(finished_ns, last) => {
                (b * 2.0).min(BACKOFF_MAX_S * self.scale)
            }
            _ => BACKOFF_INITIAL_S * self.scale,
        };
        self.entry = Some((backoff_s, now_ns));
    }
}

/// What became of one container over the pod's life.
#[derive(Default)]
pub struct ContainerEnd {
    /// Its runs, oldest first.
    pub instances: Vec<Instance>,
    /// In CrashLoopBackOff when the pod ended: a restart was due but
    /// waiting out its back-off, or `maxRestarts` was reached.
    pub backing_off: bool,
}

impl ContainerEnd {
    pub fn restart_count(&self) -> u32 {
        self.instances.len().saturating_sub(1) as u32
    }

    /// Exited 0 by itself, with no OOM kill (`isInitContainerFailed`'s opposite).
    fn succeeded(&self) -> bool {
        self.instances.last().is_some_and(|i| {
            i.ended == Ended::ByItself
                && i.oom_kills == 0
                && matches!(i.exit, Some(crate::verdict::Exit::Code(0)))
        })
    }
}

/// What a pod's run brings back.
pub struct PodEnd {
    /// Per container, in the plan's order; empty runs for containers that
    /// never started (after a failed init container).
    pub containers: Vec<ContainerEnd>,
    pub start_ns: u64,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
}

/// One container's cgroup, clock and io.
pub struct ContainerCtx<'a> {
    pub group: &'a Cgroup,
    pub clock: &'a PodClock,
    pub io: ContainerIo<'a>,
}

/// The deadline and stops one container's waits watch.
struct Watch<'a> {
    deadline: Instant,
    pod: &'a PodStop,
    /// The pod is ending: sidecars stop.
    ending: Option<&'a AtomicBool>,
}

impl Halt for Watch<'_> {
    fn deadline_passed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    fn stopping(&self) -> bool {
        self.pod.raised() || self.ending.is_some_and(|e| e.load(Ordering::Acquire))
    }
}

impl Watch<'_> {
    /// Sleep out a back-off; false if the pod ended meanwhile.
    fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.deadline_passed() || self.stopping() {
                return false;
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(10)));
        }
        true
    }
}

/// Ends the pod's sidecars and stops everything else if the pod's own
/// thread unwinds, so that the scope's threads do not run to the deadline.
struct Unwind<'a> {
    ending: &'a [AtomicBool],
    stop: &'a PodStop,
}

impl Drop for Unwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.stop.raise();
            for e in self.ending {
                e.store(true, Ordering::Release);
            }
        }
    }
}

/// Run a pod's containers as the kubelet would, until the regular ones are
/// done (or the pod's timeout, eviction or an interrupt), then stop the
/// sidecars, each after the ones started after it (the kubelet's
/// termination ordering, kuberuntime_termination_order.go).
pub fn run_pod(
    pod: &PodPlan,
    containers: &[ContainerCtx<'_>],
    pod_clock: &PodClock,
    stop: &PodStop,
    progress: bool,
) -> Result<PodEnd, RunError> {
    let started_at = SystemTime::now();
    let start_ns = pod_clock.start();
    let deadline = Instant::now() + pod.timeout();
    // One flag per container; raised for a sidecar when its turn to stop comes.
    let ending: Vec<AtomicBool> = containers.iter().map(|_| AtomicBool::new(false)).collect();
    let mut ends: Vec<Option<Result<ContainerEnd, RunError>>> =
        containers.iter().map(|_| None).collect();
    std::thread::scope(|s| {
        let _unwind = Unwind {
            ending: &ending,
            stop,
        };
        let run = |j: usize, started: Option<mpsc::Sender<()>>, sidecar: bool| {
            let watch = Watch {
                deadline,
                pod: stop,
                ending: sidecar.then_some(&ending[j]),
            };
            let end = run_container(pod, j, &containers[j], &watch, started, progress);
            if end.is_err() {
                // A harness failure ends the pod rather than leave it to its deadline.
                stop.raise();
            }
            end
        };
        let halted = || stop.raised() || Instant::now() >= deadline;
        let mut sidecars = Vec::new();
        let mut initialized = true;
        for (j, c) in pod.containers.iter().enumerate() {
            if c.kind != ContainerKind::Regular && halted() {
                initialized = false;
                break;
            }
            match c.kind {
                ContainerKind::Init => {
                    let end = run(j, None, false);
                    let ok = end.as_ref().is_ok_and(ContainerEnd::succeeded);
                    ends[j] = Some(end);
                    if !ok {
                        initialized = false;
                        break;
                    }
                }
                ContainerKind::Sidecar => {
                    // The next container starts once this one has started.
                    let (tx, rx) = mpsc::channel();
                    sidecars.push((j, s.spawn(move || run(j, Some(tx), true))));
                    let _ = rx.recv();
                }
                ContainerKind::Regular => {}
            }
        }
        let regular: Vec<_> = pod
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| initialized && !halted() && c.kind == ContainerKind::Regular)
            .map(|(j, _)| (j, s.spawn(move || run(j, None, false))))
            .collect();
        crate::fault::point(crate::fault::Point::PodStarted);
        for (j, h) in regular {
            ends[j] = Some(joined(h, &pod.containers[j].name));
        }
        // Regular containers done: the sidecars stop, the last started first.
        for (j, h) in sidecars.into_iter().rev() {
            ending[j].store(true, Ordering::Release);
            ends[j] = Some(joined(h, &pod.containers[j].name));
        }
    });
    pod_clock.end();
    let containers = ends
        .into_iter()
        .map(|e| e.unwrap_or(Ok(ContainerEnd::default())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PodEnd {
        containers,
        start_ns,
        started_at,
        finished_at: SystemTime::now(),
    })
}

fn joined(
    h: std::thread::ScopedJoinHandle<'_, Result<ContainerEnd, RunError>>,
    name: &str,
) -> Result<ContainerEnd, RunError> {
    h.join()
        .unwrap_or_else(|_| Err(RunError::Panicked(name.to_string())))
}

/// One container's runs: start, wait, and restart as the policy says.
fn run_container(
    pod: &PodPlan,
    j: usize,
    ctx: &ContainerCtx<'_>,
    watch: &Watch<'_>,
    mut started: Option<mpsc::Sender<()>>,
    progress: bool,
) -> Result<ContainerEnd, RunError> {
    let c = &pod.containers[j];
    let Restart {
        policy,
        backoff_scale,
        max_restarts,
    } = pod.restart;
    let mut backoff = Backoff::new(backoff_scale);
    let mut end = ContainerEnd::default();
    loop {
        if watch.deadline_passed() || watch.stopping() {
            break;
        }
        let mut on_start = || {
            if let Some(tx) = started.take() {
                let _ = tx.send(());
            }
        };
        let instance = run_once(c, ctx.group, ctx.clock, &ctx.io, watch, &mut on_start)?;
        if progress {
            eprintln!("oomsim:   {}", progress_line(pod, c, &instance));
        }
        let code = instance.exit.map(crate::verdict::Exit::k8s_code);
        let by_itself = instance.ended == Ended::ByItself;
        let finished_ns = instance.end_ns;
        end.instances.push(instance);
        let Some(code) = code.filter(|_| by_itself) else {
            break;
        };
        if watch.stopping() || watch.deadline_passed() {
            break;
        }
        // An OOMKilled init container failed whatever its exit code
        // (`isInitContainerFailed`); a regular one is judged by its exit code
        // alone (`ShouldContainerBeRestarted`).
        let oom = end.instances.last().is_some_and(|i| i.oom_kills > 0);
        let judged = if c.kind == ContainerKind::Init && oom && code == 0 {
            crate::k8s::OOM_KILLED_EXIT
        } else {
            code
        };
        if !policy.restarts(c.kind, judged) {
            break;
        }
        if max_restarts.is_some_and(|m| end.restart_count() >= m) {
            end.backing_off = true;
            break;
        }
        let wait = backoff.wait(finished_ns, monotonic_ns());
        if !wait.is_zero() && !watch.sleep(wait) {
            end.backing_off = true;
            break;
        }
        backoff.restarted(finished_ns, monotonic_ns());
    }
    ctx.clock.end();
    Ok(end)
}

fn progress_line(pod: &PodPlan, c: &crate::plan::ContainerPlan, i: &Instance) -> String {
    let who = if pod.containers.len() == 1 {
        format!("pod {}", pod.name)
    } else {
        format!("pod {} container {}", pod.name, c.name)
    };
    let what = match i.exit {
        Some(e) if i.oom_kills > 0 => {
            format!("ended (exit {}), oom_kill {}", e.k8s_code(), i.oom_kills)
        }
        Some(e) => format!("ended (exit {})", e.k8s_code()),
        None => "could not start".into(),
    };
    format!(
        "{who} {what} after {:.2}s",
        seconds_between(i.start_ns, i.end_ns)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// The kubelet's sequence: immediate, then 10 s, 20 s, 40 s ... 300 s;
    /// reset after 10 min of running.
    #[test]
    fn backoff_follows_the_kubelets_crash_loop() {
        let mut b = Backoff::new(1.0);
        let mut now = 1000 * S;
        let mut waits = Vec::new();
        for _ in 0..8 {
            // Each run lasts 1 s before it crashes.
            let finished = now + S;
            let w = b.wait(finished, finished);
            waits.push(w.as_secs());
            now = finished + w.as_nanos() as u64;
            b.restarted(finished, now);
        }
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 300, 300]);
        // A run of more than 600 s since the last restart starts over.
        let finished = now + 601 * S;
        assert_eq!(b.wait(finished, finished), Duration::ZERO);
        b.restarted(finished, finished);
        let again = finished + S;
        assert_eq!(b.wait(again, again).as_secs(), 10);
    }

    #[test]
    fn backoff_scales_and_counts_from_the_exit() {
        let mut b = Backoff::new(0.01);
        b.restarted(0, 0);
        // 100 ms back-off; 40 ms already passed since the exit.
        let w = b.wait(10 * 1_000_000, 50 * 1_000_000);
        assert_eq!(w.as_millis(), 60);
    }
}
