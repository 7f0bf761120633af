//! The scenario loader: YAML text to a checked plan, or one error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = oomsim::scenario::parse(text, "fuzz.yaml", false);
});
