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
