//! report.html in a real browser: each command's page is written by the
//! binary, refers to nothing outside itself, and renders in headless
//! Chromium (Debian's `chromium`): a screenshot shows the header, every
//! section's heading rule, and the charts' own colours.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{oomsim, text};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plots")
        .join(name)
}

/// The page each command writes, from saved reports and the shipped model
/// configs: (what, folder holding report.html).
fn pages(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let ok = |what: &str, o: std::process::Output, codes: &[i32]| {
        assert!(
            o.status.code().is_some_and(|c| codes.contains(&c)),
            "{what}: {}",
            text(&o)
        );
    };
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let report = run.join("report.json");
    std::fs::copy(fixture("leak-ramp.report.json"), &report).unwrap();
    ok(
        "plot",
        oomsim().arg("plot").arg(&report).output().unwrap(),
        &[0],
    );
    let search = dir.join("search");
    std::fs::create_dir_all(&search).unwrap();
    let saved = search.join("search.json");
    std::fs::copy(fixture("sizing-python.search.json"), &saved).unwrap();
    ok(
        "plot search",
        oomsim().arg("plot").arg(&saved).output().unwrap(),
        &[0],
    );
    let compare = dir.join("compare");
    ok(
        "compare",
        oomsim()
            .arg("compare")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("reports/baselines/sizing-python/search.json"),
            )
            .arg(&saved)
            .arg("--out")
            .arg(&compare)
            .output()
            .unwrap(),
        &[0, 1],
    );
    let plan = dir.join("plan");
    ok(
        "vllm plan",
        oomsim()
            .args([
                "vllm",
                "plan",
                "--gpu-memory",
                "24Gi",
                "--max-model-len",
                "8192",
            ])
            .arg("--model")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/models/llama-3-8b.json"))
            .arg("--plot")
            .arg(&plan)
            .arg("--runs")
            .arg(fixture("vllm-paged-preempt.report.json"))
            .output()
            .unwrap(),
        &[0, 1],
    );
    let diagnose = dir.join("diagnose");
    let evidence = dir.join("describe.txt");
    std::fs::write(
        &evidence,
        "    Last State:     Terminated\n      Reason:       OOMKilled\n      Exit Code:    137\n    Limits:\n      memory:  256Mi\n",
    )
    .unwrap();
    ok(
        "diagnose",
        oomsim()
            .arg("diagnose")
            .arg(&evidence)
            .arg("--out")
            .arg(&diagnose)
            .output()
            .unwrap(),
        &[0],
    );
    vec![
        ("run", run),
        ("search", search),
        ("compare", compare),
        ("vllm plan", plan),
        ("diagnose", diagnose),
    ]
}

/// Every command's page exists, is whole, and names nothing outside itself.
pub fn every_page_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    for (what, folder) in pages(dir.path()) {
        let html = std::fs::read_to_string(folder.join("report.html"))
            .unwrap_or_else(|e| panic!("{what}: report.html: {e}"));
        assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
        for external in [
            "http:", "https:", "src=", "href=", "@import", "url(", "<script", "<link",
        ] {
            assert!(
                !html.contains(external),
                "{what}: the page names {external:?}"
            );
        }
        assert!(html.contains("<section id=\"verdicts\">"), "{what}");
        if what != "diagnose" {
            assert!(html.contains("<svg"), "{what}: the charts are inline");
        }
    }
}

/// A screenshot of `page` by headless Chromium, as RGB rows.
fn screenshot(page: &Path, png: &Path) -> (usize, usize, Vec<u8>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,6000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    assert!(
        out.status.success() && png.exists(),
        "chromium: {}",
        text(&out)
    );
    let decoder = png::Decoder::new(std::fs::File::open(png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb: Vec<u8> = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width as usize, info.height as usize, rgb)
}

fn near(p: &[u8], c: [u8; 3]) -> bool {
    p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 6)
}

/// Runs of consecutive rows in which a wide run of `c` is drawn, as
/// (first row, rows): the header band is thick (broken where its title's
/// white letters are), each section's heading rule is 2 px.
fn bands(w: usize, h: usize, rgb: &[u8], c: [u8; 3], min_run: usize) -> Vec<(usize, usize)> {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut inside = false;
    for y in 0..h {
        let row = &rgb[y * w * 3..(y + 1) * w * 3];
        let mut run = 0;
        let mut best = 0;
        for p in row.chunks(3) {
            run = if near(p, c) { run + 1 } else { 0 };
            best = best.max(run);
        }
        let hit = best >= min_run;
        match (hit, inside, groups.last_mut()) {
            (true, true, Some(g)) => g.1 += 1,
            (true, _, _) => groups.push((y, 1)),
            _ => {}
        }
        inside = hit;
    }
    groups
}

/// Each page, screenshotted in Chromium, shows its header, one heading rule
/// per section, and its charts in their own colours.
pub fn every_page_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (what, folder) in pages(dir.path()) {
        let page = folder.join("report.html");
        let html = std::fs::read_to_string(&page).unwrap();
        let sections = html.matches("<section id=").count();
        let png = shots.join(format!("{}.png", what.replace(' ', "-")));
        let (w, h, rgb) = screenshot(&page, &png);
        assert!(w >= 1000 && h >= 1000, "{what}: {w}x{h}");
        // The header band from the top, and each section's heading rule
        // under it: #0b3c5d.
        let found = bands(w, h, &rgb, [0x0b, 0x3c, 0x5d], 600);
        assert_eq!(
            found.first().map(|b| b.0),
            Some(0),
            "{what}: the header: {found:?}"
        );
        let rules = found.iter().filter(|b| b.1 <= 4).count();
        assert_eq!(
            rules,
            sections,
            "{what}: {sections} section rules in {}, found {found:?}",
            png.display()
        );
        if what != "diagnose" {
            // The charts' own colours (Okabe-Ito's) are on screen: the
            // inline SVG rendered.
            let chart = [
                [0x00, 0x72, 0xb2],
                [0xe6, 0x9f, 0x00],
                [0x00, 0x9e, 0x73],
                [0xcc, 0x79, 0xa7],
                [0x56, 0xb4, 0xe9],
                [0xd5, 0x5e, 0x00],
            ];
            let drawn = rgb
                .chunks(3)
                .filter(|p| chart.iter().any(|c| near(p, *c)))
                .count();
            assert!(
                drawn > 150,
                "{what}: {drawn} chart pixels in {}",
                png.display()
            );
        }
    }
}
