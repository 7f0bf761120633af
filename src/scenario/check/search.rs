//! The `search:` block: the pod, the range, precision, repeats and loading strategies.

use super::Checker;
use crate::plan::{DEFAULT_SEARCH_REPEAT, LoadStrategy, Phase, PodPlan, SearchSpec};
use crate::scenario::ScenarioError;
use crate::scenario::raw::RawSearch;
use crate::units;

impl Checker<'_> {
    pub(super) fn search(
        &self,
        s: &RawSearch,
        pods: &[PodPlan],
    ) -> Result<SearchSpec, ScenarioError> {
        if !pods.iter().any(|p| p.name == s.pod.value) {
            return Err(self.err(
                &s.pod.referenced,
                "search.pod",
                format!("no pod named {:?}", s.pod.value),
            ));
        }
        let range = s
            .range
            .as_ref()
            .map(|r| {
                units::parse_range(&r.value)
                    .map_err(|e| self.err(&r.referenced, "search.range", e.to_string()))
            })
            .transpose()?;
        let repeat = match &s.repeat {
            Some(r) if r.value == 0 => {
                return Err(self.err(&r.referenced, "search.repeat", "must be at least 1"));
            }
            Some(r) => r.value,
            None => DEFAULT_SEARCH_REPEAT,
        };
        let mut strategies = Vec::new();
        if let Some(list) = &s.strategies {
            let loads = pods
                .iter()
                .find(|p| p.name == s.pod.value)
                .is_some_and(|p| {
                    p.containers
                        .iter()
                        .flat_map(|c| &c.workload.phases)
                        .any(|ph| matches!(ph, Phase::ModelLoad(_)))
                });
            if !loads {
                return Err(self.err(
                    &list.referenced,
                    "search.strategies",
                    format!("pod {:?} has no model-load workload", s.pod.value),
                ));
            }
            for t in &list.value {
                let st = LoadStrategy::parse(&t.value).ok_or_else(|| {
                    self.err(
                        &t.referenced,
                        "search.strategies",
                        format!(
                            "{:?} is not a loading strategy (read-then-copy, chunked, mmap)",
                            t.value
                        ),
                    )
                })?;
                strategies.push(st);
            }
        }
        let precision_bytes = self.bytes(&s.precision, "search.precision")?;
        if let (Some(0), Some(p)) = (precision_bytes, &s.precision) {
            return Err(self.err(
                &p.referenced,
                "search.precision",
                "must be more than zero (the search would never end)",
            ));
        }
        Ok(SearchSpec {
            pod: s.pod.value.clone(),
            range,
            precision_bytes,
            repeat,
            strategies,
        })
    }
}
