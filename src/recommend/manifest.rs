//! A manifest patched in place: the container's `resources.limits.memory`
//! and `resources.requests.memory` set, every other line (comments, order,
//! quoting) left as written. Block style and flow style (`limits: {cpu: 1,
//! memory: 1Gi}`) are both edited; a missing `resources`, `limits` or
//! `requests` is added at the container's indentation.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatchError {
    #[error("no container named {0:?} in the manifest")]
    NoContainer(String),
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The key of a `key: value` line, without a list dash.
fn key(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("- ").unwrap_or(t);
    let (k, rest) = t.split_once(':')?;
    (rest.is_empty() || rest.starts_with(' ')).then_some(k.trim())
}

/// Set memory `limit` and `request` on `container` in `text`.
pub fn patch(
    text: &str,
    container: &str,
    limit: &str,
    request: &str,
) -> Result<String, PatchError> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // The container: `- name: X` in a list under `containers:` (or initContainers).
    let mut start = None;
    let mut in_containers: Option<usize> = None;
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        if let Some(ci) = in_containers
            && indent(l) < ci
        {
            in_containers = None;
        }
        if matches!(key(l), Some("containers" | "initContainers"))
            && !l.trim_start().starts_with("- ")
        {
            in_containers = Some(indent(l));
            continue;
        }
        let t = l.trim_start();
        if in_containers.is_some()
            && let Some(rest) = t
                .strip_prefix("- name:")
                .or_else(|| t.strip_prefix("name:"))
            && rest
                .split(" #")
                .next()
                .unwrap_or(rest)
                .trim()
                .trim_matches(['"', '\''])
                == container
        {
            start = Some(i);
            break;
        }
    }
    let start = start.ok_or_else(|| PatchError::NoContainer(container.to_string()))?;
    let first = &lines[start];
    // The column of the container's keys (after a `- `).
    let col = indent(first)
        + if first.trim_start().starts_with("- ") {
            2
        } else {
            0
        };
    let end = (start + 1..lines.len())
        .find(|&i| {
            let l = &lines[i];
            !l.trim().is_empty() && !l.trim_start().starts_with('#') && indent(l) < col
                || (indent(l) + 2 == col && l.trim_start().starts_with("- "))
        })
        .unwrap_or(lines.len());
    let pad = |n: usize| " ".repeat(n);
    let resources =
        (start + 1..end).find(|&i| indent(&lines[i]) == col && key(&lines[i]) == Some("resources"));
    let Some(res) = resources else {
        let block = [
            format!("{}resources:", pad(col)),
            format!("{}limits:", pad(col + 2)),
            format!("{}memory: {limit}", pad(col + 4)),
            format!("{}requests:", pad(col + 2)),
            format!("{}memory: {request}", pad(col + 4)),
        ];
        lines.splice(start + 1..start + 1, block);
        return Ok(join(lines, text));
    };
    for (name, value) in [("requests", request), ("limits", limit)] {
        // The block's end, found again after each edit moved it.
        let to = (res + 1..lines.len())
            .find(|&i| !lines[i].trim().is_empty() && indent(&lines[i]) <= col)
            .unwrap_or(lines.len());
        set_memory(&mut lines, res, to, col + 2, name, value);
    }
    Ok(join(lines, text))
}

/// Within resources (`from`..`to`), set `name.memory`.
fn set_memory(
    lines: &mut Vec<String>,
    from: usize,
    to: usize,
    col: usize,
    name: &str,
    value: &str,
) {
    let to = to.min(lines.len());
    let found = (from + 1..to).find(|&i| key(&lines[i]) == Some(name));
    let pad = |n: usize| " ".repeat(n);
    let Some(at) = found else {
        lines.splice(
            from + 1..from + 1,
            [
                format!("{}{name}:", pad(col)),
                format!("{}memory: {value}", pad(col + 2)),
            ],
        );
        return;
    };
    let line = lines[at].clone();
    if let Some(open) = line.find('{') {
        let close = line.rfind('}').unwrap_or(line.len());
        let body = &line[open + 1..close.max(open + 1)];
        let mut items: Vec<String> = body
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && !s.starts_with("memory:"))
            .collect();
        items.push(format!("memory: {value}"));
        lines[at] = format!(
            "{}{{{}}}{}",
            &line[..open],
            items.join(", "),
            line.get(close + 1..).unwrap_or("")
        );
        return;
    }
    let kid = col + 2;
    let mem = (at + 1..to)
        .take_while(|&i| lines[i].trim().is_empty() || indent(&lines[i]) > col)
        .find(|&i| key(&lines[i]) == Some("memory"));
    match mem {
        Some(m) => {
            let ind = indent(&lines[m]);
            lines[m] = format!("{}memory: {value}", pad(ind));
        }
        None => lines.insert(at + 1, format!("{}memory: {value}", pad(kid))),
    }
}

fn join(lines: Vec<String>, original: &str) -> String {
    let mut s = lines.join("\n");
    if original.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api  # the API\nspec:\n  template:\n    spec:\n      containers:\n      - name: sidecar\n        image: envoy\n        resources:\n          limits: {cpu: 100m, memory: 64Mi}\n      - name: app\n        image: app:1\n        resources:\n          limits:\n            cpu: \"1\"\n            memory: 512Mi\n        ports:\n        - containerPort: 80\n";

    #[test]
    fn block_style_is_edited_and_the_rest_kept() {
        let out = patch(DEPLOY, "app", "768Mi", "768Mi").unwrap();
        assert!(
            out.contains("          limits:\n            cpu: \"1\"\n            memory: 768Mi\n"),
            "{out}"
        );
        assert!(
            out.contains("        resources:\n          requests:\n            memory: 768Mi\n"),
            "{out}"
        );
        assert!(out.contains("  name: api  # the API\n"));
        assert!(
            out.contains("limits: {cpu: 100m, memory: 64Mi}"),
            "the sidecar is untouched"
        );
        assert!(out.ends_with("        - containerPort: 80\n"));
    }

    #[test]
    fn flow_style_and_a_missing_block() {
        let out = patch(DEPLOY, "sidecar", "96Mi", "96Mi").unwrap();
        assert!(out.contains("limits: {cpu: 100m, memory: 96Mi}"), "{out}");
        assert!(out.contains("requests:\n            memory: 96Mi"), "{out}");
        let bare = "spec:\n  containers:\n  - name: w\n    image: x\n";
        let out = patch(bare, "w", "1Gi", "512Mi").unwrap();
        assert_eq!(
            out,
            "spec:\n  containers:\n  - name: w\n    resources:\n      limits:\n        memory: 1Gi\n      requests:\n        memory: 512Mi\n    image: x\n"
        );
        assert_eq!(
            patch(bare, "nope", "1Gi", "1Gi"),
            Err(PatchError::NoContainer("nope".into()))
        );
    }
}
