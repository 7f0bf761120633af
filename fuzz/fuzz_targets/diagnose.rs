//! diagnose's evidence parsers: kubectl describe / get -o yaml|json,
//! events, kernel logs, container logs and saved reports, each file read
//! for what it is and every finding classified.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = oomsim::diagnose::diagnose(&[("evidence".to_string(), text.to_string())]);
});
