//! Kubernetes' own record: `kubectl describe pod|node` text, `kubectl get
//! -o yaml|json`, and events in every table (`kubectl get events`, old
//! `LASTSEEN FIRSTSEEN COUNT ...` columns, describe's `Events:`). Keys are
//! read the same in each shape (`Exit Code:`, `exitCode:`, `"exitCode":`),
//! and which state a reason belongs to is told by indentation.
//!
//! Event texts followed: the kubelet's eviction message
//! (pkg/kubelet/eviction/helpers.go: "The node was low on resource: %v. ",
//! "Threshold quantity: %v, available: %v. ", "Container %s was using %s,
//! request is %s, has larger consumption of %v. "), its probe events
//! (pkg/kubelet/prober/prober.go: "%s probe failed: %s"; the kill: "Container
//! %s failed %s probe, will be restarted"), and its OOM watcher's
//! (pkg/kubelet/oom/oom_watcher_linux.go: "System OOM encountered, victim
//! process: %s, pid: %d", recorded only for an OOM whose cgroup is `/`).

use super::finding::{Kind, Probe, Scope, Victim, after, int, quantity};
use crate::scan::has;

/// The containers' status as the lines go by.
#[derive(Debug, Default)]
pub struct Reader {
    /// The state a reason or exit code is under, and the indent it opened at.
    scope: Option<(Scope, usize)>,
    /// `Limits:` / `Requests:` / `Allocatable:`, and its indent.
    section: Option<(Section, usize)>,
    /// Inside describe's `Containers:` (or yaml's `containerStatuses:`).
    containers: Option<usize>,
    /// Inside yaml's `metadata:`.
    metadata: Option<usize>,
    named: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Limits,
    Requests,
    Allocatable,
}

impl Reader {
    /// What a status line says, if it is one.
    pub fn line(&mut self, text: &str) -> Option<Kind> {
        let (indent, key, value) = key_value(text)?;
        let closes = |open: Option<usize>| open.is_some_and(|i| indent <= i);
        if closes(self.scope.map(|(_, i)| i)) {
            self.scope = None;
        }
        if closes(self.section.map(|(_, i)| i)) {
            self.section = None;
        }
        if closes(self.containers) {
            self.containers = None;
        }
        if closes(self.metadata) {
            self.metadata = None;
        }
        match key.as_str() {
            "state" => self.scope = Some((Scope::State, indent)),
            "laststate" | "lastterminationstate" => self.scope = Some((Scope::LastState, indent)),
            "limits" => self.section = Some((Section::Limits, indent)),
            "requests" => self.section = Some((Section::Requests, indent)),
            "allocatable" => self.section = Some((Section::Allocatable, indent)),
            "containers" | "initcontainers" | "containerstatuses" | "initcontainerstatuses" => {
                self.containers = Some(indent)
            }
            "metadata" => self.metadata = Some(indent),
            _ => {}
        }
        let scope = self.scope.map_or(Scope::Pod, |(s, _)| s);
        match key.as_str() {
            "reason" if !value.is_empty() => Some(Kind::Reason {
                reason: value.to_string(),
                scope,
            }),
            "exitcode" => Some(Kind::ExitCode {
                code: i32::try_from(int(value)?).ok()?,
                scope,
            }),
            "signal" => Some(Kind::Signal(i32::try_from(int(value)?).ok()?)),
            // `docker inspect`'s State.
            "oomkilled" => Some(Kind::OomKilledFlag(value == "true")),
            "restartcount" => Some(Kind::RestartCount(u32::try_from(int(value)?).ok()?)),
            "qosclass" => Some(Kind::Qos(value.to_string())),
            "finished" | "finishedat" if self.scope.is_some() => {
                Some(Kind::Finished(value.to_string()))
            }
            "memory" => {
                let bytes = quantity(value)?;
                match self.section?.0 {
                    Section::Limits => Some(Kind::Limit(bytes)),
                    Section::Requests => Some(Kind::Request(bytes)),
                    Section::Allocatable => Some(Kind::NodeAllocatable(bytes)),
                }
            }
            "name" if indent == 0 && !self.named => {
                self.named = true;
                Some(Kind::Pod(value.to_string()))
            }
            "name" if self.metadata.is_some() && !self.named && !value.is_empty() => {
                self.named = true;
                Some(Kind::Pod(value.to_string()))
            }
            "name" if self.containers.is_some() && !value.is_empty() => {
                Some(Kind::Container(value.to_string()))
            }
            // describe's container heading: `  app:` under `Containers:`.
            _ if value.is_empty()
                && self.containers.is_some_and(|c| indent == c + 2)
                && self.scope.is_none() =>
            {
                Some(Kind::Container(key_as_written(text)))
            }
            _ => None,
        }
    }
}

/// The heading's own spelling (keys are compared folded).
fn key_as_written(text: &str) -> String {
    let t = text.trim_start();
    t.split(':').next().unwrap_or(t).to_string()
}

