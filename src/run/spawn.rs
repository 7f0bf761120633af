//! One run of a container's process: started inside the container's cgroup
//! (it enters before it allocates a byte), given the kubelet's
//! oom_score_adj, waited for until it exits, the pod's deadline passes or
//! the pod stops it; then what is left in the container is killed, as a
//! runtime does when a container's main process ends, and the cgroup's
//! counters are read.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, getpid, getppid, write};

use super::RunError;
use crate::cgroup::Cgroup;
use crate::gpu;
use crate::monitor::clock::{monotonic_ns, seconds_between};
use crate::monitor::sampler::PodClock;
use crate::plan::{ContainerPlan, Phase};
use crate::runtime::Runtime;
use crate::runtime::stats::{self, PartSample, RuntimeMemory};
use crate::signals;
use crate::verdict::Exit;
use crate::workload::events::{self, Event, TimedEvent};

/// Why the harness ended a process that had not exited by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited (or was killed) by itself.
    ByItself,
    /// The pod's timeout passed: SIGKILL.
    Timeout,
    /// The pod was ending (its regular containers were done): SIGTERM, then
    /// SIGKILL after the grace period, as the kubelet stops a sidecar.
    Stopped,
}

/// One run of a container's process: a termination once it has ended.
pub struct Instance {
    pub pid: Option<i32>,
    pub exit: Option<Exit>,
    pub start_error: Option<String>,
    pub ended: Ended,
    pub start_ns: u64,
    pub end_ns: u64,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
    /// OOM kills in the container's cgroup during this run.
    pub oom_kills: u64,
    pub events: Vec<TimedEvent>,
    /// A CUDA out-of-memory line found in the log when no event said so.
    pub logged_cuda_oom: Option<String>,
    /// A runtime's own out-of-memory the program printed.
    pub runtime_oom: Option<crate::runtime::oom::RuntimeOom>,
    /// Where the runtime's memory went, as it reported it.
    pub runtime_memory: Option<RuntimeMemory>,
    /// What the kernel holds for the process (the policy's value, or 0
    /// for a negative one without CAP_SYS_RESOURCE).
    pub oom_score_adj_applied: Option<i32>,
}

/// Where one container's process writes and what it is told.
pub struct ContainerIo<'a> {
    pub log: PathBuf,
    /// Where a runtime's agent writes its memory statistics.
    pub stats: PathBuf,
    pub events: PathBuf,
    pub env: Vec<(String, String)>,
    pub oom_score_adj: i32,
    /// The run's device ledger and the pod's index, freed when the process
    /// dies if the pod has only this container.
    pub ledger: Option<(&'a gpu::Ledger, u32)>,
}

/// What the harness asks of a running process, polled while it runs.
pub trait Halt {
    /// The pod's timeout has passed.
    fn deadline_passed(&self) -> bool;
    /// The pod is ending: stop the process gracefully.
    fn stopping(&self) -> bool;
}

/// The kubelet's minimum grace before SIGKILL, for a sidecar that ignores SIGTERM.
const GRACE: Duration = Duration::from_secs(2);
/// How often a waiting harness looks at the pod's deadline and stop.
const POLL: Duration = Duration::from_millis(10);
/// How often a Python container's mappings are read.
const SMAPS_EVERY: Duration = Duration::from_millis(250);

