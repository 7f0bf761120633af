//! Real runtimes giving up under caps of their own: the JVM's -Xmx, V8's
//! --max-old-space-size, Python's failed allocation. Kubernetes shows
//! `Error` (the kernel killed nothing); oomsim's cause says which runtime and
//! what kind, and that the flag, not the limit, is what helps.

use crate::harness::{run_cmd, verdict};

pub fn runtime_ooms_are_error_with_the_runtime_named() {
    let dir = tempfile::tempdir().unwrap();
    let hog = dir.path().join("Hog.java");
    std::fs::write(
        &hog,
        "import java.util.*;\npublic class Hog { public static void main(String[] a) { List<byte[]> l = new ArrayList<>(); while (true) l.add(new byte[1 << 20]); } }\n",
    )
    .unwrap();
    let hog = hog.to_string_lossy().into_owned();
    let cases: [(&[&str], i64, &str, &str); 3] = [
        (&["java", "-Xmx32m", &hog], 1, "java", "Java heap space"),
        (
            &[
                "node",
                "--max-old-space-size=32",
                "-e",
                "a=[];while(1)a.push(new Array(1e5).fill(1.5))",
            ],
            134,
            "node",
            "JavaScript heap out of memory",
        ),
        (
            &["python3", "-c", "bytearray(1 << 50)"],
            1,
            "python",
            "MemoryError",
        ),
    ];
    for (cmd, code, runtime, kind) in cases {
        // A limit well above the heap cap: the runtime gives up first.
        let (_, r) = run_cmd("512Mi", cmd);
        assert_eq!(
            verdict(&r),
            ("Error".to_string(), code, "runtime_oom".to_string()),
            "{cmd:?}"
        );
        let v = &r["pods"][0]["verdict"];
        assert_eq!(v["runtime_oom"]["runtime"], runtime, "{cmd:?}");
        assert_eq!(v["runtime_oom"]["kind"], kind, "{cmd:?}");
        assert_eq!(r["pods"][0]["oom_kill_count"], 0, "{cmd:?}");
    }
    let (_, r) = run_cmd("512Mi", &["java", "-Xmx32m", &hog]);
    assert!(
        r["pods"][0]["verdict"]["message"]
            .as_str()
            .unwrap()
            .contains("raising limits.memory does not help a heap cap")
    );
}
