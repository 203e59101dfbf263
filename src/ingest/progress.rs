//! Progress of long work (a GitLab first fill, a large file): what is done of what is known so
//! far, in a few named parts (`projects 3/6 · pipelines 40/120 · logs 12/300`, or bytes). Drawn
//! as a bar on stderr only when stderr is a terminal and `-q` was not given, redrawn at most
//! 4 times a second; the same text goes to the source's status for the TUI's status bar.
//! Updated from any thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Redraws a second at most.
const DRAW_HZ: u8 = 4;

/// Every bar of the process (several sources may work at once), drawn together on stderr.
static BARS: LazyLock<MultiProgress> =
    LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(DRAW_HZ)));

/// Lines on stderr that do not tear a bar being drawn: the bars are erased, the lines
/// printed, the bars drawn again below them (once per call: give many lines at once).
pub fn eprint_lines(lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    BARS.suspend(|| eprintln!("{}", lines.join("\n")));
}

pub struct Progress {
    label: String,
    bytes: bool,
    parts: Vec<(&'static str, AtomicU64, AtomicU64)>,
    bar: Option<ProgressBar>,
}

/// Whether a bar may be drawn: stderr is a terminal, and the run is not quiet.
pub fn drawable(quiet: bool) -> bool {
    use std::io::IsTerminal;
    !quiet && std::io::stderr().is_terminal()
}

impl Progress {
    /// Counts in `parts` (items); `draw`: a bar on stderr.
    pub fn items(label: &str, parts: &[&'static str], draw: bool) -> Progress {
        Progress::new(label, parts, false, draw)
    }

    /// Counts bytes (one part).
    pub fn bytes(label: &str, total: u64, draw: bool) -> Progress {
        let p = Progress::new(label, &["bytes"], true, draw);
        p.add_total("bytes", total);
        p
    }

    fn new(label: &str, parts: &[&'static str], bytes: bool, draw: bool) -> Progress {
        let bar = draw.then(|| {
            let template = if bytes {
                "{prefix} {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
            } else {
                "{prefix} {bar:30} {pos}/{len} {per_sec} eta {eta} {wide_msg}"
            };
            let bar = BARS.add(ProgressBar::new(0));
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_prefix(crate::sanitize::one_line(label).into_owned());
            bar.enable_steady_tick(Duration::from_millis(1000 / u64::from(DRAW_HZ)));
            bar
        });
        Progress {
            label: label.to_string(),
            bytes,
            parts: parts
                .iter()
                .map(|p| (*p, AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            bar,
        }
    }

    fn part(&self, name: &str) -> Option<&(&'static str, AtomicU64, AtomicU64)> {
        self.parts.iter().find(|(n, ..)| *n == name)
    }

    /// More of `part` is known to be done.
    pub fn add_total(&self, part: &str, n: u64) {
        if let Some((_, _, total)) = self.part(part) {
            total.fetch_add(n, Ordering::Relaxed);
        }
        self.redraw();
    }

    /// `n` more of `part` are done.
    pub fn inc(&self, part: &str, n: u64) {
        if let Some((_, done, _)) = self.part(part) {
            done.fetch_add(n, Ordering::Relaxed);
        }
        self.redraw();
    }

    /// (done, known) over every part.
    pub fn totals(&self) -> (u64, u64) {
        self.parts.iter().fold((0, 0), |(d, t), (_, done, total)| {
            (
                d + done.load(Ordering::Relaxed),
                t + total.load(Ordering::Relaxed),
            )
        })
    }

    /// `projects 3/6 · pipelines 40/120`, or `12.0 of 96.0 MiB`.
    pub fn summary(&self) -> String {
        if self.bytes {
            let (d, t) = self.totals();
            let mib = |b: u64| b as f64 / (1 << 20) as f64;
            return format!("{:.1} of {:.1} MiB", mib(d), mib(t));
        }
        self.parts
            .iter()
            .map(|(n, done, total)| {
                format!(
                    "{n} {}/{}",
                    done.load(Ordering::Relaxed),
                    total.load(Ordering::Relaxed)
                )
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }

    /// What the source's status says while the work goes on.
    pub fn status(&self) -> String {
        let (d, t) = self.totals();
        let pct = (d * 100).checked_div(t).unwrap_or(0);
        format!("{}: {pct}% ({})", self.label, self.summary())
    }

    fn redraw(&self) {
        if let Some(bar) = &self.bar {
            let (d, t) = self.totals();
            bar.set_length(t);
            bar.set_position(d);
            if !self.bytes {
                bar.set_message(self.summary());
            }
        }
    }

    /// The work is over: the bar is cleared.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            BARS.remove(bar);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parts_from_threads() {
        let p = Progress::items("gitlab", &["projects", "logs"], false);
        p.add_total("projects", 3);
        p.add_total("logs", 10);
        std::thread::scope(|s| {
            for _ in 0..5 {
                s.spawn(|| p.inc("logs", 2));
            }
        });
        p.inc("projects", 3);
        p.inc("nothing", 9);
        assert_eq!(p.totals(), (13, 13));
        assert_eq!(p.summary(), "projects 3/3 · logs 10/10");
        assert_eq!(p.status(), "gitlab: 100% (projects 3/3 · logs 10/10)");
        let b = Progress::bytes("file x", 4 << 20, false);
        b.inc("bytes", 1 << 20);
        assert_eq!(b.summary(), "1.0 of 4.0 MiB");
        assert_eq!(b.status(), "file x: 25% (1.0 of 4.0 MiB)");
    }
}
