//! Search, compare and plots against real runs.

use std::path::Path;

use crate::{oomsim, text};

fn search_python(mib: u32, out: &Path) -> serde_json::Value {
    let program = format!("b = bytearray({mib} << 20)");
    let o = oomsim()
        .args(["search", "--range", "32Mi..512Mi", "--repeat", "2", "--out"])
        .arg(out)
        .args(["--", "python3", "-c", &program])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("search.json")).unwrap()).unwrap();
    s
}

fn assert_png_svg(stem: &Path, labels: &[&str]) {
    let png = std::fs::read(stem.with_extension("png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1000);
    assert!(png.len() > 10_000, "a blank PNG would be tiny");
    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    assert!(
        svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "SVG document"
    );
    assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
    for label in labels {
        assert!(svg.contains(label), "{} lacks {label:?}", stem.display());
    }
}

pub fn search_finds_the_kernel_peak_within_precision() {
    let dir = tempfile::tempdir().unwrap();
    let s = search_python(128, dir.path());
    let min_safe = s["min_safe_limit_bytes"].as_u64().unwrap();
    let precision = s["precision_bytes"].as_u64().unwrap();
    // The kernel's own peak in the trials that survived at the answer.
    let at_answer: Vec<u64> = s["trials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["limit_bytes"] == min_safe && t["survived"] == true)
        .map(|t| t["peak_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(at_answer.len(), 2, "--repeat 2 at the answer");
    let peak = *at_answer.iter().max().unwrap();
    assert!(peak <= min_safe, "peak {peak} above the limit {min_safe}");
    assert!(
        min_safe - peak <= precision + (1 << 20),
        "answer {min_safe} not within {precision} of the peak {peak}"
    );
    // Just below the answer, something died.
    let below = min_safe - precision;
    assert!(
        s["trials"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["survived"] == false && t["limit_bytes"].as_u64().unwrap() >= below)
    );
    let trials = s["trials_count"].as_u64().unwrap();
    assert!(trials <= 20, "{trials} trials for a 480Mi range at 4Mi");
    assert!(
        s["formulas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "peak+30%")
    );
    assert_png_svg(
        &dir.path().join("search"),
        &["trials that survived", "smallest safe", "peak+30%"],
    );
    assert_png_svg(
        &dir.path().join("distribution"),
        &["peak of each surviving trial", "time to OOMKilled"],
    );
    // The page of the search, with its charts inline and its formula table.
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(page.contains("<svg") && page.contains("peak+30%"));
}

pub fn compare_flags_a_real_regression() {
    let base = tempfile::tempdir().unwrap();
    let grown = tempfile::tempdir().unwrap();
    search_python(64, base.path());
    search_python(128, grown.path());
    let b = base.path().join("search.json");
    let g = grown.path().join("search.json");
    let junit = grown.path().join("junit.xml");
    let o = oomsim()
        .arg("compare")
        .arg(&b)
        .arg(&g)
        .arg("--junit")
        .arg(&junit)
        .arg("--plot")
        .arg(grown.path().join("cmp"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 regression(s)"));
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("failures=\"1\"")
    );
    assert_png_svg(&grown.path().join("cmp"), &["baseline"]);
    let o = oomsim().arg("compare").arg(&b).arg(&b).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = oomsim().arg("compare").arg(&g).arg(&b).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "a smaller limit is no regression: {}",
        text(&o)
    );
}

pub fn compare_reports_pod_that_now_dies() {
    let run = |program: &str, dir: &Path| {
        oomsim()
            .args(["run", "--limit", "64Mi", "--out"])
            .arg(dir)
            .args(["--", "python3", "-c", program])
            .output()
            .unwrap();
        dir.join("report.json")
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ok = run("b = bytearray(8 << 20)", a.path());
    let dead = run("b = bytearray(256 << 20)", b.path());
    assert_png_svg(&a.path().join("timeline"), &["python3", "limit"]);
    let o = oomsim()
        .arg("compare")
        .arg(&ok)
        .arg(&dead)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("now OOMKilled"));
    // Redraw from the saved report.
    let redraw = tempfile::tempdir().unwrap();
    let o = oomsim()
        .arg("plot")
        .arg(&dead)
        .arg("--out")
        .arg(redraw.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_png_svg(&redraw.path().join("timeline"), &["OOMKilled"]);
}

pub fn compare_refuses_mixed_files() {
    let base = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/reports/baselines/sizing-python"
    );
    let o = oomsim()
        .arg("compare")
        .arg(format!("{base}/report.json"))
        .arg(format!("{base}/search.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = oomsim()
        .arg("compare")
        .arg(format!("{base}/search.json"))
        .arg(format!("{base}/search.json"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "the shipped baseline parses: {}",
        text(&o)
    );
}
