//! Subcommands and their options (clap derive); raw arguments only; `main`
//! turns them into checked plans.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The hidden subcommand a pod's child runs (this binary, re-executed).
pub const WORKLOAD_SUBCOMMAND: &str = "__workload";

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
        file: PathBuf,
        /// Where the charts go (default: beside the file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare a run with a baseline; exit 1 on a regression (for CI).
    Compare {
        baseline: PathBuf,
        current: PathBuf,
        /// How much the smallest safe limit may grow (5% or 0.05).
        #[arg(long, default_value = "5%")]
        tolerance: String,
        /// Write JUnit XML here.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Draw a side-by-side chart here (FILE.png and FILE.svg).
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
    },
    /// Check a scenario file without running it.
    Validate { scenario: PathBuf },
    /// Measure oomsim itself: fill rate, OOM detection latency, sampler cost.
    Bench(BenchArgs),
    /// Internal: run a workload inside a pod (started by `run`).
    #[command(name = WORKLOAD_SUBCOMMAND, hide = true)]
    Workload { spec: String },
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
    /// Print only the JSON report path, no kubectl-style text.
    #[arg(long, short)]
    pub quiet: bool,
    /// The program and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark: fill, detect, sampler, or all.
    #[arg(default_value = "all")]
    pub which: String,
    /// Bytes each fill-rate run touches.
    #[arg(long, default_value = "1Gi")]
    pub size: String,
    /// Repetitions of each fill-rate measurement.
    #[arg(long, default_value_t = 5)]
    pub repeat: u32,
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
    /// The program and its arguments, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}
