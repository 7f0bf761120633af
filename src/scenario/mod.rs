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
    let text = crate::bounded::read_text(path, crate::bounded::CONFIG_MAX).map_err(|source| {
        ScenarioError::Read {
            path: shown.clone(),
            source,
        }
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
    // The path serde was at when it failed names the field in the message.
    let mut track = serde_path_to_error::Track::new();
    let raw: Result<RawScenario, _> = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde::Deserialize::deserialize(serde_path_to_error::Deserializer::new(de, &mut track))
    });
    let raw = raw.map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        ScenarioError::Yaml {
            path: shown.to_string(),
            line,
            column,
            message: located(&field_path(&track.path()), &yaml_message(&e.to_string())),
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

/// serde's path as the scenario's field names: `pods[0].priority`, without
/// the `value` that a spanned field's inner value adds.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for s in path.iter() {
        match s {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key == "value" => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// The field serde was reading (`pods[0].priority`) and, for a value of the
/// wrong type, what the field wants.
fn located(field: &str, message: &str) -> String {
    let wants = match message {
        "invalid u32" | "invalid u64" => Some("a whole number, 0 or more"),
        "invalid i32" | "invalid i64" => Some("a whole number"),
        "invalid f64" | "invalid f32" => Some("a number"),
        "invalid boolean" => Some("true or false"),
        "expected string scalar" => Some("one value, not a list or a mapping"),
        "expected sequence start" => Some("a list"),
        "expected mapping start" => Some("a mapping (key: value)"),
        _ => None,
    };
    let message = match wants {
        Some(w) => format!("{message}: it must be {w}"),
        None => message.to_string(),
    };
    match field {
        "" => message,
        f => format!("{f}: {message}"),
    }
}

/// serde-saphyr renders a snippet over several lines; keep only the
/// message, in the scenario's words where the parser names its own API.
fn yaml_message(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => first,
    };
    if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        let key = key.split(", set DuplicateKeyPolicy").next().unwrap_or(key);
        return format!("{key} is given twice");
    }
    if message.starts_with("multiple YAML documents detected") {
        return "a scenario is one YAML document; this file has another after ---".into();
    }
    message.to_string()
}

#[cfg(test)]
mod tests;
