//! The Replication pane: Gerrit remotes worst first; Enter opens a remote's refs (status,
//! type, when, retrying/stuck, attempts, last error); Enter on a ref opens its history.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Cell, Row};
use ratatui::Frame;

use super::age;
use crate::model::gerrit::RefStatus;
use crate::sanitize::one_line;
use crate::tui::app::{AppState, Drill, EventsNav};
use crate::tui::theme::Theme;
use crate::tui::view::{message, title_line};
use crate::tui::worker::ViewData;

/// A ref SCHEDULED for longer than this is flagged stuck (as `status --stuck-after`).
pub const STUCK_AFTER_SECS: i64 = 3600;

pub fn render_remotes(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let (list, sel) = state.remotes();
    let failed = list.iter().filter(|r| r.is_failed()).count();
    title_line(
        frame,
        title,
        theme,
        &format!("Replication: {} remotes, {failed} FAILED", list.len()),
        &state.hint_for(&["enter", "copy"]),
    );
    if state.data().is_none() {
        message(frame, body, theme.dim, "loading…");
        return;
    }
    if list.is_empty() {
        message(
            frame,
            body,
            theme.dim,
            "no replication state: add a gerrit-events, gerrit-ssh, gerrit-log or gerrit-rest source",
        );
        return;
    }
    let now = state.now.as_nanos() / 1_000_000_000;
    let height = body.height.saturating_sub(1) as usize;
    let first = super::first_row(sel, height);
    // Narrow screens keep what decides: status, remote, failures, retries, age, last error;
    // the remote and the error share the rest (every cut text gets an ellipsis).
    let wide = area.width >= 110;
    let fixed: [u16; 10] = if wide {
        [8, 0, 5, 6, 6, 5, 5, 9, 9, 0]
    } else {
        [8, 0, 0, 0, 6, 5, 0, 9, 0, 0]
    };
    // The table puts a space after every column but the last, zero-width ones too.
    let gaps = fixed.len() as u16 - 1;
    let spare = area.width.saturating_sub(fixed.iter().sum::<u16>() + gaps);
    let mut cols = fixed;
    cols[1] = if wide {
        spare * 2 / 3
    } else {
        (spare / 2).max(20)
    };
    cols[9] = spare.saturating_sub(cols[1]);
    let rows = list
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, r)| {
            let (status, st) = if r.is_failed() {
                ("FAILED", theme.bad)
            } else if r.retrying > 0 {
                ("RETRYING", theme.warn)
            } else {
                ("OK", theme.ok)
            };
            let style = if i == sel { theme.selected } else { theme.text };
            Row::new(vec![
                Cell::from(status).style(st),
                Cell::from(super::ellipsize(
                    &if wide {
                        short_remote(&r.remote, usize::MAX)
                    } else {
                        super::overview::compact_remote(&r.remote)
                    },
                    cols[1] as usize,
                )),
                Cell::from(r.projects.to_string()),
                Cell::from(r.refs.to_string()),
                Cell::from(r.failed.to_string()).style(if r.failed > 0 {
                    theme.bad
                } else {
                    theme.dim
                }),
                Cell::from(r.retrying.to_string()).style(if r.retrying > 0 {
                    theme.warn
                } else {
                    theme.dim
                }),
                Cell::from(r.scheduled.to_string()),
                Cell::from(format!("{} ago", age(now - r.last_event))),
                Cell::from(
                    r.last_success
                        .map_or("never".into(), |t| format!("{} ago", age(now - t))),
                ),
                Cell::from(super::shifted(
                    &r.last_error
                        .as_deref()
                        .map(|e| {
                            let full = one_line(e).into_owned();
                            if wide && super::width_of(&full) <= cols[9] as usize {
                                full
                            } else {
                                super::overview::short_error(e)
                            }
                        })
                        .unwrap_or_default(),
                    state.hscroll,
                    cols[9] as usize,
                ))
                .style(theme.bad),
            ])
            .style(style)
        });
    let widths: Vec<Constraint> = cols.iter().map(|w| Constraint::Length(*w)).collect();
    super::table_with_header(
        frame,
        body,
        crate::tui::sort::header(
            crate::tui::sort::REMOTES,
            state.sort_of(crate::tui::Pane::Replication),
            theme,
        ),
        &widths,
        rows,
    );
}

