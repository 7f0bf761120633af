//! Ctrl-C, SIGTERM and SIGHUP: caught by one thread (sigwait), which kills
//! every child so the run unwinds through its normal cleanup path and removes
//! its cgroups before exiting.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::Pid;

static CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static CAUGHT: AtomicI32 = AtomicI32::new(0);

const HANDLED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in HANDLED {
        set.add(s);
    }
    set
}

fn kill_child(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Block the signals in this thread (call first in main, so every later
/// thread inherits the mask) and start the thread that waits for them.
pub fn install() {
    let set = handled_set();
    if let Err(e) = set.thread_block() {
        eprintln!("oomsim: warning: cannot block Ctrl-C for cleanup: {e}");
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                let Ok(sig) = set.wait() else {
                    continue;
                };
                CAUGHT.store(sig as i32, Ordering::SeqCst);
                for pid in CHILDREN.lock().map(|c| c.clone()).unwrap_or_default() {
                    kill_child(pid);
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("oomsim: warning: cannot watch for Ctrl-C: {e}");
    }
}

/// Reset the mask in a freshly forked child (async-signal-safe: one
/// sigprocmask call on a set built on the stack).
pub fn unblock_in_child() {
    let _ = SigSet::empty().thread_set_mask();
}

pub fn register(pid: i32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(pid);
    }
    // A signal that came before registration still ends this child.
    if caught().is_some() {
        kill_child(pid);
    }
}

pub fn unregister(pid: i32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.retain(|p| *p != pid);
    }
}

/// The signal that asked the run to stop, if one did.
pub fn caught() -> Option<Signal> {
    Signal::try_from(CAUGHT.load(Ordering::SeqCst)).ok()
}

/// `SIGINT`, `SIGTERM`, ...: the name a report and a message use.
pub fn name(sig: Signal) -> &'static str {
    sig.as_str()
}