/// `  Exit Code:   137`, `exitCode: 137`, `"exitCode": 137,`, `- name: x`:
/// the indent, the key folded (lower case, no spaces), the value unquoted.
fn key_value(text: &str) -> Option<(usize, String, &str)> {
    let body = text.trim_start();
    let mut indent = text.len() - body.len();
    let body = match body.strip_prefix("- ") {
        Some(b) => {
            indent += 2;
            b
        }
        None => body,
    };
    let (key, value) = if let Some(quoted) = body.strip_prefix('"') {
        let (k, rest) = quoted.split_once('"')?;
        (k, rest.strip_prefix(':')?)
    } else {
        let (k, rest) = body.split_once(':')?;
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return None;
        }
        (k, rest)
    };
    let words = key.split(' ').count();
    if key.is_empty() || words > 3 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') {
        return None;
    }
    let value = value
        .trim()
        .trim_end_matches(',')
        .trim_end_matches(['{', '['])
        .trim()
        .trim_matches('"')
        .trim_matches('\'');
    let folded = key.to_ascii_lowercase().replace(' ', "");
    Some((indent, folded, value))
}

/// What an event or condition line says, in any table.
pub fn event(text: &str) -> Option<Kind> {
    for (probe, killed, failed) in [
        (
            Probe::Liveness,
            "failed liveness probe",
            "Liveness probe failed",
        ),
        (
            Probe::Startup,
            "failed startup probe",
            "Startup probe failed",
        ),
        (
            Probe::Readiness,
            "failed readiness probe",
            "Readiness probe failed",
        ),
    ] {
        if has(text, killed) {
            return Some(Kind::ProbeFailed {
                probe,
                restarts: probe != Probe::Readiness,
            });
        }
        if has(text, failed) {
            return Some(Kind::ProbeFailed {
                probe,
                restarts: false,
            });
        }
    }
    // Before 1.6 the kill said: `container "x" is unhealthy, it will be
    // killed and re-created`.
    if has(text, "is unhealthy, it will be killed and re-created") {
        return Some(Kind::ProbeFailed {
            probe: Probe::Liveness,
            restarts: true,
        });
    }
    if let Some(rest) = after(text, "low on resource: ") {
        return Some(evicted(rest));
    }
    if has(text, "The node had condition: [MemoryPressure]") {
        return Some(Kind::Evicted {
            resource: Some("memory".into()),
            threshold: None,
            available: None,
            usage: None,
            request: None,
            container: None,
        });
    }
    if let Some(rest) = after(text, "System OOM encountered") {
        let comm = after(rest, "victim process: ").map(|v| v.split(',').next().unwrap_or(v));
        let pid = after(rest, "pid: ").and_then(int);
        let victim = comm.zip(pid).and_then(|(c, p)| {
            Some(Victim {
                pid: i32::try_from(p).ok()?,
                comm: c.to_string(),
            })
        });
        return Some(Kind::SystemOom { victim });
    }
    let any_of = |keys: &[&str]| keys.iter().any(|k| has(text, k));
    if any_of(&[
        "EvictionThresholdMet",
        "Attempting to reclaim memory",
        "NodeHasInsufficientMemory",
        "has insufficient memory available",
    ]) || (has(text, "MemoryPressure") && has(text, "True"))
    {
        return Some(Kind::MemoryPressure);
    }
    if any_of(&[
        "Preempted by",
        "Preempting",
        "PreemptionByScheduler",
        "preempted by",
    ]) {
        return Some(Kind::Preempted);
    }
    if has(text, "ExecSync for") && has(text, "failed") {
        return Some(Kind::ProbeFailed {
            probe: Probe::Exec,
            restarts: false,
        });
    }
    if let Some(row) = get_pods_row(text) {
        return Some(row);
    }
    if any_of(&[
        "failed to exit within",
        "did not stop cleanly",
        "ExceededGracePeriod",
        "did not stop within",
        "within specified grace period",
    ]) {
        return Some(Kind::GraceExceeded);
    }
    if any_of(&["imminent node shutdown", "Node is shutting down"]) {
        return Some(Kind::NodeShutdown);
    }
    if any_of(&["Stopping container", "Killing container with"]) {
        return Some(Kind::Stopping);
    }
    None
}

/// A `kubectl get pods` row (`NAME READY STATUS RESTARTS AGE ...`): its STATUS.
fn get_pods_row(text: &str) -> Option<Kind> {
    memchr::memchr(b'/', text.as_bytes())?;
    let cols: Vec<&str> = text.split_whitespace().collect();
    let ready = cols.get(1)?;
    let (a, b) = ready.split_once('/')?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if cols.len() < 5 || !numeric(a) || !numeric(b) || !numeric(cols[3]) {
        return None;
    }
    match cols[2] {
        "Shutdown" => Some(Kind::NodeShutdown),
        s @ ("OOMKilled" | "Evicted" | "Error" | "Completed" | "CrashLoopBackOff") => {
            Some(Kind::Reason {
                reason: s.to_string(),
                scope: Scope::State,
            })
        }
        _ => None,
    }
}

