//! `oomsim k8s job` (a scenario matrix as a ConfigMap and an Indexed Job,
//! or run here with --dry-run) and `oomsim k8s cell` (what each pod runs).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::args::{K8sCellArgs, K8sJobArgs, RunArgs};
use crate::cli::{Failure, exit};
use crate::jobs::render::{self, CELLS_KEY, JobOptions, SCENARIO_KEY};
use crate::jobs::{self, Cell, Table};
use crate::plan::Plan;

/// The bytes one cell's experiments can take at most: its pods' limits
/// together (a node's capacity for a node scenario), or its search's top.
fn experiment_bytes(plan: &Plan) -> u64 {
    let run = match &plan.node {
        Some(node) => node.capacity_bytes,
        None => plan.pods.iter().filter_map(|p| p.limit_bytes()).sum(),
    };
    let search = plan.search.as_ref().map_or(0, |s| {
        s.range.map(|r| r.1).unwrap_or_else(|| {
            plan.pod(&s.pod)
                .and_then(|p| p.searched_limit())
                .map_or(0, |l| l.saturating_mul(4))
        })
    });
    run.max(search)
}

/// A cell's scenario written where `oomsim run` can load it, and its plan.
fn materialize(scenario: &str, cell: &Cell, dir: &Path) -> Result<(PathBuf, Plan), Failure> {
    let text = jobs::cell_scenario(scenario, cell)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::internal(format!("{}: {e}", dir.display())))?;
    let file = dir.join(SCENARIO_KEY);
    crate::report::write_atomic(&file, text.as_bytes())
        .map_err(|e| Failure::internal(format!("{}: {e}", file.display())))?;
    let loaded = crate::scenario::load(&file, false)
        .map_err(|e| Failure::input(format!("cell {} ({}): {e}", cell.index, cell.label())))?;
    Ok((file, loaded.plan))
}

fn label_pairs(flag: &str, given: &[String]) -> Result<Vec<(String, String)>, Failure> {
    given
        .iter()
        .map(|g| {
            g.split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| Failure::flag(flag, format!("{g:?}: give LABEL=VALUE")))
        })
        .collect()
}

pub fn job(args: &K8sJobArgs) -> Result<u8, Failure> {
    let scenario = jobs::read(&args.scenario).map_err(|e| Failure::input(e.to_string()))?;
    let axes = args
        .matrix
        .iter()
        .map(|m| jobs::parse_axis(m))
        .collect::<Result<Vec<_>, _>>()?;
    let cells = jobs::expand(&axes)?;
    let node_selector = label_pairs("--gpu-type", &args.gpu_type)?;
    if args.parallelism.is_some_and(|p| p < 1) {
        return Err(Failure::flag("--parallelism", "must be 1 or more"));
    }
    if args.backoff_limit < 0 {
        return Err(Failure::flag("--backoff-limit", "must be 0 or more"));
    }
    // Every cell must load before anything is printed.
    let check = tempfile_dir("check")?;
    let plans: Result<Vec<Plan>, Failure> = cells
        .iter()
        .map(|cell| {
            let dir = check.join(format!("cell-{}", cell.index));
            materialize(&scenario, cell, &dir).map(|(_, plan)| plan)
        })
        .collect();
    let _ = std::fs::remove_dir_all(&check);
    let plans = plans?;
    let name = render::object_name(&plans[0].name);
    let table = Table {
        scenario_name: plans[0].name.clone(),
        axes,
        cells,
    };
    if args.dry_run {
        return dry_run(args, &scenario, &table);
    }
    let options = JobOptions {
        image: args.image.clone(),
        parallelism: args.parallelism,
        backoff_limit: args.backoff_limit,
        gpu: !node_selector.is_empty()
            || plans.iter().any(|p| {
                p.gpu
                    .as_ref()
                    .is_some_and(|g| g.backend != crate::gpu::BackendChoice::Sim)
            }),
        node_selector,
        experiment_bytes: plans.iter().map(experiment_bytes).max().unwrap_or(0),
    };
    let config = render::config_map(&name, &scenario, &table)
        .map_err(|e| Failure::internal(format!("the cell table: {e}")))?;
    let job = render::job(&name, table.cells.len(), &options);
    let yaml = render::yaml(&config, &job)
        .map_err(|e| Failure::internal(format!("the Job as YAML: {e}")))?;
    match &args.output {
        Some(path) => crate::report::write_atomic(path, yaml.as_bytes())
            .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?,
        None => print!("{yaml}"),
    }
    Ok(exit::OK)
}

