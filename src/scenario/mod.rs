//! Scenario files: YAML in, a checked [`Plan`] out.
//!
//! Loading never touches the host. Every error is one line that names the
//! file, the line and the field, so `oomsim validate` and `oomsim run` refuse
//! bad input before a cgroup exists or a report is written. `raw` mirrors
//! the YAML with positions; `check/` turns it into a plan, one file per block.

mod check;
mod raw;

use std::path::Path;

use crate::plan::Plan;
use raw::RawScenario;

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

/// A checked plan and what the checker warned about (one line each).
pub struct Loaded {
    pub plan: Plan,
    pub warnings: Vec<String>,
}

/// Read and check a scenario file; `strict` refuses what is otherwise a warning.
pub fn load(path: &Path, strict: bool) -> Result<Loaded, ScenarioError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown, strict)
}

/// Check scenario text; `shown` names the file in errors.
pub fn parse(text: &str, shown: &str, strict: bool) -> Result<Loaded, ScenarioError> {
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
    let checker = check::Checker {
        path: shown,
        has_gpu: raw.gpu.is_some(),
        strict,
        warnings: Default::default(),
    };
    let plan = checker.scenario(raw)?;
    Ok(Loaded {
        plan,
        warnings: checker.warnings.into_inner(),
    })
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

#[cfg(test)]
mod tests;
