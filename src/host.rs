//! What the host is and whether it can run a scenario safely: root, a memory
//! controller, `vm.panic_on_oom` off, and enough memory for the limits.

use serde::Serialize;

use crate::cgroup::Version;
use crate::units::fmt_human;

/// Why this host cannot run a scenario (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("oomsim needs root to create cgroups and read the kernel log; run it with sudo")]
    NotRoot,
    #[error("{0}")]
    NoMemoryController(crate::cgroup::CgroupError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: &'static str,
        source: std::io::Error,
    },
    #[error(
        "vm.panic_on_oom is {0} on this host: an OOM would panic the machine instead of killing a process; set it to 0 (sysctl vm.panic_on_oom=0)"
    )]
    PanicOnOom(String),
    #[error(
        "{field}: {biggest}{all} is more than this host can give: {available} available, {reserve} kept for the host"
    )]
    TooLarge {
        field: String,
        biggest: String,
        all: String,
        available: String,
        reserve: String,
    },
    #[error("{0}")]
    Weights(#[from] crate::llm::weights::WeightsError),
    #[error("{0}")]
    Gpu(#[from] crate::gpu::GpuError),
    #[error("{0}")]
    Runtime(#[from] crate::runtime::build::BuildError),
}

/// Memory oomsim leaves to the host beyond any run: the larger of this and 5% of RAM.
pub const HOST_RESERVE_BYTES: u64 = 512 << 20;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct HostInfo {
    pub kernel: String,
    pub cgroup_version: Version,
    pub cgroup_root: String,
    pub mem_total_bytes: u64,
    pub mem_available_bytes: u64,
    /// SwapTotal: swap a pod could use where the kernel cannot forbid it.
    #[serde(default)]
    pub swap_total_bytes: Option<u64>,
    pub cpus: usize,
    /// Whether /dev/kmsg could be read (kill lines and kernel timestamps).
    pub kmsg_readable: bool,
}

/// Fields of /proc/meminfo in bytes.
/// A `Key:   123 kB` line of a /proc file, in bytes.
pub fn proc_kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}

/// The host's memory, from /proc/meminfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub swap_total_bytes: u64,
}

impl MemInfo {
    /// What the host can give to one run, keeping a reserve for itself.
    pub fn usable_bytes(&self) -> u64 {
        usable_bytes(self.available_bytes, self.total_bytes)
    }
}

/// The host's memory; inside a memory-limited cgroup (oomsim in a pod),
/// that cgroup is the host: its limit the total, its headroom what is
/// available, so a run never asks for more than the pod was given.
pub fn meminfo() -> Result<MemInfo, HostError> {
    const PATH: &str = "/proc/meminfo";
    let text =
        std::fs::read_to_string(PATH).map_err(|source| HostError::Read { path: PATH, source })?;
    let field = |key: &str| {
        proc_kb_field(&text, key).ok_or_else(|| HostError::Read {
            path: PATH,
            source: std::io::Error::other(format!("no {key} line")),
        })
    };
    let host = MemInfo {
        total_bytes: field("MemTotal:")?,
        available_bytes: field("MemAvailable:")?,
        swap_total_bytes: field("SwapTotal:")?,
    };
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|c| own_limit(&c, host.total_bytes, |p| std::fs::read_to_string(p).ok()));
    Ok(within(host, own))
}

/// The host's figures bounded by a cgroup's (limit, usage).
fn within(host: MemInfo, own: Option<(u64, u64)>) -> MemInfo {
    match own {
        Some((limit, usage)) => MemInfo {
            total_bytes: host.total_bytes.min(limit),
            available_bytes: host.available_bytes.min(limit.saturating_sub(usage)),
            ..host
        },
        None => host,
    }
}

