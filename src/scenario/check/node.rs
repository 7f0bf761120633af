//! The `node:` block: capacity, the kubelet's eviction thresholds (only
//! `memory.available`) and the housekeeping interval.

use std::collections::BTreeMap;

use serde_saphyr::Location;

use super::Checker;
use crate::k8s::Threshold;
use crate::plan::{DEFAULT_EVICTION_HARD, DEFAULT_HOUSEKEEPING_S, NodeSpec};
use crate::scenario::ScenarioError;
use crate::scenario::raw::{RawNode, Text};
use crate::units;

impl Checker<'_> {
    pub(super) fn node(&self, n: &RawNode) -> Result<NodeSpec, ScenarioError> {
        let capacity_bytes = self.unit(&n.capacity, "node.capacity", units::parse_bytes)?;
        if capacity_bytes == 0 {
            return Err(self.err(
                &n.capacity.referenced,
                "node.capacity",
                "must be more than zero",
            ));
        }
        fn memory_available<'t>(
            c: &Checker,
            m: &'t Option<BTreeMap<String, Text>>,
            f: &str,
        ) -> Result<Option<&'t Text>, ScenarioError> {
            let Some(m) = m else {
                return Ok(None);
            };
            let mut found = None;
            for (k, v) in m {
                if k != "memory.available" {
                    return Err(c.err(
                        &v.referenced,
                        &format!("node.{f}.{k}"),
                        "oomsim models memory.available only",
                    ));
                }
                found = Some(v);
            }
            Ok(found)
        }
        let signal = |m, f| memory_available(self, m, f);
        let threshold = |t: &Text, f: &str| {
            Threshold::parse(&t.value).map_err(|e| self.err(&t.referenced, f, e.to_string()))
        };
        let hard_at = signal(&n.eviction_hard, "evictionHard")?;
        let soft_at = signal(&n.eviction_soft, "evictionSoft")?;
        let hard = match hard_at {
            Some(t) => threshold(t, "node.evictionHard.memory.available")?,
            None => Threshold::Bytes(DEFAULT_EVICTION_HARD),
        };
        let soft = match soft_at {
            Some(t) => {
                let th = threshold(t, "node.evictionSoft.memory.available")?;
                let grace = signal(&n.eviction_soft_grace_period, "evictionSoftGracePeriod")?
                    .ok_or_else(|| {
                        self.err(
                            &t.referenced,
                            "node.evictionSoftGracePeriod",
                            "a soft threshold needs a grace period (memory.available: 30s)",
                        )
                    })?;
                let g = self.unit(
                    grace,
                    "node.evictionSoftGracePeriod.memory.available",
                    units::parse_duration,
                )?;
                Some((th, g.as_secs_f64()))
            }
            None => None,
        };
        let housekeeping_s = self
            .seconds(&n.housekeeping, "node.housekeeping")?
            .unwrap_or(DEFAULT_HOUSEKEEPING_S);
        if housekeeping_s <= 0.0 {
            let loc = n
                .housekeeping
                .as_ref()
                .map_or(Location::UNKNOWN, |t| t.referenced);
            return Err(self.err(&loc, "node.housekeeping", "must be more than zero"));
        }
        let mut reserved_bytes = 0u64;
        for (field, map) in [
            ("kubeReserved", &n.kube_reserved),
            ("systemReserved", &n.system_reserved),
        ] {
            for (k, v) in map.iter().flatten() {
                let at = format!("node.{field}.{k}");
                match k.as_str() {
                    "memory" => {
                        let b = self.unit(v, &at, units::parse_bytes)?;
                        reserved_bytes = reserved_bytes.saturating_add(b);
                    }
                    // Reserved too on a real node; oomsim models memory only.
                    "cpu" | "ephemeral-storage" | "pid" => {}
                    _ => {
                        return Err(self.err(
                            &v.referenced,
                            &at,
                            "not a reservable resource (memory, cpu, ephemeral-storage, pid)",
                        ));
                    }
                }
            }
        }
        if reserved_bytes >= capacity_bytes {
            return Err(self.err(
                &n.capacity.referenced,
                "node.capacity",
                format!(
                    "kubeReserved + systemReserved memory ({}) leaves nothing allocatable",
                    units::fmt_quantity(reserved_bytes)
                ),
            ));
        }
        // A threshold the node is under from the start evicts every pod at
        // once: the kubelet would never admit one.
        for (th, at, f) in [
            (Some(hard), hard_at, "evictionHard"),
            (soft.map(|(t, _)| t), soft_at, "evictionSoft"),
        ] {
            let Some(th) = th else { continue };
            let b = th.bytes(capacity_bytes);
            if reserved_bytes.saturating_add(b) >= capacity_bytes {
                let (loc, field) = match at {
                    Some(t) => (t.referenced, format!("node.{f}.memory.available")),
                    None => (n.capacity.referenced, "node.capacity".to_string()),
                };
                return Err(self.err(
                    &loc,
                    &field,
                    format!(
                        "memory.available<{} is not below node.capacity {}{}: the node would be under pressure with no pod running",
                        units::fmt_quantity(b),
                        units::fmt_quantity(capacity_bytes),
                        if reserved_bytes > 0 { " less its reservations" } else { "" }
                    ),
                ));
            }
        }
        Ok(NodeSpec {
            capacity_bytes,
            capacity_field: format!(
                "{}:{}: node.capacity",
                self.path,
                n.capacity.referenced.line()
            ),
            reserved_bytes,
            hard,
            soft,
            housekeeping_s,
        })
    }
}
