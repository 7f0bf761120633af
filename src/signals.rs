//! Ctrl-C, SIGTERM and SIGHUP: caught by one thread (sigwait), which kills
//! every child so the run unwinds through its normal cleanup path and removes
//! its cgroups before exiting.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

static CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static CAUGHT: AtomicI32 = AtomicI32::new(0);

const HANDLED: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn handled_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise a set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in HANDLED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Block the signals in this thread (call first in main, so every later
/// thread inherits the mask) and start the thread that waits for them.
pub fn install() {
    let set = handled_set();
    // SAFETY: changing this thread's mask with a valid set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            loop {
                let mut sig = 0;
                // SAFETY: waiting on a valid set; sig is written by the call.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    continue;
                }
                CAUGHT.store(sig, Ordering::SeqCst);
                for pid in CHILDREN.lock().map(|c| c.clone()).unwrap_or_default() {
                    // SAFETY: kill(2) on a pid we spawned and have not reaped.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("oomsim: warning: cannot watch for Ctrl-C: {e}");
    }
}

/// Reset the mask in a freshly forked child (async-signal-safe).
pub fn unblock_in_child() {
    // SAFETY: only sigemptyset and pthread_sigmask, both async-signal-safe.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

pub fn register(pid: i32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(pid);
    }
    // A signal that came before registration still ends this child.
    if caught().is_some() {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

pub fn unregister(pid: i32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.retain(|p| *p != pid);
    }
}

/// The signal that asked the run to stop, if one did.
pub fn caught() -> Option<i32> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
