//! The query worker: one thread owns the TUI's read connection. The UI sends what the screen
//! shows (a [`Request`], latest wins); the worker answers with the rows of that window only,
//! and answers again when the store changes (another connection committed), at most a few
//! times a second. A newer request interrupts a query still running for an older one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr};
use tokio::sync::mpsc;

use crate::model::relay::TargetState;
use crate::model::{StoredEvent, Timestamp};
use crate::store::query::Cursor;
use crate::store::relays::Freshness;
use crate::store::{self, EventFilter, Reader, RemoteSummary, SessionSummary};

/// How often the worker looks for commits of other connections.
const POLL: Duration = Duration::from_millis(100);
/// Live data is refreshed at most this often (coalescing bursts of commits).
const MIN_REFRESH: Duration = Duration::from_millis(250);
/// The window over which events/s is measured.
const RATE_WINDOW: Duration = Duration::from_secs(3);
/// On an unchanged store a view whose answer moves with the clock (the Overview's hour, the
/// relay strips) is loaded again at most this often, and never more often than
/// [`IDLE_SHARE`] of the time its last load took allows: the idle UI stays near 0% CPU.
const TIME_REFRESH: Duration = Duration::from_secs(10);
/// Its last load × this is the least time between two loads of an unchanged store (1%).
const IDLE_SHARE: u32 = 100;

/// Where an event list is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The start of the list (newest for the timeline: live following).
    Start,
    /// The end of the list.
    End,
    /// This row (inclusive), shown with rows on both sides.
    At(Cursor),
}

/// The order of an event list on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// What the screen shows, and so what to load.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewRequest {
    Overview {
        errors: usize,
        minutes: usize,
    },
    Remotes,
    Refs {
        remote: String,
        text: String,
        offset: u64,
        limit: u64,
    },
    Relays {
        strip_minutes: usize,
    },
    /// GitLab CI: the latest night.
    Ci,
    Events {
        filter: Box<EventFilter>,
        anchor: Anchor,
        order: Order,
        /// Totals for this correlation id (the session view).
        session: Option<String>,
    },
    /// Nothing to load but the status bar.
    Nothing,
}

impl ViewRequest {
    /// The anchor of an event list.
    pub fn anchor(&self) -> Option<Anchor> {
        match self {
            ViewRequest::Events { anchor, .. } => Some(*anchor),
            _ => None,
        }
    }

    /// Whether the answer changes with the clock alone (a window ending now), so an unchanged
    /// store still needs an occasional load.
    pub fn moves_with_time(&self) -> bool {
        matches!(
            self,
            ViewRequest::Overview { .. } | ViewRequest::Relays { .. }
        )
    }

    /// The filter of an event list.
    pub fn filter(&self) -> Option<&EventFilter> {
        match self {
            ViewRequest::Events { filter, .. } => Some(filter),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub view: ViewRequest,
    /// Rows visible on screen: windows load about this many on each side of the anchor.
    pub rows: usize,
    /// Paused: a snapshot up to this store id; the pane data holds still.
    pub paused_upto: Option<i64>,
    /// Counts "+N new" against this filter while paused.
    pub count_filter: EventFilter,
}

/// A window of events around an anchor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventsWindow {
    /// In screen order.
    pub rows: Vec<StoredEvent>,
    /// The index of the anchor row in `rows` (or where it would be).
    pub anchor_index: usize,
    /// More rows exist before the first / after the last loaded one.
    pub more_before: bool,
    pub more_after: bool,
    pub session: Option<SessionSummary>,
    /// The session's ids among the rows, when the one asked for is a prefix (`7ceff8ba`):
    /// one id is the session shown; several say the prefix is ambiguous.
    pub session_ids: Vec<String>,
}

/// What the Overview pane shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OverviewData {
    pub remotes: Vec<RemoteSummary>,
    pub relays: Vec<TargetState>,
    /// Sessions started in the window and not ended, newest first, at most
    /// [`OPEN_SESSIONS_SHOWN`].
    pub open_sessions: Vec<(String, Timestamp)>,
    /// Where the window of open sessions starts when it is shorter than ten minutes: the
    /// time of the [`OPEN_SESSIONS_SCAN`]th newest event (a store written fast).
    pub open_since: Option<Timestamp>,
    /// Per source, events per severity in the last hour.
    pub last_hour: Vec<(String, [u64; 4])>,
    /// Per minute, oldest first.
    pub rates: Vec<[u64; 4]>,
    pub newest_errors: Vec<StoredEvent>,
    /// The latest CI night, and how many of its patterns are new.
    pub ci: Option<(crate::store::ci::CiNight, usize, usize)>,
    /// Since when (Unix seconds) each remote in trouble (FAILED or retrying refs) has been.
    pub remote_since: BTreeMap<String, i64>,
    /// Spacedrive sessions with errors in the last hour, newest first.
    pub session_errors: Vec<SessionErrors>,
    /// How many sessions had errors in all (`session_errors` holds the first few, named).
    pub session_error_groups: usize,
    /// Last night's NEW CI patterns: (id, name, identity, jobs).
    pub ci_new: Vec<(String, String, String, u32)>,
}

