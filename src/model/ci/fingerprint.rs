//! What makes two failures "the same": the masked text of a rule's capture, or of the decisive
//! error line(s) when no rule matches.

use std::sync::LazyLock;

use regex::Regex;

use super::log::{is_footer, is_runner_line, ScannedLog};

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a constant regex")
}

/// In order: what varies between two runs of the same failure.
static MASKS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        // UUIDs.
        (
            re(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
            "<uuid>",
        ),
        // Timestamps: ISO 8601 / RFC 3339, `2025-03-02 06:00:04`, times of day.
        (
            re(
                r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
            ),
            "<time>",
        ),
        (re(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
        // Temporary directories and files.
        (
            re(r"(?:/private)?(?:/var/folders/[^/\s]+/[^/\s]+|/tmp|/var/tmp|/dev/shm)/[^/\s:'`]+"),
            "<tmp>",
        ),
        (
            re(r"(?i)[A-Z]:\\Users\\[^\\\s]+\\AppData\\Local\\Temp\\[^\\\s]+"),
            "<tmp>",
        ),
        // The runner's build directories: `/builds/GROUP/PROJECT`, `~/builds/TOKEN/0/GROUP/PROJECT`.
        (
            re(
                r"(?:~|/home/[^/\s]+|/[^/\s]+)?/builds/(?:[A-Za-z0-9_-]{8}/\d+/)?[^/\s:'`]+/[^/\s:'`]+",
            ),
            "<build>",
        ),
        // Hex ids and hashes (at least 7 digits, with a digit in them), and 0x addresses.
        (re(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
        (re(r"\b[0-9a-fA-F]{7,}\b"), "<hex?>"),
        // Durations: 1h0m0s, 12.5s, 340ms, 3 minutes.
        (
            re(
                r"\b\d+(?:\.\d+)?(?:h\d+m\d+(?:\.\d+)?s|m\d+(?:\.\d+)?s|ns|us|µs|ms|s|m|h|sec|secs|seconds?|minutes?|hours?)\b",
            ),
            "<dur>",
        ),
        // Ports.
        (
            re(r"(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1?\]):\d+"),
            "<host:port>",
        ),
        // Numbers that stand alone (not `E0425`, not `python3`).
        (re(r"\d+(?:\.\d+)*"), "<n>"),
    ]
});

/// The text of a failure with what varies between runs replaced by placeholders.
pub fn mask(text: &str) -> String {
    mask_with(text, true)
}

/// A rule's capture: masked like [`mask`] except plain numbers, which a rule captures on
/// purpose (`exit code 137`, `Expression: f(1) == 2`).
pub fn mask_capture(text: &str) -> String {
    mask_with(text, false)
}

fn mask_with(text: &str, numbers: bool) -> String {
    let mut s = text.trim().to_string();
    for (r, with) in MASKS.iter() {
        if !numbers && *with == "<n>" {
            continue;
        }
        if *with == "<hex?>" {
            // A run of 7+ hex digits with digits and letters is an id; all digits is a number,
            // all letters a word (`defaced`).
            s = r
                .replace_all(&s, |c: &regex::Captures<'_>| {
                    let m = &c[0];
                    let digits = m.bytes().any(|b| b.is_ascii_digit());
                    let letters = m.bytes().any(|b| b.is_ascii_alphabetic());
                    if digits && letters {
                        "<hex>".to_string()
                    } else {
                        m.to_string()
                    }
                })
                .into_owned();
            continue;
        }
        if *with == "<n>" {
            s = mask_numbers(r, &s);
            continue;
        }
        s = r.replace_all(&s, *with).into_owned();
    }
    // One space for any run of blanks.
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Numbers not glued to a word before them (`E0425`, `python3` stay) become `<n>`.
fn mask_numbers(r: &Regex, s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for m in r.find_iter(s) {
        let glued = s[..m.start()]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphabetic() || c == '_');
        if glued {
            continue;
        }
        out.push_str(&s[last..m.start()]);
        out.push_str("<n>");
        last = m.end();
    }
    out.push_str(&s[last..]);
    out
}

/// The decisive error line(s) of a log: the first error-looking line before the runner's
/// footer (with the message of a Rust panic, the exception line of a Python traceback), else
/// the last non-empty lines before the footer. With its section.
pub fn decisive(log: &ScannedLog) -> Option<(String, Option<String>)> {
    for c in &log.candidates {
        if is_footer(&c.line) || is_runner_line(&c.line) {
            continue;
        }
        let line = c.line.trim();
        if line.starts_with("Traceback") {
            // The exception is the first line of the traceback that is not indented.
            if let Some(exc) = c
                .context
                .iter()
                .find(|l| !l.starts_with(' ') && !l.is_empty())
            {
                return Some((exc.trim().to_string(), c.section.clone()));
            }
            // Longer than the context: the exception line shows up as its own candidate or tail.
            if let Some(exc) = exception_in_tail(log) {
                return Some((exc, c.section.clone()));
            }
            continue;
        }
        if line.contains("panicked at") {
            let msg = c.context.first().map(|m| m.trim()).unwrap_or("");
            return Some((
                format!("{line} {msg}").trim().to_string(),
                c.section.clone(),
            ));
        }
        return Some((line.to_string(), c.section.clone()));
    }
    let end = log
        .tail
        .iter()
        .rposition(|(l, _)| is_footer(l))
        .unwrap_or(log.tail.len());
    let mut picked: Vec<(&str, &Option<String>)> = Vec::new();
    for (l, sec) in log.tail[..end].iter().rev() {
        if is_runner_line(l) || l.starts_with("$ ") {
            continue;
        }
        picked.push((l.trim(), sec));
        if picked.len() == 2 {
            break;
        }
    }
    if picked.is_empty() {
        return None;
    }
    let section = picked[0].1.clone();
    picked.reverse();
    Some((
        picked
            .iter()
            .map(|(l, _)| *l)
            .collect::<Vec<_>>()
            .join("\n"),
        section,
    ))
}

fn exception_in_tail(log: &ScannedLog) -> Option<String> {
    log.tail
        .iter()
        .map(|(l, _)| l.as_str())
        .find(|l| {
            !l.starts_with(' ')
                && l.split_once(": ")
                    .is_some_and(|(head, _)| head.ends_with("Error") || head.ends_with("Exception"))
        })
        .map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_what_varies() {
        assert_eq!(
            mask("Connection to 127.0.0.1:54321 refused after 12.5s at 2025-03-02T06:41:19.020Z"),
            "Connection to <host:port> refused after <dur> at <time>"
        );
        assert_eq!(
            mask("cannot open /tmp/jl_0uu9To/Manifest.toml"),
            "cannot open <tmp>/Manifest.toml"
        );
        assert_eq!(
            mask("~/builds/rz4y4fdk/0/research/GLMModels.jl/src/x.jl:12"),
            "<build>/src/x.jl:<n>"
        );
        assert_eq!(
            mask("/builds/group/proj/src/lib.rs:12:5 commit 8f2e9c1d4b"),
            "<build>/src/lib.rs:<n>:<n> commit <hex>"
        );
        assert_eq!(
            mask("job 550e8400-e29b-41d4-a716-446655440000 took 1h0m0s"),
            "job <uuid> took <dur>"
        );
        // Error codes and names with digits stay.
        assert_eq!(
            mask("error[E0425]: cannot find value `x2` in python3"),
            "error[E0425]: cannot find value `x2` in python3"
        );
        assert_eq!(mask("e2e test   failed"), "e2e test failed");
    }
}
