//! Faults injected by tests (debug builds only): `OOMSIM_FAULT=panic@POINT`
//! makes oomsim panic when it reaches that point, so the soak test can
//! check that a panic anywhere still leaves no cgroup and no child behind.
//! Release builds compile the points to nothing.

/// Where a fault may be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Every pod's cgroups exist; nothing runs yet.
    CgroupsCreated,
    /// A pod's first container has been started (in the pod's thread).
    PodStarted,
    /// Every pod has ended; the report is not written yet.
    PodsEnded,
    /// Inside a workload child, before its first phase.
    Workload,
}

#[cfg(debug_assertions)]
impl Point {
    pub fn name(self) -> &'static str {
        match self {
            Point::CgroupsCreated => "cgroups-created",
            Point::PodStarted => "pod-started",
            Point::PodsEnded => "pods-ended",
            Point::Workload => "workload",
        }
    }
}

/// The environment variable tests set.
#[cfg(debug_assertions)]
const ENV: &str = "OOMSIM_FAULT";

/// Panic here if a test asked for it.
#[track_caller]
pub fn point(at: Point) {
    #[cfg(debug_assertions)]
    if std::env::var(ENV).is_ok_and(|v| v.strip_prefix("panic@") == Some(at.name())) {
        panic!("fault injected at {}", at.name());
    }
    #[cfg(not(debug_assertions))]
    let _ = at;
}
