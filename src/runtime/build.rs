//! A runtime's program made runnable before its container starts: the
//! runtime looked for on PATH (missing: one line, exit 3), Java and Go
//! sources compiled into a cache outside the project (`javac` and `go
//! build` run here, not inside the pod's cgroup, so the compiler's memory
//! is not charged to the container), and the runtime told to report where
//! its memory goes ([`super::stats`]).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Runtime;
use crate::plan::Program;

/// The file each run's runtime statistics are written to, told to the
/// Java agent and the Node preload through the environment.
pub const ENV_STATS: &str = "OOMSIM_RUNTIME_STATS";

const AGENT_SOURCE: &str = include_str!("agent/OomsimAgent.java");
const PRELOAD_SOURCE: &str = include_str!("agent/preload.js");

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{tool} is not installed (needed to run {program:?}); install {package}")]
    Missing {
        tool: String,
        program: String,
        package: &'static str,
    },
    #[error("{tool} failed on {source_file}: {output}")]
    Failed {
        tool: &'static str,
        source_file: String,
        output: String,
    },
    #[error(
        "image {image} is not in podman's local store (oomsim never pulls: `podman load` or `podman import` it)"
    )]
    NoImage { image: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where built programs are kept: `$XDG_CACHE_HOME/oomsim`, else
/// `~/.cache/oomsim`, outside the project.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("oomsim")
}