/// The rest of "The node was low on resource: memory. Threshold quantity:
/// 100Mi, available: 89Mi. Container x was using 1Gi, request is 512Mi, ..."
fn evicted(rest: &str) -> Kind {
    let resource = rest
        .split(|c: char| c == '.' || c == ',' || c.is_whitespace())
        .next()
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let container = after(rest, "Container ")
        .and_then(|c| c.split_whitespace().next())
        .map(str::to_string);
    Kind::Evicted {
        resource,
        threshold: after(rest, "Threshold quantity: ").and_then(quantity),
        available: after(rest, "available: ").and_then(quantity),
        usage: after(rest, "was using ").and_then(quantity),
        request: after(rest, "request is ")
            .or_else(|| after(rest, "exceeds its request of "))
            .and_then(quantity),
        container,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Kind> {
        let mut r = Reader::default();
        text.lines()
            .filter_map(|l| r.line(l).or_else(|| event(l)))
            .collect()
    }

    #[test]
    fn describe_reads_state_and_last_state_apart() {
        let text = "Name:         api-7d9\nNamespace:    default\nContainers:\n  app:\n    State:          Running\n      Started:      Mon, 01 Jan 2024 10:00:05 +0000\n    Last State:     Terminated\n      Reason:       OOMKilled\n      Exit Code:    137\n      Finished:     Mon, 01 Jan 2024 10:00:04 +0000\n    Ready:          True\n    Restart Count:  3\n    Limits:\n      cpu:     500m\n      memory:  512Mi\n    Requests:\n      memory:     256Mi\nQoS Class:       Burstable\nEvents:\n  Warning  BackOff  1m  kubelet  Back-off restarting failed container";
        let kinds = read(text);
        let want = [
            Kind::Pod("api-7d9".into()),
            Kind::Container("app".into()),
            Kind::Reason {
                reason: "OOMKilled".into(),
                scope: Scope::LastState,
            },
            Kind::ExitCode {
                code: 137,
                scope: Scope::LastState,
            },
            Kind::Finished("Mon, 01 Jan 2024 10:00:04 +0000".into()),
            Kind::RestartCount(3),
            Kind::Limit(512 << 20),
            Kind::Request(256 << 20),
            Kind::Qos("Burstable".into()),
        ];
        assert_eq!(kinds, want);
    }

    #[test]
    fn yaml_and_json_read_alike() {
        let yaml = "status:\n  containerStatuses:\n  - lastState:\n      terminated:\n        exitCode: 0\n        reason: OOMKilled\n    name: worker\n    restartCount: 2\n    state:\n      running:\n        startedAt: \"2024-01-01T00:00:00Z\"";
        let json = "{\n  \"status\": {\n    \"containerStatuses\": [\n      {\n        \"lastState\": {\n          \"terminated\": {\n            \"exitCode\": 0,\n            \"reason\": \"OOMKilled\"\n          }\n        },\n        \"name\": \"worker\",\n        \"restartCount\": 2\n      }\n    ]\n  }\n}";
        for text in [yaml, json] {
            let kinds = read(text);
            assert_eq!(
                kinds[..4],
                [
                    Kind::ExitCode {
                        code: 0,
                        scope: Scope::LastState
                    },
                    Kind::Reason {
                        reason: "OOMKilled".into(),
                        scope: Scope::LastState
                    },
                    Kind::Container("worker".into()),
                    Kind::RestartCount(2),
                ],
                "{text}"
            );
        }
    }

    #[test]
    fn events_in_their_words() {
        let ev = |t: &str| event(t).unwrap_or_else(|| panic!("{t}"));
        assert_eq!(
            ev(
                "  Normal   Killing    2m (x3 over 6m)  kubelet  Container app failed liveness probe, will be restarted"
            ),
            Kind::ProbeFailed {
                probe: Probe::Liveness,
                restarts: true
            }
        );
        assert_eq!(
            ev(
                "  Warning  Unhealthy  2m (x9 over 6m)  kubelet  Readiness probe failed: HTTP probe failed with statuscode: 503"
            ),
            Kind::ProbeFailed {
                probe: Probe::Readiness,
                restarts: false
            }
        );
        assert_eq!(
            ev(
                "Message:          The node was low on resource: memory. Threshold quantity: 100Mi, available: 91436Ki. Container app was using 1587604Ki, request is 512Mi, has larger consumption of memory."
            ),
            Kind::Evicted {
                resource: Some("memory".into()),
                threshold: Some(100 << 20),
                available: Some(91436 << 10),
                usage: Some(1587604 << 10),
                request: Some(512 << 20),
                container: Some("app".into()),
            }
        );
        assert_eq!(
            ev(
                "  Warning  SystemOOM  5m  kubelet, node-1  System OOM encountered, victim process: java, pid: 4321"
            ),
            Kind::SystemOom {
                victim: Some(Victim {
                    pid: 4321,
                    comm: "java".into()
                })
            }
        );
        assert_eq!(
            ev(
                "  MemoryPressure   True    Mon, 01 Jan 2024  KubeletHasInsufficientMemory   kubelet has insufficient memory available"
            ),
            Kind::MemoryPressure
        );
        assert_eq!(
            ev("  Normal  Killing  30s  kubelet  Stopping container app"),
            Kind::Stopping
        );
        assert_eq!(
            event("  MemoryPressure   False   KubeletHasSufficientMemory"),
            None
        );
    }
}
