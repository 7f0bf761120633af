//! `oomsim compare BASELINE CURRENT`: the regression check for CI. A pod that
//! survived and now dies, or a smallest safe limit that grew beyond the
//! tolerance, is a regression (exit 1). Prints markdown for a job summary;
//! writes JUnit XML and a side-by-side plot on request.

use std::path::Path;

use serde::Serialize;

use crate::report::Report;
use crate::search::SearchResult;
use crate::units::fmt_human;

/// One checked line of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub baseline: String,
    pub current: String,
    pub baseline_bytes: Option<u64>,
    pub current_bytes: Option<u64>,
    pub regression: bool,
    pub note: String,
}

enum Loaded {
    Report(Box<Report>),
    Search(Box<SearchResult>),
}

fn load(path: &Path) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let what =
        |e: serde_json::Error, kind: &str| format!("{}: not an oomsim {kind}: {e}", path.display());
    if value.get("min_safe_limit_bytes").is_some() {
        serde_json::from_value(value)
            .map(|r| Loaded::Search(Box::new(r)))
            .map_err(|e| what(e, "search.json"))
    } else {
        serde_json::from_value(value)
            .map(|r| Loaded::Report(Box::new(r)))
            .map_err(|e| what(e, "report.json"))
    }
}

/// Parse `5%` or `0.05`.
pub fn parse_tolerance(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("{text:?} is not a tolerance (e.g. 5% or 0.05)"))?;
    if !(0.0..=10.0).contains(&value) {
        return Err(format!("{text:?} is outside 0%..1000%"));
    }
    Ok(value)
}

pub fn compare(baseline: &Path, current: &Path, tolerance: f64) -> Result<Vec<Row>, String> {
    match (load(baseline)?, load(current)?) {
        (Loaded::Report(b), Loaded::Report(c)) => Ok(compare_reports(&b, &c)),
        (Loaded::Search(b), Loaded::Search(c)) => Ok(vec![compare_searches(&b, &c, tolerance)]),
        _ => Err("the two files are of different kinds: compare report.json with report.json, search.json with search.json".into()),
    }
}

fn survived(reason: &str) -> bool {
    reason == "Completed"
}

fn compare_reports(b: &Report, c: &Report) -> Vec<Row> {
    b.pods
        .iter()
        .map(|bp| {
            let cp = c.pods.iter().find(|p| p.name == bp.name);
            let current = cp.map_or("missing".to_string(), |p| p.verdict.reason.clone());
            let regression =
                survived(&bp.verdict.reason) && !cp.is_some_and(|p| survived(&p.verdict.reason));
            let note = match cp {
                None => "the pod is missing from the current report".to_string(),
                Some(p) if regression => format!(
                    "survived in the baseline, now {} ({})",
                    p.verdict.reason, p.verdict.message
                ),
                Some(p) => format!(
                    "peak {} -> {}",
                    fmt_human(bp.peak_bytes),
                    fmt_human(p.peak_bytes)
                ),
            };
            Row {
                name: format!("pod {}", bp.name),
                baseline: bp.verdict.reason.clone(),
                current,
                baseline_bytes: Some(bp.peak_bytes),
                current_bytes: cp.map(|p| p.peak_bytes),
                regression,
                note,
            }
        })
        .collect()
}

fn compare_searches(b: &SearchResult, c: &SearchResult, tolerance: f64) -> Row {
    let show = |v: Option<u64>| v.map_or("none in range".into(), fmt_human);
    let (regression, note) = match (b.min_safe_limit_bytes, c.min_safe_limit_bytes) {
        (Some(bm), Some(cm)) => {
            let growth = cm as f64 / bm as f64 - 1.0;
            (
                growth > tolerance,
                format!(
                    "{:+.1}% (tolerance {:.1}%)",
                    growth * 100.0,
                    tolerance * 100.0
                ),
            )
        }
        (Some(_), None) => (true, "no limit in range survives any more".into()),
        (None, _) => (false, "the baseline had no safe limit".into()),
    };
    Row {
        name: format!("smallest safe limit of {}", b.pod),
        baseline: show(b.min_safe_limit_bytes),
        current: show(c.min_safe_limit_bytes),
        baseline_bytes: b.min_safe_limit_bytes,
        current_bytes: c.min_safe_limit_bytes,
        regression,
        note,
    }
}

pub fn markdown(rows: &[Row]) -> String {
    let failed = rows.iter().filter(|r| r.regression).count();
    let mut out = format!(
        "### oomsim compare: {}\n\n| check | baseline | current | result | note |\n|---|---|---|---|---|\n",
        if failed == 0 {
            "no regression".to_string()
        } else {
            format!("{failed} regression(s)")
        }
    );
    for r in rows {
        let result = if r.regression {
            "❌ regression"
        } else {
            "✅ ok"
        };
        out.push_str(&format!(
            "| {} | {} | {} | {result} | {} |\n",
            r.name,
            r.baseline,
            r.current,
            r.note.replace('|', "/")
        ));
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn junit(rows: &[Row]) -> String {
    let failed = rows.iter().filter(|r| r.regression).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"oomsim compare\" tests=\"{}\" failures=\"{failed}\">\n",
        rows.len()
    );
    for r in rows {
        out.push_str(&format!(
            "  <testcase classname=\"oomsim\" name=\"{}\">",
            xml_escape(&r.name)
        ));
        if r.regression {
            out.push_str(&format!(
                "<failure message=\"{}\">baseline {}, current {}</failure>",
                xml_escape(&r.note),
                xml_escape(&r.baseline),
                xml_escape(&r.current)
            ));
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(min: Option<u64>) -> SearchResult {
        SearchResult {
            scenario: "s".into(),
            pod: "app".into(),
            min_safe_limit_bytes: min,
            peak_bytes: None,
            oom_limit_bytes: None,
            range_bytes: (1, 2),
            precision_bytes: 1,
            repeat: 1,
            parallel: 1,
            trials_count: 0,
            wall_s: 0.0,
            per_limit: vec![],
            formulas: vec![],
            trials: vec![],
        }
    }

    #[test]
    fn tolerance_and_growth() {
        assert_eq!(parse_tolerance("5%").unwrap(), 0.05);
        assert_eq!(parse_tolerance("0.1").unwrap(), 0.1);
        assert!(parse_tolerance("five").is_err());
        let mib = 1 << 20;
        assert!(
            !compare_searches(&search(Some(100 * mib)), &search(Some(104 * mib)), 0.05).regression
        );
        assert!(
            compare_searches(&search(Some(100 * mib)), &search(Some(106 * mib)), 0.05).regression
        );
        assert!(compare_searches(&search(Some(100 * mib)), &search(None), 0.05).regression);
        assert!(
            !compare_searches(&search(Some(100 * mib)), &search(Some(50 * mib)), 0.05).regression
        );
    }

    #[test]
    fn junit_and_markdown() {
        let rows = vec![compare_searches(
            &search(Some(100)),
            &search(Some(200)),
            0.05,
        )];
        let x = junit(&rows);
        assert!(
            x.contains("failures=\"1\"")
                && x.contains("<failure message=\"+100.0% (tolerance 5.0%)\""),
            "{x}"
        );
        assert!(markdown(&rows).contains("1 regression(s)"));
    }
}
