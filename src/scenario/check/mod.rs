//! Checking the raw scenario into a [`Plan`], one file per YAML block.
//! Every error names the file, the line and the field; quantities with a
//! fraction of a byte (`512m`) are warned about as the API server warns,
//! or refused under `--strict`.

mod gpu;
mod llm;
mod manifest;
mod node;
mod pod;
mod resources;
mod search;
mod workload;

use std::cell::RefCell;

use serde_saphyr::Location;

use super::ScenarioError;
use super::raw::{RawScenario, Text};
use crate::plan::{DEFAULT_SAMPLING_HZ, Plan, PodPlan};
use crate::search::sizing::{BUILTIN_VARS, Expr};
use crate::units::{self, UnitError};

pub struct Checker<'a> {
    pub path: &'a str,
    pub has_gpu: bool,
    /// Refuse what is only warned about otherwise.
    pub strict: bool,
    pub warnings: RefCell<Vec<String>>,
}

impl Checker<'_> {
    pub(super) fn err(
        &self,
        at: &Location,
        field: &str,
        message: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::Field {
            path: self.path.to_string(),
            line: at.line(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn unit<T>(
        &self,
        text: &Text,
        field: &str,
        f: impl Fn(&str) -> Result<T, UnitError>,
    ) -> Result<T, ScenarioError> {
        f(&text.value).map_err(|e| self.err(&text.referenced, field, e.to_string()))
    }

    /// Bytes, as apimachinery rounds them (up); a value with a fraction of
    /// a byte (`512m` is 0.512 bytes) is warned about, as the API server
    /// does, or refused under `--strict`.
    pub(super) fn bytes(
        &self,
        text: &Option<Text>,
        field: &str,
    ) -> Result<Option<u64>, ScenarioError> {
        let Some(t) = text else {
            return Ok(None);
        };
        let bytes = self.unit(t, field, units::parse_bytes)?;
        let milli = units::parse_quantity_scaled(&t.value, 3).unwrap_or(0);
        if !milli.is_multiple_of(1000) {
            let what = format!(
                "{:?} is a fraction of a byte, rounded up to {bytes} byte(s); did you mean {}i?",
                t.value,
                t.value.trim_end_matches('m').to_string() + "M"
            );
            if self.strict {
                return Err(self.err(&t.referenced, field, what));
            }
            self.warnings.borrow_mut().push(format!(
                "{}:{}: {field}: warning: {what}",
                self.path,
                t.referenced.line()
            ));
        }
        Ok(Some(bytes))
    }

    pub(super) fn seconds(
        &self,
        text: &Option<Text>,
        field: &str,
    ) -> Result<Option<f64>, ScenarioError> {
        text.as_ref()
            .map(|t| {
                self.unit(t, field, units::parse_duration)
                    .map(|d| d.as_secs_f64())
            })
            .transpose()
    }

    pub(super) fn name(&self, text: &Text, field: &str) -> Result<String, ScenarioError> {
        if crate::k8s::valid_name(&text.value) {
            Ok(text.value.clone())
        } else {
            Err(self.err(
                &text.referenced,
                field,
                format!(
                    "{:?} is not a valid name (lowercase letters, digits and '-', at most 63)",
                    text.value
                ),
            ))
        }
    }

    pub(super) fn scenario(&self, raw: RawScenario) -> Result<Plan, ScenarioError> {
        let name = self.name(&raw.name, "name")?;
        let sampling_hz = match raw.sampling.and_then(|s| s.rate_hz) {
            Some(hz) if !(1..=10_000).contains(&hz.value) => {
                return Err(self.err(
                    &hz.referenced,
                    "sampling.rate_hz",
                    format!("{} is outside 1..=10000", hz.value),
                ));
            }
            Some(hz) => hz.value,
            None => DEFAULT_SAMPLING_HZ,
        };
        if raw.pods.value.is_empty() {
            return Err(self.err(&raw.pods.referenced, "pods", "at least one pod is needed"));
        }
        let mut pods: Vec<PodPlan> = Vec::with_capacity(raw.pods.value.len());
        for (i, pod) in raw.pods.value.iter().enumerate() {
            let plan = self.pod(pod, &format!("pods[{i}]"))?;
            if pods.iter().any(|p| p.name == plan.name) {
                return Err(self.err(
                    &pod.name.referenced,
                    &format!("pods[{i}].name"),
                    format!("pod {:?} is named twice", plan.name),
                ));
            }
            pods.push(plan);
        }
        let mut vars = Vec::new();
        for (k, v) in raw.vars.iter().flatten() {
            if BUILTIN_VARS.contains(&k.as_str()) {
                return Err(self.err(
                    &v.referenced,
                    &format!("vars.{k}"),
                    format!("{k} is what a search measures; give this var another name"),
                ));
            }
            let milli = self.unit(v, &format!("vars.{k}"), |s| {
                units::parse_quantity_scaled(s, 3)
            })?;
            vars.push((k.clone(), milli as f64 / 1000.0));
        }
        let mut known: Vec<&str> = BUILTIN_VARS.to_vec();
        known.extend(vars.iter().map(|(k, _)| k.as_str()));
        let mut formulas = Vec::new();
        for (k, v) in raw.formulas.iter().flatten() {
            let constant = |n: &str| vars.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
            let expr = Expr::parse(&v.value, &known)
                .and_then(|e| e.check_divisors(&constant).map(|()| e))
                .map_err(|e| self.err(&v.referenced, &format!("formulas.{k}"), e.to_string()))?;
            formulas.push((k.clone(), expr));
        }
        let search = raw
            .search
            .as_ref()
            .map(|s| self.search(s, &pods))
            .transpose()?;
        let gpu = raw.gpu.as_ref().map(|g| self.gpu(g)).transpose()?;
        let node = raw.node.as_ref().map(|n| self.node(n)).transpose()?;
        Ok(Plan {
            name,
            description: raw.description,
            sampling_hz,
            pods,
            vars,
            formulas,
            search,
            gpu,
            node,
            single_process_oom_kill: raw.single_process_oom_kill.unwrap_or(false),
        })
    }
}