pub use crate::store::overview::SessionErrors;

/// At most this many open sessions are read (the Overview says "50+").
pub const OPEN_SESSIONS_SHOWN: u64 = 50;
/// The open sessions are looked for in the last ten minutes, or in the newest this many
/// events when those ten minutes hold more: the query reads every event of its window, and a
/// store written at 20,000 events/s holds 12,000,000 in ten minutes.
pub const OPEN_SESSIONS_SCAN: u64 = 5_000;

/// How many Spacedrive errors of the last hour the Overview reads to name their sessions.
const SESSION_ERRORS_READ: u64 = 500;
/// How many of those sessions it names (the rest are counted: "+N more").
pub const SESSION_ERRORS_NAMED: usize = crate::tui::panes::problems::PER_SYSTEM;

/// What the CI pane shows: the latest night, the patterns up to it, the projects' strips.
#[derive(Debug, Clone, PartialEq)]
pub struct CiData {
    pub night: Option<crate::store::ci::CiNight>,
    pub patterns: Vec<crate::store::ci::CiPatternRow>,
    pub history: crate::store::ci::CiHistory,
}

/// One relay's state over the strip's minutes (oldest first); None where unknown.
pub use crate::store::relays::Strip;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RelaysData {
    pub targets: Vec<TargetState>,
    /// (target, relay) → strip.
    pub strips: BTreeMap<(String, String), Strip>,
    pub unreadable: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ViewData {
    Nothing,
    Overview(OverviewData),
    Remotes(Vec<RemoteSummary>),
    Refs {
        remote: String,
        offset: u64,
        refs: Vec<crate::model::gerrit::RefState>,
        total: u64,
    },
    Relays(RelaysData),
    Ci(Box<CiData>),
    Events(EventsWindow),
}

/// One ingest source on the sources line: its state and how long since it delivered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceLine {
    pub source: String,
    /// ok / waiting / busy / backoff / fault / done, or None if it never reported.
    pub state: Option<String>,
    pub message: String,
    /// Unix seconds of its newest committed batch (within retention): the lag is now − this.
    pub last_batch: Option<i64>,
}

/// The sources line from the store's freshness (one indexed lookup a source) and the
/// messages of their reported states.
pub fn source_lines(r: &Reader, fresh: &Freshness) -> Result<Vec<SourceLine>> {
    let messages: BTreeMap<String, String> = r
        .source_statuses()?
        .into_iter()
        .map(|s| (s.source, s.message))
        .collect();
    Ok(fresh
        .ingest
        .iter()
        .map(|i| SourceLine {
            source: i.source.clone(),
            state: i.state.clone(),
            message: messages.get(&i.source).cloned().unwrap_or_default(),
            last_batch: i.last_batch,
        })
        .collect())
}

/// What the status bar shows, loaded with every answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusData {
    pub sources: Vec<SourceLine>,
    pub rows: u64,
    pub events_per_sec: f64,
    pub max_id: i64,
    /// While paused: events stored since the snapshot (matching the filter).
    pub new_since_pause: u64,
    /// The systems that have events (for source cycling).
    pub systems: Vec<String>,
    /// The timestamp of the newest stored event (None: an empty store).
    pub newest: Option<Timestamp>,
    /// How long the store has been unchanged (no commit by any connection) as the worker saw it.
    pub unchanged_for: Duration,
}

/// One answer of the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub request: Request,
    pub status: StatusData,
    /// None when only the status was refreshed (paused).
    pub data: Option<ViewData>,
    /// The query failed (the previous data stays on screen).
    pub error: Option<String>,
    /// How long the queries took.
    pub took: Duration,
}

