//! What a workload tells the harness besides its exit status: one JSON line
//! per event (`{"t_ns": ..., "event": "cuda_oom", ...}`) appended to the file
//! named by `OOMSIM_EVENTS`, written at once so a kill a moment later loses
//! nothing. Times are CLOCK_MONOTONIC, shared with the harness.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::monitor::clock::{monotonic_ns, seconds_between};

pub const ENV_EVENTS: &str = "OOMSIM_EVENTS";

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

    pub fn emit(&self, event: &str, data: Value) {
        let Some(mut file) = self.file.as_ref() else {
            return;
        };
        let mut line = Map::new();
        line.insert("t_ns".into(), monotonic_ns().into());
        line.insert("event".into(), event.into());
        if let Value::Object(m) = data {
            line.extend(m);
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // One write(2) per line: O_APPEND keeps lines whole.
        let _ = file.write_all(text.as_bytes());
    }
}

/// One event in a report: seconds since the pod started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub t_s: f64,
    pub event: String,
    #[serde(flatten)]
    pub data: Map<String, Value>,
}

/// Read a pod's events (a missing file: none), timed from the pod's start.
pub fn read(path: &Path, start_ns: u64) -> Vec<Event> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Map<String, Value>>(l).ok())
        .filter_map(|mut m| {
            let t_ns = m.remove("t_ns")?.as_u64()?;
            let event = m.remove("event")?.as_str()?.to_string();
            Some(Event {
                t_s: seconds_between(start_ns, t_ns),
                event,
                data: m,
            })
        })
        .collect()
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
        ev.emit("cuda_oom", serde_json::json!({"requested_bytes": 5}));
        ev.emit("loaded", Value::Null);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"torn\": \n")
            .unwrap();
        let got = read(&path, start);
        assert_eq!(got.len(), 2, "a torn line is skipped");
        assert_eq!(got[0].event, "cuda_oom");
        assert_eq!(got[0].data["requested_bytes"], 5);
        assert!(got[0].t_s >= 0.0 && got[0].t_s <= got[1].t_s);
        assert!(read(&dir.path().join("none"), start).is_empty());
    }
}
