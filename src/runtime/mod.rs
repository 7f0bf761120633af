//! Language runtimes inside a container: which one a command runs, its
//! program built and instrumented ([`build`]), where its memory went
//! ([`stats`]), and its own out-of-memory read from its output ([`oom`]).

pub mod build;
pub mod image;
pub mod oom;
pub mod stats;

use serde::{Deserialize, Serialize};

/// A runtime whose own heap cap and out-of-memory oomsim knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Java,
    Node,
    Go,
    Python,
}

impl Runtime {
    pub const NAMES: &'static str = "java, node, go, python";

    pub fn name(self) -> &'static str {
        match self {
            Runtime::Java => "java",
            Runtime::Node => "node",
            Runtime::Go => "go",
            Runtime::Python => "python",
        }
    }

    pub fn parse(text: &str) -> Option<Runtime> {
        [Runtime::Java, Runtime::Node, Runtime::Go, Runtime::Python]
            .into_iter()
            .find(|r| r.name() == text)
    }

    /// The runtime a command line starts, from its program's name: `java`,
    /// `node`, `python3.11`, `go run`, or a Go source file.
    pub fn of_command(argv: &[String]) -> Option<Runtime> {
        let program = argv.first()?;
        let base = program.rsplit('/').next().unwrap_or(program);
        match base {
            "java" => Some(Runtime::Java),
            "node" | "nodejs" => Some(Runtime::Node),
            "go" => Some(Runtime::Go),
            _ if base.ends_with(".go") => Some(Runtime::Go),
            _ if base == "python"
                || base
                    .strip_prefix("python")
                    .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.')) =>
            {
                Some(Runtime::Python)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn runtime_from_the_program() {
        for (cmd, want) in [
            ("/usr/bin/java -Xmx64m Hog", Some(Runtime::Java)),
            ("node --max-old-space-size=32 a.js", Some(Runtime::Node)),
            ("python3.11 -c pass", Some(Runtime::Python)),
            ("python -c pass", Some(Runtime::Python)),
            ("workloads/go/mem.go heap", Some(Runtime::Go)),
            ("go run mem.go", Some(Runtime::Go)),
            ("python3-config --libs", None),
            ("sh -c true", None),
        ] {
            assert_eq!(Runtime::of_command(&argv(cmd)), want, "{cmd}");
        }
        assert_eq!(Runtime::parse("node"), Some(Runtime::Node));
        assert_eq!(Runtime::parse("ruby"), None);
    }
}
