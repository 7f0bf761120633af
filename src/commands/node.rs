//! `oomsim node plan`: QoS, the kubelet's eviction order and each
//! container's oom_score_adj, for pods read from manifests or `kubectl get`.

use crate::cli::args::NodePlanArgs;
use crate::cli::resolve::positive_bytes;
use crate::cli::{Failure, exit};
use crate::k8s::{plan_pods, pods_from_manifest};
use crate::units::{self, fmt_quantity};

pub fn plan(a: &NodePlanArgs) -> Result<u8, Failure> {
    let capacity = positive_bytes("--capacity", &a.capacity)?;
    let shown = a.pods.display().to_string();
    let text = crate::bounded::read_text(&a.pods, crate::bounded::CONFIG_MAX)
        .map_err(|e| Failure::input(format!("{shown}: {e}")))?;
    let pods = pods_from_manifest(&text, &shown)?;
    let mut usage = Vec::new();
    for u in &a.usage {
        let (name, qty) = u
            .split_once('=')
            .ok_or_else(|| Failure::flag("--usage", format!("{u:?} is not NAME=QTY")))?;
        if !pods.iter().any(|p| p.name == name) {
            let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
            return Err(Failure::flag(
                "--usage",
                format!(
                    "no pod named {name:?} in {shown} (its pods: {})",
                    names.join(", ")
                ),
            ));
        }
        let bytes = units::parse_bytes(qty).map_err(|e| Failure::flag("--usage", e))?;
        usage.push((name.to_string(), bytes));
    }
    let planned = plan_pods(&pods, capacity, &usage);
    if a.json {
        let json = serde_json::json!({ "capacity_bytes": capacity, "pods": planned });
        println!("{json:#}");
        return Ok(exit::OK);
    }
    let row = |name: &str,
               qos: &str,
               prio: &str,
               req: &str,
               lim: &str,
               usage: &str,
               adj: &str,
               evict: &str| {
        println!(
            "{name:<28} {qos:<11} {prio:>10} {req:>9} {lim:>9} {usage:>9} {adj:>13} {evict:>5}"
        );
    };
    row(
        "NAME",
        "QOS",
        "PRIORITY",
        "REQUEST",
        "LIMIT",
        "USAGE",
        "OOM_SCORE_ADJ",
        "EVICT",
    );
    let mut by_rank = planned.clone();
    by_rank.sort_by_key(|p| p.eviction_rank);
    for p in &by_rank {
        row(
            &p.name,
            &p.qos.to_string(),
            &p.priority.to_string(),
            &fmt_quantity(p.request_bytes),
            "",
            &fmt_quantity(p.usage_bytes),
            "",
            &p.eviction_rank.to_string(),
        );
        for c in &p.containers {
            let kind = match (c.init, c.sidecar) {
                (_, true) => " [sidecar]",
                (true, false) => " [init]",
                _ => "",
            };
            row(
                &format!("  {}{kind}", c.name),
                "",
                "",
                &fmt_quantity(c.request_bytes),
                &c.limit_bytes.map_or("-".into(), fmt_quantity),
                "",
                &c.oom_score_adj.to_string(),
                "",
            );
        }
    }
    println!(
        "Eviction order (the kubelet's keys: usage over request first, then lower priority, then usage above request); QoS is not itself a key."
    );
    Ok(exit::OK)
}
