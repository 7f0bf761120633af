//! Scenario files: YAML in, a checked [`Plan`] out.
//!
//! Loading never touches the host. Every error is one line that names the
//! file, the line and the field, so `oomsim validate` and `oomsim run` refuse
//! bad input before a cgroup exists or a report is written.

mod raw;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_saphyr::{Location, Spanned};

use crate::sizing::{BUILTIN_VARS, Expr};
use crate::units::{self, UnitError};
use raw::{RawExpect, RawGpu, RawPod, RawResourceList, RawScenario, RawSearch, RawWorkload, Text};

/// Default sampling rate of each pod's memory usage.
pub const DEFAULT_SAMPLING_HZ: u32 = 100;
/// Default time after which the harness kills a pod that has not ended.
pub const DEFAULT_POD_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read the scenario: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: the scenario file is empty")]
    Empty { path: String },
    #[error("{path}:{line}:{column}: {message}")]
    Yaml {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}:{line}: {field}: {message}")]
    Field {
        path: String,
        line: u64,
        field: String,
        message: String,
    },
}

/// Kubernetes QoS class, derived from requests and limits as the API server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

/// Page size a workload touches its memory with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pages {
    #[default]
    #[serde(rename = "4k")]
    Small,
    Huge,
}

/// One allocation pattern or program, run by the pod's child process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Phase {
    /// Hold `baseline_bytes`, then grow at `rate_bytes_per_s` (None: as fast as
    /// pages can be touched) until `cap_bytes` or `duration_s`.
    Leak {
        baseline_bytes: u64,
        rate_bytes_per_s: Option<u64>,
        cap_bytes: Option<u64>,
        duration_s: Option<f64>,
    },
    /// Hold `baseline_bytes`; every `period_s` add `spike_bytes` for `hold_s`.
    Burst {
        baseline_bytes: u64,
        spike_bytes: u64,
        period_s: f64,
        hold_s: f64,
        count: Option<u32>,
        duration_s: Option<f64>,
    },
    /// Hold `size_bytes` for `duration_s`.
    Steady { size_bytes: u64, duration_s: f64 },
    /// Run a program and end as it ends.
    Command {
        argv: Vec<String>,
        env: Vec<(String, String)>,
    },
    /// Load a model's weights onto the run's GPU.
    #[serde(rename = "model-load")]
    ModelLoad(ModelLoad),
    /// A vLLM-like server's KV cache under a ramp of concurrent requests.
    #[serde(rename = "kv-cache")]
    KvCache(Box<KvCache>),
}

/// How the KV cache gets its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvMode {
    /// vLLM: the whole budget up front, in blocks; preempt when they run out.
    Paged,
    /// A naive server: allocate blocks as sequences grow, until CUDA OOM.
    Dynamic,
}

/// The `kv-cache` workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvCache {
    pub mode: KvMode,
    /// The model and vLLM's settings; the device's capacity is read at start.
    pub vllm: crate::vllm::Inputs,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    /// Concurrent requests reached at the end of the ramp.
    pub concurrency: u64,
    pub ramp_s: f64,
    /// One decode step: every running sequence grows by a token.
    pub step_s: f64,
    pub duration_s: f64,
    /// Allocate the sampler's logits (outside vLLM's KV budget).
    pub logits: bool,
}

/// How weights travel from disk to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadStrategy {
    /// Read the whole file into host memory, then copy it to the device.
    ReadThenCopy,
    /// Stream it through a bounded buffer.
    Chunked,
    /// Map the file and copy from the page cache.
    Mmap,
}

impl LoadStrategy {
    pub const ALL: [LoadStrategy; 3] = [
        LoadStrategy::ReadThenCopy,
        LoadStrategy::Chunked,
        LoadStrategy::Mmap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LoadStrategy::ReadThenCopy => "read-then-copy",
            LoadStrategy::Chunked => "chunked",
            LoadStrategy::Mmap => "mmap",
        }
    }

    pub fn parse(s: &str) -> Option<LoadStrategy> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The `model-load` workload: weights onto the device, runtime overhead beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLoad {
    pub size_bytes: u64,
    pub strategy: LoadStrategy,
    /// read-then-copy: keep the host copy after the copy (else free it).
    pub keep_host: bool,
    /// Copy granularity, and the chunked strategy's buffer.
    pub chunk_bytes: u64,
    /// chunked: lock the buffer in memory (page-locked, as for DMA).
    pub pinned: bool,
    /// The weights file; None: synthetic bytes made in memory.
    pub file: Option<PathBuf>,
    /// Interpreter, libraries and buffers held during the load and after.
    pub overhead_bytes: u64,
    /// How long the loaded model is held (serving) before the pod ends.
    pub hold_s: f64,
}

/// Default copy chunk and chunked-strategy buffer.
pub const DEFAULT_LOAD_CHUNK: u64 = 256 << 20;

/// Where a weights file of a given size is created once and reused.
pub fn default_model_file(size_bytes: u64) -> PathBuf {
    PathBuf::from(format!("/var/tmp/oomsim/models/model-{size_bytes}.bin"))
}

/// What a workload child is handed: its phases and page size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    pub pages: Pages,
    pub phases: Vec<Phase>,
}

/// What the scenario expects of a pod; `run` exits 1 when it does not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expect {
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub within_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PodPlan {
    pub name: String,
    pub qos: Qos,
    pub priority: i32,
    pub request_bytes: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub swap: bool,
    pub timeout_s: f64,
    pub workload: WorkloadSpec,
    pub expect: Option<Expect>,
    /// Where the limit was written, to name it when the host cannot give it.
    #[serde(skip)]
    pub limit_field: String,
}

/// A limit search asked for in the scenario (or on the command line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchSpec {
    pub pod: String,
    pub range: Option<(u64, u64)>,
    pub precision_bytes: Option<u64>,
    pub repeat: u32,
    /// Search once per loading strategy (a model-load pod); empty: as written.
    pub strategies: Vec<LoadStrategy>,
}

/// Default trials at the answer before it is called safe.
pub const DEFAULT_SEARCH_REPEAT: u32 = 3;
/// The sim device's capacity when the scenario does not give one (an 80 GB card).
pub const DEFAULT_SIM_GPU_MEMORY: u64 = 80 << 30;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    pub sampling_hz: u32,
    pub pods: Vec<PodPlan>,
    pub vars: Vec<(String, f64)>,
    #[serde(skip)]
    pub formulas: Vec<(String, Expr)>,
    pub search: Option<SearchSpec>,
    pub gpu: Option<crate::gpu::GpuSpec>,
    pub node: Option<crate::node::NodeSpec>,
}

