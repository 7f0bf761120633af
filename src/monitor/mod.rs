//! Watching pods while they run: the OOM watcher (kernel notifications plus
//! the kernel log), the usage sampler, and the clock they share.

pub mod clock;
pub mod kmsg;
pub mod sampler;
pub mod watch;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An eventfd used to wake a monitor thread and tell it to stop.
#[derive(Debug)]
pub struct StopSignal(OwnedFd);

impl StopSignal {
    pub fn new() -> std::io::Result<StopSignal> {
        // SAFETY: eventfd returns a new fd or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd owned by nobody else.
        Ok(StopSignal(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    pub fn raise(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a local to our eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub fn raw_fd(&self) -> i32 {
        self.0.as_raw_fd()
    }

    pub fn try_clone(&self) -> std::io::Result<StopSignal> {
        self.0.try_clone().map(StopSignal)
    }
}