/// The memory limit and usage of the cgroup this process is in, from
/// /proc/self/cgroup (v2 `0::/path`, v1 `N:memory:/path`); None when it
/// has no limit below the host's memory.
fn own_limit(
    proc_cgroup: &str,
    host_total: u64,
    read: impl Fn(&str) -> Option<String>,
) -> Option<(u64, u64)> {
    let (dir, limit_file, usage_file) = proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_end_matches('/');
        if controllers.is_empty() {
            Some((
                format!("/sys/fs/cgroup{path}"),
                "memory.max",
                "memory.current",
            ))
        } else if controllers.split(',').any(|c| c == "memory") {
            Some((
                format!("/sys/fs/cgroup/memory{path}"),
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            ))
        } else {
            None
        }
    })?;
    let number = |file: &str| read(&format!("{dir}/{file}"))?.trim().parse::<u64>().ok();
    let limit = number(limit_file).filter(|l| *l < host_total)?;
    // Both files of one cgroup, or neither: a usage that cannot be read
    // is not taken as nothing used.
    Some((limit, number(usage_file)?))
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Refuse to run when an OOM would panic the whole machine.
pub fn check_panic_on_oom() -> Result<(), HostError> {
    const PATH: &str = "/proc/sys/vm/panic_on_oom";
    let value =
        std::fs::read_to_string(PATH).map_err(|source| HostError::Read { path: PATH, source })?;
    if value.trim() != "0" {
        return Err(HostError::PanicOnOom(value.trim().to_string()));
    }
    Ok(())
}

/// What the host can give to one run, keeping a reserve for itself.
pub fn usable_bytes(available: u64, total: u64) -> u64 {
    available.saturating_sub(HOST_RESERVE_BYTES.max(total / 20))
}

/// Check the sum of the limits against what the host can give; name the field.
pub fn check_fits(limits: &[(String, u64)], available: u64, total: u64) -> Result<u64, HostError> {
    let usable = usable_bytes(available, total);
    let sum: u64 = limits.iter().map(|(_, l)| *l).sum();
    if sum <= usable {
        return Ok(usable);
    }
    let (field, biggest) = limits
        .iter()
        .max_by_key(|(_, l)| *l)
        .cloned()
        .unwrap_or_default();
    let all = if limits.len() > 1 {
        format!(" (all pods together: {})", fmt_human(sum))
    } else {
        String::new()
    };
    Err(HostError::TooLarge {
        field,
        biggest: fmt_human(biggest),
        all,
        available: fmt_human(available),
        reserve: fmt_human(available - usable),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_limited_cgroup_is_the_host() {
        let files = |p: &str| match p {
            "/sys/fs/cgroup/kubepods/pod1/c1/memory.max" => Some("2147483648\n".to_string()),
            "/sys/fs/cgroup/kubepods/pod1/c1/memory.current" => Some("104857600\n".into()),
            "/sys/fs/cgroup/memory/user/memory.limit_in_bytes" => {
                Some("9223372036854771712\n".into())
            }
            "/sys/fs/cgroup/memory/user/memory.usage_in_bytes" => Some("1\n".into()),
            _ => None,
        };
        let v2 = own_limit("0::/kubepods/pod1/c1\n", 64 << 30, files);
        assert_eq!(v2, Some((2 << 30, 100 << 20)));
        // v1 with no limit below the host's memory: the host is the host.
        let v1 = own_limit("12:memory:/user\n3:cpu,cpuacct:/user\n", 64 << 30, files);
        assert_eq!(v1, None);
        // `max` (no limit) or an unreadable file: no bound.
        assert_eq!(own_limit("0::/elsewhere\n", 64 << 30, files), None);
        let host = MemInfo {
            total_bytes: 64 << 30,
            available_bytes: 60 << 30,
            swap_total_bytes: 0,
        };
        let pod = within(host, v2);
        assert_eq!(
            (pod.total_bytes, pod.available_bytes),
            (2 << 30, (2 << 30) - (100 << 20))
        );
    }

    use super::*;

    #[test]
    fn limits_must_fit_with_reserve() {
        let gib = 1u64 << 30;
        assert_eq!(
            check_fits(&[("a".into(), gib)], 4 * gib, 8 * gib).unwrap(),
            4 * gib - (512 << 20)
        );
        let e = check_fits(
            &[
                ("pods[1].resources.limits.memory".into(), 30 * gib),
                ("x".into(), gib),
            ],
            20 * gib,
            24 * gib,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("pods[1].resources.limits.memory: 30.0Gi (all pods together: 31.0Gi)"),
            "{e}"
        );
        assert!(
            check_fits(&[("a".into(), 20 * gib)], 20 * gib, 24 * gib).is_err(),
            "the reserve must stay free"
        );
    }

    #[test]
    fn reads_meminfo() {
        let m = meminfo().unwrap();
        assert!(m.total_bytes > 0 && m.available_bytes <= m.total_bytes);
        assert!(m.usable_bytes() < m.available_bytes);
    }
}
