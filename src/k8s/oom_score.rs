//! The kubelet's `oom_score_adj` per container, followed from
//! pkg/kubelet/qos/policy.go `GetContainerOOMScoreAdjust` (master, with
//! PodLevelResources on as it is by default; DRA memory claims and the
//! alpha `KubeletOOMScoreAdjTieBreak` are not modelled).
//!
//! - Node-critical pods and Guaranteed pods: -997; BestEffort: 1000.
//! - Burstable: `1000 - 1000 x request / capacity` in integer arithmetic,
//!   the request being the container's own plus, with a pod-level memory
//!   request, an equal share of what the containers leave unrequested.
//! - A sidecar is never more killable than the regular container with the
//!   smallest request.
//! - Then clamped once: below 3 becomes 3, exactly 1000 becomes 999.

use super::Qos;
use super::pod::{Container, ContainerKind, Pod};

pub const GUARANTEED_OOM_SCORE_ADJ: i32 = -997;
pub const BESTEFFORT_OOM_SCORE_ADJ: i32 = 1000;

/// `oom_score_adj` of `container` in `pod` on a node of `capacity` bytes.
pub fn oom_score_adj(pod: &Pod, container: &Container, capacity: u64) -> i32 {
    if pod.is_node_critical() {
        return GUARANTEED_OOM_SCORE_ADJ;
    }
    match pod.qos() {
        Qos::Guaranteed => return GUARANTEED_OOM_SCORE_ADJ,
        Qos::BestEffort => return BESTEFFORT_OOM_SCORE_ADJ,
        Qos::Burstable => {}
    }
    // i128: Go's int64 would overflow for requests above 8 PiB, which the
    // API server accepts.
    let cap = i128::from(capacity.max(1));
    let linear = |request: i128| 1000 - (1000 * request) / cap;
    let request = |c: &Container| i128::from(c.resources.memory.request.unwrap_or(0));
    let share = pod_level_share(pod);
    let mut adj = linear(request(container) + share);
    if container.kind == ContainerKind::Sidecar {
        let smallest = pod.regular().map(request).min().unwrap_or(0);
        adj = adj.min(linear(smallest + share));
    }
    if adj < i128::from(1000 + GUARANTEED_OOM_SCORE_ADJ) {
        1000 + GUARANTEED_OOM_SCORE_ADJ
    } else if adj == i128::from(BESTEFFORT_OOM_SCORE_ADJ) {
        BESTEFFORT_OOM_SCORE_ADJ - 1
    } else {
        adj as i32
    }
}

/// `remainingPodMemReqPerContainer`: the pod-level memory request less what
/// the containers request (sidecar-aware), split over every container, init
/// ones included; Go's truncating division.
fn pod_level_share(pod: &Pod) -> i128 {
    let Some(pod_request) = pod
        .resources
        .and_then(|r| r.memory.request)
        .filter(|&r| r > 0)
    else {
        return 0;
    };
    let containers = pod.containers.len().max(1) as i128;
    (i128::from(pod_request) - i128::from(pod.containers_memory_request())) / containers
}

#[cfg(test)]
mod tests {
    //! pkg/kubelet/qos/policy_test.go `TestGetContainerOOMScoreAdjust`,
    //! cases 1-23 (the plain, critical, sidecar and pod-level ones; the DRA
    //! cases need resource claims oomsim does not model).

    use super::*;
    use crate::k8s::pod::{Resource, Resources};

    /// (memory request, memory limit, cpu request, cpu limit), as the test
    /// writes them: no API defaulting.
    type R = (Option<u64>, Option<u64>, Option<u64>, Option<u64>);
    const NONE: R = (None, None, None, None);

    fn res(r: R) -> Resources {
        Resources {
            memory: Resource {
                request: r.0,
                limit: r.1,
            },
            cpu: Resource {
                request: r.2,
                limit: r.3,
            },
        }
    }

