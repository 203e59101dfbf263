//! The ingest loop: one task per source, a bounded channel, one writer thread.
//!
//! ```text
//!  source task ─┐  SourceMsg::Batch{events, rejects, checkpoint}   ┌─ writer thread
//!  source task ─┼──────────── bounded mpsc (backpressure) ─────────▶┤  BEGIN; events; rejects;
//!  source task ─┘  SourceMsg::Status{state, message}                 │  checkpoint; COMMIT
//! ```

pub mod follow;
pub mod kinds;
pub mod progress;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{eyre, Result, WrapErr};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::{Event, Reject};
use crate::store::retention::{Pruned, Pruning};
use crate::store::{BatchOutcome, StateUpdate, Writer};

/// Batches in flight between sources and the writer; bounds ingest memory.
const CHANNEL_BATCHES: usize = 4;
/// At most this many queued batches, and about this many events, go into one transaction
/// when the writer is behind (fewer, larger commits; see `Writer::commit_all`).
const MERGE_BATCHES: usize = 4;
const MERGE_EVENTS: usize = 20_000;
/// How often retention runs while following.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Read what is there and stop, instead of following.
    pub once: bool,
    /// Prune events received more than this many days ago (0 keeps everything).
    pub retention_days: u32,
    /// The retention as a span in seconds (`--retention 10m`): when set, instead of
    /// `retention_days` (0 keeps everything).
    pub retention_secs: Option<u64>,
    /// How often followers look for new data.
    pub poll_interval: Duration,
    /// How often scraped targets (`/metrics`) are read.
    pub scrape_interval: Duration,
    /// Events per transaction.
    pub batch_size: usize,
    /// Print source state changes on stderr.
    pub log_status: bool,
    /// The kinds' config sections (`[gitlab]`, `[gerrit]`, …) and the knobs they share (the
    /// log zone): read by each kind's `build`, never by the ingest itself.
    pub kinds: kinds::KindSettings,
}

impl IngestOptions {
    /// The retention in seconds (0 keeps everything).
    pub fn retention(&self) -> u64 {
        self.retention_secs
            .unwrap_or(u64::from(self.retention_days) * 86_400)
    }
}

/// How often retention runs while following: hourly, or a tenth of a short retention (so a
/// store of a 10-minute retention holds at most 11 minutes), at most every 5 s.
fn prune_every(retention_secs: u64) -> Duration {
    PRUNE_EVERY.min(Duration::from_secs((retention_secs / 10).max(5)))
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            once: false,
            retention_days: 7,
            retention_secs: None,
            poll_interval: Duration::from_millis(500),
            scrape_interval: Duration::from_secs(5),
            batch_size: 5000,
            log_status: true,
            kinds: kinds::KindSettings::default(),
        }
    }
}

/// The health a source reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    Ok,
    Waiting,
    Backoff,
    Fault,
    Done,
    /// Long work under way; the message says how far (the TUI shows it, stderr has a bar).
    Busy,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Ok => "ok",
            SourceState::Waiting => "waiting",
            SourceState::Backoff => "backoff",
            SourceState::Fault => "fault",
            SourceState::Done => "done",
            SourceState::Busy => "busy",
        }
    }
}

/// One source's batch on its way to the writer.
pub struct QueuedBatch {
    pub(crate) source: String,
    pub(crate) events: Vec<Event>,
    /// `events[i].dedup_key()`, computed on the source's thread.
    pub(crate) keys: Vec<i64>,
    /// Derived state changes of any domain the batch carries.
    pub(crate) updates: Vec<StateUpdate>,
    pub(crate) rejects: Vec<Reject>,
    pub(crate) checkpoint: Option<String>,
    /// Fired once the batch is committed (a `nats:` source acknowledges its messages then).
    pub(crate) committed: Option<tokio::sync::oneshot::Sender<()>>,
}

impl QueuedBatch {
    fn as_batch(&self) -> crate::store::Batch<'_> {
        crate::store::Batch {
            source: &self.source,
            events: &self.events,
            keys: &self.keys,
            updates: &self.updates,
            rejects: &self.rejects,
            checkpoint: self.checkpoint.as_deref(),
        }
    }
}

