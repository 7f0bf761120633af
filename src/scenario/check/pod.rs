//! One pod: its name, resources (QoS as the API server derives it), page
//! size, workload or phases, timeout and expectation.

use serde_saphyr::Location;

use super::Checker;
use crate::k8s::{Qos, Reason};
use crate::plan::{DEFAULT_POD_TIMEOUT, Expect, Pages, PodPlan, WorkloadSpec};
use crate::scenario::ScenarioError;
use crate::scenario::raw::{RawExpect, RawPod, RawResourceList};
use crate::units;

impl Checker<'_> {
    pub(super) fn pod(&self, pod: &RawPod, at: &str) -> Result<PodPlan, ScenarioError> {
        let name = self.name(&pod.name, &format!("{at}.name"))?;
        let empty = RawResourceList {
            memory: None,
            cpu: None,
        };
        let (requests, limits) = match &pod.resources {
            Some(r) => (
                r.requests.as_ref().unwrap_or(&empty),
                r.limits.as_ref().unwrap_or(&empty),
            ),
            None => (&empty, &empty),
        };
        let req_field = format!("{at}.resources.requests.memory");
        let lim_field = format!("{at}.resources.limits.memory");
        let mem_limit = self.bytes(&limits.memory, &lim_field)?;
        let mem_request = self.bytes(&requests.memory, &req_field)?;
        let cpu = |list: &RawResourceList, which: &str| {
            list.cpu
                .as_ref()
                .map(|t| {
                    self.unit(t, &format!("{at}.resources.{which}.cpu"), |s| {
                        units::parse_quantity_scaled(s, 3)
                    })
                })
                .transpose()
        };
        let cpu_limit = cpu(limits, "limits")?;
        let cpu_request = cpu(requests, "requests")?.or(cpu_limit);
        if let (Some(0), Some(t)) = (mem_limit, &limits.memory) {
            return Err(self.err(
                &t.referenced,
                &lim_field,
                "a limit of zero bytes cannot run anything; leave it out for no limit",
            ));
        }
        // The API server defaults a missing request to the limit.
        let mem_request = mem_request.or(mem_limit);
        if let (Some(r), Some(l), Some(t)) = (mem_request, mem_limit, &requests.memory)
            && r > l
        {
            return Err(self.err(
                &t.referenced,
                &req_field,
                format!(
                    "request {} must be less than or equal to the memory limit {}",
                    t.value,
                    units::fmt_quantity(l)
                ),
            ));
        }
        let pages = match pod.pages.as_ref() {
            None => Pages::Small,
            Some(t) if t.value == "4k" => Pages::Small,
            Some(t) if t.value == "huge" => Pages::Huge,
            Some(t) => {
                return Err(self.err(
                    &t.referenced,
                    &format!("{at}.pages"),
                    format!("{:?} is not a page size (4k or huge)", t.value),
                ));
            }
        };
        let phases = match (&pod.workload, &pod.phases) {
            (Some(w), None) => vec![self.phase(w, &format!("{at}.workload"))?],
            (None, Some(list)) if !list.value.is_empty() => list
                .value
                .iter()
                .enumerate()
                .map(|(i, w)| self.phase(w, &format!("{at}.phases[{i}]")))
                .collect::<Result<_, _>>()?,
            (None, Some(list)) => {
                return Err(self.err(&list.referenced, &format!("{at}.phases"), "no phases"));
            }
            (Some(_), Some(list)) => {
                return Err(self.err(
                    &list.referenced,
                    &format!("{at}.phases"),
                    "give either workload or phases, not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    &pod.name.referenced,
                    &format!("{at}.workload"),
                    "the pod has no workload (give workload or phases)",
                ));
            }
        };
        let timeout_s = self
            .seconds(&pod.timeout, &format!("{at}.timeout"))?
            .unwrap_or(DEFAULT_POD_TIMEOUT.as_secs_f64());
        if timeout_s <= 0.0 {
            let t = pod
                .timeout
                .as_ref()
                .map_or(Location::UNKNOWN, |t| t.referenced);
            return Err(self.err(&t, &format!("{at}.timeout"), "must be more than zero"));
        }
        let container = match &pod.container {
            Some(c) => self.name(c, &format!("{at}.container"))?,
            None => name.clone(),
        };
        let mut plan = PodPlan {
            // Set from the pod as the kubelet sees it, below.
            qos: Qos::BestEffort,
            name,
            container,
            priority: pod.priority.unwrap_or(0),
            request_bytes: mem_request,
            limit_bytes: mem_limit,
            cpu: crate::k8s::Resource {
                request: cpu_request,
                limit: cpu_limit,
            },
            swap: pod.swap.unwrap_or(false),
            timeout_s,
            workload: WorkloadSpec { pages, phases },
            expect: pod
                .expect
                .as_ref()
                .map(|e| self.expect(e, &format!("{at}.expect")))
                .transpose()?,
            limit_field: lim_field,
        };
        plan.qos = plan.k8s_pod().qos();
        Ok(plan)
    }

    pub(super) fn expect(&self, e: &RawExpect, at: &str) -> Result<Expect, ScenarioError> {
        let reason = e
            .reason
            .as_ref()
            .map(|r| {
                Reason::parse(&r.value).ok_or_else(|| {
                    self.err(
                        &r.referenced,
                        &format!("{at}.reason"),
                        format!("{:?} is not a reason (one of {})", r.value, Reason::names()),
                    )
                })
            })
            .transpose()?;
        Ok(Expect {
            reason,
            exit_code: e.exit_code,
            within_s: self.seconds(&e.within, &format!("{at}.within"))?,
        })
    }
}
