//! oomsim: CLI -> checked plan -> real run (cgroups, children, monitors) ->
//! verdicts -> report. Errors are one line and a distinct exit code.

mod bench;
mod cgroup;
mod cli;
mod compare;
mod gpu;
mod host;
mod model;
mod monitor;
mod node;
mod report;
mod run;
mod scenario;
mod search;
mod signals;
mod sizing;
mod units;
mod verdict;
mod vllm;
mod weights;
mod workload;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Cmd, RunArgs, SearchArgs};
use run::RunError;

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const EXPECTATION_FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const HOST: u8 = 3;
    pub const INTERNAL: u8 = 4;
}

/// A failure at the binary's edge: its line and its exit code.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn input(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::BAD_INPUT,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::INTERNAL,
            message: message.into(),
        }
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        let code = match e {
            RunError::Host(_) => exit::HOST,
            RunError::Internal(_) => exit::INTERNAL,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Workload { spec } => return workload_child(&spec),
        Cmd::Validate { scenario } => validate(&scenario),
        Cmd::Plot { file, out } => plot(&file, out),
        Cmd::Compare {
            baseline,
            current,
            tolerance,
            junit,
            plot,
        } => compare_command(&baseline, &current, &tolerance, junit, plot),
        Cmd::Run(args) => {
            signals::install();
            run_command(args)
        }
        Cmd::Search(args) => {
            signals::install();
            search_command(args)
        }
        Cmd::Bench(args) => {
            signals::install();
            bench::run(&args)
        }
        Cmd::Node {
            command: cli::NodeCmd::Plan(args),
        } => node_plan(&args),
        Cmd::Vllm { command } => match *command {
            cli::VllmCmd::Plan(args) => vllm_plan(&args),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("oomsim: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn workload_child(spec: &str) -> ExitCode {
    match serde_json::from_str::<scenario::WorkloadSpec>(spec) {
        Ok(spec) => ExitCode::from(workload::run(&spec).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("oomsim workload: bad spec: {e}");
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}

fn validate(path: &std::path::Path) -> Result<u8, Failure> {
    let plan = scenario::load(path).map_err(|e| Failure::input(e.to_string()))?;
    println!(
        "{}: ok: scenario {:?}, {} pod(s)",
        path.display(),
        plan.name,
        plan.pods.len()
    );
    for pod in &plan.pods {
        println!(
            "  {}: {:?}, request {}, limit {}, {} phase(s)",
            pod.name,
            pod.qos,
            pod.request_bytes
                .map_or("<none>".into(), units::fmt_quantity),
            pod.limit_bytes.map_or("<none>".into(), units::fmt_quantity),
            pod.workload.phases.len()
        );
    }
    Ok(exit::OK)
}

fn plot(file: &std::path::Path, out: Option<std::path::PathBuf>) -> Result<u8, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
    let dir = out.unwrap_or_else(|| {
        file.parent()
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf()
    });
    std::fs::create_dir_all(&dir).map_err(|e| Failure::input(format!("{}: {e}", dir.display())))?;
    let drawn = if let Ok(r) = serde_json::from_str::<search::SearchResult>(&text) {
        report::plot::search(&r, &dir)
    } else {
        let r: report::Report = serde_json::from_str(&text).map_err(|e| {
            Failure::input(format!(
                "{}: neither an oomsim report.json nor a search.json: {e}",
                file.display()
            ))
        })?;
        report::plot::timeline(&r, &dir)
    }
    .map_err(|e| Failure {
        code: exit::INTERNAL,
        message: format!("plot: {e}"),
    })?;
    for f in drawn {
        println!("{}", f.display());
    }
    Ok(exit::OK)
}

fn compare_command(
    baseline: &std::path::Path,
    current: &std::path::Path,
    tolerance: &str,
    junit: Option<std::path::PathBuf>,
    plot: Option<std::path::PathBuf>,
) -> Result<u8, Failure> {
    let tolerance = compare::parse_tolerance(tolerance)
        .map_err(|e| Failure::input(format!("--tolerance: {e}")))?;
    let rows = compare::compare(baseline, current, tolerance).map_err(Failure::input)?;
    print!("{}", compare::markdown(&rows));
    if let Some(path) = junit {
        report::write_atomic(&path, compare::junit(&rows).as_bytes())
            .map_err(|e| Failure::input(format!("--junit {}: {e}", path.display())))?;
    }
    if let Some(stem) = plot {
        report::plot::compare(&rows, &stem).map_err(|e| Failure {
            code: exit::INTERNAL,
            message: format!("plot: {e}"),
        })?;
    }
    Ok(if rows.iter().any(|r| r.regression) {
        exit::EXPECTATION_FAILED
    } else {
        exit::OK
    })
}

fn parse_opt_bytes(flag: &str, value: &Option<String>) -> Result<Option<u64>, Failure> {
    value
        .as_deref()
        .map(|v| units::parse_bytes(v).map_err(|e| Failure::input(format!("{flag}: {e}"))))
        .transpose()
}

/// The plan from a scenario file or from a command after `--`.
fn plan_from_args(
    scenario: &Option<std::path::PathBuf>,
    command: &[String],
    limit: Option<u64>,
    request: Option<u64>,
    timeout: &Option<String>,
) -> Result<scenario::Plan, Failure> {
    match (scenario, command.is_empty()) {
        (Some(path), true) => scenario::load(path).map_err(|e| Failure::input(e.to_string())),
        (None, false) => {
            let timeout = timeout
                .as_deref()
                .map(|t| {
                    units::parse_duration(t).map_err(|e| Failure::input(format!("--timeout: {e}")))
                })
                .transpose()?
                .unwrap_or(scenario::DEFAULT_POD_TIMEOUT);
            scenario::command_plan(command.to_vec(), limit, request, timeout)
                .map_err(Failure::input)
        }
        (Some(_), false) => Err(Failure::input(
            "give a scenario file or a command after --, not both",
        )),
        (None, true) => Err(Failure::input(
            "nothing to do: give a scenario file or a command after -- (see --help)",
        )),
    }
}

fn run_command(args: RunArgs) -> Result<u8, Failure> {
    if args.scenario.is_some()
        && (args.limit.is_some() || args.request.is_some() || args.timeout.is_some())
    {
        return Err(Failure::input(
            "--limit, --request and --timeout apply to a command run (`-- CMD`), not a scenario file",
        ));
    }
    let limit = parse_opt_bytes("--limit", &args.limit)?;
    let request = parse_opt_bytes("--request", &args.request)?;
    let plan = plan_from_args(&args.scenario, &args.command, limit, request, &args.timeout)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| scenario::default_out_dir(&plan));
    let pre = run::preflight(&plan)?;
    let report = run::run(&plan, pre, &out_dir, true)?;
    if let Err(e) = report::plot::timeline(&report, &out_dir) {
        eprintln!("oomsim: warning: timeline plot not drawn: {e}");
    }
    let report_path = out_dir.join(report::REPORT_FILE);
    if args.quiet {
        println!("{}", report_path.display());
    } else {
        print!("{}", report::text::describe(&report));
        println!("Report:       {}", report_path.display());
    }
    if let Some(code) = interrupted() {
        return Ok(code);
    }
    if let Some(spec) = &plan.search {
        run_search(&plan, spec, &out_dir)?;
        if let Some(code) = interrupted() {
            return Ok(code);
        }
    }
    Ok(if report.ok {
        exit::OK
    } else {
        exit::EXPECTATION_FAILED
    })
}

fn node_plan(a: &cli::NodePlanArgs) -> Result<u8, Failure> {
    let capacity =
        units::parse_bytes(&a.capacity).map_err(|e| Failure::input(format!("--capacity: {e}")))?;
    if capacity == 0 {
        return Err(Failure::input("--capacity: must be more than zero"));
    }
    let shown = a.pods.display().to_string();
    let text =
        std::fs::read_to_string(&a.pods).map_err(|e| Failure::input(format!("{shown}: {e}")))?;
    let pods = node::pods_from_kubectl(&text, &shown).map_err(Failure::input)?;
    let mut usage = Vec::new();
    for u in &a.usage {
        let (name, qty) = u
            .split_once('=')
            .ok_or_else(|| Failure::input(format!("--usage: {u:?} is not NAME=QTY")))?;
        if !pods.iter().any(|p| p.0 == name) {
            return Err(Failure::input(format!(
                "--usage: no pod named {name:?} in {shown}"
            )));
        }
        let bytes =
            units::parse_bytes(qty).map_err(|e| Failure::input(format!("--usage {name}: {e}")))?;
        usage.push((name.to_string(), bytes));
    }
    let planned = node::plan_pods(&pods, capacity, &usage);
    if a.json {
        let json = serde_json::json!({ "capacity_bytes": capacity, "pods": planned });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).map_err(|e| Failure::internal(e.to_string()))?
        );
        return Ok(exit::OK);
    }
    println!(
        "{:<24} {:<11} {:>8} {:>10} {:>10} {:>13} {:>5}",
        "NAME", "QOS", "PRIORITY", "REQUEST", "USAGE", "OOM_SCORE_ADJ", "EVICT"
    );
    let mut by_rank = planned.clone();
    by_rank.sort_by_key(|p| p.eviction_rank);
    for p in &by_rank {
        println!(
            "{:<24} {:<11} {:>8} {:>10} {:>10} {:>13} {:>5}",
            p.name,
            format!("{:?}", p.qos),
            p.priority,
            units::fmt_quantity(p.request_bytes),
            units::fmt_quantity(p.usage_bytes),
            p.oom_score_adj,
            p.eviction_rank
        );
    }
    println!(
        "Eviction order (the kubelet's keys: usage over request first, then lower priority, then usage above request); QoS is not itself a key."
    );
    Ok(exit::OK)
}