pub fn render_refs(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, remote: &str) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let Some(crate::tui::worker::ViewData::Refs {
        refs,
        total,
        offset,
        ..
    }) = state.data()
    else {
        title_line(
            frame,
            title,
            theme,
            &format!("Replication › {}", super::overview::compact_remote(remote)),
            "",
        );
        message(frame, body, theme.dim, "loading…");
        return;
    };
    let (_, sel) = state.refs_window();
    title_line(
        frame,
        title,
        theme,
        &format!(
            "Replication › {}: {total} refs, worst first",
            super::overview::compact_remote(remote)
        ),
        &state.hint_for(&["enter", "back"]),
    );
    if refs.is_empty() {
        message(frame, body, theme.dim, "no refs for this remote");
        return;
    }
    let now = state.now.as_nanos() / 1_000_000_000;
    // Below 120 columns the decisive ones stay: status, ref, when, flags, the last error.
    let wide = area.width >= 120;
    // Several instances (multi-site): each one's state side by side, in a column of its own.
    let several = refs
        .iter()
        .map(|r| r.instance.as_deref())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let instance_w: u16 = if several { 12 } else { 0 };
    let height = body.height.saturating_sub(1) as usize;
    let sel_in_page = sel.saturating_sub(*offset) as usize;
    let first = super::first_row(sel_in_page, height);
    // Column widths, computed here so every cut text gets its ellipsis: the ref and the
    // error share what the fixed columns leave (the ref 3 parts, the error 2).
    let fixed: [u16; 9] = if wide {
        [13, 4, 20, 0, 8, 14, 4, 9, 0]
    } else {
        [9, 0, 0, 0, 8, 9, 0, 0, 0]
    };
    // The table puts a space after every column but the last, zero-width ones too.
    let spare = area
        .width
        .saturating_sub(fixed.iter().sum::<u16>() + fixed.len() as u16 - 1)
        .saturating_sub(if several { instance_w + 1 } else { 0 });
    let mut cols = fixed;
    // The ref takes what its longest name on screen needs (up to 3/5), the error the rest.
    let longest = refs
        .iter()
        .map(|r| super::width_of(&one_line(&r.ref_name)))
        .max()
        .unwrap_or(0) as u16;
    cols[3] = longest.clamp(20.min(spare), (spare * 3 / 5).max(20.min(spare)));
    cols[8] = spare - cols[3];
    let rows = refs
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, r)| {
            let status = RefStatus::parse(&r.status);
            let st = match status {
                RefStatus::Failed | RefStatus::Unknown => theme.bad,
                RefStatus::Scheduled => theme.warn,
                RefStatus::Succeeded => theme.ok,
                RefStatus::NotAttempted => theme.dim,
            };
            let mut flags = Vec::new();
            if r.retrying {
                flags.push("retrying".to_string());
            }
            if r.stuck(now, STUCK_AFTER_SECS) {
                flags.push(format!(
                    "stuck {}",
                    age(now - r.scheduled_since.unwrap_or(now))
                ));
            }
            let style = if i == sel_in_page {
                theme.selected
            } else {
                theme.text
            };
            let err = r
                .last_error
                .as_deref()
                .filter(|_| status != RefStatus::Succeeded)
                .map(|e| one_line(e).into_owned())
                .unwrap_or_default();
            // The whole error when it fits, else its decisive clause.
            let err = if wide && super::width_of(&err) <= cols[8] as usize {
                err
            } else {
                super::overview::short_error(&err)
            };
            let cut = |t: &str, w: u16| super::ellipsize(t, w as usize);
            let shown_status = if r.deleted.is_some() {
                "NOT DELETED"
            } else {
                r.status.as_str()
            };
            let mut cells = vec![Cell::from(cut(shown_status, cols[0])).style(st)];
            if several {
                cells.push(Cell::from(cut(&one_line(r.instance_name()), instance_w)));
            }
            cells.extend([
                Cell::from(r.direction.as_str()),
                Cell::from(cut(&one_line(&r.project), cols[2])),
                Cell::from(cut(&one_line(&r.ref_name), cols[3])),
                Cell::from(format!("{} ago", age(now - r.when))),
                Cell::from(cut(&flags.join(","), cols[5])).style(theme.warn),
                Cell::from(r.attempts.to_string()),
                Cell::from(
                    r.last_success
                        .map_or("never".into(), |t| format!("{} ago", age(now - t))),
                ),
                Cell::from(super::shifted(&err, state.hscroll, cols[8] as usize)).style(theme.bad),
            ]);
            Row::new(cells).style(style)
        });
    let mut widths: Vec<Constraint> = cols.iter().map(|w| Constraint::Length(*w)).collect();
    let mut header = vec![
        "STATUS",
        "TYPE",
        "PROJECT",
        "REF",
        "WHEN",
        "FLAGS",
        "TRY",
        "LAST OK",
        "LAST ERROR",
    ];
    if several {
        widths.insert(1, Constraint::Length(instance_w));
        header.insert(1, "INSTANCE");
    }
    super::table(frame, body, theme, &header, &widths, rows);
}

/// A remote as a person scans it: no `ssh://user@` or default Gerrit port, and the middle
/// elided when long (the host and the repository are what tell remotes apart).
pub fn short_remote(remote: &str, max: usize) -> String {
    let mut s = remote;
    if let Some((scheme, rest)) = s.split_once("://") {
        if matches!(scheme, "ssh" | "git+ssh") {
            s = rest;
        }
    }
    if let Some((user, rest)) = s.split_once('@') {
        if !user.contains('/') {
            s = rest;
        }
    }
    let s = s.replacen(":29418/", "/", 1);
    let s = one_line(&s).into_owned();
    let n = s.chars().count();
    if n <= max || max < 5 {
        return s;
    }
    let keep = max - 1;
    let head: String = s.chars().take(keep / 2).collect();
    let tail: String = s.chars().skip(n - (keep - keep / 2)).collect();
    format!("{head}…{tail}")
}

