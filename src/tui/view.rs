//! The top-level render function. Reads the state only (the tui-input cursor is the one thing
//! it sets on the frame).
//!
//! ```text
//!  ┌──────────────────────────────────────────────────────────────────────────────┐
//!  │ syncscope  1 Overview  2 Replication  3 Relays  4 Timeline  5 Session   LIVE │ tabs
//!  │ <pane title / breadcrumb>                                                    │
//!  │ <pane body: header + the rows on screen>                                     │
//!  │ ...                                                                          │
//!  │ <sources: ok / backoff / fault (reason)>  or the / filter, the : line, flash │
//!  │ <store · rows · events/s · LIVE|PAUSED · filters · key hints>                │ status
//!  └──────────────────────────────────────────────────────────────────────────────┘
//! ```
//! Overlays (help) are drawn last.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::app::{AppState, Drill, Field};
use super::keymap::{Keymap, Mode};
use super::panes;
use super::theme::Theme;
use super::Pane;
use crate::sanitize::one_line;

/// A source's last batch older than this (seconds) is shown on the sources line.
const SOURCE_LAG_SHOWN: i64 = 60;

/// Below this the layout cannot work: a message says so instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

pub fn view(frame: &mut Frame, state: &AppState, keymap: &Keymap) {
    let theme = Theme::of(state.theme);
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}×{}, need {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        );
        // Wrapped, so it is whole on the smallest screen too.
        frame.render_widget(
            Paragraph::new(msg)
                .style(theme.warn)
                .wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let [tabs, body, line, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    render_tabs(frame, tabs, state, &theme);
    match state.top() {
        Some(Drill::Refs { remote }) => {
            panes::replication::render_refs(frame, body, state, &theme, remote)
        }
        Some(Drill::RefHistory {
            remote,
            project,
            ref_name,
        }) => {
            panes::timeline::render_history(frame, body, state, &theme, remote, project, ref_name)
        }
        Some(Drill::Event(e)) => panes::detail::render(frame, body, state, &theme, e),
        Some(Drill::RelayEvents { target, relay }) => {
            panes::timeline::render_relay(frame, body, state, &theme, target, relay)
        }
        Some(Drill::CiJobs { pattern }) => {
            panes::ci::render_jobs(frame, body, state, &theme, pattern)
        }
        Some(Drill::CiJob { project, job }) => {
            panes::ci::render_job(frame, body, state, &theme, project, *job)
        }
        Some(Drill::Session { corr }) => {
            panes::session::render(frame, body, state, &theme, Some(corr))
        }
        None => match state.pane {
            Pane::Overview => panes::overview::render(frame, body, state, &theme),
            Pane::Replication => panes::replication::render_remotes(frame, body, state, &theme),
            Pane::Relays => panes::relays::render(frame, body, state, &theme),
            Pane::Timeline => panes::timeline::render(frame, body, state, &theme),
            Pane::Session => {
                panes::session::render(frame, body, state, &theme, state.session.as_deref())
            }
            Pane::Ci => panes::ci::render(frame, body, state, &theme),
        },
    }
    render_line(frame, line, state, &theme);
    render_status(frame, status, state, &theme, keymap);
    if state.mode == Mode::Help {
        render_help(frame, area, state, &theme, keymap);
    }
}

fn render_tabs(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let mut spans = vec![Span::styled(" syncscope ", theme.title)];
    for (i, p) in Pane::ALL.iter().enumerate() {
        let style = if *p == state.pane {
            theme.tab_active
        } else {
            theme.tab
        };
        spans.push(Span::raw(" "));
        let label = if area.width >= 100 {
            format!("{} {}", i + 1, p.title())
        } else {
            format!("{} {}", i + 1, p.short())
        };
        spans.push(Span::styled(label, style));
    }
    let left = Line::from(spans);
    let mode = match state.paused {
        Some(p) => {
            let secs = (state.now.as_nanos() - p.at.as_nanos()).max(0) / 1_000_000_000;
            Span::styled(
                format!(
                    " PAUSED {:02}:{:02} · +{} new ",
                    secs / 60,
                    secs % 60,
                    group_thousands(state.status.new_since_pause)
                ),
                theme.warn,
            )
        }
        // The age is on the status bar; here the word, so the tabs keep their room.
        None => match state.stale() {
            Some(age) if area.width >= 100 => {
                Span::styled(format!(" {} ", stale_text(age)), theme.warn)
            }
            Some(_) => Span::styled(" STALE ", theme.warn),
            None => Span::styled(" LIVE ", theme.ok),
        },
    };
    let [l, r] = Layout::horizontal([Constraint::Min(10), Constraint::Length(mode.width() as u16)])
        .areas(area);
    frame.render_widget(Paragraph::new(fit_spans(left.spans, l.width as usize)), l);
    frame.render_widget(Paragraph::new(Line::from(mode)), r);
}

/// The line above the status bar: the text field being typed in, a flash, or the sources.
fn render_line(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    if state.mode == Mode::Input {
        let prompt = match state.field {
            Field::Filter => "/",
            Field::Find => "find: ",
            Field::Command => ":",
        };
        let width = area.width.saturating_sub(prompt.len() as u16 + 1) as usize;
        let scroll = state.input.visual_scroll(width);
        let value = one_line(state.input.value()).into_owned();
        let shown: String = value.chars().skip(scroll).collect();
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(prompt, theme.key),
                Span::styled(shown, theme.text),
            ])),
            area,
        );
        let x = state.input.visual_cursor().saturating_sub(scroll) as u16 + prompt.len() as u16;
        frame.set_cursor_position((area.x + x.min(area.width.saturating_sub(1)), area.y));
        return;
    }
    if let Some((msg, _)) = &state.flash {
        frame.render_widget(
            Paragraph::new(panes::ellipsize(&one_line(msg), area.width as usize)).style(theme.warn),
            area,
        );
        return;
    }
    if let Some(why) = &state.ingest_stopped {
        frame.render_widget(
            Paragraph::new(panes::ellipsize(
                &format!("ingest stopped: {}", one_line(why)),
                area.width as usize,
            ))
            .style(theme.bad),
            area,
        );
        return;
    }
    if let Some(e) = &state.query_error {
        frame.render_widget(
            Paragraph::new(panes::ellipsize(
                &format!("query failed: {}", one_line(e)),
                area.width as usize,
            ))
            .style(theme.bad),
            area,
        );
        return;
    }
    let mut spans = Vec::new();
    if state.status.sources.is_empty() {
        spans.push(Span::styled("no sources have reported yet", theme.dim));
    }
    for s in &state.status.sources {
        if !spans.is_empty() {
            spans.push(Span::styled(" · ", theme.dim));
        }
        let st = s.state.as_deref().unwrap_or("?");
        let style = match st {
            "ok" | "done" => theme.ok,
            "waiting" | "busy" => theme.dim,
            "backoff" => theme.warn,
            _ => theme.bad,
        };
        spans.push(Span::styled(short_source(&s.source), theme.text));
        spans.push(Span::raw(" "));
        spans.push(Span::styled(st.to_string(), style));
        if !matches!(st, "ok" | "done") && !s.message.is_empty() {
            spans.push(Span::styled(format!(" ({})", one_line(&s.message)), style));
        }
        // Its lag: a source that is meant to be delivering but has not committed lately.
        if st != "done" {
            if let Some(last) = s.last_batch {
                let lag = state.now.as_nanos() / 1_000_000_000 - last;
                if lag >= SOURCE_LAG_SHOWN {
                    spans.push(Span::styled(
                        format!(" last batch {} ago", panes::age(lag)),
                        theme.dim,
                    ));
                }
            }
        }
    }
    frame.render_widget(Paragraph::new(fit_spans(spans, area.width as usize)), area);
}

