//! Flags that follow the limit: `{EXPR:UNIT}` in a command's arguments and
//! environment, evaluated for each run (each search trial) with the
//! container's `limit` and `request` bound, in the formulas' expression
//! language, and printed as an integer of UNIT rounded down:
//! `-Xmx{limit*0.7:MiB}m`, `GOMEMLIMIT={limit*0.9:MiB}MiB`.
//!
//! The values are those the downward API's `resourceFieldRef` gives a
//! container (`limits.memory` falls back to the pod-level limit, then to the
//! node's allocatable; an unset `requests.memory` is 0).
//!
//! Braces that are not a template stay as written (`awk '{print $1}'`,
//! `python3 -c 'd = {}'`): a template ends in `:UNIT}` with a known unit, or
//! names `limit` or `request`.

use crate::search::sizing::{Expr, ExprError};

/// What a template may name.
pub const NAMES: [&str; 2] = ["limit", "request"];

/// Units a template prints in, and their size in bytes.
const UNITS: [(&str, u64); 17] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("Ki", 1 << 10),
    ("MiB", 1 << 20),
    ("Mi", 1 << 20),
    ("GiB", 1 << 30),
    ("Gi", 1 << 30),
    ("TiB", 1 << 40),
    ("Ti", 1 << 40),
    ("kB", 1_000),
    ("k", 1_000),
    ("MB", 1_000_000),
    ("M", 1_000_000),
    ("GB", 1_000_000_000),
    ("G", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("T", 1_000_000_000_000),
];

/// The values a run binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bindings {
    pub limit: u64,
    pub request: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("{{{template}}}: {source}")]
    Expr { template: String, source: ExprError },
    #[error("{{{template}}}: unknown unit {unit:?} (one of {})", unit_names())]
    Unit { template: String, unit: String },
    #[error("{{{template}}}: give the unit to print in, e.g. {{{template}:MiB}}")]
    NoUnit { template: String },
    #[error(
        "{{{template}}} is {value} at limit {limit} and request {request}: a flag cannot be negative"
    )]
    Negative {
        template: String,
        value: f64,
        limit: u64,
        request: u64,
    },
}

fn unit_names() -> String {
    UNITS.map(|(n, _)| n).join(", ")
}

/// One piece of a templated text.
#[derive(Debug, Clone, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Value {
        source: &'a str,
        expr: Expr,
        unit: u64,
    },
}

/// Split a text into literal pieces and templates; an error names the bad one.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open + 1..].find(['{', '}']) else {
            break;
        };
        let close = open + 1 + len;
        if rest.as_bytes()[close] == b'{' {
            // A brace inside braces: the outer one is literal text.
            out.push(Piece::Text(&rest[..close]));
            rest = &rest[close..];
            continue;
        }
        let inner = &rest[open + 1..close];
        match template(inner)? {
            Some(piece) => {
                out.push(Piece::Text(&rest[..open]));
                out.push(piece);
            }
            None => out.push(Piece::Text(&rest[..=close])),
        }
        rest = &rest[close + 1..];
    }
    out.push(Piece::Text(rest));
    out.retain(|p| *p != Piece::Text(""));
    Ok(out)
}

/// Whether the text names `limit` or `request` as a word.
fn names_a_binding(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| NAMES.contains(&w))
}

/// What is between braces: a template, or None for literal text.
fn template(inner: &str) -> Result<Option<Piece<'_>>, TemplateError> {
    let parse = |source: &str| {
        Expr::parse(source, &NAMES)
            .and_then(|e| e.check_divisors(&|_| None).map(|()| e))
            .map_err(|e| TemplateError::Expr {
                template: inner.to_string(),
                source: e,
            })
    };
    let Some((source, unit)) = inner.rsplit_once(':') else {
        return if names_a_binding(inner) {
            parse(inner)?;
            Err(TemplateError::NoUnit {
                template: inner.trim().to_string(),
            })
        } else {
            Ok(None)
        };
    };
    let unit = unit.trim();
    match UNITS.iter().find(|(n, _)| *n == unit) {
        Some(&(_, bytes)) => Ok(Some(Piece::Value {
            source,
            expr: parse(source)?,
            unit: bytes,
        })),
        None if names_a_binding(source) => Err(TemplateError::Unit {
            template: inner.to_string(),
            unit: unit.to_string(),
        }),
        None => Ok(None),
    }
}

/// Check a text's templates without binding them.
pub fn check(text: &str) -> Result<(), TemplateError> {
    pieces(text).map(drop)
}

/// The text with its templates evaluated.
pub fn render(text: &str, b: Bindings) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Value { source, expr, unit } => {
                let value = expr
                    .eval(&|name| match name {
                        "limit" => Some(b.limit as f64),
                        "request" => Some(b.request as f64),
                        _ => None,
                    })
                    .map_err(|e| TemplateError::Expr {
                        template: source.to_string(),
                        source: e,
                    })?;
                if value < 0.0 {
                    return Err(TemplateError::Negative {
                        template: source.to_string(),
                        value,
                        limit: b.limit,
                        request: b.request,
                    });
                }
                out.push_str(&((value / unit as f64).floor() as u64).to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT_256: Bindings = Bindings {
        limit: 256 << 20,
        request: 128 << 20,
    };

    #[test]
    fn flags_follow_the_limit() {
        for (text, want) in [
            ("-Xmx{limit*0.7:MiB}m", "-Xmx179m"),
            ("GOMEMLIMIT={limit*0.9:MiB}MiB", "GOMEMLIMIT=230MiB"),
            (
                "--max-old-space-size={limit * 0.7 : Mi}",
                "--max-old-space-size=179",
            ),
            ("{request:Ki}k and {limit-100Mi:M}", "131072k and 163"),
            ("{limit:B}", "268435456"),
            ("-Xmx{limit*0.75:GiB}g", "-Xmx0g"),
        ] {
            assert_eq!(render(text, AT_256).unwrap(), want, "{text}");
        }
        // A second trial at another limit gets its own value.
        let at_1g = Bindings {
            limit: 1 << 30,
            request: 0,
        };
        assert_eq!(render("-Xmx{limit*0.7:MiB}m", at_1g).unwrap(), "-Xmx716m");
    }

    #[test]
    fn braces_that_are_not_templates_stay() {
        for text in [
            "awk '{print $1}'",
            "python3 -c 'd = {}; e = {\"a\": 1}'",
            "{x: y}",
            "for i in {1..3}",
            "{",
            "}{",
            "{{limit:MiB}",
            "{a:{limit:Mi}}",
        ] {
            let want = match text {
                "{{limit:MiB}" => "{256".to_string(),
                "{a:{limit:Mi}}" => "{a:256}".to_string(),
                _ => text.to_string(),
            };
            assert_eq!(render(text, AT_256).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn bad_templates_are_named() {
        for (text, says) in [
            (
                "-Xmx{limit*:MiB}m",
                "{limit*:MiB}: the expression ends too early",
            ),
            ("-Xmx{limit*0.7:Mib}m", "unknown unit \"Mib\""),
            ("-Xmx{limits*0.7:MiB}m", "unknown name \"limits\""),
            (
                "-Xmx{limit*0.7}m",
                "give the unit to print in, e.g. {limit*0.7:MiB}",
            ),
        ] {
            let e = check(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        let e = render("{limit-1Gi:MiB}", AT_256).unwrap_err().to_string();
        assert!(e.contains("cannot be negative"), "{e}");
    }
}
