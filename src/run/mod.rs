//! Running a checked plan for real: one cgroup per pod under
//! `oomsim/<run-id>/`, the OOM watcher and the sampler, the kubelet's
//! eviction loop when the plan has a node, one child per pod, and the
//! verdicts. Cgroups and children are cleaned up on every path (the
//! [`RunGroup`] guard on return, error and panic; the signal thread on Ctrl-C).

mod eviction;
pub(crate) mod pod;
mod pod_report;
mod preflight;
mod prepare;
mod spawn;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

pub use preflight::{Preflight, preflight};

use crate::cgroup::{self, Cgroup, CgroupError, MemStat, OomKillMode, RunGroup, StatFile, Swap};
use crate::fault;
use crate::gpu::{self, GpuError};
use crate::host::HostError;
use crate::k8s::Pod;
use crate::k8s::oom_score_adj;
use crate::monitor::PodStop;
use crate::monitor::kmsg::{self, KmsgReader};
use crate::monitor::sampler::{PodClock, SampledPod, Sampler};
use crate::monitor::watch::{WatchedPod, Watcher};
use crate::plan::{Plan, PodPlan};
use crate::report::{self, Report};
use crate::signals;
use crate::workload::events::{ENV_EVENTS, Event};
use eviction::{EvictedFlag, EvictionLoop, WatchedContainer};
use pod::{ContainerCtx, PodEnd, run_pod};
use pod_report::{Counters, Gathered, NodeCgroups, PodNode, file_stem, pod_report};
use spawn::ContainerIo;

/// Why a run could not happen or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The host cannot run it: not root, no memory controller, not enough memory.
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("waiting for pod {pod}: {source}")]
    Wait { pod: String, source: std::io::Error },
    #[error("cannot hand the workload its spec: {0}")]
    Encode(serde_json::Error),
    #[error("the waiter thread of pod {0} panicked")]
    Panicked(String),
    #[error("cannot write the report: {0}")]
    Report(#[from] report::ReportError),
    #[error("pod {pod}, container {container}: {source}")]
    Template {
        pod: String,
        container: String,
        source: Box<crate::template::TemplateError>,
    },
    /// oomsim's own workload code panicked in the child: oomsim's failure,
    /// never the pod's verdict.
    #[error(
        "pod {pod}, container {container}: oomsim's workload panicked: {message} (a bug in oomsim; no verdict)"
    )]
    WorkloadPanicked {
        pod: String,
        container: String,
        message: String,
    },
    /// Someone else removed a pod's cgroup while it ran: nothing after
    /// that can be measured, so the pod was stopped.
    #[error(
        "pod {pod}: its cgroup went away during the run ({cause}); something outside oomsim removed it, so oomsim stopped the pod: no verdict"
    )]
    CgroupLost { pod: String, cause: String },
    #[error("the trial at {limit} could not start its pod: {message}")]
    TrialStart { limit: String, message: String },
}

impl From<GpuError> for RunError {
    fn from(e: GpuError) -> Self {
        RunError::Host(HostError::Gpu(e))
    }
}

impl RunError {
    /// The host cannot run it (exit 3), rather than a failure part-way (exit 4).
    pub fn is_host(&self) -> bool {
        matches!(self, RunError::Host(_))
    }
}

