//! oomsim: parse the command line, resolve it, dispatch it, and turn the
//! outcome into an exit code. The data flows one way: YAML -> Plan -> Run
//! (cgroups, children, monitors) -> Events -> Verdict -> Report -> Plots.

mod bounded;
mod cgroup;
mod cli;
mod commands;
mod compare;
mod diagnose;
mod fault;
mod gpu;
mod host;
mod html;
mod k8s;
mod llm;
mod monitor;
mod plan;
mod plot;
mod recommend;
mod report;
mod run;
mod runtime;
mod scan;
mod scenario;
mod search;
mod signals;
mod template;
mod units;
mod verdict;
mod workload;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::panic::install_hook();
    let cli = cli::Cli::parse();
    match std::panic::catch_unwind(|| commands::dispatch(cli.command)) {
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(f)) => {
            eprintln!("oomsim: {}", cli::failure::shorten(&f.message));
            ExitCode::from(f.code)
        }
        Err(payload) => cli::panic::exit_after(payload.as_ref()),
    }
}
