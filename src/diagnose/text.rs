//! The diagnosis as `kubectl describe` would lay it out.

use std::fmt::Write as _;

use super::Diagnosis;
use crate::units::{fmt_human, fmt_quantity};

/// Quoted lines are cut to this many characters in the text (the JSON keeps them whole).
const QUOTE_MAX: usize = 160;

pub fn render(d: &Diagnosis) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Class:       {}", d.class.as_str());
    let _ = writeln!(s, "Summary:     {}", d.summary);
    let _ = writeln!(s, "Confidence:  {}", confidence(d));
    if let Some(r) = d.runtime {
        let _ = writeln!(s, "Runtime:     {}", r.name());
    }
    let facts = facts(d);
    if !facts.is_empty() {
        let _ = writeln!(s, "Facts:");
        let width = facts.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        for (k, v) in facts {
            let _ = writeln!(s, "  {:<width$} {v}", format!("{k}:"), width = width);
        }
    }
    if d.evidence.is_empty() {
        let _ = writeln!(s, "Evidence:    <none found in {}>", read(d));
    } else {
        let _ = writeln!(s, "Evidence:");
        for e in &d.evidence {
            let _ = writeln!(s, "  {}:{}  {}", e.file, e.line, cut(&e.text));
            let _ = writeln!(s, "    -> {}", e.means);
        }
    }
    if !d.ruled_out.is_empty() {
        let _ = writeln!(s, "Ruled out:");
        for r in &d.ruled_out {
            let _ = writeln!(s, "  - {r}");
        }
    }
    let _ = writeln!(s, "Fix:\n  {}", d.fix);
    if let Some(c) = &d.decide {
        let _ = writeln!(s, "Decide with:\n  {c}");
    }
    s
}

fn confidence(d: &Diagnosis) -> &'static str {
    match d.confidence {
        super::Confidence::High => "high",
        super::Confidence::Medium => "medium",
        super::Confidence::Low => "low",
    }
}

fn read(d: &Diagnosis) -> String {
    d.read
        .iter()
        .map(|r| format!("{} ({} lines)", r.file, r.lines))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cut(text: &str) -> String {
    if text.chars().count() <= QUOTE_MAX {
        return text.to_string();
    }
    let head: String = text.chars().take(QUOTE_MAX).collect();
    format!("{head}...")
}

/// Every fact, its name in words and its value in Kubernetes' units.
fn facts(d: &Diagnosis) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&d.facts) else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(k, v)| {
            let bytes = k.ends_with("_bytes");
            let name = k.trim_end_matches("_bytes").replace('_', " ");
            let name = name[..1].to_uppercase() + &name[1..];
            let name = name.replace("Gpu", "GPU").replace("Kv", "KV");
            let value = match (&v, bytes) {
                (serde_json::Value::Number(n), true) => n.as_u64().map_or(v.to_string(), |b| {
                    if b % (1 << 20) == 0 {
                        fmt_quantity(b)
                    } else {
                        fmt_human(b)
                    }
                }),
                (serde_json::Value::String(t), _) => t.clone(),
                _ => v.to_string(),
            };
            (name, value)
        })
        .collect()
}
