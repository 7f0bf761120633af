//! The cells' reports back together: from the JSON line each pod prints at
//! its end (in `kubectl logs` output, prefixed or not), from a cell's
//! `cell.json`, or from a folder of them; one row per cell with its
//! verdicts, the smallest safe limit of each search, each formula's fit,
//! the device it ran on, and what went wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::JobError;
use crate::gpu::DeviceBackend;
use crate::report::search::{Fit, SearchResult};
use crate::report::{Report, Saved};

/// A cell's line, kept beside its reports.
pub const CELL_FILE: &str = "cell.json";

/// Who the cell was, as its pod said.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellId {
    pub scenario: String,
    /// Which cell table (one `oomsim k8s job` rendering) it came from.
    pub table: String,
    /// The machine a dry run named (`--runner`), if any.
    #[serde(default)]
    pub runner: Option<String>,
    pub index: usize,
    pub cells: usize,
    pub label: String,
    pub values: Vec<(String, String)>,
    pub run_exit_code: u8,
    pub gpu_asked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellSearch {
    pub strategy: Option<String>,
    pub search: SearchResult,
}

/// One pod's line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellLine {
    pub oomsim_cell: CellId,
    pub report: Report,
    pub searches: Vec<CellSearch>,
}

/// One row of the merged table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub table: String,
    pub index: usize,
    pub label: String,
    /// `sim`, `cuda NVIDIA H100 80GB HBM3`, or `none`.
    pub device: String,
    /// Each pod's `Reason (exit N)`.
    pub verdicts: Vec<String>,
    /// The smallest safe limit per search (`chunked`, or the pod's name).
    pub smallest_safe: Vec<(String, Option<u64>)>,
    /// Each formula's fit per search: (search, formula, fit).
    pub formulas: Vec<(String, String, Fit)>,
    pub ok: bool,
    /// What went wrong, or what to doubt.
    pub notes: Vec<String>,
}

/// Everything read, in cell order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Merged {
    pub scenario: String,
    pub cells: usize,
    pub rows: Vec<Row>,
}

/// The cell lines in a text: a whole JSON file, or lines of a log (any
/// prefix before the `{` is dropped: `kubectl logs --prefix`).
pub fn lines_in(text: &str, shown: &str) -> Result<Vec<CellLine>, JobError> {
    let parse = |json: &str| {
        serde_json::from_str::<CellLine>(json).map_err(|e| JobError::File {
            path: shown.to_string(),
            message: format!("a cell line that does not read: {e}"),
        })
    };
    if !text.contains("\"oomsim_cell\"") {
        return Ok(Vec::new());
    }
    if text.trim_start().starts_with('{') && !text.trim().contains('\n') {
        return parse(text.trim()).map(|l| vec![l]);
    }
    text.lines()
        .filter(|l| l.contains("\"oomsim_cell\""))
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .map(parse)
        .collect()
}

/// Files and folders (searched for `cell.json`) to cell lines.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<CellLine>, JobError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                let entries = std::fs::read_dir(&d).map_err(|e| JobError::File {
                    path: d.display().to_string(),
                    message: e.to_string(),
                })?;
                for e in entries.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.file_name().is_some_and(|n| n == CELL_FILE) {
                        files.push(path);
                    }
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    let mut lines = Vec::new();
    for f in &files {
        let text = crate::bounded::read_text(f, crate::bounded::REPORT_MAX).map_err(|e| {
            JobError::File {
                path: f.display().to_string(),
                message: e.to_string(),
            }
        })?;
        let found = lines_in(&text, &f.display().to_string())?;
        if found.is_empty() {
            return Err(JobError::File {
                path: f.display().to_string(),
                message: if is_plain_report(f) {
                    "a report of a run, not a cell: merge reads what `oomsim k8s cell` wrote (its pod's last line, or cell.json beside its reports)".into()
                } else {
                    "no cell in it (a pod's last line with `oomsim_cell`, or a cell.json)".into()
                },
            });
        }
        lines.extend(found);
    }
    Ok(lines)
}

fn device(r: &Report) -> String {
    match &r.gpu {
        Some(d) => match d.backend {
            DeviceBackend::Sim => "sim".into(),
            DeviceBackend::Cuda => format!("cuda {}", d.name),
        },
        None => "none".into(),
    }
}

fn row(line: &CellLine) -> Row {
    let id = &line.oomsim_cell;
    let r = &line.report;
    let mut notes = Vec::new();
    if id.gpu_asked
        && r.gpu
            .as_ref()
            .is_some_and(|d| d.backend == DeviceBackend::Sim)
    {
        notes.push("ran on the sim device where a GPU was asked: no CUDA on that node".into());
    }
    if let Some(sig) = &r.interrupted {
        notes.push(format!("stopped by {sig}"));
    }
    if !r.ok {
        notes.push(format!(
            "expectations failed (oomsim run exit {})",
            id.run_exit_code
        ));
    }
    let name = |s: &CellSearch| s.strategy.clone().unwrap_or_else(|| s.search.pod.clone());
    Row {
        table: match &id.runner {
            Some(r) => format!("{r}:{}", id.table),
            None => id.table.clone(),
        },
        index: id.index,
        label: id.label.clone(),
        device: device(r),
        verdicts: r
            .pods
            .iter()
            .map(|p| format!("{}: {} ({})", p.name, p.verdict.reason, p.verdict.exit_code))
            .collect(),
        smallest_safe: line
            .searches
            .iter()
            .map(|s| (name(s), s.search.min_safe_limit_bytes))
            .collect(),
        formulas: line
            .searches
            .iter()
            .flat_map(|s| {
                s.search
                    .formulas
                    .iter()
                    .map(move |f| (name(s), f.name.clone(), f.fit))
            })
            .collect(),
        ok: r.ok && notes.is_empty(),
        notes,
    }
}

