//! Commands over files, touching no cgroup: `validate`, `plot`, `compare`.

use std::path::{Path, PathBuf};

use super::held;
use crate::cli::{Failure, exit};
use crate::html;
use crate::report::compare::{Junit, Markdown};
use crate::report::{Format, Saved};
use crate::units::fmt_quantity;

pub fn validate(path: &Path, strict: bool) -> Result<u8, Failure> {
    let loaded = crate::scenario::load(path, strict)?;
    for w in &loaded.warnings {
        eprintln!("oomsim: {w}");
    }
    let plan = loaded.plan;
    println!(
        "{}: ok: scenario {:?}, {} pod(s)",
        path.display(),
        plan.name,
        plan.pods.len()
    );
    for pod in &plan.pods {
        println!(
            "  {}: {}, request {}, limit {}, {} container(s), {} phase(s)",
            pod.name,
            pod.qos,
            pod.request_bytes().map_or("<none>".into(), fmt_quantity),
            pod.limit_bytes().map_or("<none>".into(), fmt_quantity),
            pod.containers.len(),
            pod.containers
                .iter()
                .map(|c| c.workload.phases.len())
                .sum::<usize>()
        );
    }
    Ok(exit::OK)
}

pub fn plot(file: &Path, out: Option<PathBuf>) -> Result<u8, Failure> {
    let dir = out.unwrap_or_else(|| file.parent().unwrap_or(Path::new(".")).to_path_buf());
    let base = file.parent().unwrap_or(Path::new("."));
    let (mut drawn, page) = match crate::report::load(file)? {
        Saved::Search(r) => (crate::plot::search(&r, &dir)?, html::search(&r, base)),
        Saved::Report(r) => (crate::plot::timeline(&r, &dir)?, html::run(&r, &[])),
    };
    drawn.push(html::write(&dir, &page).map_err(|e| Failure::flag("--out", e))?);
    for f in drawn {
        println!("{}", f.display());
    }
    Ok(exit::OK)
}

pub fn compare(
    baseline: &Path,
    current: &Path,
    tolerance: &str,
    junit: Option<PathBuf>,
    plot: Option<PathBuf>,
    out: Option<PathBuf>,
) -> Result<u8, Failure> {
    let tolerance =
        crate::compare::parse_tolerance(tolerance).map_err(|e| Failure::flag("--tolerance", e))?;
    let rows = crate::compare::compare(baseline, current, tolerance)?;
    let markdown = Markdown.render(&rows)?;
    print!("{markdown}");
    if let Some(path) = junit {
        Junit
            .write(&path, &rows)
            .map_err(|e| Failure::flag("--junit", e))?;
    }
    if let Some(stem) = plot {
        crate::plot::compare(&rows, &stem)?;
    }
    if let Some(dir) = out {
        let io = |e: std::io::Error| Failure::flag("--out", format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(io)?;
        crate::report::write_json(&dir.join("compare.json"), &rows)
            .map_err(|e| Failure::flag("--out", e))?;
        crate::plot::compare(&rows, &dir.join("compare"))?;
        let page = html::write(&dir, &html::compare(&rows, &markdown)).map_err(io)?;
        eprintln!("oomsim: wrote {}", page.display());
    }
    Ok(held(!rows.iter().any(|r| r.regression)))
}
