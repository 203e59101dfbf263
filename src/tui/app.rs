//! The app state and `update`: pure (no I/O, no drawing), so every action is unit-tested.
//! What the screen needs from the store is derived from the state by [`AppState::request`];
//! the loop sends it to the query worker whenever it changes.

use tui_input::{Input, InputRequest};

use super::action::{Action, InputKey};
use super::keymap::Mode;
use super::theme::ThemeName;
use super::worker::{
    Anchor, EventsWindow, Loaded, Order, Request, StatusData, ViewData, ViewRequest,
};
use super::Pane;
use crate::model::{Severity, StoredEvent, Timestamp};
use crate::store::query::Cursor;
use crate::store::EventFilter;

/// Minutes of history in the Overview's sparklines and the Relays pane's state strips.
pub const HISTORY_MINUTES: usize = 60;
/// ←/→ shift long texts by this many characters.
pub const HSCROLL_STEP: u16 = 16;
/// A store nobody in this process writes is STALE once unchanged this long.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);
/// Flash messages stay this many ticks (a tick is a quarter second).
const FLASH_TICKS: u32 = 16;

/// A view pushed on top of a pane by drilling down; `Esc` pops it.
#[derive(Debug, Clone, PartialEq)]
pub enum Drill {
    /// One remote's refs.
    Refs { remote: String },
    /// One ref's events and log lines.
    RefHistory {
        remote: String,
        project: String,
        ref_name: String,
    },
    /// One event, whole.
    Event(Box<StoredEvent>),
    /// One correlation id across all sources.
    Session { corr: String },
    /// One relay's events (ngit), from the Relays pane or the Overview.
    RelayEvents { target: String, relay: String },
    /// One CI error pattern's failed jobs of the night.
    CiJobs { pattern: String },
    /// One failed CI job: excerpt, tail, URL.
    CiJob { project: String, job: i64 },
}

/// Which text field has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Filter,
    Find,
    Command,
}

/// Position in an event list: the anchor row and where on screen it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsNav {
    pub anchor: Anchor,
    pub screen_row: usize,
}

impl Default for EventsNav {
    fn default() -> Self {
        EventsNav {
            anchor: Anchor::Start,
            screen_row: 0,
        }
    }
}

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

    fn event_filter(&self) -> EventFilter {
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

/// A pause: the snapshot's store id and when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paused {
    pub upto_id: i64,
    pub at: Timestamp,
}

/// Side effects `update` asks the loop to perform.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Quit,
    /// Put this text on the clipboard (OSC 52).
    Copy(String),
    /// Repaint every cell.
    Redraw,
    /// `:w FILE`: write this table there.
    Write(std::path::PathBuf, super::export::Table),
}

/// Everything the UI knows. One owner: the UI loop.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pane: Pane,
    pub stack: Vec<Drill>,
    pub mode: Mode,
    pub field: Field,
    pub input: Input,
    pub filters: Filters,
    /// The find text (`f`): highlighted in every column, nothing hidden; n/N jump.
    pub find: String,
    /// Each pane's sort (Shift + a column's letter).
    pub sorts: Vec<(Pane, super::sort::Sort)>,
    /// The filters of the panes not shown (each pane keeps its own).
    pub pane_filters: Vec<(Pane, Filters)>,
    pub paused: Option<Paused>,
    pub theme: ThemeName,
    pub size: (u16, u16),
    pub now: Timestamp,
    pub store_path: String,
    /// The last session opened (the Session pane shows it).
    pub session: Option<String>,
    pub timeline: EventsNav,
    pub session_nav: EventsNav,
    pub history_nav: EventsNav,
    pub remote_selected: Option<String>,
    pub ref_selected: u64,
    pub relay_selected: Option<(String, String)>,
    pub overview_selected: usize,
    /// The selected CI pattern (by id: it follows the item) and job.
    pub ci_selected: Option<String>,
    pub ci_job_selected: usize,
    pub detail_scroll: u16,
    /// How many characters long texts (summaries, errors) are shifted left: ←/→.
    pub hscroll: u16,
    /// How far the help overlay is scrolled (the view keeps it in range).
    pub help_scroll: u16,
    pub status: StatusData,
    /// Loaded pane data, most recent first (a few lists, so going back shows data at once).
    pub cache: Vec<(ViewRequest, ViewData)>,
    pub query_error: Option<String>,
    pub last_query_ms: f64,
    pub flash: Option<(String, u32)>,
    pub quit: bool,
    /// Sources run in this process (else the store is only read: it may be STALE).
    pub ingesting: bool,
    /// Each keymap action's first key and short label, by action name: every hint a pane
    /// draws comes from here (so `[keys]` rebinding shows).
    pub keys: std::collections::BTreeMap<&'static str, (String, &'static str)>,
}

impl AppState {
    pub fn new(store_path: String, theme: ThemeName, size: (u16, u16), now: Timestamp) -> Self {
        AppState {
            pane: Pane::Overview,
            stack: Vec::new(),
            mode: Mode::Normal,
            field: Field::Filter,
            input: Input::default(),
            filters: Filters::default(),
            find: String::new(),
            pane_filters: Vec::new(),
            sorts: Vec::new(),
            paused: None,
            theme,
            size,
            now,
            store_path,
            session: None,
            timeline: EventsNav::default(),
            session_nav: EventsNav::default(),
            history_nav: EventsNav::default(),
            remote_selected: None,
            ref_selected: 0,
            relay_selected: None,
            overview_selected: 0,
            ci_selected: None,
            ci_job_selected: 0,
            detail_scroll: 0,
            help_scroll: 0,
            hscroll: 0,
            status: StatusData::default(),
            cache: Vec::new(),
            query_error: None,
            last_query_ms: 0.0,
            flash: None,
            quit: false,
            ingesting: false,
            keys: key_labels(&super::keymap::Keymap::default()),
        }
    }

    /// Takes the key labels of the keymap in use.
    pub fn set_keymap(&mut self, keymap: &super::keymap::Keymap) {
        self.keys = key_labels(keymap);
    }

    /// The key of an action as the user must press it (`?` when unbound).
    pub fn key(&self, name: &str) -> String {
        self.keys
            .get(name)
            .map_or_else(|| "?".to_string(), |(k, _)| k.clone())
    }

    /// Hints for these actions, from the keymap: `Enter: open · c: session`.
    pub fn hint_for(&self, names: &[&str]) -> String {
        names
            .iter()
            .filter_map(|n| self.keys.get(n))
            .map(|(k, l)| format!("{k}: {l}"))
            .collect::<Vec<_>>()
            .join(" · ")
    }

    /// Nothing ingests (no source in this process) and the store has been unchanged for a
    /// while: Some(age in seconds of the newest stored event), or Some(-1) for an empty store.
    pub fn stale(&self) -> Option<i64> {
        if self.ingesting || self.status.unchanged_for < STALE_AFTER {
            return None;
        }
        Some(match self.status.newest {
            Some(t) => ((self.now.as_nanos() - t.as_nanos()) / 1_000_000_000).max(0),
            None => -1,
        })
    }