fn vllm_plan(a: &cli::VllmPlanArgs) -> Result<u8, Failure> {
    let bytes = |flag: &str, v: &str| {
        units::parse_bytes(v).map_err(|e| Failure::input(format!("{flag}: {e}")))
    };
    let dtype = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|d| model::Dtype::parse(d).map_err(|e| Failure::input(format!("{flag}: {e}"))))
            .transpose()
    };
    let cfg = match (&a.model, a.layers) {
        (Some(path), _) => model::ModelConfig::load(path).map_err(Failure::input)?,
        (None, Some(layers)) => {
            let (kv, hd) = (a.kv_heads.unwrap_or(1), a.head_dim.unwrap_or(128));
            model::ModelConfig {
                num_hidden_layers: layers,
                num_attention_heads: kv,
                num_key_value_heads: Some(kv),
                hidden_size: kv * hd,
                head_dim: Some(hd),
                vocab_size: a.vocab,
                intermediate_size: None,
                torch_dtype: None,
                sliding_window: None,
                tie_word_embeddings: None,
                max_position_embeddings: None,
            }
        }
        (None, None) => return Err(Failure::input("--model: give a config.json or --layers")),
    };
    let dt = dtype("--dtype", &a.dtype)?
        .or(cfg.dtype())
        .ok_or_else(|| Failure::input("--dtype: the config names no torch_dtype; give --dtype"))?;
    let gpu = bytes("--gpu-memory", &a.gpu_memory)?;
    if gpu == 0 {
        return Err(Failure::input("--gpu-memory: must be more than zero"));
    }
    if !(a.gpu_memory_utilization > 0.0 && a.gpu_memory_utilization <= 1.0) {
        return Err(Failure::input(format!(
            "--gpu-memory-utilization: {} is outside (0, 1]",
            a.gpu_memory_utilization
        )));
    }
    for (flag, v) in [
        ("--max-num-seqs", a.max_num_seqs),
        ("--block-size", a.block_size),
        ("--max-num-batched-tokens", a.max_num_batched_tokens),
    ] {
        if v == 0 {
            return Err(Failure::input(format!("{flag}: must be more than zero")));
        }
    }
    let mut inp = vllm::Inputs::new(cfg, dt, gpu);
    inp.kv_dtype = dtype("--kv-cache-dtype", &a.kv_cache_dtype)?.unwrap_or(dt);
    inp.utilization = a.gpu_memory_utilization;
    if let Some(n) = a.max_model_len {
        if n == 0 {
            return Err(Failure::input("--max-model-len: must be more than zero"));
        }
        inp.max_model_len = n;
    }
    inp.max_num_seqs = a.max_num_seqs;
    inp.max_num_batched_tokens = a.max_num_batched_tokens;
    inp.block_size = a.block_size;
    let opt = |flag: &str, v: &Option<String>| v.as_deref().map(|v| bytes(flag, v)).transpose();
    inp.kv_cache_memory = opt("--kv-cache-memory", &a.kv_cache_memory)?;
    inp.weights = opt("--weights", &a.weights)?;
    inp.activation = opt("--activation", &a.activation)?;
    inp.non_torch_bytes = bytes("--non-torch", &a.non_torch)?;
    inp.cuda_graph_bytes = bytes("--cuda-graphs", &a.cuda_graphs)?;
    inp.other_bytes = bytes("--other", &a.other)?;
    inp.margin_bytes = bytes("--margin", &a.margin)?;
    let p = vllm::plan(&inp);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&p).map_err(|e| Failure::internal(e.to_string()))?
        );
    } else {
        print!("{}", vllm::describe(&inp, &p));
    }
    if let Some(dir) = &a.plot {
        let mut points = Vec::new();
        for r in &a.runs {
            points.extend(report::plot::kv_points(r).map_err(Failure::input)?);
        }
        let files = report::plot::safe_region(&inp, &points, dir).map_err(Failure::internal)?;
        for f in files {
            eprintln!("oomsim: drew {}", f.display());
        }
    }
    Ok(exit::OK)
}

