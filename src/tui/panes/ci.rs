//! The CI pane: last night's GitLab failures grouped by error pattern (prevalence over 14 and
//! 30 nights, NEW badge, linked issue), passed-with-warnings pipelines apart, and each
//! project's 14-night strip. Enter on a pattern lists its failed jobs; Enter on a job shows
//! the log excerpt around the match and the job URL (`y` copies it).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};
use ratatui::Frame;

use crate::model::ci::NightCell;
use crate::sanitize::{multi_line, one_line};
use crate::store::ci::{CiJobRow, CiPipelineRow};
use crate::tui::app::{AppState, Drill};
use crate::tui::theme::Theme;
use crate::tui::view::{message, title_line};
use crate::tui::worker::CiData;

/// The CI pane's data, or a message when there is none.
fn data(state: &AppState) -> Option<&CiData> {
    match state.data() {
        Some(crate::tui::worker::ViewData::Ci(d)) => Some(d),
        _ => None,
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let Some(d) = data(state) else {
        title_line(frame, title, theme, "CI", "");
        message(frame, body, theme.dim, "loading…");
        return;
    };
    let Some(night) = &d.night else {
        title_line(frame, title, theme, "CI", "");
        message(
            frame,
            body,
            theme.dim,
            "no CI data: add a gitlab:URL source (see the README's GitLab section)",
        );
        return;
    };
    let new = d.patterns.iter().filter(|p| p.is_new).count();
    let hit = d.patterns.iter().filter(|p| p.jobs_last_night > 0).count();
    let text = if area.width >= 100 {
        format!(
            "CI night {}: {} failed, {} passed with warnings, {} passed · {hit} patterns, {new} NEW",
            night.night, night.failed, night.warnings, night.passed
        )
    } else {
        format!(
            "CI {}: {} failed, {} warn, {} ok · {hit} patterns, {new} NEW",
            night.night, night.failed, night.warnings, night.passed
        )
    };
    title_line(
        frame,
        title,
        theme,
        &text,
        &state.hint_for(&["enter", "copy"]),
    );
    let strips = (d.history.projects.len() as u16).min((body.height / 3).max(4));
    let warned: Vec<&CiPipelineRow> = night
        .pipelines
        .iter()
        .filter(|p| p.cell == NightCell::Warnings)
        .collect();
    let [patterns, warnings, history] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(u16::from(!warned.is_empty())),
        Constraint::Length(if strips > 0 { strips + 1 } else { 0 }),
    ])
    .areas(body);
    render_patterns(frame, patterns, state, theme);
    if !warned.is_empty() {
        let list: Vec<String> = warned
            .iter()
            .map(|p| format!("{} #{}", one_line(&p.project), p.id))
            .collect();
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("passed with warnings: ", theme.warn),
                Span::styled(list.join(", "), theme.text),
            ])),
            warnings,
        );
    }
    render_history(frame, history, theme, d);
}

fn render_patterns(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let (list, sel) = state.ci_patterns();
    if list.is_empty() {
        if state.filters.text.is_empty() {
            message(frame, area, theme.ok, "no failures on this night");
        } else {
            message(
                frame,
                area,
                theme.dim,
                &format!(
                    "no pattern matches the filter ({} clears it)",
                    state.key("back")
                ),
            );
        }
        return;
    }
    let wide = area.width >= 120;
    let height = area.height.saturating_sub(1) as usize;
    let first = super::first_row(sel, height);
    // Cut texts end in an ellipsis: the name has its fixed width, the error (identity) and
    // the issue share what the fixed columns leave, 2 : 1 (as their Fill constraints do).
    let name_w: u16 = if wide { 22 } else { 14 };
    let fixed = 3 + name_w + 4 + 4 + 5 + 5 + if wide { 10 } else { 0 } + 8;
    let spare = area.width.saturating_sub(fixed);
    let (ident_w, issue_w) = if wide {
        (spare * 2 / 3, spare - spare * 2 / 3)
    } else {
        (spare, 0)
    };
    let cut = |t: &str, w: u16| super::ellipsize(&one_line(t), w as usize);
    let rows = list
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, p)| {
            let style = if i == sel { theme.selected } else { theme.text };
            Row::new(vec![
                Cell::from(if p.is_new { "NEW" } else { "" }).style(theme.bad),
                Cell::from(cut(&p.name, name_w)),
                Cell::from(cut(&p.identity, ident_w)),
                Cell::from(p.jobs_last_night.to_string()).style(if p.jobs_last_night > 0 {
                    theme.bad
                } else {
                    theme.dim
                }),
                Cell::from(p.projects_last_night.len().to_string()),
                Cell::from(format!("{}/14", p.nights_14)),
                Cell::from(format!("{}/30", p.nights_30)),
                Cell::from(p.first_seen.clone()).style(theme.dim),
                Cell::from(
                    p.issue_url
                        .as_deref()
                        .map(|u| cut(u, issue_w))
                        .unwrap_or_default(),
                )
                .style(theme.key),
            ])
            .style(style)
        });
    let w = |n: u16| Constraint::Length(if wide { n } else { 0 });
    let widths = [
        Constraint::Length(3),
        Constraint::Length(if wide { 22 } else { 14 }),
        Constraint::Fill(2),
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(5),
        w(10),
        if wide {
            Constraint::Fill(1)
        } else {
            Constraint::Length(0)
        },
    ];
    super::table_with_header(
        frame,
        area,
        crate::tui::sort::header(
            crate::tui::sort::CI_PATTERNS,
            state.sort_of(crate::tui::Pane::Ci),
            theme,
        ),
        &widths,
        rows,
    );
}

