//! The app state and `update`: pure (no I/O, no drawing), so every action is unit-tested.
//! What the screen needs from the store is derived from the state by [`AppState::request`];
//! the loop sends it to the query worker whenever it changes.

use tui_input::{Input, InputRequest};

use super::action::{Action, InputKey};
use super::filters::find_match;
pub use super::filters::{contains_ci, row_matches, Filters};
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
    /// Why this process's ingest stopped (shown on the status line until the UI quits).
    pub ingest_stopped: Option<String>,
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
            ingest_stopped: None,
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
                "find",
                "errors_only",
                "copy",
                "correlation",
                "scroll_right",
            ],
            (None, Pane::Overview) => &["down", "enter", "correlation", "copy", "pause"],
            (None, Pane::Replication) | (None, Pane::Relays) | (None, Pane::Ci) => &[
                "enter",
                "filter",
                "errors_only",
                "warnings_up",
                "command",
                "copy",
                "pause",
            ],
            (None, Pane::Timeline) | (None, Pane::Session) => &[
                "enter",
                "correlation",
                "filter",
                "find",
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
                    sources: vec![crate::model::names::system::GERRIT.into()],
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
                    sources: vec![crate::model::names::system::NGIT.into()],
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

    pub(crate) fn cache_of(&self, v: &ViewRequest) -> Option<&ViewData> {
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
        Action::IngestStopped(why) => {
            state.ingesting = false;
            state.ingest_stopped = Some(why);
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

/// Enter: the pane (or drill-down) on screen handles it in its module.
fn enter(state: &mut AppState) {
    use super::panes;
    match state.on() {
        On::Ci => panes::ci::enter(state),
        On::Replication => panes::replication::enter(state),
        On::Relays => panes::relays::enter(state),
        On::Overview => panes::overview::enter(state),
        On::Detail => {}
        On::Events => open_selected_event(state),
    }
}

/// Which module's keys apply: the drill-down on top belongs to the pane it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum On {
    Overview,
    /// The remotes and a remote's refs.
    Replication,
    Relays,
    /// The patterns, a pattern's jobs and a job.
    Ci,
    /// One event, whole.
    Detail,
    /// An event list: the Timeline, a session, a ref's or a relay's history.
    Events,
}

impl AppState {
    pub(crate) fn on(&self) -> On {
        match (self.top(), self.pane) {
            (Some(Drill::Refs { .. }), _) => On::Replication,
            (Some(Drill::CiJobs { .. }), _) | (Some(Drill::CiJob { .. }), _) => On::Ci,
            (Some(Drill::Event(_)), _) => On::Detail,
            (Some(_), _) => On::Events,
            (None, Pane::Overview) => On::Overview,
            (None, Pane::Replication) => On::Replication,
            (None, Pane::Relays) => On::Relays,
            (None, Pane::Ci) => On::Ci,
            (None, Pane::Timeline) | (None, Pane::Session) => On::Events,
        }
    }
}

/// Enter on an event: the whole event, on top.
pub(crate) fn open_selected_event(state: &mut AppState) {
    if let Some(e) = state.selected_event().cloned() {
        state.detail_scroll = 0;
        state.stack.push(Drill::Event(Box::new(e)));
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

/// Moves the selection by `delta` rows in whichever list is on screen.
pub(crate) fn move_by(state: &mut AppState, delta: i64) {
    use super::panes;
    match state.on() {
        On::Ci => panes::ci::move_by(state, delta),
        On::Replication => panes::replication::move_by(state, delta),
        On::Relays => panes::relays::move_by(state, delta),
        On::Overview => panes::overview::move_by(state, delta),
        On::Detail => {
            let d = delta.clamp(-(u16::MAX as i64), u16::MAX as i64) as i32;
            state.detail_scroll = (state.detail_scroll as i32 + d).clamp(0, u16::MAX as i32) as u16;
        }
        On::Events => move_in_events(state, delta),
    }
}

/// Moves the selection of an event list: the anchor follows the row.
fn move_in_events(state: &mut AppState, delta: i64) {
    let rows = state.list_rows();
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

fn move_to_end(state: &mut AppState, end: bool) {
    let rows = state.list_rows();
    let far = if end { i64::MAX / 4 } else { -(i64::MAX / 4) };
    match state.on() {
        On::Ci => super::panes::ci::move_to_end(state, end),
        On::Replication => super::panes::replication::move_to_end(state, end),
        On::Relays | On::Overview => move_by(state, far),
        On::Detail => state.detail_scroll = if end { u16::MAX / 2 } else { 0 },
        On::Events => {
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

fn copy_text(state: &AppState) -> Option<String> {
    use super::panes;
    match state.on() {
        On::Ci => panes::ci::copy(state),
        On::Replication => panes::replication::copy(state),
        On::Relays => panes::relays::copy(state),
        _ => match state.top() {
            Some(Drill::Session { corr }) if state.selected_event().is_none() => Some(corr.clone()),
            _ => state.selected_event().map(row_text),
        },
    }
    .map(|t| crate::sanitize::one_line(&t).into_owned())
}

#[cfg(test)]
#[path = "app_tests.rs"]
pub(crate) mod tests;
