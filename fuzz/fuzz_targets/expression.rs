//! The expression language of formulas and `{EXPR:UNIT}` templates:
//! parsed, checked for constant zero divisors and evaluated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oomsim::search::sizing::{BUILTIN_VARS, Expr};

fuzz_target!(|text: &str| {
    let known = [&BUILTIN_VARS[..], &["model", "limit", "request"]].concat();
    if let Ok(e) = Expr::parse(text, &known) {
        let _ = e.check_divisors(&|n| (n == "model").then_some(1.5e9));
        let _ = e.eval(&|n| Some(n.len() as f64 * 1e6));
    }
    let _ = oomsim::template::check(text);
});
