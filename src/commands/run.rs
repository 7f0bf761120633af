//! `oomsim run` and `oomsim search`: real runs, their reports and plots.

use std::path::{Path, PathBuf};

use super::{held, interrupted};
use crate::cli::args::{RunArgs, SearchArgs};
use crate::cli::resolve::{self, Source};
use crate::cli::{Failure, exit};
use crate::plan::{Expect, Plan, SearchSpec, default_out_dir};
use crate::report::search::SearchResult;
use crate::report::text::{Text, describe_strategies};
use crate::report::{self, Format, SEARCH_FILE};
use crate::search::{self, Bounds, Progress, SearchError, runner};

pub fn run(args: RunArgs) -> Result<u8, Failure> {
    if args.scenario.is_some()
        && (args.limit.is_some()
            || args.request.is_some()
            || args.timeout.is_some()
            || args.expect.is_some())
    {
        return Err(Failure::input(
            "--limit, --request, --timeout and --expect apply to a command run (`-- CMD`), not a scenario file",
        ));
    }
    let mut plan = resolve::plan(Source {
        scenario: &args.scenario,
        program: &args.program,
        limit: resolve::bytes("--limit", &args.limit)?,
        request: resolve::bytes("--request", &args.request)?,
        timeout: &args.timeout,
        strict: args.strict,
    })?;
    if let Some(r) = &args.expect {
        let reason = resolve::reason(r)?;
        plan.pods[0].expect = Some(Expect {
            reason: Some(reason),
            ..Expect::default()
        });
    }
    let out_dir = args.out.clone().unwrap_or_else(|| default_out_dir(&plan));
    let pre = crate::run::preflight(&plan).map_err(crate::run::RunError::from)?;
    let report = crate::run::run(&plan, pre, &out_dir, !args.quiet)?;
    // The charts and the page, drawn at once.
    let drawn = std::thread::scope(|s| {
        let charts = s.spawn(|| crate::plot::timeline(&report, &out_dir));
        page(&out_dir, &crate::html::run(&report, &[]));
        charts.join()
    });
    match drawn {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("oomsim: warning: timeline plot not drawn: {e}"),
        Err(_) => eprintln!("oomsim: warning: timeline plot not drawn: its thread panicked"),
    }
    let report_path = out_dir.join(report::REPORT_FILE);
    if args.quiet {
        println!("{}", report_path.display());
    } else {
        print!("{}", Text.render(&report)?);
        println!("Report:       {}", report_path.display());
        println!(
            "Page:         {}",
            out_dir.join(crate::html::HTML_FILE).display()
        );
    }
    if let Some(code) = interrupted() {
        return Ok(code);
    }
    if let Some(spec) = &plan.search {
        let searches = run_search(&plan, spec, &out_dir, args.quiet)?;
        page(&out_dir, &crate::html::run(&report, &searches));
        if let Some(code) = interrupted() {
            return Ok(code);
        }
    }
    Ok(held(report.ok))
}

pub fn search(args: SearchArgs) -> Result<u8, Failure> {
    let range = args
        .range
        .as_deref()
        .map(|r| crate::units::parse_range(r).map_err(|e| Failure::flag("--range", e)))
        .transpose()?;
    let precision = resolve::bytes("--precision", &args.precision)?;
    if precision == Some(0) {
        return Err(Failure::flag("--precision", "must be more than zero"));
    }
    if args.repeat == Some(0) {
        return Err(Failure::flag("--repeat", "must be at least 1"));
    }
    let plan = resolve::plan(Source {
        scenario: &args.scenario,
        program: &args.program,
        limit: range.map(|r| r.1),
        request: None,
        timeout: &args.timeout,
        strict: args.strict,
    })?;
    let base = plan.search.clone();
    let pod = match (&args.pod, &base, plan.pods.as_slice()) {
        (Some(p), _, _) => p.clone(),
        (None, Some(s), _) => s.pod.clone(),
        (None, None, [only]) => only.name.clone(),
        (None, None, _) => {
            return Err(Failure::flag(
                "--pod",
                format!(
                    "the scenario has several pods; name one of {}",
                    plan.pod_names()
                ),
            ));
        }
    };
    if plan.pod(&pod).is_none() {
        return Err(Failure::flag(
            "--pod",
            format!(
                "no pod named {pod:?} in the scenario (its pods: {})",
                plan.pod_names()
            ),
        ));
    }
    let spec = SearchSpec {
        pod,
        range: range.or(base.as_ref().and_then(|s| s.range)),
        precision_bytes: precision.or(base.as_ref().and_then(|s| s.precision_bytes)),
        repeat: args
            .repeat
            .or(base.as_ref().map(|s| s.repeat))
            .unwrap_or(crate::plan::DEFAULT_SEARCH_REPEAT),
        strategies: base.map(|s| s.strategies).unwrap_or_default(),
    };
    let out_dir = args.out.clone().unwrap_or_else(|| default_out_dir(&plan));
    crate::run::preflight(&plan).map_err(crate::run::RunError::from)?;
    run_search(&plan, &spec, &out_dir, args.quiet)?;
    Ok(interrupted().unwrap_or(exit::OK))
}

