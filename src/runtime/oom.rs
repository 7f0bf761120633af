//! A runtime's own out-of-memory, read from what the program printed: the
//! JVM's `java.lang.OutOfMemoryError` and its kinds, V8's heap limit
//! ("Reached heap limit" / "JavaScript heap out of memory", then SIGABRT,
//! exit 134), Go's "fatal error: runtime: out of memory", Python's
//! `MemoryError`. Kubernetes still says `Error`: the kernel killed nothing;
//! the runtime gave up under a cap of its own (a heap flag) or an allocation
//! it could not get.

use crate::scan::has;
use serde::{Deserialize, Serialize};

use super::Runtime;

/// What the runtime said, as the report carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeOom {
    pub runtime: Runtime,
    /// The runtime's own name for it: `Java heap space`, `Metaspace`,
    /// `Direct buffer memory`, `unable to create native thread`, `GC
    /// overhead limit exceeded`, `JavaScript heap out of memory`, `out of
    /// memory`, `MemoryError`.
    pub kind: String,
    /// The line it was read from.
    pub line: String,
}

impl RuntimeOom {
    /// What helps, in the words of the flag that capped it.
    pub fn advice(&self) -> String {
        let cap = match (self.runtime, self.kind.as_str()) {
            (Runtime::Java, "Java heap space" | "GC overhead limit exceeded") => {
                "the JVM's heap cap (-Xmx or -XX:MaxRAMPercentage) was reached before the container's limit: raising limits.memory does not help a heap cap; the flag does"
            }
            (Runtime::Java, "Metaspace") => {
                "the JVM's metaspace cap (-XX:MaxMetaspaceSize) was reached: raising limits.memory does not help; the flag does (or fewer classes loaded)"
            }
            (Runtime::Java, "Direct buffer memory") => {
                "the JVM's direct-buffer cap (-XX:MaxDirectMemorySize, by default -Xmx) was reached: raising limits.memory does not help; the flag does"
            }
            (Runtime::Java, _) => {
                "the JVM could not get memory or threads it asked for: check thread counts and native memory against the limit"
            }
            (Runtime::Node, _) => {
                "V8's old-space cap (--max-old-space-size, by default a share of the limit) was reached: raising limits.memory does not help a heap cap; the flag does"
            }
            (Runtime::Go, _) => {
                "the Go runtime could not get memory from the system: set GOMEMLIMIT below the limit so the GC runs before it, or raise limits.memory"
            }
            (Runtime::Python, _) => {
                "Python could not allocate what it asked for (an allocation larger than the system gives, or a ulimit): not the container's limit, which ends in OOMKilled"
            }
        };
        format!(
            "{} ran out of memory of its own ({}): {cap}",
            self.runtime.name(),
            self.line
        )
    }
}

/// The runtime out-of-memory a line reports, if any.
pub fn classify_line(line: &str) -> Option<RuntimeOom> {
    let line = line.trim();
    let found = |runtime, kind: &str| {
        Some(RuntimeOom {
            runtime,
            kind: kind.to_string(),
            line: line.to_string(),
        })
    };
    if let Some(rest) = line
        .split_once("java.lang.OutOfMemoryError")
        .map(|(_, r)| r)
    {
        let kind = rest.trim_start_matches(':').trim();
        // JDK 17 words the direct-buffer cap "Cannot reserve N bytes of
        // direct buffer memory (allocated: A, limit: L)" (java.nio.Bits).
        let kind = if kind.contains("direct buffer memory") {
            "Direct buffer memory"
        } else {
            // "unable to create native thread: possibly out of memory or process/resource limits reached"
            kind.split(':').next().unwrap_or("").trim()
        };
        return found(
            Runtime::Java,
            if kind.is_empty() {
                "OutOfMemoryError"
            } else {
                kind
            },
        );
    }
    // OpenJ9's dump agent names the class with slashes.
    if has(line, "java/lang/OutOfMemoryError") {
        return found(Runtime::Java, "OutOfMemoryError");
    }
    if has(line, "JavaScript heap out of memory") || has(line, "Reached heap limit") {
        return found(Runtime::Node, "JavaScript heap out of memory");
    }
    // Go 1.19's heap growth failing ("runtime: out of memory: cannot
    // allocate N-byte block", then "fatal error: out of memory"), or the
    // older path's "fatal error: runtime: out of memory".
    if has(line, "fatal error: runtime: out of memory")
        || line == "fatal error: out of memory"
        || line.starts_with("runtime: out of memory:")
    {
        return found(Runtime::Go, "out of memory");
    }
    // A traceback's last line: "MemoryError" or "MemoryError: ...".
    if line == "MemoryError" || line.starts_with("MemoryError:") {
        return found(Runtime::Python, "MemoryError");
    }
    None
}

/// The last runtime out-of-memory in a program's output.
pub fn scan(text: &str) -> Option<RuntimeOom> {
    text.lines().rev().find_map(classify_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts as the runtimes print them (JDK 17, Node 18, Go 1.19, CPython 3).
    #[test]
    fn each_runtime_text() {
        let cases = [
            (
                "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
                Runtime::Java,
                "Java heap space",
            ),
            (
                "java.lang.OutOfMemoryError: Metaspace",
                Runtime::Java,
                "Metaspace",
            ),
            (
                "Exception in thread \"main\" java.lang.OutOfMemoryError: Direct buffer memory",
                Runtime::Java,
                "Direct buffer memory",
            ),
            (
                "[0.5s][warning][os,thread] Failed to start thread - pthread_create failed (EAGAIN)\nException in thread \"main\" java.lang.OutOfMemoryError: unable to create native thread: possibly out of memory or process/resource limits reached",
                Runtime::Java,
                "unable to create native thread",
            ),
            (
                "Exception in thread \"main\" java.lang.OutOfMemoryError: Cannot reserve 1048576 bytes of direct buffer memory (allocated: 33554432, limit: 33554432)",
                Runtime::Java,
                "Direct buffer memory",
            ),
            (
                "runtime: out of memory: cannot allocate 4194304-byte block (1006632960 in use)\nfatal error: out of memory\n\ngoroutine 1 [running]:",
                Runtime::Go,
                "out of memory",
            ),
            (
                "java.lang.OutOfMemoryError: GC overhead limit exceeded",
                Runtime::Java,
                "GC overhead limit exceeded",
            ),
            (
                "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
                Runtime::Node,
                "JavaScript heap out of memory",
            ),
            (
                "FATAL ERROR: Ineffective mark-compacts near heap limit Allocation failed - JavaScript heap out of memory",
                Runtime::Node,
                "JavaScript heap out of memory",
            ),
            (
                "fatal error: runtime: out of memory\n\nruntime stack:\nruntime.throw({0x4a1b2c?, 0x2000000?})",
                Runtime::Go,
                "out of memory",
            ),
            (
                "Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\nMemoryError",
                Runtime::Python,
                "MemoryError",
            ),
        ];
        for (text, runtime, kind) in cases {
            let r = scan(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!((r.runtime, r.kind.as_str()), (runtime, kind), "{text}");
        }
        for not in [
            "OutOfMemory handler installed",
            "caught MemoryErrorHandler",
            "runtime: out of range",
            "CUDA out of memory. Tried to allocate 2.00 GiB.",
        ] {
            assert_eq!(scan(not), None, "{not}");
        }
        let heap = scan("java.lang.OutOfMemoryError: Java heap space").unwrap();
        assert!(
            heap.advice()
                .contains("raising limits.memory does not help a heap cap")
        );
    }
}
