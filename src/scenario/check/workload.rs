//! One workload (or phase): which fields its kind takes, and each checked.

use serde_saphyr::Location;

use super::Checker;
use crate::plan::{Burst, Leak, Phase, Program, Steady};
use crate::runtime::Runtime;
use crate::scenario::ScenarioError;
use crate::scenario::raw::{RawWorkload, Text};
use crate::template;
use crate::units;

impl Checker<'_> {
    pub(super) fn phase(&self, w: &RawWorkload, at: &str) -> Result<Phase, ScenarioError> {
        let kind = w.kind.value.as_str();
        let present: Vec<(&str, Option<Location>)> = vec![
            ("baseline", w.baseline.as_ref().map(|t| t.referenced)),
            ("rate", w.rate.as_ref().map(|t| t.referenced)),
            ("cap", w.cap.as_ref().map(|t| t.referenced)),
            ("duration", w.duration.as_ref().map(|t| t.referenced)),
            ("size", w.size.as_ref().map(|t| t.referenced)),
            ("spike", w.spike.as_ref().map(|t| t.referenced)),
            ("period", w.period.as_ref().map(|t| t.referenced)),
            ("hold", w.hold.as_ref().map(|t| t.referenced)),
            ("count", w.count.as_ref().map(|t| t.referenced)),
            ("command", w.command.as_ref().map(|t| t.referenced)),
            ("env", w.env.as_ref().map(|t| t.referenced)),
            ("runtime", w.runtime.as_ref().map(|t| t.referenced)),
            ("model", w.model.as_ref().map(|t| t.referenced)),
            ("dtype", w.dtype.as_ref().map(|t| t.referenced)),
            ("strategy", w.strategy.as_ref().map(|t| t.referenced)),
            ("keep_host", w.keep_host.as_ref().map(|t| t.referenced)),
            ("chunk", w.chunk.as_ref().map(|t| t.referenced)),
            ("pinned", w.pinned.as_ref().map(|t| t.referenced)),
            ("source", w.source.as_ref().map(|t| t.referenced)),
            ("file", w.file.as_ref().map(|t| t.referenced)),
            ("overhead", w.overhead.as_ref().map(|t| t.referenced)),
            ("mode", w.mode.as_ref().map(|t| t.referenced)),
            (
                "gpu_memory_utilization",
                w.gpu_memory_utilization.as_ref().map(|t| t.referenced),
            ),
            (
                "max_num_seqs",
                w.max_num_seqs.as_ref().map(|t| t.referenced),
            ),
            (
                "max_model_len",
                w.max_model_len.as_ref().map(|t| t.referenced),
            ),
            (
                "kv_cache_dtype",
                w.kv_cache_dtype.as_ref().map(|t| t.referenced),
            ),
            (
                "kv_cache_memory",
                w.kv_cache_memory.as_ref().map(|t| t.referenced),
            ),
            ("weights", w.weights.as_ref().map(|t| t.referenced)),
            ("activation", w.activation.as_ref().map(|t| t.referenced)),
            ("prompt", w.prompt.as_ref().map(|t| t.referenced)),
            ("output", w.output.as_ref().map(|t| t.referenced)),
            ("concurrency", w.concurrency.as_ref().map(|t| t.referenced)),
            ("ramp", w.ramp.as_ref().map(|t| t.referenced)),
            ("step", w.step.as_ref().map(|t| t.referenced)),
        ];
        let allowed: &[&str] = match kind {
            "leak" => &["baseline", "rate", "cap", "duration"],
            "burst" => &["baseline", "spike", "period", "hold", "count", "duration"],
            "steady" => &["size", "duration"],
            "command" => &["command", "env", "runtime"],
            "model-load" => &[
                "size",
                "model",
                "dtype",
                "strategy",
                "keep_host",
                "chunk",
                "pinned",
                "source",
                "file",
                "overhead",
                "hold",
            ],
            "kv-cache" => &[
                "model",
                "dtype",
                "mode",
                "gpu_memory_utilization",
                "max_num_seqs",
                "max_model_len",
                "kv_cache_dtype",
                "kv_cache_memory",
                "weights",
                "activation",
                "prompt",
                "output",
                "concurrency",
                "ramp",
                "step",
                "duration",
            ],
            _ => {
                return Err(self.err(
                    &w.kind.referenced,
                    &format!("{at}.kind"),
                    format!(
                        "{kind:?} is not a workload kind (leak, burst, steady, command, model-load, kv-cache)"
                    ),
                ));
            }
        };
        for (field, loc) in &present {
            if let Some(loc) = loc
                && !allowed.contains(field)
            {
                return Err(self.err(
                    loc,
                    &format!("{at}.{field}"),
                    format!(
                        "not a field of a {kind} workload (it takes {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let field = |f: &str| format!("{at}.{f}");
        let missing = |f: &str| {
            self.err(
                &w.kind.referenced,
                &field(f),
                format!("a {kind} workload needs {f}"),
            )
        };
        let baseline_bytes = self.bytes(&w.baseline, &field("baseline"))?.unwrap_or(0);
        let duration_s = self.seconds(&w.duration, &field("duration"))?;
        Ok(match kind {
            "leak" => {
                let rate = w.rate.as_ref().ok_or_else(|| missing("rate"))?;
                let rate_bytes_per_s = if rate.value == "max" {
                    None
                } else {
                    let Some(per_s) = rate.value.strip_suffix("/s") else {
                        return Err(self.err(
                            &rate.referenced,
                            &field("rate"),
                            format!(
                                "{:?} is not a rate: give bytes a second ({}/s) or max",
                                rate.value, rate.value
                            ),
                        ));
                    };
                    let bytes = self.unit(rate, &field("rate"), |_| units::parse_bytes(per_s))?;
                    if bytes == 0 {
                        return Err(self.err(
                            &rate.referenced,
                            &field("rate"),
                            "must be more than zero (or max)",
                        ));
                    }
                    Some(bytes)
                };
                Phase::Leak(Leak {
                    baseline_bytes,
                    rate_bytes_per_s,
                    cap_bytes: self.bytes(&w.cap, &field("cap"))?,
                    duration_s,
                })
            }
            "burst" => {
                let spike_bytes = self
                    .bytes(&w.spike, &field("spike"))?
                    .ok_or_else(|| missing("spike"))?;
                let period_s = self
                    .seconds(&w.period, &field("period"))?
                    .ok_or_else(|| missing("period"))?;
                let hold_s = self
                    .seconds(&w.hold, &field("hold"))?
                    .ok_or_else(|| missing("hold"))?;
                if hold_s >= period_s {
                    let loc = w.hold.as_ref().map_or(Location::UNKNOWN, |t| t.referenced);
                    return Err(self.err(&loc, &field("hold"), "must be shorter than period"));
                }
                let count = w.count.as_ref().map(|c| c.value);
                if count.is_none() && duration_s.is_none() {
                    return Err(missing("count or duration"));
                }
                Phase::Burst(Burst {
                    baseline_bytes,
                    spike_bytes,
                    period_s,
                    hold_s,
                    count,
                    duration_s,
                })
            }
            "steady" => Phase::Steady(Steady {
                size_bytes: self
                    .bytes(&w.size, &field("size"))?
                    .ok_or_else(|| missing("size"))?,
                duration_s: duration_s.ok_or_else(|| missing("duration"))?,
            }),
            "model-load" => Phase::ModelLoad(self.model_load(w, at)?),
            "kv-cache" => Phase::KvCache(Box::new(self.kv_cache(w, at)?)),
            _ => Phase::Command(self.program(w, at)?),
        })
    }

    /// A `command` workload: its templates checked, its runtime named or read off the program.
    fn program(&self, w: &RawWorkload, at: &str) -> Result<Program, ScenarioError> {
        let command = w.command.as_ref().ok_or_else(|| {
            self.err(
                &w.kind.referenced,
                &format!("{at}.command"),
                "a command workload needs `command`",
            )
        })?;
        if command.value.first().is_none_or(|a| a.value.is_empty()) {
            return Err(self.err(
                &command.referenced,
                &format!("{at}.command"),
                "the command is empty",
            ));
        }
        let checked = |t: &Text, field: String| {
            template::check(&t.value)
                .map(|()| t.value.clone())
                .map_err(|e| self.err(&t.referenced, &field, e.to_string()))
        };
        let argv = command
            .value
            .iter()
            .enumerate()
            .map(|(i, a)| checked(a, format!("{at}.command[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let env = w
            .env
            .iter()
            .flat_map(|e| &e.value)
            .map(|(k, v)| Ok((k.clone(), checked(v, format!("{at}.env.{k}"))?)))
            .collect::<Result<Vec<_>, ScenarioError>>()?;
        let mut program = Program::new(argv, env);
        if let Some(r) = &w.runtime {
            program.runtime = Some(Runtime::parse(&r.value).ok_or_else(|| {
                self.err(
                    &r.referenced,
                    &format!("{at}.runtime"),
                    format!("{:?} is not a runtime (one of {})", r.value, Runtime::NAMES),
                )
            })?);
        }
        Ok(program)
    }
}
