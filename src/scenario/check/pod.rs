//! One pod: its name, containers (the one-workload shorthand, a
//! `containers` / `initContainers` list, or a manifest's pod `from` a file),
//! resources (QoS as the API server derives it), restart policy, timeout
//! and expectations.

use serde_saphyr::Location;

use super::Checker;
use crate::k8s::{self, ContainerKind, Qos, Reason, Resources, RestartPolicy};
use crate::plan::{
    ContainerPlan, DEFAULT_POD_TIMEOUT, Expect, Pages, Phase, PodPlan, Restart, WorkloadSpec,
};
use crate::scenario::ScenarioError;
use crate::scenario::raw::{RawContainer, RawExpect, RawPod, RawResources, RawWorkload, Text};

/// The smallest back-off scale: 10 ms for the kubelet's first 10 s, so a
/// crash-looping container cannot spin.
const MIN_BACKOFF_SCALE: f64 = 0.001;

/// What a container entry gives: its workload, page size and expectation.
pub(super) struct Given<'r> {
    name: &'r Text,
    pages: &'r Option<Text>,
    image: &'r Option<Text>,
    workload: &'r Option<RawWorkload>,
    phases: &'r Option<serde_saphyr::Spanned<Vec<RawWorkload>>>,
    expect: &'r Option<RawExpect>,
}

impl<'r> Given<'r> {
    pub(super) fn of(c: &'r RawContainer) -> Self {
        Given {
            name: &c.name,
            pages: &c.pages,
            image: &c.image,
            workload: &c.workload,
            phases: &c.phases,
            expect: &c.expect,
        }
    }
}

