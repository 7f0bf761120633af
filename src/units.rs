//! Kubernetes quantities (`512Mi`, `1.5G`, `129e6`, `100m`) and Go-style
//! durations (`30s`, `1m30s`, `250ms`), parsed the way apimachinery and
//! `time.ParseDuration` parse them, plus the formatting used in reports.
//!
//! A quantity is kept as an exact decimal mantissa and scaled only when it is
//! turned into an integer, so `0.1Gi` and `100m` round the way the API server
//! rounds them (up, toward positive infinity).

use std::time::Duration;

/// Why a quantity or duration did not parse; the caller adds file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty value")]
    Empty,
    #[error("{0:?} is not a number with an optional suffix (e.g. 512Mi, 1.5G, 129e6)")]
    Syntax(String),
    #[error(
        "{value:?} has an unknown suffix {suffix:?} (use Ki Mi Gi Ti Pi Ei, k M G T P E, m, or an exponent like e6)"
    )]
    Suffix { value: String, suffix: String },
    #[error("{0:?} is negative; memory cannot be")]
    Negative(String),
    #[error("{0:?} is too large (over 2^63-1)")]
    Overflow(String),
    #[error("{0:?} is not a duration (use units ns us ms s m h, e.g. 30s, 1m30s, 250ms)")]
    Duration(String),
    #[error("{0:?} is not a range (write LO..HI, e.g. 64Mi..2Gi)")]
    Range(String),
    #[error("{0:?}: the low end must be above zero and below the high end")]
    RangeOrder(String),
}

/// Parse a Kubernetes quantity and return `ceil(value * 10^scale)`.
///
/// `scale = 0` gives bytes, `scale = 3` gives milli-units (CPU).
pub fn parse_quantity_scaled(text: &str, scale: i32) -> Result<u64, UnitError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    let (negative, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(num_end);
    if !number.bytes().any(|b| b.is_ascii_digit()) || number.matches('.').count() > 1 {
        return Err(UnitError::Syntax(text.to_string()));
    }
    let (pow2, mut pow10) = suffix_exponents(suffix).ok_or_else(|| UnitError::Suffix {
        value: text.to_string(),
        suffix: suffix.to_string(),
    })?;
    let overflow = || UnitError::Overflow(text.to_string());
    let mut mantissa: u128 = 0;
    let mut seen_point = false;
    for b in number.bytes() {
        if b == b'.' {
            seen_point = true;
            continue;
        }
        // Digits past 38 significant places cannot change a result that must fit in i64.
        if mantissa > u128::MAX / 100 {
            if !seen_point {
                return Err(overflow());
            }
            continue;
        }
        mantissa = mantissa * 10 + u128::from(b - b'0');
        if seen_point {
            pow10 -= 1;
        }
    }
    if negative && mantissa != 0 {
        return Err(UnitError::Negative(text.to_string()));
    }
    pow10 += scale;
    let shifted = mantissa
        .checked_shl(pow2)
        .filter(|v| v >> pow2 == mantissa)
        .ok_or_else(overflow)?;
    let value = if pow10 >= 0 {
        10u128
            .checked_pow(pow10 as u32)
            .and_then(|p| shifted.checked_mul(p))
            .ok_or_else(overflow)?
    } else {
        match 10u128.checked_pow(pow10.unsigned_abs()) {
            Some(div) => shifted.div_ceil(div),
            None => u128::from(shifted != 0),
        }
    };
    if value > i64::MAX as u128 {
        return Err(overflow());
    }
    Ok(value as u64)
}

/// Parse a memory quantity into bytes.
pub fn parse_bytes(text: &str) -> Result<u64, UnitError> {
    parse_quantity_scaled(text, 0)
}

/// (power of two, power of ten) for a quantity suffix, or None when unknown.
fn suffix_exponents(suffix: &str) -> Option<(u32, i32)> {
    let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if let Some(i) = binary.iter().position(|b| *b == suffix) {
        return Some((10 * (i as u32 + 1), 0));
    }
    let decimal = match suffix {
        "" => Some(0),
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = decimal {
        return Some((0, e));
    }
    let exp = suffix.strip_prefix(['e', 'E'])?;
    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 4 {
        return None;
    }
    exp.parse::<i32>().ok().map(|e| (0, e))
}

/// Parse `LO..HI` (two memory quantities, LO < HI).
pub fn parse_range(text: &str) -> Result<(u64, u64), UnitError> {
    let (lo, hi) = text
        .split_once("..")
        .ok_or_else(|| UnitError::Range(text.to_string()))?;
    let (lo, hi) = (parse_bytes(lo)?, parse_bytes(hi)?);
    if lo >= hi || lo == 0 {
        return Err(UnitError::RangeOrder(text.to_string()));
    }
    Ok((lo, hi))
}

/// Parse a Go-style duration: a sequence of decimal numbers with units.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let s = text.trim();
    let bad = || UnitError::Duration(text.to_string());
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[u_end..];
        total_ns += number * unit_ns;
    }
    if !total_ns.is_finite() || total_ns > 1e18 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total_ns.round() as u64))
}