fn thread(what: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Thread { what, source }
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
    let allocatable = plan
        .node
        .as_ref()
        .map_or(host.mem_total_bytes, |n| n.allocatable_bytes());
    let logs_dir = out_dir.join("logs");
    let plan = &prepare::prepare(plan, allocatable, &logs_dir)?;
    let run_id = cgroup::new_run_id();
    let started_at = SystemTime::now();
    let device = plan
        .gpu
        .as_ref()
        .map(|g| gpu::prepare(g, &run_id))
        .transpose()?;
    let node_limit = plan
        .node
        .as_ref()
        .map_or(usable_bytes, |n| n.capacity_bytes);
    let run_group = RunGroup::create(backend.clone(), &run_id, Some(node_limit))?;
    let capacity = plan
        .node
        .as_ref()
        .map_or(host.mem_total_bytes, |n| n.capacity_bytes);
    let k8s_pods: Vec<_> = plan.pods.iter().map(PodPlan::k8s_pod).collect();
    let adjs: Vec<Vec<i32>> = k8s_pods
        .iter()
        .map(|pod| {
            pod.containers
                .iter()
                .map(|c| oom_score_adj(pod, c, capacity))
                .collect()
        })
        .collect();
    let evicted: Vec<EvictedFlag> = plan.pods.iter().map(|_| Arc::default()).collect();
    let stops: Vec<Arc<PodStop>> = plan.pods.iter().map(|_| Arc::default()).collect();
    // On a node, pods sit in `kubepods`, limited to allocatable as the
    // kubelet limits it (capacity less kubeReserved and systemReserved; the
    // eviction threshold is not subtracted there: pkg/kubelet/cm,
    // getNodeAllocatableAbsolute). Nothing reserved: allocatable is the
    // node, and the pods sit in the node cgroup itself.
    let kubepods = match plan.node.as_ref().filter(|n| n.reserved_bytes > 0) {
        Some(n) => {
            let (g, _) =
                run_group
                    .group
                    .create_child("kubepods", Some(n.allocatable_bytes()), false)?;
            g.backend.enable_children(&g.path)?;
            Some(g)
        }
        None => None,
    };
    let pods_parent = kubepods.as_ref().unwrap_or(&run_group.group);
    let oom_kill_mode = match (backend.version(), plan.single_process_oom_kill) {
        (cgroup::Version::V1, _) => OomKillMode::CgroupV1,
        (_, true) => OomKillMode::SingleProcess,
        (_, false) => OomKillMode::Group,
    };
    let mut warnings = Vec::new();
    // The kubelet's layout: a pod cgroup (the pod's limit) holding one
    // cgroup per container (the container's own limit).
    let mut pod_groups = Vec::with_capacity(plan.pods.len());
    let mut container_groups: Vec<Vec<Cgroup>> = Vec::with_capacity(plan.pods.len());
    let mut swaps = Vec::with_capacity(plan.pods.len());
    for pod in &plan.pods {
        let (group, swap) = pods_parent.create_child(&pod.name, pod.limit_bytes(), pod.swap)?;
        group.backend.enable_children(&group.path)?;
        let mut groups = Vec::with_capacity(pod.containers.len());
        for c in &pod.containers {
            let (g, _) = group.create_child(&c.name, c.limit_bytes(), pod.swap)?;
            if oom_kill_mode == OomKillMode::Group && !g.backend.set_oom_group(&g.path)? {
                warnings.push(format!(
                    "this kernel has no memory.oom.group (Linux 4.19+): an OOM kill in {}/{} takes one process",
                    pod.name, c.name
                ));
            }
            groups.push(g);
        }
        pod_groups.push(group);
        container_groups.push(groups);
        swaps.push(swap);
    }
    fault::point(fault::Point::CgroupsCreated);
    if let Some(w) = swap_warning(plan, &swaps, host.swap_total_bytes) {
        eprintln!("oomsim: warning: {w}");
        warnings.push(w);
    }
    let kmsg = match KmsgReader::open(&run_id) {
        Ok(k) => Some(k),
        Err(e) => {
            let w = format!(
                "cannot read {}: {e}; kill lines and detection latency will be missing",
                kmsg::KMSG
            );
            eprintln!("oomsim: warning: {w}");
            warnings.push(w);
            None
        }
    };
    host.kmsg_readable = kmsg.is_some();
    let pod_clocks: Vec<Arc<PodClock>> = plan.pods.iter().map(|_| Arc::default()).collect();
    let container_clocks: Vec<Vec<Arc<PodClock>>> = plan
        .pods
        .iter()
        .map(|p| p.containers.iter().map(|_| Arc::default()).collect())
        .collect();
    // The watcher sees every container; its lists run pod by pod.
    let mut watched = Vec::new();
    let mut first_unit = Vec::with_capacity(plan.pods.len());
    for ((groups, clocks), stop) in container_groups.iter().zip(&container_clocks).zip(&stops) {
        first_unit.push(watched.len());
        for (group, clock) in groups.iter().zip(clocks) {
            let (counter, counter_key) = group.oom_kill_file()?;
            watched.push(WatchedPod {
                notifier: backend.oom_notifier(&group.path)?,
                counter,
                counter_key,
                kernel_name: group.kernel_name(),
                clock: clock.clone(),
                stop: stop.clone(),
            });
        }
    }
    let mut sampled = Vec::new();
    for (i, (pod, group)) in plan.pods.iter().zip(&pod_groups).enumerate() {
        sampled.push(SampledPod {
            usage: group.usage()?,
            limit_bytes: pod.limit_bytes(),
            clock: pod_clocks[i].clone(),
            device: device.as_ref().map(|d| (d.ledger.clone(), i as u32)),
            stat: container_groups[i]
                .iter()
                .map(StatFile::open)
                .collect::<Result<_, _>>()?,
        });
    }
    let watcher = Watcher::start(watched, kmsg).map_err(thread("OOM watcher"))?;
    let sampler = Sampler::start(sampled, plan.sampling_hz).map_err(thread("sampler"))?;
    let eviction = match &plan.node {
        Some(spec) => Some(
            EvictionLoop::start(
                spec.clone(),
                run_group.group.clone(),
                eviction_watch(
                    plan,
                    &k8s_pods,
                    &pod_groups,
                    &container_groups,
                    &pod_clocks,
                    &evicted,
                    &stops,
                ),
            )
            .map_err(thread("eviction"))?,
        ),
        None => None,
    };
    std::fs::create_dir_all(&logs_dir).map_err(|source| RunError::Io {
        path: logs_dir.clone(),
        source,
    })?;
    if progress {
        eprintln!(
            "oomsim: running {}: {} pod(s) in cgroup {} (Ctrl-C stops and cleans up)",
            plan.name,
            plan.pods.len(),
            run_group.group.kernel_name()
        );
    }
    let ends: Vec<Result<PodEnd, RunError>> = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                let ctxs: Vec<ContainerCtx<'_>> = pod
                    .containers
                    .iter()
                    .enumerate()
                    .map(|(j, c)| {
                        let stem = file_stem(pod, c);
                        let events = logs_dir.join(format!("{stem}.events.jsonl"));
                        let mut env = vec![(ENV_EVENTS.to_string(), events.display().to_string())];
                        if let Some(d) = &device {
                            env.extend(d.env());
                            env.push((gpu::ENV_POD.into(), i.to_string()));
                        }
                        ContainerCtx {
                            group: &container_groups[i][j],
                            clock: &container_clocks[i][j],
                            io: ContainerIo {
                                log: logs_dir.join(format!("{stem}.log")),
                                stats: prepare::stats_file(&logs_dir, pod, c),
                                events,
                                env,
                                oom_score_adj: adjs[i][j],
                                ledger: device
                                    .as_ref()
                                    .filter(|_| pod.containers.len() == 1)
                                    .map(|d| (d.ledger.as_ref(), i as u32)),
                            },
                        }
                    })
                    .collect();
                let (clock, stop) = (&pod_clocks[i], &stops[i]);
                (
                    pod,
                    s.spawn(move || run_pod(pod, &ctxs, clock, stop, progress)),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(pod, h)| {
                h.join()
                    .unwrap_or_else(|_| Err(RunError::Panicked(pod.name.clone())))
            })
            .collect()
    });
    let observed = watcher.finish();
    let sampled = sampler.finish();
    let node_report = match eviction.map(EvictionLoop::finish) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            warnings.push(e.to_string());
            None
        }
        None => None,
    };
    let node_cgroups = plan.node.as_ref().map(|_| NodeCgroups {
        node: run_group.group.kernel_name(),
        kubepods: pods_parent.kernel_name(),
    });
    if let Some((unit, cause)) = observed.lost.first() {
        let pod = first_unit.iter().rposition(|f| f <= unit).unwrap_or(0);
        return Err(RunError::CgroupLost {
            pod: plan.pods[pod].name.clone(),
            cause: cause.clone(),
        });
    }
    for e in observed.errors.iter().chain(&sampled.errors) {
        eprintln!("oomsim: warning: {e}");
        warnings.push(e.clone());
    }
    let mut pods = Vec::with_capacity(plan.pods.len());
    fault::point(fault::Point::PodsEnded);
    for (i, (pod, end)) in plan.pods.iter().zip(ends).enumerate() {
        let end = end?;
        workload_panic(pod, &end)?;
        // The driver frees a dead process's device memory; so does the ledger.
        if let Some(d) = &device {
            d.ledger.release_pod(i as u32);
        }
        let group = &pod_groups[i];
        let counters = Counters {
            pod_peak: group.backend.peak(&group.path)?,
            pod_stat: MemStat::sum(&container_groups[i])?,
            container_peaks: container_groups[i]
                .iter()
                .map(|g| g.backend.peak(&g.path))
                .collect::<Result<_, _>>()?,
        };
        let gathered = Gathered {
            end,
            observed: &observed,
            first_unit: first_unit[i],
            samples: sampled.samples.get(i).cloned().unwrap_or_default(),
            swap: swaps[i],
            node: PodNode {
                oom_score_adjs: adjs[i].clone(),
                evicted: evicted[i].lock().ok().and_then(|e| e.clone()),
                node_cgroups: node_cgroups.clone(),
            },
            counters,
        };
        pods.push(pod_report(pod, gathered, &logs_dir));
    }
    let cleanup = run_group.remove();
    let report = Report {
        schema_version: report::SCHEMA_VERSION,
        scenario: plan.name.clone(),
        description: plan.description.clone(),
        run_id,
        started_at: report::time::rfc3339(started_at),
        finished_at: report::time::rfc3339(SystemTime::now()),
        host,
        harness: report::Harness {
            sampler_cpu_s: sampled.cpu_s,
            watcher_cpu_s: observed.cpu_s,
            samples_taken: pods.iter().map(|p| p.samples.len()).sum(),
            rss_hwm_bytes: crate::monitor::clock::rss_hwm_bytes(),
        },
        gpu: device.as_ref().map(|d| d.info.clone()),
        node: node_report,
        oom_kill_mode: Some(oom_kill_mode),
        interrupted: signals::caught().map(|s| signals::name(s).to_string()),
        warnings,
        ok: pods.iter().all(|p| p.unmet.is_empty()),
        pods,
    };
    report::write_json(&out_dir.join(report::REPORT_FILE), &report)?;
    cleanup?;
    Ok(report)
}

