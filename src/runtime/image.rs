//! A user's own container image, run for real with podman and placed in
//! the container's cgroup (`--cgroup-parent`), so oomsim's watcher, not the
//! engine, gives the verdict (podman's own `OOMKilled` read false for a
//! container the kernel had just killed on this kind of host).
//!
//! Measured on a hybrid cgroup v1 host with podman 4.3: runc, not crun
//! (crun refuses a hybrid host); `--ulimit nofile/nproc` given, since
//! podman's defaults raise rlimits a host without CAP_SYS_RESOURCE refuses;
//! `--cgroups=no-conmon`, so the engine's monitor is not charged to the
//! container; `--pull never`: images come from the local store only.

use std::process::{Command, Stdio};

use super::build::{BuildError, on_path};
use crate::plan::Program;

/// The engine's container name for one run of a container.
pub fn name(kernel_path: &str) -> String {
    let tail: String = kernel_path
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("oomsim-{tail}")
}

/// podman on PATH and the image in its local store.
pub fn check(image: &str) -> Result<(), BuildError> {
    if on_path("podman").is_none() {
        return Err(BuildError::Missing {
            tool: "podman".into(),
            program: format!("image {image}"),
            package: "podman and runc (Debian: podman runc)",
        });
    }
    let exists = Command::new("podman")
        .args(["image", "exists", image])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        Ok(())
    } else {
        Err(BuildError::NoImage {
            image: image.to_string(),
        })
    }
}

/// `podman run` of the image with the container's command, in `parent`
/// (the container cgroup's path as the kernel names it), with the
/// kubelet's oom_score_adj handed to the runtime as the CRI does.
pub fn command(image: &str, p: &Program, parent: &str, oom_score_adj: i32) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args([
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        "--log-driver",
        "none",
        "--cgroups",
        "no-conmon",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ]);
    cmd.arg("--cgroup-parent").arg(parent);
    cmd.arg("--oom-score-adj").arg(oom_score_adj.to_string());
    cmd.arg("--name").arg(name(parent));
    for (k, v) in &p.env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    cmd.arg(image).args(&p.argv);
    cmd
}

/// Remove the run's container whatever became of it (a `podman run` that
/// was killed leaves its container running).
pub fn remove(parent: &str) {
    let _ = Command::new("podman")
        .args(["rm", "--force", "--time", "0", &name(parent)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