/// What the pane shows, from the state (its part of `AppState`).
impl AppState {
    /// The remotes list as shown (text filter applied), and the selected index in it.
    pub fn remotes(&self) -> (Vec<&crate::store::RemoteSummary>, usize) {
        let list: Vec<&crate::store::RemoteSummary> =
            match self.cache_of(&crate::tui::worker::ViewRequest::Remotes) {
                Some(crate::tui::worker::ViewData::Remotes(r)) => r
                    .iter()
                    // The filter matches every column the row shows.
                    .filter(|r| {
                        let status = if r.is_failed() {
                            "FAILED"
                        } else if r.retrying > 0 {
                            "RETRYING"
                        } else {
                            "OK"
                        };
                        self.filters.matches_text(&format!(
                            "{status} {} {}",
                            r.remote,
                            r.last_error.as_deref().unwrap_or("")
                        ))
                    })
                    .filter(|r| match self.filters.min_severity {
                        Some(crate::model::Severity::Error) => r.is_failed(),
                        Some(crate::model::Severity::Warning) => r.is_failed() || r.retrying > 0,
                        _ => true,
                    })
                    .collect(),
                _ => Vec::new(),
            };
        let mut list = list;
        if let Some(s) = self.sort_of(crate::tui::Pane::Replication) {
            crate::tui::sort::remotes(&mut list, s);
        }
        let i = self
            .remote_selected
            .as_ref()
            .and_then(|s| list.iter().position(|r| r.remote == *s))
            .unwrap_or(0);
        (list, i)
    }
    /// The refs page offset to load and the selected index within the whole list.
    pub fn refs_window(&self) -> (u64, u64) {
        let rows = self.list_rows() as u64;
        (self.ref_selected.saturating_sub(rows), self.ref_selected)
    }
}

/// The Replication pane's keys: its remotes and a remote's refs.
pub(crate) fn enter(state: &mut AppState) {
    match state.top().cloned() {
        Some(Drill::Refs { remote }) => {
            let (offset, sel) = state.refs_window();
            let r = match state.data() {
                Some(ViewData::Refs { refs, .. }) => refs.get((sel - offset) as usize).cloned(),
                _ => None,
            };
            if let Some(r) = r {
                state.history_nav = EventsNav::default();
                state.stack.push(Drill::RefHistory {
                    remote,
                    project: r.project,
                    ref_name: r.ref_name,
                });
            }
        }
        Some(_) => {}
        None => {
            let (list, i) = state.remotes();
            if let Some(r) = list.get(i) {
                let remote = r.remote.clone();
                state.remote_selected = Some(remote.clone());
                state.ref_selected = 0;
                state.stack.push(Drill::Refs { remote });
            }
        }
    }
}

fn refs_total(state: &AppState) -> u64 {
    match state.data() {
        Some(ViewData::Refs { total, .. }) => *total,
        _ => 0,
    }
}

pub(crate) fn move_by(state: &mut AppState, delta: i64) {
    if state.top().is_some() {
        let max = refs_total(state).saturating_sub(1) as i64;
        state.ref_selected = (state.ref_selected as i64 + delta).clamp(0, max) as u64;
    } else {
        let (list, i) = state.remotes();
        let j = (i as i64 + delta).clamp(0, list.len().saturating_sub(1) as i64) as usize;
        state.remote_selected = list.get(j).map(|r| r.remote.clone());
    }
}

pub(crate) fn move_to_end(state: &mut AppState, end: bool) {
    if state.top().is_some() {
        state.ref_selected = if end {
            refs_total(state).saturating_sub(1)
        } else {
            0
        };
    } else {
        move_by(state, if end { i64::MAX / 4 } else { -(i64::MAX / 4) });
    }
}

/// `y`: the remote, or the ref's remote, project, name and status.
pub(crate) fn copy(state: &AppState) -> Option<String> {
    match state.top() {
        Some(Drill::Refs { remote }) => {
            let (offset, sel) = state.refs_window();
            match state.data() {
                Some(ViewData::Refs { refs, .. }) => refs
                    .get((sel - offset) as usize)
                    .map(|r| format!("{} {} {} {}", remote, r.project, r.ref_name, r.status)),
                _ => None,
            }
        }
        Some(_) => None,
        None => {
            let (list, i) = state.remotes();
            list.get(i).map(|r| r.remote.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::short_remote;

    #[test]
    fn remotes_are_shortened_where_they_are_alike() {
        assert_eq!(
            short_remote(
                "ssh://replication@mirror-eu.example.org:29418/platform/core.git",
                60
            ),
            "mirror-eu.example.org/platform/core.git"
        );
        assert_eq!(short_remote("file:///var/x.git", 60), "file:///var/x.git");
        let s = short_remote(
            "https://github.com/example-org/a-very-long-repository-name.git",
            24,
        );
        assert_eq!(s.chars().count(), 24);
        assert!(
            s.starts_with("https://gi") && s.ends_with("name.git"),
            "{s}"
        );
        assert_eq!(short_remote("mirror-node-1", 60), "mirror-node-1");
    }
}
