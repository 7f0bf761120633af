//! oomsim: parse the command line, dispatch it, and turn the outcome into
//! an exit code (the commands live in the library, `lib.rs`).

use std::process::ExitCode;

use clap::Parser;
use oomsim::{cli, commands};

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