/// A running source: reads, parses and sends batches through `ctx` until done or cancelled.
/// Sources are built elsewhere (`crate::sources`' registry); the ingest only runs them.
pub trait Source: Send {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()>;
}

/// A built source and the stable key its checkpoint and status are stored under.
pub struct Planned {
    pub key: String,
    pub source: Box<dyn Source>,
}

/// What source tasks send to the writer.
pub enum SourceMsg {
    Batch(QueuedBatch),
    Status {
        source: String,
        state: SourceState,
        message: String,
    },
    /// Time to apply retention.
    Prune,
}

/// A source's side of the loop: where to send, when to stop, where it left off.
pub struct SourceCtx {
    pub key: String,
    pub once: bool,
    pub poll_interval: Duration,
    pub scrape_interval: Duration,
    pub batch_size: usize,
    /// The checkpoint saved with this source's last committed batch.
    pub checkpoint: Option<String>,
    pub cancel: CancellationToken,
    /// Long work may draw a progress bar on stderr (a terminal, not `-q`).
    pub progress_bar: bool,
    /// The store's stable id (`meta.store_id`, hex); empty when forwarding (no store).
    pub store_id: String,
    tx: mpsc::Sender<SourceMsg>,
    last_status: std::cell::RefCell<Option<(SourceState, String)>>,
}

impl SourceCtx {
    /// Sends a batch: its events, their identity keys (`keys[i]` for `events[i]`, with its
    /// occurrence number: see [`crate::model::identity`]), the derived state changes it carries
    /// (of any domain: see [`crate::store::update`]), its rejects and the checkpoint to save
    /// with it, all committed in one transaction. Blocks while the writer is behind: call from
    /// a blocking thread.
    pub fn send(
        &self,
        events: Vec<Event>,
        keys: Vec<i64>,
        updates: Vec<StateUpdate>,
        rejects: Vec<Reject>,
        checkpoint: Option<String>,
    ) -> Result<()> {
        if events.is_empty() && rejects.is_empty() && checkpoint.is_none() && updates.is_empty() {
            return Ok(());
        }
        self.queue(events, keys, updates, rejects, checkpoint, None)
    }

