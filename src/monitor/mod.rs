//! Watching pods while they run: the OOM watcher (kernel notifications plus
//! the kernel log), the usage sampler, and the clock they share.

pub mod clock;
pub mod kmsg;
pub mod sampler;
pub mod watch;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::eventfd::{EfdFlags, EventFd};

/// An eventfd used to wake a monitor thread and tell it to stop.
#[derive(Debug)]
pub struct StopSignal(OwnedFd);

impl StopSignal {
    pub fn new() -> std::io::Result<StopSignal> {
        let fd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        Ok(StopSignal(OwnedFd::from(fd)))
    }

    pub fn raise(&self) {
        let _ = nix::unistd::write(&self.0, &1u64.to_ne_bytes());
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    pub fn try_clone(&self) -> std::io::Result<StopSignal> {
        self.0.try_clone().map(StopSignal)
    }
}

/// Set when a pod must not start anything again: the kubelet evicted it,
/// its cgroup went away, or the harness is being interrupted.
#[derive(Debug, Default)]
pub struct PodStop(AtomicBool);

impl PodStop {
    pub fn raise(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn raised(&self) -> bool {
        self.0.load(Ordering::Acquire) || crate::signals::caught().is_some()
    }
}
