//! What a run produced: `report.json` (a public interface for CI; its schema
//! is in the README), written atomically, and the kubectl-style text.

pub mod plot;
pub mod text;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroup::MemStat;
use crate::host::HostInfo;
use crate::monitor::kmsg::Kill;
use crate::monitor::sampler::Sample;
use crate::scenario::{Expect, Qos};
use crate::verdict::Verdict;
use crate::workload::events::Event;

pub const SCHEMA_VERSION: u32 = 1;
pub const REPORT_FILE: &str = "report.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub scenario: String,
    pub description: Option<String>,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub host: HostInfo,
    /// What watching cost oomsim itself.
    pub harness: Harness,
    /// The GPU the run used (which backend, its name and capacity), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<crate::gpu::DeviceInfo>,
    /// The node (capacity, evictions, MemoryPressure), when the scenario has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<crate::node::NodeReport>,
    /// The signal name when Ctrl-C or SIGTERM stopped the run early.
    pub interrupted: Option<String>,
    /// Every pod's expectation held (true when none were stated).
    pub ok: bool,
    pub pods: Vec<PodReport>,
}

/// oomsim's own cost during the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Harness {
    pub sampler_cpu_s: f64,
    pub watcher_cpu_s: f64,
    pub samples_taken: usize,
    /// The harness's peak RSS (VmHWM); children are not counted.
    pub rss_hwm_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodReport {
    pub name: String,
    pub qos: Qos,
    pub priority: i32,
    pub request_bytes: Option<u64>,
    pub limit_bytes: Option<u64>,
    /// What the kubelet's policy set on the pod's processes.
    pub oom_score_adj: i32,
    /// What the kernel held: differs only for Guaranteed's -997 on a host
    /// without CAP_SYS_RESOURCE, where 0 is applied.
    #[serde(default)]
    pub oom_score_adj_applied: Option<i32>,
    pub peak_bytes: u64,
    pub oom_kill_count: u64,
    /// memory.stat when the pod ended: page cache stays charged after exit.
    pub stat_at_end: MemStat,
    pub pid: Option<i32>,
    pub started_at: String,
    pub finished_at: String,
    pub verdict: Verdict,
    /// The OOM killer's own line for this pod, from /dev/kmsg.
    pub kernel_kill: Option<Kill>,
    pub expect: Option<Expect>,
    /// What did not hold of `expect` (empty: it held).
    pub unmet: Vec<String>,
    /// The pod's stdout and stderr.
    pub log: String,
    /// Largest device memory the pod held (GPU runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_peak_bytes: Option<u64>,
    /// Largest anonymous memory and page cache sampled from memory.stat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anon_peak_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_peak_bytes: Option<u64>,
    /// When host and device both held the weights (model-load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_residency: Option<DualResidency>,
    /// What the workload reported (`cuda_oom`, `dual_residency_start`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    pub samples: Vec<Sample>,
}

/// The window in which a model's weights were held on the host and the device at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DualResidency {
    pub start_s: f64,
    /// The host copy was freed then, or the pod ended (killed, or it kept the copy).
    pub end_s: f64,
    /// Host bytes held for the copy: the whole model, a chunk buffer, or page cache.
    pub host_bytes: u64,
    /// The host side was page cache (mmap): reclaimable, unlike a buffer.
    pub page_cache: bool,
}

impl DualResidency {
    /// From a pod's events; an open window ends at `ended_s`.
    pub fn from_events(events: &[Event], ended_s: f64) -> Option<DualResidency> {
        let start = events.iter().find(|e| e.event == "dual_residency_start")?;
        let end_s = events
            .iter()
            .find(|e| e.event == "dual_residency_end")
            .map_or(ended_s, |e| e.t_s);
        Some(DualResidency {
            start_s: start.t_s,
            end_s,
            host_bytes: start
                .data
                .get("host_bytes")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            page_cache: start
                .data
                .get("page_cache")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        })
    }
}

/// Write a file so that readers see the old or the new content, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write_atomic(path, &json)
}

/// Seconds since the Unix epoch as (year, month, day, hour, minute, second, weekday 0=Sunday).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7) as u32;
    (
        year,
        month,
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        weekday,
    )
}

fn unix(t: std::time::SystemTime) -> (i64, u32) {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
        Err(_) => (0, 0),
    }
}

/// RFC 3339 in UTC with milliseconds, for JSON.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let (secs, ms) = unix(t);
    let (y, mo, d, h, mi, s, _) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// The date format `kubectl describe` prints (`Sat, 21 Nov 2026 08:30:01 +0000`).
pub fn kubectl_time(t: std::time::SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(unix(t).0);
    format!(
        "{}, {d:02} {} {y} {h:02}:{mi:02}:{s:02} +0000",
        DAYS[wd as usize],
        MONTHS[mo as usize - 1]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_249_801_123);
        assert_eq!(rfc3339(t), "2026-11-21T08:30:01.123Z");
        assert_eq!(kubectl_time(t), "Sat, 21 Nov 2026 08:30:01 +0000");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("r.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let leftovers: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }
}
