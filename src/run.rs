//! Running a checked plan for real: preflight, one cgroup per pod under
//! `oomsim/<run-id>/`, the OOM watcher and the sampler, one child per pod, and
//! the verdicts. Cgroups and children are cleaned up on every path (the
//! [`RunGroup`] guard on return, error and panic; the signal thread on Ctrl-C).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cgroup::{self, Backend, Cgroup, MemStat, RunGroup};
use crate::gpu;
use crate::host::{self, HostInfo};
use crate::monitor::clock::{monotonic_ns, seconds_between};
use crate::monitor::kmsg::{self, Kill, KmsgReader};
use crate::monitor::sampler::{PodClock, Sample, SampledPod, Sampler};
use crate::monitor::watch::{Observed, WatchedPod, Watcher};
use crate::node;
use crate::report::{self, PodReport, Report};
use crate::scenario::{Phase, Plan, PodPlan};
use crate::signals;
use crate::verdict::{self, Evidence, Exit};
use crate::workload::events::{self, ENV_EVENTS, Event};

/// Why a run could not happen or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The host cannot run it: not root, no memory controller, not enough memory.
    #[error("{0}")]
    Host(String),
    /// Something failed part-way (a cgroup write, a thread); cleanup still ran.
    #[error("{0}")]
    Internal(String),
}

impl From<cgroup::CgroupError> for RunError {
    fn from(e: cgroup::CgroupError) -> Self {
        RunError::Internal(e.to_string())
    }
}

impl From<std::io::Error> for RunError {
    fn from(e: std::io::Error) -> Self {
        RunError::Internal(e.to_string())
    }
}

/// The host facts and backend a run needs, checked before anything is created.
pub struct Preflight {
    pub backend: Arc<dyn Backend>,
    pub host: HostInfo,
    pub usable_bytes: u64,
}

/// Check root, the memory controller, panic_on_oom, and that the limits fit.
pub fn preflight(plan: &Plan) -> Result<Preflight, RunError> {
    if !host::is_root() {
        return Err(RunError::Host(
            "oomsim needs root to create cgroups and read the kernel log; run it with sudo".into(),
        ));
    }
    let backend = cgroup::detect().map_err(RunError::Host)?;
    host::check_panic_on_oom().map_err(RunError::Host)?;
    let (total, available) =
        host::meminfo().map_err(|e| RunError::Host(format!("cannot read /proc/meminfo: {e}")))?;
    // A node's capacity bounds every pod inside it, whatever their limits.
    let limits: Vec<(String, u64)> = match &plan.node {
        Some(n) => vec![("node.capacity".into(), n.capacity_bytes)],
        None => plan
            .pods
            .iter()
            .filter_map(|p| p.limit_bytes.map(|l| (p.limit_field.clone(), l)))
            .collect(),
    };
    let usable_bytes = host::check_fits(&limits, available, total).map_err(RunError::Host)?;
    for pod in &plan.pods {
        for phase in &pod.workload.phases {
            if let Phase::ModelLoad(m) = phase
                && let Some(file) = &m.file
            {
                crate::weights::ensure(file, m.size_bytes, true).map_err(RunError::Host)?;
            }
        }
    }
    let host = HostInfo {
        kernel: host::kernel_release(),
        cgroup_version: backend.version(),
        cgroup_root: backend.root().display().to_string(),
        mem_total_bytes: total,
        mem_available_bytes: available,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kmsg_readable: false,
    };
    Ok(Preflight {
        backend,
        host,
        usable_bytes,
    })
}

/// What one pod's waiter thread brings back.
struct PodEnd {
    pid: Option<i32>,
    exit: Option<Exit>,
    start_error: Option<String>,
    timed_out: bool,
    start_ns: u64,
    end_ns: u64,
    started_at: SystemTime,
    finished_at: SystemTime,
    oom_kills: u64,
    kernel_peak: Option<u64>,
    stat_at_end: MemStat,
    events: Vec<Event>,
    /// A CUDA out-of-memory line found in the log when no event said so.
    logged_cuda_oom: Option<String>,
    /// What the kernel holds for the pod's process (the policy's value, or 0
    /// for a negative one without CAP_SYS_RESOURCE).
    oom_score_adj_applied: Option<i32>,
}

