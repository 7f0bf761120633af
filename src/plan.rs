//! The checked plan: what a scenario file (or a command line) resolves to,
//! every quantity in bytes and every duration in seconds, nothing left to
//! validate. One struct per workload kind; the run, the search and the
//! workload child all read this and nothing rawer.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::gpu::GpuSpec;
use crate::k8s::{
    Container, ContainerKind, Pod, Qos, Reason, Resource, Resources, RestartPolicy, Threshold,
};
use crate::llm::vllm;
use crate::runtime::Runtime;
use crate::search::sizing::Expr;
use crate::template::{self, Bindings, TemplateError};

/// Default sampling rate of each pod's memory usage.
pub const DEFAULT_SAMPLING_HZ: u32 = 100;
/// Default time after which the harness kills a pod that has not ended.
pub const DEFAULT_POD_TIMEOUT: Duration = Duration::from_secs(300);
/// Default trials at the answer before it is called safe.
pub const DEFAULT_SEARCH_REPEAT: u32 = 3;
/// The sim device's capacity when the scenario does not give one (an 80 GB card).
pub const DEFAULT_SIM_GPU_MEMORY: u64 = 80 << 30;
/// Default copy chunk and chunked-strategy buffer.
pub const DEFAULT_LOAD_CHUNK: u64 = 256 << 20;
/// The kubelet's default hard eviction threshold, `memory.available<100Mi`.
pub const DEFAULT_EVICTION_HARD: u64 = 100 << 20;
/// The kubelet's housekeeping interval.
pub const DEFAULT_HOUSEKEEPING_S: f64 = 10.0;

/// Page size a workload touches its memory with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pages {
    #[default]
    #[serde(rename = "4k")]
    Small,
    Huge,
}

/// Hold `baseline_bytes`, then grow at `rate_bytes_per_s` (None: as fast as
/// pages can be touched) until `cap_bytes` or `duration_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leak {
    pub baseline_bytes: u64,
    pub rate_bytes_per_s: Option<u64>,
    pub cap_bytes: Option<u64>,
    pub duration_s: Option<f64>,
}

/// Hold `baseline_bytes`; every `period_s` add `spike_bytes` for `hold_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Burst {
    pub baseline_bytes: u64,
    pub spike_bytes: u64,
    pub period_s: f64,
    pub hold_s: f64,
    pub count: Option<u32>,
    pub duration_s: Option<f64>,
}

/// Hold `size_bytes` for `duration_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Steady {
    pub size_bytes: u64,
    pub duration_s: f64,
}

/// Run a program and end as it ends. Arguments and environment values may
/// hold `{EXPR:UNIT}` templates ([`crate::template`]), rendered for each run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The runtime it starts (`runtime:`, else read off the program's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
}

impl Program {
    /// A program whose runtime is read off its name.
    pub fn new(argv: Vec<String>, env: Vec<(String, String)>) -> Program {
        let runtime = Runtime::of_command(&argv);
        Program { argv, env, runtime }
    }

    /// The program with its templates evaluated for one run, and each
    /// templated argument (`-Xmx179m`) or variable (`GOMEMLIMIT=230MiB`) as rendered.
    pub fn rendered(&self, b: Bindings) -> Result<(Program, Vec<String>), TemplateError> {
        let mut flags = Vec::new();
        let mut render = |text: &str, shown: &dyn Fn(&str) -> String| {
            let out = template::render(text, b)?;
            if out != text {
                flags.push(shown(&out));
            }
            Ok::<_, TemplateError>(out)
        };
        let argv = self
            .argv
            .iter()
            .map(|a| render(a, &|r| r.to_string()))
            .collect::<Result<_, _>>()?;
        let env = self
            .env
            .iter()
            .map(|(k, v)| Ok((k.clone(), render(v, &|r| format!("{k}={r}"))?)))
            .collect::<Result<_, TemplateError>>()?;
        let program = Program {
            argv,
            env,
            runtime: self.runtime,
        };
        Ok((program, flags))
    }
}

/// One allocation pattern or program, run by the pod's child process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Phase {
    Leak(Leak),
    Burst(Burst),
    Steady(Steady),
    Command(Program),
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

impl KvMode {
    pub fn as_str(self) -> &'static str {
        match self {
            KvMode::Paged => "paged",
            KvMode::Dynamic => "dynamic",
        }
    }
}