impl PodPlan {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }
}

/// Read and check a scenario file.
pub fn load(path: &Path) -> Result<Plan, ScenarioError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown)
}

/// Check scenario text; `shown` names the file in errors.
pub fn parse(text: &str, shown: &str) -> Result<Plan, ScenarioError> {
    if text.trim().is_empty() {
        return Err(ScenarioError::Empty {
            path: shown.to_string(),
        });
    }
    let raw: RawScenario = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        ScenarioError::Yaml {
            path: shown.to_string(),
            line,
            column,
            message: yaml_message(&e.to_string()),
        }
    })?;
    Checker {
        path: shown,
        has_gpu: raw.gpu.is_some(),
    }
    .scenario(raw)
}

/// serde-saphyr renders a snippet over several lines; keep only the message.
fn yaml_message(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest.to_string(),
        _ => first.to_string(),
    }
}

/// Builds a plan for `oomsim run --limit ... -- CMD`: one pod running a program.
pub fn command_plan(
    argv: Vec<String>,
    limit: Option<u64>,
    request: Option<u64>,
    timeout: Duration,
) -> Result<Plan, String> {
    let program = argv
        .first()
        .ok_or("no command given after --")?
        .rsplit('/')
        .next()
        .unwrap_or("cmd")
        .to_string();
    let name: String = program
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').to_string();
    let name = if name.is_empty() { "cmd".into() } else { name };
    if limit == Some(0) {
        return Err("--limit: a limit of zero bytes cannot run anything".into());
    }
    let request = request.or(limit);
    if let (Some(r), Some(l)) = (request, limit)
        && r > l
    {
        return Err(format!(
            "--request: {} is larger than --limit {}",
            units::fmt_quantity(r),
            units::fmt_quantity(l)
        ));
    }
    let description = format!("{} in one pod", argv.join(" "));
    let mut plan = single_pod_plan(
        &name,
        limit,
        request,
        timeout,
        vec![Phase::Command { argv, env: vec![] }],
    );
    plan.description = Some(description);
    Ok(plan)
}

/// A plan with one pod running `phases` (4 KiB pages, swap off, no expectation).
pub fn single_pod_plan(
    name: &str,
    limit: Option<u64>,
    request: Option<u64>,
    timeout: Duration,
    phases: Vec<Phase>,
) -> Plan {
    Plan {
        name: name.to_string(),
        description: None,
        sampling_hz: DEFAULT_SAMPLING_HZ,
        vars: vec![],
        formulas: vec![],
        search: None,
        gpu: None,
        node: None,
        pods: vec![PodPlan {
            qos: qos_class(request, limit, None, None),
            name: name.to_string(),
            priority: 0,
            request_bytes: request,
            limit_bytes: limit,
            swap: false,
            timeout_s: timeout.as_secs_f64(),
            workload: WorkloadSpec {
                pages: Pages::Small,
                phases,
            },
            expect: None,
            limit_field: "--limit".into(),
        }],
    }
}

/// QoS for a one-container pod, by the API server's rules: Guaranteed needs CPU
/// and memory limits equal to their requests; BestEffort has neither.
pub fn qos_class(
    mem_request: Option<u64>,
    mem_limit: Option<u64>,
    cpu_request: Option<u64>,
    cpu_limit: Option<u64>,
) -> Qos {
    let any = [mem_request, mem_limit, cpu_request, cpu_limit]
        .iter()
        .any(|v| v.is_some_and(|v| v > 0));
    if !any {
        return Qos::BestEffort;
    }
    let equal = |req: Option<u64>, lim: Option<u64>| lim.is_some() && req == lim;
    if equal(mem_request, mem_limit) && equal(cpu_request, cpu_limit) {
        Qos::Guaranteed
    } else {
        Qos::Burstable
    }
}

/// Kubernetes object names: lowercase letters, digits and '-', at most 63.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

struct Checker<'a> {
    path: &'a str,
    has_gpu: bool,
}

