//! The kernel's OOM killer, as every kernel from 3.10 to 6.x words it
//! (mm/oom_kill.c and mm/memcontrol.c):
//! - `X invoked oom-killer: gfp_mask=..., order=0, oom_score_adj=...`;
//! - the kill: `Memory cgroup out of memory: Kill process N (x) score S or
//!   sacrifice child` (before 4.19, the memcg path) or `Out of memory: Kill
//!   process ...` (node-wide), then `Killed process N (x) total-vm:..kB,
//!   anon-rss:..kB, file-rss:..kB, shmem-rss:..kB`; from 4.19 one line,
//!   `Memory cgroup out of memory: Killed process N (x) total-vm:...` or
//!   `Out of memory: Killed process ...`;
//! - 4.19+'s summary `oom-kill:constraint=CONSTRAINT_MEMCG|NONE,...,
//!   oom_memcg=/kubepods/...,task_memcg=...,task=x,pid=N,uid=U`;
//! - cgroup v1's `Task in /a killed as a result of limit of /b` (before
//!   4.19) and every memcg OOM's `memory: usage NkB, limit NkB, failcnt N`;
//! - the call trace: `mem_cgroup_out_of_memory` / `try_charge` frames are a
//!   cgroup's limit; `__alloc_pages_slowpath` into `out_of_memory` with no
//!   memcg frame is the node running out.

use super::finding::{KillScope, Kind, Victim, after};
use crate::monitor::kmsg::{kb_field, oom_kill_field, pid_comm};
use crate::scan::has;

/// What a kernel log line says of an OOM kill, if anything.
pub fn parse(text: &str) -> Option<Kind> {
    if let Some(rest) = after(text, "oom-kill:constraint=").filter(|r| r.starts_with("CONSTRAINT_"))
    {
        let memcg = rest.starts_with("CONSTRAINT_MEMCG");
        let oom_memcg = oom_kill_field(rest, "oom_memcg").map(str::to_string);
        return Some(Kind::Constraint { memcg, oom_memcg });
    }
    if has(text, "invoked oom-killer") {
        let comm = text.split(" invoked oom-killer").next().unwrap_or("");
        let comm = comm.rsplit(' ').next().unwrap_or(comm);
        return Some(Kind::OomInvoked {
            comm: comm.to_string(),
        });
    }
    if let Some(kill) = kill_line(text) {
        return Some(kill);
    }
    if let Some(rest) = after(text, "Task in ")
        && let Some(limit_of) = after(rest, "killed as a result of limit of ")
    {
        return Some(Kind::TaskInMemcg {
            limit_of: limit_of.split_whitespace().next().unwrap_or("").to_string(),
        });
    }
    // dump_header: a memcg OOM prints the cgroup's stats, a node-wide one
    // the whole machine's (show_mem).
    if has(text, "Memory cgroup stats for ") {
        return Some(Kind::MemcgStats);
    }
    if text.trim_end().ends_with("Mem-Info:") {
        return Some(Kind::MemInfo);
    }
    if let Some(rest) = after(text, "memory: usage ") {
        let usage = kb_field(rest, "")?;
        let limit = kb_field(rest, "limit ")?;
        return Some(Kind::MemcgUsage { usage, limit });
    }
    trace_frame(text)
}

/// The kill itself, in each kernel's words.
fn kill_line(text: &str) -> Option<Kind> {
    let (scope, rest) = if let Some(r) = after(text, "Memory cgroup out of memory:") {
        (KillScope::Memcg, r)
    } else if let Some(r) = after(text, "Out of memory (oom_kill_allocating_task):")
        .or_else(|| after(text, "Out of memory:"))
    {
        (KillScope::Node, r)
    } else if has(text, "Killed process ") {
        (KillScope::Unsaid, text)
    } else {
        return None;
    };
    let who = after(rest, "Killed process ").or_else(|| after(rest, "Kill process "));
    Some(Kind::KernelKill {
        scope,
        victim: who
            .and_then(pid_comm)
            .map(|(pid, comm)| Victim { pid, comm }),
        anon_rss: kb_field(rest, "anon-rss:"),
    })
}

/// A call trace frame that tells which OOM killer ran.
fn trace_frame(text: &str) -> Option<Kind> {
    let mut frame = text.trim_start();
    // 3.10's frames lead with their address: `[<ffffffff8118e0b1>] `.
    if let Some(r) = frame.strip_prefix("[<").and_then(|r| r.split_once(">] ")) {
        frame = r.1;
    }
    let func = frame
        .trim_start_matches("? ")
        .split(['+', ' ', '(', '.'])
        .next()
        .filter(|f| !f.is_empty())?;
    let memcg = [
        "mem_cgroup_out_of_memory",
        "mem_cgroup_oom",
        "mem_cgroup_oom_synchronize",
        "try_charge",
        "try_charge_memcg",
        "mem_cgroup_charge",
        "__mem_cgroup_charge",
        "charge_memcg",
    ];
    if memcg.contains(&func) {
        return Some(Kind::TraceFrame { memcg: true });
    }
    ["__alloc_pages_slowpath", "__alloc_pages_may_oom"]
        .contains(&func)
        .then_some(Kind::TraceFrame { memcg: false })
}

