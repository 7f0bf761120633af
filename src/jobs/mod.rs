//! A scenario matrix as Kubernetes work: `--matrix KEY=V1,V2` over any
//! scenario field or var expands into cells (every combination, the first
//! key varying slowest), each cell the scenario with its values set. The
//! cells run as the indexes of one Indexed Job ([`render`]), each pod
//! picking its cell by `JOB_COMPLETION_INDEX`; `oomsim merge` puts their
//! reports back together ([`merge`]).

pub mod merge;
pub mod render;

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a matrix or cell table cannot be.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("--matrix {0:?}: give KEY=V1,V2 (a dotted scenario path, e.g. gpu.memory=40Gi,80Gi)")]
    Matrix(String),
    #[error("--matrix {key}: {why}")]
    Path { key: String, why: String },
    #[error("--matrix {key} appears twice")]
    Twice { key: String },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("cell {index} does not exist: the table has {cells} (0..{cells})")]
    NoCell { index: usize, cells: usize },
    #[error("cell {index} ({label}): {message}")]
    Cell {
        index: usize,
        label: String,
        message: String,
    },
}

/// One key of the matrix and its values, as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// One cell: its index (the Job's completion index) and its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub index: usize,
    pub values: Vec<(String, String)>,
}

impl Cell {
    /// `gpu.memory=40Gi search.strategies=chunked`, or `base` for no values.
    pub fn label(&self) -> String {
        if self.values.is_empty() {
            return "base".into();
        }
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `KEY=V1,V2`; commas inside brackets stay with their value
/// (`search.strategies=[chunked,mmap],[mmap]`).
pub fn parse_axis(arg: &str) -> Result<Axis, JobError> {
    let (key, list) = arg
        .split_once('=')
        .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
        .ok_or_else(|| JobError::Matrix(arg.to_string()))?;
    let mut values = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in list.char_indices() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                values.push(list[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    values.push(list[start..].trim().to_string());
    if values.iter().any(String::is_empty) || depth != 0 {
        return Err(JobError::Matrix(arg.to_string()));
    }
    Ok(Axis {
        key: key.trim().to_string(),
        values,
    })
}

/// Every combination of the axes' values, the first axis varying slowest.
pub fn expand(axes: &[Axis]) -> Result<Vec<Cell>, JobError> {
    for (i, a) in axes.iter().enumerate() {
        if axes[..i].iter().any(|b| b.key == a.key) {
            return Err(JobError::Twice { key: a.key.clone() });
        }
    }
    let mut cells: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for a in axes {
        cells = cells
            .into_iter()
            .flat_map(|done| {
                a.values.iter().map(move |v| {
                    let mut next = done.clone();
                    next.push((a.key.clone(), v.clone()));
                    next
                })
            })
            .collect();
    }
    Ok(cells
        .into_iter()
        .enumerate()
        .map(|(index, values)| Cell { index, values })
        .collect())
}

/// A value as YAML reads it: `8` a number, `40Gi` a string, `[a, b]` a list.
fn yaml_value(raw: &str) -> Value {
    serde_saphyr::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// Set `key` (dotted; a number indexes a list, a name picks the list item
/// with that `name`) in the scenario tree. The last step may be new (a
/// field the scenario left to its default); the steps before must exist.
pub fn set(tree: &mut Value, key: &str, raw: &str) -> Result<(), JobError> {
    let fail = |why: String| JobError::Path {
        key: key.to_string(),
        why,
    };
    let steps: Vec<&str> = key.split('.').collect();
    let mut at = tree;
    for (n, step) in steps.iter().enumerate() {
        let last = n + 1 == steps.len();
        let here = steps[..n].join(".");
        at = match at {
            Value::Object(map) if last => {
                let value = yaml_value(raw);
                // A single value for a list field is a list of one.
                let value = match (map.get(*step), value) {
                    (Some(Value::Array(_)), v @ Value::Array(_)) => v,
                    (Some(Value::Array(_)), v) => Value::Array(vec![v]),
                    (_, v) => v,
                };
                map.insert((*step).to_string(), value);
                return Ok(());
            }
            Value::Object(map) => map.get_mut(*step).ok_or_else(|| {
                fail(format!(
                    "the scenario has no {step:?}{}",
                    if here.is_empty() {
                        String::new()
                    } else {
                        format!(" under {here}")
                    }
                ))
            })?,
            Value::Array(items) => {
                let found = match step.parse::<usize>() {
                    Ok(i) => items.get_mut(i),
                    Err(_) => items
                        .iter_mut()
                        .find(|x| x.get("name").and_then(Value::as_str) == Some(step)),
                };
                let item = found.ok_or_else(|| fail(format!("{here} has no item {step:?}")))?;
                if last {
                    *item = yaml_value(raw);
                    return Ok(());
                }
                item
            }
            _ => return Err(fail(format!("{here} is a single value, not a map or list"))),
        };
    }
    Ok(())
}

/// The scenario's text with one cell's values set, as YAML.
pub fn cell_scenario(scenario: &str, cell: &Cell) -> Result<String, JobError> {
    let mut tree: Value = serde_saphyr::from_str(scenario).map_err(|e| JobError::Cell {
        index: cell.index,
        label: cell.label(),
        message: e.to_string(),
    })?;
    for (k, v) in &cell.values {
        set(&mut tree, k, v)?;
    }
    serde_saphyr::to_string(&tree).map_err(|e| JobError::Cell {
        index: cell.index,
        label: cell.label(),
        message: e.to_string(),
    })
}

/// The cell table the ConfigMap carries, as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    pub scenario_name: String,
    pub axes: Vec<Axis>,
    pub cells: Vec<Cell>,
}

impl Table {
    /// A short name for this table (FNV-1a of its JSON), so cells of
    /// several tables (one per runner, say) merge without mixing up.
    pub fn id(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let hash = json.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{:08x}", hash >> 32)
    }

    pub fn cell(&self, index: usize) -> Result<&Cell, JobError> {
        self.cells.get(index).ok_or(JobError::NoCell {
            index,
            cells: self.cells.len(),
        })
    }
}

/// Read a file the pod was handed, with the config bound.
pub fn read(path: &Path) -> Result<String, JobError> {
    crate::bounded::read_text(path, crate::bounded::CONFIG_MAX).map_err(|e| JobError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