fn tempfile_dir(what: &str) -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("oomsim-k8s-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::internal(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

/// The cells here, one after another, through the pods' own entry point,
/// with the ConfigMap's two files as the pods would see them.
fn dry_run(args: &K8sJobArgs, scenario: &str, table: &Table) -> Result<u8, Failure> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(format!("{}-cells", table.scenario_name)));
    let config = out.join("config");
    std::fs::create_dir_all(&config)
        .map_err(|e| Failure::input(format!("{}: {e}", config.display())))?;
    let cells_json = serde_json::to_string_pretty(table)
        .map_err(|e| Failure::internal(format!("the cell table: {e}")))?;
    for (key, text) in [(SCENARIO_KEY, scenario), (CELLS_KEY, cells_json.as_str())] {
        crate::report::write_atomic(&config.join(key), text.as_bytes())
            .map_err(|e| Failure::input(format!("{}: {e}", config.join(key).display())))?;
    }
    let mut failed = 0;
    for cell in &table.cells {
        eprintln!(
            "oomsim: dry run: cell {}/{} ({})",
            cell.index + 1,
            table.cells.len(),
            cell.label()
        );
        // A cell that cannot run fails as its pod would; the others go on.
        if let Err(f) = run_cell(&config, &out, cell.index, args.runner.as_deref()) {
            eprintln!(
                "oomsim: cell {} ({}): {}",
                cell.index,
                cell.label(),
                f.message
            );
            failed += 1;
        }
        if let Some(code) = super::interrupted() {
            return Ok(code);
        }
    }
    eprintln!(
        "oomsim: dry run: {} cells, {failed} could not produce a report; reports in {}",
        table.cells.len(),
        out.display()
    );
    // What `oomsim merge` of the pods' logs would show; no cell at all is
    // nothing to merge.
    if failed == table.cells.len() {
        return Ok(exit::INTERNAL);
    }
    let merged = merge(std::slice::from_ref(&out), Some(&out.join("merged")))?;
    Ok(if failed > 0 { exit::INTERNAL } else { merged })
}

pub fn cell(args: &K8sCellArgs) -> Result<u8, Failure> {
    let index = match args.index {
        Some(i) => i,
        None => std::env::var("JOB_COMPLETION_INDEX")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                Failure::flag(
                    "--index",
                    "not given and JOB_COMPLETION_INDEX is not set (the Job controller sets it for completionMode: Indexed)",
                )
            })?,
    };
    crate::cgroup::leave_namespace_root().map_err(crate::run::RunError::from)?;
    run_cell(&args.config, &args.out, index, args.runner.as_deref())
}

/// One cell: its scenario run (and searched) by `oomsim run`, its reports
/// under `out/cell-N/`, and one JSON line on stdout at the end that holds
/// them without their samples (what `oomsim merge` reads from `kubectl
/// logs`). 0 once a report exists, whatever its verdict.
fn run_cell(config: &Path, out: &Path, index: usize, runner: Option<&str>) -> Result<u8, Failure> {
    let scenario = jobs::read(&config.join(SCENARIO_KEY))?;
    let table: Table = serde_json::from_str(&jobs::read(&config.join(CELLS_KEY))?)
        .map_err(|e| Failure::input(format!("{}: {e}", config.join(CELLS_KEY).display())))?;
    let cell = table.cell(index)?.clone();
    let dir = out.join(format!("cell-{index}"));
    let (file, plan) = materialize(&scenario, &cell, &dir)?;
    let gpu_asked = plan
        .gpu
        .as_ref()
        .is_some_and(|g| g.backend != crate::gpu::BackendChoice::Sim);
    let code = super::run::run(RunArgs {
        scenario: Some(file),
        out: Some(dir.clone()),
        limit: None,
        request: None,
        timeout: None,
        expect: None,
        quiet: true,
        strict: false,
        program: Default::default(),
    })?;
    let line = cell_line(&table, &cell, &dir, code, (gpu_asked, runner))?;
    // Beside the reports too, so a folder of cells merges without logs.
    let kept = dir.join(jobs::merge::CELL_FILE);
    crate::report::write_atomic(&kept, format!("{line}\n").as_bytes())
        .map_err(|e| Failure::internal(format!("{}: {e}", kept.display())))?;
    println!("{line}");
    Ok(exit::OK)
}

