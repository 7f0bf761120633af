//! A comparison's rows and their renderings: a markdown table for a CI job
//! summary and JUnit XML for a test report.

use serde::Serialize;

use super::{Format, ReportError};

/// One checked line of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub baseline: String,
    pub current: String,
    pub baseline_bytes: Option<u64>,
    pub current_bytes: Option<u64>,
    /// The most the current may reach before it is a regression (searches).
    pub tolerance_bytes: Option<u64>,
    pub regression: bool,
    pub note: String,
}

/// A markdown table, headed by the count of regressions.
pub struct Markdown;

/// JUnit XML: one testcase per row, a failure per regression.
pub struct Junit;

impl Format<[Row]> for Markdown {
    fn render(&self, rows: &[Row]) -> Result<String, ReportError> {
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
        Ok(out)
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Format<[Row]> for Junit {
    fn render(&self, rows: &[Row]) -> Result<String, ReportError> {
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
        Ok(out)
    }
}
