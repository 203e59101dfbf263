//! Making untrusted text safe to print on a terminal.
//!
//! Every string that came from outside (summaries, ids, paths, log text) passes through here
//! before it reaches a terminal: control characters become visible Unicode control pictures
//! (so `ESC[2J` prints as `␛[2J` instead of clearing the screen), C1 controls and bidi
//! overrides become `�`, so no event can move the cursor, retitle the window or hide text.

use std::borrow::Cow;

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}')
}

fn needs_cleaning(c: char, keep_newlines: bool) -> bool {
    (c.is_control() && !(keep_newlines && c == '\n')) || is_bidi_control(c)
}

fn clean(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| needs_cleaning(c, keep_newlines)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\n' | '\r' | '\t' if !keep_newlines => out.push(' '),
            '\t' => out.push_str("    "),
            '\u{0}'..='\u{1f}' => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'));
            }
            '\u{7f}' => out.push('\u{2421}'),
            c if needs_cleaning(c, keep_newlines) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// For one row of a table or a log line: newlines and tabs become spaces, every other control
/// character becomes visible.
pub fn one_line(text: &str) -> Cow<'_, str> {
    clean(text, false)
}

/// For multi-line views (details, log excerpts): newlines kept, everything else as `one_line`.
pub fn multi_line(text: &str) -> Cow<'_, str> {
    clean(text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            one_line("Ready → Backfilling ✓"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escapes_and_controls_cannot_reach_the_terminal() {
        let evil = "ok\x1b[2J\x1b]0;pwned\x07\rhidden\u{202E}txt\u{9b}31m\x7f";
        let s = one_line(evil);
        assert!(!s.chars().any(|c| c.is_control()), "{s:?}");
        assert!(s.contains("␛[2J"));
        assert!(s.contains("␛]0;pwned␇"));
        assert!(!s.contains('\u{202E}'));
        assert!(s.contains(" hidden"));
    }

    #[test]
    fn multi_line_keeps_newlines_only() {
        let s = multi_line("a\nb\r\n\tc");
        assert_eq!(s, "a\nb␍\n    c");
    }
}