fn render_history(frame: &mut Frame, area: Rect, theme: &Theme, d: &CiData) {
    if area.height == 0 {
        return;
    }
    // Worst first: failed on the last night, then by failures over the strip, then by name.
    let mut projects: Vec<&crate::store::ci::CiStrip> = d.history.projects.iter().collect();
    let bad = |p: &crate::store::ci::CiStrip| {
        let last = p.cells.last().is_some_and(|c| *c == NightCell::Failed);
        let failed = p.cells.iter().filter(|c| **c == NightCell::Failed).count();
        let warned = p
            .cells
            .iter()
            .filter(|c| **c == NightCell::Warnings)
            .count();
        (
            std::cmp::Reverse(last),
            std::cmp::Reverse(failed),
            std::cmp::Reverse(warned),
        )
    };
    projects.sort_by(|a, b| bad(a).cmp(&bad(b)).then(a.project.cmp(&b.project)));
    let rows = area.height.saturating_sub(1) as usize;
    let shown = if projects.len() > rows {
        format!(", worst {rows} of {} projects", projects.len())
    } else {
        String::new()
    };
    let mut lines = vec![Line::styled(
        format!(
            "last {} nights per project (F failed, W warnings, P passed, ? other, . no run), oldest left{shown}",
            d.history.nights.len()
        ),
        theme.header,
    )];
    let name_w = projects
        .iter()
        .take(rows)
        .map(|p| p.project.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    for p in projects.into_iter().take(rows) {
        let mut spans = vec![Span::styled(
            format!("{:<name_w$} ", one_line(&p.project)),
            theme.text,
        )];
        for c in &p.cells {
            let style = match c {
                NightCell::Failed => theme.bad,
                NightCell::Warnings => theme.warn,
                NightCell::Passed => theme.ok,
                NightCell::Other | NightCell::NoRun => theme.dim,
            };
            spans.push(Span::styled(c.symbol().to_string(), style));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// A pattern's failed jobs of the night.
pub fn render_jobs(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, pattern: &str) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let jobs = state.ci_jobs(pattern);
    let name = data(state)
        .and_then(|d| d.patterns.iter().find(|p| p.id == pattern))
        .map(|p| format!("{} {}", p.name, p.identity))
        .unwrap_or_else(|| pattern.to_string());
    title_line(
        frame,
        title,
        theme,
        &format!("CI › {name}: {} failed jobs", jobs.len()),
        &state.hint_for(&["enter", "copy", "back"]),
    );
    if jobs.is_empty() {
        message(
            frame,
            body,
            theme.dim,
            "no failed job of this pattern on this night",
        );
        return;
    }
    let sel = state.ci_job_selected.min(jobs.len() - 1);
    let height = body.height.saturating_sub(1) as usize;
    let first = super::first_row(sel, height);
    let rows = jobs
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, (p, j))| {
            let style = if i == sel { theme.selected } else { theme.text };
            Row::new(vec![
                Cell::from(one_line(&p.project).into_owned()),
                Cell::from(format!("#{}", p.id)),
                Cell::from(one_line(&j.name).into_owned()),
                Cell::from(
                    j.stage
                        .as_deref()
                        .map(|s| one_line(s).into_owned())
                        .unwrap_or_default(),
                ),
                Cell::from(
                    j.failure_reason
                        .as_deref()
                        .map(|s| one_line(s).into_owned())
                        .unwrap_or_default(),
                ),
                Cell::from(j.log_state.clone()).style(if j.log_state == "fetched" {
                    theme.dim
                } else {
                    theme.warn
                }),
                Cell::from(
                    j.web_url
                        .as_deref()
                        .map(|s| one_line(s).into_owned())
                        .unwrap_or_default(),
                )
                .style(theme.dim),
            ])
            .style(style)
        });
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(9),
        Constraint::Fill(1),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Fill(2),
    ];
    super::table(
        frame,
        body,
        theme,
        &[
            "PROJECT", "PIPELINE", "JOB", "STAGE", "REASON", "LOG", "URL",
        ],
        &widths,
        rows,
    );
}