/// A program found on PATH (or given as a path).
pub fn on_path(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        return Path::new(tool).is_file().then(|| PathBuf::from(tool));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// A tool of `runtime` on PATH, or the line that says which package has it.
fn need(tool: &str, runtime: Runtime, program: &str) -> Result<PathBuf, BuildError> {
    on_path(tool).ok_or_else(|| BuildError::Missing {
        tool: tool.to_string(),
        program: program.to_string(),
        package: match runtime {
            Runtime::Java => "a JDK (Debian: default-jdk-headless)",
            Runtime::Node => "Node.js (Debian: nodejs)",
            Runtime::Go => "Go (Debian: golang-go)",
            Runtime::Python => "Python 3 (Debian: python3)",
        },
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A cache entry named after what it is built from; built once into a
/// temporary folder and renamed, so trials building at once never see half
/// of one.
fn cached(
    name: &str,
    inputs: &[&[u8]],
    build: impl FnOnce(&Path) -> Result<(), BuildError>,
) -> Result<PathBuf, BuildError> {
    let mut h = std::hash::DefaultHasher::new();
    inputs.hash(&mut h);
    let root = cache_dir();
    let dir = root.join(format!("{name}-{:016x}", h.finish()));
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).map_err(io(&root))?;
    let tmp = root.join(format!(
        ".{name}-{}-{:x}",
        std::process::id(),
        crate::monitor::clock::monotonic_ns()
    ));
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let built = build(&tmp);
    if built.is_err() || std::fs::rename(&tmp, &dir).is_err() {
        // Failed, or another trial renamed its copy first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    built.map(|()| dir)
}

/// Run a build tool; its output is the error when it fails.
fn tool(tool: &'static str, source_file: &str, cmd: &mut Command) -> Result<(), BuildError> {
    let out = cmd.output().map_err(|e| BuildError::Failed {
        tool,
        source_file: source_file.to_string(),
        output: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    Err(BuildError::Failed {
        tool,
        source_file: source_file.to_string(),
        output: first.trim().to_string(),
    })
}

fn read(path: &str) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(io(Path::new(path)))
}

/// Append to a variable the program may already set (`JAVA_TOOL_OPTIONS`, `NODE_OPTIONS`, `GODEBUG`).
fn add_env(env: &mut Vec<(String, String)>, key: &str, value: &str, sep: &str) {
    let inherited = std::env::var(key).ok().filter(|v| !v.is_empty());
    match env.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) if !v.is_empty() => *v = format!("{v}{sep}{value}"),
        Some((_, v)) => *v = value.to_string(),
        None => env.push((
            key.to_string(),
            inherited.map_or(value.to_string(), |i| format!("{i}{sep}{value}")),
        )),
    }
}

/// The program made runnable for its runtime, told to report its memory
/// to `stats` (a file for Java and Node; Go's gctrace goes to its log).
pub fn prepare(p: &Program, stats: &Path) -> Result<Program, BuildError> {
    let Some(runtime) = p.runtime else {
        return Ok(p.clone());
    };
    let mut out = p.clone();
    let shown = p.argv.join(" ");
    // The runtime the command names itself (`/opt/jdk/bin/java`), else the one on PATH.
    let named = |default: &'static str| -> String {
        if Runtime::of_command(&p.argv) == Some(runtime) {
            p.argv[0].clone()
        } else {
            default.to_string()
        }
    };
    let stats_file = stats.display().to_string();
    match runtime {
        Runtime::Java => {
            need(&named("java"), runtime, &shown)?;
            // `java Mem.java`: compiled here once, run from its classes.
            if let Some(i) = out.argv.iter().position(|a| a.ends_with(".java")) {
                need("javac", runtime, &shown)?;
                let src = out.argv[i].clone();
                let classes = cached("java", &[src.as_bytes(), &read(&src)?], |d| {
                    tool(
                        "javac",
                        &src,
                        Command::new("javac").arg("-d").arg(d).arg(&src),
                    )
                })?;
                let class = Path::new(&src)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.argv.splice(
                    i..=i,
                    ["-cp".to_string(), classes.display().to_string(), class],
                );
            }
            let agent = java_agent(&shown)?;
            add_env(
                &mut out.env,
                "JAVA_TOOL_OPTIONS",
                &format!(
                    "-XX:NativeMemoryTracking=summary -javaagent:{}",
                    agent.display()
                ),
                " ",
            );
            out.env.push((ENV_STATS.into(), stats_file));
        }
        Runtime::Node => {
            need(&named("node"), runtime, &shown)?;
            let dir = cached("node-preload", &[PRELOAD_SOURCE.as_bytes()], |d| {
                let f = d.join("oomsim-preload.js");
                std::fs::write(&f, PRELOAD_SOURCE).map_err(io(&f))
            })?;
            let preload = dir.join("oomsim-preload.js");
            add_env(
                &mut out.env,
                "NODE_OPTIONS",
                &format!("--require={}", preload.display()),
                " ",
            );
            out.env.push((ENV_STATS.into(), stats_file));
        }
        Runtime::Go => {
            // `mem.go ARGS` or `go run mem.go ARGS`: built here once.
            let src_at = match out.argv.as_slice() {
                [first, ..] if first.ends_with(".go") => Some((0, 1)),
                [go, run, file, ..]
                    if go.ends_with("go") && run == "run" && file.ends_with(".go") =>
                {
                    Some((2, 3))
                }
                _ => None,
            };
            if let Some((i, drop_to)) = src_at {
                need("go", runtime, &shown)?;
                let src = out.argv[i].clone();
                let dir = cached("go", &[src.as_bytes(), &read(&src)?], |d| {
                    tool(
                        "go build",
                        &src,
                        Command::new("go")
                            .args(["build", "-o"])
                            .arg(d.join("program"))
                            .arg(&src)
                            .env("GO111MODULE", "off")
                            .env("GOCACHE", cache_dir().join("go-build")),
                    )
                })?;
                out.argv
                    .splice(0..drop_to, [dir.join("program").display().to_string()]);
            } else {
                need(&out.argv[0], runtime, &shown)?;
            }
            add_env(&mut out.env, "GODEBUG", "gctrace=1", ",");
        }
        Runtime::Python => {
            need(&out.argv[0], runtime, &shown)?;
        }
    }
    Ok(out)
}

/// The agent jar that samples the JVM's native memory tracking in-process.
fn java_agent(shown: &str) -> Result<PathBuf, BuildError> {
    need("javac", Runtime::Java, shown)?;
    need("jar", Runtime::Java, shown)?;
    let dir = cached("java-agent", &[AGENT_SOURCE.as_bytes()], |d| {
        let src = d.join("OomsimAgent.java");
        std::fs::write(&src, AGENT_SOURCE).map_err(io(&src))?;
        let manifest = d.join("MANIFEST.MF");
        std::fs::write(&manifest, "Premain-Class: OomsimAgent\n").map_err(io(&manifest))?;
        let shown_src = src.display().to_string();
        tool(
            "javac",
            &shown_src,
            Command::new("javac").arg("-d").arg(d).arg(&src),
        )?;
        tool(
            "jar",
            &shown_src,
            Command::new("jar")
                .arg("cfm")
                .arg(d.join("oomsim-agent.jar"))
                .arg(&manifest)
                .arg("-C")
                .arg(d)
                .arg("OomsimAgent.class"),
        )
    })?;
    Ok(dir.join("oomsim-agent.jar"))
}
