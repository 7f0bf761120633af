//! What a workload tells the harness besides its exit status: one JSON line
//! per [`Event`] (`{"t_ns": ..., "event": "cuda_oom", ...}`) appended to the
//! file named by `OOMSIM_EVENTS`, written at once so a kill a moment later
//! loses nothing. Times are CLOCK_MONOTONIC, shared with the harness. The
//! child writes and the harness reads the same enum.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::monitor::clock::{monotonic_ns, seconds_between};

pub const ENV_EVENTS: &str = "OOMSIM_EVENTS";

/// A KV cache server's state when an event was taken.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KvState {
    pub step: u64,
    pub concurrency: u64,
    pub tokens_in_flight: u64,
    pub blocks: u64,
    pub allocated_tokens: u64,
    pub preemptions: u64,
    pub completed: u64,
    /// What was being allocated when the device ran out (`weights`, `kv_cache`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub during: Option<String>,
    /// The most sequences running at once over the run (in `kv_done`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_concurrency: Option<u64>,
}

/// What vLLM's arithmetic predicted when a KV cache workload started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvStart {
    pub mode: String,
    pub gpu_memory_utilization: f64,
    pub max_num_seqs: u64,
    pub max_model_len: u64,
    pub request_tokens: u64,
    pub kv_bytes_per_token: u64,
    pub block_bytes: u64,
    pub predicted_kv_tokens: u64,
    pub predicted_concurrency: f64,
}

/// Everything a workload reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A model load began.
    LoadStart {
        strategy: String,
        size_bytes: u64,
        overhead_bytes: u64,
        device: String,
        backend: crate::gpu::DeviceBackend,
    },
    /// Host and device both hold the weights from now on.
    DualResidencyStart {
        host_bytes: u64,
        /// The host side is page cache (mmap): reclaimable, unlike a buffer.
        #[serde(default)]
        page_cache: bool,
        /// The host buffer is page-locked.
        #[serde(default)]
        pinned: bool,
    },
    /// The host copy was freed.
    DualResidencyEnd,
    DeviceCopyDone,
    /// read-then-copy with keep_host: the host copy stays.
    HostCopyKept {
        host_bytes: u64,
    },
    /// A device allocation failed; the workload then exits 1, as torch does.
    CudaOom {
        message: String,
        requested_bytes: u64,
        free_bytes: u64,
        total_bytes: u64,
    },
    KvStart(KvStart),
    KvProgress(KvState),
    /// The KV cache's allocation failed (a CUDA OOM follows).
    KvOom(KvState),
    KvDone(KvState),
    /// The workload gave up with this message.
    Error {
        message: String,
    },
    /// oomsim's own workload code panicked: a bug in oomsim, not the pod's end.
    Panicked {
        message: String,
    },
    /// An event this version does not know (from a newer report).
    #[serde(other)]
    Unknown,
}

/// The line a workload writes: the event and when.
#[derive(Serialize, Deserialize)]
struct Line {
    t_ns: u64,
    #[serde(flatten)]
    event: Event,
}

/// The workload's writer; without `OOMSIM_EVENTS` events go nowhere.
pub struct Events {
    file: Option<File>,
}

impl Events {
    pub fn from_env() -> Events {
        let file = std::env::var_os(ENV_EVENTS)
            .and_then(|p| OpenOptions::new().append(true).create(true).open(p).ok());
        Events { file }
    }

    pub fn emit(&self, event: Event) {
        let Some(mut file) = self.file.as_ref() else {
            return;
        };
        let line = Line {
            t_ns: monotonic_ns(),
            event,
        };
        let Ok(mut text) = serde_json::to_string(&line) else {
            return;
        };
        text.push('\n');
        // One write(2) per line: O_APPEND keeps lines whole.
        let _ = file.write_all(text.as_bytes());
    }
}

/// One event in a report: seconds since the pod started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedEvent {
    pub t_s: f64,
    #[serde(flatten)]
    pub event: Event,
}

/// Read a pod's events (a missing file: none; a torn line is skipped),
/// timed from the pod's start.
pub fn read(path: &Path, start_ns: u64) -> Vec<TimedEvent> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .map(|l| TimedEvent {
            t_s: seconds_between(start_ns, l.t_ns),
            event: l.event,
        })
        .collect()
}

/// A kv-cache run's events: how it started, where it ran out (if it did),
/// and how it ended (if it did). None when the pod ran no KV cache.
pub struct KvRun<'a> {
    pub start: &'a KvStart,
    pub oom: Option<&'a KvState>,
    pub done: Option<&'a KvState>,
}

pub fn kv_run(events: &[TimedEvent]) -> Option<KvRun<'_>> {
    let (mut start, mut oom, mut done) = (None, None, None);
    for e in events {
        match &e.event {
            Event::KvStart(s) => start = Some(s),
            Event::KvOom(s) => oom = oom.or(Some(s)),
            Event::KvDone(s) => done = Some(s),
            _ => {}
        }
    }
    Some(KvRun {
        start: start?,
        oom,
        done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_with_times_from_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let start = monotonic_ns();
        let ev = Events {
            file: Some(File::create(&path).unwrap()),
        };
        ev.emit(Event::CudaOom {
            message: "CUDA out of memory.".into(),
            requested_bytes: 5,
            free_bytes: 1,
            total_bytes: 10,
        });
        ev.emit(Event::DeviceCopyDone);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"torn\": \n")
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("{\"t_ns\":") && text.contains("\"event\":\"cuda_oom\""),
            "{text}"
        );
        let got = read(&path, start);
        assert_eq!(got.len(), 2, "a torn line is skipped");
        assert!(matches!(
            got[0].event,
            Event::CudaOom {
                requested_bytes: 5,
                ..
            }
        ));
        assert_eq!(got[1].event, Event::DeviceCopyDone);
        assert!(got[0].t_s >= 0.0 && got[0].t_s <= got[1].t_s);
        assert!(read(&dir.path().join("none"), start).is_empty());
    }

    #[test]
    fn report_events_keep_their_shape_and_unknown_ones_are_tolerated() {
        let e: TimedEvent = serde_json::from_str(
            r#"{"t_s": 1.5, "event": "kv_oom", "concurrency": 7, "during": "kv_cache"}"#,
        )
        .unwrap();
        let Event::KvOom(s) = &e.event else {
            panic!("{e:?}")
        };
        assert_eq!((s.concurrency, s.during.as_deref()), (7, Some("kv_cache")));
        let u: TimedEvent =
            serde_json::from_str(r#"{"t_s": 2.0, "event": "from_the_future", "x": 1}"#).unwrap();
        assert_eq!(u.event, Event::Unknown);
    }
}
