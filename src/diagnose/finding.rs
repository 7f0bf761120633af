//! What one line of evidence says, typed: the parsers turn lines into
//! findings, the classifier weighs findings, never text.

use crate::runtime::oom::RuntimeOom;

/// Which of a container's states a `Reason` or `Exit Code` was read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `State:` (the current run).
    State,
    /// `Last State:` / `lastState` (the run before).
    LastState,
    /// The pod's own status (`Status: Failed`, `Reason: Evicted`).
    Pod,
    /// Neither could be told.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Liveness,
    Startup,
    Readiness,
    /// An exec probe's command that failed (containerd's `ExecSync ... failed`).
    Exec,
}

impl Probe {
    pub fn name(self) -> &'static str {
        match self {
            Probe::Liveness => "liveness",
            Probe::Startup => "startup",
            Probe::Readiness => "readiness",
            Probe::Exec => "exec",
        }
    }
}

/// Which OOM killer a kernel kill line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillScope {
    /// `Memory cgroup out of memory:` / `CONSTRAINT_MEMCG`.
    Memcg,
    /// `Out of memory:` with no cgroup / `CONSTRAINT_NONE`.
    Node,
    /// A bare `Killed process` line: either.
    Unsaid,
}

/// The process the OOM killer chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    pub pid: i32,
    pub comm: String,
}

/// PyTorch's (or the driver's) CUDA out-of-memory, with what it said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CudaOom {
    pub tried_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    /// Allocated by PyTorch's tensors.
    pub allocated_bytes: Option<u64>,
    /// Held by PyTorch's caching allocator (allocated or not).
    pub reserved_bytes: Option<u64>,
    /// What the failing process held in all (torch 2.1+ says it).
    pub in_use_bytes: Option<u64>,
}

/// vLLM refusing to start because the KV cache does not fit.
#[derive(Debug, Clone, PartialEq)]
pub enum VllmKv {
    /// "No available memory for the cache blocks": nothing left for KV.
    NoCacheBlocks,
    /// V0: max seq len larger than the tokens the KV cache holds.
    MaxLenOverCache { max_model_len: u64, kv_tokens: u64 },
    /// V1: one max-length request needs more KV memory than there is.
    NeedsMore {
        max_model_len: Option<u64>,
        needed: Option<u64>,
        available: Option<u64>,
        estimated_max_len: Option<u64>,
    },
    /// "Available KV cache memory: -x GiB": weights and activations already
    /// exceed the utilization's budget.
    NegativeAvailable { bytes: u64 },
    /// V1: less free at start-up than utilization asks (lower it).
    FreeBelowUtilization {
        free: Option<u64>,
        total: Option<u64>,
        utilization: Option<f64>,
        wanted: Option<u64>,
    },
}

/// A line's meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    // Kubernetes status (describe, -o yaml|json).
    Reason {
        reason: String,
        scope: Scope,
    },
    ExitCode {
        code: i32,
        scope: Scope,
    },
    Signal(i32),
    /// `docker inspect`'s `"OOMKilled": true|false`.
    OomKilledFlag(bool),
    RestartCount(u32),
    Limit(u64),
    Request(u64),
    Qos(String),
    Pod(String),
    Container(String),
    NodeAllocatable(u64),
    Finished(String),
    // Kubernetes events and conditions.
    Evicted {
        resource: Option<String>,
        threshold: Option<u64>,
        available: Option<u64>,
        usage: Option<u64>,
        request: Option<u64>,
        container: Option<String>,
    },
    MemoryPressure,
    ProbeFailed {
        probe: Probe,
        restarts: bool,
    },
    Preempted,
    GraceExceeded,
    Stopping,
    NodeShutdown,
    SystemOom {
        victim: Option<Victim>,
    },
    // The kernel's log.
    OomInvoked {
        comm: String,
    },
    KernelKill {
        scope: KillScope,
        victim: Option<Victim>,
        anon_rss: Option<u64>,
    },
    Constraint {
        memcg: bool,
        oom_memcg: Option<String>,
    },
    TaskInMemcg {
        limit_of: String,
    },
    MemcgUsage {
        usage: u64,
        limit: u64,
    },
    TraceFrame {
        memcg: bool,
    },
    /// `Memory cgroup stats for /...`: printed for a cgroup's OOM only.
    MemcgStats,
    /// `Mem-Info:`: the machine's memory, printed for a node-wide OOM only.
    MemInfo,
    // Container logs.
    Cuda(CudaOom),
    Vllm(VllmKv),
    VllmUtilization(f64),
    Runtime(RuntimeOom),
    AppError(String),
    ExitText(i32),
    Killed,
}

/// One line's meaning, with where it was read.
#[derive(Debug, Clone)]
pub struct Finding {
    pub source: usize,
    /// Index into the source's lines.
    pub line: usize,
    pub kind: Kind,
}

// Small readers the parsers share: they never panic on any input.

/// The text after `key`, trimmed.
pub fn after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    crate::scan::find(text, key).map(|i| text[i + key.len()..].trim_start())
}

/// The leading integer of `text` (a sign allowed).
pub fn int(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse().ok()
}

/// The leading decimal of `text`.
pub fn decimal(text: &str) -> Option<f64> {
    let t = text.trim_start();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && c == '-')))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse().ok().filter(|v: &f64| v.is_finite())
}

/// `20.00 MiB`, `1.96 GiB`, `0 bytes`, `512 KiB` at the start of `text`.
pub fn size(text: &str) -> Option<u64> {
    let value = decimal(text)?;
    let rest = text
        .trim_start()
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    let unit = rest.trim_start();
    let scale: f64 = if unit.starts_with("GiB") || unit.starts_with("GB") {
        (1u64 << 30) as f64
    } else if unit.starts_with("MiB") || unit.starts_with("MB") {
        (1u64 << 20) as f64
    } else if unit.starts_with("KiB") || unit.starts_with("kB") || unit.starts_with("KB") {
        1024.0
    } else if unit.starts_with("TiB") {
        (1u64 << 40) as f64
    } else if unit.starts_with("bytes") || unit.starts_with('B') {
        1.0
    } else {
        return None;
    };
    (value >= 0.0 && value * scale < 1e19).then(|| (value * scale).round() as u64)
}

/// A Kubernetes quantity at the start of `text` (`512Mi`, `1234567Ki`).
pub fn quantity(text: &str) -> Option<u64> {
    let word = text
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == ',' || c == '"' || c == '\'')
        .next()?;
    let word = word.trim_end_matches('.');
    crate::units::parse_bytes(word).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_take_what_is_there_and_nothing_else() {
        assert_eq!(size("20.00 MiB (GPU 0"), Some(20 << 20));
        assert_eq!(size("1.5 GiB."), Some(3 << 29));
        assert_eq!(size("0 bytes free"), Some(0));
        assert_eq!(size("lots"), None);
        assert_eq!(size("12 apples"), None);
        assert_eq!(quantity("1234Ki, request"), Some(1234 << 10));
        assert_eq!(quantity("512Mi."), Some(512 << 20));
        assert_eq!(quantity("memory"), None);
        assert_eq!(int("-12x"), Some(-12));
        assert_eq!(decimal("0.95,"), Some(0.95));
    }
}
