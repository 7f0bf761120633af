//! What a person sees while a search runs: a bar on a terminal (its length
//! re-estimated from the bracket after every batch, its line fitted to the
//! terminal's width), plain lines otherwise, nothing with `--quiet`.

use std::io::IsTerminal;

use crate::report::search::Trial;
use crate::units::{fmt_human, fmt_quantity};

pub enum Progress {
    Bar(indicatif::ProgressBar),
    Lines,
    Quiet,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        if quiet {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Lines;
        }
        let bar = indicatif::ProgressBar::new(1);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed:>4} {bar:16} {pos}/{len} {wide_msg}",
        ) {
            bar.set_style(style);
        }
        Progress::Bar(bar)
    }

    /// Trials expected in all, as far as the bracket tells now.
    pub fn expect(&self, total: u64) {
        if let Progress::Bar(b) = self {
            b.set_length(total.max(b.position() + 1));
        }
    }

    /// A batch ran; `lo..hi` is the bracket after it.
    pub fn batch(&self, trials: &[Trial], lo: u64, hi: u64) {
        for t in trials {
            let line = format!(
                "{} at {}: {} (peak {}); bracket {}..{}",
                if t.survived { "survived" } else { "died" },
                fmt_quantity(t.limit_bytes),
                t.reason,
                fmt_human(t.peak_bytes),
                fmt_quantity(lo),
                fmt_quantity(hi)
            );
            match self {
                Progress::Bar(b) => {
                    b.inc(1);
                    b.set_message(line);
                }
                Progress::Lines => eprintln!("oomsim search: {line}"),
                Progress::Quiet => {}
            }
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}
