//! Integration tests: the real binary, real cgroups, real kernel OOM kills.
//!
//! A custom harness (libtest-mimic) so that tests needing root and a memory
//! controller show as `ignored` in the runner's own summary when this host
//! lacks them, with the reason printed once above it. `--include-ignored`
//! runs them anyway (they then fail, saying why); with
//! OOMSIM_REQUIRE_CGROUPS=1 (set in CI) they are never ignored.

mod bad_input;
mod diagnose;
mod faults;
mod gpu;
mod harness;
mod hostile;
mod k8s;
mod node;
mod openapi;
mod pages;
mod pods;
mod runtimes;
mod sizing;
mod soak;
mod vllm;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};

use libtest_mimic::{Arguments, Failed, Trial};

/// `module::name` paths into (name, fn) pairs.
macro_rules! tests {
    ($($m:ident :: $f:ident),* $(,)?) => {
        &[$((concat!(stringify!($m), "::", stringify!($f)), $m::$f as fn())),*]
    };
}

/// Tests that need nothing but the binary.
const PLAIN: &[(&str, fn())] = tests![
    bad_input::malformed_yaml,
    bad_input::tabs,
    bad_input::empty_file,
    bad_input::unknown_field,
    bad_input::bad_quantities,
    bad_input::missing_file,
    bad_input::bad_command_flags,
    bad_input::validate_accepts_shipped_scenarios,
    bad_input::bad_containers_and_manifests,
    bad_input::bad_pods_from_manifests,
    diagnose::stdin_and_files_and_the_json_contract,
    diagnose::bad_input_is_one_line_and_nothing_is_written,
    diagnose::recommend_patches_a_manifest_from_a_search,
    node::node_plan_reads_kubectl_yaml,
    pages::every_page_is_self_contained,
    node::node_plan_reads_a_deployment_with_init_and_sidecar_containers,
    sizing::compare_refuses_mixed_files,
    vllm::plan_json_has_the_budget_and_the_start_check,
    vllm::bad_model_configs_are_one_line_and_exit_2,
    hostile::malformed_corpus_gives_the_exact_line,
    hostile::yaml_bombs_are_refused_with_bounded_memory,
    hostile::devices_as_configs_are_refused_after_the_bound,
    hostile::a_closed_stdout_ends_quietly,
    k8s::the_job_and_config_map_match_the_kubernetes_openapi_schema,
    k8s::a_matrix_key_that_leads_nowhere_is_one_line,
];

/// Tests that create real cgroups: root and a memory controller.
const CGROUPS: &[(&str, fn())] = tests![
    bad_input::limit_larger_than_host_is_refused,
    gpu::two_pods_share_one_sim_device_and_one_gets_cuda_oom,
    gpu::read_then_copy_256mi_dies_in_200mi_completes_in_400mi_and_mmap_fits_200mi,
    gpu::cuda_backend_runs_where_libcuda_is_present_and_refuses_clearly_where_not,
    harness::leak_in_64mi_is_oomkilled,
    hostile::a_workload_panic_is_exit_4_not_a_verdict,
    faults::a_cgroup_removed_mid_run_stops_the_pod_in_one_line,
    faults::a_kmsg_that_is_not_the_kernel_log_leaves_the_counter,
    faults::a_full_disk_keeps_the_previous_report,
    faults::a_child_that_ignores_sigterm_is_killed,
    k8s::a_dry_run_runs_each_cell_as_its_pod_would_and_merges_them,
    k8s::a_cell_the_host_cannot_run_fails_alone,
    soak::random_stops_leave_nothing_behind,
    diagnose::emitted_scenario_reproduces_the_evidence,
    harness::kill_dash_9_is_error_137_not_oom,
    harness::sigterm_is_143,
    harness::exit_3_is_app_error,
    harness::fitting_program_completes,
    harness::python_over_its_limit_is_oomkilled,
    harness::worker_oom_kill_then_exit_0_is_oomkilled_with_code_0,
    harness::missing_program_is_start_error,
    harness::failed_expectation_exits_1,
    harness::ctrl_c_kills_children_and_removes_cgroups,
    harness::next_run_removes_what_a_sigkilled_run_left,
    harness::one_off_run_exit_code_follows_expect,
    node::leaking_pod_is_evicted_below_its_own_limit_in_kubelet_order,
    pods::one_container_oomkilled_the_other_completes_in_a_pod_cgroup_of_their_sum,
    runtimes::runtime_ooms_are_error_with_the_runtime_named,
    runtimes::templates_follow_each_trial_limit,
    runtimes::runtime_split_is_reported_within_the_charge,
    runtimes::missing_runtime_is_one_line_and_exit_3,
    runtimes::cpu_limit_is_the_cfs_quota_the_jvm_reads,
    pods::init_containers_run_in_order_and_the_sidecar_is_stopped_after_the_app,
    pods::a_deployment_manifest_runs_and_its_leaking_container_crash_loops,
    node::fast_ramp_beats_housekeeping_and_the_kernel_kills_for_the_node,
    node::reserved_memory_kills_at_allocatable_before_any_eviction,
    sizing::search_finds_the_kernel_peak_within_precision,
    sizing::compare_flags_a_real_regression,
    sizing::compare_reports_pod_that_now_dies,
    vllm::dynamic_cache_dies_where_the_plan_says_and_paged_preempts,
];

