//! Writing the Prometheus text exposition format (0.0.4): families with their HELP and TYPE
//! lines, samples contiguous per family, label values escaped and untrusted text sanitized.

use std::fmt::Write;

use crate::sanitize::one_line;

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family being written: its samples are collected apart so that every family's
/// samples stay together whatever order the caller visits things in.
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    body: String,
}

impl Family {
    pub fn gauge(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind: "gauge",
            body: String::new(),
        }
    }

    /// A counter: its name ends in `_total`.
    pub fn counter(name: &'static str, help: &'static str) -> Family {
        debug_assert!(name.ends_with("_total"));
        Family {
            name,
            help,
            kind: "counter",
            body: String::new(),
        }
    }

    /// One sample. Label names are the caller's constants; values are untrusted text.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.body.push_str(self.name);
        if !labels.is_empty() {
            self.body.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.body.push(',');
                }
                self.body.push_str(k);
                self.body.push_str("=\"");
                escape_into(&mut self.body, v);
                self.body.push('"');
            }
            self.body.push('}');
        }
        self.body.push(' ');
        push_value(&mut self.body, value);
        self.body.push('\n');
    }

    /// One sample whose first labels are `pre`, already written by [`labels`] (a group's
    /// labels escaped once for all its samples), then `extra`.
    pub fn sample_with(&mut self, pre: &str, extra: &[(&str, &str)], value: f64) {
        self.body.push_str(self.name);
        self.body.push('{');
        self.body.push_str(pre);
        for (k, v) in extra {
            if !pre.is_empty() {
                self.body.push(',');
            }
            self.body.push_str(k);
            self.body.push_str("=\"");
            escape_into(&mut self.body, v);
            self.body.push('"');
        }
        self.body.push_str("} ");
        push_value(&mut self.body, value);
        self.body.push('\n');
    }

    /// Appends the family (HELP, TYPE, samples) to `out`; nothing for a family without samples.
    pub fn write_to(&self, out: &mut String) {
        if self.body.is_empty() {
            return;
        }
        out.push_str("# HELP ");
        out.push_str(self.name);
        out.push(' ');
        // HELP text escapes only backslash and newline.
        for c in self.help.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('\n');
        out.push_str("# TYPE ");
        out.push_str(self.name);
        out.push(' ');
        out.push_str(self.kind);
        out.push('\n');
        out.push_str(&self.body);
    }
}

/// `k="v",...` escaped, for [`Family::sample_with`].
pub fn labels(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_into(&mut out, v);
        out.push('"');
    }
    out
}

/// A label value: control characters made visible (it is read by people on a dashboard),
/// then `\`, `"` and newline escaped as the format requires.
fn escape_into(out: &mut String, value: &str) {
    // Most values need nothing: copied whole.
    if !value
        .bytes()
        .any(|b| b < 0x20 || b == 0x7f || b == b'\\' || b == b'"' || b >= 0x80)
    {
        out.push_str(value);
        return;
    }
    for c in one_line(value).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_escaped_and_parse_back() {
        let mut f = Family::gauge("syncscope_x", "A \\ help\nline");
        f.sample(&[("a", "q\"uo\\te"), ("b", "new\nline\x1b[2J")], 3.0);
        f.sample(&[], 0.25);
        f.sample(&[("a", "")], f64::INFINITY);
        f.sample_with(&labels(&[("a", "x\"y")]), &[("b", "z")], 1.0);
        let mut out = String::new();
        f.write_to(&mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "# HELP syncscope_x A \\\\ help\\nline");
        assert_eq!(lines[1], "# TYPE syncscope_x gauge");
        assert!(!out.contains('\x1b'), "{out:?}");
        let parsed = crate::sources::ngit::exposition::parse(&out);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.types["syncscope_x"], "gauge");
        assert_eq!(parsed.help["syncscope_x"], "A \\ help\nline");
        let s: Vec<_> = parsed.family("syncscope_x").collect();
        assert_eq!(s.len(), 4);
        assert_eq!(
            (s[3].label("a"), s[3].label("b")),
            (Some("x\"y"), Some("z"))
        );
        assert_eq!(s[0].label("a"), Some("q\"uo\\te"));
        let b = s[0].label("b").unwrap();
        assert!(!b.contains('\n') && !b.contains('\x1b'), "{b:?}");
        assert_eq!(s[0].value, 3.0);
        assert_eq!(s[1].value, 0.25);
        assert_eq!(s[2].value, f64::INFINITY);
    }

    #[test]
    fn an_empty_family_writes_nothing() {
        let f = Family::counter("syncscope_y_total", "y");
        let mut out = String::new();
        f.write_to(&mut out);
        assert!(out.is_empty());
    }
}
