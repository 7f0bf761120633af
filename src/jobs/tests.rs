use super::*;

#[test]
fn axes_split_on_commas_outside_brackets() {
    let a = parse_axis("gpu.memory=40Gi, 80Gi").unwrap();
    assert_eq!(
        (a.key.as_str(), a.values),
        ("gpu.memory", vec!["40Gi".into(), "80Gi".into()])
    );
    let s = parse_axis("search.strategies=[chunked,mmap],[read-then-copy]").unwrap();
    assert_eq!(s.values, ["[chunked,mmap]", "[read-then-copy]"]);
    for bad in ["gpu.memory", "=1,2", "gpu.memory=", "k=1,,2", "k=[a,b"] {
        assert!(parse_axis(bad).is_err(), "{bad}");
    }
}

#[test]
fn cells_are_every_combination_the_first_key_slowest() {
    let axes = [
        parse_axis("gpu.memory=40Gi,80Gi").unwrap(),
        parse_axis("search.strategies=read-then-copy,chunked,mmap").unwrap(),
    ];
    let cells = expand(&axes).unwrap();
    assert_eq!(cells.len(), 6);
    assert_eq!(
        cells[4].label(),
        "gpu.memory=80Gi search.strategies=chunked"
    );
    assert_eq!(
        cells.iter().map(|c| c.index).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    assert_eq!(expand(&[]).unwrap()[0].label(), "base");
    let twice = [axes[0].clone(), axes[0].clone()];
    assert!(
        expand(&twice)
            .unwrap_err()
            .to_string()
            .contains("appears twice")
    );
}

const SCENARIO: &str = "name: s\ngpu: {backend: sim, memory: 80Gi}\nvars: {concurrency: 4}\npods:\n  - name: vllm\n    resources: {limits: {memory: 16Gi}}\n    workload: {kind: model-load, size: 14Gi}\nsearch:\n  pod: vllm\n  strategies: [read-then-copy, chunked]\n";

#[test]
fn values_land_where_their_path_says_typed_as_yaml_reads_them() {
    let cell = Cell {
        index: 3,
        values: vec![
            ("gpu.memory".into(), "40Gi".into()),
            ("vars.concurrency".into(), "16".into()),
            ("pods.vllm.resources.limits.memory".into(), "20Gi".into()),
            ("pods.0.timeout".into(), "2m".into()),
            ("search.strategies".into(), "mmap".into()),
        ],
    };
    let text = cell_scenario(SCENARIO, &cell).unwrap();
    let tree: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(tree["gpu"]["memory"], "40Gi");
    assert_eq!(tree["vars"]["concurrency"], 16);
    assert_eq!(tree["pods"][0]["resources"]["limits"]["memory"], "20Gi");
    assert_eq!(tree["pods"][0]["timeout"], "2m");
    // One value for a list field is a list of one.
    assert_eq!(tree["search"]["strategies"], serde_json::json!(["mmap"]));
    // The scenario the pod runs still loads.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cell.yaml");
    std::fs::write(&file, &text).unwrap();
    crate::scenario::load(&file, false).unwrap();
}

#[test]
fn a_path_that_leads_nowhere_names_the_step() {
    let mut tree: Value = serde_saphyr::from_str(SCENARIO).unwrap();
    let e = set(&mut tree, "gpus.memory", "1Gi")
        .unwrap_err()
        .to_string();
    assert_eq!(e, "--matrix gpus.memory: the scenario has no \"gpus\"");
    let e = set(&mut tree, "pods.api.resources", "x")
        .unwrap_err()
        .to_string();
    assert_eq!(e, "--matrix pods.api.resources: pods has no item \"api\"");
    let e = set(&mut tree, "name.first", "x").unwrap_err().to_string();
    assert_eq!(
        e,
        "--matrix name.first: name is a single value, not a map or list"
    );
}

/// A pod's last line as `oomsim k8s cell` prints it, over a shipped run's report.
fn line(index: usize, cells: usize, gpu_asked: bool, prefix: &str) -> String {
    let report: Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/plots/model-load-small.report.json"
    ))
    .unwrap();
    let line = serde_json::json!({
        "oomsim_cell": {"scenario": "model-load-small", "table": "5eed", "index": index, "cells": cells,
            "label": format!("gpu.memory={index}Gi"),
            "values": [["gpu.memory", format!("{index}Gi")]],
            "run_exit_code": 1, "gpu_asked": gpu_asked},
        "report": report,
        "searches": [],
    });
    format!("{prefix}{line}")
}

#[test]
fn merge_reads_kubectl_logs_and_names_what_is_missing_or_doubtful() {
    // `kubectl logs --prefix` of three pods of a four-cell Job, with their
    // other output; cell 2's pod never printed its line.
    let logs = [
        "[pod/oomsim-x-0-abcde/oomsim] /reports/cell-0/report.json".to_string(),
        line(0, 4, false, "[pod/oomsim-x-0-abcde/oomsim] "),
        line(1, 4, true, "[pod/oomsim-x-1-fghij/oomsim] "),
        line(3, 4, false, ""),
    ]
    .join("\n");
    let lines = merge::lines_in(&logs, "logs.txt").unwrap();
    assert_eq!(lines.len(), 3);
    let m = merge::merge(&lines).unwrap();
    assert_eq!((m.cells, m.rows.len()), (4, 4));
    assert_eq!(
        m.rows.iter().map(|r| r.index).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert!(
        m.rows[2].notes[0].starts_with("no report"),
        "{:?}",
        m.rows[2]
    );
    // The shipped report ran on the sim device: flagged where a GPU was asked.
    assert_eq!(m.rows[1].device, "sim");
    assert!(
        m.rows[1]
            .notes
            .iter()
            .any(|n| n.contains("sim device where a GPU was asked"))
    );
    assert!(!m.rows[0].notes.iter().any(|n| n.contains("sim device")));
    // model-load-small's read-then-copy pod is OOMKilled, its mmap pod completes.
    assert!(
        m.rows[0]
            .verdicts
            .iter()
            .any(|v| v.contains("OOMKilled (137)")),
        "{:?}",
        m.rows[0].verdicts
    );
    let text = merge::text(&m);
    assert!(
        text.starts_with("Scenario model-load-small: 4 cell(s), 3 with a report"),
        "{text}"
    );
    // A report that is not a cell's is no cell (merge then says what it is).
    let plain = include_str!("../../tests/fixtures/plots/leak-ramp.report.json");
    assert!(merge::lines_in(plain, "report.json").unwrap().is_empty());
    // A line that does not read is an error naming the file, not a skip.
    let bad = format!("{}x", &line(0, 1, false, "")[..40]);
    assert!(
        merge::lines_in(&bad, "bad.log")
            .unwrap_err()
            .to_string()
            .starts_with("bad.log: ")
    );
}