/// A workload child that panicked fails the run: its exit is no verdict.
fn workload_panic(pod: &PodPlan, end: &PodEnd) -> Result<(), RunError> {
    for (c, ended) in pod.containers.iter().zip(&end.containers) {
        for e in ended.instances.iter().flat_map(|i| &i.events) {
            if let Event::Panicked { message } = &e.event {
                return Err(RunError::WorkloadPanicked {
                    pod: pod.name.clone(),
                    container: c.name.clone(),
                    message: message.clone(),
                });
            }
        }
    }
    Ok(())
}

/// What the eviction loop watches of each pod.
fn eviction_watch(
    plan: &Plan,
    k8s_pods: &[Pod],
    pod_groups: &[Cgroup],
    container_groups: &[Vec<Cgroup>],
    clocks: &[Arc<PodClock>],
    evicted: &[EvictedFlag],
    stops: &[Arc<PodStop>],
) -> Vec<eviction::Watched> {
    plan.pods
        .iter()
        .enumerate()
        .map(|(i, p)| eviction::Watched {
            name: p.name.clone(),
            priority: p.priority,
            request_bytes: k8s_pods[i].memory_request(),
            pod_request: p.resources.and_then(|r| r.memory.request),
            containers: p
                .containers
                .iter()
                .zip(&container_groups[i])
                .map(|(c, g)| WatchedContainer {
                    name: c.name.clone(),
                    request_bytes: c.request_bytes().unwrap_or(0),
                    group: g.clone(),
                })
                .collect(),
            group: pod_groups[i].clone(),
            clock: clocks[i].clone(),
            evicted: evicted[i].clone(),
            stop: stops[i].clone(),
        })
        .collect()
}

