//! Named style slots. The dark and light themes use the 16 ANSI colours and no global
//! background; the mono theme (NO_COLOR, or a terminal without colours) shows severity by
//! weight and symbols alone.

use ratatui::style::{Color, Modifier, Style};

use crate::model::relay::Display;
use crate::model::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeName {
    Dark,
    Light,
    Mono,
}

impl ThemeName {
    pub fn parse(s: &str) -> Option<ThemeName> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dark" | "default" => Some(ThemeName::Dark),
            "light" => Some(ThemeName::Light),
            "mono" | "none" | "no-color" => Some(ThemeName::Mono),
            _ => None,
        }
    }

    /// NO_COLOR (non-empty) wins over the configured theme.
    pub fn resolve(configured: Option<&str>, no_color: bool) -> ThemeName {
        if no_color {
            return ThemeName::Mono;
        }
        configured
            .and_then(ThemeName::parse)
            .unwrap_or(ThemeName::Dark)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub text: Style,
    pub dim: Style,
    pub title: Style,
    pub tab: Style,
    pub tab_active: Style,
    pub header: Style,
    pub selected: Style,
    pub border: Style,
    pub key: Style,
    pub ok: Style,
    pub warn: Style,
    pub bad: Style,
    pub highlight: Style,
    pub status: Style,
    severity: [Style; 4],
}

impl Theme {
    pub fn of(name: ThemeName) -> Theme {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        match name {
            ThemeName::Mono => Theme {
                text: Style::new(),
                dim: Style::new().add_modifier(Modifier::DIM),
                title: bold,
                tab: Style::new(),
                tab_active: bold.add_modifier(Modifier::REVERSED),
                header: bold.add_modifier(Modifier::UNDERLINED),
                selected: bold.add_modifier(Modifier::REVERSED),
                border: Style::new(),
                key: bold,
                ok: Style::new(),
                warn: bold,
                bad: bold.add_modifier(Modifier::UNDERLINED),
                highlight: Style::new().add_modifier(Modifier::UNDERLINED),
                status: Style::new().add_modifier(Modifier::REVERSED),
                severity: [
                    Style::new().add_modifier(Modifier::DIM),
                    Style::new(),
                    bold,
                    bold.add_modifier(Modifier::UNDERLINED),
                ],
            },
            ThemeName::Dark | ThemeName::Light => {
                let (fg, dimc, accent) = if name == ThemeName::Dark {
                    (Color::Reset, Color::DarkGray, Color::Cyan)
                } else {
                    (Color::Reset, Color::DarkGray, Color::Blue)
                };
                let yellow = if name == ThemeName::Dark {
                    Color::Yellow
                } else {
                    Color::Magenta
                };
                Theme {
                    text: Style::new().fg(fg),
                    dim: Style::new().fg(dimc),
                    title: bold.fg(accent),
                    tab: Style::new().fg(dimc),
                    tab_active: bold.fg(accent).add_modifier(Modifier::REVERSED),
                    header: bold.fg(accent),
                    selected: bold.add_modifier(Modifier::REVERSED),
                    border: Style::new().fg(dimc),
                    key: bold.fg(accent),
                    ok: Style::new().fg(Color::Green),
                    warn: bold.fg(yellow),
                    bad: bold.fg(Color::Red),
                    highlight: Style::new().add_modifier(Modifier::UNDERLINED).fg(accent),
                    status: Style::new().add_modifier(Modifier::REVERSED),
                    severity: [
                        Style::new().fg(dimc),
                        Style::new().fg(fg),
                        bold.fg(yellow),
                        bold.fg(Color::Red),
                    ],
                }
            }
        }
    }

    pub fn severity(&self, s: Severity) -> Style {
        self.severity[s.rank().clamp(0, 3) as usize]
    }

    /// A relay state's style: its severity's.
    pub fn relay(&self, d: Display) -> Style {
        self.severity(d.severity())
    }
}

/// Severity as a word and a symbol, so it reads without colour: `✖ ERROR`, `▲ WARN`.
pub fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Error => "✖ ERROR",
        Severity::Warning => "▲ WARN ",
        Severity::Info => "· info ",
        Severity::Debug => "  debug",
    }
}

/// One cell of a state strip: the worse the state, the fuller the block.
pub fn strip_glyph(d: Option<Display>) -> char {
    match d.map(|d| d.severity()) {
        None => ' ',
        Some(Severity::Error) => '█',
        Some(Severity::Warning) => '▆',
        Some(Severity::Info) => '▂',
        Some(Severity::Debug) => '·',
    }
}
