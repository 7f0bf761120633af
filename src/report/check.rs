//! What a saved report.json or search.json must hold to mean anything,
//! checked after it parses: `compare` and `plot` never reason about a search
//! whose smallest safe limit is 0, whose range is inverted, or whose
//! survivals outnumber its trials.

use super::search::SearchResult;
use super::{Report, SCHEMA_VERSION};

/// The field that is wrong and why.
pub struct Invalid {
    pub field: String,
    pub why: String,
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        field: field.into(),
        why: why.into(),
    })
}

fn version(v: u32) -> Result<(), Invalid> {
    if (1..=SCHEMA_VERSION).contains(&v) {
        return Ok(());
    }
    invalid("schema_version", format!("{v} is not 1..{SCHEMA_VERSION}"))
}

/// Seconds: finite and not negative.
fn seconds(field: impl Into<String>, s: f64) -> Result<(), Invalid> {
    if s.is_finite() && s >= 0.0 {
        return Ok(());
    }
    invalid(field, format!("{s} is not a time in seconds"))
}

pub fn search(s: &SearchResult) -> Result<(), Invalid> {
    version(s.schema_version)?;
    let (lo, hi) = s.range_bytes;
    if lo == 0 || lo >= hi {
        invalid(
            "range_bytes",
            format!("[{lo}, {hi}] is not a range (low end above zero and below the high end)"),
        )?;
    }
    if s.precision_bytes == 0 {
        invalid("precision_bytes", "must be more than zero")?;
    }
    if s.repeat == 0 {
        invalid("repeat", "must be more than zero")?;
    }
    seconds("wall_s", s.wall_s)?;
    for (field, v) in [
        ("min_safe_limit_bytes", s.min_safe_limit_bytes),
        ("oom_limit_bytes", s.oom_limit_bytes),
    ] {
        match v {
            Some(b) if b == 0 || b > hi => invalid(
                field,
                format!("{b} is outside the searched range [{lo}, {hi}]"),
            )?,
            _ => {}
        }
    }
    for (i, l) in s.per_limit.iter().enumerate() {
        let at = |f: &str| format!("per_limit[{i}].{f}");
        if l.survived > l.trials {
            invalid(
                at("survived"),
                format!("{} survivals of {} trials", l.survived, l.trials),
            )?;
        }
        if !(0.0..=1.0).contains(&l.survival_rate) {
            invalid(
                at("survival_rate"),
                format!("{} is not a share (0 to 1)", l.survival_rate),
            )?;
        }
    }
    for (i, t) in s.trials.iter().enumerate() {
        seconds(format!("trials[{i}].at_s"), t.at_s)?;
        seconds(format!("trials[{i}].wall_s"), t.wall_s)?;
    }
    Ok(())
}

pub fn report(r: &Report) -> Result<(), Invalid> {
    version(r.schema_version)?;
    for (i, p) in r.pods.iter().enumerate() {
        if p.limit_bytes == Some(0) {
            invalid(format!("pods[{i}].limit_bytes"), "0 is no limit")?;
        }
        seconds(format!("pods[{i}].verdict.at_s"), p.verdict.at_s)?;
        let mut last = 0.0;
        for (j, s) in p.samples.iter().enumerate() {
            let field = format!("pods[{i}].samples[{j}].t_s");
            seconds(&field, s.t_s)?;
            if s.t_s < last {
                invalid(field, format!("{} comes before the sample above it", s.t_s))?;
            }
            last = s.t_s;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    fn fixture(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/plots")
            .join(name);
        std::fs::read_to_string(p).unwrap()
    }

    fn error(name: &str, edit: impl Fn(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(&fixture(name)).unwrap();
        edit(&mut v);
        match super::super::parse("x.json", &v.to_string()) {
            Ok(_) => "accepted".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn nonsense_searches_are_refused_with_the_field() {
        let s = "sizing-python.search.json";
        assert_eq!(error(s, |_| {}), "accepted");
        assert_eq!(
            error(s, |v| v["min_safe_limit_bytes"] = 0.into()),
            "x.json: not a meaningful search.json: min_safe_limit_bytes: 0 is outside the searched range [67108864, 536870912]"
        );
        let inverted = error(s, |v| {
            v["range_bytes"] = serde_json::json!([536870912u64, 67108864u64])
        });
        assert!(
            inverted.contains(": range_bytes: [536870912, 67108864] is not a range"),
            "{inverted}"
        );
        let more = error(s, |v| v["per_limit"][0]["survived"] = 99.into());
        assert!(
            more.ends_with("per_limit[0].survived: 99 survivals of 1 trials"),
            "{more}"
        );
        let rate = error(s, |v| v["per_limit"][0]["survival_rate"] = 7.5.into());
        assert!(
            rate.ends_with("per_limit[0].survival_rate: 7.5 is not a share (0 to 1)"),
            "{rate}"
        );
        let bad = error(s, |v| v["trials"][2]["peak_bytes"] = "lots".into());
        assert_eq!(
            bad,
            "x.json: not an oomsim search.json: trials[2].peak_bytes: invalid type: string \"lots\", expected u64"
        );
        let zero = error(s, |v| v["schema_version"] = 0.into());
        assert!(zero.ends_with("schema_version: 0 is not 1..3"), "{zero}");
    }

    #[test]
    fn nonsense_reports_are_refused_with_the_field() {
        let r = "leak-ramp.report.json";
        assert_eq!(error(r, |_| {}), "accepted");
        let back = error(r, |v| v["pods"][0]["samples"][3]["t_s"] = (-1.0).into());
        assert!(
            back.ends_with("pods[0].samples[3].t_s: -1 is not a time in seconds"),
            "{back}"
        );
        let bad = error(r, |v| v["pods"][0]["peak_bytes"] = "lots".into());
        assert_eq!(
            bad,
            "x.json: not an oomsim report.json: pods[0].peak_bytes: invalid type: string \"lots\", expected u64"
        );
    }
}
