//! `oomsim bench startup`: `oomsim run --limit 64Mi -- true`, the whole
//! process, against the same cgroup work done by hand in C (the run's,
//! pod's and container's cgroups made, both limits written, a child moved
//! into the container's cgroup and exec'd, waited for, the peak, stat and
//! OOM counter read, the cgroups removed), in turn, round by round.
//!
//! Each run starts after a pause: moving a process into a memory cgroup
//! waits for an RCU grace period unless another move happened just before
//! (measured here: 5-16 ms after 50 ms idle, under 1 ms back to back), and
//! one `oomsim run` on its own pays it, so each side pays it the same way.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Spread, compile_c, spread};
use crate::cgroup::{self, Version};
use crate::cli::Failure;
use crate::signals;

/// argv = cgroup root, "1" or "2" (the version), program. The same steps as
/// a one-container `oomsim run`, nothing else.
const STARTUP_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
static void put(const char *dir, const char *name, const char *v) {
    char p[1024]; snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY);
    if (fd < 0 || write(fd, v, strlen(v)) < 0) { perror(p); exit(1); }
    close(fd);
}
static void get(const char *dir, const char *name) {
    char p[1024], buf[8192]; snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_RDONLY);
    if (fd < 0) { perror(p); exit(1); }
    while (read(fd, buf, sizeof buf) > 0) {}
    close(fd);
}
int main(int argc, char **argv) {
    int v2 = argv[2][0] == '2';
    const char *limit = v2 ? "memory.max" : "memory.limit_in_bytes";
    char run[512], pod[600], ctr[700];
    snprintf(run, sizeof run, "%s/oomsim-anchor-%d", argv[1], getpid());
    snprintf(pod, sizeof pod, "%s/pod", run);
    snprintf(ctr, sizeof ctr, "%s/ctr", pod);
    if (mkdir(run, 0755) || (v2 && (put(run, "cgroup.subtree_control", "+memory"), 0))) return 1;
    if (mkdir(pod, 0755) || (v2 && (put(pod, "cgroup.subtree_control", "+memory"), 0))) return 1;
    if (mkdir(ctr, 0755)) return 1;
    put(pod, limit, "67108864");
    put(ctr, limit, "67108864");
    pid_t c = fork();
    if (c == 0) { put(ctr, "cgroup.procs", "0"); execvp(argv[3], argv + 3); _exit(127); }
    int st;
    waitpid(c, &st, 0);
    get(pod, v2 ? "memory.peak" : "memory.max_usage_in_bytes");
    get(ctr, "memory.stat");
    get(ctr, v2 ? "memory.events" : "memory.oom_control");
    rmdir(ctr); rmdir(pod); rmdir(run);
    return WEXITSTATUS(st);
}
"#;

const PAUSE: Duration = Duration::from_millis(100);
const WARM_UP: usize = 3;
const ROUNDS: usize = 30;

#[derive(Debug, Serialize)]
pub struct StartupStats {
    pub oomsim_ms: Option<Spread>,
    pub by_hand_ms: Option<Spread>,
    /// Round by round, oomsim's over the C program's.
    pub ratio: Option<Spread>,
}

/// Wall time of one run of `cmd` after the pause, in ms; it must exit 0.
fn timed(cmd: &mut Command) -> Result<f64, Failure> {
    std::thread::sleep(PAUSE);
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| Failure::internal(format!("bench startup: {e}")))?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if !status.success() {
        return Err(Failure::internal(format!(
            "bench startup: {cmd:?} failed ({status})"
        )));
    }
    Ok(ms)
}

pub fn startup(work: &Path, notes: &mut Vec<String>) -> Result<Option<StartupStats>, Failure> {
    let bin = match compile_c(work, "startup", STARTUP_C) {
        Ok(b) => b,
        Err(e) => {
            notes.push(format!("startup skipped: {e}"));
            return Ok(None);
        }
    };
    let exe = std::env::current_exe()
        .map_err(|e| Failure::internal(format!("bench startup: oomsim's own binary: {e}")))?;
    let backend = cgroup::detect().map_err(crate::run::RunError::from)?;
    let version = match backend.version() {
        Version::V1 => "1",
        Version::V2 => "2",
    };
    // Where oomsim would put its own: a v2 root passes memory down first.
    if backend.version() == Version::V2 {
        backend
            .enable_children(backend.root())
            .map_err(crate::run::RunError::from)?;
    }
    let out = work.join("startup-out");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..WARM_UP + ROUNDS {
        if signals::caught().is_some() {
            return Ok(None);
        }
        let a = timed(
            Command::new(&exe)
                .args(["run", "-q", "--limit", "64Mi", "--out"])
                .arg(&out)
                .args(["--", "true"]),
        )?;
        let b = timed(
            Command::new(&bin)
                .arg(backend.root())
                .arg(version)
                .arg("true"),
        )?;
        if round >= WARM_UP {
            ours.push(a);
            theirs.push(b);
        }
    }
    let ratio: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a / b).collect();
    Ok(Some(StartupStats {
        oomsim_ms: spread(&ours),
        by_hand_ms: spread(&theirs),
        ratio: spread(&ratio),
    }))
}

pub fn print(s: &StartupStats, show: impl Fn(&Option<Spread>) -> String) {
    println!(
        "start-up, ms (`oomsim run --limit 64Mi -- true` against the same cgroup work in C, in turn, each after a 100 ms pause):"
    );
    println!("  oomsim         {}", show(&s.oomsim_ms));
    println!("  by hand (C)    {}", show(&s.by_hand_ms));
    println!("  oomsim/C       {}  (goal: 1.5 or less)", show(&s.ratio));
}
