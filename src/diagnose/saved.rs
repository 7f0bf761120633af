//! oomsim's own report.json and search.json as evidence: the verdict it
//! recorded (its cause is finer than Kubernetes' reason), the kernel's kill
//! line it caught, the pod's log, and for a search the limits it measured.

use super::Facts;
use super::finding::{Finding, Kind, Scope};
use super::input::Source;
use crate::report::{Saved, parse};
use crate::verdict::Cause;

/// The findings of a saved report, when `text` is one.
pub fn read(index: usize, src: &Source, text: &str, facts: &mut Facts) -> Option<Vec<Finding>> {
    let head = text.trim_start();
    if !head.starts_with('{')
        || !head.contains("\"schema_version\"") && !head.contains("\"min_safe_limit_bytes\"")
    {
        return None;
    }
    let saved = parse(&src.name, text).ok()?;
    let at = |needle: &str| {
        src.lines
            .iter()
            .position(|l| l.text.contains(needle))
            .unwrap_or(0)
    };
    let mut out = Vec::new();
    let mut push = |line: usize, kind: Kind| {
        out.push(Finding {
            source: index,
            line,
            kind,
        })
    };
    match saved {
        Saved::Report(r) => {
            let pod = r.pods.iter().find(|p| !p.survived()).or(r.pods.first())?;
            facts.pod = Some(pod.name.clone());
            facts.container = Some(pod.container_name().to_string());
            facts.usage_bytes = Some(pod.peak_bytes);
            let v = &pod.verdict;
            let reason_line = at(&format!("\"reason\": \"{}\"", v.reason.as_str()));
            push(
                reason_line,
                Kind::Reason {
                    reason: v.reason.as_str().into(),
                    scope: Scope::LastState,
                },
            );
            push(
                at("\"exit_code\""),
                Kind::ExitCode {
                    code: v.exit_code,
                    scope: Scope::LastState,
                },
            );
            if let Some(l) = pod.limit_bytes {
                push(at("\"limit_bytes\""), Kind::Limit(l));
            }
            if let Some(q) = pod.request_bytes {
                push(at("\"request_bytes\""), Kind::Request(q));
            }
            let cause_line = at("\"cause\"");
            match v.cause {
                Cause::CgroupOomKill | Cause::CgroupOomKillOfOtherProcess => push(
                    cause_line,
                    Kind::Constraint {
                        memcg: true,
                        oom_memcg: None,
                    },
                ),
                Cause::NodeOomKill | Cause::AllocatableOomKill => push(
                    cause_line,
                    Kind::Constraint {
                        memcg: false,
                        oom_memcg: None,
                    },
                ),
                Cause::ExternalSigkill => push(cause_line, Kind::OomKilledFlag(false)),
                _ => {}
            }
            if let Some(k) = &pod.kernel_kill {
                let line = at("\"kernel_kill\"");
                if let Some(kind) = super::kernel::parse(&k.line) {
                    push(line, kind);
                }
            }
            if let Some(r) = &v.runtime_oom {
                push(at("\"runtime_oom\""), Kind::Runtime(r.clone()));
            }
            let log_line = at("\"log\"");
            for l in pod.log.lines() {
                if let Some(kind) = super::logs::parse(l) {
                    push(log_line, kind);
                }
            }
        }
        Saved::Search(s) => {
            facts.pod = Some(s.pod.clone());
            facts.min_safe_limit_bytes = s.min_safe_limit_bytes;
            facts.usage_bytes = s.peak_bytes;
            if let Some(r) = &s.no_limit_helps {
                push(at("\"no_limit_helps\""), Kind::Runtime(r.clone()));
            } else if let Some(l) = s.oom_limit_bytes {
                push(
                    at("\"oom_limit_bytes\""),
                    Kind::Reason {
                        reason: "OOMKilled".into(),
                        scope: Scope::LastState,
                    },
                );
                push(at("\"oom_limit_bytes\""), Kind::Limit(l));
            }
        }
    }
    Some(out)
}