/// The `kv-cache` workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvCache {
    pub mode: KvMode,
    /// The model and vLLM's settings; the device's capacity is read at start.
    pub vllm: vllm::Inputs,
    /// Given in the scenario; else vLLM's default for the device, read at start.
    pub max_num_seqs: Option<u64>,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    /// Concurrent requests reached at the end of the ramp.
    pub concurrency: u64,
    pub ramp_s: f64,
    /// One decode step: every running sequence grows by a token.
    pub step_s: f64,
    pub duration_s: f64,
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

/// What a workload child is handed: its phases and page size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    pub pages: Pages,
    pub phases: Vec<Phase>,
}

/// What the scenario expects of a pod; `run` exits 1 when it does not hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Expect {
    pub reason: Option<Reason>,
    pub exit_code: Option<i32>,
    pub within_s: Option<f64>,
}

/// One container of a pod: its resources, its workload and what is expected of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerPlan {
    pub name: String,
    pub kind: ContainerKind,
    /// Memory in bytes and CPU in millicores, requests defaulted from limits.
    pub resources: Resources,
    /// An image its command runs in (podman, placed in the container's cgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub workload: WorkloadSpec,
    pub expect: Option<Expect>,
    /// Where the limit was written, to name it when the host cannot give it.
    #[serde(skip)]
    pub limit_field: String,
    /// Its command's templated arguments and variables as a run rendered
    /// them (filled when the run starts).
    #[serde(skip)]
    pub flags: Vec<String>,
}

impl ContainerPlan {
    pub fn limit_bytes(&self) -> Option<u64> {
        self.resources.memory.limit
    }

    pub fn request_bytes(&self) -> Option<u64> {
        self.resources.memory.request
    }
}

/// The kubelet's restart back-off: 10 s, doubled after every restart up to
/// 5 min, started over once a container ran 10 min (pkg/kubelet/kubelet.go
/// `initialCrashLoopBackOff`, `MaxCrashLoopBackOff`, and the 600 s
/// `HasExpiredFunc`; client-go util/flowcontrol/backoff.go).
pub const BACKOFF_INITIAL_S: f64 = 10.0;
pub const BACKOFF_MAX_S: f64 = 300.0;
pub const BACKOFF_RESET_S: f64 = 600.0;

/// How a pod's containers are started again after they exit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Restart {
    pub policy: RestartPolicy,
    /// Multiplies the kubelet's back-off times (0.01: 100 ms, doubling to 3 s).
    pub backoff_scale: f64,
    /// Stop restarting a container after this many restarts (the kubelet never does).
    pub max_restarts: Option<u32>,
}