/// One failed job: where it failed, the excerpt around the match, the end of its log.
pub fn render_job(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    theme: &Theme,
    project: &str,
    job: i64,
) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let found: Option<(&CiPipelineRow, &CiJobRow)> = data(state).and_then(|d| {
        d.night.as_ref()?.pipelines.iter().find_map(|p| {
            (p.project == project)
                .then(|| p.jobs.iter().find(|j| j.id == job).map(|j| (p, j)))
                .flatten()
        })
    });
    let Some((p, j)) = found else {
        title_line(frame, title, theme, &format!("CI › job {job}"), "");
        message(
            frame,
            body,
            theme.dim,
            "this job is no longer in the night shown",
        );
        return;
    };
    title_line(
        frame,
        title,
        theme,
        &format!("CI › {} #{} › {}", p.project, p.id, j.name),
        &state.hint_for(&["copy", "down", "back"]),
    );
    let mut lines: Vec<Line> = Vec::new();
    let field = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<10}"), theme.key),
            Span::styled(one_line(&v).into_owned(), theme.text),
        ])
    };
    lines.push(field("url", j.web_url.clone().unwrap_or_default()));
    if let Some(c) = &j.chain {
        // A child or multi-project downstream pipeline of the nightly.
        lines.push(field("via", c.clone()));
    }
    lines.push(field(
        "pattern",
        format!(
            "{}{} {}",
            if j.pattern_new { "NEW " } else { "" },
            j.pattern_name.clone().unwrap_or_default(),
            j.pattern_identity.clone().unwrap_or_default()
        ),
    ));
    if let Some(u) = &j.issue_url {
        lines.push(field("issue", u.clone()));
    }
    lines.push(field("stage", j.stage.clone().unwrap_or_default()));
    lines.push(field(
        "reason",
        j.failure_reason.clone().unwrap_or_default(),
    ));
    lines.push(field("section", j.section.clone().unwrap_or_default()));
    lines.push(field("log", j.log_state.clone()));
    // The fields stay; the log below opens at its end, where the job failed, and scrolls
    // back from there (detail_scroll counts lines up from the end).
    let mut log: Vec<Line> = Vec::new();
    for (heading, text) in [("excerpt", &j.excerpt), ("log tail", &j.tail)] {
        if let Some(t) = text {
            log.push(Line::styled(heading.to_string(), theme.header));
            for l in multi_line(t).lines() {
                log.push(Line::styled(format!("  {l}"), theme.text));
            }
        }
    }
    let head = (lines.len() as u16).min(body.height / 2);
    let width = body.width as usize;
    let log: Vec<Line> = log
        .into_iter()
        .map(|l| {
            let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
            Line::styled(super::ellipsize(&text, width), l.style)
        })
        .collect();
    let [fields, log_area] =
        Layout::vertical([Constraint::Length(head), Constraint::Min(1)]).areas(body);
    frame.render_widget(Paragraph::new(lines), fields);
    // Unwrapped, so a line is a line (the scroll counts them); long lines are cut.
    let max = (log.len() as u16).saturating_sub(log_area.height);
    let from_top = max.saturating_sub(state.detail_scroll.min(max));
    frame.render_widget(Paragraph::new(log).scroll((from_top, 0)), log_area);
}

