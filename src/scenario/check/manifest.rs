//! A scenario pod `from:` a Kubernetes manifest: the manifest's pod gives
//! the containers, resources, priority and restart policy; the scenario
//! gives each container a workload by its name.

use super::Checker;
use super::pod::Given;
use crate::k8s;
use crate::plan::PodPlan;
use crate::scenario::ScenarioError;
use crate::scenario::raw::{RawContainer, RawPod, Text};

impl Checker<'_> {
    /// A pod `from` a manifest: its containers, resources, priority and
    /// restart policy; the scenario gives each container a workload by name.
    pub(super) fn manifest_pod(
        &self,
        pod: &RawPod,
        from: &Text,
        plan: &mut PodPlan,
        at: &str,
    ) -> Result<(), ScenarioError> {
        let field = format!("{at}.from");
        let bad = |message: String| self.err(&from.referenced, &field, message);
        for (given, what) in [
            (pod.resources.is_some(), "resources"),
            (pod.priority.is_some(), "priority"),
            (pod.priority_class_name.is_some(), "priorityClassName"),
            (pod.container.is_some(), "container"),
        ] {
            if given {
                return Err(bad(format!(
                    "{what} comes from the manifest; leave it out of the scenario"
                )));
            }
        }
        self.refuse_shorthand(pod, at)?;
        let path = std::path::Path::new(self.path)
            .parent()
            .unwrap_or(std::path::Path::new(""))
            .join(&from.value);
        let text = crate::bounded::read_text(&path, crate::bounded::CONFIG_MAX)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        let pods = k8s::pods_from_manifest(&text, &from.value).map_err(|e| bad(e.to_string()))?;
        let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        let Some(found) = pods.iter().find(|p| p.name == plan.name) else {
            return Err(self.err(
                &pod.name.referenced,
                &format!("{at}.name"),
                format!(
                    "{} holds no pod named {:?} (it has: {})",
                    from.value,
                    plan.name,
                    names.join(", ")
                ),
            ));
        };
        for (i, c) in found.containers.iter().enumerate() {
            if !crate::k8s::valid_name(&c.name) {
                return Err(bad(format!(
                    "{}: container name {:?} is not a valid name (lowercase letters, digits and '-', at most 63)",
                    from.value, c.name
                )));
            }
            if found.containers[..i].iter().any(|o| o.name == c.name) {
                return Err(bad(format!(
                    "{}: container {:?} is named twice in pod {}",
                    from.value, c.name, plan.name
                )));
            }
        }
        plan.priority = found.priority;
        plan.priority_class_name = found.priority_class_name.clone();
        plan.resources = found.resources;
        plan.restart.policy = found.restart_policy;
        let entries: Vec<(String, &RawContainer)> = [
            ("initContainers", &pod.init_containers),
            ("containers", &pod.containers),
        ]
        .into_iter()
        .flat_map(|(list, l)| {
            l.iter()
                .flat_map(|l| &l.value)
                .enumerate()
                .map(move |(i, c)| (format!("{at}.{list}[{i}]"), c))
        })
        .collect();
        for (entry_at, raw) in &entries {
            if !found.containers.iter().any(|c| c.name == raw.name.value) {
                return Err(self.err(
                    &raw.name.referenced,
                    &format!("{entry_at}.name"),
                    format!(
                        "{} has no container {:?} in pod {} (it has: {})",
                        from.value,
                        raw.name.value,
                        plan.name,
                        container_names(found)
                    ),
                ));
            }
            for (given, what) in [
                (raw.resources.is_some(), "resources"),
                (raw.restart_policy.is_some(), "restartPolicy"),
            ] {
                if given {
                    return Err(self.err(
                        &raw.name.referenced,
                        &format!("{entry_at}.{what}"),
                        format!("{what} comes from the manifest; leave it out of the scenario"),
                    ));
                }
            }
        }
        for c in &found.containers {
            let Some((entry_at, raw)) = entries.iter().find(|(_, r)| r.name.value == c.name) else {
                return Err(bad(format!(
                    "container {:?} of pod {} has no workload: give it one under containers (by its name)",
                    c.name, plan.name
                )));
            };
            let mut planned =
                self.container(&Given::of(raw), &pod.pages, c.name.clone(), entry_at)?;
            planned.kind = c.kind;
            planned.resources = c.resources;
            planned.limit_field = format!(
                "{}: container {}: resources.limits.memory",
                from.value, c.name
            );
            if entries
                .iter()
                .filter(|(_, r)| r.name.value == c.name)
                .count()
                > 1
            {
                return Err(self.err(
                    &raw.name.referenced,
                    &format!("{entry_at}.name"),
                    format!("container {:?} is given twice", c.name),
                ));
            }
            plan.containers.push(planned);
        }
        Ok(())
    }
}

fn container_names(pod: &k8s::Pod) -> String {
    pod.containers
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
