//! The search against a fake pod whose fate is known at every limit.

use std::cell::RefCell;
use std::time::Duration;

use super::*;
use crate::k8s::Reason;
use crate::plan::{Phase, Steady};
use crate::runtime::Runtime;
use crate::runtime::oom::RuntimeOom;
use crate::verdict::Cause;

const MI: u64 = 1 << 20;

/// A pod that survives at `needs` or above.
struct Fake {
    needs: u64,
    runs: RefCell<Vec<u64>>,
    /// A heap flag that ends every trial at or above `needs` by itself.
    capped: Option<RuntimeOom>,
    /// What a survivor's memory.stat says it could not do without (None:
    /// not read; the search then goes by the peak).
    measured: Option<u64>,
}

impl TrialRunner for Fake {
    fn run(&self, limits: &[u64], _first: usize) -> Result<Vec<Outcome>, RunError> {
        self.runs.borrow_mut().extend(limits);
        Ok(limits
            .iter()
            .map(|&l| {
                let ok = l >= self.needs && self.capped.is_none();
                let (reason, exit_code, cause) = match (ok, &self.capped) {
                    (true, _) => (Reason::Completed, 0, Cause::Completed),
                    (false, Some(_)) if l >= self.needs => (Reason::Error, 1, Cause::RuntimeOom),
                    (false, _) => (Reason::OomKilled, 137, Cause::CgroupOomKill),
                };
                Outcome {
                    trial: Trial {
                        limit_bytes: l,
                        survived: ok,
                        reason,
                        exit_code,
                        cause,
                        peak_bytes: self.needs.min(l),
                        unreclaimable_bytes: self.measured.filter(|_| ok),
                        at_s: 0.1,
                        wall_s: 0.1,
                        report: String::new(),
                        runtime_oom: self.capped.clone().filter(|_| l >= self.needs),
                    },
                    samples: vec![],
                }
            })
            .collect())
    }

    fn stopped(&self) -> bool {
        false
    }
}

fn plan(limit: u64) -> Plan {
    Plan::single_pod(
        "app",
        Some(limit),
        None,
        Duration::from_secs(1),
        vec![Phase::Steady(Steady {
            size_bytes: 1,
            duration_s: 0.1,
        })],
    )
}

fn spec() -> SearchSpec {
    SearchSpec {
        pod: "app".into(),
        range: None,
        precision_bytes: None,
        repeat: 3,
        strategies: vec![],
    }
}

#[test]
fn finds_the_boundary_within_precision_and_never_above_a_survivor() {
    let fake = Fake {
        needs: 200 * MI + 123,
        runs: RefCell::default(),
        capped: None,
        measured: None,
    };
    let bounds = Bounds {
        range: (16 * MI, 1024 * MI),
        precision_bytes: None,
        repeat: 3,
        parallel: 2,
    };
    let r = search(&plan(512 * MI), &spec(), bounds, &fake, &Progress::Quiet).unwrap();
    let m = r.min_safe_limit_bytes.unwrap();
    assert!(m >= fake.needs && m - fake.needs <= MIN_PRECISION, "{m}");
    let smallest_survivor = r
        .trials
        .iter()
        .filter(|t| t.survived)
        .map(|t| t.limit_bytes)
        .min();
    assert_eq!(
        smallest_survivor,
        Some(m),
        "the answer is the smallest survivor"
    );
    assert_eq!(
        r.per_limit
            .iter()
            .find(|s| s.limit_bytes == m)
            .unwrap()
            .trials,
        3
    );
}

