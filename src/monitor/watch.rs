//! The OOM watcher: one thread polling every pod's OOM notifier (v1 eventfd,
//! v2 inotify) and /dev/kmsg, re-reading each pod's `oom_kill` counter on
//! every wake. A rise of the counter is the truth; the kernel log adds who
//! died, when the kernel says it happened, and the kill line.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::time::TimeSpec;

use crate::cgroup::{Notifier, OpenFile};
use crate::monitor::clock::{monotonic_ns, thread_cpu_s};
use crate::monitor::kmsg::{Kill, KmsgReader};
use crate::monitor::sampler::PodClock;
use crate::monitor::{PodStop, StopSignal};

/// What the watcher needs of one pod.
#[derive(Debug)]
pub struct WatchedPod {
    pub notifier: Notifier,
    pub counter: OpenFile,
    pub counter_key: &'static str,
    /// The cgroup as the kernel log names it (`task_memcg=`).
    pub kernel_name: String,
    /// The pod's main pid, to match a kill line that came without its context
    /// (the kernel rate-limits the `oom-kill:` header, not the kill line).
    pub clock: Arc<PodClock>,
    /// Raised when the cgroup goes away under the run: the pod is stopped.
    pub stop: Arc<PodStop>,
}

/// Where the kernel's `task_memcg=` puts a kill against a unit's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    At,
    /// In a cgroup below it (an engine's `libpod-*`).
    Below,
    Elsewhere,
}

/// The kernel names a cgroup by its path from the hierarchy's root; oomsim
/// knows its own from where /sys/fs/cgroup is mounted, which inside a pod
/// (a cgroup namespace) is the pod's cgroup. So the kernel's path may carry
/// a prefix (`/kubepods/…/pod…/ctr`) before oomsim's (`/oomsim/…`): match
/// it as a whole trailing run of path components.
fn placed(memcg: &str, unit: &str) -> Placed {
    let at = memcg.len().checked_sub(unit.len());
    // A unit's name starts at a `/`, so any match of it starts a component.
    let whole = |i: usize| unit.starts_with('/') || i == 0 || memcg.as_bytes()[i - 1] == b'/';
    if memcg.ends_with(unit) && at.is_some_and(whole) {
        return Placed::At;
    }
    let below = memcg
        .match_indices(unit)
        .any(|(i, _)| whole(i) && memcg[i + unit.len()..].starts_with('/'));
    if below {
        Placed::Below
    } else {
        Placed::Elsewhere
    }
}

/// What the watcher reads of one pod on every wake.
struct Counted {
    counter: OpenFile,
    counter_key: &'static str,
    kernel_name: String,
    clock: Arc<PodClock>,
    stop: Arc<PodStop>,
    /// Its counter could not be read while the run went on: read no more.
    lost: bool,
}

/// A rise of a pod's oom_kill counter, as seen by the watcher.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CounterRise {
    pub seen_ns: u64,
    pub count: u64,
}

/// Everything the watcher saw, per pod (same order as given).
#[derive(Debug, Default)]
pub struct Observed {
    pub rises: Vec<Vec<CounterRise>>,
    pub kills: Vec<Vec<Kill>>,
    /// Kills in a cgroup below a unit's (an engine's `libpod-*`): the v1
    /// counter counts them only in that cgroup, which goes with the container.
    pub nested_kills: Vec<Vec<Kill>>,
    /// Offset from the kernel log's clock to CLOCK_MONOTONIC, when calibrated.
    pub kmsg_offset_ns: Option<i64>,
    /// Units whose counter stopped being readable mid-run (their cgroup was
    /// removed by someone else), with why: their pods were stopped.
    pub lost: Vec<(usize, String)>,
    pub errors: Vec<String>,
    /// CPU seconds the watcher thread used.
    pub cpu_s: f64,
}

pub struct Watcher {
    stop: StopSignal,
    handle: JoinHandle<Observed>,
}

/// While the notifier says OOM but the counter has not moved, poll this often:
/// the v1 eventfd fires before the kill, and the kernel log's wake-up of
/// readers is deferred, so the counter itself is watched closely for a moment.
const ARMED_POLL: Duration = Duration::from_micros(50);
/// How long to keep watching closely after a notification.
const ARMED_FOR_NS: u64 = 200_000_000;
/// Otherwise re-read at least this often, in case a wake was missed.
const IDLE_POLL: Duration = Duration::from_millis(100);

impl Watcher {
    pub fn start(pods: Vec<WatchedPod>, kmsg: Option<KmsgReader>) -> std::io::Result<Watcher> {
        let stop = StopSignal::new()?;
        let stop_fd = stop.try_clone()?;
        let handle = std::thread::Builder::new()
            .name("oom-watch".into())
            .spawn(move || watch(pods, kmsg, stop_fd))?;
        Ok(Watcher { stop, handle })
    }

    /// Stop the thread after one last read, and return what it saw.
    pub fn finish(self) -> Observed {
        self.stop.raise();
        self.handle.join().unwrap_or_else(|_| Observed {
            errors: vec!["the OOM watcher thread panicked".into()],
            ..Observed::default()
        })
    }
}