/// Write `dir/report.html`; a page that cannot be written is a warning,
/// the JSON beside it stands.
fn page(dir: &Path, html: &str) {
    if let Err(e) = crate::html::write(dir, html) {
        eprintln!(
            "oomsim: warning: report.html not written in {}: {e}",
            dir.display()
        );
    }
}

/// The search's bounds on this host: the range asked (or the default), the
/// parallelism the host allows.
fn bounds(plan: &Plan, spec: &SearchSpec) -> Result<Bounds, Failure> {
    let pod = plan
        .pod(&spec.pod)
        .ok_or_else(|| Failure::flag("--pod", format!("no pod named {:?}", spec.pod)))?;
    let usable = crate::host::meminfo()
        .map_err(crate::run::RunError::from)?
        .usable_bytes();
    let range = match spec.range {
        Some(r) => r,
        None => search::default_range(pod, usable)?,
    };
    if range.1 > usable {
        return Err(SearchError::TooLarge {
            hi: crate::units::fmt_human(range.1),
            usable: crate::units::fmt_human(usable),
        }
        .into());
    }
    Ok(Bounds {
        range,
        precision_bytes: spec.precision_bytes,
        repeat: spec.repeat,
        parallel: search::parallelism(range.1, usable),
    })
}

/// One search of `plan`'s pod: run, written to `dir/search.json`, drawn.
fn one_search(
    plan: &Plan,
    spec: &SearchSpec,
    dir: &Path,
    quiet: bool,
) -> Result<SearchResult, Failure> {
    let bounds = bounds(plan, spec)?;
    let real = runner::Real {
        plan,
        pod: &spec.pod,
        out_dir: dir,
    };
    let result = search::search(plan, spec, bounds, &real, &Progress::new(quiet))?;
    report::write_json(&dir.join(SEARCH_FILE), &result).map_err(crate::run::RunError::from)?;
    if let Err(e) = crate::plot::search(&result, dir) {
        eprintln!("oomsim: warning: search plots not drawn: {e}");
    }
    page(dir, &crate::html::search(&result, dir));
    Ok(result)
}

/// One search, or one per loading strategy when the spec names them; each
/// result with its folder.
fn run_search(
    plan: &Plan,
    spec: &SearchSpec,
    out_dir: &Path,
    quiet: bool,
) -> Result<Vec<(SearchResult, PathBuf)>, Failure> {
    if spec.strategies.is_empty() {
        if !quiet {
            eprintln!(
                "oomsim: searching the smallest safe limit for pod {}",
                spec.pod
            );
        }
        let result = one_search(plan, spec, out_dir, quiet)?;
        print!("\n{}", Text.render(&result)?);
        println!("Search:       {}", out_dir.join(SEARCH_FILE).display());
        return Ok(vec![(result, out_dir.to_path_buf())]);
    }
    let mut results = Vec::new();
    for &strategy in &spec.strategies {
        if !quiet {
            eprintln!(
                "oomsim: searching the smallest safe limit for pod {} loading {}",
                spec.pod,
                strategy.as_str()
            );
        }
        let p = runner::with_strategy(plan, &spec.pod, strategy);
        let dir = out_dir.join(format!("search-{}", strategy.as_str()));
        results.push((strategy, one_search(&p, spec, &dir, quiet)?));
        if crate::signals::caught().is_some() {
            break;
        }
    }
    for (st, r) in &results {
        print!("\n== {} ==\n{}", st.as_str(), Text.render(r)?);
    }
    print!("\n{}", describe_strategies(&results));
    for (st, _) in &results {
        println!(
            "Search:       {}",
            out_dir
                .join(format!("search-{}", st.as_str()))
                .join(SEARCH_FILE)
                .display()
        );
    }
    Ok(results
        .into_iter()
        .map(|(st, r)| (r, out_dir.join(format!("search-{}", st.as_str()))))
        .collect())
}
