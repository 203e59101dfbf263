//! Making untrusted text safe to print on a terminal.
//!
//! Every string that came from outside (summaries, ids, paths, log text) passes through here
//! before it reaches a terminal: control characters become visible Unicode control pictures
//! (so `ESC[2J` prints as `␛[2J` instead of clearing the screen), and every invisible
//! character (C1 controls, bidi overrides and marks, zero-width spaces and joiners, the soft
//! hyphen, the byte-order mark, Unicode tags and the other format characters, line and
//! paragraph separators, Hangul fillers) is written as its code point, `⟨U+200B⟩`, so no event
//! can move the cursor, retitle the window, reorder or hide text, or make two different ids
//! look the same.

use std::borrow::Cow;

/// Bidirectional controls: embeddings, overrides, isolates and the marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}')
}

/// Characters that draw nothing (or nothing recognisable) on a terminal: the Unicode general
/// category Cf (format) in full, as of Unicode 15.1, plus the separators and fillers that are
/// blank by design. Visible spaces (U+0020, U+00A0, ...) and combining marks are not here.
fn is_invisible(c: char) -> bool {
    matches!(c,
        // Cf, format characters.
        '\u{00AD}'                      // soft hyphen
        | '\u{0600}'..='\u{0605}'
        | '\u{061C}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{180E}'                    // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}'      // zero-width space, ZWNJ, ZWJ, LRM, RLM
        | '\u{202A}'..='\u{202E}'      // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'      // word joiner, invisible operators
        | '\u{2066}'..='\u{206F}'      // bidi isolates, deprecated format characters
        | '\u{FEFF}'                    // byte-order mark / zero-width no-break space
        | '\u{FFF9}'..='\u{FFFB}'      // interlinear annotation
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}'    // tags
        // Zl, Zp: a terminal may break the line on them.
        | '\u{2028}'..='\u{2029}'
        // Blank by design though not Cf.
        | '\u{034F}'                    // combining grapheme joiner
        | '\u{115F}'..='\u{1160}'      // Hangul fillers
        | '\u{3164}'
        | '\u{FFA0}'
    )
}

fn needs_cleaning(c: char, keep_newlines: bool) -> bool {
    (c.is_control() && !(keep_newlines && c == '\n')) || is_bidi_control(c) || is_invisible(c)
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
            c if needs_cleaning(c, keep_newlines) => {
                use std::fmt::Write as _;
                let _ = write!(out, "⟨U+{:04X}⟩", c as u32);
            }
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
        assert!(s.contains("⟨U+202E⟩"), "a bidi override is named: {s:?}");
        assert!(s.contains("⟨U+009B⟩"), "a C1 control is named: {s:?}");
    }

    #[test]
    fn invisible_characters_are_made_visible() {
        for (c, name) in [
            ('\u{200B}', "⟨U+200B⟩"),
            ('\u{200C}', "⟨U+200C⟩"),
            ('\u{200D}', "⟨U+200D⟩"),
            ('\u{200E}', "⟨U+200E⟩"),
            ('\u{200F}', "⟨U+200F⟩"),
            ('\u{2060}', "⟨U+2060⟩"),
            ('\u{2061}', "⟨U+2061⟩"),
            ('\u{2064}', "⟨U+2064⟩"),
            ('\u{FEFF}', "⟨U+FEFF⟩"),
            ('\u{00AD}', "⟨U+00AD⟩"),
            ('\u{061C}', "⟨U+061C⟩"),
            ('\u{180E}', "⟨U+180E⟩"),
            ('\u{2066}', "⟨U+2066⟩"),
            ('\u{2069}', "⟨U+2069⟩"),
            ('\u{206F}', "⟨U+206F⟩"),
            ('\u{2028}', "⟨U+2028⟩"),
            ('\u{2029}', "⟨U+2029⟩"),
            ('\u{E0041}', "⟨U+E0041⟩"),
            ('\u{3164}', "⟨U+3164⟩"),
        ] {
            let text = format!("7ceff8ba{c}-1");
            assert_eq!(
                one_line(&text),
                format!("7ceff8ba{name}-1"),
                "{:X}",
                c as u32
            );
            assert_eq!(multi_line(&text), format!("7ceff8ba{name}-1"));
        }
    }

    #[test]
    fn lookalike_ids_differ_on_screen() {
        let plain = "wss://relay.example";
        let sneaky = "wss://relay\u{200B}.example";
        assert_ne!(one_line(plain), one_line(sneaky));
        assert!(!one_line(sneaky).chars().any(is_invisible));
    }

    #[test]
    fn visible_text_is_left_alone() {
        // Non-breaking and other visible spaces, accents (combining marks), emoji with a
        // variation selector, CJK and Arabic letters are text, not tricks.
        for t in [
            "a\u{00A0}b",
            "e\u{0301}",
            "✔\u{FE0F}",
            "東京",
            "مرحبا",
            "a\u{2003}b",
        ] {
            assert!(matches!(one_line(t), Cow::Borrowed(_)), "{t:?}");
        }
    }

    #[test]
    fn multi_line_keeps_newlines_only() {
        let s = multi_line("a\nb\r\n\tc");
        assert_eq!(s, "a\nb␍\n    c");
    }
}
