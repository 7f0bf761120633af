//! The matrix as Kubernetes objects, checked against the API server's own
//! OpenAPI documents offline; and a dry run whose cells run for real
//! through the pods' entry point and merge.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::openapi::Schemas;
use crate::{oomsim, text};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn schemas() -> Schemas {
    Schemas::load(&[
        &format!("{ROOT}/tests/k8s/apis__batch__v1_openapi.json"),
        &format!("{ROOT}/tests/k8s/core_v1_configmap_openapi.json"),
    ])
}

fn render(args: &[&str]) -> Vec<Value> {
    let o = oomsim().args(["k8s", "job"]).args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let yaml = String::from_utf8(o.stdout).unwrap();
    serde_saphyr::from_multiple::<Value>(&yaml).unwrap()
}

pub fn the_job_and_config_map_match_the_kubernetes_openapi_schema() {
    let docs = render(&[
        &format!("{ROOT}/scenarios/vllm-14g.yaml"),
        "--matrix",
        "gpu.memory=40Gi,80Gi",
        "--gpu-type",
        "nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB",
        "--image",
        "registry.example/oomsim:1",
        "--parallelism",
        "1",
    ]);
    assert_eq!(docs.len(), 2, "a ConfigMap and a Job");
    let (config, job) = (&docs[0], &docs[1]);
    let s = schemas();
    assert_eq!(
        s.check(config, "io.k8s.api.core.v1.ConfigMap"),
        Vec::<String>::new()
    );
    assert_eq!(
        s.check(job, "io.k8s.api.batch.v1.Job"),
        Vec::<String>::new()
    );
    // What the Job asks of the cluster.
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        (spec["completions"].as_i64(), spec["parallelism"].as_i64()),
        (Some(2), Some(1))
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(
        pod["nodeSelector"]["nvidia.com/gpu.product"],
        "NVIDIA-A100-SXM4-80GB"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["command"][1], "k8s");
    assert_eq!(c["command"][2], "cell");
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "1");
    // The pod holds the search's top (19Gi) with room for oomsim.
    let memory = c["resources"]["limits"]["memory"].as_str().unwrap();
    let mi: u64 = memory.strip_suffix("Mi").unwrap().parse().unwrap();
    assert!(mi > 19 * 1024 && mi < 22 * 1024, "{memory}");
    assert_eq!(c["resources"]["requests"]["memory"], memory);
    // The ConfigMap carries the scenario as written and the two cells.
    let cells: Value =
        serde_json::from_str(config["data"]["cells.json"].as_str().unwrap()).unwrap();
    assert_eq!(cells["cells"].as_array().unwrap().len(), 2);
    assert_eq!(
        config["data"]["scenario.yaml"].as_str().unwrap(),
        std::fs::read_to_string(format!("{ROOT}/scenarios/vllm-14g.yaml")).unwrap()
    );
    // The check itself can fail: a misspelt field, a string count, a
    // missing container name.
    let mut bad = job.clone();
    bad["spec"]["completionMod"] = "Indexed".into();
    bad["spec"]["completions"] = "two".into();
    bad["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    let errors = s.check(&bad, "io.k8s.api.batch.v1.Job");
    assert_eq!(errors.len(), 3, "{errors:?}");
}