/// Spans cut to `width` columns, an ellipsis where the cut is.
pub fn fit_spans(spans: Vec<Span<'_>>, width: usize) -> Line<'_> {
    let total: usize = spans.iter().map(|s| s.width()).sum();
    if total <= width {
        return Line::from(spans);
    }
    let mut out = Vec::new();
    let mut used = 0;
    for s in spans {
        let w = s.width();
        if used + w < width {
            used += w;
            out.push(s);
        } else {
            let cut = panes::ellipsize(&s.content, width - used);
            out.push(Span::styled(cut, s.style));
            break;
        }
    }
    Line::from(out)
}

/// `gerrit-events:/var/log/x/stream.jsonl` → `gerrit-events:stream.jsonl`.
fn short_source(key: &str) -> String {
    let (kind, rest) = key.split_once(':').unwrap_or((key, ""));
    let tail = if rest.starts_with("http") {
        rest.trim_start_matches("http://")
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap_or(rest)
    } else {
        rest.rsplit('/').next().unwrap_or(rest)
    };
    one_line(&format!("{kind}:{tail}")).into_owned()
}

fn render_status(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, keymap: &Keymap) {
    let st = &state.status;
    // What decides first (the state, the filters in force), the store's name last: what does
    // not fit is cut with an ellipsis from the end.
    let mut text = format!(
        " {}",
        if state.paused.is_some() {
            "PAUSED".to_string()
        } else if let Some(age) = state.stale() {
            stale_text(age)
        } else {
            "LIVE".to_string()
        },
    );
    let filters = state.filters.describe();
    if !filters.is_empty() {
        text.push_str(&format!(" · filter: {}", one_line(&filters)));
    }
    if !state.find.is_empty() {
        text.push_str(&format!(" · find: \"{}\"", one_line(&state.find)));
    }
    text.push_str(&format!(
        " · {} rows · {:.0} ev/s · {}",
        group_thousands(st.rows),
        st.events_per_sec,
        one_line(&state.store_path),
    ));
    // The state first; key hints take what room is left, whole hints only.
    let room = (area.width as usize).saturating_sub(text.chars().count() + 2);
    let mut hints = String::new();
    for (k, l) in keymap.hints() {
        let h = format!("  {k} {l}");
        if hints.chars().count() + h.chars().count() > room {
            break;
        }
        hints.push_str(&h);
    }
    let [l, r] = Layout::horizontal([
        Constraint::Min(10),
        Constraint::Length(hints.chars().count() as u16 + 1),
    ])
    .areas(area);
    let text = panes::ellipsize(&text, l.width as usize);
    frame.render_widget(Paragraph::new(text).style(theme.status), l);
    frame.render_widget(Paragraph::new(format!("{hints} ")).style(theme.status), r);
}

/// `STALE · newest 3h ago`: nothing ingests and the store is unchanged.
pub fn stale_text(age: i64) -> String {
    if age < 0 {
        "STALE · empty store".to_string()
    } else {
        format!("STALE · newest {} ago", panes::age(age))
    }
}

pub fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The `?` overlay, generated from the keymap table: the current pane's keys first, then
/// every key; it scrolls (the move keys) when it is taller than the screen.
fn render_help(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, keymap: &Keymap) {
    let mut lines: Vec<Line> = Vec::new();
    for (section, entries) in keymap.help_for(state.pane_actions()) {
        lines.push(Line::styled(section, theme.header));
        for (keys, help) in entries {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<12}"), theme.key),
                Span::styled(help, theme.text),
            ]));
        }
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = 90.min(area.width);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let inner_h = h.saturating_sub(2);
    let max_scroll = (lines.len() as u16).saturating_sub(inner_h);
    let scroll = state.help_scroll.min(max_scroll);
    let title = format!(
        " keys {}-{} of {} · {}/{} scroll · {} closes ",
        scroll + 1,
        (scroll + inner_h).min(lines.len() as u16),
        lines.len(),
        state.key("down"),
        state.key("up"),
        state.key("back"),
    );
    frame.render_widget(Clear, popup);
    let block = ratatui::widgets::Block::bordered()
        .title(panes::ellipsize(&title, w.saturating_sub(2) as usize))
        .border_style(theme.border);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
}