/// The command a pod's child runs: the program itself for a lone command,
/// else this binary's hidden workload subcommand.
fn container_command(c: &ContainerPlan, group: &Cgroup, adj: i32) -> Result<Command, RunError> {
    if let (Some(image), [Phase::Command(p)]) = (&c.image, c.workload.phases.as_slice()) {
        return Ok(crate::runtime::image::command(
            image,
            p,
            &group.kernel_name(),
            adj,
        ));
    }
    if let [Phase::Command(p)] = c.workload.phases.as_slice() {
        let mut cmd = Command::new(&p.argv[0]);
        cmd.args(&p.argv[1..])
            .envs(p.env.iter().map(|(k, v)| (k, v)));
        return Ok(cmd);
    }
    let exe = std::env::current_exe().map_err(|source| RunError::Io {
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let spec = serde_json::to_string(&c.workload).map_err(RunError::Encode)?;
    let mut cmd = Command::new(exe);
    cmd.arg(crate::workload::SUBCOMMAND).arg(spec);
    Ok(cmd)
}

/// Set up the child between fork and exec: only async-signal-safe calls
/// (prctl, getppid, sigprocmask, open, write), no allocation.
fn enter_pod(
    parent: Pid,
    oom_score_adj: i32,
    adj: &[u8],
    procs: Option<BorrowedFd<'_>>,
    cpu_procs: Option<BorrowedFd<'_>>,
) -> std::io::Result<()> {
    // Die with the harness, even if it is SIGKILLed; and if it is already gone, stop.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    if getppid() != parent {
        return Err(Errno::ESRCH.into());
    }
    signals::unblock_in_child();
    // The kubelet's oom_score_adj for the pod's QoS class. A negative value
    // needs CAP_SYS_RESOURCE; without it, 0 is the closest allowed (still
    // below every Burstable and BestEffort value).
    // The CPU limit's cgroup (v1: a hierarchy of its own).
    if let Some(cpu) = cpu_procs
        && write(cpu, b"0")? != 1
    {
        return Err(Errno::EIO.into());
    }
    // An engine's client stays outside: it places the container itself.
    let Some(procs) = procs else {
        return Ok(());
    };
    let fd = open(c"/proc/self/oom_score_adj", OFlag::O_WRONLY, Mode::empty())?;
    if write(&fd, adj).is_err() && (oom_score_adj >= 0 || write(&fd, b"0\n").is_err()) {
        return Err(Errno::last().into());
    }
    drop(fd);
    // Enter the pod's cgroup before a single byte is allocated.
    if write(procs, b"0")? != 1 {
        return Err(Errno::EIO.into());
    }
    Ok(())
}

/// Run a container's process once inside its cgroup, wait for it, and
/// read the cgroup's counters; `on_start` is called once it was started
/// (or could not be).
pub fn run_once(
    c: &ContainerPlan,
    group: &Cgroup,
    clock: &PodClock,
    io: &ContainerIo<'_>,
    halt: &dyn Halt,
    on_start: &mut dyn FnMut(),
) -> Result<Instance, RunError> {
    let file_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    let mut cmd = container_command(c, group, io.oom_score_adj)?;
    let engine = c.image.is_some();
    cmd.envs(io.env.iter().map(|(k, v)| (k, v)));
    File::create(&io.events).map_err(file_err(&io.events))?;
    // This run's statistics only.
    let _ = std::fs::remove_file(&io.stats);
    // A restarted container's output follows its earlier runs'.
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&io.log)
        .map_err(file_err(&io.log))?;
    // Only what this run writes is searched for its CUDA error.
    let log_start = out.metadata().map_err(file_err(&io.log))?.len();
    let err = out.try_clone().map_err(file_err(&io.log))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let procs = group.procs_for_entry()?;
    let procs_fd = procs.as_raw_fd();
    let cpu = match c.resources.cpu.limit {
        Some(milli) => crate::cgroup::cpu::limit(group, milli)?,
        None => None,
    };
    let cpu_fd = cpu.as_ref().map(|e| e.file.as_raw_fd());
    let parent = getpid();
    let adj = format!("{}\n", io.oom_score_adj).into_bytes();
    let oom_score_adj = io.oom_score_adj;
    // SAFETY: enter_pod makes only async-signal-safe calls and allocates
    // nothing, as a pre_exec closure must; `procs_fd` stays open in the
    // parent until spawn returns, so it is valid in the child.
    unsafe {
        cmd.pre_exec(move || {
            enter_pod(
                parent,
                oom_score_adj,
                &adj,
                (!engine).then(|| BorrowedFd::borrow_raw(procs_fd)),
                cpu_fd
                    .filter(|_| !engine)
                    .map(|fd| BorrowedFd::borrow_raw(fd)),
            )
        });
    }
    let kills_before = group.oom_kills()?;
    let started_at = SystemTime::now();
    let start_ns = clock.start();
    let spawned = cmd.spawn();
    drop(procs);
    drop(cpu);
    on_start();
    let mut end = Instance {
        pid: None,
        exit: None,
        start_error: None,
        ended: Ended::ByItself,
        start_ns,
        end_ns: start_ns,
        started_at,
        finished_at: started_at,
        oom_kills: 0,
        events: Vec::new(),
        logged_cuda_oom: None,
        runtime_oom: None,
        runtime_memory: None,
        oom_score_adj_applied: None,
    };
    let runtime = c.workload.phases.iter().find_map(|p| match p {
        Phase::Command(p) => p.runtime,
        _ => None,
    });
    let mut python: Vec<PartSample> = Vec::new();
    let mut last_smaps: Option<std::time::Instant> = None;
    let mut sample_python = || {
        if runtime != Some(Runtime::Python) || last_smaps.is_some_and(|t| t.elapsed() < SMAPS_EVERY)
        {
            return;
        }
        last_smaps = Some(std::time::Instant::now());
        // No reading rather than a false zero when the cgroup cannot be read.
        let Ok(pids) = group.pids() else {
            return;
        };
        let mut bytes = vec![0u64; stats::PYTHON_PARTS.len()];
        for pid in pids {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) {
                for (b, part) in bytes.iter_mut().zip(stats::python_split(&text)) {
                    *b += part;
                }
            }
        }
        python.push(PartSample {
            t_s: seconds_between(start_ns, monotonic_ns()),
            bytes,
        });
    };
    match spawned {
        Ok(child) => {
            let pid = child.id() as i32;
            end.pid = Some(pid);
            end.oom_score_adj_applied =
                std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
                    .ok()
                    .and_then(|t| t.trim().parse().ok());
            clock.set_pid(pid);
            signals::register(pid);
            let waited = wait(child, group, halt, &mut sample_python);
            signals::unregister(pid);
            end.end_ns = monotonic_ns();
            let (status, ended) = waited.map_err(|source| RunError::Wait {
                pod: c.name.clone(),
                source,
            })?;
            end.ended = ended;
            end.exit = Some(match (status.signal(), status.code()) {
                (Some(sig), _) => Exit::Signal(sig),
                // podman returns 128+N for a container killed by signal N.
                (None, Some(code)) if engine && (129..=159).contains(&code) => {
                    Exit::Signal(code - 128)
                }
                (None, code) => Exit::Code(code.unwrap_or(1)),
            });
        }
        Err(e) => {
            end.start_error = Some(format!("cannot start {:?}: {e}", cmd.get_program()));
        }
    }
    end.finished_at = SystemTime::now();
    // Whatever the main process left behind in the container goes with it.
    if engine {
        crate::runtime::image::remove(&group.kernel_name());
        group.kill_tree();
    } else {
        group.kill_all();
    }
    end.oom_kills = group.oom_kills()?.saturating_sub(kills_before);
    if let Some((l, i)) = io.ledger {
        // The driver frees a dead process's device memory; so does the ledger.
        l.release_pod(i);
    }
    end.events = events::read(&io.events, start_ns);
    let tail = log_tail(&io.log, log_start).unwrap_or_default();
    if !end
        .events
        .iter()
        .any(|e| matches!(e.event, Event::CudaOom { .. }))
    {
        // torch's text, or the driver's CUDA_ERROR_OUT_OF_MEMORY.
        end.logged_cuda_oom = tail
            .lines()
            .rev()
            .find(|l| l.contains("CUDA out of memory") || l.contains("CUDA_ERROR_OUT_OF_MEMORY"))
            .map(|l| l.trim().to_string());
    }
    end.runtime_oom = crate::runtime::oom::scan(&tail);
    end.runtime_memory =
        runtime.and_then(|r| stats::collect(r, &io.stats, &tail, start_ns, python));
    Ok(end)
}