/// What the pane shows, from the state (its part of `AppState`).
impl AppState {
    /// The CI patterns as shown (those that hit the night first, text filter applied) and the
    /// selected index.
    pub fn ci_patterns(&self) -> (Vec<&crate::store::ci::CiPatternRow>, usize) {
        let Some(crate::tui::worker::ViewData::Ci(d)) =
            self.cache_of(&crate::tui::worker::ViewRequest::Ci)
        else {
            return (Vec::new(), 0);
        };
        let mut list: Vec<&crate::store::ci::CiPatternRow> = d
            .patterns
            .iter()
            .filter(|p| {
                self.filters.matches_text(&format!(
                    "{} {} {}",
                    p.name,
                    p.identity,
                    p.projects.join(" ")
                ))
            })
            .collect();
        // Last night's first, NEW ones on top (prevalence order is kept inside each part).
        list.sort_by_key(|p| (p.jobs_last_night == 0, !p.is_new));
        if let Some(s) = self.sort_of(crate::tui::Pane::Ci) {
            crate::tui::sort::ci_patterns(&mut list, s);
        }
        let i = self
            .ci_selected
            .as_ref()
            .and_then(|s| list.iter().position(|p| p.id == *s))
            .unwrap_or(0);
        (list, i)
    }
    /// Every job of the night shown, with its pipeline.
    pub fn ci_jobs_all(
        &self,
    ) -> Vec<(
        &crate::store::ci::CiPipelineRow,
        &crate::store::ci::CiJobRow,
    )> {
        match self.cache_of(&crate::tui::worker::ViewRequest::Ci) {
            Some(crate::tui::worker::ViewData::Ci(d)) => d
                .night
                .iter()
                .flat_map(|n| n.pipelines.iter())
                .flat_map(|p| p.jobs.iter().map(move |j| (p, j)))
                .collect(),
            _ => Vec::new(),
        }
    }
    /// How many lines a job's log view holds (excerpt and tail, with their headings).
    pub fn ci_log_lines(&self, project: &str, job: i64) -> usize {
        self.ci_jobs_all()
            .into_iter()
            .find(|(p, j)| p.project == project && j.id == job)
            .map_or(0, |(_, j)| {
                [&j.excerpt, &j.tail]
                    .into_iter()
                    .flatten()
                    .map(|t| t.lines().count() + 1)
                    .sum()
            })
    }
    /// The failed jobs of a pattern on the night shown, with their pipelines.
    pub fn ci_jobs(
        &self,
        pattern: &str,
    ) -> Vec<(
        &crate::store::ci::CiPipelineRow,
        &crate::store::ci::CiJobRow,
    )> {
        let Some(crate::tui::worker::ViewData::Ci(d)) =
            self.cache_of(&crate::tui::worker::ViewRequest::Ci)
        else {
            return Vec::new();
        };
        let Some(night) = &d.night else {
            return Vec::new();
        };
        night
            .pipelines
            .iter()
            .flat_map(|p| p.jobs.iter().map(move |j| (p, j)))
            .filter(|(_, j)| j.pattern_id.as_deref() == Some(pattern))
            .collect()
    }
}

/// The CI pane's keys: its patterns, a pattern's jobs, a job's log.
pub(crate) fn enter(state: &mut AppState) {
    match state.top().cloned() {
        Some(Drill::CiJobs { pattern }) => {
            let jobs = state.ci_jobs(&pattern);
            if let Some((p, j)) = jobs.get(state.ci_job_selected.min(jobs.len().saturating_sub(1)))
            {
                let d = Drill::CiJob {
                    project: p.project.clone(),
                    job: j.id,
                };
                state.detail_scroll = 0;
                state.stack.push(d);
            }
        }
        Some(_) => {}
        None => {
            let (list, i) = state.ci_patterns();
            if let Some(p) = list.get(i) {
                let pattern = p.id.clone();
                state.ci_selected = Some(pattern.clone());
                state.ci_job_selected = 0;
                state.stack.push(Drill::CiJobs { pattern });
            }
        }
    }
}

pub(crate) fn move_by(state: &mut AppState, delta: i64) {
    match state.top().cloned() {
        Some(Drill::CiJobs { pattern }) => {
            let n = state.ci_jobs(&pattern).len();
            state.ci_job_selected = (state.ci_job_selected as i64 + delta)
                .clamp(0, n.saturating_sub(1) as i64) as usize;
        }
        Some(Drill::CiJob { project, job }) => {
            // A job's log is scrolled from its end (where the job failed): up goes back.
            let n = state.ci_log_lines(&project, job) as i64;
            state.detail_scroll = (state.detail_scroll as i64 - delta).clamp(0, n) as u16;
        }
        Some(_) => {}
        None => {
            let (list, i) = state.ci_patterns();
            let j = (i as i64 + delta).clamp(0, list.len().saturating_sub(1) as i64) as usize;
            state.ci_selected = list.get(j).map(|p| p.id.clone());
        }
    }
}

pub(crate) fn move_to_end(state: &mut AppState, end: bool) {
    match state.top().cloned() {
        Some(Drill::CiJob { project, job }) => {
            let n = state.ci_log_lines(&project, job) as u16;
            state.detail_scroll = if end { 0 } else { n }
        }
        _ => move_by(state, if end { i64::MAX / 4 } else { -(i64::MAX / 4) }),
    }
}

/// `y`: a pattern's id and name; a job's URL.
pub(crate) fn copy(state: &AppState) -> Option<String> {
    match state.top() {
        Some(Drill::CiJobs { pattern }) => {
            let jobs = state.ci_jobs(pattern);
            jobs.get(state.ci_job_selected.min(jobs.len().saturating_sub(1)))
                .and_then(|(_, j)| j.web_url.clone())
        }
        Some(Drill::CiJob { project, job }) => state
            .ci_jobs_all()
            .into_iter()
            .find(|(p, j)| p.project == *project && j.id == *job)
            .and_then(|(_, j)| j.web_url.clone()),
        Some(_) => None,
        None => {
            let (list, i) = state.ci_patterns();
            list.get(i)
                .map(|p| format!("{} {} {}", p.id, p.name, p.identity))
        }
    }
}
