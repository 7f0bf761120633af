//! A container's CPU limit as the kubelet sets it: a CFS quota of
//! `milli * period / 1000` µs per 100 ms period, at least 1 ms
//! (pkg/kubelet/cm/helpers_linux.go, `MilliCPUToQuota`; the table in `quota_as_the_kubelet_computes_it` is its `TestMilliCPUToQuota`). Runtimes read it:
//! the JVM counts its CPUs from the quota (and picks Serial GC below 2),
//! as Go's GOMAXPROCS does not until Go 1.25.
//!
//! cgroup v2: `cpu.max` in the container's own cgroup, where the cpu
//! controller is enabled. v1: the cpu hierarchy is a tree of its own; the
//! container's path is made there too and the process enters both.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{Result, Version, io_err};
use crate::cgroup::Cgroup;

/// The CFS period the kubelet uses, in µs.
pub const PERIOD_US: u64 = 100_000;

/// The quota for a limit in millicores (0: no limit).
pub fn quota_us(milli: u64) -> u64 {
    match milli {
        0 => 0,
        m => (m * PERIOD_US / 1000).max(1000),
    }
}

/// Where v1 mounts the cpu controller, beside the memory one.
fn v1_cpu_root(memory_root: &Path) -> Option<PathBuf> {
    let mounts = memory_root.parent()?;
    ["cpu", "cpu,cpuacct", "cpuacct,cpu"]
        .iter()
        .map(|d| mounts.join(d))
        .find(|d| d.join("cpu.cfs_quota_us").exists())
}

/// Set the container's CPU limit; on v1, the cpu cgroup's `cgroup.procs`
/// to enter besides the memory one. None where the host has no cpu
/// controller for it (the limit is then not enforced).
pub fn limit(group: &Cgroup, milli: u64) -> Result<Option<CpuEntry>> {
    let quota = quota_us(milli);
    if quota == 0 {
        return Ok(None);
    }
    if group.backend.version() == Version::V2 {
        let max = group.file("cpu.max");
        if max.exists() {
            std::fs::write(&max, format!("{quota} {PERIOD_US}")).map_err(io_err(&max))?;
        }
        return Ok(None);
    }
    let Some(root) = v1_cpu_root(group.backend.root()) else {
        return Ok(None);
    };
    let dir = root.join(group.kernel_name().trim_start_matches('/'));
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    for (file, value) in [
        ("cpu.cfs_period_us", PERIOD_US),
        ("cpu.cfs_quota_us", quota),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, value.to_string()).map_err(io_err(&path))?;
    }
    let cpu_group = Cgroup {
        backend: group.backend.clone(),
        path: dir,
    };
    Ok(Some(CpuEntry {
        file: cpu_group.procs_for_entry()?,
    }))
}

/// The v1 cpu cgroup's `cgroup.procs`, open for a child to enter.
pub struct CpuEntry {
    pub file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kubelet's own table (helpers_linux_test.go, TestMilliCPUToQuota).
    #[test]
    fn quota_as_the_kubelet_computes_it() {
        for (milli, quota) in [
            (0, 0),
            (5, 1000),
            (9, 1000),
            (10, 1000),
            (200, 20000),
            (500, 50000),
            (1000, 100000),
            (1500, 150000),
        ] {
            assert_eq!(quota_us(milli), quota, "{milli}m");
        }
    }
}
