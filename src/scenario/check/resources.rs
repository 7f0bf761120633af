//! Requests and limits as the API server takes them: a container's request
//! defaulted to its limit, pod-level resources defaulted from the
//! containers', and a request above its limit refused.

use serde_saphyr::Location;

use super::Checker;
use crate::k8s::{self, Resource, Resources};
use crate::plan::PodPlan;
use crate::scenario::ScenarioError;
use crate::scenario::raw::{RawResourceList, RawResources};
use crate::units;

impl Checker<'_> {
    /// Requests and limits as written (a zero limit refused).
    fn raw_resources(&self, r: &RawResources, at: &str) -> Result<Resources, ScenarioError> {
        let empty = RawResourceList {
            memory: None,
            cpu: None,
        };
        let requests = r.requests.as_ref().unwrap_or(&empty);
        let limits = r.limits.as_ref().unwrap_or(&empty);
        let lim_field = format!("{at}.limits.memory");
        let mem_limit = self.bytes(&limits.memory, &lim_field)?;
        let mem_request = self.bytes(&requests.memory, &format!("{at}.requests.memory"))?;
        let cpu = |list: &RawResourceList, which: &str| {
            list.cpu
                .as_ref()
                .map(|t| {
                    self.unit(t, &format!("{at}.{which}.cpu"), |s| {
                        units::parse_quantity_scaled(s, 3)
                    })
                })
                .transpose()
        };
        if let (Some(0), Some(t)) = (mem_limit, &limits.memory) {
            return Err(self.err(
                &t.referenced,
                &lim_field,
                "a limit of zero bytes cannot run anything; leave it out for no limit",
            ));
        }
        Ok(Resources {
            memory: Resource {
                request: mem_request,
                limit: mem_limit,
            },
            cpu: Resource {
                request: cpu(requests, "requests")?,
                limit: cpu(limits, "limits")?,
            },
        })
    }

    /// A request above its limit, refused as the API server refuses it.
    fn request_within_limit(
        &self,
        got: &Resources,
        r: &RawResources,
        at: &str,
    ) -> Result<(), ScenarioError> {
        let written = r.requests.as_ref().and_then(|l| l.memory.as_ref());
        match (got.memory.request, got.memory.limit, written) {
            (Some(req), Some(lim), Some(t)) if req > lim => Err(self.err(
                &t.referenced,
                &format!("{at}.requests.memory"),
                format!(
                    "request {} must be less than or equal to the memory limit {}",
                    t.value,
                    units::fmt_quantity(lim)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// A container's requests and limits as the API server takes them: a
    /// missing request defaulted to the limit, a request above it refused.
    pub(super) fn resources(&self, r: &RawResources, at: &str) -> Result<Resources, ScenarioError> {
        let mut got = self.raw_resources(r, at)?;
        got.memory.request = got.memory.request.or(got.memory.limit);
        got.cpu.request = got.cpu.request.or(got.cpu.limit);
        self.request_within_limit(&got, r, at)?;
        Ok(got)
    }

    /// Pod-level `spec.resources` as the API server defaults and checks
    /// them against the containers (defaultPodRequests / defaultPodLimits).
    pub(super) fn pod_level(
        &self,
        r: &RawResources,
        plan: &PodPlan,
        at: &str,
        fallback: Location,
    ) -> Result<Option<Resources>, ScenarioError> {
        let field = format!("{at}.resources");
        let given = self.raw_resources(r, &field)?;
        if given == Resources::default() {
            return Ok(None);
        }
        let got = k8s::default_pod_level(&plan.k8s_pod(), given, &field).map_err(|e| {
            let line = |l: &Option<RawResourceList>| {
                l.as_ref()
                    .and_then(|l| l.memory.as_ref().or(l.cpu.as_ref()))
                    .map_or(fallback, |t| t.referenced)
            };
            let (line, part, message) = match e {
                k8s::ManifestError::PodRequestBelowContainers { pod, containers, .. } => (
                    line(&r.requests),
                    "requests",
                    format!(
                        "the pod-level request ({}) is below its containers' ({}); the API server refuses it",
                        units::fmt_quantity(pod),
                        units::fmt_quantity(containers)
                    ),
                ),
                k8s::ManifestError::ContainerLimitAbovePod {
                    container,
                    limit,
                    pod,
                    ..
                } => (
                    line(&r.limits),
                    "limits",
                    format!(
                        "the pod-level limit ({pod}) is below container {container}'s ({limit}); the API server refuses it"
                    ),
                ),
                other => (line(&r.requests), "requests", other.to_string()),
            };
            self.err(&line, &format!("{field}.{part}"), message)
        })?;
        self.request_within_limit(&got, r, &field)?;
        Ok(Some(got))
    }
}
