//! `--emit-scenario FILE`: a scenario that reproduces the diagnosed failure
//! on this host, from the evidence's numbers: the limit and request, and a
//! workload shaped like what the evidence shows (a leak past the limit, a
//! leak the node cannot hold, a device allocation past the GPU, vLLM's KV
//! cache with the settings it refused, a runtime under its own cap). What
//! the evidence did not say is assumed, and the scenario's description says
//! what. A program or model the scenario needs is written beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Class, Diagnosis};
use crate::runtime::Runtime;
use crate::units::fmt_quantity;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error(
        "--emit-scenario: {0} is not a memory failure; there is nothing for oomsim to reproduce"
    )]
    NotMemory(&'static str),
    #[error(
        "--emit-scenario: Go's own out-of-memory is an allocation the system refused; under a limit a Go program is OOMKilled instead (diagnose the kill)"
    )]
    GoRuntime,
    #[error("--emit-scenario: {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What to write: the scenario, and the files it needs beside it.
pub struct Emitted {
    pub scenario: String,
    pub extra: Vec<(PathBuf, &'static str)>,
}

fn mi(bytes: u64) -> u64 {
    bytes.div_ceil(MIB).saturating_mul(MIB)
}

fn q(bytes: u64) -> String {
    fmt_quantity(mi(bytes))
}

/// The scenario for a diagnosis, to be written at `path`.
pub fn scenario(d: &Diagnosis, path: &Path) -> Result<Emitted, EmitError> {
    let f = &d.facts;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .map(sanitize)
        .unwrap_or_else(|| "diagnosed".into());
    let pod = f
        .pod
        .as_deref()
        .map(sanitize)
        .unwrap_or_else(|| "app".into());
    let mut assumed: Vec<String> = Vec::new();
    let limit = f.limit_bytes.unwrap_or_else(|| {
        assumed.push("a 256Mi limit".into());
        256 * MIB
    });
    let request = f.request_bytes.map(|r| r.min(limit));
    let resources = |limit: Option<u64>, request: Option<u64>| {
        let mut s = String::from("    resources:\n");
        if let Some(r) = request {
            let _ = writeln!(s, "      requests: {{memory: {}}}", q(r));
        }
        if let Some(l) = limit {
            let _ = writeln!(s, "      limits: {{memory: {}}}", q(l));
        }
        s
    };
    let mut extra = Vec::new();
    let mut head = String::new();
    let body = match d.class {
        Class::CgroupOom => {
            let peak = f.usage_bytes.unwrap_or(limit).max(limit);
            let peak = mi(peak.saturating_add(peak / 4));
            assumed.push(format!(
                "a peak of {} (25% over what it died at; the evidence cannot say how far past the limit it would have gone)",
                q(peak)
            ));
            format!(
                "  - name: {pod}\n{}    workload: {{kind: leak, rate: {}/s, cap: {}, duration: 30s}}\n    expect: {{reason: OOMKilled, exit_code: 137}}\nsearch:\n  pod: {pod}\n  range: {}..{}\n  repeat: 2\n",
                resources(Some(limit), request),
                q(peak / 4),
                q(peak),
                q(limit / 2),
                q(peak.saturating_mul(2))
            )
        }
        Class::NodeEviction => {
            let threshold = f.eviction_threshold_bytes.unwrap_or(100 * MIB);
            let usage = f.usage_bytes.unwrap_or(GIB);
            let capacity = mi(usage
                .saturating_add(threshold.saturating_mul(2))
                .max(512 * MIB));
            let request = f.request_bytes.unwrap_or(usage / 4);
            assumed.push(format!(
                "a node of {} (the pod's usage and the threshold's room; other pods' memory is not in the evidence)",
                q(capacity)
            ));
            let _ = write!(
                head,
                "node:\n  capacity: {}\n  evictionHard: {{memory.available: {}}}\n  housekeeping: 1s\n",
                q(capacity),
                q(threshold)
            );
            format!(
                "  - name: {pod}\n{}    workload: {{kind: leak, rate: {}/s, cap: {}, duration: 60s}}\n    expect: {{reason: Evicted, within: 50s}}\n",
                resources(Some(capacity.saturating_mul(2)), Some(request)),
                q(capacity / 20),
                q(capacity)
            )
        }
        Class::NodeOom => {
            let capacity = f.node_allocatable_bytes.unwrap_or(2 * GIB);
            let _ = write!(
                head,
                "node:\n  capacity: {}\n  evictionHard: {{memory.available: 100Mi}}\n  housekeeping: 10s\n",
                q(capacity)
            );
            format!(
                "  - name: {pod}\n{}    phases:\n      - {{kind: steady, size: 0, duration: 500ms}}\n      - {{kind: leak, rate: max, cap: {}}}\n    expect: {{reason: OOMKilled, within: 15s}}\n",
                resources(
                    Some(capacity.saturating_mul(2)),
                    Some(request.unwrap_or(256 * MIB))
                ),
                q(capacity.saturating_add(capacity / 2))
            )
        }
        Class::CudaOom => {
            let total = f.gpu_total_bytes.unwrap_or_else(|| {
                assumed.push("a 24Gi GPU".into());
                24 * GIB
            });
            let held = f
                .gpu_in_use_bytes
                .or(f.gpu_free_bytes.map(|fr| total.saturating_sub(fr)))
                .unwrap_or(total * 9 / 10);
            let tried = f.gpu_tried_bytes.unwrap_or(total / 5);
            let _ = writeln!(head, "gpu: {{backend: auto, memory: {}}}", q(total));
            format!(
                "  - name: {pod}\n{}    workload: {{kind: model-load, size: {}, source: synthetic, strategy: chunked, chunk: 64Mi}}\n    expect: {{reason: Error, exit_code: 1}}\n",
                resources(Some(limit), request),
                q(held.saturating_add(tried))
            )
        }
        Class::VllmKvStartup => vllm(d, path, &pod, &mut head, &mut extra, &mut assumed),
        Class::RuntimeOom => {
            let (runtime, kind) = d
                .runtime
                .zip(f.runtime_kind.clone())
                .unwrap_or((Runtime::Java, "Java heap space".into()));
            let cmd = runtime_command(runtime, &kind, limit, path, &mut extra)?;
            let code = if runtime == Runtime::Node { 134 } else { 1 };
            format!(
                "  - name: {pod}\n{}    workload:\n      kind: command\n      command: {cmd}\n    expect: {{reason: Error, exit_code: {code}}}\n",
                resources(Some(limit), request)
            )
        }
        c => return Err(EmitError::NotMemory(c.as_str())),
    };
    let description = format!(
        "Reproduces {}: {}.{}",
        d.class.as_str(),
        d.summary,
        if assumed.is_empty() {
            String::new()
        } else {
            format!(" Assumed: {}.", assumed.join("; "))
        }
    );
    let scenario = format!(
        "# Written by `oomsim diagnose --emit-scenario` from the evidence.\nname: {name}\ndescription: {}\n{head}pods:\n{body}",
        serde_json::to_string(&description).unwrap_or_default()
    );
    Ok(Emitted { scenario, extra })
}

/// The shipped workload program for a runtime's own OOM, under its cap.
fn runtime_command(
    runtime: Runtime,
    kind: &str,
    limit: u64,
    path: &Path,
    extra: &mut Vec<(PathBuf, &'static str)>,
) -> Result<String, EmitError> {
    let (file, text): (&str, &'static str) = match runtime {
        Runtime::Java => ("Mem.java", include_str!("../../workloads/java/Mem.java")),
        Runtime::Node => ("mem.js", include_str!("../../workloads/node/mem.js")),
        Runtime::Python => ("mem.py", include_str!("../../workloads/python/mem.py")),
        Runtime::Go => return Err(EmitError::GoRuntime),
    };
    // In a folder of its own: javac wants `Mem.java` named as its class.
    let program = beside(path, "workload").join(file);
    extra.push((program.clone(), text));
    let p = serde_json::to_string(&program.display().to_string()).unwrap_or_default();
    let live = q(limit * 3 / 4);
    Ok(match (runtime, kind) {
        (Runtime::Java, "Metaspace") => {
            format!("[java, \"-XX:MaxMetaspaceSize=32m\", {p}, classes, --count, \"200000\"]")
        }
        (Runtime::Java, "Direct buffer memory") => format!(
            "[java, \"-XX:MaxDirectMemorySize={{limit*0.25:MiB}}m\", {p}, direct, --size, {live}]"
        ),
        (Runtime::Java, _) => {
            format!("[java, \"-Xmx{{limit*0.5:MiB}}m\", {p}, heap, --live, {live}]")
        }
        (Runtime::Node, _) => format!(
            "[node, \"--max-old-space-size={{limit*0.5:MiB}}\", {p}, heap, --live, {live}, --rate, 64Mi]"
        ),
        _ => format!("[python3, {p}, big, --size, 1Pi]"),
    })
}

/// vLLM with the settings it refused, on a shipped model config (the
/// evidence rarely carries the model's shape).
fn vllm(
    d: &Diagnosis,
    path: &Path,
    pod: &str,
    head: &mut String,
    extra: &mut Vec<(PathBuf, &'static str)>,
    assumed: &mut Vec<String>,
) -> String {
    let f = &d.facts;
    let total = f.gpu_total_bytes.unwrap_or(24 * GIB);
    let util = f.gpu_memory_utilization.unwrap_or(0.9);
    let len = f.max_model_len.unwrap_or(8192);
    let model = beside(path, "model.json");
    extra.push((
        model.clone(),
        include_str!("../../scenarios/models/llama-3-8b.json"),
    ));
    assumed.push(
        "Llama-3-8B's config (replace model.json with the served model's config.json)".into(),
    );
    let _ = writeln!(head, "gpu: {{backend: auto, memory: {}}}", q(total));
    let mut pods = String::new();
    let mut wait = String::new();
    if let Some(free) = f.gpu_free_bytes.filter(|fr| *fr < total) {
        let held = total - free;
        let _ = write!(
            pods,
            "  - name: other-process\n    resources: {{limits: {{memory: 128Mi}}}}\n    workload: {{kind: model-load, size: {}, source: synthetic, strategy: chunked, chunk: 64Mi, hold: 30s}}\n    expect: {{reason: Completed}}\n",
            q(held)
        );
        wait = "      - {kind: steady, size: 0, duration: 14s}\n".into();
    }
    let model_name = model
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("model.json");
    let _ = write!(
        pods,
        "  - name: {pod}\n    resources: {{limits: {{memory: 256Mi}}}}\n    phases:\n{wait}      - kind: kv-cache\n        model: {model_name}\n        mode: paged\n        gpu_memory_utilization: {util}\n        max_num_seqs: 256\n        max_model_len: {len}\n        prompt: 512\n        output: 512\n        concurrency: 8\n        ramp: 1s\n        step: 2ms\n        duration: 3s\n    expect: {{reason: Error, exit_code: 1}}\n"
    );
    pods
}

/// `DIR/STEM.NAME` beside the scenario.
fn beside(path: &Path, name: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario");
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.join(format!("{stem}.{name}"))
}

/// A Kubernetes name from anything: lower case, `-` for the rest.
fn sanitize(s: &str) -> String {
    let out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "app".into()
    } else {
        out.chars().take(40).collect()
    }
}

/// Write the files beside it first, then the scenario, each whole (a
/// temporary name renamed); on any failure nothing is left.
pub fn write(e: &Emitted, path: &Path) -> Result<(), EmitError> {
    let mut written: Vec<PathBuf> = Vec::new();
    let all = e
        .extra
        .iter()
        .map(|(p, t)| (p.clone(), *t))
        .chain(std::iter::once((path.to_path_buf(), e.scenario.as_str())));
    for (p, text) in all {
        let tmp = p.with_extension("oomsim-tmp");
        let dir = p.parent().unwrap_or(Path::new("."));
        let r = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&tmp, text))
            .and_then(|_| std::fs::rename(&tmp, &p));
        if let Err(source) = r {
            let _ = std::fs::remove_file(&tmp);
            for w in &written {
                let _ = std::fs::remove_file(w);
            }
            return Err(EmitError::Write {
                path: p.display().to_string(),
                source,
            });
        }
        written.push(p);
    }
    Ok(())
}
