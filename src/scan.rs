//! Substring search for short lines, many keys each: memchr to the key's
//! first byte, then a compare. `str::contains` builds a two-way searcher
//! per call, which costs more than the search on an 80-byte line.

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some(&first) = n.first() else {
        return Some(0);
    };
    let mut from = 0;
    while let Some(p) = memchr::memchr(first, &h[from..]) {
        let at = from + p;
        if h[at..].starts_with(n) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Whether `needle` occurs in `hay`.
pub fn has(hay: &str, needle: &str) -> bool {
    find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_as_str_find_does() {
        let hay = "Memory cgroup out of memory: Killed process 1 (é) ok";
        for n in [
            "",
            "M",
            "memory",
            "Killed process",
            "(é)",
            "ok",
            "okk",
            "zz",
            "é",
        ] {
            assert_eq!(find(hay, n), hay.find(n), "{n:?}");
        }
        assert_eq!(find("", "a"), None);
    }
}
