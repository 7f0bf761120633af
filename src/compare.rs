//! `oomsim compare BASELINE CURRENT`: the regression check for CI. A pod that
//! survived and now dies, or a smallest safe limit that grew beyond the
//! tolerance, is a regression (exit 1). Prints markdown for a job summary;
//! writes JUnit XML and a side-by-side plot on request.

use std::path::Path;

use crate::report::compare::Row;
use crate::report::search::SearchResult;
use crate::report::{self, Report, ReportError, Saved};
use crate::units::fmt_human;

/// Why two saved files cannot be compared (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Read(#[from] ReportError),
    #[error(
        "the two files are of different kinds: compare report.json with report.json, search.json with search.json"
    )]
    Kinds,
    #[error(
        "{current}: scenario {found:?}, but the baseline's is {expected:?}: compare runs of the same scenario"
    )]
    Scenario {
        current: String,
        expected: String,
        found: String,
    },
    #[error("{current}: searched pod {found:?}, but the baseline searched {expected:?}")]
    Pod {
        current: String,
        expected: String,
        found: String,
    },
    #[error("{0:?} is not a tolerance: write 5% or 0.05")]
    Tolerance(String),
    #[error("{0:?} is ambiguous: write {0}% for {0} percent, or a fraction like 0.05")]
    AmbiguousTolerance(String),
    #[error("{0:?} is outside 0%..1000%")]
    ToleranceRange(String),
}

/// Parse `5%` or `0.05`. A bare number of 1 or more (`5`) is refused: it
/// reads as 5% to a person and as 500% to arithmetic.
pub fn parse_tolerance(text: &str) -> Result<f64, CompareError> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => match t.parse::<f64>() {
            Ok(v) if v >= 1.0 => return Err(CompareError::AmbiguousTolerance(t.to_string())),
            other => other,
        },
    }
    .map_err(|_| CompareError::Tolerance(text.to_string()))?;
    if !(0.0..=10.0).contains(&value) {
        return Err(CompareError::ToleranceRange(text.to_string()));
    }
    Ok(value)
}

/// Compare two saved files of one scenario (and, for searches, one pod).
pub fn compare(baseline: &Path, current: &Path, tolerance: f64) -> Result<Vec<Row>, CompareError> {
    let shown = current.display().to_string();
    let same = |expected: &str, found: &str| {
        (expected == found)
            .then_some(())
            .ok_or_else(|| CompareError::Scenario {
                current: shown.clone(),
                expected: expected.to_string(),
                found: found.to_string(),
            })
    };
    match (report::load(baseline)?, report::load(current)?) {
        (Saved::Report(b), Saved::Report(c)) => {
            same(&b.scenario, &c.scenario)?;
            Ok(compare_reports(&b, &c))
        }
        (Saved::Search(b), Saved::Search(c)) => {
            same(&b.scenario, &c.scenario)?;
            if b.pod != c.pod {
                return Err(CompareError::Pod {
                    current: shown.clone(),
                    expected: b.pod.clone(),
                    found: c.pod.clone(),
                });
            }
            Ok(vec![compare_searches(&b, &c, tolerance)])
        }
        _ => Err(CompareError::Kinds),
    }
}

fn compare_reports(b: &Report, c: &Report) -> Vec<Row> {
    b.pods
        .iter()
        .map(|bp| {
            let cp = c.pods.iter().find(|p| p.name == bp.name);
            let current = cp.map_or("missing".to_string(), |p| p.verdict.reason.to_string());
            let regression = bp.survived() && !cp.is_some_and(|p| p.survived());
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
                baseline: bp.verdict.reason.to_string(),
                current,
                baseline_bytes: Some(bp.peak_bytes),
                current_bytes: cp.map(|p| p.peak_bytes),
                tolerance_bytes: None,
                regression,
                note,
            }
        })
        .collect()
}

pub(crate) fn compare_searches(b: &SearchResult, c: &SearchResult, tolerance: f64) -> Row {
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
        tolerance_bytes: b
            .min_safe_limit_bytes
            .map(|bm| (bm as f64 * (1.0 + tolerance)) as u64),
        regression,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(min: Option<u64>) -> SearchResult {
        SearchResult {
            schema_version: report::SCHEMA_VERSION,
            scenario: "s".into(),
            pod: "app".into(),
            min_safe_limit_bytes: min,
            no_limit_helps: None,
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
        // A bare 5 would be 500%: refused with a hint, not taken silently.
        let e = parse_tolerance("5").unwrap_err().to_string();
        assert!(e.contains("ambiguous") && e.contains("5%"), "{e}");
        assert_eq!(parse_tolerance("0.5").unwrap(), 0.5);
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
        use crate::report::Format;
        use crate::report::compare::{Junit, Markdown};
        let x = Junit.render(&rows).unwrap();
        assert!(
            x.contains("failures=\"1\"")
                && x.contains("<failure message=\"+100.0% (tolerance 5.0%)\""),
            "{x}"
        );
        assert!(Markdown.render(&rows).unwrap().contains("1 regression(s)"));
    }
}
