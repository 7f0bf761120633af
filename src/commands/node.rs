//! `oomsim node plan`: QoS, oom_score_adj and the kubelet's eviction order
//! for pods read from `kubectl get pods -o yaml`.

use crate::cli::args::NodePlanArgs;
use crate::cli::resolve::positive_bytes;
use crate::cli::{Failure, exit};
use crate::k8s::{plan_pods, pods_from_kubectl};
use crate::units::{self, fmt_quantity};

pub fn plan(a: &NodePlanArgs) -> Result<u8, Failure> {
    let capacity = positive_bytes("--capacity", &a.capacity)?;
    let shown = a.pods.display().to_string();
    let text =
        std::fs::read_to_string(&a.pods).map_err(|e| Failure::input(format!("{shown}: {e}")))?;
    let pods = pods_from_kubectl(&text, &shown)?;
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
    println!(
        "{:<24} {:<11} {:>8} {:>10} {:>10} {:>13} {:>5}",
        "NAME", "QOS", "PRIORITY", "REQUEST", "USAGE", "OOM_SCORE_ADJ", "EVICT"
    );
    let mut by_rank = planned.clone();
    by_rank.sort_by_key(|p| p.eviction_rank);
    for p in &by_rank {
        println!(
            "{:<24} {:<11} {:>8} {:>10} {:>10} {:>13} {:>5}",
            p.name,
            p.qos.to_string(),
            p.priority,
            fmt_quantity(p.request_bytes),
            fmt_quantity(p.usage_bytes),
            p.oom_score_adj,
            p.eviction_rank
        );
    }
    println!(
        "Eviction order (the kubelet's keys: usage over request first, then lower priority, then usage above request); QoS is not itself a key."
    );
    Ok(exit::OK)
}
