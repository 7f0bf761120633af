//! The classifier on hand-made evidence: each cause, and what wins when several apply.

use super::*;

fn ev(exit: Exit) -> Evidence {
    Evidence {
        exit: Some(exit),
        waited_s: 2.0,
        ..Evidence::default()
    }
}

#[test]
fn oom_kill_of_main_process() {
    let v = classify(&Evidence {
        oom_kills: 1,
        main_was_victim: true,
        kernel_kill_s: Some(1.5),
        counter_seen_s: Some(1.5004),
        ..ev(Exit::Signal(9))
    });
    assert_eq!(
        (v.reason, v.exit_code, v.cause),
        (Reason::OomKilled, 137, Cause::CgroupOomKill)
    );
    assert_eq!((v.at_s, v.at_source), (1.5, AtSource::Kmsg));
    assert!((v.detect_latency_us.unwrap() - 400.0).abs() < 1.0);
}

#[test]
fn sigkill_without_oom_is_not_oom() {
    let v = classify(&ev(Exit::Signal(9)));
    assert_eq!(
        (v.reason, v.exit_code, v.cause),
        (Reason::Error, 137, Cause::ExternalSigkill)
    );
    assert_eq!((v.at_s, v.at_source), (2.0, AtSource::Waitpid));
    assert_eq!(v.detect_latency_us, None);
}

#[test]
fn sigterm_app_error_completed() {
    assert_eq!(classify(&ev(Exit::Signal(15))).exit_code, 143);
    assert_eq!(classify(&ev(Exit::Signal(15))).cause, Cause::Sigterm);
    let v = classify(&ev(Exit::Code(3)));
    assert_eq!(
        (v.reason, v.exit_code, v.cause),
        (Reason::Error, 3, Cause::AppError)
    );
    let v = classify(&ev(Exit::Code(0)));
    assert_eq!((v.reason, v.exit_code), (Reason::Completed, 0));
}

#[test]
fn evicted_and_node_oom() {
    let v = classify(&Evidence {
        evicted: Some((3.0, "The node was low on resource: memory.".into())),
        ..ev(Exit::Signal(9))
    });
    assert_eq!(
        (v.reason, v.exit_code, v.cause, v.at_s),
        (Reason::Evicted, 137, Cause::Evicted, 3.0)
    );
    let at = |level| {
        classify(&Evidence {
            oom_kills: 1,
            main_was_victim: true,
            node_oom: Some(level),
            ..ev(Exit::Signal(9))
        })
    };
    let v = at(NodeLevel::Node);
    assert_eq!((v.reason, v.cause), (Reason::OomKilled, Cause::NodeOomKill));
    let v = at(NodeLevel::Allocatable);
    assert_eq!(
        (v.reason, v.cause),
        (Reason::OomKilled, Cause::AllocatableOomKill)
    );
}

#[test]
fn cuda_oom_is_error_never_oomkilled() {
    let text = "CUDA out of memory. Tried to allocate 2.00 GiB.".to_string();
    let v = classify(&Evidence {
        cuda_oom: Some((Some(0.7), text.clone())),
        ..ev(Exit::Code(1))
    });
    assert_eq!(
        (v.reason, v.exit_code, v.cause),
        (Reason::Error, 1, Cause::CudaOom)
    );
    assert_eq!((v.at_s, v.message.as_str()), (0.7, text.as_str()));
    // A program that recovered from its CUDA OOM and exited 0 completed.
    let v = classify(&Evidence {
        cuda_oom: Some((None, text)),
        ..ev(Exit::Code(0))
    });
    assert_eq!(v.cause, Cause::Completed);
}

#[test]
fn child_oom_then_main_error_is_oomkilled() {
    // A container runtime says OOMKilled when the cgroup saw a kill and the container failed.
    let v = classify(&Evidence {
        oom_kills: 1,
        kernel_kill_s: Some(1.0),
        ..ev(Exit::Code(1))
    });
    assert_eq!(
        (v.reason, v.exit_code, v.cause),
        (Reason::OomKilled, 1, Cause::CgroupOomKillOfOtherProcess)
    );
    // Finished is the main process's end, not the worker's kill.
    assert_eq!((v.at_s, v.at_source), (2.0, AtSource::Waitpid));
    assert!(v.message.contains("at 1.00s"), "{}", v.message);
    // Still running with a dead worker when oomsim's timeout ended it.
    let v = classify(&Evidence {
        oom_kills: 1,
        kernel_kill_s: Some(1.0),
        timed_out: true,
        waited_s: 30.0,
        ..ev(Exit::Signal(9))
    });
    assert_eq!(
        (v.reason, v.exit_code, v.cause, v.at_s),
        (
            Reason::OomKilled,
            137,
            Cause::CgroupOomKillOfOtherProcess,
            30.0
        )
    );
    assert!(
        v.message.contains("dead worker until oomsim's timeout"),
        "{}",
        v.message
    );
    // Exit 0 after a worker's OOM kill: containerd still says OOMKilled.
    let v = classify(&Evidence {
        oom_kills: 1,
        ..ev(Exit::Code(0))
    });
    assert_eq!(
        (v.reason, v.exit_code, v.cause),
        (Reason::OomKilled, 0, Cause::CgroupOomKillOfOtherProcess)
    );
    assert!(!v.survived(1));
}

#[test]
fn expectations() {
    let v = classify(&Evidence {
        oom_kills: 1,
        main_was_victim: true,
        ..ev(Exit::Signal(9))
    });
    let mut e = Expect {
        reason: Some(Reason::OomKilled),
        exit_code: Some(137),
        within_s: Some(5.0),
    };
    assert!(unmet(&e, &v).is_empty());
    e.within_s = Some(1.0);
    e.reason = Some(Reason::Completed);
    assert_eq!(unmet(&e, &v).len(), 2);
}

#[test]
fn ctrl_c_is_oomsim_stopping_the_pod_not_an_external_kill() {
    let v = classify(&Evidence {
        interrupted: Some("SIGINT"),
        ..ev(Exit::Signal(9))
    });
    assert_eq!((v.reason, v.cause), (Reason::Error, Cause::Interrupted));
    assert!(
        v.message.contains("oomsim stopped it on SIGINT"),
        "{}",
        v.message
    );
    assert!(!v.survived(0));
    // An OOM kill that came first is still an OOM kill.
    let v = classify(&Evidence {
        interrupted: Some("SIGINT"),
        oom_kills: 1,
        main_was_victim: true,
        ..ev(Exit::Signal(9))
    });
    assert_eq!(v.cause, Cause::CgroupOomKill);
}

#[test]
fn survival_is_completion_or_timeout_without_oom_kill() {
    let done = classify(&ev(Exit::Code(0)));
    assert!(done.survived(0));
    assert!(!done.survived(1), "a worker OOM-killed is not survival");
    let timeout = classify(&Evidence {
        timed_out: true,
        ..ev(Exit::Signal(9))
    });
    assert!(
        timeout.survived(0),
        "a server still running at its timeout survived"
    );
    assert!(!classify(&ev(Exit::Code(1))).survived(0));
}

#[test]
fn timeout_and_start_failure() {
    let v = classify(&Evidence {
        timed_out: true,
        ..ev(Exit::Signal(9))
    });
    assert_eq!((v.reason, v.cause), (Reason::Error, Cause::Timeout));
    let v = classify(&Evidence {
        start_error: Some("no such file".into()),
        ..Evidence::default()
    });
    assert_eq!(
        (v.reason, v.cause),
        (Reason::StartError, Cause::StartFailed)
    );
}
