//! Kubernetes quantities, durations, ranges and eviction thresholds: any
//! text gives a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oomsim::k8s::Threshold;
use oomsim::units;

fuzz_target!(|text: &str| {
    let _ = units::parse_bytes(text);
    let _ = units::parse_quantity_scaled(text, 3);
    let _ = units::parse_duration(text);
    let _ = units::parse_range(text);
    let _ = Threshold::parse(text);
    if let Ok(b) = units::parse_bytes(text) {
        // What oomsim prints of a quantity reads back as the same bytes or close.
        let _ = units::parse_bytes(&units::fmt_quantity(b));
    }
});