#[test]
fn small_limits_get_a_range_that_is_not_inverted() {
    // A 2Mi pod: 4 x its limit is below the usual 16Mi floor.
    let pod = &plan(2 * MI).pods[0];
    let (lo, hi) = default_range(pod, 8 << 30).unwrap();
    assert!(lo < hi, "{lo}..{hi}");
    assert_eq!((lo, hi), (2 * MI, 8 * MI));
    // Ends are whole MiB, so they print as quantities, not raw bytes.
    let odd = &plan(10_871_432_909).pods[0];
    let (lo, hi) = default_range(odd, 100 << 30).unwrap();
    assert_eq!((lo % MI, hi % MI), (0, 0));
    assert!(
        !crate::units::fmt_quantity(hi)
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    // A limit too small for any range is one clear error, not a panic.
    let tiny = &plan(MI / 4).pods[0];
    let e = default_range(tiny, 8 << 30).unwrap_err().to_string();
    assert!(e.contains("is empty"), "{e}");
    // And the search over a small range answers at or below what survived.
    let fake = Fake {
        needs: 3 * MI,
        runs: RefCell::default(),
        capped: None,
        measured: None,
    };
    let bounds = Bounds {
        range: (lo.min(MI), 8 * MI),
        precision_bytes: Some(MI),
        repeat: 1,
        parallel: 1,
    };
    let r = search(&plan(2 * MI), &spec(), bounds, &fake, &Progress::Quiet).unwrap();
    assert_eq!(r.min_safe_limit_bytes, Some(3 * MI));
}

#[test]
fn remaining_estimate_shrinks_with_the_bracket() {
    let b = Bounds {
        range: (16 * MI, 1024 * MI),
        precision_bytes: Some(4 * MI),
        repeat: 3,
        parallel: 2,
    };
    let wide = b.remaining(16 * MI, 1024 * MI, 3);
    let narrow = b.remaining(200 * MI, 210 * MI, 3);
    assert!(wide > narrow && narrow >= 3, "{wide} {narrow}");
    assert_eq!(
        b.remaining(200 * MI, 202 * MI, 3),
        3,
        "only the repeats left"
    );
}

#[test]
fn a_heap_cap_at_every_limit_is_no_limit_helps() {
    let heap = RuntimeOom {
        runtime: Runtime::Java,
        kind: "Java heap space".into(),
        line: "java.lang.OutOfMemoryError: Java heap space".into(),
    };
    let bounds = Bounds {
        range: (64 * MI, 512 * MI),
        precision_bytes: None,
        repeat: 1,
        parallel: 1,
    };
    let capped = Fake {
        needs: 100 * MI,
        runs: RefCell::default(),
        capped: Some(heap.clone()),
        measured: None,
    };
    let r = search(&plan(512 * MI), &spec(), bounds, &capped, &Progress::Quiet).unwrap();
    assert_eq!(r.min_safe_limit_bytes, None);
    assert_eq!(r.no_limit_helps, Some(heap));
    // Killed by the cgroup at every limit: no answer in range, but a limit would help.
    let short = Fake {
        needs: 1024 * MI,
        runs: RefCell::default(),
        capped: None,
        measured: None,
    };
    let r = search(&plan(512 * MI), &spec(), bounds, &short, &Progress::Quiet).unwrap();
    assert_eq!((r.min_safe_limit_bytes, r.no_limit_helps), (None, None));
}

/// ceil(log2(range / precision)) + repeats: what plain bisection needs.
fn bisection_bound(range: (u64, u64), precision: u64, repeat: u32) -> usize {
    (((range.1 - range.0) as f64 / precision as f64)
        .log2()
        .ceil() as usize)
        + repeat as usize
}

#[test]
fn a_measured_peak_closes_the_bracket_in_a_few_trials() {
    let range = (64 * MI, 2048 * MI);
    for needs in [100 * MI + 123, 700 * MI, 1024 * MI + 4321, 1900 * MI] {
        for parallel in [1, 2] {
            let fake = Fake {
                needs,
                runs: RefCell::default(),
                capped: None,
                measured: None,
            };
            let bounds = Bounds {
                range,
                precision_bytes: None,
                repeat: 3,
                parallel,
            };
            let r = search(&plan(512 * MI), &spec(), bounds, &fake, &Progress::Quiet).unwrap();
            let m = r.min_safe_limit_bytes.unwrap();
            assert!(m >= needs && m - needs <= r.precision_bytes, "{needs}: {m}");
            let bound = bisection_bound(range, r.precision_bytes, 3);
            assert!(
                r.trials_count <= bound,
                "{needs} x{parallel}: {} trials, bisection needs {bound}: {:?}",
                r.trials_count,
                fake.runs.borrow()
            );
            if parallel == 1 {
                // The top, just above the need, just below that, two repeats.
                assert_eq!(r.trials_count, 5, "{:?}", fake.runs.borrow());
            }
        }
    }
}

#[test]
fn a_misleading_measure_costs_trials_never_the_answer() {
    let range = (64 * MI, 2048 * MI);
    for measured in [Some(10 * MI), Some(300 * MI), Some(1500 * MI)] {
        let fake = Fake {
            needs: 1000 * MI,
            runs: RefCell::default(),
            capped: None,
            measured,
        };
        let bounds = Bounds {
            range,
            precision_bytes: None,
            repeat: 2,
            parallel: 1,
        };
        let r = search(&plan(512 * MI), &spec(), bounds, &fake, &Progress::Quiet).unwrap();
        let m = r.min_safe_limit_bytes.unwrap();
        assert!(m >= 1000 * MI && m - 1000 * MI <= r.precision_bytes, "{m}");
        let bound = 2 * bisection_bound(range, r.precision_bytes, 2);
        assert!(
            r.trials_count <= bound,
            "{measured:?}: {} trials",
            r.trials_count
        );
    }
}