/// Said when the scenario wants swap off but the kernel keeps no swap
/// account for cgroups and the host has swap: an OOM kill may come late or
/// not at all, unlike in a cluster without swap.
fn swap_warning(plan: &Plan, swaps: &[Swap], swap_total: Option<u64>) -> Option<String> {
    if swap_total.unwrap_or(0) == 0 {
        return None;
    }
    let pods: Vec<&str> = plan
        .pods
        .iter()
        .zip(swaps)
        .filter(|(p, s)| !p.swap && **s == Swap::Uncontrolled)
        .map(|(p, _)| p.name.as_str())
        .collect();
    (!pods.is_empty()).then(|| {
        format!(
            "swap cannot be turned off for pod(s) {}: this kernel keeps no swap account for cgroups (boot with swapaccount=1 on cgroup v1) and the host has {} of swap; an OOM kill may come later than in a cluster without swap",
            pods.join(", "),
            crate::units::fmt_human(swap_total.unwrap_or(0))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Phase, Steady};
    use std::time::Duration;

    #[test]
    fn uncontrolled_swap_is_said_only_when_the_host_has_swap() {
        let plan = Plan::single_pod(
            "app",
            Some(64 << 20),
            None,
            Duration::from_secs(1),
            vec![Phase::Steady(Steady {
                size_bytes: 1,
                duration_s: 0.1,
            })],
        );
        let w = swap_warning(&plan, &[Swap::Uncontrolled], Some(2 << 30)).unwrap();
        assert!(
            w.contains("pod(s) app") && w.contains("swapaccount=1"),
            "{w}"
        );
        assert_eq!(swap_warning(&plan, &[Swap::Uncontrolled], Some(0)), None);
        assert_eq!(swap_warning(&plan, &[Swap::Off], Some(2 << 30)), None);
    }
}
