//! Raw arguments into typed values: a plan from a scenario file or from a
//! command after `--`, quantities, durations and reasons from flags. Every
//! refusal is one line naming the flag.

use std::path::PathBuf;
use std::time::Duration;

use super::Failure;
use crate::k8s::Reason;
use crate::plan::{DEFAULT_POD_TIMEOUT, Expect, Phase, Plan, Program};
use crate::units;

/// A quantity flag, if given.
pub fn bytes(flag: &str, value: &Option<String>) -> Result<Option<u64>, Failure> {
    value
        .as_deref()
        .map(|v| units::parse_bytes(v).map_err(|e| Failure::flag(flag, e)))
        .transpose()
}

/// A quantity flag that must be more than zero.
pub fn positive_bytes(flag: &str, value: &str) -> Result<u64, Failure> {
    match units::parse_bytes(value).map_err(|e| Failure::flag(flag, e))? {
        0 => Err(Failure::flag(flag, "must be more than zero")),
        b => Ok(b),
    }
}

/// `--expect REASON`.
pub fn reason(value: &str) -> Result<Reason, Failure> {
    Reason::parse(value).ok_or_else(|| {
        Failure::flag(
            "--expect",
            format!("{value:?} is not a reason (one of {})", Reason::names()),
        )
    })
}

/// What a run or search was given: a scenario file, or a command after `--`.
pub struct Source<'a> {
    pub scenario: &'a Option<PathBuf>,
    pub command: &'a [String],
    pub limit: Option<u64>,
    pub request: Option<u64>,
    pub timeout: &'a Option<String>,
    pub strict: bool,
}

/// The plan from a scenario file (its warnings printed) or from a command.
pub fn plan(src: Source<'_>) -> Result<Plan, Failure> {
    match (src.scenario, src.command.is_empty()) {
        (Some(path), true) => {
            let loaded = crate::scenario::load(path, src.strict)?;
            for w in &loaded.warnings {
                eprintln!("oomsim: {w}");
            }
            Ok(loaded.plan)
        }
        (None, false) => {
            let timeout = src
                .timeout
                .as_deref()
                .map(|t| units::parse_duration(t).map_err(|e| Failure::flag("--timeout", e)))
                .transpose()?
                .unwrap_or(DEFAULT_POD_TIMEOUT);
            command_plan(src.command.to_vec(), src.limit, src.request, timeout)
        }
        (Some(_), false) => Err(Failure::input(
            "give a scenario file or a command after --, not both",
        )),
        (None, true) => Err(Failure::input(
            "nothing to do: give a scenario file or a command after -- (see --help)",
        )),
    }
}

/// A plan for `oomsim run --limit ... -- CMD`: one pod, named after the
/// program, expecting to complete.
pub fn command_plan(
    argv: Vec<String>,
    limit: Option<u64>,
    request: Option<u64>,
    timeout: Duration,
) -> Result<Plan, Failure> {
    let program = argv
        .first()
        .ok_or_else(|| Failure::input("no command given after --"))?
        .rsplit('/')
        .next()
        .unwrap_or("cmd")
        .to_string();
    let name: String = program
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').chars().take(63).collect::<String>();
    let name = if name.is_empty() { "cmd".into() } else { name };
    if limit == Some(0) {
        return Err(Failure::flag(
            "--limit",
            "a limit of zero bytes cannot run anything",
        ));
    }
    let request = request.or(limit);
    if let (Some(r), Some(l)) = (request, limit)
        && r > l
    {
        return Err(Failure::flag(
            "--request",
            format!(
                "{} is larger than --limit {}",
                units::fmt_quantity(r),
                units::fmt_quantity(l)
            ),
        ));
    }
    let description = format!("{} in one pod", argv.join(" "));
    let mut plan = Plan::single_pod(
        &name,
        limit,
        request,
        timeout,
        vec![Phase::Command(Program { argv, env: vec![] })],
    );
    plan.description = Some(description);
    plan.pods[0].expect = Some(Expect {
        reason: Some(Reason::Completed),
        ..Expect::default()
    });
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_plan_names_pod_after_program_and_expects_completion() {
        let plan = command_plan(
            vec!["/usr/bin/python3".into(), "-c".into(), "pass".into()],
            Some(512 << 20),
            None,
            DEFAULT_POD_TIMEOUT,
        )
        .unwrap();
        assert_eq!(plan.pods[0].name, "python3");
        assert_eq!(plan.pods[0].request_bytes(), Some(512 << 20));
        assert_eq!(
            plan.pods[0].expect.as_ref().and_then(|e| e.reason),
            Some(Reason::Completed)
        );
        assert!(command_plan(vec!["x".into()], Some(0), None, DEFAULT_POD_TIMEOUT).is_err());
        let e = command_plan(vec!["x".into()], Some(1), Some(2), DEFAULT_POD_TIMEOUT).unwrap_err();
        assert!(e.message.starts_with("--request:"), "{}", e.message);
    }

    #[test]
    fn reasons_from_the_flag() {
        assert_eq!(reason("OOMKilled").unwrap(), Reason::OomKilled);
        let e = reason("oomkilled").unwrap_err();
        assert_eq!(e.code, super::super::exit::BAD_INPUT);
        assert!(e.message.contains("OOMKilled, Error"), "{}", e.message);
    }
}
