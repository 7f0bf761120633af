//! What the host is and whether it can run a scenario safely: root, a memory
//! controller, `vm.panic_on_oom` off, and enough memory for the limits.

use serde::Serialize;

use crate::cgroup::Version;
use crate::units::fmt_human;

/// Memory oomsim leaves to the host beyond any run: the larger of this and 5% of RAM.
pub const HOST_RESERVE_BYTES: u64 = 512 << 20;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct HostInfo {
    pub kernel: String,
    pub cgroup_version: Version,
    pub cgroup_root: String,
    pub mem_total_bytes: u64,
    pub mem_available_bytes: u64,
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

pub fn meminfo() -> std::io::Result<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    let field = |key: &str| {
        proc_kb_field(&text, key)
            .ok_or_else(|| std::io::Error::other(format!("/proc/meminfo has no {key}")))
    };
    Ok((field("MemTotal:")?, field("MemAvailable:")?))
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Refuse to run when an OOM would panic the whole machine.
pub fn check_panic_on_oom() -> Result<(), String> {
    let path = "/proc/sys/vm/panic_on_oom";
    let value = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if value.trim() != "0" {
        return Err(format!(
            "vm.panic_on_oom is {} on this host: an OOM would panic the machine instead of killing a process; set it to 0 (sysctl vm.panic_on_oom=0)",
            value.trim()
        ));
    }
    Ok(())
}

/// What the host can give to one run, keeping a reserve for itself.
pub fn usable_bytes(available: u64, total: u64) -> u64 {
    available.saturating_sub(HOST_RESERVE_BYTES.max(total / 20))
}

/// Check the sum of the limits against what the host can give; name the field.
pub fn check_fits(limits: &[(String, u64)], available: u64, total: u64) -> Result<u64, String> {
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
    Err(format!(
        "{field}: {}{all} is more than this host can give: {} available, {} kept for the host",
        fmt_human(biggest),
        fmt_human(available),
        fmt_human(available - usable)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_must_fit_with_reserve() {
        let gib = 1u64 << 30;
        assert_eq!(
            check_fits(&[("a".into(), gib)], 4 * gib, 8 * gib),
            Ok(4 * gib - (512 << 20))
        );
        let e = check_fits(
            &[
                ("pods[1].resources.limits.memory".into(), 30 * gib),
                ("x".into(), gib),
            ],
            20 * gib,
            24 * gib,
        )
        .unwrap_err();
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
        let (total, available) = meminfo().unwrap();
        assert!(total > 0 && available <= total);
    }
}
