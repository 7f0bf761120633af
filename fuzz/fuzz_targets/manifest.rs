//! The manifest reader: Pods, Deployments, Jobs, Lists, YAML or JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = oomsim::k8s::pods_from_manifest(text, "fuzz.yaml");
});