    /// Queues one batch for the writer (both [`SourceCtx::send`]s).
    fn queue(
        &self,
        events: Vec<Event>,
        keys: Vec<i64>,
        updates: Vec<StateUpdate>,
        rejects: Vec<Reject>,
        checkpoint: Option<String>,
        committed: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<()> {
        if keys.len() != events.len() {
            return Err(eyre!("{} keys for {} events", keys.len(), events.len()));
        }
        self.tx
            .blocking_send(SourceMsg::Batch(QueuedBatch {
                source: self.key.clone(),
                keys,
                events,
                updates,
                rejects,
                checkpoint,
                committed,
            }))
            .map_err(|_| eyre!("the store writer stopped"))
    }

    /// [`SourceCtx::send`] of events identified by their content alone
    /// ([`Event::dedup_key`]).
    pub fn send_unkeyed(
        &self,
        events: Vec<Event>,
        updates: Vec<StateUpdate>,
        rejects: Vec<Reject>,
        checkpoint: Option<String>,
    ) -> Result<()> {
        let keys = events.iter().map(Event::dedup_key).collect();
        self.send(events, keys, updates, rejects, checkpoint)
    }

    /// Like [`SourceCtx::send`], with a notification fired once the batch is committed
    /// (dropped unfired when the writer fails). Call from a blocking thread.
    pub fn send_committed(
        &self,
        events: Vec<Event>,
        keys: Vec<i64>,
        updates: Vec<StateUpdate>,
        rejects: Vec<Reject>,
        checkpoint: Option<String>,
    ) -> Result<tokio::sync::oneshot::Receiver<()>> {
        let (done, rx) = tokio::sync::oneshot::channel();
        self.queue(events, keys, updates, rejects, checkpoint, Some(done))?;
        Ok(rx)
    }

    /// Reports the source's health; a repeat of the last report is not sent again.
    pub fn status(&self, state: SourceState, message: impl Into<String>) {
        let message = message.into();
        let mut last = self.last_status.borrow_mut();
        if last
            .as_ref()
            .is_some_and(|(s, m)| *s == state && *m == message)
        {
            return;
        }
        *last = Some((state, message.clone()));
        drop(last);
        let _ = self.tx.blocking_send(SourceMsg::Status {
            source: self.key.clone(),
            state,
            message,
        });
    }

    /// Sleeps for the poll interval; false when the ingest is being stopped.
    pub fn pause(&self) -> bool {
        self.sleep(self.poll_interval)
    }

    pub fn sleep(&self, d: Duration) -> bool {
        let step = Duration::from_millis(25);
        let mut left = d;
        while !left.is_zero() {
            if self.cancel.is_cancelled() {
                return false;
            }
            let s = left.min(step);
            std::thread::sleep(s);
            left -= s;
        }
        !self.cancel.is_cancelled()
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

impl SourceCtx {
    /// A context for a source under test (or a fuzz target): its batches and statuses go to `tx`.
    #[doc(hidden)]
    pub fn for_test(key: &str, once: bool, tx: mpsc::Sender<SourceMsg>) -> SourceCtx {
        SourceCtx {
            key: key.to_string(),
            once,
            poll_interval: Duration::from_millis(10),
            scrape_interval: Duration::from_millis(10),
            batch_size: 100,
            checkpoint: None,
            cancel: CancellationToken::new(),
            store_id: String::new(),
            progress_bar: false,
            tx,
            last_status: std::cell::RefCell::new(None),
        }
    }
}

/// What an ingest run did, per source key.
pub type IngestReport = BTreeMap<String, BatchOutcome>;

/// Runs every source (built, with its key) until each is done (`once`) or `cancel` fires, writing into the store at
/// `db`. Returns per-source counts; a source that failed makes the whole run an error after
/// the others have finished and everything read has been committed.
pub async fn run(
    db: PathBuf,
    sources: Vec<Planned>,
    opts: IngestOptions,
    cancel: CancellationToken,
) -> Result<IngestReport> {
    let mut writer = Writer::open(&db).map_err(|e| crate::store::open::explain(&db, e))?;
    let store_id = format!("{:016x}", writer.store_id()?);
    let (tx, rx) = mpsc::channel::<SourceMsg>(CHANNEL_BATCHES);
    let tasks = spawn_sources(sources, &opts, &cancel, &tx, &store_id, |key| {
        writer.checkpoint(key)
    })
    .map_err(|e| crate::store::open::explain(&db, e))?;

    // Retention ticks while following; once at start in every mode.
    let prune_tx = tx.clone();
    let prune_cancel = cancel.clone();
    let once = opts.once;
    let every = prune_every(opts.retention());
    let pruner = tokio::spawn(async move {
        if once {
            let _ = prune_tx.send(SourceMsg::Prune).await;
            return;
        }
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = prune_cancel.cancelled() => return,
                _ = tick.tick() => {
                    if prune_tx.send(SourceMsg::Prune).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    drop(tx);

    let retention = opts.retention();
    let log_status = opts.log_status;
    let writer_cancel = cancel.clone();
    let writer_task = tokio::task::spawn_blocking(move || {
        let r = write_loop(writer, rx, retention, log_status);
        if r.is_err() {
            // Sources stop when nothing can be stored.
            writer_cancel.cancel();
        }
        r
    });

    let first_err = join_sources(tasks).await;
    cancel.cancel();
    let _ = pruner.await;
    // A writer failure explains the sources' "writer stopped" errors: report it first.
    let report = writer_task
        .await
        .map_err(|e| eyre!("the store writer panicked: {e}"))?
        .map_err(|e| crate::store::open::explain(&db, e))?;
    match first_err {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// The running sources of an ingest, by key.
pub(crate) type SourceTasks = Vec<(String, tokio::task::JoinHandle<Result<()>>)>;

/// Starts one blocking task per source, sending into `tx`; `checkpoint` says where each
/// source left off (the store's checkpoint, or a forwarder's state file).
pub(crate) fn spawn_sources(
    sources: Vec<Planned>,
    opts: &IngestOptions,
    cancel: &CancellationToken,
    tx: &mpsc::Sender<SourceMsg>,
    store_id: &str,
    mut checkpoint: impl FnMut(&str) -> Result<Option<String>>,
) -> Result<SourceTasks> {
    let mut tasks = Vec::new();
    for Planned { key, source } in sources {
        let checkpoint = checkpoint(&key)?;
        let ctx = SourceCtx {
            key: key.clone(),
            once: opts.once,
            poll_interval: opts.poll_interval,
            scrape_interval: opts.scrape_interval,
            batch_size: opts.batch_size.max(1),
            checkpoint,
            cancel: cancel.clone(),
            store_id: store_id.to_string(),
            tx: tx.clone(),
            last_status: std::cell::RefCell::new(None),
            progress_bar: opts.log_status && progress::drawable(false),
        };
        tasks.push((
            key,
            tokio::task::spawn_blocking(move || {
                let key = ctx.key.clone();
                let r = source.run(&ctx);
                match &r {
                    Ok(()) => ctx.status(SourceState::Done, ""),
                    Err(e) => ctx.status(SourceState::Fault, format!("{e:#}")),
                }
                r.wrap_err_with(|| format!("source {key}"))
            }),
        ));
    }
    Ok(tasks)
}

/// Waits for every source; the first error, if any.
pub(crate) async fn join_sources(tasks: SourceTasks) -> Option<color_eyre::Report> {
    let mut first_err = None;
    for (_key, task) in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(join) => {
                first_err.get_or_insert(eyre!("a source task panicked: {join}"));
            }
        }
    }
    first_err
}

/// Lowers the calling thread's scheduling priority (Linux `nice` is per thread): background
/// work in the UI's process (the demo's simulator and ingest, the query worker) yields the
/// CPU to the thread that answers keys. Best effort: a failure changes nothing else.
pub fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take and return plain integers.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

fn write_loop(
    mut writer: Writer,
    mut rx: mpsc::Receiver<SourceMsg>,
    retention_secs: u64,
    log_status: bool,
) -> Result<IngestReport> {
    let mut report = IngestReport::new();
    let mut next = None;
    // A retention run in progress: one bounded step between commits, so ingest never waits
    // for a whole run (see store::retention).
    let mut pruning: Option<Pruning> = None;
    let step = |writer: &mut Writer, pruning: &mut Option<Pruning>| -> Result<()> {
        if let Some(run) = pruning.as_mut() {
            if writer.prune_step(run)? {
                if log_status {
                    log_pruned(&run.done, retention_secs);
                }
                *pruning = None;
            }
        }
        Ok(())
    };
    loop {
        let msg = match next.take() {
            Some(m) => m,
            None if pruning.is_some() => match rx.try_recv() {
                Ok(m) => m,
                Err(mpsc::error::TryRecvError::Empty) => {
                    step(&mut writer, &mut pruning)?;
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    while pruning.is_some() {
                        step(&mut writer, &mut pruning)?;
                    }
                    break;
                }
            },
            None => match rx.blocking_recv() {
                Some(m) => m,
                None => break,
            },
        };
        match msg {
            SourceMsg::Batch(first) => {
                // Batches already waiting go into the same transaction (a message of another
                // kind waits for the next turn).
                let mut group = vec![first];
                let mut events = group[0].events.len();
                while group.len() < MERGE_BATCHES && events < MERGE_EVENTS {
                    match rx.try_recv() {
                        Ok(SourceMsg::Batch(b)) => {
                            events += b.events.len();
                            group.push(b);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let batches: Vec<crate::store::Batch<'_>> =
                    group.iter().map(QueuedBatch::as_batch).collect();
                let outs = writer.commit_all(&batches)?;
                drop(batches);
                for (mut b, out) in group.into_iter().zip(outs) {
                    if let Some(done) = b.committed.take() {
                        let _ = done.send(());
                    }
                    if log_status && out.rejected > 0 {
                        let lines: Vec<String> = b
                            .rejects
                            .iter()
                            .map(|r| {
                                format!(
                                    "syncscope: {}: rejected {}: {}",
                                    b.source,
                                    crate::sanitize::one_line(&r.location),
                                    crate::sanitize::one_line(&r.reason)
                                )
                            })
                            .collect();
                        progress::eprint_lines(&lines);
                    }
                    *report.entry(b.source).or_default() += out;
                }
            }
            SourceMsg::Status {
                source,
                state,
                message,
            } => {
                if log_status
                    && !matches!(
                        state,
                        SourceState::Ok | SourceState::Done | SourceState::Busy
                    )
                {
                    progress::eprint_lines(&[format!(
                        "syncscope: {source}: {}: {}",
                        state.as_str(),
                        crate::sanitize::one_line(&message)
                    )]);
                }
                report.entry(source.clone()).or_default();
                writer.set_status(&source, state.as_str(), &message)?;
            }
            SourceMsg::Prune => {
                if pruning.is_none() && retention_secs > 0 {
                    pruning = Some(Pruning::new(retention_secs, crate::store::unix_now()));
                }
            }
        }
        step(&mut writer, &mut pruning)?;
    }
    Ok(report)
}

/// One line on stderr for a retention run that deleted anything.
fn log_pruned(p: &Pruned, retention_secs: u64) {
    if *p == Pruned::default() {
        return;
    }
    let span = if retention_secs.is_multiple_of(86_400) {
        format!("{} days", retention_secs / 86_400)
    } else {
        format!("{retention_secs} s")
    };
    eprintln!(
        "syncscope: retention: pruned {} events, {} strings, {} CI pipelines ({} jobs, {} patterns), {} relay targets older than {span}",
        p.events, p.strings, p.ci_pipelines, p.ci_jobs, p.ci_patterns, p.relay_targets
    );
}

#[cfg(test)]
mod commit_notification_tests {
    use super::*;

    #[test]
    fn a_batch_s_notification_fires_only_after_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let writer = Writer::open(&db).unwrap();
        let e = crate::model::parse_wire_event(
            br#"{"timestamp":"2026-11-30T00:00:00Z","event_type":"sync_error","summary":"x"}"#,
            "jsonl",
        )
        .unwrap();
        let (tx, rx) = mpsc::channel(4);
        let (done, mut committed) = tokio::sync::oneshot::channel();
        tx.blocking_send(SourceMsg::Batch(QueuedBatch {
            source: "nats:test".into(),
            keys: vec![e.dedup_key()],
            events: vec![e],
            updates: Vec::new(),
            rejects: Vec::new(),
            checkpoint: None,
            committed: Some(done),
        }))
        .unwrap();
        // Not fired before the writer ran.
        assert!(committed.try_recv().is_err());
        drop(tx);
        write_loop(writer, rx, 0, false).unwrap();
        committed.try_recv().expect("fired after the commit");
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn retention_runs_between_commits_and_finishes_before_the_loop_ends() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let mut writer = Writer::open(&db).unwrap();
        let line = |i: u32| {
            crate::model::parse_wire_event(
                format!(r#"{{"timestamp":"2026-11-30T00:00:{:02}Z","event_type":"sync_error","summary":"x {i}","correlation_id":"c-{i}"}}"#, i % 60).as_bytes(),
                "jsonl",
            )
            .unwrap()
        };
        let old: Vec<Event> = (0..30).map(line).collect();
        writer.commit_batch("old", &old, &[], None).unwrap();
        writer
            .connection()
            .execute("UPDATE batches SET received = received - 86400", [])
            .unwrap();
        let (tx, rx) = mpsc::channel(8);
        tx.blocking_send(SourceMsg::Prune).unwrap();
        for i in 100..103 {
            let e = line(i);
            tx.blocking_send(SourceMsg::Batch(QueuedBatch {
                source: "new".into(),
                keys: vec![e.dedup_key()],
                events: vec![e],
                updates: Vec::new(),
                rejects: Vec::new(),
                checkpoint: None,
                committed: None,
            }))
            .unwrap();
        }
        drop(tx);
        write_loop(writer, rx, 3600, false).unwrap();
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3, "the old events went, the new stayed");
        let corr: i64 = conn
            .query_row(
                "SELECT count(*) FROM strings WHERE text LIKE 'c-%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(corr, 3, "and the old correlation ids with them");
    }

    #[test]
    fn the_store_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let a = Writer::open(&db).unwrap().store_id().unwrap();
        let b = Writer::open(&db).unwrap().store_id().unwrap();
        assert_eq!(a, b);
        let other = Writer::open(&dir.path().join("t.db"))
            .unwrap()
            .store_id()
            .unwrap();
        assert_ne!(a, other);
    }
}
