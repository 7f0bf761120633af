//! QoS classes, derived from requests and limits as the API server does
//! (pkg/apis/core/helper/qos: every container's CPU and memory limits equal
//! to its requests is Guaranteed; none set anywhere is BestEffort).

use serde::{Deserialize, Serialize};

/// Kubernetes QoS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl std::fmt::Display for Qos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Qos::Guaranteed => "Guaranteed",
            Qos::Burstable => "Burstable",
            Qos::BestEffort => "BestEffort",
        })
    }
}

/// QoS for a one-container pod, by the API server's rules: Guaranteed needs CPU
/// and memory limits equal to their requests; BestEffort has neither.
pub fn qos_class(
    mem_request: Option<u64>,
    mem_limit: Option<u64>,
    cpu_request: Option<u64>,
    cpu_limit: Option<u64>,
) -> Qos {
    let any = [mem_request, mem_limit, cpu_request, cpu_limit]
        .iter()
        .any(|v| v.is_some_and(|v| v > 0));
    if !any {
        return Qos::BestEffort;
    }
    let equal = |req: Option<u64>, lim: Option<u64>| lim.is_some() && req == lim;
    if equal(mem_request, mem_limit) && equal(cpu_request, cpu_limit) {
        Qos::Guaranteed
    } else {
        Qos::Burstable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(None, None, None, None), Qos::BestEffort);
        assert_eq!(
            qos_class(Some(1), Some(1), Some(100), Some(100)),
            Qos::Guaranteed
        );
        assert_eq!(
            qos_class(Some(1), Some(2), Some(100), Some(100)),
            Qos::Burstable
        );
        assert_eq!(qos_class(Some(1), None, None, None), Qos::Burstable);
    }
}