/// The cell's JSON line: the cell, `oomsim run`'s exit code, its report
/// and its searches, samples left out.
fn cell_line(
    table: &Table,
    cell: &Cell,
    dir: &Path,
    code: u8,
    (gpu_asked, runner): (bool, Option<&str>),
) -> Result<String, Failure> {
    let read = |path: &Path| -> Result<Value, Failure> {
        let text = crate::bounded::read_text(path, crate::bounded::REPORT_MAX)
            .map_err(|e| Failure::internal(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| Failure::internal(format!("{}: {e}", path.display())))
    };
    let mut report = read(&dir.join(crate::report::REPORT_FILE))?;
    strip_samples(&mut report);
    let mut searches = Vec::new();
    for path in search_files(dir) {
        // `search-STRATEGY/search.json` for a search per loading strategy.
        let strategy = path
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("search-"))
            .map(str::to_string);
        searches.push(serde_json::json!({"strategy": strategy, "search": read(&path)?}));
    }
    let line = serde_json::json!({
        "oomsim_cell": {
            "scenario": table.scenario_name,
            "table": table.id(),
            "runner": runner,
            "index": cell.index,
            "cells": table.cells.len(),
            "label": cell.label(),
            "values": cell.values,
            "run_exit_code": code,
            "gpu_asked": gpu_asked,
        },
        "report": report,
        "searches": searches,
    });
    Ok(line.to_string())
}

/// search.json files under a run's folder (one, or one per strategy).
fn search_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .flat_map(|p| [p.join("search.json"), p])
        .filter(|p| p.file_name().is_some_and(|n| n == "search.json") && p.is_file())
        .collect();
    found.sort();
    found
}

/// Samples emptied: the line carries verdicts and figures, not timelines.
fn strip_samples(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(samples) = map.get_mut("samples") {
                *samples = Value::Array(Vec::new());
            }
            map.values_mut().for_each(strip_samples);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_samples),
        _ => {}
    }
}

/// `oomsim merge`: the table on stdout; with `--out`, merge.json, the chart
/// and report.html. Exit 1 when a cell has no report or did not hold.
pub fn merge(inputs: &[PathBuf], out: Option<&Path>) -> Result<u8, Failure> {
    let lines = jobs::merge::read_all(inputs).map_err(|e| Failure::input(e.to_string()))?;
    let merged = jobs::merge::merge(&lines).map_err(|e| Failure::input(e.to_string()))?;
    let text = jobs::merge::text(&merged);
    print!("{text}");
    if let Some(dir) = out {
        crate::report::write_json(&dir.join("merge.json"), &merged)
            .map_err(|e| Failure::input(e.to_string()))?;
        if let Err(e) = crate::plot::matrix(&merged, &dir.join("matrix")) {
            eprintln!("oomsim: warning: the matrix chart not drawn: {e}");
        }
        if let Err(e) = crate::html::write(dir, &crate::html::matrix(&merged, &text)) {
            eprintln!(
                "oomsim: warning: report.html not written in {}: {e}",
                dir.display()
            );
        }
    }
    Ok(if merged.rows.iter().all(|r| r.ok) {
        exit::OK
    } else {
        exit::EXPECTATION_FAILED
    })
}