impl Checker<'_> {
    fn err(&self, at: &Location, field: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Field {
            path: self.path.to_string(),
            line: at.line(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn unit<T>(
        &self,
        text: &Text,
        field: &str,
        f: impl Fn(&str) -> Result<T, UnitError>,
    ) -> Result<T, ScenarioError> {
        f(&text.value).map_err(|e| self.err(&text.referenced, field, e.to_string()))
    }

    fn bytes(&self, text: &Option<Text>, field: &str) -> Result<Option<u64>, ScenarioError> {
        text.as_ref()
            .map(|t| self.unit(t, field, units::parse_bytes))
            .transpose()
    }

    fn seconds(&self, text: &Option<Text>, field: &str) -> Result<Option<f64>, ScenarioError> {
        text.as_ref()
            .map(|t| {
                self.unit(t, field, units::parse_duration)
                    .map(|d| d.as_secs_f64())
            })
            .transpose()
    }

    fn name(&self, text: &Text, field: &str) -> Result<String, ScenarioError> {
        if valid_name(&text.value) {
            Ok(text.value.clone())
        } else {
            Err(self.err(
                &text.referenced,
                field,
                format!(
                    "{:?} is not a valid name (lowercase letters, digits and '-', at most 63)",
                    text.value
                ),
            ))
        }
    }

    fn scenario(&self, raw: RawScenario) -> Result<Plan, ScenarioError> {
        let name = self.name(&raw.name, "name")?;
        let sampling_hz = match raw.sampling.and_then(|s| s.rate_hz) {
            Some(hz) if !(1..=10_000).contains(&hz.value) => {
                return Err(self.err(
                    &hz.referenced,
                    "sampling.rate_hz",
                    format!("{} is outside 1..=10000", hz.value),
                ));
            }
            Some(hz) => hz.value,
            None => DEFAULT_SAMPLING_HZ,
        };
        if raw.pods.value.is_empty() {
            return Err(self.err(&raw.pods.referenced, "pods", "at least one pod is needed"));
        }
        let mut pods: Vec<PodPlan> = Vec::with_capacity(raw.pods.value.len());
        for (i, pod) in raw.pods.value.iter().enumerate() {
            let plan = self.pod(pod, &format!("pods[{i}]"))?;
            if pods.iter().any(|p| p.name == plan.name) {
                return Err(self.err(
                    &pod.name.referenced,
                    &format!("pods[{i}].name"),
                    format!("pod {:?} is named twice", plan.name),
                ));
            }
            pods.push(plan);
        }
        let mut vars = Vec::new();
        for (k, v) in raw.vars.iter().flatten() {
            let milli = self.unit(v, &format!("vars.{k}"), |s| {
                units::parse_quantity_scaled(s, 3)
            })?;
            vars.push((k.clone(), milli as f64 / 1000.0));
        }
        let mut known: Vec<&str> = BUILTIN_VARS.to_vec();
        known.extend(vars.iter().map(|(k, _)| k.as_str()));
        let mut formulas = Vec::new();
        for (k, v) in raw.formulas.iter().flatten() {
            let expr = Expr::parse(&v.value, &known)
                .map_err(|e| self.err(&v.referenced, &format!("formulas.{k}"), e))?;
            formulas.push((k.clone(), expr));
        }
        let search = raw
            .search
            .as_ref()
            .map(|s| self.search(s, &pods))
            .transpose()?;
        let gpu = raw.gpu.as_ref().map(|g| self.gpu(g)).transpose()?;
        let node = raw.node.as_ref().map(|n| self.node(n)).transpose()?;
        Ok(Plan {
            name,
            description: raw.description,
            sampling_hz,
            pods,
            vars,
            formulas,
            search,
            gpu,
            node,
        })
    }

    fn node(&self, n: &raw::RawNode) -> Result<crate::node::NodeSpec, ScenarioError> {
        use crate::node::{NodeSpec, Threshold};
        let capacity_bytes = self.unit(&n.capacity, "node.capacity", units::parse_bytes)?;
        if capacity_bytes == 0 {
            return Err(self.err(
                &n.capacity.referenced,
                "node.capacity",
                "must be more than zero",
            ));
        }
        fn memory_available<'t>(
            c: &Checker,
            m: &'t Option<std::collections::BTreeMap<String, Text>>,
            f: &str,
        ) -> Result<Option<&'t Text>, ScenarioError> {
            let Some(m) = m else {
                return Ok(None);
            };
            let mut found = None;
            for (k, v) in m {
                if k != "memory.available" {
                    return Err(c.err(
                        &v.referenced,
                        &format!("node.{f}.{k}"),
                        "oomsim models memory.available only",
                    ));
                }
                found = Some(v);
            }
            Ok(found)
        }
        let signal = |m, f| memory_available(self, m, f);
        let threshold = |t: &Text, f: &str| {
            Threshold::parse(&t.value).map_err(|e| self.err(&t.referenced, f, e))
        };
        let hard = match signal(&n.eviction_hard, "evictionHard")? {
            Some(t) => threshold(t, "node.evictionHard.memory.available")?,
            None => Threshold::Bytes(100 << 20),
        };
        let soft = match signal(&n.eviction_soft, "evictionSoft")? {
            Some(t) => {
                let th = threshold(t, "node.evictionSoft.memory.available")?;
                let grace = signal(&n.eviction_soft_grace_period, "evictionSoftGracePeriod")?
                    .ok_or_else(|| {
                        self.err(
                            &t.referenced,
                            "node.evictionSoftGracePeriod",
                            "a soft threshold needs a grace period (memory.available: 30s)",
                        )
                    })?;
                let g = self.unit(
                    grace,
                    "node.evictionSoftGracePeriod.memory.available",
                    units::parse_duration,
                )?;
                Some((th, g.as_secs_f64()))
            }
            None => None,
        };
        let housekeeping_s = self
            .seconds(&n.housekeeping, "node.housekeeping")?
            .unwrap_or(10.0);
        if housekeeping_s <= 0.0 {
            let loc = n
                .housekeeping
                .as_ref()
                .map_or(Location::UNKNOWN, |t| t.referenced);
            return Err(self.err(&loc, "node.housekeeping", "must be more than zero"));
        }
        Ok(NodeSpec {
            capacity_bytes,
            hard,
            soft,
            housekeeping_s,
        })
    }

    fn gpu(&self, g: &RawGpu) -> Result<crate::gpu::GpuSpec, ScenarioError> {
        use crate::gpu::BackendChoice;
        let backend = match g.backend.as_ref() {
            None => BackendChoice::Auto,
            Some(t) => match t.value.as_str() {
                "auto" => BackendChoice::Auto,
                "cuda" => BackendChoice::Cuda,
                "sim" => BackendChoice::Sim,
                other => {
                    return Err(self.err(
                        &t.referenced,
                        "gpu.backend",
                        format!("{other:?} is not a backend (auto, cuda, sim)"),
                    ));
                }
            },
        };
        let memory_bytes = match &g.memory {
            Some(t) => {
                let b = self.unit(t, "gpu.memory", units::parse_bytes)?;
                if b == 0 {
                    return Err(self.err(&t.referenced, "gpu.memory", "must be more than zero"));
                }
                b
            }
            None => DEFAULT_SIM_GPU_MEMORY,
        };
        Ok(crate::gpu::GpuSpec {
            backend,
            device: g.device.as_ref().map_or(0, |d| d.value),
            memory_bytes,
        })
    }

    fn search(&self, s: &RawSearch, pods: &[PodPlan]) -> Result<SearchSpec, ScenarioError> {
        if !pods.iter().any(|p| p.name == s.pod.value) {
            return Err(self.err(
                &s.pod.referenced,
                "search.pod",
                format!("no pod named {:?}", s.pod.value),
            ));
        }
        let range = s
            .range
            .as_ref()
            .map(|r| {
                units::parse_range(&r.value).map_err(|e| self.err(&r.referenced, "search.range", e))
            })
            .transpose()?;
        let repeat = match &s.repeat {
            Some(r) if r.value == 0 => {
                return Err(self.err(&r.referenced, "search.repeat", "must be at least 1"));
            }
            Some(r) => r.value,
            None => DEFAULT_SEARCH_REPEAT,
        };
        let mut strategies = Vec::new();
        if let Some(list) = &s.strategies {
            let loads = pods
                .iter()
                .find(|p| p.name == s.pod.value)
                .is_some_and(|p| {
                    p.workload
                        .phases
                        .iter()
                        .any(|ph| matches!(ph, Phase::ModelLoad(_)))
                });
            if !loads {
                return Err(self.err(
                    &list.referenced,
                    "search.strategies",
                    format!("pod {:?} has no model-load workload", s.pod.value),
                ));
            }
            for t in &list.value {
                let st = LoadStrategy::parse(&t.value).ok_or_else(|| {
                    self.err(
                        &t.referenced,
                        "search.strategies",
                        format!(
                            "{:?} is not a loading strategy (read-then-copy, chunked, mmap)",
                            t.value
                        ),
                    )
                })?;
                strategies.push(st);
            }
        }
        Ok(SearchSpec {
            pod: s.pod.value.clone(),
            range,
            precision_bytes: self.bytes(&s.precision, "search.precision")?,
            repeat,
            strategies,
        })
    }

    fn pod(&self, pod: &RawPod, at: &str) -> Result<PodPlan, ScenarioError> {
        let name = self.name(&pod.name, &format!("{at}.name"))?;
        let empty = RawResourceList {
            memory: None,
            cpu: None,
        };
        let (requests, limits) = match &pod.resources {
            Some(r) => (
                r.requests.as_ref().unwrap_or(&empty),
                r.limits.as_ref().unwrap_or(&empty),
            ),
            None => (&empty, &empty),
        };
        let req_field = format!("{at}.resources.requests.memory");
        let lim_field = format!("{at}.resources.limits.memory");
        let mem_limit = self.bytes(&limits.memory, &lim_field)?;
        let mem_request = self.bytes(&requests.memory, &req_field)?;
        let cpu = |list: &RawResourceList, which: &str| {
            list.cpu
                .as_ref()
                .map(|t| {
                    self.unit(t, &format!("{at}.resources.{which}.cpu"), |s| {
                        units::parse_quantity_scaled(s, 3)
                    })
                })
                .transpose()
        };
        let cpu_limit = cpu(limits, "limits")?;
        let cpu_request = cpu(requests, "requests")?.or(cpu_limit);
        if let (Some(0), Some(t)) = (mem_limit, &limits.memory) {
            return Err(self.err(
                &t.referenced,
                &lim_field,
                "a limit of zero bytes cannot run anything; leave it out for no limit",
            ));
        }
        // The API server defaults a missing request to the limit.
        let mem_request = mem_request.or(mem_limit);
        if let (Some(r), Some(l), Some(t)) = (mem_request, mem_limit, &requests.memory)
            && r > l
        {
            return Err(self.err(
                &t.referenced,
                &req_field,
                format!(
                    "request {} must be less than or equal to the memory limit {}",
                    t.value,
                    units::fmt_quantity(l)
                ),
            ));
        }
        let pages = match pod.pages.as_ref() {
            None => Pages::Small,
            Some(t) if t.value == "4k" => Pages::Small,
            Some(t) if t.value == "huge" => Pages::Huge,
            Some(t) => {
                return Err(self.err(
                    &t.referenced,
                    &format!("{at}.pages"),
                    format!("{:?} is not a page size (4k or huge)", t.value),
                ));
            }
        };
        let phases = match (&pod.workload, &pod.phases) {
            (Some(w), None) => vec![self.phase(w, &format!("{at}.workload"))?],
            (None, Some(list)) if !list.value.is_empty() => list
                .value
                .iter()
                .enumerate()
                .map(|(i, w)| self.phase(w, &format!("{at}.phases[{i}]")))
                .collect::<Result<_, _>>()?,
            (None, Some(list)) => {
                return Err(self.err(&list.referenced, &format!("{at}.phases"), "no phases"));
            }
            (Some(_), Some(list)) => {
                return Err(self.err(
                    &list.referenced,
                    &format!("{at}.phases"),
                    "give either workload or phases, not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    &pod.name.referenced,
                    &format!("{at}.workload"),
                    "the pod has no workload (give workload or phases)",
                ));
            }
        };
        let timeout_s = self
            .seconds(&pod.timeout, &format!("{at}.timeout"))?
            .unwrap_or(DEFAULT_POD_TIMEOUT.as_secs_f64());
        if timeout_s <= 0.0 {
            let t = pod
                .timeout
                .as_ref()
                .map_or(Location::UNKNOWN, |t| t.referenced);
            return Err(self.err(&t, &format!("{at}.timeout"), "must be more than zero"));
        }
        Ok(PodPlan {
            qos: qos_class(mem_request, mem_limit, cpu_request, cpu_limit),
            name,
            priority: pod.priority.unwrap_or(0),
            request_bytes: mem_request,
            limit_bytes: mem_limit,
            swap: pod.swap.unwrap_or(false),
            timeout_s,
            workload: WorkloadSpec { pages, phases },
            expect: pod
                .expect
                .as_ref()
                .map(|e| self.expect(e, &format!("{at}.expect")))
                .transpose()?,
            limit_field: lim_field,
        })
    }

    fn expect(&self, e: &RawExpect, at: &str) -> Result<Expect, ScenarioError> {
        const REASONS: [&str; 5] = ["OOMKilled", "Error", "Completed", "Evicted", "StartError"];
        if let Some(r) = &e.reason
            && !REASONS.contains(&r.value.as_str())
        {
            return Err(self.err(
                &r.referenced,
                &format!("{at}.reason"),
                format!(
                    "{:?} is not a reason (one of {})",
                    r.value,
                    REASONS.join(", ")
                ),
            ));
        }
        Ok(Expect {
            reason: e.reason.as_ref().map(|r| r.value.clone()),
            exit_code: e.exit_code,
            within_s: self.seconds(&e.within, &format!("{at}.within"))?,
        })
    }

    fn phase(&self, w: &RawWorkload, at: &str) -> Result<Phase, ScenarioError> {
        let kind = w.kind.value.as_str();
        let present: Vec<(&str, Option<Location>)> = vec![
            ("baseline", w.baseline.as_ref().map(|t| t.referenced)),
            ("rate", w.rate.as_ref().map(|t| t.referenced)),
            ("cap", w.cap.as_ref().map(|t| t.referenced)),
            ("duration", w.duration.as_ref().map(|t| t.referenced)),
            ("size", w.size.as_ref().map(|t| t.referenced)),
            ("spike", w.spike.as_ref().map(|t| t.referenced)),
            ("period", w.period.as_ref().map(|t| t.referenced)),
            ("hold", w.hold.as_ref().map(|t| t.referenced)),
            ("count", w.count.as_ref().map(|t| t.referenced)),
            ("command", w.command.as_ref().map(|t| t.referenced)),
            ("env", w.env.as_ref().map(|t| t.referenced)),
            ("model", w.model.as_ref().map(|t| t.referenced)),
            ("dtype", w.dtype.as_ref().map(|t| t.referenced)),
            ("strategy", w.strategy.as_ref().map(|t| t.referenced)),
            ("keep_host", w.keep_host.as_ref().map(|t| t.referenced)),
            ("chunk", w.chunk.as_ref().map(|t| t.referenced)),
            ("pinned", w.pinned.as_ref().map(|t| t.referenced)),
            ("source", w.source.as_ref().map(|t| t.referenced)),
            ("file", w.file.as_ref().map(|t| t.referenced)),
            ("overhead", w.overhead.as_ref().map(|t| t.referenced)),
            ("mode", w.mode.as_ref().map(|t| t.referenced)),
            (
                "gpu_memory_utilization",
                w.gpu_memory_utilization.as_ref().map(|t| t.referenced),
            ),
            (
                "max_num_seqs",
                w.max_num_seqs.as_ref().map(|t| t.referenced),
            ),
            (
                "max_model_len",
                w.max_model_len.as_ref().map(|t| t.referenced),
            ),
            (
                "kv_cache_dtype",
                w.kv_cache_dtype.as_ref().map(|t| t.referenced),
            ),
            (
                "kv_cache_memory",
                w.kv_cache_memory.as_ref().map(|t| t.referenced),
            ),
            ("weights", w.weights.as_ref().map(|t| t.referenced)),
            ("activation", w.activation.as_ref().map(|t| t.referenced)),
            ("prompt", w.prompt.as_ref().map(|t| t.referenced)),
            ("output", w.output.as_ref().map(|t| t.referenced)),
            ("concurrency", w.concurrency.as_ref().map(|t| t.referenced)),
            ("ramp", w.ramp.as_ref().map(|t| t.referenced)),
            ("step", w.step.as_ref().map(|t| t.referenced)),
            ("logits", w.logits.as_ref().map(|t| t.referenced)),
        ];
        let allowed: &[&str] = match kind {
            "leak" => &["baseline", "rate", "cap", "duration"],
            "burst" => &["baseline", "spike", "period", "hold", "count", "duration"],
            "steady" => &["size", "duration"],
            "command" => &["command", "env"],
            "model-load" => &[
                "size",
                "model",
                "dtype",
                "strategy",
                "keep_host",
                "chunk",
                "pinned",
                "source",
                "file",
                "overhead",
                "hold",
            ],
            "kv-cache" => &[
                "model",
                "dtype",
                "mode",
                "gpu_memory_utilization",
                "max_num_seqs",
                "max_model_len",
                "kv_cache_dtype",
                "kv_cache_memory",
                "weights",
                "activation",
                "prompt",
                "output",
                "concurrency",
                "ramp",
                "step",
                "duration",
                "logits",
            ],
            _ => {
                return Err(self.err(
                    &w.kind.referenced,
                    &format!("{at}.kind"),
                    format!(
                        "{kind:?} is not a workload kind (leak, burst, steady, command, model-load, kv-cache)"
                    ),
                ));
            }
        };
        for (field, loc) in &present {
            if let Some(loc) = loc
                && !allowed.contains(field)
            {
                return Err(self.err(
                    loc,
                    &format!("{at}.{field}"),
                    format!(
                        "not a field of a {kind} workload (it takes {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let field = |f: &str| format!("{at}.{f}");
        let missing = |f: &str| {
            self.err(
                &w.kind.referenced,
                &field(f),
                format!("a {kind} workload needs {f}"),
            )
        };
        let baseline_bytes = self.bytes(&w.baseline, &field("baseline"))?.unwrap_or(0);
        let duration_s = self.seconds(&w.duration, &field("duration"))?;
        Ok(match kind {
            "leak" => {
                let rate = w.rate.as_ref().ok_or_else(|| missing("rate"))?;
                let rate_bytes_per_s = if rate.value == "max" {
                    None
                } else {
                    let per_s = rate.value.strip_suffix("/s").unwrap_or(&rate.value);
                    let bytes = self.unit(rate, &field("rate"), |_| units::parse_bytes(per_s))?;
                    if bytes == 0 {
                        return Err(self.err(
                            &rate.referenced,
                            &field("rate"),
                            "must be more than zero (or max)",
                        ));
                    }
                    Some(bytes)
                };
                Phase::Leak {
                    baseline_bytes,
                    rate_bytes_per_s,
                    cap_bytes: self.bytes(&w.cap, &field("cap"))?,
                    duration_s,
                }
            }
            "burst" => {
                let spike_bytes = self
                    .bytes(&w.spike, &field("spike"))?
                    .ok_or_else(|| missing("spike"))?;
                let period_s = self
                    .seconds(&w.period, &field("period"))?
                    .ok_or_else(|| missing("period"))?;
                let hold_s = self
                    .seconds(&w.hold, &field("hold"))?
                    .ok_or_else(|| missing("hold"))?;
                if hold_s >= period_s {
                    let loc = w.hold.as_ref().map_or(Location::UNKNOWN, |t| t.referenced);
                    return Err(self.err(&loc, &field("hold"), "must be shorter than period"));
                }
                let count = w.count.as_ref().map(|c| c.value);
                if count.is_none() && duration_s.is_none() {
                    return Err(missing("count or duration"));
                }
                Phase::Burst {
                    baseline_bytes,
                    spike_bytes,
                    period_s,
                    hold_s,
                    count,
                    duration_s,
                }
            }
            "steady" => Phase::Steady {
                size_bytes: self
                    .bytes(&w.size, &field("size"))?
                    .ok_or_else(|| missing("size"))?,
                duration_s: duration_s.ok_or_else(|| missing("duration"))?,
            },
            "model-load" => Phase::ModelLoad(self.model_load(w, at)?),
            "kv-cache" => Phase::KvCache(Box::new(self.kv_cache(w, at)?)),
            _ => {
                let command = w.command.as_ref().ok_or_else(|| missing("command"))?;
                if command.value.is_empty() || command.value[0].is_empty() {
                    return Err(self.err(
                        &command.referenced,
                        &field("command"),
                        "the command is empty",
                    ));
                }
                Phase::Command {
                    argv: command.value.clone(),
                    env: w
                        .env
                        .as_ref()
                        .map(|e: &Spanned<_>| e.value.clone().into_iter().collect())
                        .unwrap_or_default(),
                }
            }
        })
    }
}

impl Checker<'_> {
    fn model_load(&self, w: &RawWorkload, at: &str) -> Result<ModelLoad, ScenarioError> {
        let field = |f: &str| format!("{at}.{f}");
        if !self.has_gpu {
            return Err(self.err(
                &w.kind.referenced,
                &field("kind"),
                "a model-load workload needs a gpu: block (backend: auto, cuda or sim)",
            ));
        }
        let size_bytes = match (&w.size, &w.model) {
            (Some(_), None) => {
                if let Some(d) = &w.dtype {
                    return Err(self.err(
                        &d.referenced,
                        &field("dtype"),
                        "dtype goes with model (a config.json); size is already in bytes",
                    ));
                }
                self.bytes(&w.size, &field("size"))?.unwrap_or(0)
            }
            (None, Some(m)) => self.model_bytes(m, w.dtype.as_ref(), at)?,
            (Some(s), Some(_)) => {
                return Err(self.err(
                    &s.referenced,
                    &field("size"),
                    "give size or model (a config.json), not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    &w.kind.referenced,
                    &field("size"),
                    "a model-load workload needs size (e.g. 14Gi) or model (a config.json)",
                ));
            }
        };
        if size_bytes == 0 {
            let loc = w.size.as_ref().map_or(w.kind.referenced, |t| t.referenced);
            return Err(self.err(&loc, &field("size"), "must be more than zero"));
        }
        let strategy = match &w.strategy {
            None => LoadStrategy::ReadThenCopy,
            Some(t) => LoadStrategy::parse(&t.value).ok_or_else(|| {
                self.err(
                    &t.referenced,
                    &field("strategy"),
                    format!(
                        "{:?} is not a loading strategy (read-then-copy, chunked, mmap)",
                        t.value
                    ),
                )
            })?,
        };
        let synthetic = match w.source.as_ref() {
            None => false,
            Some(t) if t.value == "file" => false,
            Some(t) if t.value == "synthetic" => true,
            Some(t) => {
                return Err(self.err(
                    &t.referenced,
                    &field("source"),
                    format!("{:?} is not a source (file or synthetic)", t.value),
                ));
            }
        };
        if synthetic && let Some(f) = &w.file {
            return Err(self.err(
                &f.referenced,
                &field("file"),
                "a synthetic source has no file",
            ));
        }
        if synthetic && strategy == LoadStrategy::Mmap {
            let loc = w
                .source
                .as_ref()
                .map_or(w.kind.referenced, |t| t.referenced);
            return Err(self.err(
                &loc,
                &field("source"),
                "the mmap strategy maps a file; use source: file",
            ));
        }
        if let Some(p) = &w.pinned
            && strategy != LoadStrategy::Chunked
        {
            return Err(self.err(
                &p.referenced,
                &field("pinned"),
                "only the chunked strategy has a buffer to pin",
            ));
        }
        if let Some(k) = &w.keep_host
            && strategy != LoadStrategy::ReadThenCopy
        {
            return Err(self.err(
                &k.referenced,
                &field("keep_host"),
                "only read-then-copy holds a whole host copy",
            ));
        }
        let chunk_bytes = self
            .bytes(&w.chunk, &field("chunk"))?
            .unwrap_or(DEFAULT_LOAD_CHUNK);
        if chunk_bytes < 4096 {
            let loc = w.chunk.as_ref().map_or(w.kind.referenced, |t| t.referenced);
            return Err(self.err(&loc, &field("chunk"), "must be at least 4Ki"));
        }
        let file = if synthetic {
            None
        } else {
            Some(match &w.file {
                Some(f) => self.relative(&f.value),
                None => default_model_file(size_bytes),
            })
        };
        Ok(ModelLoad {
            size_bytes,
            strategy,
            keep_host: w.keep_host.as_ref().is_some_and(|k| k.value),
            chunk_bytes,
            pinned: w.pinned.as_ref().is_some_and(|p| p.value),
            file,
            overhead_bytes: self.bytes(&w.overhead, &field("overhead"))?.unwrap_or(0),
            hold_s: self.seconds(&w.hold, &field("hold"))?.unwrap_or(0.0),
        })
    }

    fn kv_cache(&self, w: &RawWorkload, at: &str) -> Result<KvCache, ScenarioError> {
        use crate::model::{Dtype, ModelConfig};
        let field = |f: &str| format!("{at}.{f}");
        if !self.has_gpu {
            return Err(self.err(
                &w.kind.referenced,
                &field("kind"),
                "a kv-cache workload needs a gpu: block (backend: auto, cuda or sim)",
            ));
        }
        let m = w.model.as_ref().ok_or_else(|| {
            self.err(
                &w.kind.referenced,
                &field("model"),
                "a kv-cache workload needs model (a Hugging Face config.json)",
            )
        })?;
        let cfg = ModelConfig::load(&self.relative(&m.value))
            .map_err(|e| self.err(&m.referenced, &field("model"), e))?;
        let dtype_of = |t: &Option<Text>, f: &str| {
            t.as_ref()
                .map(|d| Dtype::parse(&d.value).map_err(|e| self.err(&d.referenced, &field(f), e)))
                .transpose()
        };
        let dtype = match dtype_of(&w.dtype, "dtype")? {
            Some(d) => d,
            None => cfg.dtype().ok_or_else(|| {
                self.err(
                    &m.referenced,
                    &field("dtype"),
                    "the config names no torch_dtype oomsim knows; give dtype",
                )
            })?,
        };
        let mode = match w.mode.as_ref() {
            Some(t) if t.value == "paged" => KvMode::Paged,
            Some(t) if t.value == "dynamic" => KvMode::Dynamic,
            Some(t) => {
                return Err(self.err(
                    &t.referenced,
                    &field("mode"),
                    format!("{:?} is not a mode (paged or dynamic)", t.value),
                ));
            }
            None => {
                return Err(self.err(
                    &w.kind.referenced,
                    &field("mode"),
                    "a kv-cache workload needs mode (paged or dynamic)",
                ));
            }
        };
        let mut v = crate::vllm::Inputs::new(cfg, dtype, 0);
        v.kv_dtype = dtype_of(&w.kv_cache_dtype, "kv_cache_dtype")?.unwrap_or(dtype);
        if let Some(u) = &w.gpu_memory_utilization {
            if !(u.value > 0.0 && u.value <= 1.0) {
                return Err(self.err(
                    &u.referenced,
                    &field("gpu_memory_utilization"),
                    format!("{} is outside (0, 1]", u.value),
                ));
            }
            v.utilization = u.value;
        }
        let positive = |x: &Option<Spanned<u64>>, f: &str| -> Result<Option<u64>, ScenarioError> {
            match x {
                Some(n) if n.value == 0 => {
                    Err(self.err(&n.referenced, &field(f), "must be more than zero"))
                }
                Some(n) => Ok(Some(n.value)),
                None => Ok(None),
            }
        };
        if let Some(n) = positive(&w.max_num_seqs, "max_num_seqs")? {
            v.max_num_seqs = n;
        }
        if let Some(n) = positive(&w.max_model_len, "max_model_len")? {
            v.max_model_len = n;
        }
        v.kv_cache_memory = self.bytes(&w.kv_cache_memory, &field("kv_cache_memory"))?;
        v.weights = self.bytes(&w.weights, &field("weights"))?;
        v.activation = self.bytes(&w.activation, &field("activation"))?;
        let prompt_tokens = positive(&w.prompt, "prompt")?.unwrap_or(512);
        let output_tokens = positive(&w.output, "output")?.unwrap_or(512);
        if prompt_tokens + output_tokens > v.max_model_len {
            let loc = w
                .prompt
                .as_ref()
                .map_or(w.kind.referenced, |t| t.referenced);
            return Err(self.err(
                &loc,
                &field("prompt"),
                format!(
                    "prompt + output ({}) is longer than max_model_len {}",
                    prompt_tokens + output_tokens,
                    v.max_model_len
                ),
            ));
        }
        let concurrency = positive(&w.concurrency, "concurrency")?.unwrap_or(v.max_num_seqs);
        let step_s = self.seconds(&w.step, &field("step"))?.unwrap_or(0.005);
        if step_s <= 0.0 {
            let loc = w.step.as_ref().map_or(w.kind.referenced, |t| t.referenced);
            return Err(self.err(&loc, &field("step"), "must be more than zero"));
        }
        Ok(KvCache {
            mode,
            vllm: v,
            prompt_tokens,
            output_tokens,
            concurrency,
            ramp_s: self.seconds(&w.ramp, &field("ramp"))?.unwrap_or(10.0),
            step_s,
            duration_s: self
                .seconds(&w.duration, &field("duration"))?
                .unwrap_or(30.0),
            logits: w.logits.as_ref().is_some_and(|l| l.value),
        })
    }

    /// A path in the scenario, relative to the scenario's own folder.
    fn relative(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            Path::new(self.path)
                .parent()
                .unwrap_or(Path::new("."))
                .join(p)
        }
    }

    /// Weight bytes of a config.json at a dtype (the config's own by default).
    fn model_bytes(&self, m: &Text, dtype: Option<&Text>, at: &str) -> Result<u64, ScenarioError> {
        let cfg = crate::model::ModelConfig::load(&self.relative(&m.value))
            .map_err(|e| self.err(&m.referenced, &format!("{at}.model"), e))?;
        let dtype = match dtype {
            Some(d) => crate::model::Dtype::parse(&d.value)
                .map_err(|e| self.err(&d.referenced, &format!("{at}.dtype"), e))?,
            None => cfg.dtype().ok_or_else(|| {
                self.err(
                    &m.referenced,
                    &format!("{at}.dtype"),
                    "the config names no torch_dtype oomsim knows; give dtype",
                )
            })?,
        };
        Ok(cfg.weight_bytes(dtype))
    }
}

/// Where a scenario's report goes unless `--out` says otherwise.
pub fn default_out_dir(plan: &Plan) -> PathBuf {
    PathBuf::from("reports").join(&plan.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<Plan, String> {
        parse(yaml, "t.yaml").map_err(|e| e.to_string())
    }

    const LEAK: &str = "name: leak\npods:\n  - name: app\n    resources:\n      limits: {memory: 64Mi}\n    workload:\n      kind: leak\n      rate: 32Mi/s\n    expect: {reason: OOMKilled, within: 30s}\n";

    #[test]
    fn valid_leak() {
        let plan = check(LEAK).unwrap();
        let pod = &plan.pods[0];
        assert_eq!(pod.limit_bytes, Some(64 << 20));
        assert_eq!(
            pod.request_bytes,
            Some(64 << 20),
            "request defaults to the limit"
        );
        assert_eq!(pod.qos, Qos::Burstable, "no CPU limit: not Guaranteed");
        assert_eq!(
            pod.workload.phases[0],
            Phase::Leak {
                baseline_bytes: 0,
                rate_bytes_per_s: Some(32 << 20),
                cap_bytes: None,
                duration_s: None
            }
        );
        assert_eq!(pod.expect.as_ref().unwrap().within_s, Some(30.0));
    }

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(None, None, None, None), Qos::BestEffort);
        assert_eq!(
            qos_class(Some(1), Some(1), Some(100), Some(100)),
            Qos::Guaranteed
        );
        assert_eq!(
            qos_class(Some(1), Some(2), Some(100), Some(100)),
            Qos::Burstable
        );
        assert_eq!(qos_class(Some(1), None, None, None), Qos::Burstable);
        let g = "name: g\npods:\n  - name: a\n    resources:\n      limits: {memory: 1Gi, cpu: 500m}\n    workload: {kind: steady, size: 1Mi, duration: 1s}\n";
        assert_eq!(check(g).unwrap().pods[0].qos, Qos::Guaranteed);
    }

    #[test]
    fn errors_name_line_and_field() {
        let bad_q = LEAK.replace("64Mi", "12Qi");
        let e = check(&bad_q).unwrap_err();
        assert!(
            e.starts_with("t.yaml:5: pods[0].resources.limits.memory:"),
            "{e}"
        );
        assert!(e.contains("\"Qi\""), "{e}");

        let e = check(&LEAK.replace("64Mi", "-5Mi")).unwrap_err();
        assert!(e.contains("negative") && e.contains("limits.memory"), "{e}");

        let e = check(&LEAK.replace("64Mi", "0")).unwrap_err();
        assert!(e.contains("zero") && e.contains(":5:"), "{e}");

        let e = check(&LEAK.replace("64Mi", "99999Ei")).unwrap_err();
        assert!(e.contains("too large"), "{e}");

        let e = check(&LEAK.replace("rate: 32Mi/s", "rate: 32Mi/s\n      size: 4Mi")).unwrap_err();
        assert!(
            e.starts_with("t.yaml:9: pods[0].workload.size: not a field of a leak"),
            "{e}"
        );

        let e = check(&LEAK.replace("kind: leak", "kind: lek")).unwrap_err();
        assert!(
            e.contains("pods[0].workload.kind") && e.contains("\"lek\""),
            "{e}"
        );

        let e = check(&LEAK.replace("    expect", "    colour: red\n    expect")).unwrap_err();
        assert!(
            e.starts_with("t.yaml:") && e.contains("unknown field `colour`"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");

        let e = check(&LEAK.replace("  - name", "\t- name")).unwrap_err();
        assert!(e.contains("tab"), "{e}");
        assert_eq!(e.lines().count(), 1);

        let e = check("  \n").unwrap_err();
        assert!(e.contains("empty"), "{e}");

        let e = check(&LEAK.replace("OOMKilled", "OOMKiled")).unwrap_err();
        assert!(e.contains("expect.reason"), "{e}");

        let e = check(&LEAK.replace(
            "limits: {memory: 64Mi}",
            "limits: {memory: 64Mi}\n      requests: {memory: 1Gi}",
        ))
        .unwrap_err();
        assert!(
            e.contains("requests.memory") && e.contains("less than or equal"),
            "{e}"
        );
    }

    #[test]
    fn vars_formulas_and_search() {
        let y = format!(
            "{LEAK}vars: {{model: 14Gi}}\nformulas: {{mine: \"model * 1.5 + 4Gi\"}}\nsearch: {{pod: app, range: 64Mi..1Gi, repeat: 2}}\n"
        );
        let plan = check(&y).unwrap();
        assert_eq!(
            plan.vars,
            vec![("model".to_string(), 14.0 * (1u64 << 30) as f64)]
        );
        assert_eq!(plan.formulas[0].0, "mine");
        let s = plan.search.unwrap();
        assert_eq!(
            (s.pod.as_str(), s.range, s.repeat),
            ("app", Some((64 << 20, 1 << 30)), 2)
        );
        let e = check(&y.replace("model * 1.5", "modle * 1.5")).unwrap_err();
        assert!(
            e.contains(":11: formulas.mine: unknown name \"modle\""),
            "{e}"
        );
        let e = check(&y.replace("pod: app", "pod: ap")).unwrap_err();
        assert!(e.contains("search.pod"), "{e}");
        let e = check(&y.replace("64Mi..1Gi", "1Gi..64Mi")).unwrap_err();
        assert!(e.contains("search.range"), "{e}");
    }

    #[test]
    fn burst_and_phases() {
        let y = "name: b\npods:\n  - name: a\n    pages: huge\n    phases:\n      - {kind: steady, size: 8Mi, duration: 100ms}\n      - {kind: burst, baseline: 8Mi, spike: 32Mi, period: 1s, hold: 200ms, count: 3}\n";
        let plan = check(y).unwrap();
        assert_eq!(plan.pods[0].workload.pages, Pages::Huge);
        assert_eq!(plan.pods[0].qos, Qos::BestEffort);
        assert_eq!(plan.pods[0].workload.phases.len(), 2);
        let e = check(&y.replace("hold: 200ms", "hold: 2s")).unwrap_err();
        assert!(e.contains("phases[1].hold"), "{e}");
        let e = check(&y.replace(", count: 3", "")).unwrap_err();
        assert!(e.contains("count or duration"), "{e}");
    }

    #[test]
    fn command_plan_names_pod_after_program() {
        let plan = command_plan(
            vec!["/usr/bin/python3".into(), "-c".into(), "pass".into()],
            Some(512 << 20),
            None,
            DEFAULT_POD_TIMEOUT,
        )
        .unwrap();
        assert_eq!(plan.pods[0].name, "python3");
        assert_eq!(plan.pods[0].request_bytes, Some(512 << 20));
        assert!(command_plan(vec!["x".into()], Some(0), None, DEFAULT_POD_TIMEOUT).is_err());
        assert!(command_plan(vec!["x".into()], Some(1), Some(2), DEFAULT_POD_TIMEOUT).is_err());
    }

    #[test]
    fn gpu_node_and_new_workloads_name_their_field() {
        let e = check("name: x\npods:\n- name: a\n  workload: {kind: model-load, size: 1Gi}\n")
            .unwrap_err();
        assert!(
            e.contains("pods[0].workload.kind: a model-load workload needs a gpu: block"),
            "{e}"
        );
        let e = check("name: x\ngpu: {backend: sim}\npods:\n- name: a\n  workload: {kind: model-load, size: 1Gi, source: synthetic, strategy: mmap}\n").unwrap_err();
        assert!(e.contains("source: the mmap strategy maps a file"), "{e}");
        let e = check("name: x\ngpu: {backend: rocm}\npods:\n- name: a\n  workload: {kind: steady, size: 1Mi, duration: 1s}\n").unwrap_err();
        assert!(e.contains("gpu.backend: \"rocm\" is not a backend"), "{e}");
        let e = check("name: x\nnode: {capacity: 1Gi, evictionHard: {memory.available: 150%}}\npods:\n- name: a\n  workload: {kind: steady, size: 1Mi, duration: 1s}\n").unwrap_err();
        assert!(e.contains("node.evictionHard.memory.available"), "{e}");
        let e = check("name: x\nnode: {capacity: 1Gi, evictionSoft: {memory.available: 200Mi}}\npods:\n- name: a\n  workload: {kind: steady, size: 1Mi, duration: 1s}\n").unwrap_err();
        assert!(e.contains("needs a grace period"), "{e}");
        let p = check("name: x\ngpu: {backend: sim, memory: 2Gi}\npods:\n- name: a\n  workload: {kind: model-load, size: 1Gi, strategy: chunked, chunk: 64Mi, pinned: true, source: synthetic}\n").unwrap();
        assert_eq!(p.gpu.as_ref().unwrap().memory_bytes, 2 << 30);
        let Phase::ModelLoad(m) = &p.pods[0].workload.phases[0] else {
            panic!("a model-load phase");
        };
        assert_eq!(
            (m.strategy, m.chunk_bytes, m.pinned, m.file.is_none()),
            (LoadStrategy::Chunked, 64 << 20, true, true)
        );
        let p = check("name: x\nnode: {capacity: 6Gi}\npods:\n- name: a\n  workload: {kind: steady, size: 1Mi, duration: 1s}\n").unwrap();
        let n = p.node.unwrap();
        assert_eq!(
            (n.capacity_bytes, n.hard, n.housekeeping_s),
            (6 << 30, crate::node::Threshold::Bytes(100 << 20), 10.0)
        );
    }
}