/// Run the plan and return the report (already written to `out_dir`).
pub fn run(
    plan: &Plan,
    pre: Preflight,
    out_dir: &Path,
    progress: bool,
) -> Result<Report, RunError> {
    let Preflight {
        backend,
        mut host,
        usable_bytes,
    } = pre;
    let run_id = cgroup::new_run_id();
    let started_at = SystemTime::now();
    let device = plan
        .gpu
        .as_ref()
        .map(|g| gpu::prepare(g, &run_id))
        .transpose()
        .map_err(|e| RunError::Host(e.to_string()))?;
    let node_limit = plan
        .node
        .as_ref()
        .map_or(usable_bytes, |n| n.capacity_bytes);
    let run_group = RunGroup::create(backend.clone(), &run_id, Some(node_limit))?;
    let capacity = plan
        .node
        .as_ref()
        .map_or(host.mem_total_bytes, |n| n.capacity_bytes);
    let adjs: Vec<i32> = plan
        .pods
        .iter()
        .map(|p| node::oom_score_adj(p.qos, p.request_bytes.unwrap_or(0), capacity))
        .collect();
    let evicted: Vec<node::EvictedFlag> = plan.pods.iter().map(|_| Arc::default()).collect();
    let mut pod_groups = Vec::with_capacity(plan.pods.len());
    for pod in &plan.pods {
        pod_groups.push(
            run_group
                .group
                .create_child(&pod.name, pod.limit_bytes, pod.swap)?,
        );
    }
    let kmsg = match KmsgReader::open(&run_id) {
        Ok(k) => Some(k),
        Err(e) => {
            eprintln!(
                "oomsim: warning: cannot read {}: {e}; kill lines and detection latency will be missing",
                kmsg::KMSG
            );
            None
        }
    };
    host.kmsg_readable = kmsg.is_some();
    let mut watched = Vec::new();
    let mut sampled = Vec::new();
    let clocks: Vec<Arc<PodClock>> = plan.pods.iter().map(|_| Arc::default()).collect();
    for (i, ((pod, group), clock)) in plan.pods.iter().zip(&pod_groups).zip(&clocks).enumerate() {
        let (counter, counter_key) = group.oom_kill_file()?;
        watched.push(WatchedPod {
            notifier: backend.oom_notifier(&group.path)?,
            counter,
            counter_key,
            kernel_name: group.kernel_name(),
            clock: clock.clone(),
        });
        sampled.push(SampledPod {
            usage: group.usage()?,
            limit_bytes: pod.limit_bytes,
            clock: clock.clone(),
            device: device.as_ref().map(|d| (d.ledger.clone(), i as u32)),
            stat: Some(group.clone()),
        });
    }
    let watcher = Watcher::start(watched, kmsg)?;
    let sampler = Sampler::start(sampled, plan.sampling_hz)?;
    let eviction = match &plan.node {
        Some(spec) => Some(node::EvictionLoop::start(
            spec.clone(),
            run_group.group.clone(),
            plan.pods
                .iter()
                .zip(&pod_groups)
                .zip(&clocks)
                .zip(&evicted)
                .map(|(((p, g), c), e)| node::Watched {
                    name: p.name.clone(),
                    priority: p.priority,
                    request_bytes: p.request_bytes.unwrap_or(0),
                    group: g.clone(),
                    clock: c.clone(),
                    evicted: e.clone(),
                })
                .collect(),
        )?),
        None => None,
    };
    let logs_dir = out_dir.join("logs");
    std::fs::create_dir_all(&logs_dir)?;
    if progress {
        eprintln!(
            "oomsim: running {}: {} pod(s) in cgroup {} (Ctrl-C stops and cleans up)",
            plan.name,
            plan.pods.len(),
            pod_groups
                .first()
                .map(|g| g.kernel_name())
                .unwrap_or_default()
                .rsplit_once('/')
                .map_or(String::new(), |(p, _)| p.to_string())
        );
    }
    let ends: Vec<Result<PodEnd, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .pods
            .iter()
            .zip(&pod_groups)
            .zip(&clocks)
            .enumerate()
            .map(|(i, ((pod, group), clock))| {
                let log = logs_dir.join(format!("{}.log", pod.name));
                let events = logs_dir.join(format!("{}.events.jsonl", pod.name));
                let mut env = vec![(ENV_EVENTS.to_string(), events.display().to_string())];
                if let Some(d) = &device {
                    env.extend(d.env());
                    env.push((gpu::ENV_POD.into(), i.to_string()));
                }
                let ledger = device.as_ref().map(|d| (d.ledger.as_ref(), i as u32));
                let adj = adjs[i];
                s.spawn(move || {
                    run_pod(
                        pod,
                        group,
                        clock,
                        &log,
                        (&events, env, adj),
                        ledger,
                        progress,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("the pod's waiter thread panicked".into()))
            })
            .collect()
    });
    let observed = watcher.finish();
    let sampled = sampler.finish();
    let node_report = eviction.and_then(node::EvictionLoop::finish);
    let node_name = plan.node.as_ref().map(|_| run_group.group.kernel_name());
    for e in &observed.errors {
        eprintln!("oomsim: warning: {e}");
    }
    let mut pods = Vec::with_capacity(plan.pods.len());
    for (i, (pod, end)) in plan.pods.iter().zip(ends).enumerate() {
        let end = end.map_err(RunError::Internal)?;
        let node = PodNode {
            oom_score_adj: adjs[i],
            evicted: evicted[i].lock().ok().and_then(|e| e.clone()),
            node_cgroup: node_name.clone(),
        };
        pods.push(pod_report(
            pod,
            end,
            &observed,
            i,
            sampled.samples.get(i).cloned().unwrap_or_default(),
            &logs_dir,
            node,
        ));
    }
    let cleanup = run_group.remove();
    let report = Report {
        schema_version: report::SCHEMA_VERSION,
        scenario: plan.name.clone(),
        description: plan.description.clone(),
        run_id,
        started_at: report::rfc3339(started_at),
        finished_at: report::rfc3339(SystemTime::now()),
        host,
        harness: report::Harness {
            sampler_cpu_s: sampled.cpu_s,
            watcher_cpu_s: observed.cpu_s,
            samples_taken: pods.iter().map(|p| p.samples.len()).sum(),
            rss_hwm_bytes: crate::monitor::clock::rss_hwm_bytes(),
        },
        gpu: device.as_ref().map(|d| d.info.clone()),
        node: node_report,
        interrupted: signals::caught().map(signal_name),
        ok: pods.iter().all(|p| p.unmet.is_empty()),
        pods,
    };
    report::write_json(&out_dir.join(report::REPORT_FILE), &report)?;

    cleanup?;
    Ok(report)
}

pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        s => format!("signal {s}"),
    }
}

/// What the node knows of a pod.
struct PodNode {
    oom_score_adj: i32,
    evicted: Option<(f64, String)>,
    /// The node cgroup's kernel name, when the run has a node.
    node_cgroup: Option<String>,
}

fn pod_report(
    pod: &PodPlan,
    end: PodEnd,
    observed: &Observed,
    i: usize,
    samples: Vec<Sample>,
    logs_dir: &Path,
    node: PodNode,
) -> PodReport {
    let kills: &[Kill] = observed.kills.get(i).map_or(&[], Vec::as_slice);
    let main_kill = kills.iter().find(|k| Some(k.pid) == end.pid);
    let kill = main_kill.or(kills.first()).cloned();
    let since_start = |ns: u64| seconds_between(end.start_ns, ns);
    let kernel_kill_s = match (&kill, observed.kmsg_offset_ns) {
        (Some(k), Some(offset)) => Some(since_start(kmsg::to_monotonic_ns(k.ts_us, offset))),
        _ => None,
    };
    let counter_seen_s = observed
        .rises
        .get(i)
        .and_then(|r| r.first())
        .map(|r| since_start(r.seen_ns));
    let evidence = Evidence {
        exit: end.exit,
        start_error: end.start_error,
        timed_out: end.timed_out,
        oom_kills: end.oom_kills,
        main_was_victim: main_kill.is_some(),
        waited_s: since_start(end.end_ns),
        counter_seen_s,
        kernel_kill_s,
        cuda_oom: end
            .events
            .iter()
            .find(|e| e.event == "cuda_oom")
            .map(|e| {
                let text = e
                    .data
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default();
                (Some(e.t_s), text.to_string())
            })
            .or(end.logged_cuda_oom.map(|l| (None, l))),
        evicted: node.evicted,
        node_oom: node_level_oom(&node.node_cgroup, kill.as_ref(), pod, end.kernel_peak),
    };
    let verdict = verdict::classify(&evidence);
    let sampled_peak = samples.iter().map(|s| s.bytes).max().unwrap_or(0);
    let max_of = |f: fn(&Sample) -> Option<u64>| samples.iter().filter_map(f).max();
    let dual_residency = report::DualResidency::from_events(&end.events, verdict.at_s);
    let unmet = pod
        .expect
        .as_ref()
        .map(|e| verdict::unmet(e, &verdict))
        .unwrap_or_default();
    PodReport {
        name: pod.name.clone(),
        qos: pod.qos,
        priority: pod.priority,
        request_bytes: pod.request_bytes,
        limit_bytes: pod.limit_bytes,
        oom_score_adj: node.oom_score_adj,
        oom_score_adj_applied: end.oom_score_adj_applied,
        peak_bytes: end.kernel_peak.unwrap_or(0).max(sampled_peak),
        oom_kill_count: end.oom_kills,
        stat_at_end: end.stat_at_end,
        pid: end.pid,
        started_at: report::kubectl_time(end.started_at),
        finished_at: report::kubectl_time(end.finished_at),
        verdict,
        kernel_kill: kill,
        expect: pod.expect.clone(),
        unmet,
        log: logs_dir
            .join(format!("{}.log", pod.name))
            .display()
            .to_string(),
        device_peak_bytes: max_of(|s| s.device_bytes),
        anon_peak_bytes: max_of(|s| s.anon_bytes),
        file_peak_bytes: max_of(|s| s.file_bytes),
        dual_residency,
        events: end.events,
        samples,
    }
}

