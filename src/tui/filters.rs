//! Filter and find, kept apart as lnav does: the pane's [`Filters`] hide what does not match
//! (the event lists through the store's query, the other lists here); the find text only moves
//! the selection (`n`/`N`) and is highlighted in place. Both match every column a row shows.

use super::app::{move_by, AppState};
use crate::model::{Severity, StoredEvent, Timestamp};
use crate::store::EventFilter;

/// The filters the status bar lists; all apply to the timeline, the text and severity ones to
/// the other lists too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub text: String,
    pub min_severity: Option<Severity>,
    pub source: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// The filters as the status bar shows them: `errors · source gerrit · "mirror"`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.min_severity {
            Some(Severity::Error) => parts.push("errors".to_string()),
            Some(Severity::Warning) => parts.push("warnings+".to_string()),
            Some(s) => parts.push(format!("{}+", s.as_str())),
            None => {}
        }
        if let Some(s) = &self.source {
            parts.push(format!("source {s}"));
        }
        if let Some(t) = self.since {
            parts.push(format!("since {}", crate::model::format_rfc3339(t)));
        }
        if let Some(t) = self.until {
            parts.push(format!("until {}", crate::model::format_rfc3339(t)));
        }
        if !self.text.is_empty() {
            parts.push(format!("\"{}\"", self.text));
        }
        parts.join(" · ")
    }

    pub(crate) fn event_filter(&self) -> EventFilter {
        EventFilter {
            min_severity: self.min_severity,
            sources: self.source.iter().cloned().collect(),
            since: self.since,
            until: self.until,
            grep: Some(self.text.clone()).filter(|t| !t.is_empty()),
            ..EventFilter::default()
        }
    }

    /// Whether `text` passes the text filter (case-insensitive).
    pub fn matches_text(&self, text: &str) -> bool {
        self.text.is_empty() || contains_ci(text, &self.text)
    }
}

pub fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Whether any column an event row shows contains `text` (case-insensitive): time aside,
/// the source, severity, type, subject, summary and correlation id.
pub fn row_matches(e: &StoredEvent, text: &str) -> bool {
    let ev = &e.event;
    [
        Some(ev.summary.as_str()),
        Some(ev.event_type.as_str()),
        Some(ev.source.as_str()),
        Some(ev.severity.as_str()),
        ev.subject.as_deref(),
        ev.correlation_id.as_deref(),
        ev.device_id.as_deref(),
    ]
    .into_iter()
    .flatten()
    .any(|c| contains_ci(c, text))
}

/// `n` / `N`: the next / previous row (after the selection) matching the find text (or the
/// filter's when nothing is being found).
pub(crate) fn find_match(state: &mut AppState, forward: bool) {
    let text = if state.find.is_empty() {
        state.filters.text.clone()
    } else {
        state.find.clone()
    };
    if text.is_empty() {
        state.flash(format!(
            "nothing to find: press {} (find) or {} (filter) first",
            state.key("find"),
            state.key("filter")
        ));
        return;
    }
    let Some(i) = state.selected_index() else {
        return;
    };
    let Some(w) = state.window() else {
        return;
    };
    let text = &text;
    let hit = |e: &StoredEvent| row_matches(e, text);
    let found = if forward {
        (i + 1..w.rows.len()).find(|&j| hit(&w.rows[j]))
    } else {
        (0..i).rev().find(|&j| hit(&w.rows[j]))
    };
    match found {
        Some(j) => move_by(state, j as i64 - i as i64),
        None => {
            let more = if forward { w.more_after } else { w.more_before };
            if more {
                // Move to the window's edge; the next answer brings more rows to search.
                let edge = if forward { w.rows.len() - 1 } else { 0 };
                move_by(state, edge as i64 - i as i64);
                state.flash("searching further…");
            } else {
                state.flash(format!("no more matches of \"{text}\""));
            }
        }
    }
}