/// Bytes as Kubernetes prints a BinarySI quantity (`Quantity.String()`,
/// apimachinery's CanonicalizeBytes): the largest exact binary suffix, else
/// plain bytes; below 1024 it is written as DecimalSI (`1000` is `1k`).
pub fn fmt_quantity(bytes: u64) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if bytes == 0 {
        return "0".into();
    }
    if bytes < 1024 {
        return if bytes.is_multiple_of(1000) {
            format!("{}k", bytes / 1000)
        } else {
            bytes.to_string()
        };
    }
    let mut value = bytes;
    let mut unit = None;
    for suffix in SUFFIXES {
        if !value.is_multiple_of(1024) {
            break;
        }
        value /= 1024;
        unit = Some(suffix);
    }
    format!("{value}{}", unit.unwrap_or(""))
}

/// Bytes in a human unit with one decimal (`63.2Mi`), for text output.
pub fn fmt_human(bytes: u64) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64;
    let mut unit = "";
    for suffix in SUFFIXES {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = suffix;
    }
    format!("{value:.1}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apimachinery_examples() {
        // The examples from the Kubernetes docs: all the same 129 MB-ish family.
        assert_eq!(parse_bytes("128974848").unwrap(), 128_974_848);
        assert_eq!(parse_bytes("129e6").unwrap(), 129_000_000);
        assert_eq!(parse_bytes("129M").unwrap(), 129_000_000);
        assert_eq!(parse_bytes("128974848000m").unwrap(), 128_974_848);
        assert_eq!(parse_bytes("123Mi").unwrap(), 123 * 1024 * 1024);
        assert_eq!(parse_bytes("0.5Gi").unwrap(), 512 * 1024 * 1024);
        assert_eq!(parse_bytes("1.5G").unwrap(), 1_500_000_000);
        assert_eq!(parse_bytes("1Ki").unwrap(), 1024);
        assert_eq!(parse_bytes("1E").unwrap(), 1_000_000_000_000_000_000);
        assert_eq!(parse_bytes("1e3").unwrap(), 1000);
        assert_eq!(parse_bytes("1E3").unwrap(), 1000);
        assert_eq!(parse_bytes("+5k").unwrap(), 5000);
        assert_eq!(parse_bytes(".5k").unwrap(), 500);
        assert_eq!(parse_bytes("0").unwrap(), 0);
        assert_eq!(parse_bytes("-0").unwrap(), 0);
    }

    #[test]
    fn rounds_up_like_value() {
        // Quantity.Value() rounds toward +inf: 100m bytes is 1 byte.
        assert_eq!(parse_bytes("100m").unwrap(), 1);
        assert_eq!(parse_bytes("1.0001").unwrap(), 2);
        assert_eq!(parse_bytes("0.1Ki").unwrap(), 103);
        assert_eq!(parse_bytes("1e-30").unwrap(), 1);
        assert_eq!(parse_quantity_scaled("100m", 3).unwrap(), 100);
        assert_eq!(parse_quantity_scaled("1.5", 3).unwrap(), 1500);
    }

    #[test]
    fn rejects_bad_quantities() {
        assert!(matches!(parse_bytes("12Qi"), Err(UnitError::Suffix { .. })));
        assert!(matches!(parse_bytes("-5Mi"), Err(UnitError::Negative(_))));
        assert!(matches!(parse_bytes("16Ei"), Err(UnitError::Overflow(_))));
        assert!(matches!(
            parse_bytes("99999999999999999999999999999999999999999"),
            Err(UnitError::Overflow(_))
        ));
        assert!(matches!(parse_bytes("1e400"), Err(UnitError::Overflow(_))));
        assert!(matches!(parse_bytes("1e30"), Err(UnitError::Overflow(_))));
        assert!(matches!(parse_bytes("Mi"), Err(UnitError::Syntax(_))));
        assert!(matches!(parse_bytes("1.2.3"), Err(UnitError::Syntax(_))));
        assert!(matches!(parse_bytes("1K"), Err(UnitError::Suffix { .. })));
        assert!(matches!(parse_bytes("1 Mi"), Err(UnitError::Suffix { .. })));
        assert_eq!(parse_bytes(""), Err(UnitError::Empty));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("64Mi..1Gi").unwrap(), (64 << 20, 1 << 30));
        let order = |t: &str| Err(UnitError::RangeOrder(t.into()));
        assert_eq!(parse_range("1Gi..64Mi"), order("1Gi..64Mi"));
        assert_eq!(parse_range("0..64Mi"), order("0..64Mi"));
        assert_eq!(parse_range("64Mi"), Err(UnitError::Range("64Mi".into())));
        assert!(
            parse_range("64Qi..1Gi")
                .unwrap_err()
                .to_string()
                .contains("Qi")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_quantity(64 * 1024 * 1024), "64Mi");
        assert_eq!(fmt_quantity(1536 * 1024 * 1024), "1536Mi");
        // apimachinery's own examples: below 1024, DecimalSI.
        assert_eq!(fmt_quantity(1000), "1k");
        assert_eq!(fmt_quantity(1010), "1010");
        assert_eq!(fmt_quantity(1024), "1Ki");
        assert_eq!(fmt_quantity(1536), "1536");
        assert_eq!(fmt_quantity(1_500_000), "1500000");
        assert_eq!(fmt_quantity(59_875_328), "58472Ki");
        assert_eq!(fmt_human(66_271_232), "63.2Mi");
    }
}
