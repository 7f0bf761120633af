//! Evidence as users paste it, made into lines the parsers can read: the
//! prefixes that wrap every shape (`kubectl logs --timestamps`, dmesg's
//! uptime and `-T` stamps, syslog and journald, docker-compose's service
//! column, vLLM's process and level tags, Markdown quoting, terminal colour)
//! stripped and kept apart, lines a terminal wrapped joined back, and a
//! one-line JSON document laid out one field a line. Each line keeps its
//! number in the file and its text verbatim, for quoting.

/// One file (or stdin) of evidence.
#[derive(Debug, Clone)]
pub struct Source {
    /// As the user named it (`-` is stdin).
    pub name: String,
    pub lines: Vec<Line>,
}

/// A logical line: one line of the file, or a wrapped one joined.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based, of the line's first physical line.
    pub no: usize,
    /// The physical line as pasted (its first, when joined).
    pub raw: String,
    /// What the parsers read: prefixes stripped, a wrap joined.
    pub text: String,
    /// The time stamp the line carried, as written (`[ 1234.567890]`,
    /// `2024-05-01T10:00:00Z`, `Jan 12 10:00:01`).
    pub stamp: Option<String>,
}

/// Lines longer than this that a terminal wrapped are joined back.
const WRAP_MIN: usize = 70;
/// A one-line JSON document longer than this is laid out.
const COMPACT_JSON_MIN: usize = 200;

/// Read one file's text into lines.
pub fn read(name: &str, text: &str) -> Source {
    let mut lines: Vec<Line> = Vec::new();
    let mut prev_stamped = false;
    let mut prev_len = 0;
    for (i, physical) in text.lines().enumerate() {
        let no = i + 1;
        let cleaned = strip_ansi(physical);
        let (body, stamp, prefixed) = strip_prefixes(&cleaned);
        let trimmed = body.trim_end();
        if !prefixed
            && prev_stamped
            && prev_len >= WRAP_MIN
            && is_wrap(trimmed)
            && let Some(last) = lines.last_mut()
        {
            last.text.push_str(trimmed);
            prev_len = physical.len();
            continue;
        }
        prev_stamped = prefixed;
        prev_len = physical.len();
        let t = trimmed.trim_start();
        if t.len() > COMPACT_JSON_MIN
            && t.starts_with('{')
            && let Some(pretty) = lay_out_json(t)
        {
            lines.extend(pretty.lines().map(|l| Line {
                no,
                raw: l.to_string(),
                text: l.to_string(),
                stamp: stamp.clone(),
            }));
            continue;
        }
        lines.push(Line {
            no,
            raw: physical.trim_end().to_string(),
            text: trimmed.to_string(),
            stamp,
        });
    }
    Source {
        name: name.to_string(),
        lines,
    }
}

/// A line without its own prefix that continues a stamped one: not blank,
/// not indented (a call trace's or a table's own layout), not a new field.
fn is_wrap(line: &str) -> bool {
    !line.is_empty()
        && !line.starts_with([' ', '\t'])
        && !line
            .split_once(':')
            .is_some_and(|(k, _)| !k.is_empty() && !k.contains(' ') && k.len() < 20)
}

fn lay_out_json(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    serde_json::to_string_pretty(&value).ok()
}