/// Tests that need a browser: Debian's chromium.
const BROWSER: &[(&str, fn())] = tests![pages::every_page_renders_in_chromium,];

/// Tests that run an image: real cgroups and podman.
const PODMAN: &[(&str, fn())] = tests![runtimes::image_runs_in_oomsims_cgroup,];

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let missing = missing_cgroups();
    let required = std::env::var("OOMSIM_REQUIRE_CGROUPS").as_deref() == Ok("1");
    if let Some(why) = missing {
        if required {
            eprintln!("OOMSIM_REQUIRE_CGROUPS=1 but {why}: the real-cgroup tests will fail");
        } else {
            eprintln!(
                "{} real-cgroup tests are ignored: they need root and a memory cgroup controller ({why}); \
                 run as root, or with --include-ignored to see them fail",
                CGROUPS.len()
            );
        }
    }
    let plain = PLAIN
        .iter()
        .map(|&(name, f)| Trial::test(name, move || run(f)));
    let cgroups = CGROUPS.iter().map(|&(name, f)| {
        Trial::test(name, move || match missing {
            Some(why) => Err(Failed::from(format!("needs real cgroups but {why}"))),
            None => run(f),
        })
        .with_kind("cgroups")
        .with_ignored_flag(missing.is_some() && !required)
    });
    let podman = on_path("podman");
    let no_podman = missing.or((!podman).then_some("podman is not installed"));
    if let (Some(why), false) = (no_podman, required) {
        eprintln!("{} image tests are ignored: {why}", PODMAN.len());
    }
    let images = PODMAN.iter().map(|&(name, f)| {
        Trial::test(name, move || match no_podman {
            Some(why) => Err(Failed::from(format!(
                "needs real cgroups and podman but {why}"
            ))),
            None => run(f),
        })
        .with_kind("podman")
        .with_ignored_flag(no_podman.is_some() && !required)
    });
    let chromium = on_path("chromium");
    if let (false, false) = (chromium, required) {
        eprintln!(
            "{} browser tests are ignored: chromium is not installed",
            BROWSER.len()
        );
    }
    let browser = BROWSER.iter().map(|&(name, f)| {
        Trial::test(name, move || {
            if chromium {
                run(f)
            } else {
                Err(Failed::from("needs chromium, which is not installed"))
            }
        })
        .with_kind("browser")
        .with_ignored_flag(!chromium && !required)
    });
    let trials = plain.chain(cgroups).chain(images).chain(browser).collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn on_path(program: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(program).is_file())
}

fn run(test: fn()) -> Result<(), Failed> {
    test();
    Ok(())
}

pub fn oomsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oomsim"))
}

/// Why real cgroup tests cannot run here, or None when they can.
fn missing_cgroups() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root");
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1 = mountinfo
        .lines()
        .any(|l| l.contains(" - cgroup ") && l.contains("memory"));
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory"));
    (!v1 && !v2).then_some("no memory cgroup controller")
}

/// The memory hierarchy's root on this host (v1 memory mount or cgroup2 root).
pub fn cgroup_root() -> PathBuf {
    if Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        PathBuf::from("/sys/fs/cgroup/memory")
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

pub fn report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json parses")
}

/// Assert the run's cgroup is gone, by the run id the report names.
pub fn assert_cleaned(report: &serde_json::Value) {
    let run_id = report["run_id"].as_str().unwrap();
    let dir = cgroup_root().join("oomsim").join(run_id);
    assert!(!dir.exists(), "cgroup {} left behind", dir.display());
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `oomsim run` of `yaml`, written as `dir/s.yaml`, reporting to `dir/out`.
pub fn run_command(dir: &Path, yaml: &str) -> Command {
    let file = dir.join("s.yaml");
    std::fs::write(&file, yaml).unwrap();
    let mut cmd = oomsim();
    cmd.arg("run").arg(&file).arg("--out").arg(dir.join("out"));
    cmd
}

/// Run a scenario written into `dir`; returns (exit code, output, report),
/// having checked that the run left no cgroup behind.
pub fn run_yaml(dir: &Path, yaml: &str) -> (Option<i32>, String, serde_json::Value) {
    let o = run_command(dir, yaml).output().unwrap();
    let r = report(&dir.join("out"));
    assert_cleaned(&r);
    (o.status.code(), text(&o), r)
}

/// A pod of a report, by name.
pub fn pod<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
}
