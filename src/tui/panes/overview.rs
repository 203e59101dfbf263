//! The Overview pane: the 3 a.m. answer at a glance. One line per system, the event rate per
//! severity over the last hour, the newest errors.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::{age, clock};
use crate::model::relay::{Display, Health};
use crate::model::Severity;
use crate::sanitize::one_line;
use crate::tui::app::AppState;
use crate::tui::theme::{severity_label, Theme};
use crate::tui::view::{message, title_line};
use crate::tui::worker::{OverviewData, ViewData};

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(ViewData::Overview(o)) = state.data() else {
        title_line(frame, area, theme, "Overview", "");
        let [_, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
        message(frame, rest, theme.dim, "loading…");
        return;
    };
    let [title, systems, rates, errors] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(4 + u16::from(o.ci.is_some())),
        Constraint::Length(5),
        Constraint::Min(2),
    ])
    .areas(area);
    title_line(
        frame,
        title,
        theme,
        "Overview",
        "Enter: event · c: its session · 2/3/4: details",
    );
    frame.render_widget(Paragraph::new(system_lines(o, state, theme)), systems);
    render_rates(frame, rates, o, theme);
    render_errors(frame, errors, state, o, theme);
}

fn system_lines<'a>(o: &'a OverviewData, state: &AppState, theme: &Theme) -> Vec<Line<'a>> {
    let now = state.now.as_nanos() / 1_000_000_000;
    let label = |s: &'static str| Span::styled(format!("{s:<12}"), theme.key);
    let mut lines = Vec::new();

    // Gerrit.
    let failed: Vec<_> = o.remotes.iter().filter(|r| r.is_failed()).collect();
    let mut g = vec![label("Gerrit")];
    if o.remotes.is_empty() {
        g.push(Span::styled("no replication events yet", theme.dim));
    } else {
        if failed.is_empty() {
            g.push(Span::styled(
                format!("all {} remotes OK", o.remotes.len()),
                theme.ok,
            ));
        } else {
            g.push(Span::styled(format!("{} FAILED", failed.len()), theme.bad));
            g.push(Span::raw(format!(
                ", {} OK",
                o.remotes.len() - failed.len()
            )));
        }
        if let Some(w) = failed.first() {
            let mut t = format!(" · worst {}: {} refs failed", one_line(&w.remote), w.failed);
            if w.retrying > 0 {
                t.push_str(&format!(", {} retrying", w.retrying));
            }
            if let Some(e) = &w.last_error {
                t.push_str(&format!(" · {}", one_line(e)));
            }
            g.push(Span::styled(t, theme.text));
        }
        let retrying: u64 = o.remotes.iter().map(|r| r.retrying).sum();
        if failed.is_empty() && retrying > 0 {
            g.push(Span::styled(
                format!(" · {retrying} refs retrying"),
                theme.warn,
            ));
        }
    }
    lines.push(Line::from(g));

    // ngit relays.
    let mut n = vec![label("ngit relays")];
    let relays: Vec<_> = o
        .relays
        .iter()
        .flat_map(|t| t.relays.values())
        .filter(|r| r.present)
        .collect();
    let down: Vec<_> = o.relays.iter().filter(|t| !t.up).collect();
    if o.relays.is_empty() {
        n.push(Span::styled("no relay targets scraped yet", theme.dim));
    } else {
        let count = |f: &dyn Fn(&&crate::model::relay::RelayState) -> bool| {
            relays.iter().filter(|r| f(r)).count()
        };
        let dead = count(&|r| r.display() == Display::Dead);
        let degraded = count(&|r| r.health == Some(Health::Degraded));
        let syncing =
            count(&|r| r.display() == Display::Syncing || r.display() == Display::Connecting);
        let live = count(&|r| {
            matches!(
                r.display(),
                Display::Live | Display::LiveStabilising | Display::LivePartialHistory
            )
        });
        n.push(Span::raw(format!("{} relays: ", relays.len())));
        n.push(Span::styled(format!("{live} live"), theme.ok));
        if syncing > 0 {
            n.push(Span::styled(format!(", {syncing} catching up"), theme.text));
        }
        if degraded > 0 {
            n.push(Span::styled(format!(", {degraded} degraded"), theme.warn));
        }
        if dead > 0 {
            n.push(Span::styled(format!(", {dead} DEAD"), theme.bad));
        }
        let flapping = count(&|r| r.flapping);
        if flapping > 0 {
            n.push(Span::styled(format!(", {flapping} flapping"), theme.warn));
        }
        for t in &down {
            let since = t
                .down_since
                .map(|d| age(now - d / 1_000_000_000))
                .unwrap_or_default();
            n.push(Span::styled(
                format!(" · target {} DOWN {since}", one_line(&t.target)),
                theme.bad,
            ));
        }
    }
    lines.push(Line::from(n));

    // Spacedrive.
    let mut s = vec![label("Spacedrive")];
    let sd = o
        .last_hour
        .iter()
        .find(|(src, _)| src == "spacedrive")
        .map(|(_, c)| *c);
    match sd {
        None if o.open_sessions.is_empty() => {
            s.push(Span::styled("no sync events in the last hour", theme.dim))
        }
        _ => {
            let c = sd.unwrap_or([0; 4]);
            s.push(Span::raw(format!(
                "{} open sync sessions",
                o.open_sessions.len()
            )));
            if let Some((corr, since)) = o.open_sessions.first() {
                s.push(Span::styled(
                    format!(
                        " (newest {} {} ago)",
                        one_line(corr),
                        age(now - since.as_nanos() / 1_000_000_000)
                    ),
                    theme.dim,
                ));
            }
            let (e, w) = (c[3], c[2]);
            s.push(Span::raw(" · last hour: "));
            s.push(Span::styled(
                format!("{e} errors"),
                if e > 0 { theme.bad } else { theme.ok },
            ));
            s.push(Span::styled(
                format!(", {w} warnings"),
                if w > 0 { theme.warn } else { theme.text },
            ));
        }
    }
    lines.push(Line::from(s));

    // GitLab CI: the latest night.
    if let Some((night, hit, new)) = &o.ci {
        let mut c = vec![label("CI")];
        c.push(Span::raw(format!("night {}: ", night.night)));
        c.push(Span::styled(
            format!("{} failed pipelines", night.failed),
            if night.failed > 0 {
                theme.bad
            } else {
                theme.ok
            },
        ));
        c.push(Span::raw(format!(
            " in {} projects, {hit} patterns",
            night.projects
        )));
        if *new > 0 {
            c.push(Span::styled(format!(" ({new} NEW)"), theme.bad));
        }
        if night.warnings > 0 {
            c.push(Span::styled(
                format!(", {} passed with warnings", night.warnings),
                theme.warn,
            ));
        }
        lines.push(Line::from(c));
    }

    // Errors per other system in the last hour.
    let mut other = vec![label("last hour")];
    if o.last_hour.is_empty() {
        other.push(Span::styled("no events", theme.dim));
    }
    for (i, (src, c)) in o.last_hour.iter().enumerate() {
        if i > 0 {
            other.push(Span::styled(" · ", theme.dim));
        }
        other.push(Span::raw(format!("{} ", one_line(src))));
        other.push(Span::styled(
            format!("{}E", c[3]),
            if c[3] > 0 { theme.bad } else { theme.dim },
        ));
        other.push(Span::styled(
            format!(" {}W", c[2]),
            if c[2] > 0 { theme.warn } else { theme.dim },
        ));
        other.push(Span::styled(format!(" {}", c[0] + c[1]), theme.dim));
    }
    lines.push(Line::from(other));
    lines
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One sparkline per severity over the last hour, a column a minute (the newest right).
fn render_rates(frame: &mut Frame, area: Rect, o: &OverviewData, theme: &Theme) {
    let mut lines = vec![Line::styled("events per minute, last hour", theme.header)];
    let width = (area.width as usize).saturating_sub(24);
    let shown = &o.rates[o.rates.len().saturating_sub(width)..];
    for sev in [
        Severity::Error,
        Severity::Warning,
        Severity::Info,
        Severity::Debug,
    ] {
        let r = sev.rank() as usize;
        let max = shown.iter().map(|m| m[r]).max().unwrap_or(0);
        let bars: String = shown
            .iter()
            .map(|m| match (m[r], max) {
                (0, _) | (_, 0) => ' ',
                (v, max) => BARS[((v * 7).div_ceil(max) as usize).min(7)],
            })
            .collect();
        lines.push(Line::from(vec![
            Span::styled(severity_label(sev), theme.severity(sev)),
            Span::styled(format!(" {:>8} ", format!("max {max}")), theme.dim),
            Span::styled(bars, theme.severity(sev)),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn render_errors(frame: &mut Frame, area: Rect, state: &AppState, o: &OverviewData, theme: &Theme) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    frame.render_widget(
        Paragraph::new(Line::styled("newest errors", theme.header)),
        title,
    );
    if o.newest_errors.is_empty() {
        message(frame, body, theme.ok, "no errors stored");
        return;
    }
    let wide = area.width >= 120;
    let height = body.height as usize;
    let first = super::first_row(state.error_selected, height);
    let rows = o
        .newest_errors
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, e)| {
            let style = if i == state.error_selected {
                theme.selected
            } else {
                theme.text
            };
            Row::new(vec![
                Cell::from(clock(e.event.timestamp, wide)).style(theme.dim),
                Cell::from(one_line(&e.event.source).into_owned()),
                Cell::from(one_line(&e.event.event_type).into_owned()).style(theme.bad),
                Cell::from(one_line(&e.event.summary).into_owned()),
            ])
            .style(style)
        });
    let widths = [
        Constraint::Length(if wide { 18 } else { 8 }),
        Constraint::Length(10),
        Constraint::Length(22),
        Constraint::Min(10),
    ];
    frame.render_widget(Table::new(rows, widths).column_spacing(1), body);
}
