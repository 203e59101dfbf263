//! The one keymap table: (mode, key) → [`Action`]. The help screen and the status-bar hints
//! are generated from it, and `[keys]` in the config overrides it. No other module looks at
//! raw key codes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use color_eyre::eyre::{bail, Result};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::{Action, InputKey};
use super::Pane;

/// Which part of the UI has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing into the `/` filter or the `:` command line.
    Input,
    /// The `?` overlay: the move keys scroll it, Esc / q / ? close it (and Ctrl-C quits).
    Help,
}

/// A key as written in the config and shown in help: `q`, `G`, `ctrl-c`, `enter`, `pgdn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    pub fn parse(text: &str) -> Result<Key> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text.trim();
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl-").or(lower.strip_prefix("c-")) {
                ctrl = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt-").or(lower.strip_prefix("m-")) {
                alt = true;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" => KeyCode::BackTab,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse::<u8>().unwrap_or(1))
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
                    _ => bail!(
                        "unknown key {text:?} (use e.g. q, G, ctrl-c, enter, esc, tab, pgdn, f1)"
                    ),
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }

    fn of(ev: &KeyEvent) -> Key {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let code = match ev.code {
            KeyCode::Char(c) if ctrl => KeyCode::Char(c.to_ascii_lowercase()),
            c => c,
        };
        Key {
            code,
            ctrl,
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        if self.alt {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("S-Tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Backspace => f.write_str("Bksp"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One row of the table: a named action, its keys, and what help says of it.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The name used in `[keys]` of the config.
    pub name: &'static str,
    pub action: Action,
    pub keys: Vec<Key>,
    pub help: &'static str,
    pub section: &'static str,
    /// Shown in the status bar's hints under this short label.
    pub hint: Option<&'static str>,
}

/// One default: name, action, keys, help, help section, status-bar hint.
type Row = (
    &'static str,
    Action,
    &'static [&'static str],
    &'static str,
    &'static str,
    Option<&'static str>,
);

/// The default table (the issue's keys; STYLE.md's where the issue is silent).
fn defaults() -> Vec<Row> {
    use Action as A;
    vec![
        ("up", A::Up, &["k", "up"], "move up", "Move", None),
        ("down", A::Down, &["j", "down"], "move down", "Move", None),
        (
            "page_up",
            A::PageUp,
            &["pgup", "ctrl-u"],
            "page up",
            "Move",
            None,
        ),
        (
            "page_down",
            A::PageDown,
            &["pgdn", "ctrl-d"],
            "page down",
            "Move",
            None,
        ),
        (
            "top",
            A::Top,
            &["g", "home"],
            "newest / top (resumes live following)",
            "Move",
            None,
        ),
        (
            "bottom",
            A::Bottom,
            &["G", "end"],
            "oldest / bottom",
            "Move",
            None,
        ),
        (
            "scroll_left",
            A::ScrollLeft,
            &["left", "h"],
            "scroll long rows left",
            "Move",
            None,
        ),
        (
            "scroll_right",
            A::ScrollRight,
            &["right", "l"],
            "scroll long rows right (the text a cut column hides)",
            "Move",
            None,
        ),
        (
            "enter",
            A::Enter,
            &["enter"],
            "drill down: remote → refs → history, event → details",
            "Views",
            Some("open"),
        ),
        (
            "back",
            A::Back,
            &["esc"],
            "back one level (at a pane: clears its filters)",
            "Views",
            Some("back"),
        ),
        (
            "next_pane",
            A::NextPane,
            &["tab"],
            "next pane",
            "Views",
            None,
        ),
        (
            "prev_pane",
            A::PrevPane,
            &["backtab"],
            "previous pane",
            "Views",
            None,
        ),
        (
            "pane_overview",
            A::GoPane(Pane::Overview),
            &["1"],
            "Overview",
            "Views",
            None,
        ),
        (
            "pane_replication",
            A::GoPane(Pane::Replication),
            &["2"],
            "Replication (Gerrit)",
            "Views",
            None,
        ),
        (
            "pane_relays",
            A::GoPane(Pane::Relays),
            &["3"],
            "Relays (ngit)",
            "Views",
            None,
        ),
        (
            "pane_timeline",
            A::GoPane(Pane::Timeline),
            &["4"],
            "Timeline (every event)",
            "Views",
            None,
        ),
        (
            "pane_session",
            A::GoPane(Pane::Session),
            &["5"],
            "Session (one correlation id)",
            "Views",
            None,
        ),
        (
            "pane_ci",
            A::GoPane(Pane::Ci),
            &["6"],
            "CI (GitLab nightly failures)",
            "Views",
            None,
        ),
        (
            "correlation",
            A::Correlation,
            &["c"],
            "the selected event's session/push across sources",
            "Views",
            Some("session"),
        ),
        (
            "filter",
            A::StartFilter,
            &["/"],
            "filter as you type (Esc clears)",
            "Filter",
            Some("filter"),
        ),
        (
            "find",
            A::StartFind,
            &["f"],
            "find: highlight matches in every column, hide nothing (n/N jump)",
            "Filter",
            Some("find"),
        ),
        (
            "next_match",
            A::NextMatch,
            &["n"],
            "next match of the find (else of the filter)",
            "Filter",
            None,
        ),
        (
            "prev_match",
            A::PrevMatch,
            &["N"],
            "previous match of the find (else of the filter)",
            "Filter",
            None,
        ),
        (
            "errors_only",
            A::ErrorsOnly,
            &["e"],
            "errors only",
            "Filter",
            Some("errors"),
        ),
        (
            "warnings_up",
            A::WarningsUp,
            &["w"],
            "warnings and errors",
            "Filter",
            None,
        ),
        (
            "all_severities",
            A::AllSeverities,
            &["a"],
            "all severities",
            "Filter",
            None,
        ),
        (
            "cycle_source",
            A::CycleSource,
            &["s"],
            "cycle the source shown (all, gerrit, ngit, ...)",
            "Filter",
            None,
        ),
        (
            "command",
            A::StartCommand,
            &[":"],
            ":since 2h  :until  :source X  :goto 14:02  :corr ID  :w FILE  :theme",
            "Filter",
            None,
        ),
        (
            "pause",
            A::TogglePause,
            &["p"],
            "pause / resume live updates",
            "Other",
            Some("pause"),
        ),
        (
            "copy",
            A::Copy,
            &["y"],
            "copy the selected row or id (OSC 52, over SSH too)",
            "Other",
            Some("copy"),
        ),
        (
            "redraw",
            A::Redraw,
            &["ctrl-l"],
            "repaint the screen",
            "Other",
            None,
        ),
        (
            "help",
            A::ShowHelp,
            &["?", "f1"],
            "this help",
            "Other",
            Some("help"),
        ),
        (
            "quit",
            A::Quit,
            &["q"],
            "quit (from a top-level pane; in a drill-down Esc goes back)",
            "Other",
            Some("quit"),
        ),
        (
            "force_quit",
            A::ForceQuit,
            &["ctrl-c"],
            "quit from anywhere",
            "Other",
            None,
        ),
    ]
}

#[derive(Debug, Clone)]
pub struct Keymap {
    pub bindings: Vec<Binding>,
    normal: HashMap<Key, usize>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::new(&BTreeMap::new()).unwrap_or_else(|_| Keymap {
            bindings: Vec::new(),
            normal: HashMap::new(),
        })
    }
}

impl Keymap {
    /// The defaults with `overrides` (action name → keys) applied; an unknown action or key,
    /// or two actions on one key, is an error naming them.
    pub fn new(overrides: &BTreeMap<String, Vec<String>>) -> Result<Keymap> {
        let mut bindings: Vec<Binding> = Vec::new();
        for (name, action, keys, help, section, hint) in defaults() {
            let keys = keys
                .iter()
                .map(|k| Key::parse(k))
                .collect::<Result<Vec<_>>>()?;
            bindings.push(Binding {
                name,
                action,
                keys,
                help,
                section,
                hint,
            });
        }
        for (name, keys) in overrides {
            let Some(b) = bindings.iter_mut().find(|b| b.name == name) else {
                let names: Vec<&str> = defaults().iter().map(|d| d.0).collect();
                bail!(
                    "[keys]: unknown action {name:?} (known: {})",
                    names.join(", ")
                );
            };
            b.keys = keys
                .iter()
                .map(|k| Key::parse(k).map_err(|e| color_eyre::eyre::eyre!("[keys] {name}: {e}")))
                .collect::<Result<Vec<_>>>()?;
        }
        let mut normal = HashMap::new();
        for (i, b) in bindings.iter().enumerate() {
            for k in &b.keys {
                if let Some(j) = normal.insert(*k, i) {
                    bail!(
                        "[keys]: {k} is bound to both {} and {}",
                        bindings[j].name,
                        b.name
                    );
                }
            }
        }
        Ok(Keymap { bindings, normal })
    }

    /// The action for a key press in `mode`, if any.
    pub fn action(&self, mode: Mode, ev: &KeyEvent) -> Option<Action> {
        let key = Key::of(ev);
        if key.ctrl && key.code == KeyCode::Char('c') {
            return Some(Action::ForceQuit);
        }
        match mode {
            Mode::Normal => match self.normal.get(&key) {
                Some(&i) => Some(self.bindings[i].action.clone()),
                // An unbound capital letter sorts by the column it marks (k9s).
                None => match key.code {
                    KeyCode::Char(c) if c.is_ascii_uppercase() && !key.ctrl && !key.alt => {
                        Some(Action::SortBy(c))
                    }
                    _ => None,
                },
            },
            // Help scrolls with the move keys; Esc, q and ? close it; other keys do nothing.
            Mode::Help => match self.normal.get(&key).map(|&i| &self.bindings[i].action) {
                Some(
                    a @ (Action::Up
                    | Action::Down
                    | Action::PageUp
                    | Action::PageDown
                    | Action::Top
                    | Action::Bottom),
                ) => Some(a.clone()),
                Some(Action::Back | Action::Quit | Action::ShowHelp) => Some(Action::Back),
                _ => None,
            },
            Mode::Input => Some(match (key.code, key.ctrl || key.alt) {
                (KeyCode::Enter, _) => Action::Submit,
                (KeyCode::Esc, _) => Action::Back,
                (KeyCode::Char('w'), true) | (KeyCode::Backspace, true) => {
                    Action::Input(InputKey::DeleteWord)
                }
                (KeyCode::Char('u'), true) => Action::Input(InputKey::Clear),
                (KeyCode::Char('a'), true) => Action::Input(InputKey::Home),
                (KeyCode::Char('e'), true) => Action::Input(InputKey::End),
                (KeyCode::Char(c), false) => Action::Input(InputKey::Char(c)),
                (KeyCode::Backspace, _) => Action::Input(InputKey::Backspace),
                (KeyCode::Delete, _) => Action::Input(InputKey::Delete),
                (KeyCode::Left, _) => Action::Input(InputKey::Left),
                (KeyCode::Right, _) => Action::Input(InputKey::Right),
                (KeyCode::Home, _) => Action::Input(InputKey::Home),
                (KeyCode::End, _) => Action::Input(InputKey::End),
                _ => return None,
            }),
        }
    }

    /// `(keys, label)` for the status bar, in table order.
    pub fn hints(&self) -> Vec<(String, &'static str)> {
        self.bindings
            .iter()
            .filter_map(|b| {
                let label = b.hint?;
                let key = b.keys.first()?;
                Some((key.to_string(), label))
            })
            .collect()
    }

    /// The keys table of the README, rows only (`| j ↓ | move down | down |`).
    pub fn markdown_rows(&self) -> String {
        self.bindings
            .iter()
            .map(|b| {
                let keys = b
                    .keys
                    .iter()
                    .map(|k| format!("`{}`", k.to_string().replace('|', "\\|")))
                    .collect::<Vec<_>>()
                    .join(" ");
                format!("| {keys} | {} | `{}` |\n", b.help, b.name)
            })
            .collect()
    }

    /// Help lines by section: `(section, [(keys, help)])`, in table order.
    pub fn help(&self) -> Vec<(&'static str, Vec<(String, &'static str)>)> {
        self.help_for(&[])
    }

    /// Help with the keys of `first` (action names: the current pane's) in a first section
    /// "This pane", then every section in table order.
    pub fn help_for(&self, first: &[&str]) -> Vec<(&'static str, Vec<(String, &'static str)>)> {
        let mut out: Vec<(&'static str, Vec<(String, &'static str)>)> = Vec::new();
        let keys_of = |b: &Binding| {
            b.keys
                .iter()
                .map(Key::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let pane: Vec<(String, &'static str)> = first
            .iter()
            .filter_map(|n| self.bindings.iter().find(|b| b.name == *n))
            .map(|b| (keys_of(b), b.help))
            .collect();
        if !pane.is_empty() {
            out.push(("This pane", pane));
        }
        let mut sort_section = Some((
            "Sort",
            vec![(
                "Shift+letter".to_string(),
                "sort the table by the column whose letter is underlined (again: reverse)",
            )],
        ));
        for b in &self.bindings {
            if b.section == "Other" {
                out.extend(sort_section.take());
            }
            let keys = b
                .keys
                .iter()
                .map(Key::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            match out.iter_mut().find(|(s, _)| *s == b.section) {
                Some((_, lines)) => lines.push((keys, b.help)),
                None => out.push((b.section, vec![(keys, b.help)])),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventKind;

    fn press(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: m,
            kind: KeyEventKind::Press,
            state: crossterm::event::KeyEventState::NONE,
        }
    }

    #[test]
    fn the_issue_keys_are_bound() {
        let k = Keymap::default();
        let n = |c: char| k.action(Mode::Normal, &press(KeyCode::Char(c), KeyModifiers::NONE));
        assert_eq!(n('j'), Some(Action::Down));
        assert_eq!(n('G'), Some(Action::Bottom));
        assert_eq!(n('e'), Some(Action::ErrorsOnly));
        assert_eq!(n('c'), Some(Action::Correlation));
        assert_eq!(n('3'), Some(Action::GoPane(Pane::Relays)));
        assert_eq!(n('x'), None);
        let ctrl_c = press(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for mode in [Mode::Normal, Mode::Input, Mode::Help] {
            assert_eq!(k.action(mode, &ctrl_c), Some(Action::ForceQuit));
        }
        // In a text field, letters are text, not commands.
        assert_eq!(
            k.action(Mode::Input, &press(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Input(InputKey::Char('q')))
        );
    }

    #[test]
    fn overrides_replace_keys_and_bad_ones_say_why() {
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), vec!["x".to_string()]);
        let k = Keymap::new(&o).unwrap();
        let x = press(KeyCode::Char('x'), KeyModifiers::NONE);
        assert_eq!(k.action(Mode::Normal, &x), Some(Action::Quit));
        let q = press(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(k.action(Mode::Normal, &q), None);
        assert!(k.help().iter().any(|(_, l)| l
            .iter()
            .any(|(keys, h)| keys == "x" && h.starts_with("quit"))));

        o.insert("qiut".to_string(), vec!["z".to_string()]);
        let e = Keymap::new(&o).unwrap_err().to_string();
        assert!(e.contains("qiut"), "{e}");
        let mut clash = BTreeMap::new();
        clash.insert("quit".to_string(), vec!["j".to_string()]);
        let e = Keymap::new(&clash).unwrap_err().to_string();
        assert!(e.contains("down") && e.contains("quit"), "{e}");
        let mut bad = BTreeMap::new();
        bad.insert("quit".to_string(), vec!["hyper-q".to_string()]);
        assert!(Keymap::new(&bad)
            .unwrap_err()
            .to_string()
            .contains("hyper-q"));
    }

    #[test]
    fn the_readme_lists_exactly_the_keys_of_the_table() {
        let readme = include_str!("../../README.md");
        // The table between the markers, after its header's separator line.
        let table = readme.find("<!-- keys:start -->").expect("start marker");
        let start = readme[table..].find("|---|---|---|\n").expect("keys table") + table + 14;
        let end = readme[start..]
            .find("<!-- keys:end -->")
            .expect("end marker")
            + start;
        let want = Keymap::default().markdown_rows();
        assert_eq!(
            &readme[start..end],
            want,
            "README keys table; expected:\n{want}"
        );
    }

    #[test]
    fn keys_parse_and_print_alike() {
        for (text, shown) in [
            ("ctrl-c", "Ctrl-c"),
            ("G", "G"),
            ("pgdn", "PgDn"),
            ("f1", "F1"),
            ("?", "?"),
        ] {
            assert_eq!(Key::parse(text).unwrap().to_string(), shown);
        }
        let k = Keymap::default();
        assert!(k.hints().iter().any(|(key, l)| key == "?" && *l == "help"));
    }
}