/// One row per cell of each table, in index order; a cell with no line
/// (its pod failed, or its logs were not given) says so.
pub fn merge(lines: &[CellLine]) -> Result<Merged, JobError> {
    let Some(first) = lines.first() else {
        return Err(JobError::File {
            path: "(no input)".into(),
            message: "no cell to merge".into(),
        });
    };
    let scenario = first.oomsim_cell.scenario.clone();
    // Per table, in the order tables first appear: its size and its rows.
    let mut tables: Vec<(String, usize, BTreeMap<usize, Row>)> = Vec::new();
    for l in lines {
        let id = &l.oomsim_cell;
        if id.scenario != scenario {
            return Err(JobError::File {
                path: id.label.clone(),
                message: format!(
                    "cell of scenario {:?} among cells of {scenario:?}",
                    id.scenario
                ),
            });
        }
        let r = row(l);
        let at = match tables.iter().position(|t| t.0 == r.table) {
            Some(i) => i,
            None => {
                tables.push((r.table.clone(), 0, BTreeMap::new()));
                tables.len() - 1
            }
        };
        let t = &mut tables[at];
        t.1 = t.1.max(id.cells);
        // A retried cell prints again: the last line of an index wins.
        t.2.insert(id.index, r);
    }
    let mut rows = Vec::new();
    let mut cells = 0;
    for (table, size, mut found) in tables {
        for index in 0..size {
            found.entry(index).or_insert_with(|| Row {
                table: table.clone(),
                index,
                label: "?".into(),
                device: "-".into(),
                verdicts: Vec::new(),
                smallest_safe: Vec::new(),
                formulas: Vec::new(),
                ok: false,
                notes: vec![
                    "no report: the pod failed before its last line, or its logs were not given"
                        .into(),
                ],
            });
        }
        cells += size.max(found.len());
        rows.extend(found.into_values());
    }
    Ok(Merged {
        scenario,
        cells,
        rows,
    })
}

/// The merged table, kubectl-style columns.
pub fn text(m: &Merged) -> String {
    use crate::units::fmt_quantity;
    let mut out = format!(
        "Scenario {}: {} cell(s), {} with a report\n",
        m.scenario,
        m.cells,
        m.rows.iter().filter(|r| r.device != "-").count()
    );
    out += &format!(
        "{:<5} {:<36} {:<8} {:<26} {:<30} NOTES\n",
        "CELL", "VALUES", "DEVICE", "VERDICT", "SMALLEST SAFE"
    );
    let several = m.rows.iter().any(|r| r.table != m.rows[0].table);
    // TABLE/INDEX when cells of several tables (runners) are merged.
    let name = |r: &Row| {
        if several {
            // The runner's name, else the table's first hex digits.
            let table = r.table.split(':').next().unwrap_or_default();
            format!("{}/{}", &table[..table.len().min(12)], r.index)
        } else {
            r.index.to_string()
        }
    };
    for r in &m.rows {
        let cell = name(r);
        let safe = r
            .smallest_safe
            .iter()
            .map(|(who, b)| format!("{who} {}", b.map_or("none".into(), fmt_quantity)))
            .collect::<Vec<_>>()
            .join(", ");
        out += &format!(
            "{:<5} {:<36} {:<8} {:<26} {:<30} {}\n",
            cell,
            r.label,
            r.device,
            r.verdicts.join(", "),
            if safe.is_empty() { "-".into() } else { safe },
            r.notes.join("; ")
        );
    }
    let mut fits: BTreeMap<(String, String), Vec<(String, Fit)>> = BTreeMap::new();
    for r in &m.rows {
        for (search, formula, fit) in &r.formulas {
            fits.entry((search.clone(), formula.clone()))
                .or_default()
                .push((name(r), *fit));
        }
    }
    if !fits.is_empty() {
        out += "\nFORMULA                             PER CELL\n";
        for ((search, formula), per) in &fits {
            let cells = per
                .iter()
                .map(|(i, f)| format!("{i}:{}", f.as_str()))
                .collect::<Vec<_>>()
                .join(" ");
            out += &format!("{:<35} {cells}\n", format!("{formula} ({search})"));
        }
    }
    out
}

/// Whether a path is a saved report or search (not a cell), for a clear error.
fn is_plain_report(path: &Path) -> bool {
    crate::report::load(path).is_ok_and(|s| matches!(s, Saved::Report(_) | Saved::Search(_)))
}