/// Terminal colour codes (`ESC [ ... m`), which vLLM and kubectl can keep.
fn strip_ansi(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\u{1b}') {
        return line.into();
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// The line without every prefix it carries, the last time stamp seen, and
/// whether a stamp or service prefix was there (what a wrapped line lacks).
fn strip_prefixes(line: &str) -> (&str, Option<String>, bool) {
    let mut rest = line;
    let mut stamp = None;
    let mut prefixed = false;
    // Each pass takes one prefix off; pastes stack at most a few.
    for _ in 0..8 {
        let before = rest.len();
        if let Some(r) = quote(rest) {
            rest = r;
            continue;
        }
        let stamped = [rfc3339, dmesg_uptime, dmesg_ctime, bsd_syslog]
            .iter()
            .find_map(|f| f(rest));
        if let Some((s, r)) = stamped {
            stamp = Some(s.trim().to_string());
            prefixed = true;
            rest = syslog_ident(r).unwrap_or(r);
            continue;
        }
        if let Some(r) = compose(rest).or_else(|| dmesg_level(rest)) {
            prefixed = true;
            rest = r;
            continue;
        }
        if let Some(r) = vllm_process(rest).or_else(|| vllm_level(rest)) {
            rest = r;
            continue;
        }
        if rest.len() == before {
            break;
        }
    }
    (rest, stamp, prefixed)
}

/// Markdown's `> ` (a quoted paste).
fn quote(s: &str) -> Option<&str> {
    let r = s.strip_prefix('>')?;
    Some(r.strip_prefix(' ').unwrap_or(r))
}

fn digits(s: &str, n: usize) -> Option<&str> {
    let (d, r) = (s.get(..n)?, s.get(n..)?);
    d.bytes().all(|b| b.is_ascii_digit()).then_some(r)
}

/// `2024-05-01T10:00:00.123456789Z ` (kubectl logs --timestamps, journald
/// `-o short-iso`, RFC 5424 syslog).
fn rfc3339(s: &str) -> Option<(&str, &str)> {
    let r = digits(s, 4)?.strip_prefix('-')?;
    let r = digits(r, 2)?.strip_prefix('-')?;
    let r = digits(r, 2)?.strip_prefix(['T', ' '])?;
    let r = digits(r, 2)?.strip_prefix(':')?;
    let r = digits(r, 2)?.strip_prefix(':')?;
    let mut r = digits(r, 2)?;
    r = r.trim_start_matches(|c: char| c == '.' || c == ',' || c.is_ascii_digit());
    if let Some(z) = r.strip_prefix('Z') {
        r = z;
    } else if let Some(sign) = r.strip_prefix(['+', '-']) {
        r = sign.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':');
    }
    let r = r.strip_prefix([' ', '\t'])?;
    Some((&s[..s.len() - r.len()], r.trim_start()))
}

/// `[ 1234.567890] ` (dmesg), or a paste that starts inside it (`567890] `).
fn dmesg_uptime(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('[').unwrap_or(s);
    let close = inner.find("] ")?;
    let stamp = inner[..close].trim_start();
    let (secs, frac) = stamp.split_once('.').unwrap_or(("", stamp));
    let ok = !frac.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (s.starts_with('[') || !secs.is_empty() || frac.len() >= 6);
    if !ok {
        return None;
    }
    let r = &inner[close + 2..];
    Some((&s[..s.len() - r.len()], r))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `[Mon Jan  1 12:00:00 2024] ` (dmesg -T).
fn dmesg_ctime(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('[')?;
    let close = inner.find("] ")?;
    let words: Vec<&str> = inner[..close].split_whitespace().collect();
    let ok = words.len() == 5
        && DAYS.contains(&words[0])
        && MONTHS.contains(&words[1])
        && words[3].len() == 8
        && words[3].as_bytes()[2] == b':';
    if !ok {
        return None;
    }
    let r = &inner[close + 2..];
    Some((&s[..s.len() - r.len()], r))
}

/// `Jan 12 10:00:01 ` (BSD syslog, journalctl's default).
fn bsd_syslog(s: &str) -> Option<(&str, &str)> {
    let month = s.get(..3)?;
    if !MONTHS.contains(&month) {
        return None;
    }
    let r = s[3..].strip_prefix(' ')?.trim_start_matches(' ');
    let r = r.trim_start_matches(|c: char| c.is_ascii_digit());
    let r = r.strip_prefix(' ')?;
    let r = digits(r, 2)?.strip_prefix(':')?;
    let r = digits(r, 2)?.strip_prefix(':')?;
    let r = digits(r, 2)?;
    let r = r.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let r = r.strip_prefix(' ')?;
    Some((&s[..s.len() - r.len()], r))
}

/// After a syslog stamp: `host kernel: ` or `host kubelet[123]: `.
fn syslog_ident(s: &str) -> Option<&str> {
    let (host, r) = s.split_once(' ')?;
    let (ident, r) = r.split_once(": ")?;
    let name = ident.split('[').next().unwrap_or(ident);
    let plain = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    (plain(host) && plain(name) && (ident == name || ident.ends_with(']'))).then_some(r)
}

/// `kern  :err   : ` (dmesg -x).
fn dmesg_level(s: &str) -> Option<&str> {
    let (fac, r) = s.split_once(':')?;
    let (lvl, r) = r.split_once(':')?;
    let facs = ["kern", "user", "daemon", "syslog", "auth"];
    let lvls = [
        "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
    ];
    (facs.contains(&fac.trim()) && lvls.contains(&lvl.trim())).then(|| r.trim_start())
}

/// `vllm-1  | ` / `app_1  | ` (docker compose's service column).
fn compose(s: &str) -> Option<&str> {
    let bar = s.find('|')?;
    let (name, r) = (&s[..bar], &s[bar + 1..]);
    let word = name.trim_end();
    let ok = !word.is_empty()
        && name.len() > word.len()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| r.strip_prefix(' ').unwrap_or(r))
}

