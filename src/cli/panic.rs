//! Panics at the binary's edge. A panic is a bug in oomsim: it prints one
//! line naming where, unwinds (so the run's guard removes its cgroups and
//! children), and the process exits 4. A panic because stdout's reader went
//! away (`oomsim vllm plan --json | head`) is no bug: the process ends by
//! SIGPIPE, silently, as Unix tools do.

use std::any::Any;
use std::io::Write;
use std::process::ExitCode;

use super::exit;

/// What `println!` panics with when its reader has gone.
fn is_broken_pipe(message: &str) -> bool {
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}

/// A panic's message, whatever its payload.
pub fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Replace the default hook (a backtrace over several lines) with one line.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = message(info.payload());
        if is_broken_pipe(&message) {
            return;
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        // Never a second panic from the hook: stderr may be gone too.
        let _ = writeln!(
            std::io::stderr(),
            "oomsim: internal error: {message}{at} (a bug in oomsim; please report it)"
        );
    }));
}

/// The exit after a panic reached `main` (the hook has printed it).
pub fn exit_after(payload: &(dyn Any + Send)) -> ExitCode {
    if is_broken_pipe(&message(payload)) {
        use nix::sys::signal::{SigHandler, Signal, raise, signal};
        // SAFETY: restoring the default disposition before raising it; no
        // handler of ours is replaced that another thread relies on now.
        let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
        let _ = raise(Signal::SIGPIPE);
    }
    ExitCode::from(exit::INTERNAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stdout_broken_pipes_are_quiet() {
        assert!(is_broken_pipe(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_broken_pipe("attempt to divide by zero"));
        assert!(!is_broken_pipe("failed printing to stdout: No space left"));
    }

    #[test]
    fn messages_of_both_payloads() {
        assert_eq!(message(&"static"), "static");
        assert_eq!(message(&String::from("owned")), "owned");
        assert_eq!(message(&42u8), "a panic without a message");
    }
}