    struct Case {
        name: &'static str,
        capacity: u64,
        init: &'static [(&'static str, bool, R)],
        containers: &'static [(&'static str, R)],
        pod: Option<R>,
        class: Option<(&'static str, i32)>,
        /// (container, low, high)
        expect: &'static [(&'static str, i32, i32)],
    }

    const DEFAULT_REQ: u64 = 1_000_000_000;
    const DEFAULT_LIM: u64 = 1_000_001_000;
    const SAMPLE: R = (Some(DEFAULT_REQ), Some(DEFAULT_LIM), None, None);
    const PLR_GUARANTEED: R = (Some(2_000_000_000), Some(2_000_000_000), Some(5), Some(5));
    const PLR_BURSTABLE: R = (Some(2_000_000_000), Some(2_000_001_000), Some(5), Some(5));

    /// What a case leaves out: no init containers, pod-level resources or class.
    const BASE: Case = Case {
        name: "",
        capacity: 0,
        init: &[],
        containers: &[],
        pod: None,
        class: None,
        expect: &[],
    };

    const CASES: &[Case] = &[
        Case {
            name: "cpu-limit",
            capacity: 4_000_000_000,
            containers: &[("cpu-limit", (None, None, None, Some(10_000)))],
            expect: &[("cpu-limit", 999, 999)],
            ..BASE
        },
        Case {
            name: "memory-limit-cpu-request",
            capacity: 8_000_000_000,
            containers: &[("c", (None, Some(10_000_000_000), Some(0), None))],
            expect: &[("c", 999, 999)],
            ..BASE
        },
        Case {
            name: "zero-memory-limit",
            capacity: 7_230_457_451,
            containers: &[("c", (None, Some(0), None, None))],
            expect: &[("c", 1000, 1000)],
            ..BASE
        },
        Case {
            name: "no-request-limit",
            capacity: 4_000_000_000,
            containers: &[("c", NONE)],
            expect: &[("c", 1000, 1000)],
            ..BASE
        },
        Case {
            name: "equal-request-limit-cpu-memory",
            capacity: 123_456_789,
            containers: &[(
                "c",
                (Some(10_000_000_000), Some(10_000_000_000), Some(5), Some(5)),
            )],
            expect: &[("c", -997, -997)],
            ..BASE
        },
        Case {
            name: "cpu-unlimited-memory-limited-with-requests",
            capacity: 8_000_000_000,
            containers: &[(
                "c",
                (Some(4_000_000_000), Some(10_000_000_000), Some(5), None),
            )],
            expect: &[("c", 495, 505)],
            ..BASE
        },
        Case {
            name: "request-no-limit",
            capacity: 8_000_000_000,
            containers: &[("c", (Some(7_999_999_999), None, Some(5), None))],
            expect: &[("c", 3, 3)],
            ..BASE
        },
        Case {
            name: "cluster-critical",
            capacity: 4_000_000_000,
            containers: &[("c", NONE)],
            class: Some(("system-cluster-critical", 2_000_000_000)),
            expect: &[("c", 1000, 1000)],
            ..BASE
        },
        Case {
            name: "node-critical",
            capacity: 4_000_000_000,
            containers: &[("c", NONE)],
            class: Some(("system-node-critical", 2_000_001_000)),
            expect: &[("c", -997, -997)],
            ..BASE
        },
        Case {
            name: "burstable-unique-container-pod",
            capacity: 8_000_000_000,
            containers: &[("c", SAMPLE)],
            expect: &[("c", 875, 880)],
            ..BASE
        },
        Case {
            name: "burstable-mixed-unique-main-container-pod",
            capacity: 8_000_000_000,
            init: &[("init-container", false, SAMPLE)],
            containers: &[("main-1", SAMPLE)],
            expect: &[("init-container", 875, 880), ("main-1", 875, 880)],
            ..BASE
        },
        Case {
            name: "burstable-mixed-multi-container-small-sidecar-pod",
            capacity: 8_000_000_000,
            init: &[
                ("init-container", false, SAMPLE),
                (
                    "sidecar-small-container",
                    true,
                    (Some(400_000_000), Some(DEFAULT_LIM), None, None),
                ),
            ],
            containers: &[("main-1", SAMPLE)],
            expect: &[
                ("init-container", 875, 880),
                ("sidecar-small-container", 875, 875),
                ("main-1", 875, 875),
            ],
            ..BASE
        },
        Case {
            name: "burstable-mixed-multi-container-sample-request-pod",
            capacity: 8_000_000_000,
            init: &[
                ("init-container", false, SAMPLE),
                ("sidecar-container", true, SAMPLE),
            ],
            containers: &[("main-1", SAMPLE)],
            expect: &[
                ("init-container", 875, 880),
                ("sidecar-container", 875, 875),
                ("main-1", 875, 875),
            ],
            ..BASE
        },
        Case {
            name: "burstable-mixed-multi-container-big-sidecar-container-pod",
            capacity: 8_000_000_000,
            init: &[
                ("init-container", false, SAMPLE),
                (
                    "sidecar-big-container",
                    true,
                    (Some(4_000_000_000), Some(DEFAULT_LIM), None, None),
                ),
            ],
            containers: &[("main-1", SAMPLE)],
            expect: &[
                ("init-container", 875, 880),
                ("sidecar-big-container", 500, 500),
                ("main-1", 875, 875),
            ],
            ..BASE
        },
        Case {
            name: "guaranteed-pod-resources-no-container-resources",
            capacity: 4_000_000_000,
            containers: &[("no-request-limit-1", NONE), ("no-request-limit-2", NONE)],
            pod: Some(PLR_GUARANTEED),
            expect: &[
                ("no-request-limit-1", -997, -997),
                ("no-request-limit-2", -997, -997),
            ],
            ..BASE
        },
        Case {
            name: "guaranteed-pod-resources-equal-container-resources",
            capacity: 4_000_000_000,
            containers: &[
                (
                    "guaranteed-container-1",
                    (Some(DEFAULT_REQ), Some(DEFAULT_REQ), Some(5), Some(5)),
                ),
                (
                    "guaranteed-container-2",
                    (Some(DEFAULT_REQ), Some(DEFAULT_REQ), Some(5), Some(5)),
                ),
            ],
            pod: Some(PLR_GUARANTEED),
            expect: &[
                ("guaranteed-container-1", -997, -997),
                ("guaranteed-container-2", -997, -997),
            ],
            ..BASE
        },
        Case {
            name: "guaranteed-pod-resources-unequal-container-requests",
            capacity: 4_000_000_000,
            containers: &[
                (
                    "burstable-container",
                    (Some(DEFAULT_REQ), Some(DEFAULT_LIM), Some(3), Some(5)),
                ),
                ("best-effort-container", NONE),
            ],
            pod: Some(PLR_GUARANTEED),
            expect: &[
                ("burstable-container", -997, -997),
                ("best-effort-container", -997, -997),
            ],
            ..BASE
        },
        Case {
            name: "burstable-pod-resources-no-container-resources",
            capacity: 4_000_000_000,
            containers: &[("no-request-limit-1", NONE), ("no-request-limit-2", NONE)],
            pod: Some(PLR_BURSTABLE),
            expect: &[
                ("no-request-limit-1", 750, 750),
                ("no-request-limit-2", 750, 750),
            ],
            ..BASE
        },
        Case {
            name: "burstable-pod-resources-equal-container-requests",
            capacity: 4_000_000_000,
            containers: &[
                (
                    "guaranteed-container-1",
                    (Some(DEFAULT_REQ), Some(DEFAULT_REQ), Some(5), Some(5)),
                ),
                (
                    "guaranteed-container-2",
                    (Some(DEFAULT_REQ), Some(DEFAULT_REQ), Some(5), Some(5)),
                ),
            ],
            pod: Some(PLR_BURSTABLE),
            expect: &[
                ("guaranteed-container-1", 750, 750),
                ("guaranteed-container-2", 750, 750),
            ],
            ..BASE
        },
        Case {
            name: "burstable-pod-resources-unequal-container-requests",
            capacity: 4_000_000_000,
            containers: &[
                (
                    "burstable-container",
                    (Some(DEFAULT_REQ), Some(DEFAULT_REQ), Some(3), Some(5)),
                ),
                ("best-effort-container", NONE),
            ],
            pod: Some(PLR_BURSTABLE),
            expect: &[
                ("burstable-container", 625, 625),
                ("best-effort-container", 875, 875),
            ],
            ..BASE
        },
        Case {
            name: "burstable-pod-resources-no-container-resources-with-sidecar",
            capacity: 4_000_000_000,
            init: &[("no-request-limit-sidecar", true, NONE)],
            containers: &[("no-request-limit", NONE)],
            pod: Some(PLR_BURSTABLE),
            expect: &[
                ("no-request-limit", 750, 750),
                ("no-request-limit-sidecar", 750, 750),
            ],
            ..BASE
        },
        Case {
            name: "burstable-pod-resources-equal-container-requests-with-sidecar",
            capacity: 4_000_000_000,
            init: &[(
                "burstable-sidecar",
                true,
                (Some(DEFAULT_REQ), Some(DEFAULT_LIM), Some(5), Some(5)),
            )],
            containers: &[(
                "burstable-container",
                (Some(DEFAULT_REQ), Some(DEFAULT_LIM), Some(5), Some(5)),
            )],
            pod: Some(PLR_BURSTABLE),
            expect: &[
                ("burstable-container", 750, 750),
                ("burstable-sidecar", 750, 750),
            ],
            ..BASE
        },
        Case {
            name: "burstable-pod-resources-unequal-container-requests-with-sidecar",
            capacity: 4_000_000_000,
            init: &[(
                "burstable-sidecar",
                true,
                (Some(200_000_000), Some(2_000_001_000), Some(5), Some(5)),
            )],
            containers: &[
                (
                    "burstable-container-1",
                    (Some(DEFAULT_REQ), Some(2_000_001_000), Some(5), Some(5)),
                ),
                (
                    "burstable-container-2",
                    (Some(500_000_000), Some(2_000_001_000), Some(5), Some(5)),
                ),
            ],
            pod: Some(PLR_BURSTABLE),
            expect: &[
                ("burstable-container-1", 725, 725),
                ("burstable-container-2", 850, 850),
                ("burstable-sidecar", 850, 850),
            ],
            ..BASE
        },
    ];

    fn pod_of(case: &Case) -> Pod {
        let init = case.init.iter().map(|&(name, sidecar, r)| Container {
            name: name.into(),
            kind: if sidecar {
                ContainerKind::Sidecar
            } else {
                ContainerKind::Init
            },
            resources: res(r),
        });
        let regular = case.containers.iter().map(|&(name, r)| Container {
            name: name.into(),
            kind: ContainerKind::Regular,
            resources: res(r),
        });
        Pod {
            name: case.name.into(),
            priority: case.class.map_or(0, |c| c.1),
            priority_class_name: case.class.map(|c| c.0.into()),
            containers: init.chain(regular).collect(),
            resources: case.pod.map(res),
            restart_policy: Default::default(),
        }
    }

    #[test]
    fn agrees_with_the_kubelets_own_test_table() {
        let mut checked = 0;
        for case in CASES {
            let pod = pod_of(case);
            for &(name, low, high) in case.expect {
                let c = pod.containers.iter().find(|c| c.name == name).unwrap();
                let adj = oom_score_adj(&pod, c, case.capacity);
                assert!(
                    (low..=high).contains(&adj),
                    "{}: {name}: {adj} not in [{low}, {high}]",
                    case.name
                );
                checked += 1;
            }
        }
        assert_eq!((CASES.len(), checked), (23, 40));
    }

    #[test]
    fn node_critical_needs_the_class_and_a_critical_priority() {
        let mut pod = pod_of(&CASES[8]);
        assert_eq!(oom_score_adj(&pod, &pod.containers[0], 1 << 30), -997);
        // The class name alone, without the admitted priority, is not critical.
        pod.priority = 0;
        assert_eq!(oom_score_adj(&pod, &pod.containers[0], 1 << 30), 1000);
    }

    #[test]
    fn requests_above_8pi_do_not_overflow() {
        let pod = Pod::single("huge", "c", res((Some(9 << 50), None, None, None)), 0);
        assert_eq!(oom_score_adj(&pod, &pod.containers[0], 16 << 30), 3);
    }
}