    /// The keymap actions that do something in the view on screen, for help's first section.
    pub fn pane_actions(&self) -> &'static [&'static str] {
        match (self.top(), self.pane) {
            (Some(Drill::Event(_)), _) | (Some(Drill::CiJob { .. }), _) => {
                &["down", "up", "page_down", "correlation", "copy", "back"]
            }
            (Some(_), _) => &[
                "enter",
                "back",
                "filter",
                "errors_only",
                "copy",
                "correlation",
            ],
            (None, Pane::Overview) => &["down", "enter", "correlation", "copy", "pause"],
            (None, Pane::Replication) | (None, Pane::Relays) | (None, Pane::Ci) => &[
                "enter",
                "filter",
                "errors_only",
                "warnings_up",
                "copy",
                "pause",
            ],
            (None, Pane::Timeline) | (None, Pane::Session) => &[
                "enter",
                "correlation",
                "filter",
                "next_match",
                "errors_only",
                "cycle_source",
                "command",
                "pause",
                "copy",
            ],
        }
    }

    /// The sort of a pane's table, if the user chose one.
    pub fn sort_of(&self, pane: Pane) -> Option<super::sort::Sort> {
        self.sorts.iter().find(|(p, _)| *p == pane).map(|(_, s)| *s)
    }

    /// What the lists highlight: the find text, else the filter's.
    pub fn match_text(&self) -> &str {
        if self.find.is_empty() {
            &self.filters.text
        } else {
            &self.find
        }
    }

    /// The Overview's state lines (what is broken, by name), as drawn.
    pub fn overview_lines(&self) -> Vec<super::panes::overview::StateLine> {
        match self.data() {
            Some(ViewData::Overview(o)) if self.top().is_none() || self.pane == Pane::Overview => {
                super::panes::overview::state_lines(o, self.now.as_nanos() / 1_000_000_000)
            }
            _ => Vec::new(),
        }
    }

    /// The view on top: the last drill-down, else the pane.
    pub fn top(&self) -> Option<&Drill> {
        self.stack.last()
    }

    /// Rows a list shows on this screen (the terminal minus title, header and status lines).
    pub fn list_rows(&self) -> usize {
        usize::from(self.size.1).saturating_sub(5).max(1)
    }

    /// What the store must answer for the screen as it is.
    pub fn request(&self) -> Request {
        let rows = self.list_rows();
        let view = match self.top() {
            Some(Drill::Refs { remote }) => {
                let (offset, _) = self.refs_window();
                ViewRequest::Refs {
                    remote: remote.clone(),
                    text: self.filters.text.clone(),
                    offset,
                    limit: 3 * rows as u64,
                }
            }
            Some(Drill::RefHistory {
                remote,
                project,
                ref_name,
            }) => ViewRequest::Events {
                filter: Box::new(EventFilter {
                    sources: vec!["gerrit".into()],
                    subjects: vec![ref_name.clone()],
                    // This remote's pushes only (a replication event names its remote).
                    peers: vec![remote.clone()],
                    grep: Some(project.clone()),
                    min_severity: self.filters.min_severity,
                    ..EventFilter::default()
                }),
                anchor: self.history_nav.anchor,
                order: Order::NewestFirst,
                session: None,
            },
            Some(Drill::Session { corr }) => self.session_request(corr),
            Some(Drill::RelayEvents { target, relay }) => ViewRequest::Events {
                filter: Box::new(EventFilter {
                    sources: vec!["ngit".into()],
                    devices: vec![target.clone()],
                    subjects: vec![relay.clone()],
                    min_severity: self.filters.min_severity,
                    grep: Some(self.filters.text.clone()).filter(|t| !t.is_empty()),
                    ..EventFilter::default()
                }),
                anchor: self.history_nav.anchor,
                order: Order::NewestFirst,
                session: None,
            },
            Some(Drill::Event(_)) => ViewRequest::Nothing,
            Some(Drill::CiJobs { .. }) | Some(Drill::CiJob { .. }) => ViewRequest::Ci,
            None => match self.pane {
                Pane::Overview => ViewRequest::Overview {
                    errors: rows,
                    minutes: HISTORY_MINUTES,
                },
                Pane::Replication => ViewRequest::Remotes,
                Pane::Relays => ViewRequest::Relays {
                    strip_minutes: HISTORY_MINUTES,
                },
                Pane::Timeline => ViewRequest::Events {
                    filter: Box::new(self.filters.event_filter()),
                    anchor: self.timeline.anchor,
                    order: Order::NewestFirst,
                    session: None,
                },
                Pane::Ci => ViewRequest::Ci,
                Pane::Session => match &self.session {
                    Some(corr) => self.session_request(corr),
                    None => ViewRequest::Nothing,
                },
            },
        };
        Request {
            view,
            rows,
            paused_upto: self.paused.map(|p| p.upto_id),
            count_filter: self.filters.event_filter(),
        }
    }

    fn session_request(&self, corr: &str) -> ViewRequest {
        ViewRequest::Events {
            filter: Box::new(EventFilter {
                correlation_ids: vec![corr.to_string()],
                ..EventFilter::default()
            }),
            anchor: self.session_nav.anchor,
            order: Order::OldestFirst,
            session: Some(corr.to_string()),
        }
    }

    /// The loaded data for the current screen's list (possibly for another anchor or page).
    pub fn data(&self) -> Option<&ViewData> {
        let want = self.request().view;
        self.cache
            .iter()
            .find(|(v, _)| same_list(v, &want))
            .map(|(_, d)| d)
    }

    pub fn window(&self) -> Option<&EventsWindow> {
        match self.data() {
            Some(ViewData::Events(w)) => Some(w),
            _ => None,
        }
    }

    fn nav(&self) -> Option<EventsNav> {
        match (self.top(), self.pane) {
            (Some(Drill::RefHistory { .. }), _) | (Some(Drill::RelayEvents { .. }), _) => {
                Some(self.history_nav)
            }
            (Some(Drill::Session { .. }), _) => Some(self.session_nav),
            (Some(_), _) => None,
            (None, Pane::Timeline) => Some(self.timeline),
            (None, Pane::Session) => Some(self.session_nav),
            (None, _) => None,
        }
    }

    fn nav_mut(&mut self) -> Option<&mut EventsNav> {
        match (self.stack.last(), self.pane) {
            (Some(Drill::RefHistory { .. }), _) | (Some(Drill::RelayEvents { .. }), _) => {
                Some(&mut self.history_nav)
            }
            (Some(Drill::Session { .. }), _) => Some(&mut self.session_nav),
            (Some(_), _) => None,
            (None, Pane::Timeline) => Some(&mut self.timeline),
            (None, Pane::Session) => Some(&mut self.session_nav),
            (None, _) => None,
        }
    }

    /// The selected row of the current event list: its index in the window.
    pub fn selected_index(&self) -> Option<usize> {
        let w = self.window()?;
        if w.rows.is_empty() {
            return None;
        }
        let nav = self.nav()?;
        let i = match nav.anchor {
            Anchor::At(c) => w
                .rows
                .iter()
                .position(|e| cursor_of(e) == c)
                .unwrap_or(w.anchor_index),
            _ => w.anchor_index,
        };
        Some(i.min(w.rows.len() - 1))
    }

    /// The selected event, in whichever list shows events.
    pub fn selected_event(&self) -> Option<&StoredEvent> {
        if let Some(Drill::Event(e)) = self.top() {
            return Some(e);
        }
        if self.top().is_none() && self.pane == Pane::Overview {
            let before = self.overview_lines().len();
            return match self.data() {
                Some(ViewData::Overview(o)) => self
                    .overview_selected
                    .checked_sub(before)
                    .and_then(|i| o.newest_errors.get(i)),
                _ => None,
            };
        }
        let i = self.selected_index()?;
        self.window()?.rows.get(i)
    }

    /// The first row shown of the current event list.
    pub fn first_visible(&self) -> usize {
        let (Some(i), Some(nav)) = (self.selected_index(), self.nav()) else {
            return 0;
        };
        i.saturating_sub(nav.screen_row.min(self.list_rows().saturating_sub(1)))
    }

    /// The remotes list as shown (text filter applied), and the selected index in it.
    pub fn remotes(&self) -> (Vec<&crate::store::RemoteSummary>, usize) {
        let list: Vec<&crate::store::RemoteSummary> = match self.cache_of(&ViewRequest::Remotes) {
            Some(ViewData::Remotes(r)) => r
                .iter()
                .filter(|r| self.filters.matches_text(&r.remote))
                .filter(|r| match self.filters.min_severity {
                    Some(Severity::Error) => r.is_failed(),
                    Some(Severity::Warning) => r.is_failed() || r.retrying > 0,
                    _ => true,
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut list = list;
        if let Some(s) = self.sort_of(Pane::Replication) {
            super::sort::remotes(&mut list, s);
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

    /// The relays as shown, worst first: `(target, relay name)`, and the selected index.
    pub fn relays(&self) -> (Vec<(String, String)>, usize) {
        let Some(ViewData::Relays(d)) = self.cache_of(&ViewRequest::Relays {
            strip_minutes: HISTORY_MINUTES,
        }) else {
            return (Vec::new(), 0);
        };
        let mut list: Vec<(i64, String, String)> = Vec::new();
        for t in &d.targets {
            for (name, s) in t.relays.iter().filter(|(_, s)| s.present) {
                let sev = s.display().severity();
                let shown = match self.filters.min_severity {
                    Some(min) => sev >= min,
                    None => true,
                };
                if shown && self.filters.matches_text(name) {
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
        if let Some(s) = self.sort_of(Pane::Relays) {
            let mut rows: Vec<(String, String, &crate::model::relay::RelayState)> = list
                .iter()
                .filter_map(|(t, n)| {
                    let st = d.targets.iter().find(|x| x.target == *t)?.relays.get(n)?;
                    Some((t.clone(), n.clone(), st))
                })
                .collect();
            super::sort::relays(&mut rows, s);
            list = rows.into_iter().map(|(t, n, _)| (t, n)).collect();
        }
        let i = self
            .relay_selected
            .as_ref()
            .and_then(|s| list.iter().position(|x| x == s))
            .unwrap_or(0);
        (list, i)
    }

    /// The CI patterns as shown (those that hit the night first, text filter applied) and the
    /// selected index.
    pub fn ci_patterns(&self) -> (Vec<&crate::store::ci::CiPatternRow>, usize) {
        let Some(ViewData::Ci(d)) = self.cache_of(&ViewRequest::Ci) else {
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
        if let Some(s) = self.sort_of(Pane::Ci) {
            super::sort::ci_patterns(&mut list, s);
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
        match self.cache_of(&ViewRequest::Ci) {
            Some(ViewData::Ci(d)) => d
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
        let Some(ViewData::Ci(d)) = self.cache_of(&ViewRequest::Ci) else {
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

    fn cache_of(&self, v: &ViewRequest) -> Option<&ViewData> {
        self.cache
            .iter()
            .find(|(k, _)| same_list(k, v))
            .map(|(_, d)| d)
    }

    pub(crate) fn flash(&mut self, text: impl Into<String>) {
        self.flash = Some((text.into(), FLASH_TICKS));
    }
}

/// Two requests show the same list (perhaps at another position).
fn same_list(a: &ViewRequest, b: &ViewRequest) -> bool {
    match (a, b) {
        (
            ViewRequest::Events {
                filter: fa,
                order: oa,
                session: sa,
                ..
            },
            ViewRequest::Events {
                filter: fb,
                order: ob,
                session: sb,
                ..
            },
        ) => fa == fb && oa == ob && sa == sb,
        (
            ViewRequest::Refs {
                remote: ra,
                text: ta,
                ..
            },
            ViewRequest::Refs {
                remote: rb,
                text: tb,
                ..
            },
        ) => ra == rb && ta == tb,
        (ViewRequest::Overview { .. }, ViewRequest::Overview { .. }) => true,
        (ViewRequest::Relays { .. }, ViewRequest::Relays { .. }) => true,
        _ => a == b,
    }
}

/// Each action's first key and short label, by action name.
fn key_labels(
    keymap: &super::keymap::Keymap,
) -> std::collections::BTreeMap<&'static str, (String, &'static str)> {
    keymap
        .bindings
        .iter()
        .filter_map(|b| {
            let k = b.keys.first()?;
            Some((b.name, (k.to_string(), b.hint.unwrap_or(b.help))))
        })
        .collect()
}

pub fn cursor_of(e: &StoredEvent) -> Cursor {
    Cursor {
        ts: e.event.timestamp.as_nanos(),
        key: e.key,
    }
}

/// One row of an event list as text (what `y` copies).
pub fn row_text(e: &StoredEvent) -> String {
    let ev = &e.event;
    let mut s = format!(
        "{} {} {} {} {}",
        crate::model::format_rfc3339(ev.timestamp),
        ev.source,
        ev.severity.as_str(),
        ev.event_type,
        ev.summary
    );
    if let Some(c) = &ev.correlation_id {
        s.push_str(&format!(" [{c}]"));
    }
    crate::sanitize::one_line(&s).into_owned()
}

/// Applies one action. No I/O: what must happen outside comes back as a [`Command`].
pub fn update(state: &mut AppState, action: Action) -> Option<Command> {
    match action {
        Action::ForceQuit => {
            state.quit = true;
            return Some(Command::Quit);
        }
        Action::Loaded(l) => {
            apply_loaded(state, *l);
            return None;
        }
        Action::Notice(msg) => {
            state.flash(msg);
            return None;
        }
        Action::Tick(now) => {
            state.now = Timestamp::from_nanos(now);
            if let Some((_, left)) = &mut state.flash {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    state.flash = None;
                }
            }
            return None;
        }
        Action::Resize(w, h) => {
            state.size = (w, h);
            let rows = state.list_rows().saturating_sub(1);
            for nav in [
                &mut state.timeline,
                &mut state.session_nav,
                &mut state.history_nav,
            ] {
                nav.screen_row = nav.screen_row.min(rows);
            }
            return None;
        }
        _ => {}
    }
    match state.mode {
        Mode::Help => {
            // The move keys scroll it; Back (Esc, q, ?) closes it.
            let page = state.list_rows() as i32;
            let d: i32 = match action {
                Action::Up => -1,
                Action::Down => 1,
                Action::PageUp => -page,
                Action::PageDown => page,
                Action::Top => -(u16::MAX as i32),
                Action::Bottom => u16::MAX as i32,
                Action::Back => {
                    state.mode = Mode::Normal;
                    state.help_scroll = 0;
                    return None;
                }
                _ => 0,
            };
            state.help_scroll = (state.help_scroll as i32 + d).clamp(0, u16::MAX as i32) as u16;
            None
        }
        Mode::Input => update_input(state, action),
        Mode::Normal => update_normal(state, action),
    }
}

fn apply_loaded(state: &mut AppState, l: Loaded) {
    state.status = l.status;
    state.query_error = l.error;
    state.last_query_ms = l.took.as_secs_f64() * 1000.0;
    if let Some(data) = l.data {
        // Paused: every pane holds still, not only the event lists (those are snapshots by
        // store id): a list already on hand for the same request keeps its rows.
        let frozen = state.paused.is_some()
            && !matches!(l.request.view, ViewRequest::Events { .. })
            && state.cache.iter().any(|(v, _)| *v == l.request.view);
        if frozen {
            return;
        }
        state.cache.retain(|(v, _)| !same_list(v, &l.request.view));
        state.cache.insert(0, (l.request.view, data));
        state.cache.truncate(6);
    }
    // The worker re-centred the window: the anchor row stays where the user put it.
}

fn update_input(state: &mut AppState, action: Action) -> Option<Command> {
    match action {
        Action::Input(k) => {
            let req = match k {
                InputKey::Char(c) => InputRequest::InsertChar(c),
                InputKey::Backspace => InputRequest::DeletePrevChar,
                InputKey::Delete => InputRequest::DeleteNextChar,
                InputKey::Left => InputRequest::GoToPrevChar,
                InputKey::Right => InputRequest::GoToNextChar,
                InputKey::Home => InputRequest::GoToStart,
                InputKey::End => InputRequest::GoToEnd,
                InputKey::DeleteWord => InputRequest::DeletePrevWord,
                InputKey::Clear => InputRequest::DeleteLine,
            };
            state.input.handle(req);
            match state.field {
                // Live as you type.
                Field::Filter => set_text_filter(state, state.input.value().to_string()),
                Field::Find => state.find = state.input.value().to_string(),
                Field::Command => {}
            }
            None
        }
        Action::Submit => {
            state.mode = Mode::Normal;
            match state.field {
                Field::Filter => {
                    set_text_filter(state, state.input.value().to_string());
                    None
                }
                Field::Find => {
                    state.find = state.input.value().to_string();
                    // Enter jumps to the first match from the selection on.
                    if !state.find.is_empty()
                        && !state
                            .selected_event()
                            .is_some_and(|e| row_matches(e, &state.find))
                    {
                        find_match(state, true);
                    }
                    None
                }
                Field::Command => {
                    let line = state.input.value().to_string();
                    super::command::run_command(state, &line)
                }
            }
        }
        Action::Back => {
            state.mode = Mode::Normal;
            match state.field {
                Field::Filter => set_text_filter(state, String::new()),
                Field::Find => state.find.clear(),
                Field::Command => {}
            }
            None
        }
        _ => None,
    }
}

pub(crate) fn set_text_filter(state: &mut AppState, text: String) {
    if state.filters.text != text {
        state.filters.text = text;
        reset_positions(state);
    }
}

/// A filter changed: lists start again from their top.
pub(crate) fn reset_positions(state: &mut AppState) {
    state.timeline = EventsNav::default();
    state.history_nav = EventsNav::default();
    state.ref_selected = 0;
    state.overview_selected = 0;
}

fn update_normal(state: &mut AppState, action: Action) -> Option<Command> {
    match action {
        Action::Quit => {
            // One rule everywhere: q quits from a top-level pane only; Esc goes back.
            if state.stack.is_empty() {
                state.quit = true;
                return Some(Command::Quit);
            }
            let (q, esc) = (state.key("quit"), state.key("back"));
            state.flash(format!("{q} quits from a pane: {esc} goes back first"));
        }
        Action::Back => {
            state.hscroll = 0;
            if state.stack.pop().is_some() {
                state.detail_scroll = 0;
            } else if !state.filters.is_empty() {
                state.filters = Filters::default();
                state.input = Input::default();
                reset_positions(state);
                state.flash("filters cleared");
            }
        }
        Action::GoPane(p) => switch_pane(state, p),
        Action::NextPane | Action::PrevPane => {
            let all = Pane::ALL;
            let i = all.iter().position(|p| *p == state.pane).unwrap_or(0);
            let n = all.len();
            let j = if action == Action::NextPane {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            switch_pane(state, all[j]);
        }
        Action::ScrollLeft => state.hscroll = state.hscroll.saturating_sub(HSCROLL_STEP),
        Action::ScrollRight => state.hscroll = state.hscroll.saturating_add(HSCROLL_STEP).min(2000),
        Action::Up => move_by(state, -1),
        Action::Down => move_by(state, 1),
        Action::PageUp => move_by(state, -(state.list_rows() as i64)),
        Action::PageDown => move_by(state, state.list_rows() as i64),
        Action::Top => move_to_end(state, false),
        Action::Bottom => move_to_end(state, true),
        Action::Enter => enter(state),
        Action::Correlation => {
            let corr = state
                .selected_event()
                .and_then(|e| e.event.correlation_id.clone());
            match corr {
                Some(c) => open_session(state, c),
                None => state.flash("no correlation id on this row"),
            }
        }
        Action::StartFilter => {
            state.mode = Mode::Input;
            state.field = Field::Filter;
            state.input = Input::new(state.filters.text.clone());
        }
        Action::StartFind => {
            state.mode = Mode::Input;
            state.field = Field::Find;
            state.input = Input::new(state.find.clone());
        }
        Action::StartCommand => {
            state.mode = Mode::Input;
            state.field = Field::Command;
            state.input = Input::default();
        }
        Action::ShowHelp => state.mode = Mode::Help,
        Action::NextMatch => find_match(state, true),
        Action::PrevMatch => find_match(state, false),
        Action::ErrorsOnly => set_severity(state, Some(Severity::Error)),
        Action::WarningsUp => set_severity(state, Some(Severity::Warning)),
        Action::AllSeverities => set_severity(state, None),
        Action::CycleSource => {
            let systems = &state.status.systems;
            let next = match &state.filters.source {
                None => systems.first().cloned(),
                Some(cur) => match systems.iter().position(|s| s == cur) {
                    Some(i) => systems.get(i + 1).cloned(),
                    None => systems.first().cloned(),
                },
            };
            state.filters.source = next;
            reset_positions(state);
            let shown = state.filters.source.clone().unwrap_or_else(|| "all".into());
            state.flash(format!("source: {shown}"));
        }
        Action::SortBy(c) => {
            let pane = state.pane;
            let sortable = state.top().is_none()
                && super::sort::columns(pane)
                    .iter()
                    .any(|(_, l)| *l == Some(c));
            if !sortable {
                let letters = super::sort::letters(pane);
                state.flash(if letters.is_empty() || state.top().is_some() {
                    format!("Shift+{c}: this view has no sortable table")
                } else {
                    format!("Shift+{c}: no such column here (sort by {letters})")
                });
                return None;
            }
            let next = match state.sort_of(pane) {
                Some(s) if s.letter == c => super::sort::Sort {
                    letter: c,
                    descending: !s.descending,
                },
                _ => super::sort::Sort {
                    letter: c,
                    descending: false,
                },
            };
            state.sorts.retain(|(p, _)| *p != pane);
            state.sorts.push((pane, next));
        }
        Action::TogglePause => {
            state.paused = match state.paused {
                Some(_) => None,
                None => Some(Paused {
                    upto_id: state.status.max_id,
                    at: state.now,
                }),
            };
        }
        Action::Copy => {
            let text = copy_text(state);
            return match text {
                Some(t) => {
                    // The whole text: the message line cuts it with an ellipsis if it must.
                    state.flash(format!("copied {} characters: {t}", t.chars().count()));
                    Some(Command::Copy(t))
                }
                None => {
                    state.flash("nothing selected to copy");
                    None
                }
            };
        }
        Action::Redraw => return Some(Command::Redraw),
        _ => {}
    }
    None
}

pub(crate) fn set_severity(state: &mut AppState, s: Option<Severity>) {
    if state.filters.min_severity != s {
        state.filters.min_severity = s;
        reset_positions(state);
    }
    let shown = match s {
        Some(Severity::Error) => "errors only",
        Some(Severity::Warning) => "warnings and errors",
        _ => "all severities",
    };
    state.flash(shown);
}

pub(crate) fn open_session(state: &mut AppState, corr: String) {
    state.session = Some(corr.clone());
    state.session_nav = EventsNav::default();
    if state.top().is_none() && state.pane == Pane::Session {
        return;
    }
    // From a drill-down or another pane: a view on top, so Esc comes back here.
    if let Some(Drill::Session { corr: c }) = state.stack.last_mut() {
        *c = corr;
    } else {
        state.stack.push(Drill::Session { corr });
    }
}

fn enter(state: &mut AppState) {
    match (state.top().cloned(), state.pane) {
        (Some(Drill::Refs { remote }), _) => {
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
        (Some(Drill::Event(_)), _) | (Some(Drill::CiJob { .. }), _) => {}
        (Some(Drill::CiJobs { pattern }), _) => {
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
        (None, Pane::Ci) => {
            let (list, i) = state.ci_patterns();
            if let Some(p) = list.get(i) {
                let pattern = p.id.clone();
                state.ci_selected = Some(pattern.clone());
                state.ci_job_selected = 0;
                state.stack.push(Drill::CiJobs { pattern });
            }
        }
        (None, Pane::Replication) => {
            let (list, i) = state.remotes();
            if let Some(r) = list.get(i) {
                let remote = r.remote.clone();
                state.remote_selected = Some(remote.clone());
                state.ref_selected = 0;
                state.stack.push(Drill::Refs { remote });
            }
        }
        (None, Pane::Relays) => {
            // A relay's own events, a drill-down with its breadcrumb (Esc comes back).
            let (list, i) = state.relays();
            if let Some((target, relay)) = list.get(i).cloned() {
                state.history_nav = EventsNav::default();
                state.stack.push(Drill::RelayEvents { target, relay });
            }
        }
        (None, Pane::Overview) => {
            let lines = state.overview_lines();
            match lines.get(state.overview_selected) {
                Some(l) => open_overview_line(state, l.open.clone()),
                None => {
                    if let Some(e) = state.selected_event().cloned() {
                        state.detail_scroll = 0;
                        state.stack.push(Drill::Event(Box::new(e)));
                    }
                }
            }
        }
        _ => {
            if let Some(e) = state.selected_event().cloned() {
                state.detail_scroll = 0;
                state.stack.push(Drill::Event(Box::new(e)));
            }
        }
    }
}

/// To another pane: its own filters come back (filters are scoped per pane) and the
/// drill-downs of the one left are closed.
pub(crate) fn switch_pane(state: &mut AppState, p: Pane) {
    state.stack.clear();
    state.hscroll = 0;
    if state.pane == p {
        return;
    }
    let old = state.pane;
    let current = std::mem::take(&mut state.filters);
    state.pane_filters.retain(|(q, _)| *q != old);
    if !current.is_empty() {
        state.pane_filters.push((old, current));
    }
    state.filters = state
        .pane_filters
        .iter()
        .position(|(q, _)| *q == p)
        .map(|i| state.pane_filters.swap_remove(i).1)
        .unwrap_or_default();
    state.input = Input::default();
    state.pane = p;
}

/// Enter on an Overview line: its detail, on top of the Overview (Esc comes back).
fn open_overview_line(state: &mut AppState, open: super::panes::overview::Open) {
    use super::panes::overview::Open;
    match open {
        Open::Remote(remote) => {
            state.remote_selected = Some(remote.clone());
            state.ref_selected = 0;
            state.stack.push(Drill::Refs { remote });
        }
        Open::Relay(target, relay) => {
            state.relay_selected = Some((target.clone(), relay.clone()));
            state.history_nav = EventsNav::default();
            state.stack.push(Drill::RelayEvents { target, relay });
        }
        Open::Session(corr) => open_session(state, corr),
        Open::CiPattern(pattern) => {
            state.ci_selected = Some(pattern.clone());
            state.ci_job_selected = 0;
            state.stack.push(Drill::CiJobs { pattern });
        }
        Open::Pane(p) => switch_pane(state, p),
    }
}

/// Moves the selection by `delta` rows in whichever list is on screen.
fn move_by(state: &mut AppState, delta: i64) {
    let rows = state.list_rows();
    match (state.top().cloned(), state.pane) {
        (Some(Drill::CiJobs { pattern }), _) => {
            let n = state.ci_jobs(&pattern).len();
            state.ci_job_selected = (state.ci_job_selected as i64 + delta)
                .clamp(0, n.saturating_sub(1) as i64) as usize;
        }
        (None, Pane::Ci) => {
            let (list, i) = state.ci_patterns();
            let j = (i as i64 + delta).clamp(0, list.len().saturating_sub(1) as i64) as usize;
            state.ci_selected = list.get(j).map(|p| p.id.clone());
        }
        (Some(Drill::CiJob { project, job }), _) => {
            // A job's log is scrolled from its end (where the job failed): up goes back.
            let n = state.ci_log_lines(&project, job) as i64;
            state.detail_scroll = (state.detail_scroll as i64 - delta).clamp(0, n) as u16;
        }
        (Some(Drill::Event(_)), _) => {
            let d = delta.clamp(-(u16::MAX as i64), u16::MAX as i64) as i32;
            state.detail_scroll = (state.detail_scroll as i32 + d).clamp(0, u16::MAX as i32) as u16;
        }
        (Some(Drill::Refs { .. }), _) => {
            let total = match state.data() {
                Some(ViewData::Refs { total, .. }) => *total,
                _ => 0,
            };
            let max = total.saturating_sub(1) as i64;
            state.ref_selected = (state.ref_selected as i64 + delta).clamp(0, max) as u64;
        }
        (None, Pane::Overview) => {
            let n = match state.data() {
                Some(ViewData::Overview(o)) => o.newest_errors.len() + state.overview_lines().len(),
                _ => 0,
            };
            state.overview_selected = (state.overview_selected as i64 + delta)
                .clamp(0, n.saturating_sub(1) as i64)
                as usize;
        }
        (None, Pane::Replication) => {
            let (list, i) = state.remotes();
            let j = (i as i64 + delta).clamp(0, list.len().saturating_sub(1) as i64) as usize;
            state.remote_selected = list.get(j).map(|r| r.remote.clone());
        }
        (None, Pane::Relays) => {
            let (list, i) = state.relays();
            let j = (i as i64 + delta).clamp(0, list.len().saturating_sub(1) as i64) as usize;
            state.relay_selected = list.get(j).cloned();
        }
        _ => {
            let Some(i) = state.selected_index() else {
                return;
            };
            let Some(w) = state.window() else {
                return;
            };
            let j = (i as i64 + delta).clamp(0, w.rows.len().saturating_sub(1) as i64) as usize;
            if j == i {
                return;
            }
            let c = cursor_of(&w.rows[j]);
            if let Some(nav) = state.nav_mut() {
                nav.anchor = Anchor::At(c);
                let sr = nav.screen_row as i64 + (j as i64 - i as i64);
                nav.screen_row = sr.clamp(0, rows.saturating_sub(1) as i64) as usize;
            }
        }
    }
}

fn move_to_end(state: &mut AppState, end: bool) {
    let rows = state.list_rows();
    match (state.top().cloned(), state.pane) {
        (Some(Drill::CiJob { project, job }), _) => {
            let n = state.ci_log_lines(&project, job) as u16;
            state.detail_scroll = if end { 0 } else { n }
        }
        (Some(Drill::Event(_)), _) => state.detail_scroll = if end { u16::MAX / 2 } else { 0 },
        (Some(Drill::CiJobs { .. }), _) | (None, Pane::Ci) => {
            move_by(state, if end { i64::MAX / 4 } else { -(i64::MAX / 4) })
        }
        (Some(Drill::Refs { .. }), _) => {
            let total = match state.data() {
                Some(ViewData::Refs { total, .. }) => *total,
                _ => 0,
            };
            state.ref_selected = if end { total.saturating_sub(1) } else { 0 };
        }
        (None, Pane::Overview) | (None, Pane::Replication) | (None, Pane::Relays) => {
            move_by(state, if end { i64::MAX / 4 } else { -(i64::MAX / 4) })
        }
        _ => {
            if let Some(nav) = state.nav_mut() {
                *nav = if end {
                    EventsNav {
                        anchor: Anchor::End,
                        screen_row: rows.saturating_sub(1),
                    }
                } else {
                    EventsNav::default()
                };
            }
        }
    }
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
fn find_match(state: &mut AppState, forward: bool) {
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

fn copy_text(state: &AppState) -> Option<String> {
    match (state.top(), state.pane) {
        (Some(Drill::Refs { remote }), _) => {
            let (offset, sel) = state.refs_window();
            match state.data() {
                Some(ViewData::Refs { refs, .. }) => refs
                    .get((sel - offset) as usize)
                    .map(|r| format!("{} {} {} {}", remote, r.project, r.ref_name, r.status)),
                _ => None,
            }
        }
        (Some(Drill::Session { corr }), _) if state.selected_event().is_none() => {
            Some(corr.clone())
        }
        (None, Pane::Replication) => {
            let (list, i) = state.remotes();
            list.get(i).map(|r| r.remote.clone())
        }
        (None, Pane::Ci) => {
            let (list, i) = state.ci_patterns();
            list.get(i)
                .map(|p| format!("{} {} {}", p.id, p.name, p.identity))
        }
        (Some(Drill::CiJobs { pattern }), _) => {
            let jobs = state.ci_jobs(pattern);
            jobs.get(state.ci_job_selected.min(jobs.len().saturating_sub(1)))
                .and_then(|(_, j)| j.web_url.clone())
        }
        (Some(Drill::CiJob { project, job }), _) => state
            .ci_jobs_all()
            .into_iter()
            .find(|(p, j)| p.project == *project && j.id == *job)
            .and_then(|(_, j)| j.web_url.clone()),
        (None, Pane::Relays) => {
            let (list, i) = state.relays();
            list.get(i).map(|(_, r)| r.clone())
        }
        _ => state.selected_event().map(row_text),
    }
    .map(|t| crate::sanitize::one_line(&t).into_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Event;
    use std::time::Duration;

    const T0: i64 = 1_800_000_000_000_000_000;

    fn state() -> AppState {
        AppState::new(
            "/tmp/s.db".into(),
            ThemeName::Dark,
            (100, 30),
            Timestamp::from_nanos(T0),
        )
    }

    fn ev(i: i64, corr: Option<&str>) -> StoredEvent {
        let mut e = Event::new(
            Timestamp::from_nanos(T0 - i * 1_000_000_000),
            "spacedrive",
            "batch_ingestion",
            "data_flow",
            if i % 5 == 0 {
                Severity::Error
            } else {
                Severity::Info
            },
            format!("row {i}"),
        );
        e.correlation_id = corr.map(str::to_string);
        StoredEvent {
            id: 1000 - i,
            key: i,
            event: e,
        }
    }

    /// Feeds the window the worker would answer for the current request.
    fn load(s: &mut AppState, rows: Vec<StoredEvent>, anchor_index: usize) {
        let request = s.request();
        update(
            s,
            Action::Loaded(Box::new(Loaded {
                request,
                status: StatusData {
                    max_id: 5000,
                    systems: vec!["gerrit".into(), "ngit".into(), "spacedrive".into()],
                    ..StatusData::default()
                },
                data: Some(ViewData::Events(EventsWindow {
                    rows,
                    anchor_index,
                    more_before: false,
                    more_after: true,
                    session: None,
                    session_ids: Vec::new(),
                })),
                error: None,
                took: Duration::from_millis(1),
            })),
        );
    }

    fn timeline() -> AppState {
        let mut s = state();
        update(&mut s, Action::GoPane(Pane::Timeline));
        load(&mut s, (0..40).map(|i| ev(i, Some("sess-1"))).collect(), 0);
        s
    }

    #[test]
    fn panes_switch_by_number_and_tab_and_drill_downs_pop_with_esc() {
        let mut s = state();
        update(&mut s, Action::GoPane(Pane::Relays));
        assert_eq!(s.pane, Pane::Relays);
        update(&mut s, Action::NextPane);
        assert_eq!(s.pane, Pane::Timeline);
        update(&mut s, Action::PrevPane);
        update(&mut s, Action::PrevPane);
        assert_eq!(s.pane, Pane::Replication);
        s.stack.push(Drill::Refs { remote: "r".into() });
        assert_eq!(update(&mut s, Action::Back), None);
        assert!(s.stack.is_empty());
        assert!(!s.quit);
        // q quits only from a top-level pane: in a drill-down it says how to go back.
        s.stack.push(Drill::Refs { remote: "r".into() });
        assert_eq!(update(&mut s, Action::Quit), None);
        assert_eq!(s.stack.len(), 1);
        assert!(s.flash.as_ref().unwrap().0.contains("Esc goes back"));
        assert_eq!(update(&mut s, Action::Back), None);
        assert_eq!(update(&mut s, Action::Quit), Some(Command::Quit));
        assert!(s.quit);
    }

    #[test]
    fn filters_are_scoped_per_pane_and_come_back() {
        let mut s = timeline();
        s.filters.text = "Connection refused".into();
        update(&mut s, Action::GoPane(Pane::Replication));
        assert!(s.filters.is_empty(), "the Timeline's filter leaked");
        update(&mut s, Action::ErrorsOnly);
        update(&mut s, Action::GoPane(Pane::Timeline));
        assert_eq!(s.filters.text, "Connection refused");
        assert_eq!(s.filters.min_severity, None);
        update(&mut s, Action::NextPane);
        update(&mut s, Action::GoPane(Pane::Replication));
        assert_eq!(s.filters.min_severity, Some(Severity::Error));
    }

    #[test]
    fn enter_on_a_relay_is_a_drill_down_with_its_own_events_and_esc_returns() {
        let mut s = state();
        update(&mut s, Action::GoPane(Pane::Relays));
        s.stack.push(Drill::RelayEvents {
            target: "http://t/metrics".into(),
            relay: "wss://r".into(),
        });
        let f = s.request().view.filter().cloned().unwrap();
        assert_eq!(
            (f.devices, f.subjects),
            (
                vec!["http://t/metrics".to_string()],
                vec!["wss://r".to_string()]
            )
        );
        assert!(s.filters.is_empty(), "no hidden filter");
        update(&mut s, Action::Quit);
        assert!(!s.quit);
        update(&mut s, Action::Back);
        assert_eq!((s.pane, s.stack.len()), (Pane::Relays, 0));
    }

    #[test]
    fn a_refs_history_lists_only_its_remotes_pushes() {
        let mut s = state();
        s.stack.push(Drill::RefHistory {
            remote: "ssh://m-eu/p.git".into(),
            project: "p".into(),
            ref_name: "refs/heads/main".into(),
        });
        let f = s.request().view.filter().cloned().unwrap();
        assert_eq!(f.peers, ["ssh://m-eu/p.git"]);
    }

    #[test]
    fn ctrl_c_quits_from_anywhere() {
        let mut s = timeline();
        update(&mut s, Action::StartFilter);
        assert_eq!(update(&mut s, Action::ForceQuit), Some(Command::Quit));
        let mut h = state();
        update(&mut h, Action::ShowHelp);
        assert_eq!(update(&mut h, Action::ForceQuit), Some(Command::Quit));
    }

    #[test]
    fn moving_down_anchors_the_list_and_top_resumes_live() {
        let mut s = timeline();
        assert_eq!(s.request().view.anchor(), Some(Anchor::Start));
        update(&mut s, Action::Down);
        update(&mut s, Action::Down);
        assert_eq!(s.selected_event().unwrap().event.summary, "row 2");
        assert_eq!(s.timeline.screen_row, 2);
        let Some(Anchor::At(c)) = s.request().view.anchor() else {
            panic!("not anchored: {:?}", s.request())
        };
        assert_eq!(c.key, 2);
        update(&mut s, Action::PageDown);
        assert_eq!(s.selected_event().unwrap().event.summary, "row 27");
        assert_eq!(s.timeline.screen_row, s.list_rows() - 1);
        update(&mut s, Action::Up);
        assert_eq!(s.selected_event().unwrap().event.summary, "row 26");
        update(&mut s, Action::Top);
        assert_eq!(s.request().view.anchor(), Some(Anchor::Start));
        update(&mut s, Action::Bottom);
        assert_eq!(s.request().view.anchor(), Some(Anchor::End));
    }

    #[test]
    fn severity_keys_and_source_cycling_filter_the_timeline() {
        let mut s = timeline();
        update(&mut s, Action::Down);
        update(&mut s, Action::ErrorsOnly);
        let f = s.request().view.filter().cloned().unwrap();
        assert_eq!(f.min_severity, Some(Severity::Error));
        // A new filter starts from the top again.
        assert_eq!(s.request().view.anchor(), Some(Anchor::Start));
        update(&mut s, Action::WarningsUp);
        assert_eq!(
            s.request().view.filter().unwrap().min_severity,
            Some(Severity::Warning)
        );
        update(&mut s, Action::AllSeverities);
        assert_eq!(s.request().view.filter().unwrap().min_severity, None);
        update(&mut s, Action::CycleSource);
        assert_eq!(s.request().view.filter().unwrap().sources, ["gerrit"]);
        update(&mut s, Action::CycleSource);
        update(&mut s, Action::CycleSource);
        assert_eq!(s.filters.source.as_deref(), Some("spacedrive"));
        update(&mut s, Action::CycleSource);
        assert_eq!(s.filters.source, None);
        assert!(s.filters.describe().is_empty());
    }

    #[test]
    fn the_filter_applies_as_you_type_and_esc_clears_it() {
        let mut s = timeline();
        update(&mut s, Action::StartFilter);
        assert_eq!(s.mode, Mode::Input);
        for c in "row 1".chars() {
            update(&mut s, Action::Input(InputKey::Char(c)));
        }
        assert_eq!(
            s.request().view.filter().unwrap().grep.as_deref(),
            Some("row 1")
        );
        update(&mut s, Action::Input(InputKey::Backspace));
        assert_eq!(s.filters.text, "row ");
        // Keys in the field are text: `q` does not quit.
        update(&mut s, Action::Input(InputKey::Char('q')));
        assert!(!s.quit);
        update(&mut s, Action::Submit);
        assert_eq!(s.mode, Mode::Normal);
        assert_eq!(s.filters.text, "row q");
        // Esc in normal mode clears the filters.
        update(&mut s, Action::Back);
        assert!(s.filters.is_empty());
        // Esc while typing cancels the filter too.
        update(&mut s, Action::StartFilter);
        update(&mut s, Action::Input(InputKey::Char('x')));
        update(&mut s, Action::Back);
        assert_eq!((s.mode, s.filters.text.as_str()), (Mode::Normal, ""));
    }

    #[test]
    fn n_and_shift_n_jump_between_matches() {
        let mut s = timeline();
        s.filters.text = "row 1".into();
        load(&mut s, (0..40).map(|i| ev(i, None)).collect(), 0);
        update(&mut s, Action::NextMatch);
        assert_eq!(s.selected_event().unwrap().event.summary, "row 1");
        update(&mut s, Action::NextMatch);
        assert_eq!(s.selected_event().unwrap().event.summary, "row 10");
        update(&mut s, Action::PrevMatch);
        assert_eq!(s.selected_event().unwrap().event.summary, "row 1");
        update(&mut s, Action::PrevMatch);
        assert!(s.flash.as_ref().unwrap().0.contains("no more matches"));
    }

    #[test]
    fn enter_shows_the_event_and_c_opens_its_session() {
        let mut s = timeline();
        update(&mut s, Action::Down);
        update(&mut s, Action::Enter);
        let Some(Drill::Event(e)) = s.top() else {
            panic!("no detail view")
        };
        assert_eq!(e.event.summary, "row 1");
        assert_eq!(s.request().view, ViewRequest::Nothing);
        update(&mut s, Action::Correlation);
        assert_eq!(
            s.top(),
            Some(&Drill::Session {
                corr: "sess-1".into()
            })
        );
        let ViewRequest::Events {
            filter,
            order,
            session,
            ..
        } = s.request().view
        else {
            panic!()
        };
        assert_eq!(filter.correlation_ids, ["sess-1"]);
        assert_eq!(
            (order, session.as_deref()),
            (Order::OldestFirst, Some("sess-1"))
        );
        assert_eq!(s.session.as_deref(), Some("sess-1"));
        update(&mut s, Action::Back);
        update(&mut s, Action::Back);
        assert_eq!((s.pane, s.stack.len()), (Pane::Timeline, 0));
        // The Session pane keeps the last one.
        update(&mut s, Action::GoPane(Pane::Session));
        assert!(matches!(s.request().view, ViewRequest::Events { .. }));
    }

    #[test]
    fn c_without_a_correlation_id_says_so() {
        let mut s = state();
        update(&mut s, Action::GoPane(Pane::Timeline));
        load(&mut s, vec![ev(1, None)], 0);
        update(&mut s, Action::Correlation);
        assert!(s.stack.is_empty());
        assert!(s.flash.as_ref().unwrap().0.contains("no correlation id"));
    }

    #[test]
    fn pause_freezes_the_state_panes_too() {
        let mut s = state();
        update(&mut s, Action::GoPane(Pane::Replication));
        let answer = |s: &AppState, failed: u64| {
            Action::Loaded(Box::new(Loaded {
                request: s.request(),
                status: StatusData::default(),
                data: Some(ViewData::Remotes(vec![crate::store::RemoteSummary {
                    remote: "m".into(),
                    failed,
                    ..Default::default()
                }])),
                error: None,
                took: Duration::ZERO,
            }))
        };
        let a = answer(&s, 0);
        update(&mut s, a);
        update(&mut s, Action::TogglePause);
        let a = answer(&s, 3);
        update(&mut s, a);
        assert_eq!(s.remotes().0[0].failed, 0, "a paused pane changed");
        update(&mut s, Action::TogglePause);
        let a = answer(&s, 3);
        update(&mut s, a);
        assert_eq!(s.remotes().0[0].failed, 3);
    }

    #[test]
    fn pause_freezes_at_a_store_id_and_resumes() {
        let mut s = timeline();
        update(&mut s, Action::TogglePause);
        assert_eq!(s.request().paused_upto, Some(5000));
        update(&mut s, Action::TogglePause);
        assert_eq!(s.request().paused_upto, None);
    }

    #[test]
    fn y_copies_the_selected_row_sanitized() {
        let mut s = state();
        update(&mut s, Action::GoPane(Pane::Timeline));
        let mut evil = ev(0, Some("c1"));
        evil.event.summary = "x\x1b]52;c;AAAA\x07y".into();
        load(&mut s, vec![evil], 0);
        let Some(Command::Copy(t)) = update(&mut s, Action::Copy) else {
            panic!()
        };
        assert!(t.contains("[c1]") && !t.contains('\x1b'), "{t:?}");
    }

    #[test]
    fn commands_set_filters_jump_and_report_errors() {
        let mut s = state();
        let run = |s: &mut AppState, line: &str| {
            update(s, Action::StartCommand);
            for c in line.chars() {
                update(s, Action::Input(InputKey::Char(c)));
            }
            update(s, Action::Submit)
        };
        run(&mut s, "since 2h");
        assert_eq!(s.pane, Pane::Timeline);
        assert_eq!(
            s.filters.since,
            Some(Timestamp::from_nanos(T0 - 7200 * 1_000_000_000))
        );
        run(&mut s, "source gerrit");
        assert_eq!(s.filters.source.as_deref(), Some("gerrit"));
        run(&mut s, "goto 2027-01-15T08:00:00Z");
        assert!(matches!(s.timeline.anchor, Anchor::At(_)));
        run(&mut s, "goto 14:02");
        let Anchor::At(c) = s.timeline.anchor else {
            panic!()
        };
        assert!(c.ts <= T0 && c.ts > T0 - 86_400 * 1_000_000_000);
        run(&mut s, "frobnicate");
        assert!(s.flash.as_ref().unwrap().0.contains("unknown command"));
        run(&mut s, "since yesterdayish");
        assert!(s.flash.as_ref().unwrap().0.starts_with(":since"));
        run(&mut s, "theme light");
        assert_eq!(s.theme, ThemeName::Light);
        run(&mut s, "corr abc-123");
        assert_eq!(s.session.as_deref(), Some("abc-123"));
        assert_eq!(run(&mut s, "q"), Some(Command::Quit));
    }

    /// A night with two patterns (one NEW) over two pipelines.
    pub(crate) fn ci_data() -> crate::tui::worker::CiData {
        use crate::model::ci::NightCell;
        use crate::store::ci::{
            CiHistory, CiJobRow, CiNight, CiPatternRow, CiPipelineRow, CiStrip,
        };
        let pattern = |id: &str, name: &str, identity: &str, jobs: u32, new: bool| CiPatternRow {
            id: id.into(),
            kind: "rule".into(),
            name: name.into(),
            identity: identity.into(),
            issue_url: (id == "aaaa00000001").then(|| "https://issues.example/42".into()),
            jobs_last_night: jobs,
            projects_last_night: if jobs > 0 {
                vec!["web/app".into()]
            } else {
                vec![]
            },
            nights_14: if new { 1 } else { 9 },
            nights_30: if new { 1 } else { 20 },
            first_seen: if new {
                "2026-11-25".into()
            } else {
                "2026-10-20".into()
            },
            last_seen: "2026-11-25".into(),
            is_new: new,
            projects: vec!["web/app".into()],
            examples: vec![],
        };
        let job = |id: i64, name: &str, pattern: &str| CiJobRow {
            id,
            name: name.into(),
            stage: Some("test".into()),
            allow_failure: false,
            failure_reason: Some("script_failure".into()),
            web_url: Some(format!("https://gitlab.example/web/app/-/jobs/{id}")),
            log_state: "fetched".into(),
            pattern_id: Some(pattern.into()),
            pattern_name: Some("test failure".into()),
            pattern_identity: Some("test_login".into()),
            pattern_new: pattern == "bbbb00000002",
            issue_url: None,
            section: Some("step_script".into()),
            excerpt: Some("FAILED tests/test_login.py::test_login - \x1b[31mAssertionError".into()),
            tail: Some("ERROR: Job failed: exit code 1".into()),
        };
        crate::tui::worker::CiData {
            night: Some(CiNight {
                night: "2026-11-25".into(),
                pipelines: vec![CiPipelineRow {
                    project: "web/app".into(),
                    project_url: None,
                    id: 901,
                    status: "failed".into(),
                    cell: NightCell::Failed,
                    ref_name: Some("main".into()),
                    web_url: None,
                    created_at: 0,
                    updated_at: 0,
                    jobs: vec![
                        job(7001, "pytest", "aaaa00000001"),
                        job(7002, "build", "bbbb00000002"),
                    ],
                }],
                failed: 1,
                warnings: 0,
                passed: 3,
                other: 0,
                projects: 4,
            }),
            patterns: vec![
                pattern("cccc00000003", "timeout", "job timed out", 0, false),
                pattern(
                    "aaaa00000001",
                    "Python: test failed",
                    "test_login",
                    1,
                    false,
                ),
                pattern("bbbb00000002", "Rust: compile error", "E0425", 1, true),
            ],
            history: CiHistory {
                nights: vec!["2026-11-24".into(), "2026-11-25".into()],
                projects: vec![CiStrip {
                    project: "web/app".into(),
                    cells: vec![NightCell::Passed, NightCell::Failed],
                }],
            },
        }
    }

    #[test]
    fn ci_patterns_new_first_then_jobs_then_a_job_and_its_url() {
        let mut s = state();
        update(&mut s, Action::GoPane(Pane::Ci));
        assert_eq!(s.request().view, ViewRequest::Ci);
        let request = s.request();
        update(
            &mut s,
            Action::Loaded(Box::new(Loaded {
                request,
                status: StatusData::default(),
                data: Some(ViewData::Ci(Box::new(ci_data()))),
                error: None,
                took: Duration::ZERO,
            })),
        );
        let (list, i) = s.ci_patterns();
        let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
        // Last night's patterns first, the NEW one on top; the one not seen last night last.
        assert_eq!(ids, ["bbbb00000002", "aaaa00000001", "cccc00000003"]);
        assert_eq!(i, 0);
        update(&mut s, Action::Down);
        assert_eq!(s.ci_selected.as_deref(), Some("aaaa00000001"));
        update(&mut s, Action::Enter);
        assert_eq!(
            s.top(),
            Some(&Drill::CiJobs {
                pattern: "aaaa00000001".into()
            })
        );
        // The drill-downs read the pane's data: nothing new to load.
        assert_eq!(s.request().view, ViewRequest::Ci);
        assert_eq!(s.ci_jobs("aaaa00000001").len(), 1);
        assert_eq!(
            update(&mut s, Action::Copy),
            Some(Command::Copy(
                "https://gitlab.example/web/app/-/jobs/7001".into()
            ))
        );
        update(&mut s, Action::Enter);
        assert_eq!(
            s.top(),
            Some(&Drill::CiJob {
                project: "web/app".into(),
                job: 7001
            })
        );
        assert_eq!(
            update(&mut s, Action::Copy),
            Some(Command::Copy(
                "https://gitlab.example/web/app/-/jobs/7001".into()
            ))
        );
        update(&mut s, Action::Back);
        update(&mut s, Action::Back);
        assert_eq!((s.pane, s.stack.len()), (Pane::Ci, 0));
        // The text filter narrows the patterns.
        s.filters.text = "e0425".into();
        assert_eq!(s.ci_patterns().0.len(), 1);
    }

    #[test]
    fn a_ci_jobs_log_opens_at_its_end_where_the_job_failed() {
        let mut s = state();
        update(&mut s, Action::GoPane(Pane::Ci));
        let request = s.request();
        update(
            &mut s,
            Action::Loaded(Box::new(Loaded {
                request,
                status: StatusData::default(),
                data: Some(ViewData::Ci(Box::new(ci_data()))),
                error: None,
                took: Duration::ZERO,
            })),
        );
        s.stack.push(Drill::CiJob {
            project: "web/app".into(),
            job: 7001,
        });
        // 0 lines up from the end: the failure is on screen.
        assert_eq!(s.detail_scroll, 0);
        let n = s.ci_log_lines("web/app", 7001) as u16;
        assert_eq!(n, 4);
        update(&mut s, Action::Up);
        assert_eq!(s.detail_scroll, 1);
        update(&mut s, Action::Top);
        assert_eq!(s.detail_scroll, n);
        update(&mut s, Action::Up);
        assert_eq!(s.detail_scroll, n, "scrolled past the top");
        update(&mut s, Action::Bottom);
        assert_eq!(s.detail_scroll, 0);
    }

    #[test]
    fn look_alike_rows_say_what_differs() {
        use crate::tui::panes::timeline::{looks_alike, what_differs};
        let a = ev(1, Some("s-aaaaaaaa-1"));
        let mut b = a.clone();
        b.id += 1;
        b.event.correlation_id = Some("s-bbbbbbbb-2".into());
        assert!(looks_alike(&a, &b));
        assert_eq!(what_differs(&b, &a), "session s-bbbbbb");
        let mut c = a.clone();
        c.id += 2;
        assert_eq!(what_differs(&c, &a), format!("#{}", c.id));
        let mut d = a.clone();
        d.id += 3;
        d.event.summary = "other".into();
        assert!(!looks_alike(&a, &d));
    }

    #[test]
    fn help_scrolls_with_the_move_keys_and_esc_closes_it() {
        let mut s = state();
        update(&mut s, Action::ShowHelp);
        assert_eq!(s.mode, Mode::Help);
        update(&mut s, Action::Down);
        update(&mut s, Action::Down);
        assert_eq!((s.mode, s.help_scroll), (Mode::Help, 2));
        update(&mut s, Action::Up);
        assert_eq!(s.help_scroll, 1);
        update(&mut s, Action::Back);
        assert_eq!((s.mode, s.help_scroll), (Mode::Normal, 0));
    }

    #[test]
    fn flash_messages_expire_with_ticks() {
        let mut s = state();
        update(&mut s, Action::AllSeverities);
        assert!(s.flash.is_some());
        for i in 0..FLASH_TICKS {
            update(&mut s, Action::Tick(T0 + i as i64));
        }
        assert!(s.flash.is_none());
    }

    #[test]
    fn resize_keeps_the_selection_on_screen() {
        let mut s = timeline();
        update(&mut s, Action::PageDown);
        update(&mut s, Action::Resize(80, 10));
        assert!(s.timeline.screen_row < s.list_rows());
    }
}
