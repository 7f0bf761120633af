//! Subcommands and their options (clap derive): raw arguments only;
//! [`super::resolve`] turns them into checked configs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::llm::vllm;

#[derive(Debug, Parser)]
#[command(
    name = "oomsim",
    version,
    about = "Reproduce Kubernetes out-of-memory failures for real, on a test host, before rollout"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run a scenario file, or any program as a one-pod scenario (`-- CMD ...`).
    Run(RunArgs),
    /// Find the smallest memory limit at which a pod survives, by real runs.
    Search(SearchArgs),
    /// Redraw the plots of a saved report.json or search.json.
    Plot {
        /// A report.json (draws the timeline) or search.json (search and distribution).
        file: PathBuf,
        /// Where the charts go (default: beside the file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare a run with a baseline; exit 1 on a regression (for CI).
    Compare {
        /// The saved run to compare against (report.json or search.json).
        baseline: PathBuf,
        /// The new run, of the same kind, scenario and pod.
        current: PathBuf,
        /// How much the smallest safe limit may grow: 5% or 0.05 (a bare 5 is refused).
        #[arg(long, default_value = "5%")]
        tolerance: String,
        /// Write JUnit XML here.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Draw a side-by-side chart here (FILE.png and FILE.svg).
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
        /// Write compare.json, the chart and report.html into this folder.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Check a scenario file without running it.
    Validate {
        /// The scenario file to check.
        scenario: PathBuf,
        /// Refuse what is otherwise a warning (a fraction of a byte, `512m`).
        #[arg(long)]
        strict: bool,
    },
    /// Measure oomsim itself: fill rate, OOM detection latency, sampler cost.
    Bench(BenchArgs),
    /// The node: QoS, oom_score_adj and the kubelet's eviction order.
    Node {
        #[command(subcommand)]
        command: NodeCmd,
    },
    /// vLLM's GPU memory: plan safe settings.
    Vllm {
        #[command(subcommand)]
        command: Box<VllmCmd>,
    },
    /// The cells' reports into one table and one set of charts (from
    /// `kubectl logs` of the Job's pods, cell.json files or their folders).
    Merge {
        /// Logs with the pods' last lines, cell.json files, or folders holding them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Write merge.json, the chart and report.html into this folder.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// A scenario matrix as a Kubernetes Indexed Job, and its pods' entry point.
    K8s {
        #[command(subcommand)]
        command: K8sCmd,
    },
    /// Read pasted evidence (kubectl describe / get -o yaml|json / events,
    /// kernel logs, container logs, report.json) and say how it died and the fix.
    Diagnose(DiagnoseArgs),
    /// Turn a report.json or search.json into what to apply: a resources
    /// patch, QoS advice, runtime flags.
    Recommend(RecommendArgs),
    /// Internal: run a workload inside a pod (started by `run`).
    #[command(name = crate::workload::SUBCOMMAND, hide = true)]
    Workload { spec: String },
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Files of evidence, in any mix; none or `-` reads stdin.
    pub files: Vec<PathBuf>,
    /// Print the diagnosis as JSON (class, runtime, confidence, evidence,
    /// ruled_out, fix, facts).
    #[arg(long)]
    pub json: bool,
    /// Write a scenario that reproduces the failure on this host.
    #[arg(long, value_name = "FILE")]
    pub emit_scenario: Option<PathBuf>,
    /// Write diagnosis.json and report.html into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// A report.json or search.json oomsim wrote.
    pub file: PathBuf,
    /// A Kubernetes manifest to patch: the patched manifest goes to stdout,
    /// the reasoning to stderr.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// The container to patch in the manifest (default: the report's).
    #[arg(long)]
    pub container: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (leave out when giving a command after `--`).
    pub scenario: Option<PathBuf>,
    /// Where report.json and logs go (default: reports/<scenario-name>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Memory limit for a command run, as Kubernetes writes it (512Mi, 1.5G).
    #[arg(long, value_name = "QTY")]
    pub limit: Option<String>,
    /// Memory request for a command run (defaults to the limit, as the API server does).
    #[arg(long, value_name = "QTY")]
    pub request: Option<String>,
    /// Kill a command run after this long (default 5m).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// How a command run must end to count as a pass (default Completed):
    /// OOMKilled, Error, Completed, Evicted, StartError.
    #[arg(long, value_name = "REASON")]
    pub expect: Option<String>,
    /// Print only the JSON report path: no kubectl-style text, no progress.
    #[arg(long, short)]
    pub quiet: bool,
    /// Refuse what is otherwise a warning (a fraction of a byte, `512m`).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub program: ProgramArgs,
}

/// A command run's program: `-- CMD`, its environment and its pod's name.
#[derive(Debug, Default, Args)]
pub struct ProgramArgs {
    /// An environment variable for a command run; `{EXPR:UNIT}` in the value
    /// follows the limit (`--env GOMEMLIMIT={limit*0.9:MiB}MiB`). Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The pod's name for a command run (default: the program's name).
    #[arg(long)]
    pub name: Option<String>,
    /// The program and its arguments, after `--`; `{EXPR:UNIT}` follows
    /// the limit (`-- java -Xmx{limit*0.7:MiB}m -jar app.jar`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// oomsim's own benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Bench {
    /// The leak workload's fill rate against a plain C loop and stress-ng.
    Fill,
    /// OOM detection latency against the kernel's own timestamp.
    Detect,
    /// CPU per sample of the 1 kHz sampler, against the same reads in C.
    Sampler,
    /// `oomsim run -- true`, the whole process, against the same cgroup work in C.
    Startup,
    /// The limit search's trials against plain bisection's, and a linear sweep.
    Search,
    /// A model load by each strategy against a cold read of the same file.
    Load,
    /// `oomsim search` of a model-load scenario end to end, against its floor.
    Vllm,
    /// The vLLM planner over a grid, and the sim device's allocation rate.
    Planner,
    /// `oomsim diagnose` over 1 MiB of evidence, against a line scan.
    Diagnose,
    /// Every one of the above.
    All,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[arg(value_enum, default_value_t = Bench::All)]
    pub which: Bench,
    /// Bytes each fill-rate run touches.
    #[arg(long, default_value = "1Gi")]
    pub size: String,
    /// Repetitions of each fill-rate measurement.
    #[arg(long, default_value_t = 5)]
    pub repeat: u32,
    /// The scenario the vllm benchmark searches.
    #[arg(long, default_value = "scenarios/vllm-14g.yaml")]
    pub scenario: PathBuf,
    /// The weights file's size for the load benchmark.
    #[arg(long, default_value = "2Gi")]
    pub model_size: String,
    /// OOM kills to time for the detection benchmark.
    #[arg(long, default_value_t = 25)]
    pub kills: u32,
    /// Write the numbers as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The scenario file (leave out when giving a command after `--`).
    pub scenario: Option<PathBuf>,
    /// The pod to search (default: the scenario's `search.pod`, or its only pod).
    #[arg(long)]
    pub pod: Option<String>,
    /// Limits to search between, LO..HI (e.g. 64Mi..2Gi).
    #[arg(long, value_name = "LO..HI")]
    pub range: Option<String>,
    /// Stop when the bracket is this narrow (default: 1% of the answer or 4Mi, whichever is larger).
    #[arg(long, value_name = "QTY")]
    pub precision: Option<String>,
    /// Trials at the answer that must all survive (default 3).
    #[arg(long)]
    pub repeat: Option<u32>,
    /// Kill a command trial after this long (default 5m).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Where search.json and the trials go (default: reports/<scenario-name>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress: print only the result.
    #[arg(long, short)]
    pub quiet: bool,
    /// Refuse what is otherwise a warning (a fraction of a byte, `512m`).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub program: ProgramArgs,
}

#[derive(Debug, Subcommand)]
pub enum K8sCmd {
    /// Print a ConfigMap (the scenario, the cells) and an Indexed Job (one
    /// index per cell) for `kubectl apply -f -`; or run the cells here, one
    /// after another, as the pods would (--dry-run).
    Job(K8sJobArgs),
    /// What each of the Job's pods runs: one cell of the mounted table.
    Cell(K8sCellArgs),
}

#[derive(Debug, Args)]
pub struct K8sJobArgs {
    /// The scenario the cells vary.
    pub scenario: PathBuf,
    /// KEY=V1,V2: a scenario field or var and its values (`gpu.memory=40Gi,80Gi`,
    /// `pods.vllm.resources.limits.memory=16Gi,20Gi`). Repeatable: every combination is a cell.
    #[arg(long, value_name = "KEY=V1,V2")]
    pub matrix: Vec<String>,
    /// The image the pods run (it must hold oomsim and what the scenario runs).
    #[arg(long, default_value = "oomsim:latest")]
    pub image: String,
    /// LABEL=VALUE a node must carry (`nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3`);
    /// also asks each pod for one nvidia.com/gpu. Repeatable.
    #[arg(long, value_name = "LABEL=VALUE")]
    pub gpu_type: Vec<String>,
    /// Cells run at once (default: all).
    #[arg(long)]
    pub parallelism: Option<i32>,
    /// Retries of a failed cell (backoffLimitPerIndex); other cells go on.
    #[arg(long, default_value_t = 0)]
    pub backoff_limit: i32,
    /// Write the YAML here instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Run every cell here, one after another, with the pods' entry point.
    #[arg(long)]
    pub dry_run: bool,
    /// Where a dry run's reports go (default: reports/<scenario-name>-cells/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A dry run's machine, named in its cells (a CI runner: `h100`), so the
    /// same matrix run on several machines merges as several tables.
    #[arg(long)]
    pub runner: Option<String>,
}

#[derive(Debug, Args)]
pub struct K8sCellArgs {
    /// The mounted ConfigMap: scenario.yaml and cells.json.
    #[arg(long)]
    pub config: PathBuf,
    /// Where the cell's reports go.
    #[arg(long)]
    pub out: PathBuf,
    /// The cell (default: $JOB_COMPLETION_INDEX, set by the Job controller).
    #[arg(long)]
    pub index: Option<usize>,
    /// The machine, named in the cell's line (see `k8s job --runner`).
    #[arg(long)]
    pub runner: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum VllmCmd {
    /// The KV cache budget line by line, whether vLLM starts, and safe settings.
    Plan(VllmPlanArgs),
}

#[derive(Debug, Args)]
pub struct VllmPlanArgs {
    /// The model's Hugging Face config.json.
    #[arg(long, value_name = "CONFIG.json", required_unless_present = "layers")]
    pub model: Option<PathBuf>,
    /// Without a config: full-attention layers (with --kv-heads, --head-dim and --weights).
    #[arg(long, requires_all = ["kv_heads", "head_dim", "weights"], conflicts_with = "model")]
    pub layers: Option<u64>,
    #[arg(long)]
    pub kv_heads: Option<u64>,
    #[arg(long)]
    pub head_dim: Option<u64>,
    /// Vocabulary size without a config (for the sampler's logits).
    #[arg(long, default_value_t = 32000)]
    pub vocab: u64,
    /// The GPU's memory (80Gi, 141G).
    #[arg(long, value_name = "QTY")]
    pub gpu_memory: String,
    /// The GPU's name: vLLM keeps an A100's smaller batch defaults whatever its memory.
    #[arg(long, default_value = "")]
    pub gpu_name: String,
    #[arg(long, default_value_t = vllm::DEFAULT_UTILIZATION)]
    pub gpu_memory_utilization: f64,
    /// GPUs the model is split over; the plan is per GPU.
    #[arg(long, short = 't', default_value_t = 1)]
    pub tensor_parallel_size: u64,
    /// Default: the config's limit (max_position_embeddings and RoPE scaling).
    #[arg(long)]
    pub max_model_len: Option<u64>,
    /// Default: vLLM's for the GPU (1024 from 70Gi, else 256).
    #[arg(long)]
    pub max_num_seqs: Option<u64>,
    /// Default: vLLM's for the GPU (8192 from 70Gi, 16384 from 160Gi, else 2048).
    #[arg(long)]
    pub max_num_batched_tokens: Option<u64>,
    #[arg(long, default_value_t = vllm::DEFAULT_BLOCK_SIZE)]
    pub block_size: u64,
    /// Compute dtype: auto (the config's; float32 runs as bf16), bf16, fp16, fp32.
    #[arg(long)]
    pub dtype: Option<String>,
    /// KV cache dtype: auto (the compute dtype), fp8, fp8_e4m3, fp8_e5m2.
    #[arg(long)]
    pub kv_cache_dtype: Option<String>,
    /// Quantize the weights on load (fp8), when the config has no quantization_config.
    #[arg(long, value_name = "fp8")]
    pub quantization: Option<String>,
    /// An absolute KV cache size instead of the utilization arithmetic.
    #[arg(long, visible_alias = "kv-cache-memory", value_name = "QTY")]
    pub kv_cache_memory_bytes: Option<String>,
    /// Local attention allocated as full attention (vLLM always does so for chunked local).
    #[arg(long)]
    pub disable_hybrid_kv_cache_manager: bool,
    /// One mamba state a request instead of two.
    #[arg(long)]
    pub no_enable_prefix_caching: bool,
    /// Weight bytes per GPU (default: parameters from the config x dtype or quantization).
    #[arg(long, value_name = "QTY")]
    pub weights: Option<String>,
    /// The profile run's peak, as vLLM logs it (default: an estimate).
    #[arg(long, value_name = "QTY")]
    pub activation: Option<String>,
    #[arg(long, value_name = "QTY", default_value = "512Mi")]
    pub non_torch: String,
    /// CUDA graph memory vLLM estimates and subtracts (0 with --enforce-eager).
    #[arg(long, value_name = "QTY", default_value = "512Mi")]
    pub cuda_graphs: String,
    /// Memory another process holds on the same GPU.
    #[arg(long, value_name = "QTY", default_value = "0")]
    pub other: String,
    /// This process's CUDA context and what else is outside vLLM's count.
    #[arg(long, value_name = "QTY", default_value = "1Gi")]
    pub margin: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Draw the safe-region map into this folder.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// kv-cache run reports whose failure points go on the map.
    #[arg(long, value_name = "REPORT.json", num_args = 1..)]
    pub runs: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Each pod's QoS class, oom_score_adj and eviction rank, from kubectl YAML.
    Plan(NodePlanArgs),
}

#[derive(Debug, Args)]
pub struct NodePlanArgs {
    /// Manifests (YAML, several documents, or JSON): Pods, Deployments,
    /// StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Lists, or
    /// `kubectl get pods -o yaml|json` output.
    pub pods: PathBuf,
    /// The node's memory capacity (allocatable), e.g. 16Gi.
    #[arg(long, value_name = "QTY")]
    pub capacity: String,
    /// A pod's working set, NAME=QTY (repeat; pods not named use 0).
    #[arg(long, value_name = "NAME=QTY")]
    pub usage: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}