impl Default for Restart {
    /// A scenario pod runs once unless it says otherwise.
    fn default() -> Self {
        Restart {
            policy: RestartPolicy::Never,
            backoff_scale: 1.0,
            max_restarts: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PodPlan {
    pub name: String,
    pub qos: Qos,
    pub priority: i32,
    pub priority_class_name: Option<String>,
    /// Pod-level `spec.resources`, defaulted as the API server does.
    pub resources: Option<Resources>,
    /// Init containers and sidecars in their order, then the regular ones.
    pub containers: Vec<ContainerPlan>,
    pub restart: Restart,
    pub swap: bool,
    pub timeout_s: f64,
    /// What is expected of the pod as a whole (the one-container shorthand's `expect`).
    pub expect: Option<Expect>,
}

impl PodPlan {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }

    /// The pod as the kubelet sees it.
    pub fn k8s_pod(&self) -> Pod {
        Pod {
            name: self.name.clone(),
            priority: self.priority,
            priority_class_name: self.priority_class_name.clone(),
            containers: self
                .containers
                .iter()
                .map(|c| Container {
                    name: c.name.clone(),
                    kind: c.kind,
                    resources: c.resources,
                })
                .collect(),
            resources: self.resources,
            restart_policy: self.restart.policy,
        }
    }

    /// The container a search sizes and the one-container shorthand is: the
    /// first regular one.
    pub fn main(&self) -> &ContainerPlan {
        let i = self.main_index();
        &self.containers[i]
    }

    pub fn main_mut(&mut self) -> &mut ContainerPlan {
        let i = self.main_index();
        &mut self.containers[i]
    }

    /// Where [`PodPlan::main`] is in `containers`.
    pub fn main_index(&self) -> usize {
        self.containers
            .iter()
            .position(|c| c.kind == ContainerKind::Regular)
            .unwrap_or(0)
    }

    /// The pod cgroup's memory limit (`ResourceConfigForPod`).
    pub fn limit_bytes(&self) -> Option<u64> {
        self.k8s_pod().memory_limit()
    }

    /// The pod's effective memory request, as eviction ranks it.
    pub fn request_bytes(&self) -> Option<u64> {
        let pod = self.k8s_pod();
        let any = self.resources.is_some_and(|r| r.memory.request.is_some())
            || self.containers.iter().any(|c| c.request_bytes().is_some());
        any.then(|| pod.memory_request())
    }

    /// The limit a search sizes: the pod-level one when the pod has it,
    /// else its main container's.
    pub fn searched_limit(&self) -> Option<u64> {
        self.resources
            .and_then(|r| r.memory.limit)
            .or(self.main().limit_bytes())
    }

    /// Size the pod for a search trial: the pod-level limit when it has
    /// one, else its main container's; a request above it comes down to it.
    pub fn set_limit(&mut self, limit: u64) {
        let memory = match self.resources.as_mut().filter(|r| r.memory.limit.is_some()) {
            Some(r) => &mut r.memory,
            None => &mut self.main_mut().resources.memory,
        };
        memory.limit = Some(limit);
        memory.request = memory.request.map(|r| r.min(limit));
    }

    /// Where a limit that the host cannot give was written.
    pub fn limit_field(&self) -> &str {
        &self.main().limit_field
    }

    /// The weights a model-load phase loads, if a container has one.
    pub fn model_bytes(&self) -> Option<u64> {
        self.containers
            .iter()
            .flat_map(|c| &c.workload.phases)
            .find_map(|p| match p {
                Phase::ModelLoad(m) => Some(m.size_bytes),
                _ => None,
            })
    }
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

/// The scenario's `node:` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeSpec {
    pub capacity_bytes: u64,
    /// Where the capacity was written (`file:line: node.capacity`).
    #[serde(skip)]
    pub capacity_field: String,
    /// kubeReserved + systemReserved memory.
    pub reserved_bytes: u64,
    pub hard: Threshold,
    /// A soft threshold and its grace period in seconds.
    pub soft: Option<(Threshold, f64)>,
    pub housekeeping_s: f64,
}

impl NodeSpec {
    /// What the kubepods cgroup may use.
    pub fn allocatable_bytes(&self) -> u64 {
        self.capacity_bytes.saturating_sub(self.reserved_bytes)
    }
}

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
    pub gpu: Option<GpuSpec>,
    pub node: Option<NodeSpec>,
    /// The kubelet's `singleProcessOOMKill`: on cgroup v2, leave
    /// `memory.oom.group` off, so an OOM kill takes one process, not the
    /// whole container.
    pub single_process_oom_kill: bool,
}

impl Plan {
    /// A plan with one pod running `phases` (4 KiB pages, swap off, no expectation).
    pub fn single_pod(
        name: &str,
        limit: Option<u64>,
        request: Option<u64>,
        timeout: Duration,
        phases: Vec<Phase>,
    ) -> Plan {
        let mut pod = PodPlan {
            qos: Qos::BestEffort,
            name: name.to_string(),
            priority: 0,
            priority_class_name: None,
            resources: None,
            containers: vec![ContainerPlan {
                name: name.to_string(),
                kind: ContainerKind::Regular,
                resources: Resources {
                    memory: Resource { request, limit },
                    cpu: Resource::default(),
                },
                image: None,
                workload: WorkloadSpec {
                    pages: Pages::Small,
                    phases,
                },
                expect: None,
                limit_field: "--limit".into(),
                flags: Vec::new(),
            }],
            restart: Restart::default(),
            swap: false,
            timeout_s: timeout.as_secs_f64(),
            expect: None,
        };
        pod.qos = pod.k8s_pod().qos();
        Plan {
            name: name.to_string(),
            description: None,
            sampling_hz: DEFAULT_SAMPLING_HZ,
            vars: vec![],
            formulas: vec![],
            search: None,
            gpu: None,
            node: None,
            single_process_oom_kill: false,
            pods: vec![pod],
        }
    }

    pub fn pod(&self, name: &str) -> Option<&PodPlan> {
        self.pods.iter().find(|p| p.name == name)
    }

    /// The pod names, for an error that lists them.
    pub fn pod_names(&self) -> String {
        self.pods
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where a weights file of a given size is created once and reused.
pub fn default_model_file(size_bytes: u64) -> PathBuf {
    PathBuf::from(format!("/var/tmp/oomsim/models/model-{size_bytes}.bin"))
}

/// Where a scenario's report goes unless `--out` says otherwise.
pub fn default_out_dir(plan: &Plan) -> PathBuf {
    PathBuf::from("reports").join(&plan.name)
}