pub fn a_matrix_key_that_leads_nowhere_is_one_line() {
    let o = oomsim()
        .args(["k8s", "job", &format!("{ROOT}/scenarios/vllm-14g.yaml")])
        .args(["--matrix", "gpus.memory=40Gi"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "oomsim: --matrix gpus.memory: the scenario has no \"gpus\"\n"
    );
    assert!(o.stdout.is_empty(), "nothing printed before the error");
    // A value the scenario cannot take is refused for its cell, before any
    // output, and the cells written to check them are gone.
    let child = oomsim()
        .args(["k8s", "job", &format!("{ROOT}/scenarios/vllm-14g.yaml")])
        .args(["--matrix", "gpu.memory=40Gi,lots"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("oomsim: cell 1 (gpu.memory=lots): "),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    let checked = std::env::temp_dir().join(format!("oomsim-k8s-check-{pid}"));
    assert!(!checked.exists(), "{} left behind", checked.display());
}

/// `oomsim k8s job` of `yaml` (written into `dir`) with one matrix key, as a
/// dry run into `dir/cells`; its output, the cells' folder and the merge.
fn dry_run(dir: &Path, yaml: &str, matrix: &str) -> (std::process::Output, PathBuf, Value) {
    let scenario = dir.join("s.yaml");
    std::fs::write(&scenario, yaml).unwrap();
    let out = dir.join("cells");
    let o = oomsim()
        .args(["k8s", "job"])
        .arg(&scenario)
        .args(["--matrix", matrix, "--dry-run", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let merged = std::fs::read_to_string(out.join("merged/merge.json"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    (o, out, merged)
}

/// Two real cells, one after another, through `oomsim k8s cell`; their
/// lines merge into the table the dry run printed.
pub fn a_dry_run_runs_each_cell_as_its_pod_would_and_merges_them() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out, merged) = dry_run(
        dir.path(),
        "name: two-cells\npods:\n  - name: app\n    resources: {limits: {memory: 96Mi}}\n    workload: {kind: steady, size: 24Mi, duration: 200ms}\nsearch:\n  pod: app\n  range: 16Mi..96Mi\n  repeat: 1\n",
        "pods.app.workload.size=24Mi,48Mi",
    );
    let printed = text(&o);
    assert_eq!(o.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("Scenario two-cells: 2 cell(s), 2 with a report"),
        "{printed}"
    );
    let rows = merged["rows"].as_array().unwrap();
    for (row, size_mi) in rows.iter().zip([24u64, 48]) {
        let safe = row["smallest_safe"][0][1].as_u64().unwrap();
        // The smallest safe limit holds the steady size, within the default precision.
        assert!(
            safe >= size_mi << 20 && safe <= (size_mi + 12) << 20,
            "{size_mi}Mi: {safe}"
        );
        assert_eq!(row["ok"], true, "{row}");
    }
    assert!(out.join("merged/report.html").is_file());
    assert!(out.join("merged/matrix.png").is_file());
    // The pods' lines, as `kubectl logs --prefix` shows them, merge the same.
    let logs: String = (0..2)
        .map(|i| {
            let line = std::fs::read_to_string(out.join(format!("cell-{i}/cell.json"))).unwrap();
            format!("[pod/oomsim-two-cells-{i}-x/oomsim] {line}")
        })
        .collect();
    let log_file = dir.path().join("logs.txt");
    std::fs::write(&log_file, logs).unwrap();
    let m = oomsim().arg("merge").arg(&log_file).output().unwrap();
    assert_eq!(m.status.code(), Some(0), "{}", text(&m));
    let table = String::from_utf8_lossy(&m.stdout);
    assert!(
        table.starts_with("Scenario two-cells: 2 cell(s), 2 with a report"),
        "{table}"
    );
    assert!(table.contains("pods.app.workload.size=48Mi"), "{table}");
    assert_cleaned_dir(&out);
}

/// No cgroup of the dry run's cells is left.
fn assert_cleaned_dir(out: &Path) {
    for i in 0..2 {
        let report = crate::report(&out.join(format!("cell-{i}")));
        crate::assert_cleaned(&report);
    }
}

/// A cell the host cannot run fails alone: the others run and merge, and
/// the merged table names the missing one.
pub fn a_cell_the_host_cannot_run_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (o, _, merged) = dry_run(
        dir.path(),
        "name: too-big\npods:\n  - name: app\n    resources: {limits: {memory: 64Mi}}\n    workload: {kind: steady, size: 8Mi, duration: 100ms}\n",
        "pods.app.resources.limits.memory=64Mi,1Pi",
    );
    let printed = text(&o);
    assert_eq!(o.status.code(), Some(4), "{printed}");
    assert!(
        printed.contains("oomsim: cell 1 (pods.app.resources.limits.memory=1Pi): "),
        "{printed}"
    );
    let rows = merged["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{merged}");
    assert_eq!(rows[0]["ok"], true, "{}", rows[0]);
    assert!(
        rows[1]["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("no report"),
        "{}",
        rows[1]
    );
}
