//! Raw arguments into typed values: a plan from a scenario file or from a
//! command after `--`, quantities, durations and reasons from flags. Every
//! refusal is one line naming the flag.

use std::path::PathBuf;
use std::time::Duration;

use super::Failure;
use super::args::ProgramArgs;
use crate::k8s::Reason;
use crate::plan::{DEFAULT_POD_TIMEOUT, Expect, Phase, Plan, Program};
use crate::{template, units};

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
    pub program: &'a ProgramArgs,
    pub limit: Option<u64>,
    pub request: Option<u64>,
    pub timeout: &'a Option<String>,
    pub strict: bool,
}

/// The plan from a scenario file (its warnings printed) or from a command.
pub fn plan(src: Source<'_>) -> Result<Plan, Failure> {
    let p = src.program;
    match (src.scenario, p.command.is_empty()) {
        (Some(path), true) => {
            if !p.env.is_empty() || p.name.is_some() {
                return Err(Failure::input(
                    "--env and --name apply to a command run (`-- CMD`), not a scenario file",
                ));
            }
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
            command_plan(CommandRun {
                program: program(p)?,
                name: p.name.clone(),
                limit: src.limit,
                request: src.request,
                timeout,
            })
        }
        (Some(_), false) => Err(Failure::input(
            "give a scenario file or a command after --, not both",
        )),
        (None, true) => Err(Failure::input(
            "nothing to do: give a scenario file or a command after -- (see --help)",
        )),
    }
}

/// The program after `--` with its `--env`, templates checked.
fn program(p: &ProgramArgs) -> Result<Program, Failure> {
    for (i, a) in p.command.iter().enumerate() {
        template::check(a).map_err(|e| Failure::input(format!("-- CMD, argument {i}: {e}")))?;
    }
    let env = p
        .env
        .iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| Failure::flag("--env", format!("{kv:?} is not KEY=VALUE")))?;
            template::check(v).map_err(|e| Failure::flag("--env", format!("{k}: {e}")))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    Ok(Program::new(p.command.clone(), env))
}

/// A command run: `oomsim run|search [--limit ...] [--env ...] -- CMD`.
pub struct CommandRun {
    pub program: Program,
    pub name: Option<String>,
    pub limit: Option<u64>,
    pub request: Option<u64>,
    pub timeout: Duration,
}

/// A plan for `oomsim run --limit ... -- CMD`: one pod, named after the
/// program unless `--name` says, expecting to complete.
pub fn command_plan(run: CommandRun) -> Result<Plan, Failure> {
    let CommandRun {
        program,
        name,
        limit,
        request,
        timeout,
    } = run;
    let argv = &program.argv;
    let name = match name {
        Some(n) if crate::k8s::valid_name(&n) => n,
        Some(n) => {
            return Err(Failure::flag(
                "--name",
                format!(
                    "{n:?} is not a valid pod name (lowercase letters, digits and '-', at most 63)"
                ),
            ));
        }
        None => name_after(
            argv.first()
                .ok_or_else(|| Failure::input("no command given after --"))?,
        ),
    };
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
        vec![Phase::Command(program)],
    );
    plan.description = Some(description);
    plan.pods[0].expect = Some(Expect {
        reason: Some(Reason::Completed),
        ..Expect::default()
    });
    Ok(plan)
}

/// A pod name from a program's path: `/usr/bin/python3` is `python3`.
fn name_after(program: &str) -> String {
    let base = program.rsplit('/').next().unwrap_or("cmd");
    let name: String = base
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let name = name.trim_matches('-').chars().take(63).collect::<String>();
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() { "cmd".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_plan_names_pod_after_program_and_expects_completion() {
        let run = |argv: &[&str], name: Option<&str>, limit, request| {
            command_plan(CommandRun {
                program: Program::new(argv.iter().map(|s| s.to_string()).collect(), vec![]),
                name: name.map(String::from),
                limit,
                request,
                timeout: DEFAULT_POD_TIMEOUT,
            })
        };
        let plan = run(
            &["/usr/bin/python3", "-c", "pass"],
            None,
            Some(512 << 20),
            None,
        )
        .unwrap();
        assert_eq!(plan.pods[0].name, "python3");
        assert_eq!(plan.pods[0].request_bytes(), Some(512 << 20));
        assert_eq!(
            plan.pods[0].expect.as_ref().and_then(|e| e.reason),
            Some(Reason::Completed)
        );
        assert!(run(&["x"], None, Some(0), None).is_err());
        let e = run(&["x"], None, Some(1), Some(2)).unwrap_err();
        assert!(e.message.starts_with("--request:"), "{}", e.message);
        let named = run(
            &["java", "-Xmx{limit*0.7:MiB}m"],
            Some("api"),
            Some(1 << 30),
            None,
        );
        assert_eq!(named.unwrap().pods[0].name, "api");
        let e = run(&["x"], Some("API_1"), None, None).unwrap_err();
        assert!(
            e.message
                .starts_with("--name: \"API_1\" is not a valid pod name"),
            "{}",
            e.message
        );
        assert_eq!(name_after("./My_App.sh-"), "my-app-sh");
    }

    #[test]
    fn env_and_templates_of_a_command_run() {
        let args = |env: &[&str], cmd: &[&str]| ProgramArgs {
            env: env.iter().map(|s| s.to_string()).collect(),
            name: None,
            command: cmd.iter().map(|s| s.to_string()).collect(),
        };
        let p = program(&args(
            &["GOMEMLIMIT={limit*0.9:MiB}MiB"],
            &["./mem", "heap"],
        ))
        .unwrap();
        assert_eq!(
            p.env,
            vec![("GOMEMLIMIT".into(), "{limit*0.9:MiB}MiB".into())]
        );
        for (env, cmd, says) in [
            (
                &["NOEQUALS"][..],
                &["x"][..],
                "--env: \"NOEQUALS\" is not KEY=VALUE",
            ),
            (&["=v"][..], &["x"][..], "--env: \"=v\" is not KEY=VALUE"),
            (
                &["K={limit*:MiB}"][..],
                &["x"][..],
                "--env: K: {limit*:MiB}",
            ),
            (
                &[][..],
                &["java", "-Xmx{limit:Mb}m"][..],
                "-- CMD, argument 1: {limit:Mb}: unknown unit",
            ),
        ] {
            let e = program(&args(env, cmd)).unwrap_err();
            assert_eq!(e.code, super::super::exit::BAD_INPUT);
            assert!(e.message.starts_with(says), "{}", e.message);
        }
    }

    #[test]
    fn reasons_from_the_flag() {
        assert_eq!(reason("OOMKilled").unwrap(), Reason::OomKilled);
        let e = reason("oomkilled").unwrap_err();
        assert_eq!(e.code, super::super::exit::BAD_INPUT);
        assert!(e.message.contains("OOMKilled, Error"), "{}", e.message);
    }
}