/// The kill was the node's: the kernel names the node cgroup as the one out
/// of memory; without its line, the pod was below its own limit (or had none).
fn node_level_oom(
    node_cgroup: &Option<String>,
    kill: Option<&Kill>,
    pod: &PodPlan,
    peak: Option<u64>,
) -> bool {
    let Some(node) = node_cgroup else {
        return false;
    };
    match kill.and_then(|k| k.oom_memcg.as_deref()) {
        Some(memcg) => memcg == node,
        None => match (pod.limit_bytes, peak) {
            (None, _) => true,
            (Some(l), Some(p)) => p + (1 << 20) < l,
            (Some(_), None) => false,
        },
    }
}

/// The command a pod's child runs: the program itself for a lone command,
/// else this binary's hidden workload subcommand.
fn pod_command(pod: &PodPlan) -> Result<Command, String> {
    if let [Phase::Command { argv, env }] = pod.workload.phases.as_slice() {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).envs(env.iter().map(|(k, v)| (k, v)));
        return Ok(cmd);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the oomsim binary: {e}"))?;
    let spec = serde_json::to_string(&pod.workload).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg(crate::cli::WORKLOAD_SUBCOMMAND).arg(spec);
    Ok(cmd)
}

/// Start one pod's child inside its cgroup, wait for it (up to its timeout),
/// and read the cgroup's counters before the cgroup goes away.
fn run_pod(
    pod: &PodPlan,
    group: &Cgroup,
    clock: &PodClock,
    log: &PathBuf,
    (events_path, env, oom_score_adj): (&Path, Vec<(String, String)>, i32),
    ledger: Option<(&gpu::Ledger, u32)>,
    progress: bool,
) -> Result<PodEnd, String> {
    let mut cmd = pod_command(pod)?;
    cmd.envs(env);
    File::create(events_path).map_err(|e| format!("{}: {e}", events_path.display()))?;
    let out = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let procs = group.procs_for_entry().map_err(|e| e.to_string())?;
    let procs_fd = procs.as_raw_fd();
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    let adj = format!("{oom_score_adj}\n");
    let adj_path = c"/proc/self/oom_score_adj";
    // SAFETY: the closure calls only async-signal-safe functions (prctl,
    // getppid, pthread_sigmask, write) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Die with the harness, even if it is SIGKILLed.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(137);
            }
            signals::unblock_in_child();
            // The kubelet's oom_score_adj for the pod's QoS class. A negative
            // value needs CAP_SYS_RESOURCE; without it, 0 is the closest allowed
            // (still below every Burstable and BestEffort value).
            let fd = libc::open(adj_path.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::write(fd, adj.as_ptr().cast(), adj.len()) < 0
                && (oom_score_adj >= 0 || libc::write(fd, b"0\n".as_ptr().cast(), 2) < 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            // Enter the pod's cgroup before a single byte is allocated.
            if libc::write(procs_fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
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
        Ok(mut child) => {
            let pid = child.id() as i32;
            end.pid = Some(pid);
            end.oom_score_adj_applied =
                std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
                    .ok()
                    .and_then(|t| t.trim().parse().ok());
            clock.set_pid(pid);
            signals::register(pid);
            let waited = wait_with_timeout(&mut child, pod.timeout());
            signals::unregister(pid);
            end.end_ns = monotonic_ns();
            let (status, timed_out) =
                waited.map_err(|e| format!("waiting for pod {}: {e}", pod.name))?;
            end.timed_out = timed_out;
            end.exit = Some(match status.signal() {
                Some(sig) => Exit::Signal(sig),
                None => Exit::Code(status.code().unwrap_or(1)),
            });
        }
        Err(e) => {
            let program = pod_command(pod)
                .map(|c| c.get_program().to_string_lossy().to_string())
                .unwrap_or_default();
            end.start_error = Some(format!("cannot start {program:?}: {e}"));
        }
    }
    clock.end();
    end.finished_at = SystemTime::now();
    // Whatever the main process left behind in the pod goes with it, as in a container.
    for pid in group.pids().unwrap_or_default() {
        // SAFETY: kill(2) on a process inside our own pod cgroup.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    end.oom_kills = group.oom_kills().map_err(|e| e.to_string())?;
    end.kernel_peak = group.backend.peak(&group.path).map_err(|e| e.to_string())?;
    end.stat_at_end = group.backend.stat(&group.path).map_err(|e| e.to_string())?;
    // The driver frees a dead process's device memory; so does the ledger.
    if let Some((l, i)) = ledger {
        l.release_pod(i);
    }
    end.events = events::read(events_path, start_ns);
    if !end.events.iter().any(|e| e.event == "cuda_oom") {
        end.logged_cuda_oom = cuda_oom_in_log(log);
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
    use std::io::{Read, Seek, SeekFrom};
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

/// Wait for a child, killing it at the timeout; pidfd makes the wait pollable.
fn wait_with_timeout(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<(std::process::ExitStatus, bool)> {
    // SAFETY: pidfd_open on our own unreaped child; the fd is closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) } as i32;
    let mut timed_out = false;
    if pidfd >= 0 {
        let mut pfd = libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd; EINTR cannot happen with our signals blocked.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        // SAFETY: closing the fd pidfd_open gave us.
        unsafe { libc::close(pidfd) };
        if ready == 0 {
            timed_out = true;
            child.kill()?;
        }
    } else {
        let deadline = std::time::Instant::now() + timeout;
        while child.try_wait()?.is_none() {
            if std::time::Instant::now() >= deadline {
                timed_out = true;
                child.kill()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok((child.wait()?, timed_out))
}
