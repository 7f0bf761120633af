//! Errors at the binary's edge: each layer's typed error becomes one line
//! on stderr and a distinct exit code, here and nowhere else.

use crate::compare::CompareError;
use crate::k8s::ManifestError;
use crate::llm::model::ModelError;
use crate::plot::PlotError;
use crate::report::ReportError;
use crate::run::RunError;
use crate::scenario::ScenarioError;
use crate::search::SearchError;

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const EXPECTATION_FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const HOST: u8 = 3;
    pub const INTERNAL: u8 = 4;
}

/// A failure at the binary's edge: its line and its exit code.
#[derive(Debug)]
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

    /// A bad flag value: `--flag: why`.
    pub fn flag(flag: &str, why: impl std::fmt::Display) -> Failure {
        Failure::input(format!("{flag}: {why}"))
    }
}

macro_rules! input_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::input(e.to_string())
            }
        }
    )*};
}

input_errors!(
    ScenarioError,
    CompareError,
    ReportError,
    ModelError,
    ManifestError
);

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        Failure {
            code: match e {
                _ if e.is_host() => exit::HOST,
                RunError::Template { .. } => exit::BAD_INPUT,
                _ => exit::INTERNAL,
            },
            message: e.to_string(),
        }
    }
}

/// A matrix that cannot be is bad input; a pod's mounted files that cannot
/// be read are the pod's failure.
impl From<crate::jobs::JobError> for Failure {
    fn from(e: crate::jobs::JobError) -> Self {
        match e {
            crate::jobs::JobError::File { .. } => Failure::internal(e.to_string()),
            _ => Failure::input(e.to_string()),
        }
    }
}

impl From<SearchError> for Failure {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Run(r) => r.into(),
            SearchError::EmptyRange { .. } => Failure::input(e.to_string()),
            SearchError::TooLarge { .. } => Failure {
                code: exit::HOST,
                message: e.to_string(),
            },
        }
    }
}

impl From<PlotError> for Failure {
    fn from(e: PlotError) -> Self {
        Failure::internal(format!("plot: {e}"))
    }
}

/// The most of a quoted value a message shows.
const QUOTED_SHOWN: usize = 64;
/// The longest message line.
const LINE_MAX: usize = 1000;

/// A message as printed: quoted values longer than [`QUOTED_SHOWN`]
/// characters cut (with their length said), the whole line at most
/// [`LINE_MAX`] characters, so a 50 MB scalar is never echoed.
pub fn shorten(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' {
            continue;
        }
        let mut inner = String::new();
        let mut closed = false;
        while let Some(d) = chars.next() {
            if d == '\\' {
                inner.push(d);
                if let Some(e) = chars.next() {
                    inner.push(e);
                }
            } else if d == '"' {
                closed = true;
                break;
            } else {
                inner.push(d);
            }
        }
        let n = inner.chars().count();
        if n > QUOTED_SHOWN {
            out.extend(inner.chars().take(QUOTED_SHOWN));
            out.push_str(&format!("...\" ({n} characters)"));
        } else {
            out.push_str(&inner);
            if closed {
                out.push('"');
            }
        }
    }
    let n = out.chars().count();
    if n > LINE_MAX {
        let kept: String = out.chars().take(LINE_MAX).collect();
        return format!("{kept}... ({} more characters)", n - LINE_MAX);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_quoted_values_are_cut_and_short_ones_kept() {
        let long = "x".repeat(5_000_000);
        let line = shorten(&format!("t.yaml:1: name: \"{long}\" is not a valid name"));
        assert_eq!(
            line,
            format!(
                "t.yaml:1: name: \"{}...\" (5000000 characters) is not a valid name",
                "x".repeat(64)
            )
        );
        let short = "t.yaml:5: pods[0].kind: \"lek\" is not a workload kind";
        assert_eq!(shorten(short), short);
        assert_eq!(shorten(r#"a "q\"uote" b"#), r#"a "q\"uote" b"#);
        assert_eq!(shorten("unclosed \"abc"), "unclosed \"abc");
    }

    #[test]
    fn long_lines_are_cut() {
        let line = shorten(&"y".repeat(3000));
        assert!(line.starts_with(&"y".repeat(1000)));
        assert!(line.ends_with("... (2000 more characters)"), "{line}");
    }
}