/// The last 64 KiB a run wrote to its log (from `from` on).
fn log_tail(log: &Path, from: u64) -> Option<String> {
    const TAIL: u64 = 64 << 10;
    let mut f = File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL).max(from)))
        .ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Wait for a child while watching the pod's deadline and stop: SIGKILL
/// at the deadline, SIGTERM then SIGKILL after [`GRACE`] when the pod
/// stops it. A helper thread owns the child and reaps it.
fn wait(
    child: Child,
    group: &Cgroup,
    halt: &dyn Halt,
    tick: &mut dyn FnMut(),
) -> std::io::Result<(ExitStatus, Ended)> {
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    let reaper = std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || {
            let mut child = child;
            let _ = tx.send(child.wait());
        })?;
    let mut ended = Ended::ByItself;
    let mut term_sent: Option<std::time::Instant> = None;
    let status = loop {
        match rx.recv_timeout(POLL) {
            Ok(status) => break status,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other(
                    "the reaper thread ended without a status",
                ));
            }
        }
        tick();
        // Unreaped until the reaper's wait returns, so the pid is still ours.
        if ended == Ended::ByItself && halt.deadline_passed() {
            ended = Ended::Timeout;
            let _ = kill(pid, Signal::SIGKILL);
        } else if ended == Ended::ByItself && halt.stopping() {
            ended = Ended::Stopped;
            // A cgroup removed under the run no longer lists its processes.
            if !group.signal_all(Signal::SIGTERM) {
                let _ = kill(pid, Signal::SIGTERM);
            }
            term_sent = Some(std::time::Instant::now());
        } else if term_sent.is_some_and(|t| t.elapsed() >= GRACE) {
            term_sent = None;
            let _ = kill(pid, Signal::SIGKILL);
        }
    };
    reaper
        .join()
        .map_err(|_| std::io::Error::other("the reaper thread panicked"))?;
    Ok((status?, ended))
}
