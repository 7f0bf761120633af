//! `report.html`: one self-contained page per command, beside its JSON.
//! Inline CSS and inline SVG only: no script, no font, no image fetched
//! from anywhere, so it reads the same offline and as a CI artifact.

mod pages;

use std::path::{Path, PathBuf};

pub use pages::{compare, diagnose, matrix, plan, run, search};

pub const HTML_FILE: &str = "report.html";

/// A page: its title and its sections in order.
pub struct Page {
    title: String,
    sections: Vec<(String, String, String)>,
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1b1b;background:#fff}
header{background:#0b3c5d;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:6px 0 0;opacity:.85;font-size:14px}
main{max-width:1060px;margin:0 auto;padding:8px 28px 40px}
section{margin-top:28px}
h2{font-size:17px;border-bottom:2px solid #0b3c5d;padding-bottom:4px;margin:0 0 12px}
pre{background:#f4f6f8;border:1px solid #dde3e8;padding:12px 14px;overflow-x:auto;font-size:13px;line-height:1.45}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{border-bottom:1px solid #e3e6ea;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f8;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:0 0 22px}
figure svg{max-width:100%;height:auto;border:1px solid #e3e6ea}
figcaption{font-size:13px;color:#555;margin-top:4px}
.bad{color:#b34700;font-weight:600}.ok{color:#007a5a;font-weight:600}.warn{color:#8a6d00;font-weight:600}
";

impl Page {
    pub fn new(title: impl Into<String>) -> Page {
        Page {
            title: title.into(),
            sections: Vec::new(),
        }
    }

    /// A section with an id (for links and tests), a heading and HTML.
    pub fn section(&mut self, id: &str, heading: &str, body: String) {
        self.sections
            .push((id.to_string(), heading.to_string(), body));
    }

    pub fn render(&self, subtitle: &str) -> String {
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header><h1>{}</h1><p>{}</p></header>\n<main>\n",
            esc(&self.title),
            esc(&self.title),
            esc(subtitle)
        );
        for (id, heading, body) in &self.sections {
            out += &format!(
                "<section id=\"{id}\">\n<h2>{}</h2>\n{body}\n</section>\n",
                esc(heading)
            );
        }
        out += "</main>\n</body>\n</html>\n";
        out
    }
}

/// Text made safe for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn pre(text: &str) -> String {
    format!("<pre>{}</pre>", esc(text))
}

/// A table; cells are HTML already (escape text with `esc`).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table>\n<tr>");
    for h in headers {
        out += &format!("<th>{}</th>", esc(h));
    }
    out += "</tr>\n";
    for row in rows {
        out += "<tr>";
        for cell in row {
            out += &format!("<td>{cell}</td>");
        }
        out += "</tr>\n";
    }
    out + "</table>"
}

/// A chart inline, with what it answers under it.
pub fn figure(fig: &crate::plot::Figure, caption: &str) -> String {
    match crate::plot::svg(fig) {
        Ok(svg) => {
            // Inline SVG in HTML needs no namespace: the page names no URL.
            let start = svg.find("<svg").unwrap_or(0);
            let svg = svg[start..].replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
            format!(
                "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>",
                esc(caption)
            )
        }
        Err(e) => format!(
            "<p class=\"bad\">chart not drawn: {}</p>",
            esc(&e.to_string())
        ),
    }
}

/// Write `dir/report.html` whole, or not at all.
pub fn write(dir: &Path, html: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(HTML_FILE);
    crate::report::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_the_page_fetches_nothing() {
        let mut p = Page::new("a <b> & \"c\"");
        p.section("x", "X", pre("<script>alert(1)</script>"));
        let html = p.render("sub");
        assert!(html.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        assert!(!html.contains("<script>"));
        for external in ["http://", "https://", "src=", "href=", "@import", "url("] {
            assert!(!html.contains(external), "{external}");
        }
    }
}
