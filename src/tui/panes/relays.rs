//! The Relays pane: every ngit relay with its state, connection/health, time in state, failure
//! streak, flapping, and a strip of its state over the last hour (a column a minute).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};
use ratatui::Frame;

use super::age;
use crate::sanitize::one_line;
use crate::tui::app::{AppState, HISTORY_MINUTES};
use crate::tui::theme::{strip_glyph, Theme};
use crate::tui::view::{message, title_line};
use crate::tui::worker::ViewData;

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let data = state.data().and_then(|d| match d {
        ViewData::Relays(r) => Some(r),
        _ => None,
    });
    let Some(d) = data else {
        title_line(frame, area, theme, "Relays", "");
        let [_, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
        message(frame, rest, theme.dim, "loading…");
        return;
    };
    let now = state.now.as_nanos();
    let down: Vec<_> = d.targets.iter().filter(|t| !t.up).collect();
    let [title, targets, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(down.len().min(3) as u16 + d.unreadable.len().min(1) as u16),
        Constraint::Min(1),
    ])
    .areas(area);
    let (list, sel) = state.relays();
    title_line(
        frame,
        title,
        theme,
        &format!(
            "Relays: {} relays on {} targets{}",
            list.len(),
            d.targets.len(),
            if state.stale().is_some() {
                " (STALE: the last known states)"
            } else {
                ""
            }
        ),
        &format!(
            "strip: last hour, a column a minute (█ dead ▆ warning ▂ ok) · {}",
            state.hint_for(&["enter"])
        ),
    );
    let mut lines: Vec<Line> = down
        .iter()
        .take(3)
        .map(|t| {
            let since = t
                .down_since
                .map(|s| age((now - s) / 1_000_000_000))
                .unwrap_or_default();
            Line::styled(
                format!(
                    "target {} DOWN for {since}: {}",
                    one_line(&t.target),
                    one_line(t.error.as_deref().unwrap_or("no answer"))
                ),
                theme.bad,
            )
        })
        .collect();
    if let Some(u) = d.unreadable.first() {
        lines.push(Line::styled(
            format!("unreadable saved state: {}", one_line(u)),
            theme.warn,
        ));
    }
    frame.render_widget(Paragraph::new(lines), targets);
    if list.is_empty() {
        message(
            frame,
            body,
            theme.dim,
            if d.targets.is_empty() {
                "no relays: add an ngit-metrics:http://HOST:PORT/metrics or a prometheus:http://HOST:9090 source"
            } else {
                "no relays match the filters"
            },
        );
        return;
    }
    // The strip takes what the other columns leave, up to an hour; the relay name keeps 26.
    let wide = area.width >= 140;
    let (state_w, target_w) = if area.width >= 100 {
        (22, 16)
    } else {
        (14, 12)
    };
    // The columns and the 7 spaces between them.
    let fixed = state_w + target_w + if wide { 24 } else { 0 } + 6 + 6 + 4 + 7;
    let strip_width = (area.width as usize)
        .saturating_sub(fixed + 26)
        .min(HISTORY_MINUTES);
    let height = body.height.saturating_sub(1) as usize;
    let first = super::first_row(sel, height);
    // The relay column: what the others leave (at least 26), cut with an ellipsis.
    let name_w = (area.width as usize)
        .saturating_sub(fixed + strip_width)
        .max(10);
    let rows =
        list.iter()
            .enumerate()
            .skip(first)
            .take(height)
            .filter_map(|(i, (target, name))| {
                let t = d.targets.iter().find(|t| t.target == *target)?;
                let s = t.relays.get(name)?;
                // A target that does not answer says nothing of its relays now: they are
                // unknown since it went down (the last known state greyed), never LIVE.
                let down_since = (!t.up).then_some(t.down_since).flatten();
                let disp = s.display();
                let strip: Vec<Span> = d
                    .strips
                    .get(&(target.clone(), name.clone()))
                    .map(|cells| {
                        cells[cells.len().saturating_sub(strip_width)..]
                            .iter()
                            .map(|c| {
                                let style = c.map(|d| theme.relay(d)).unwrap_or(theme.dim);
                                Span::styled(strip_glyph(*c).to_string(), style)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let style = if i == sel {
                    theme.selected
                } else if down_since.is_some() {
                    theme.dim
                } else {
                    theme.text
                };
                // A store nobody writes: the states are the last known ones, greyed.
                let stale = state.stale().is_some();
                let (label, label_style) = match down_since {
                    Some(_) if state_w < 22 => ("UNKNOWN·DOWN", theme.dim),
                    Some(_) => ("UNKNOWN (target down)", theme.dim),
                    None if stale => (disp.label(), theme.dim),
                    None => (disp.label(), theme.relay(disp)),
                };
                let label = super::ellipsize(label, state_w);
                let in_state = down_since.unwrap_or_else(|| s.since());
                Some(
                    Row::new(vec![
                        Cell::from(label).style(label_style),
                        Cell::from(super::ellipsize(&one_line(name), name_w)),
                        Cell::from(super::ellipsize(&short_target(target), target_w))
                            .style(theme.dim),
                        Cell::from(super::ellipsize(
                            &format!(
                                "{}/{}",
                                s.connection.map_or("-".into(), |c| c.name()),
                                s.health.map_or("-".into(), |h| h.name())
                            ),
                            24,
                        )),
                        Cell::from(age((now - in_state) / 1_000_000_000)),
                        Cell::from(s.streak.to_string()).style(if s.streak > 0 {
                            theme.warn
                        } else {
                            theme.dim
                        }),
                        Cell::from(if s.flapping { "FLAP" } else { "" }).style(theme.warn),
                        Cell::from(Line::from(strip)),
                    ])
                    .style(style),
                )
            });
    let widths = [
        Constraint::Length(state_w as u16),
        Constraint::Length(name_w as u16),
        Constraint::Length(target_w as u16),
        Constraint::Length(if wide { 24 } else { 0 }),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(strip_width as u16),
    ];
    super::table_with_header(
        frame,
        body,
        crate::tui::sort::header(
            crate::tui::sort::RELAYS,
            state.sort_of(crate::tui::Pane::Relays),
            theme,
        ),
        &widths,
        rows,
    );
}

/// `http://127.0.0.1:7334/metrics` → `127.0.0.1:7334`: which target a relay was seen on.
pub fn short_target(t: &str) -> String {
    let rest = t.split_once("://").map_or(t, |(_, r)| r);
    one_line(rest.split('/').next().unwrap_or(rest)).into_owned()
}

/// What the pane shows, from the state (its part of `AppState`).
impl AppState {
    /// The relays as shown, worst first: `(target, relay name)`, and the selected index.
    pub fn relays(&self) -> (Vec<(String, String)>, usize) {
        let Some(crate::tui::worker::ViewData::Relays(d)) =
            self.cache_of(&crate::tui::worker::ViewRequest::Relays {
                strip_minutes: HISTORY_MINUTES,
            })
        else {
            return (Vec::new(), 0);
        };
        let mut list: Vec<(i64, String, String)> = Vec::new();
        for t in &d.targets {
            // GONE relays stay listed (never LIVE) for an hour after their series vanished.
            for (name, s) in t
                .relays
                .iter()
                .filter(|(_, s)| s.listed_at(self.now.as_nanos()))
            {
                let sev = s.display().severity();
                let shown = match self.filters.min_severity {
                    Some(min) => sev >= min,
                    None => true,
                };
                // The filter matches every column the row shows.
                let row = format!(
                    "{} {} {} {}/{}",
                    s.display().label(),
                    name,
                    t.target,
                    s.connection.map_or("-".into(), |c| c.name()),
                    s.health.map_or("-".into(), |h| h.name())
                );
                if shown && self.filters.matches_text(&row) {
                    list.push((
                        -(sev.rank() * 2 + i64::from(s.flapping)),
                        t.target.clone(),
                        name.clone(),
                    ));
                }
            }
        }
        list.sort();
        let mut list: Vec<(String, String)> = list.into_iter().map(|(_, t, n)| (t, n)).collect();
        if let Some(s) = self.sort_of(crate::tui::Pane::Relays) {
            let mut rows: Vec<(String, String, &crate::model::relay::RelayState)> = list
                .iter()
                .filter_map(|(t, n)| {
                    let st = d.targets.iter().find(|x| x.target == *t)?.relays.get(n)?;
                    Some((t.clone(), n.clone(), st))
                })
                .collect();
            crate::tui::sort::relays(&mut rows, s);
            list = rows.into_iter().map(|(t, n, _)| (t, n)).collect();
        }
        let i = self
            .relay_selected
            .as_ref()
            .and_then(|s| list.iter().position(|x| x == s))
            .unwrap_or(0);
        (list, i)
    }
}

/// The Relays pane's keys. Enter: a relay's own events, a drill-down with its breadcrumb.
pub(crate) fn enter(state: &mut AppState) {
    let (list, i) = state.relays();
    if let Some((target, relay)) = list.get(i).cloned() {
        state.history_nav = crate::tui::app::EventsNav::default();
        state
            .stack
            .push(crate::tui::app::Drill::RelayEvents { target, relay });
    }
}

pub(crate) fn move_by(state: &mut AppState, delta: i64) {
    let (list, i) = state.relays();
    let j = (i as i64 + delta).clamp(0, list.len().saturating_sub(1) as i64) as usize;
    state.relay_selected = list.get(j).cloned();
}

/// `y`: the relay's URL.
pub(crate) fn copy(state: &AppState) -> Option<String> {
    let (list, i) = state.relays();
    list.get(i).map(|(_, r)| r.clone())
}
