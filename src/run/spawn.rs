//! One pod's child: started inside its cgroup (it enters before it
//! allocates a byte), given the kubelet's oom_score_adj, waited for up to the
//! pod's timeout, and what is left of it killed; then the cgroup's counters
//! are read before the cgroup goes away.

use std::fs::File;
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
use crate::cgroup::{Cgroup, MemStat};
use crate::gpu;
use crate::monitor::clock::{monotonic_ns, seconds_between};
use crate::monitor::sampler::PodClock;
use crate::plan::{Phase, PodPlan};
use crate::signals;
use crate::verdict::Exit;
use crate::workload::events::{self, Event, TimedEvent};

/// What one pod's waiter thread brings back.
pub struct PodEnd {
    pub pid: Option<i32>,
    pub exit: Option<Exit>,
    pub start_error: Option<String>,
    pub timed_out: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
    pub oom_kills: u64,
    pub kernel_peak: Option<u64>,
    pub stat_at_end: MemStat,
    pub events: Vec<TimedEvent>,
    /// A CUDA out-of-memory line found in the log when no event said so.
    pub logged_cuda_oom: Option<String>,
    /// What the kernel holds for the pod's process (the policy's value, or 0
    /// for a negative one without CAP_SYS_RESOURCE).
    pub oom_score_adj_applied: Option<i32>,
}

/// Where one pod's child writes and what it is told.
pub struct PodIo<'a> {
    pub log: PathBuf,
    pub events: PathBuf,
    pub env: Vec<(String, String)>,
    pub oom_score_adj: i32,
    pub ledger: Option<(&'a gpu::Ledger, u32)>,
}

/// The command a pod's child runs: the program itself for a lone command,
/// else this binary's hidden workload subcommand.
fn pod_command(pod: &PodPlan) -> Result<Command, RunError> {
    if let [Phase::Command(p)] = pod.workload.phases.as_slice() {
        let mut cmd = Command::new(&p.argv[0]);
        cmd.args(&p.argv[1..])
            .envs(p.env.iter().map(|(k, v)| (k, v)));
        return Ok(cmd);
    }
    let exe = std::env::current_exe().map_err(|source| RunError::Io {
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let spec = serde_json::to_string(&pod.workload).map_err(RunError::Encode)?;
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
    procs: BorrowedFd<'_>,
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

/// Start one pod's child inside its cgroup, wait for it (up to its timeout),
/// and read the cgroup's counters before the cgroup goes away.
pub fn run_pod(
    pod: &PodPlan,
    group: &Cgroup,
    clock: &PodClock,
    io: PodIo<'_>,
    progress: bool,
) -> Result<PodEnd, RunError> {
    let file_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    let mut cmd = pod_command(pod)?;
    cmd.envs(io.env);
    File::create(&io.events).map_err(file_err(&io.events))?;
    let out = File::create(&io.log).map_err(file_err(&io.log))?;
    let err = out.try_clone().map_err(file_err(&io.log))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let procs = group.procs_for_entry()?;
    let procs_fd = procs.as_raw_fd();
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
                BorrowedFd::borrow_raw(procs_fd),
            )
        });
    }
    let started_at = SystemTime::now();
    let start_ns = clock.start();
    let spawned = cmd.spawn();
    drop(procs);
    let mut end = PodEnd {
        pid: None,
        exit: None,
        start_error: None,
        timed_out: false,
        start_ns,
        end_ns: start_ns,
        started_at,
        finished_at: started_at,
        oom_kills: 0,
        kernel_peak: None,
        stat_at_end: MemStat::default(),
        events: Vec::new(),
        logged_cuda_oom: None,
        oom_score_adj_applied: None,
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
            let waited = wait_with_timeout(child, pod.timeout());
            signals::unregister(pid);
            end.end_ns = monotonic_ns();
            let (status, timed_out) = waited.map_err(|source| RunError::Wait {
                pod: pod.name.clone(),
                source,
            })?;
            end.timed_out = timed_out;
            end.exit = Some(match status.signal() {
                Some(sig) => Exit::Signal(sig),
                None => Exit::Code(status.code().unwrap_or(1)),
            });
        }
        Err(e) => {
            end.start_error = Some(format!("cannot start {:?}: {e}", cmd.get_program()));
        }
    }
    clock.end();
    end.finished_at = SystemTime::now();
    // Whatever the main process left behind in the pod goes with it, as in a container.
    group.kill_all();
    end.oom_kills = group.oom_kills()?;
    end.kernel_peak = group.backend.peak(&group.path)?;
    end.stat_at_end = group.backend.stat(&group.path)?;
    // The driver frees a dead process's device memory; so does the ledger.
    if let Some((l, i)) = io.ledger {
        l.release_pod(i);
    }
    end.events = events::read(&io.events, start_ns);
    if !end
        .events
        .iter()
        .any(|e| matches!(e.event, Event::CudaOom { .. }))
    {
        end.logged_cuda_oom = cuda_oom_in_log(&io.log);
    }
    if progress {
        let what = match end.exit {
            Some(e) if end.oom_kills > 0 => {
                format!("ended (exit {}), oom_kill {}", e.k8s_code(), end.oom_kills)
            }
            Some(e) => format!("ended (exit {})", e.k8s_code()),
            None => "could not start".into(),
        };
        eprintln!(
            "oomsim:   pod {} {what} after {:.2}s",
            pod.name,
            seconds_between(start_ns, end.end_ns)
        );
    }
    Ok(end)
}

/// The last line of a pod's log that reports a CUDA out-of-memory error
/// (torch's text, or the driver's CUDA_ERROR_OUT_OF_MEMORY).
fn cuda_oom_in_log(log: &Path) -> Option<String> {
    const TAIL: u64 = 64 << 10;
    let mut f = File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    String::from_utf8_lossy(&bytes)
        .lines()
        .rev()
        .find(|l| l.contains("CUDA out of memory") || l.contains("CUDA_ERROR_OUT_OF_MEMORY"))
        .map(|l| l.trim().to_string())
}

/// Wait for a child, killing it at the timeout. A helper thread owns the
/// child and reaps it; this one waits on the channel with a deadline.
fn wait_with_timeout(child: Child, timeout: Duration) -> std::io::Result<(ExitStatus, bool)> {
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    let reaper = std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || {
            let mut child = child;
            let _ = tx.send(child.wait());
        })?;
    let (status, timed_out) = match rx.recv_timeout(timeout) {
        Ok(status) => (status, false),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Unreaped until the reaper's wait returns, so the pid is still ours.
            let _ = kill(pid, Signal::SIGKILL);
            (rx.recv().map_err(std::io::Error::other)?, true)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err(std::io::Error::other(
                "the reaper thread ended without a status",
            ));
        }
    };
    reaper
        .join()
        .map_err(|_| std::io::Error::other("the reaper thread panicked"))?;
    Ok((status?, timed_out))
}
