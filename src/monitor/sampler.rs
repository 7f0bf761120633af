//! The usage sampler: one thread reading each running pod's charged bytes
//! through a kept-open file (pread costs well under a microsecond; the wake is
//! the cost), four times as often when a pod nears its limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::cgroup::{OpenFile, StatFile};
use crate::gpu::Ledger;
use crate::monitor::clock::{monotonic_ns, seconds_between, thread_cpu_s};

/// One reading: seconds since the pod started, bytes charged to its cgroup,
/// and where the run has them, the pod's device bytes and its anonymous and
/// page-cache split (memory.stat, read every [`STAT_EVERY`]th sample).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Sample {
    pub t_s: f64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anon_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_bytes: Option<u64>,
}

impl Sample {
    pub fn new(t_s: f64, bytes: u64) -> Sample {
        Sample {
            t_s,
            bytes,
            device_bytes: None,
            anon_bytes: None,
            file_bytes: None,
        }
    }
}

/// memory.stat costs ~10x a usage read: read it every this many samples.
pub const STAT_EVERY: u32 = 5;

/// When a pod's process started and whether it has ended; shared with its waiter.
#[derive(Debug, Default)]
pub struct PodClock {
    start_ns: AtomicU64,
    ended: AtomicBool,
    pid: AtomicI32,
}

impl PodClock {
    pub fn start(&self) -> u64 {
        let now = monotonic_ns();
        self.start_ns.store(now, Ordering::Release);
        now
    }

    pub fn set_pid(&self, pid: i32) {
        self.pid.store(pid, Ordering::Release);
    }

    pub fn pid(&self) -> Option<i32> {
        Some(self.pid.load(Ordering::Acquire)).filter(|p| *p != 0)
    }

    pub fn end(&self) {
        self.ended.store(true, Ordering::Release);
    }

    /// Started and not yet ended.
    pub fn is_running(&self) -> bool {
        self.running_since().is_some()
    }

    fn running_since(&self) -> Option<u64> {
        let start = self.start_ns.load(Ordering::Acquire);
        (start != 0 && !self.ended.load(Ordering::Acquire)).then_some(start)
    }
}

/// What the sampler reads for one pod.
#[derive(Debug)]
pub struct SampledPod {
    pub usage: OpenFile,
    pub limit_bytes: Option<u64>,
    pub clock: Arc<PodClock>,
    /// The run's device ledger and this pod's index in it.
    pub device: Option<(Arc<Ledger>, u32)>,
    /// The cgroups holding the pod's processes (its containers'), for
    /// memory.stat (empty: not read).
    pub stat: Vec<StatFile>,
}

/// Usage at or above this share of the limit samples four times as often.
const NEAR_LIMIT: f64 = 0.85;

pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Sampled>,
}

/// The samples per pod (same order as given) and the CPU the thread used.
#[derive(Debug, Default)]
pub struct Sampled {
    pub samples: Vec<Vec<Sample>>,
    pub cpu_s: f64,
    /// What went wrong with the sampler itself (its thread panicked).
    pub errors: Vec<String>,
}

impl Sampler {
    pub fn start(pods: Vec<SampledPod>, rate_hz: u32) -> std::io::Result<Sampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || sample(pods, rate_hz, &flag))?;
        Ok(Sampler { stop, handle })
    }

    pub fn finish(self) -> Sampled {
        self.stop.store(true, Ordering::Release);
        // Wake it from its sleep: the run does not wait out a period.
        self.handle.thread().unpark();
        self.handle.join().unwrap_or_else(|_| Sampled {
            errors: vec!["the usage sampler thread panicked: the pods' samples are missing".into()],
            ..Sampled::default()
        })
    }
}

fn sample(mut pods: Vec<SampledPod>, rate_hz: u32, stop: &AtomicBool) -> Sampled {
    let period = Duration::from_secs_f64(1.0 / f64::from(rate_hz.max(1)));
    let mut out: Vec<Vec<Sample>> = vec![Vec::new(); pods.len()];
    let mut tick = 0u32;
    while !stop.load(Ordering::Acquire) {
        let mut near = false;
        tick = tick.wrapping_add(1);
        for (i, pod) in pods.iter_mut().enumerate() {
            let Some(start) = pod.clock.running_since() else {
                continue;
            };
            // A read fails only once the cgroup is gone at the end of the run.
            if let Ok(bytes) = pod.usage.read_number() {
                let mut s = Sample::new(seconds_between(start, monotonic_ns()), bytes);
                s.device_bytes = pod.device.as_ref().map(|(l, p)| l.used_by_pod(*p));
                if tick.is_multiple_of(STAT_EVERY)
                    && !pod.stat.is_empty()
                    && let Ok(st) = StatFile::sum(&mut pod.stat)
                {
                    s.anon_bytes = Some(st.anon_bytes);
                    s.file_bytes = Some(st.file_bytes);
                }
                out[i].push(s);
                near |= pod
                    .limit_bytes
                    .is_some_and(|l| bytes as f64 >= l as f64 * NEAR_LIMIT);
            }
        }
        // A parked sleep (futex): on this class of VM a periodic timerfd cost
        // more per wake, and `finish` can cut it short. A spurious wake only
        // samples early.
        std::thread::park_timeout(if near { period / 4 } else { period });
    }
    Sampled {
        samples: out,
        cpu_s: thread_cpu_s(),
        errors: Vec::new(),
    }
}