/// `(VllmWorker rank=0 pid=123) `, `(EngineCore_0 pid=45) `.
fn vllm_process(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('(')?;
    let close = inner.find(") ")?;
    inner[..close].contains("pid=").then(|| &inner[close + 2..])
}

/// `ERROR 05-01 10:00:00 [core.py:123] ` (vLLM's logger).
fn vllm_level(s: &str) -> Option<&str> {
    let (level, r) = s.split_once(' ')?;
    if !["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&level) {
        return None;
    }
    let r = digits(r, 2)?.strip_prefix('-')?;
    let r = digits(r, 2)?.strip_prefix(' ')?;
    let r = r.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':' || c == '.');
    let r = r.strip_prefix(" [")?;
    let close = r.find("] ")?;
    Some(&r[close + 2..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> (String, Option<String>) {
        let s = read("t", line);
        (s.lines[0].text.clone(), s.lines[0].stamp.clone())
    }

    #[test]
    fn every_prefix_comes_off() {
        let cases = [
            (
                "[ 1234.567890] Memory cgroup out of memory",
                "[ 1234.567890]",
            ),
            (
                "[Mon Jan  1 12:00:00 2024] Memory cgroup out of memory",
                "[Mon Jan  1 12:00:00 2024]",
            ),
            (
                "Jan 12 10:00:01 node-1 kernel: Memory cgroup out of memory",
                "Jan 12 10:00:01",
            ),
            (
                "Jan  2 10:00:01 ip-10-0-0-1 kernel: [ 5.1] Memory cgroup out of memory",
                "[ 5.1]",
            ),
            (
                "2024-05-01T10:00:00.123456789Z Memory cgroup out of memory",
                "2024-05-01T10:00:00.123456789Z",
            ),
            (
                "2024-05-01T10:00:00.123+00:00 host kernel: Memory cgroup out of memory",
                "2024-05-01T10:00:00.123+00:00",
            ),
            (
                "kern  :err   : [  9.000001] Memory cgroup out of memory",
                "[  9.000001]",
            ),
            ("> [ 1.000000] Memory cgroup out of memory", "[ 1.000000]"),
            ("567890] Memory cgroup out of memory", "567890]"),
        ];
        for (line, stamp) in cases {
            assert_eq!(
                one(line),
                ("Memory cgroup out of memory".into(), Some(stamp.into())),
                "{line}"
            );
        }
        let plain = [
            "vllm-1  | ValueError: No available memory",
            "app_1   | ValueError: No available memory",
            "(VllmWorker rank=0 pid=1234) ValueError: No available memory",
            "ERROR 05-01 10:00:00 [core.py:123] ValueError: No available memory",
            "\u{1b}[1;36m(EngineCore_0 pid=7)\u{1b}[0;0m ERROR 11-03 08:00:01.123 [core.py:700] ValueError: No available memory",
        ];
        for line in plain {
            assert_eq!(one(line).0, "ValueError: No available memory", "{line}");
        }
        // Not prefixes: a table row, a key and value, a time in a message.
        for line in [
            "  Warning  OOMKilling  3m  kernel-monitor  Memory cgroup out of memory",
            "Reason: OOMKilled",
            "12:00:01 started",
        ] {
            assert_eq!(one(line).0, line.trim_end(), "{line}");
        }
    }

    #[test]
    fn a_wrapped_kernel_line_is_joined() {
        let text = "[ 100.000001] Memory cgroup out of memory: Killed process 4242 (java) total-vm:12345kB, anon-rss:52\n4288kB, file-rss:0kB, shmem-rss:0kB\n[ 100.000002] oom_reaper: reaped process 4242";
        let s = read("dmesg.txt", text);
        assert_eq!(s.lines.len(), 2);
        assert!(
            s.lines[0]
                .text
                .ends_with("anon-rss:524288kB, file-rss:0kB, shmem-rss:0kB")
        );
        assert_eq!((s.lines[0].no, s.lines[1].no), (1, 3));
    }

    #[test]
    fn a_one_line_json_is_laid_out() {
        let doc = format!(
            "{{\"status\":{{\"containerStatuses\":[{{\"lastState\":{{\"terminated\":{{\"reason\":\"OOMKilled\",\"exitCode\":137}}}},\"name\":\"{}\"}}]}}}}",
            "a".repeat(200)
        );
        let s = read("pod.json", &doc);
        assert!(
            s.lines
                .iter()
                .any(|l| l.text.trim().trim_end_matches(',') == "\"reason\": \"OOMKilled\"")
        );
        assert!(s.lines.iter().all(|l| l.no == 1));
    }
}
