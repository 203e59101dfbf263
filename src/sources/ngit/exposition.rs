//! The Prometheus text exposition format (version 0.0.4), as `/metrics` endpoints such as
//! ngit-grasp's serve it: `# HELP` / `# TYPE` lines, samples `name{label="value",...} value
//! [timestamp]`, blank lines. Label values may hold `\\`, `\"`, `\n`, commas, `=` and anything
//! else, which is why this is a real scanner and not a split on `,` and `=`.
//!
//! Parsing never fails as a whole: a line that cannot be read is reported with its number and
//! the reason, and every other line is kept.

use std::collections::HashMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written (the Rust `prometheus` encoder sorts them by name).
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carries one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

/// Everything read from one exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Family name -> declared type (`counter`, `gauge`, `histogram`, `summary`, `untyped`).
    pub types: HashMap<String, String>,
    /// Family name -> help text (unescaped).
    pub help: HashMap<String, String>,
    pub errors: Vec<LineError>,
}

impl Exposition {
    /// The samples of one metric name.
    pub fn family<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

/// Parses a whole exposition.
pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() {
            continue;
        }
        let result = match line.strip_prefix('#') {
            Some(comment) => parse_comment(comment, &mut out),
            None => parse_sample(line).map(|s| out.samples.push(s)),
        };
        if let Err(reason) = result {
            out.errors.push(LineError {
                line: i + 1,
                reason,
            });
        }
    }
    out
}

fn parse_comment(comment: &str, out: &mut Exposition) -> Result<(), String> {
    let rest = comment.trim_start_matches([' ', '\t']);
    let (keyword, rest) = split_word(rest);
    match keyword {
        "HELP" => {
            let (name, text) = split_word(rest);
            check_name(name)?;
            out.help.insert(name.to_string(), unescape_help(text));
        }
        "TYPE" => {
            let (name, kind) = split_word(rest);
            check_name(name)?;
            let kind = kind.trim();
            if !matches!(
                kind,
                "counter" | "gauge" | "histogram" | "summary" | "untyped"
            ) {
                return Err(format!("unknown metric type '{kind}' for {name}"));
            }
            out.types.insert(name.to_string(), kind.to_string());
        }
        // Any other comment is just a comment.
        _ => {}
    }
    Ok(())
}

/// The first whitespace-separated word and the rest (leading whitespace removed).
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if is_name_start(c) && chars.all(is_name_char) => Ok(()),
        _ => Err(format!("'{}' is not a metric name", clip(name))),
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(line.len(), |(i, _)| i);
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = line[name_end..].trim_start_matches([' ', '\t']);
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels).map_err(|e| format!("{name}: {e}"))?;
    }
    let mut fields = rest.split_ascii_whitespace();
    let value_text = fields.next().ok_or_else(|| format!("{name}: no value"))?;
    let value = parse_value(value_text)
        .ok_or_else(|| format!("{name}: value '{}' is not a number", clip(value_text)))?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| format!("{name}: timestamp '{}' is not an integer", clip(t)))?,
        ),
    };
    if let Some(extra) = fields.next() {
        return Err(format!(
            "{name}: unexpected '{}' after the value",
            clip(extra)
        ));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Reads `k="v", ...}` into `labels`; returns what follows the closing brace.
fn parse_labels<'a>(mut s: &'a str, labels: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let key_end = s
            .char_indices()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(s.len(), |(i, _)| i);
        let key = &s[..key_end];
        if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("bad label name at '{}'", clip(s)));
        }
        s = s[key_end..].trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("label {key}: '=' expected"))?
            .trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key}: quoted value expected"))?;
        let mut value = String::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        let end = loop {
            // Copy the plain run up to the next quote or backslash in one go.
            let Some(j) = memchr::memchr2(b'"', b'\\', &bytes[i..]).map(|j| i + j) else {
                return Err(format!("label {key}: value not closed"));
            };
            value.push_str(&s[i..j]);
            if bytes[j] == b'"' {
                break j;
            }
            match bytes.get(j + 1) {
                Some(b'n') => value.push('\n'),
                Some(b'\\') => value.push('\\'),
                Some(b'"') => value.push('"'),
                // Not an escape the format defines: keep it as written.
                Some(_) => value.push('\\'),
                None => return Err(format!("label {key}: value not closed")),
            }
            i = if matches!(bytes.get(j + 1), Some(b'n' | b'\\' | b'"')) {
                j + 2
            } else {
                j + 1
            };
        };
        labels.push((key.to_string(), value));
        s = s[end + 1..].trim_start_matches([' ', '\t']);
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err(format!("label {key}: ',' or '}}' expected"));
        }
    }
}