impl Checker<'_> {
    pub(super) fn pod(&self, pod: &RawPod, at: &str) -> Result<PodPlan, ScenarioError> {
        let name = self.name(&pod.name, &format!("{at}.name"))?;
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
        let listed = pod.containers.is_some() || pod.init_containers.is_some();
        let mut plan = PodPlan {
            // Set from the pod as the kubelet sees it, below.
            qos: Qos::BestEffort,
            name,
            priority: pod.priority.unwrap_or(0),
            priority_class_name: pod.priority_class_name.as_ref().map(|t| t.value.clone()),
            resources: None,
            containers: Vec::new(),
            restart: Restart::default(),
            swap: pod.swap.unwrap_or(false),
            timeout_s,
            expect: None,
        };
        if let Some(from) = &pod.from {
            self.manifest_pod(pod, from, &mut plan, at)?;
        } else if listed {
            self.refuse_shorthand(pod, at)?;
            self.listed(pod, &mut plan, at)?;
            if let Some(r) = &pod.resources {
                plan.resources = self.pod_level(r, &plan, at, pod.name.referenced)?;
            }
        } else {
            let container = match &pod.container {
                Some(c) => self.name(c, &format!("{at}.container"))?,
                None => plan.name.clone(),
            };
            let given = Given {
                name: &pod.name,
                pages: &pod.pages,
                image: &pod.image,
                workload: &pod.workload,
                phases: &pod.phases,
                expect: &None,
            };
            let resources = match &pod.resources {
                Some(r) => self.resources(r, &format!("{at}.resources"))?,
                None => Resources::default(),
            };
            let mut c = self.container(&given, &pod.pages, container, at)?;
            c.resources = resources;
            c.limit_field = self.limit_field(pod.resources.as_ref(), at);
            plan.containers.push(c);
            plan.expect = pod
                .expect
                .as_ref()
                .map(|e| self.expect(e, &format!("{at}.expect")))
                .transpose()?;
        }
        plan.restart = self.restart(pod, plan.restart.policy, at)?;
        if plan.priority_class_name.is_some() && pod.priority.is_none() {
            plan.priority = plan
                .priority_class_name
                .as_deref()
                .and_then(k8s::builtin_class_priority)
                .unwrap_or(plan.priority);
        }
        plan.qos = plan.k8s_pod().qos();
        Ok(plan)
    }

    /// `containers` and `initContainers` written in the scenario.
    fn listed(&self, pod: &RawPod, plan: &mut PodPlan, at: &str) -> Result<(), ScenarioError> {
        let lists = [
            ("initContainers", &pod.init_containers, true),
            ("containers", &pod.containers, false),
        ];
        for (list, entries, init) in lists {
            for (i, raw) in entries.iter().flat_map(|l| &l.value).enumerate() {
                let at = format!("{at}.{list}[{i}]");
                let kind = self.kind(raw, init, &at)?;
                let name = self.name(&raw.name, &format!("{at}.name"))?;
                self.unique(plan, &raw.name, &name, &at)?;
                let mut c = self.container(&Given::of(raw), &pod.pages, name, &at)?;
                c.kind = kind;
                if let Some(r) = &raw.resources {
                    c.resources = self.resources(r, &format!("{at}.resources"))?;
                }
                c.limit_field = self.limit_field(raw.resources.as_ref(), &at);
                plan.containers.push(c);
            }
        }
        match &pod.containers {
            Some(list) if !list.value.is_empty() => Ok(()),
            Some(list) => Err(self.err(
                &list.referenced,
                &format!("{at}.containers"),
                "a pod needs at least one container",
            )),
            None => Err(self.err(
                &pod.name.referenced,
                &format!("{at}.containers"),
                "a pod needs at least one container (initContainers alone never finish starting it)",
            )),
        }
    }

    /// The one-container fields cannot stand beside a container list.
    pub(super) fn refuse_shorthand(&self, pod: &RawPod, at: &str) -> Result<(), ScenarioError> {
        let loc = |t: Option<Location>| t.unwrap_or(pod.name.referenced);
        let shorthand = [
            (pod.workload.is_some(), "workload", None),
            (
                pod.phases.is_some(),
                "phases",
                pod.phases.as_ref().map(|p| p.referenced),
            ),
            (pod.expect.is_some(), "expect", None),
            (
                pod.container.is_some() && pod.from.is_none(),
                "container",
                pod.container.as_ref().map(|c| c.referenced),
            ),
        ];
        match shorthand.into_iter().find(|(given, _, _)| *given) {
            Some((_, what, where_)) => Err(self.err(
                &loc(where_),
                &format!("{at}.{what}"),
                "a pod with containers gives each container its own workload and expect",
            )),
            None => Ok(()),
        }
    }

    fn unique(
        &self,
        plan: &PodPlan,
        text: &Text,
        name: &str,
        at: &str,
    ) -> Result<(), ScenarioError> {
        if plan.containers.iter().any(|c| c.name == name) {
            return Err(self.err(
                &text.referenced,
                &format!("{at}.name"),
                format!("container {name:?} is named twice in pod {}", plan.name),
            ));
        }
        Ok(())
    }

    /// An init container is a sidecar when its restartPolicy is Always; no
    /// other value is allowed, and regular containers take none.
    fn kind(
        &self,
        raw: &RawContainer,
        init: bool,
        at: &str,
    ) -> Result<ContainerKind, ScenarioError> {
        match (&raw.restart_policy, init) {
            (None, true) => Ok(ContainerKind::Init),
            (None, false) => Ok(ContainerKind::Regular),
            (Some(t), true) if t.value == "Always" => Ok(ContainerKind::Sidecar),
            (Some(t), true) => Err(self.err(
                &t.referenced,
                &format!("{at}.restartPolicy"),
                format!(
                    "{:?}: an init container may only say Always (which makes it a sidecar)",
                    t.value
                ),
            )),
            (Some(t), false) => Err(self.err(
                &t.referenced,
                &format!("{at}.restartPolicy"),
                "a regular container follows the pod's restartPolicy; only init containers take one (Always: a sidecar)",
            )),
        }
    }

    /// A container's workload or phases, page size and expectation; its
    /// resources are set by the caller.
    /// Where a container's memory limit was written, for a host that
    /// cannot give it: `file:line: pods[0].resources.limits.memory`.
    fn limit_field(&self, r: Option<&RawResources>, at: &str) -> String {
        let field = format!("{at}.resources.limits.memory");
        match r
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.memory.as_ref())
        {
            Some(t) => format!("{}:{}: {field}", self.path, t.referenced.line()),
            None => field,
        }
    }

    pub(super) fn container(
        &self,
        c: &Given<'_>,
        pod_pages: &Option<Text>,
        name: String,
        at: &str,
    ) -> Result<ContainerPlan, ScenarioError> {
        let pages = match c.pages.as_ref().or(pod_pages.as_ref()) {
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
        let phases = match (c.workload, c.phases) {
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
                    &c.name.referenced,
                    &format!("{at}.workload"),
                    format!("container {name:?} has no workload (give workload or phases)"),
                ));
            }
        };
        Ok(ContainerPlan {
            limit_field: format!("{at}.resources.limits.memory"),
            name,
            kind: ContainerKind::Regular,
            resources: Resources::default(),
            image: self.image(c.image, &phases, at)?,
            workload: WorkloadSpec { pages, phases },
            expect: c
                .expect
                .as_ref()
                .map(|e| self.expect(e, &format!("{at}.expect")))
                .transpose()?,
            flags: Vec::new(),
        })
    }

    /// The pod's restartPolicy (the scenario's, else the manifest's, else
    /// Never) and the back-off's scale and cap.
    fn restart(
        &self,
        pod: &RawPod,
        from_manifest: RestartPolicy,
        at: &str,
    ) -> Result<Restart, ScenarioError> {
        let policy = match &pod.restart_policy {
            None => from_manifest,
            Some(t) => RestartPolicy::parse(&t.value).ok_or_else(|| {
                self.err(
                    &t.referenced,
                    &format!("{at}.restartPolicy"),
                    format!(
                        "{:?} is not a restart policy (Always, OnFailure or Never)",
                        t.value
                    ),
                )
            })?,
        };
        let backoff_scale = match &pod.backoff_scale {
            None => 1.0,
            Some(s) if (MIN_BACKOFF_SCALE..=1e3).contains(&s.value) => s.value,
            Some(s) => {
                return Err(self.err(
                    &s.referenced,
                    &format!("{at}.backoffScale"),
                    format!(
                        "{} is outside {MIN_BACKOFF_SCALE}..=1000 (the kubelet's 10 s back-off times this)",
                        s.value
                    ),
                ));
            }
        };
        Ok(Restart {
            policy,
            backoff_scale,
            max_restarts: pod.max_restarts.as_ref().map(|m| m.value),
        })
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
        let exit_code = match &e.exit_code {
            Some(c) if !(0..=255).contains(&c.value) => {
                return Err(self.err(
                    &c.referenced,
                    &format!("{at}.exit_code"),
                    format!(
                        "{} is not an exit code (0-255; a signal N shows as 128+N)",
                        c.value
                    ),
                ));
            }
            c => c.as_ref().map(|c| c.value),
        };
        Ok(Expect {
            reason,
            exit_code,
            within_s: self.seconds(&e.within, &format!("{at}.within"))?,
        })
    }

    /// An image's container runs one command (the image's own program).
    fn image(
        &self,
        image: &Option<Text>,
        phases: &[Phase],
        at: &str,
    ) -> Result<Option<String>, ScenarioError> {
        let Some(t) = image else {
            return Ok(None);
        };
        if t.value.trim().is_empty() || t.value.chars().any(char::is_whitespace) {
            return Err(self.err(&t.referenced, &format!("{at}.image"), "not an image name"));
        }
        if !matches!(phases, [Phase::Command(_)]) {
            return Err(self.err(
                &t.referenced,
                &format!("{at}.image"),
                "an image runs one command: give `workload: {kind: command, command: [...]}`",
            ));
        }
        Ok(Some(t.value.clone()))
    }
}