/// The one-line summary's `task=` and `pid=`, for the victim.
pub fn constraint_victim(text: &str) -> Option<Victim> {
    let rest = after(text, "oom-kill:constraint=")?;
    Some(Victim {
        pid: oom_kill_field(rest, "pid")?.parse().ok()?,
        comm: oom_kill_field(rest, "task")?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(pid: i32, comm: &str) -> Option<Victim> {
        Some(Victim {
            pid,
            comm: comm.into(),
        })
    }

    /// The lines as kernels 3.10, 4.14, 5.x and 6.x print them.
    #[test]
    fn every_kernels_wording() {
        assert_eq!(
            parse(
                "Memory cgroup out of memory: Kill process 30213 (java) score 1004 or sacrifice child"
            ),
            Some(Kind::KernelKill {
                scope: KillScope::Memcg,
                victim: v(30213, "java"),
                anon_rss: None
            })
        );
        assert_eq!(
            parse("Out of memory: Kill process 1811 (mysqld) score 508 or sacrifice child"),
            Some(Kind::KernelKill {
                scope: KillScope::Node,
                victim: v(1811, "mysqld"),
                anon_rss: None
            })
        );
        assert_eq!(
            parse(
                "Killed process 30213 (java) total-vm:9428380kB, anon-rss:2093084kB, file-rss:15384kB, shmem-rss:0kB"
            ),
            Some(Kind::KernelKill {
                scope: KillScope::Unsaid,
                victim: v(30213, "java"),
                anon_rss: Some(2093084 * 1024)
            })
        );
        assert_eq!(
            parse(
                "Memory cgroup out of memory: Killed process 2841 (python3) total-vm:1112804kB, anon-rss:261628kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:652kB oom_score_adj:1000"
            ),
            Some(Kind::KernelKill {
                scope: KillScope::Memcg,
                victim: v(2841, "python3"),
                anon_rss: Some(261628 * 1024)
            })
        );
        assert_eq!(
            parse(
                "Out of memory: Killed process 912 (stress) total-vm:2109560kB, anon-rss:1900000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:3760kB oom_score_adj:0"
            ),
            Some(Kind::KernelKill {
                scope: KillScope::Node,
                victim: v(912, "stress"),
                anon_rss: Some(1900000 * 1024)
            })
        );
        let one = "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-1.scope,mems_allowed=0,oom_memcg=/kubepods.slice/kubepods-pod1.slice,task_memcg=/kubepods.slice/kubepods-pod1.slice/cri-containerd-1.scope,task=node,pid=1234,uid=1000";
        assert_eq!(
            parse(one),
            Some(Kind::Constraint {
                memcg: true,
                oom_memcg: Some("/kubepods.slice/kubepods-pod1.slice".into())
            })
        );
        assert_eq!(constraint_victim(one), v(1234, "node"));
        assert_eq!(
            parse(
                "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/user.slice,task=stress,pid=912,uid=0"
            ),
            Some(Kind::Constraint {
                memcg: false,
                oom_memcg: None
            })
        );
        assert_eq!(
            parse(
                "Task in /kubepods/burstable/pod12/abc killed as a result of limit of /kubepods/burstable/pod12/abc"
            ),
            Some(Kind::TaskInMemcg {
                limit_of: "/kubepods/burstable/pod12/abc".into()
            })
        );
        assert_eq!(
            parse("memory: usage 524288kB, limit 524288kB, failcnt 3120"),
            Some(Kind::MemcgUsage {
                usage: 512 << 20,
                limit: 512 << 20
            })
        );
        assert_eq!(
            parse(
                "java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=-997"
            ),
            Some(Kind::OomInvoked {
                comm: "java".into()
            })
        );
        assert_eq!(
            parse(" mem_cgroup_out_of_memory+0xb5/0xd0"),
            Some(Kind::TraceFrame { memcg: true })
        );
        assert_eq!(
            parse(" [<ffffffff8118e0b1>] ? try_charge+0x6c1/0x710"),
            Some(Kind::TraceFrame { memcg: true })
        );
        assert_eq!(
            parse(" ? try_charge+0x6c1/0x710"),
            Some(Kind::TraceFrame { memcg: true })
        );
        assert_eq!(
            parse(" __alloc_pages_slowpath.constprop.0+0xcb3/0xdb0"),
            Some(Kind::TraceFrame { memcg: false })
        );
        assert_eq!(
            parse(" __alloc_pages_slowpath+0x6e9/0x7a0"),
            Some(Kind::TraceFrame { memcg: false })
        );
        for not in [
            "memory: usage",
            "Out of memory",
            "Killed",
            "oom-kill:",
            "Task in x",
        ] {
            assert!(
                matches!(
                    parse(not),
                    None | Some(Kind::KernelKill { victim: None, .. })
                ),
                "{not}"
            );
        }
    }
}