/// A title line for a pane: the breadcrumb, and a right-aligned note when there is room.
pub fn title_line(frame: &mut Frame, area: Rect, theme: &Theme, title: &str, note: &str) {
    let title = one_line(title).into_owned();
    let note = one_line(note).into_owned();
    let (tw, nw) = (title.chars().count(), note.chars().count());
    if tw + nw + 2 > area.width as usize {
        let title = panes::ellipsize(&title, area.width as usize);
        frame.render_widget(Paragraph::new(title).style(theme.title), area);
        return;
    }
    let [l, r] =
        Layout::horizontal([Constraint::Min(10), Constraint::Length(nw as u16 + 1)]).areas(area);
    frame.render_widget(Paragraph::new(title).style(theme.title), l);
    frame.render_widget(Paragraph::new(note).style(theme.dim), r);
}

/// A plain centred-ish message in a pane (empty states and hints).
pub fn message(frame: &mut Frame, area: Rect, style: Style, text: &str) {
    if area.height == 1 {
        // One line: cut with an ellipsis, never silently.
        let text = panes::ellipsize(&one_line(text), area.width as usize);
        frame.render_widget(Paragraph::new(text).style(style), area);
        return;
    }
    // Wrapped over the lines the area has, so the whole message is there.
    frame.render_widget(
        Paragraph::new(one_line(text).into_owned())
            .style(style)
            .wrap(ratatui::widgets::Wrap { trim: true }),
        area,
    );
}

/// Lines that wrap and scroll (event details, a CI job's log), the scroll kept in range.
pub fn scrolled_text(frame: &mut Frame, area: Rect, lines: Vec<Line<'_>>, scroll: u16) {
    let max_scroll = (lines.len() as u16).saturating_sub(area.height);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .scroll((scroll.min(max_scroll), 0)),
        area,
    );
}
