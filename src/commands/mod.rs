//! One handler per subcommand: each takes its resolved arguments, calls the
//! library (scenario, run, search, report, plot, llm, k8s), prints, and
//! returns the exit code. No domain logic lives here.

mod bench;
mod diagnose;
mod k8s;
mod node;
mod run;
mod saved;
mod vllm;

use crate::cli::{Cmd, Failure, args::K8sCmd, args::NodeCmd, args::VllmCmd, exit};
use crate::signals;

/// Run a parsed command line; the exit code or the failure to print.
pub fn dispatch(cmd: Cmd) -> Result<u8, Failure> {
    match cmd {
        Cmd::Workload { spec } => Ok(crate::workload::child(&spec)),
        Cmd::Validate { scenario, strict } => saved::validate(&scenario, strict),
        Cmd::Plot { file, out } => saved::plot(&file, out),
        Cmd::Compare {
            baseline,
            current,
            tolerance,
            junit,
            plot,
            out,
        } => saved::compare(&baseline, &current, &tolerance, junit, plot, out),
        Cmd::Diagnose(args) => diagnose::diagnose(&args),
        Cmd::Recommend(args) => diagnose::recommend(&args),
        Cmd::Run(args) => {
            signals::install();
            run::run(args)
        }
        Cmd::Search(args) => {
            signals::install();
            run::search(args)
        }
        Cmd::Bench(args) => {
            signals::install();
            bench::run(&args)
        }
        Cmd::Node {
            command: NodeCmd::Plan(args),
        } => node::plan(&args),
        Cmd::Vllm { command } => match *command {
            VllmCmd::Plan(args) => vllm::plan(&args),
        },
        Cmd::Merge { inputs, out } => k8s::merge(&inputs, out.as_deref()),
        Cmd::K8s { command } => {
            signals::install();
            match command {
                K8sCmd::Job(args) => k8s::job(&args),
                K8sCmd::Cell(args) => k8s::cell(&args),
            }
        }
    }
}

/// After Ctrl-C or SIGTERM: say what was cleaned up; exit 128 + signal.
fn interrupted() -> Option<u8> {
    let sig = signals::caught()?;
    eprintln!(
        "oomsim: interrupted by {}: oomsim stopped the pods, killed their processes and removed their cgroups",
        signals::name(sig)
    );
    Some(128u8.saturating_add(sig as u8))
}

/// 0 when it held, 1 when not.
fn held(ok: bool) -> u8 {
    if ok {
        exit::OK
    } else {
        exit::EXPECTATION_FAILED
    }
}