/// The UI's handle on the worker.
pub struct QueryWorker {
    tx: std_mpsc::Sender<Request>,
    interrupt: Arc<rusqlite::InterruptHandle>,
    busy: Arc<AtomicBool>,
    last: Option<Request>,
}

impl QueryWorker {
    /// Opens the store for reading and starts the worker, which sends its answers on `out`.
    pub fn start(db: PathBuf, out: mpsc::Sender<Box<Loaded>>) -> Result<QueryWorker> {
        let reader = store::open_reader(&db)?;
        let interrupt = Arc::new(reader.connection().get_interrupt_handle());
        let busy = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std_mpsc::channel::<Request>();
        let worker_busy = busy.clone();
        std::thread::Builder::new()
            .name("syncscope-query".into())
            .spawn(move || {
                crate::ingest::lower_thread_priority(5);
                Worker::new(reader, worker_busy).run(rx, out)
            })
            .wrap_err("cannot start the query thread")?;
        Ok(QueryWorker {
            tx,
            interrupt,
            busy,
            last: None,
        })
    }

    /// Asks for `req` unless it is what was asked last; a query still running is interrupted.
    pub fn request(&mut self, req: Request) {
        if self.last.as_ref() == Some(&req) {
            return;
        }
        if self.busy.load(Ordering::Acquire) {
            self.interrupt.interrupt();
        }
        self.last = Some(req.clone());
        let _ = self.tx.send(req);
    }
}

struct Worker {
    reader: Reader,
    busy: Arc<AtomicBool>,
    samples: std::collections::VecDeque<(Instant, i64)>,
    rows_cache: Option<(Instant, u64)>,
    /// The last status, reused while the store is unchanged.
    last_status: Option<StatusData>,
    /// When the worker last saw the store change (or started).
    changed_at: Instant,
}

impl Worker {
    fn new(reader: Reader, busy: Arc<AtomicBool>) -> Self {
        Worker {
            reader,
            busy,
            samples: std::collections::VecDeque::new(),
            rows_cache: None,
            last_status: None,
            changed_at: Instant::now(),
        }
    }