/// After Ctrl-C or SIGTERM: say what was cleaned up, exit 128 + signal.
fn interrupted() -> Option<u8> {
    let sig = signals::caught()?;
    eprintln!(
        "oomsim: interrupted by {}: children killed, cgroups removed",
        run::signal_name(sig)
    );
    Some(128u8.saturating_add(sig as u8))
}

fn search_command(args: SearchArgs) -> Result<u8, Failure> {
    let range = args
        .range
        .as_deref()
        .map(|r| units::parse_range(r).map_err(|e| Failure::input(format!("--range: {e}"))))
        .transpose()?;
    let precision = parse_opt_bytes("--precision", &args.precision)?;
    if args.repeat == Some(0) {
        return Err(Failure::input("--repeat: must be at least 1"));
    }
    let plan = plan_from_args(
        &args.scenario,
        &args.command,
        range.map(|r| r.1),
        None,
        &args.timeout,
    )?;
    let base = plan.search.clone();
    let pod = match (&args.pod, &base, plan.pods.as_slice()) {
        (Some(p), _, _) => p.clone(),
        (None, Some(s), _) => s.pod.clone(),
        (None, None, [only]) => only.name.clone(),
        (None, None, _) => {
            return Err(Failure::input(
                "--pod: the scenario has several pods; name one",
            ));
        }
    };
    if !plan.pods.iter().any(|p| p.name == pod) {
        return Err(Failure::input(format!(
            "--pod: no pod named {pod:?} in the scenario"
        )));
    }
    let spec = scenario::SearchSpec {
        pod,
        range: range.or(base.as_ref().and_then(|s| s.range)),
        precision_bytes: precision.or(base.as_ref().and_then(|s| s.precision_bytes)),
        repeat: args
            .repeat
            .or(base.as_ref().map(|s| s.repeat))
            .unwrap_or(scenario::DEFAULT_SEARCH_REPEAT),
        strategies: base.map(|s| s.strategies).unwrap_or_default(),
    };
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| scenario::default_out_dir(&plan));
    run::preflight(&plan)?;
    run_search(&plan, &spec, &out_dir)?;
    Ok(interrupted().unwrap_or(exit::OK))
}

/// One search, or one per loading strategy when the spec names them.
fn run_search(
    plan: &scenario::Plan,
    spec: &scenario::SearchSpec,
    out_dir: &std::path::Path,
) -> Result<(), Failure> {
    if spec.strategies.is_empty() {
        eprintln!(
            "oomsim: searching the smallest safe limit for pod {}",
            spec.pod
        );
        let result = search::search(plan, spec, out_dir)?;
        print!("\n{}", search::describe(&result));
        println!(
            "Search:       {}",
            out_dir.join(search::SEARCH_FILE).display()
        );
        return Ok(());
    }
    let results = search::search_strategies(plan, spec, out_dir)?;
    for (st, r) in &results {
        print!("\n== {} ==\n{}", st.as_str(), search::describe(r));
    }
    print!("\n{}", search::describe_strategies(&results));
    for (st, _) in &results {
        println!(
            "Search:       {}",
            out_dir
                .join(format!("search-{}", st.as_str()))
                .join(search::SEARCH_FILE)
                .display()
        );
    }
    Ok(())
}
