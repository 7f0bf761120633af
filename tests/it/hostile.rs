//! Hostile input beyond one scenario file: the malformed corpus under
//! tests/malformed (each file's first line is the exact error expected),
//! YAML bombs and huge values refused with bounded memory, devices given as
//! files, a closed pipe, and a panic in oomsim's own workload.

use std::process::{Command, Stdio};

use crate::{oomsim, text};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/malformed");

/// The address space a refusal may take: the process cannot allocate past
/// it (an allocation failure aborts, which fails the exit-2 checks), so a
/// refusal that passes stayed within it.
const BOUND: u64 = 256 << 20;

/// Run with its address space capped at [`BOUND`].
fn run_bounded(cmd: &mut Command) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs before exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: BOUND,
                rlim_max: BOUND,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    cmd.output().unwrap()
}

/// Every file of the corpus: exit 2, exactly its expected line, nothing else.
pub fn malformed_corpus_gives_the_exact_line() {
    let mut files: Vec<_> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 50, "the corpus has {} files", files.len());
    let mut wrong = Vec::new();
    for path in &files {
        let body = std::fs::read_to_string(path).unwrap();
        let expected = body
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no `# expect:` first line", path.display()));
        let name = path.file_name().unwrap();
        let o = oomsim()
            .current_dir(CORPUS)
            .arg("validate")
            .arg(name)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.code() != Some(2) || err != format!("oomsim: {expected}\n") {
            wrong.push(format!(
                "{}: exit {:?}\n  expected: oomsim: {expected}\n  got:      {}",
                name.display(),
                o.status.code(),
                err.trim_end()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Write `yaml` as NAME in a fresh directory and validate it.
fn validate(name: &str, yaml: &str) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), yaml).unwrap();
    let o = run_bounded(oomsim().current_dir(dir.path()).arg("validate").arg(name));
    (o, dir)
}

fn one_line(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{}", text(o));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

/// Billion laughs, 100k nested brackets, a 5 MB scalar and a 20 MB file:
/// refused in one line within [`BOUND`] of address space.
pub fn yaml_bombs_are_refused_with_bounded_memory() {
    let mut laughs = String::from(
        "name: t\npods:\n  - name: app\n    workload:\n      kind: command\n      command: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = 'a';
    for c in 'b'..='j' {
        laughs.push_str(&format!(
            "  - name: {c}\n    workload: {{kind: command, command: &{c} [{}]}}\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
        prev = c;
    }
    let (o, _d) = validate("laughs.yaml", &laughs);
    let err = one_line(&o);
    assert!(err.starts_with("oomsim: laughs.yaml:"), "{err}");

    let deep = format!(
        "name: t\npods: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (o, _d) = validate("deep.yaml", &deep);
    assert!(one_line(&o).contains("deep.yaml:2:"), "{}", text(&o));

    let huge = format!("name: {}\npods: []\n", "x".repeat(5_000_000));
    let (o, _d) = validate("huge.yaml", &huge);
    let err = one_line(&o);
    assert!(err.len() < 300, "the value is cut: {} bytes", err.len());
    assert!(
        err.contains("(5000000 characters) is not a valid name"),
        "{err}"
    );

    let big = format!("name: t\ndescription: {}\npods: []\n", "y".repeat(20 << 20));
    let (o, _d) = validate("big.yaml", &big);
    assert_eq!(
        one_line(&o),
        "oomsim: big.yaml: cannot read the scenario: larger than 16Mi, the most oomsim reads of such a file\n"
    );
}

/// A device or a huge file where a config goes: read up to the bound, refused.
pub fn devices_as_configs_are_refused_after_the_bound() {
    let o = run_bounded(oomsim().args([
        "vllm",
        "plan",
        "--model",
        "/dev/zero",
        "--gpu-memory",
        "24Gi",
    ]));
    assert_eq!(
        one_line(&o),
        "oomsim: /dev/zero: cannot read the model config: larger than 16Mi, the most oomsim reads of such a file\n"
    );
    // A report may be large (512Mi at most): read to that bound, not capped here.
    let o = oomsim().args(["plot", "/dev/zero"]).output().unwrap();
    assert!(one_line(&o).contains("larger than 512Mi"), "{}", text(&o));
}

/// `| head` closes the pipe: no panic, no message; the process ends by
/// SIGPIPE as Unix tools do.
pub fn a_closed_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // The reader is closed before the child starts: a pipe from spawn would
    // stay open in any child another test forks meanwhile, and the write
    // would then succeed.
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    drop(reader);
    let child = oomsim()
        .args([
            "vllm",
            "plan",
            "--model",
            "scenarios/models/llama-3-8b.json",
            "--gpu-memory",
            "24Gi",
            "--json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{}", text(&o));
    assert!(o.stderr.is_empty(), "{}", text(&o));
}

/// A panic in oomsim's own workload child is oomsim's failure (exit 4, one
/// line naming it), not the pod's verdict; the run leaves nothing behind.
pub fn a_workload_panic_is_exit_4_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "name: p\npods:\n  - name: app\n    resources: {limits: {memory: 64Mi}}\n    workload: {kind: steady, size: 1Mi, duration: 1s}\n";
    let o = crate::run_command(dir.path(), yaml)
        .env("OOMSIM_FAULT", "panic@workload")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "pod app, container app: oomsim's workload panicked: fault injected at workload"
        ),
        "{err}"
    );
    assert!(!dir.path().join("out/report.json").exists());
    // "running p: 1 pod(s) in cgroup /oomsim/RUN-ID (...)": that cgroup is gone.
    let cgroup = err
        .split(" in cgroup /")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the run names its cgroup");
    let dir = crate::cgroup_root().join(cgroup);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