    fn run(mut self, rx: std_mpsc::Receiver<Request>, out: mpsc::Sender<Box<Loaded>>) {
        let mut current: Option<Request> = None;
        // The version the screen's data was loaded at, and the last one seen.
        let mut version = self.data_version();
        let mut seen = version;
        let mut last_view = Instant::now();
        let mut last_took = Duration::ZERO;
        let mut last_status = Instant::now();
        loop {
            let fresh = match rx.recv_timeout(POLL) {
                Ok(mut r) => {
                    // Latest wins.
                    while let Ok(newer) = rx.try_recv() {
                        r = newer;
                    }
                    current = Some(r);
                    true
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => false,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let Some(req) = current.clone() else {
                continue;
            };
            let v = self.data_version();
            if v != seen {
                seen = v;
                self.changed_at = Instant::now();
            }
            let changed = v != version;
            let since_view = last_view.elapsed();
            // Nothing changed: only a view that moves with the clock is loaded again, rarely.
            let clock_due = req.view.moves_with_time()
                && since_view >= TIME_REFRESH.max(last_took * IDLE_SHARE);
            let view_due = fresh || changed && since_view >= MIN_REFRESH || clock_due;
            // The status bar: events/s and STALE move with the clock once a second.
            let status_due = view_due || last_status.elapsed() >= Duration::from_secs(1);
            if !status_due {
                continue;
            }
            let status_only = !view_due || !fresh && req.paused_upto.is_some();
            if !status_only {
                version = v;
                last_view = Instant::now();
            }
            last_status = Instant::now();
            self.busy.store(true, Ordering::Release);
            let started = Instant::now();
            let answer = self.answer(&req, status_only, changed || fresh);
            self.busy.store(false, Ordering::Release);
            if !status_only {
                last_took = started.elapsed();
            }
            let loaded = match answer {
                Ok((status, data)) => Loaded {
                    request: req,
                    status,
                    data,
                    error: None,
                    took: started.elapsed(),
                },
                Err(e) => {
                    if is_interrupt(&e) {
                        // A newer request is waiting; it answers instead.
                        continue;
                    }
                    Loaded {
                        request: req,
                        status: StatusData::default(),
                        data: None,
                        error: Some(format!("{e:#}")),
                        took: started.elapsed(),
                    }
                }
            };
            if out.blocking_send(Box::new(loaded)).is_err() {
                return;
            }
        }
    }

    fn data_version(&self) -> i64 {
        self.reader
            .connection()
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap_or(0)
    }

    fn answer(
        &mut self,
        req: &Request,
        status_only: bool,
        changed: bool,
    ) -> Result<(StatusData, Option<ViewData>)> {
        let status = self.status(req, changed)?;
        if status_only {
            return Ok((status, None));
        }
        let data = load_view(&self.reader, req, Timestamp::now())?;
        Ok((status, Some(data)))
    }

    /// The status bar's data; on an unchanged store only what moves with the clock is new.
    fn status(&mut self, req: &Request, changed: bool) -> Result<StatusData> {
        let now = Instant::now();
        if let Some(last) = self.last_status.as_ref().filter(|_| !changed) {
            let mut s = last.clone();
            s.events_per_sec = self.rate(now, s.max_id);
            s.unchanged_for = self.changed_at.elapsed();
            self.last_status = Some(s.clone());
            return Ok(s);
        }
        // The newest event and id, and each source's last batch: a few indexed lookups, only
        // when the store changed.
        let fresh = self.reader.freshness()?;
        let max_id = fresh.newest_id;
        let events_per_sec = self.rate(now, max_id);
        let r = &self.reader;
        // The total reads event_counts: refreshed once a second, not on every answer.
        let rows = match self.rows_cache {
            Some((t, n)) if t.elapsed() < Duration::from_secs(1) => n,
            _ => {
                let n = r.total_events()?;
                self.rows_cache = Some((now, n));
                n
            }
        };
        let new_since_pause = match req.paused_upto {
            Some(upto) if max_id > upto => r.count_after_id(upto, &req.count_filter)?,
            _ => 0,
        };
        let s = StatusData {
            sources: source_lines(r, &fresh)?,
            rows,
            events_per_sec,
            max_id,
            new_since_pause,
            systems: r.event_sources()?,
            newest: fresh.newest_event,
            unchanged_for: self.changed_at.elapsed(),
        };
        self.last_status = Some(s.clone());
        Ok(s)
    }

    /// Events/s over the last few seconds, from the store ids seen.
    fn rate(&mut self, now: Instant, max_id: i64) -> f64 {
        self.samples.push_back((now, max_id));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        match self.samples.front() {
            Some((t, id)) if now.duration_since(*t) > Duration::from_millis(200) => {
                (max_id - id).max(0) as f64 / now.duration_since(*t).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

fn is_interrupt(e: &color_eyre::Report) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<rusqlite::Error>().is_some_and(|r| {
            r.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
        })
    })
}

/// Loads what `req` asks for (no status), as of `now`. Public for the benchmark.
pub fn load_view(r: &Reader, req: &Request, now: Timestamp) -> Result<ViewData> {
    let snapshot = |f: &EventFilter| EventFilter {
        upto_id: req.paused_upto.or(f.upto_id),
        ..f.clone()
    };
    Ok(match &req.view {
        ViewRequest::Nothing => ViewData::Nothing,
        ViewRequest::Overview { errors, minutes } => {
            let hour_ago = Timestamp::from_nanos(now.as_nanos() - 3_600_000_000_000);
            let (relays, _) = r.relay_targets()?;
            let remotes = r.remote_summaries()?;
            let mut remote_since = BTreeMap::new();
            for rs in remotes
                .iter()
                .filter(|x| x.is_failed() || x.retrying > 0)
                .take(8)
            {
                if let Some(t) = r.remote_trouble_since(&rs.remote)? {
                    remote_since.insert(rs.remote.clone(), t);
                }
            }
            let (session_errors, session_error_groups) = r.session_errors(
                hour_ago,
                req.paused_upto,
                SESSION_ERRORS_READ,
                SESSION_ERRORS_NAMED,
            )?;
            let error_filter = snapshot(&EventFilter {
                min_severity: Some(crate::model::Severity::Error),
                ..EventFilter::default()
            });
            let ci_patterns = r.ci_patterns(None, None)?;
            let ten_minutes_ago = Timestamp::from_nanos(now.as_nanos() - 600_000_000_000);
            let open_since = r
                .ts_of_nth_newest(OPEN_SESSIONS_SCAN)?
                .filter(|t| *t > ten_minutes_ago);
            let open_from = open_since.unwrap_or(ten_minutes_ago);
            ViewData::Overview(OverviewData {
                remotes,
                remote_since,
                session_errors,
                session_error_groups,
                ci_new: ci_patterns
                    .iter()
                    .filter(|p| p.is_new && p.jobs_last_night > 0)
                    .map(|p| {
                        (
                            p.id.clone(),
                            p.name.clone(),
                            p.identity.clone(),
                            p.jobs_last_night,
                        )
                    })
                    .collect(),
                relays,
                open_sessions: r.open_sessions(open_from, OPEN_SESSIONS_SHOWN)?,
                open_since,
                last_hour: r.counts_by_source(hour_ago)?,
                rates: r.rate_per_minute(now, *minutes)?,
                newest_errors: r.page_before(&error_filter, None, *errors as u64)?,
                ci: match r.ci_night(None, None)? {
                    Some(n) => {
                        let p = &ci_patterns;
                        let hit = p.iter().filter(|p| p.jobs_last_night > 0).count();
                        let new = p.iter().filter(|p| p.is_new).count();
                        Some((n, hit, new))
                    }
                    None => None,
                },
            })
        }
        ViewRequest::Remotes => ViewData::Remotes(r.remote_summaries()?),
        ViewRequest::Refs {
            remote,
            text,
            offset,
            limit,
        } => {
            let (refs, total) = r.refs_of_remote(remote, Some(text), *offset, *limit)?;
            ViewData::Refs {
                remote: remote.clone(),
                offset: *offset,
                refs,
                total,
            }
        }
        ViewRequest::Ci => ViewData::Ci(Box::new(CiData {
            night: r.ci_night(None, None)?,
            patterns: r.ci_patterns(None, None)?,
            history: r.ci_history(None, crate::model::ci::STRIP_NIGHTS, None)?,
        })),
        ViewRequest::Relays { strip_minutes } => {
            ViewData::Relays(load_relays(r, now, *strip_minutes)?)
        }
        ViewRequest::Events {
            filter,
            anchor,
            order,
            session,
        } => {
            let mut w = load_window(r, &snapshot(filter), *anchor, *order, req.rows.max(1))?;
            if let Some(corr) = session {
                // A short id (a prefix, as the UI shows ids) is the full one of its rows.
                let mut ids: Vec<String> = w
                    .rows
                    .iter()
                    .filter_map(|e| e.event.correlation_id.clone())
                    .collect();
                ids.sort();
                ids.dedup();
                let full = match ids.as_slice() {
                    [one] => one.clone(),
                    _ => corr.clone(),
                };
                let mut summary = r.session_summary(&full)?;
                // Counted once (a completed session reports its batches' total too).
                summary.records = r.session_records(&full)?;
                w.session = Some(summary);
                w.session_ids = ids;
            }
            ViewData::Events(w)
        }
    })
}

/// About `rows` rows before the anchor and `2 × rows` from it on, in screen order.
pub fn load_window(
    r: &Reader,
    f: &EventFilter,
    anchor: Anchor,
    order: Order,
    rows: usize,
) -> Result<EventsWindow> {
    let n = rows as u64;
    let newest_first = order == Order::NewestFirst;
    let (before, after) = match anchor {
        Anchor::Start => {
            let after = if newest_first {
                r.page_before(f, None, 2 * n + 1)?
            } else {
                r.page_after(f, None, 2 * n + 1)?
            };
            (Vec::new(), after)
        }
        Anchor::End => {
            let mut before = if newest_first {
                r.page_after(f, None, 2 * n + 1)?
            } else {
                r.page_before(f, None, 2 * n + 1)?
            };
            before.reverse();
            let anchor_row = before.pop();
            (before, anchor_row.into_iter().collect())
        }
        Anchor::At(c) => {
            // Inclusive of the anchor: step the cursor one key past it.
            let past = Cursor {
                ts: c.ts,
                key: c.key.saturating_add(1),
            };
            let before_it = Cursor {
                ts: c.ts,
                key: c.key.saturating_sub(1),
            };
            if newest_first {
                let mut before = r.page_after(f, Some(c), n)?;
                before.reverse();
                (before, r.page_before(f, Some(past), 2 * n + 1)?)
            } else {
                let mut before = r.page_before(f, Some(c), n)?;
                before.reverse();
                (before, r.page_after(f, Some(before_it), 2 * n + 1)?)
            }
        }
    };
    let more_before = matches!(anchor, Anchor::End | Anchor::At(_)) && before.len() as u64 >= n
        || matches!(anchor, Anchor::End) && !before.is_empty();
    let more_after = after.len() as u64 > 2 * n
        || matches!(anchor, Anchor::At(_)) && after.len() as u64 >= 2 * n;
    let anchor_index = before.len();
    let mut rows_out = before;
    rows_out.extend(after);
    Ok(EventsWindow {
        rows: rows_out,
        anchor_index,
        more_before,
        more_after,
        session: None,
        session_ids: Vec::new(),
    })
}

/// Every relay of every target, with its state over the last `minutes` minutes: the store's
/// strips (a down target or a vanished relay gives empty cells).
fn load_relays(r: &Reader, now: Timestamp, minutes: usize) -> Result<RelaysData> {
    let (targets, unreadable) = r.relay_targets()?;
    let strips = r.relay_strips(&targets, now, minutes)?;
    Ok(RelaysData {
        targets,
        strips,
        unreadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Severity};
    use crate::store::Writer;

    fn store(n: i64) -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let mut w = Writer::open(&db).unwrap();
        let events: Vec<Event> = (0..n)
            .map(|i| {
                Event::new(
                    Timestamp::from_nanos(1_800_000_000_000_000_000 + i * 1_000_000_000),
                    "jsonl",
                    "x",
                    "misc",
                    Severity::Info,
                    format!("e{i}"),
                )
            })
            .collect();
        w.commit_batch("t", &events, &[], None).unwrap();
        (dir, store::open_reader(&db).unwrap())
    }

    fn names(w: &EventsWindow) -> Vec<String> {
        w.rows.iter().map(|e| e.event.summary.clone()).collect()
    }

    #[test]
    fn the_sources_line_has_each_sources_state_message_and_last_batch() {
        let (d, _) = store(3);
        let db = d.path().join("s.db");
        let mut w = Writer::open(&db).unwrap();
        w.set_status("t", "fault", "connection refused").unwrap();
        w.set_status("idle", "waiting", "").unwrap();
        let r = store::open_reader(&db).unwrap();
        let fresh = r.freshness().unwrap();
        assert_eq!(fresh.newest_id, r.max_event_id().unwrap());
        let lines = source_lines(&r, &fresh).unwrap();
        let got: Vec<(&str, Option<&str>, &str, bool)> = lines
            .iter()
            .map(|l| {
                (
                    l.source.as_str(),
                    l.state.as_deref(),
                    l.message.as_str(),
                    l.last_batch.is_some(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("idle", Some("waiting"), "", false),
                ("t", Some("fault"), "connection refused", true),
            ]
        );
    }

    #[test]
    fn windows_hold_rows_on_both_sides_of_the_anchor() {
        let (_d, r) = store(20);
        let f = EventFilter::default();
        let top = load_window(&r, &f, Anchor::Start, Order::NewestFirst, 3).unwrap();
        assert_eq!(names(&top)[..3], ["e19", "e18", "e17"]);
        assert_eq!((top.anchor_index, top.rows.len()), (0, 7));
        assert!(top.more_after && !top.more_before);
        let at = top.rows[4].clone();
        let c = Cursor {
            ts: at.event.timestamp.as_nanos(),
            key: at.key,
        };
        let mid = load_window(&r, &f, Anchor::At(c), Order::NewestFirst, 3).unwrap();
        assert_eq!(mid.rows[mid.anchor_index].event.summary, "e15");
        assert_eq!(names(&mid)[..4], ["e18", "e17", "e16", "e15"]);
        let end = load_window(&r, &f, Anchor::End, Order::NewestFirst, 3).unwrap();
        assert_eq!(end.rows.last().unwrap().event.summary, "e0");
        assert_eq!(end.rows[end.anchor_index].event.summary, "e0");
        let asc = load_window(&r, &f, Anchor::At(c), Order::OldestFirst, 3).unwrap();
        assert_eq!(names(&asc)[..4], ["e12", "e13", "e14", "e15"]);
        assert_eq!(asc.rows[asc.anchor_index].event.summary, "e15");
    }
}