fn watch(pods: Vec<WatchedPod>, mut kmsg: Option<KmsgReader>, stop: StopSignal) -> Observed {
    // The notifiers are polled while the counters are read: hold them apart,
    // so the poll set is built once, outside the loop.
    let (notifiers, mut pods): (Vec<Notifier>, Vec<Counted>) = pods
        .into_iter()
        .map(|p| {
            let counted = Counted {
                counter: p.counter,
                counter_key: p.counter_key,
                kernel_name: p.kernel_name,
                clock: p.clock,
                stop: p.stop,
                lost: false,
            };
            (p.notifier, counted)
        })
        .unzip();
    // A duplicate of the kernel log's fd to poll, while the reader is read.
    let kmsg_fd: Option<OwnedFd> = kmsg
        .as_ref()
        .and_then(|k| k.as_fd().try_clone_to_owned().ok());
    let mut seen = Observed {
        rises: vec![Vec::new(); pods.len()],
        kills: vec![Vec::new(); pods.len()],
        nested_kills: vec![Vec::new(); pods.len()],
        kmsg_offset_ns: kmsg.as_ref().and_then(|k| k.offset_ns),
        lost: Vec::new(),
        errors: Vec::new(),
        cpu_s: 0.0,
    };
    let mut last: Vec<u64> = pods
        .iter_mut()
        .map(|p| {
            p.counter.read_key(p.counter_key).unwrap_or_else(|e| {
                seen.errors.push(e.to_string());
                0
            })
        })
        .collect();
    let mut fds = vec![PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
    fds.extend(
        notifiers
            .iter()
            .map(|n| PollFd::new(n.fd.as_fd(), PollFlags::POLLIN)),
    );
    // Last, so it can be dropped from the set if the log fails.
    fds.extend(
        kmsg_fd
            .as_ref()
            .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)),
    );
    let mut armed_until: Option<u64> = None;
    loop {
        let timeout = if armed_until.is_some() {
            ARMED_POLL
        } else {
            IDLE_POLL
        };
        let n = ppoll(&mut fds, Some(TimeSpec::from_duration(timeout)), None).unwrap_or(0);
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        let stopping = n > 0 && ready(&fds[0]);
        let mut notified = false;
        for (i, n) in notifiers.iter().enumerate() {
            if ready(&fds[1 + i]) {
                n.drain();
                notified = true;
            }
        }
        let mut rose = false;
        for (i, p) in pods.iter_mut().enumerate().filter(|(_, p)| !p.lost) {
            match p.counter.read_key(p.counter_key) {
                Ok(count) if count > last[i] => {
                    seen.rises[i].push(CounterRise {
                        seen_ns: monotonic_ns(),
                        count,
                    });
                    last[i] = count;
                    rose = true;
                }
                Ok(_) => {}
                // Removed under the run (the run itself removes it only
                // after the watcher stopped): nothing more can be measured.
                Err(e) if !stopping => {
                    p.lost = true;
                    p.stop.raise();
                    seen.lost.push((i, e.to_string()));
                }
                Err(_) => {}
            }
        }
        if let Some(k) = kmsg.as_mut() {
            match k.kills() {
                Ok(kills) => {
                    for kill in kills {
                        let nested = |p: &Counted| {
                            kill.task_memcg
                                .as_deref()
                                .map(|m| placed(m, &p.kernel_name))
                                == Some(Placed::Below)
                        };
                        if let Some(i) =
                            pods.iter().position(|p| match kill.task_memcg.as_deref() {
                                Some(memcg) => placed(memcg, &p.kernel_name) == Placed::At,
                                None => p.clock.pid() == Some(kill.pid),
                            })
                        {
                            seen.kills[i].push(kill);
                        } else if let Some(i) = pods.iter().position(nested) {
                            seen.nested_kills[i].push(kill.clone());
                            seen.kills[i].push(kill);
                        }
                    }
                }
                Err(e) => {
                    seen.errors.push(format!("/dev/kmsg: {e}"));
                    kmsg = None;
                    fds.truncate(1 + notifiers.len());
                }
            }
        }
        let now = monotonic_ns();
        armed_until = if rose {
            None
        } else if notified {
            Some(now + ARMED_FOR_NS)
        } else {
            armed_until.filter(|t| *t > now)
        };
        if stopping {
            seen.cpu_s = thread_cpu_s();
            return seen;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_are_placed_by_whole_path_components() {
        let unit = "/oomsim/12-ab/app/app";
        assert_eq!(placed("/oomsim/12-ab/app/app", unit), Placed::At);
        // Inside a pod: the kernel's path starts above oomsim's root.
        assert_eq!(
            placed(
                "/kubepods.slice/kubepods-pod1.slice/cri-containerd-9.scope/oomsim/12-ab/app/app",
                unit
            ),
            Placed::At
        );
        assert_eq!(
            placed("/oomsim/12-ab/app/app/libpod-3f", unit),
            Placed::Below
        );
        assert_eq!(
            placed("/kubepods/x/oomsim/12-ab/app/app/libpod-3f", unit),
            Placed::Below
        );
        // Not a whole component: another pod whose name ends the same.
        assert_eq!(
            placed("/oomsim/12-ab/app/myapp", "/oomsim/12-ab/app/app"),
            Placed::Elsewhere
        );
        assert_eq!(placed("/x/oomsim/12-ab/app/app2", unit), Placed::Elsewhere);
        assert_eq!(placed("/", unit), Placed::Elsewhere);
    }
}