/// A sample value: a float, or `+Inf`, `-Inf`, `Inf`, `NaN` (any case).
fn parse_value(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => s.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

/// HELP text escapes: `\\` and `\n`.
fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn clip(s: &str) -> String {
    let mut end = s.len().min(60);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    crate::sanitize::one_line(&s[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_type_samples_and_blank_lines() {
        let text =
            "# HELP ngit_sync_relay_status Relay health status (1=healthy, 2=disconnected)\n\
                    # TYPE ngit_sync_relay_status gauge\n\
                    ngit_sync_relay_status{relay=\"wss://a.example\"} 3\n\
                    \n\
                    # HELP ngit_uptime_seconds Seconds since server startup\n\
                    # TYPE ngit_uptime_seconds counter\n\
                    ngit_uptime_seconds 285\n";
        let e = parse(text);
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        assert_eq!(e.types["ngit_sync_relay_status"], "gauge");
        assert_eq!(e.types["ngit_uptime_seconds"], "counter");
        assert_eq!(
            e.help["ngit_sync_relay_status"],
            "Relay health status (1=healthy, 2=disconnected)"
        );
        assert_eq!(e.samples.len(), 2);
        let s = &e.samples[0];
        assert_eq!(s.label("relay"), Some("wss://a.example"));
        assert_eq!(s.value, 3.0);
        assert_eq!(
            e.family("ngit_uptime_seconds").next().map(|s| s.value),
            Some(285.0)
        );
    }

    #[test]
    fn label_values_with_escapes_commas_equals_and_braces() {
        let line = r#"ngit_sync_naughty_relay_info{category="protocol_error",reason="HTTP 403, \"Forbidden\" at wss://x/?a=b&c={d}\\n\nnext",relay="wss://x/?a=b"} 2"#;
        let e = parse(line);
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        let s = &e.samples[0];
        assert_eq!(s.label("category"), Some("protocol_error"));
        assert_eq!(
            s.label("reason"),
            Some("HTTP 403, \"Forbidden\" at wss://x/?a=b&c={d}\\n\nnext")
        );
        assert_eq!(s.label("relay"), Some("wss://x/?a=b"));
        assert_eq!(s.value, 2.0);
    }

    #[test]
    fn special_values_timestamps_spacing_and_empty_label_sets() {
        let e = parse(
            "a_bucket{le=\"+Inf\"} +Inf\nb -Inf\nc NaN\nd{} 0.138475359 1700000000000\n\
             e { x = \"1\" , y=\"2\", } 1e3\n  f 7\t\n",
        );
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        let v: Vec<f64> = e.samples.iter().map(|s| s.value).collect();
        assert_eq!(v[0], f64::INFINITY);
        assert_eq!(v[1], f64::NEG_INFINITY);
        assert!(v[2].is_nan());
        assert_eq!(v[3], 0.138475359);
        assert_eq!(e.samples[3].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(
            e.samples[4].labels,
            vec![("x".into(), "1".into()), ("y".into(), "2".into())]
        );
        assert_eq!(v[4], 1000.0);
        assert_eq!(e.samples[5].name, "f");
    }

    #[test]
    fn bad_lines_are_reported_with_their_number_and_the_rest_kept() {
        let e = parse(
            "good 1\n9bad 1\nm{relay=\"open} 1\nn{relay=wss} 1\no lots\np 1 2 3\n# TYPE q wibble\nr 2\n",
        );
        assert_eq!(
            e.samples
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["good", "r"]
        );
        let lines: Vec<usize> = e.errors.iter().map(|x| x.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7]);
        assert!(
            e.errors[1].reason.contains("not closed"),
            "{:?}",
            e.errors[1]
        );
        assert!(
            e.errors[2].reason.contains("quoted value"),
            "{:?}",
            e.errors[2]
        );
        assert!(
            e.errors[3].reason.contains("not a number"),
            "{:?}",
            e.errors[3]
        );
        assert!(e.errors[5].reason.contains("wibble"), "{:?}", e.errors[5]);
    }

    #[test]
    fn help_text_escapes() {
        let e = parse("# HELP x line one\\nline two \\\\ done\n");
        assert_eq!(e.help["x"], "line one\nline two \\ done");
    }

    #[test]
    fn control_characters_in_errors_are_made_visible() {
        let e = parse("x \u{1b}[2J\n");
        assert_eq!(e.errors.len(), 1);
        assert!(!e.errors[0].reason.contains('\u{1b}'), "{:?}", e.errors[0]);
    }

    #[test]
    fn the_real_ngit_scrapes_parse_whole() {
        for (name, text) in [
            (
                "metrics-real-v3.txt",
                include_str!("../../../tests/fixtures/ngit/metrics-real-v3.txt"),
            ),
            (
                "metrics-real-v3-t0-startup.txt",
                include_str!("../../../tests/fixtures/ngit/metrics-real-v3-t0-startup.txt"),
            ),
            (
                "metrics-sample.txt",
                include_str!("../../../tests/fixtures/ngit/metrics-sample.txt"),
            ),
        ] {
            let e = parse(text);
            assert!(e.errors.is_empty(), "{name}: {:?}", e.errors);
            let sample_lines = text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .count();
            assert_eq!(
                e.samples.len(),
                sample_lines,
                "{name}: every sample line read"
            );
            assert_eq!(
                e.types.get("ngit_uptime_seconds").map(String::as_str),
                Some("counter"),
                "{name}"
            );
        }
        let e = parse(include_str!(
            "../../../tests/fixtures/ngit/metrics-real-v3.txt"
        ));
        let status: Vec<(&str, f64)> = e
            .family("ngit_sync_relay_status")
            .map(|s| (s.label("relay").unwrap_or(""), s.value))
            .collect();
        assert_eq!(
            status,
            [
                ("ws://127.0.0.1:7411", 3.0),
                ("ws://127.0.0.1:7413", 3.0),
                ("ws://127.0.0.1:7419", 3.0),
                ("wss://127.0.0.1:7411", 3.0)
            ]
        );
        let attempts = e
            .family("ngit_sync_connection_attempts_total")
            .find(|s| {
                s.label("relay") == Some("ws://127.0.0.1:7411")
                    && s.label("result") == Some("success")
            })
            .map(|s| s.value);
        assert_eq!(attempts, Some(1.0));
    }
}
