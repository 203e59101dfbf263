//! The simulated Spacedrive device: its `sync.db`, created with the real `sync_event_log`
//! schema and written through a connection of its own (as Spacedrive writes it while
//! syncscope reads it read-only). The story: a catch-up with the phone, a backfill from the
//! desktop whose buffer overflows at the hand-over to catch-up, the NAS dropping off and coming
//! back with a watermark too old, its backfill failing. Filler: peers backfilling from this
//! device (request/response pairs) and catch-up sessions with batches. See [`super::story`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::Connection;

use super::story::{self, CYCLE};
use super::{filler_interval, Agenda, Rng, Vt, SEC};

/// The table as Spacedrive creates it (spacedrive.md §1).
/// The real `sync_event_log` schema (the one `events --format sql` writes).
pub const SCHEMA: &str = crate::export::SQL_SCHEMA;

/// Rows kept before the oldest are pruned (Spacedrive prunes by age; a fast demo by count).
const KEEP_ROWS: i64 = 300_000;

/// One `sync_event_log` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub vt: Vt,
    pub event_type: &'static str,
    pub category: &'static str,
    pub severity: &'static str,
    pub summary: String,
    pub details: Option<String>,
    pub correlation_id: Option<String>,
    pub peer: Option<String>,
    pub model_types: Option<&'static str>,
    pub record_count: Option<i64>,
    pub duration_ms: Option<i64>,
}

impl Row {
    fn new(
        vt: Vt,
        event_type: &'static str,
        category: &'static str,
        severity: &'static str,
        summary: String,
    ) -> Row {
        Row {
            vt,
            event_type,
            category,
            severity,
            summary,
            details: None,
            correlation_id: None,
            peer: None,
            model_types: None,
            record_count: None,
            duration_ms: None,
        }
    }
}

const PEERS: [&str; 4] = ["desktop", "nas", "phone", "tablet"];
const DESKTOP: usize = 0;
const NAS: usize = 1;
const PHONE: usize = 2;
const MODELS: [&str; 4] = [
    "entry,tag,location",
    "entry,object",
    "tag,label",
    "location",
];

#[derive(Debug, Clone, Copy)]
enum Beat {
    PhoneCatchUp,
    PhoneBatch,
    PhoneDone,
    BackfillStart,
    BackfillBatch(u32),
    Overflow,
    Stuck,
    BackfillDone,
    BackfillReady,
    NasDrops,
    NasBack,
    NasBatch(u32),
    NasFails,
    Resume,
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Cycle,
    Filler,
    Beat(Beat),
}

/// A background session the filler steps through one row at a time.
#[derive(Debug, Clone)]
struct Filler {
    serve: bool,
    peer: usize,
    corr: String,
    step: u32,
    steps: u32,
}

/// What the story's sessions carry from one beat to the next.
#[derive(Debug, Default)]
struct Sessions {
    phone: String,
    backfill: String,
    backfill_records: i64,
    backfill_started: Vt,
    nas: String,
}

pub struct SpacedriveSim {
    rng: Rng,
    base: i64,
    pub device: String,
    peers: Vec<String>,
    agenda: Agenda<Act>,
    filler_every: Vt,
    fillers: Vec<Filler>,
    s: Sessions,
    /// Rows not yet written.
    pub rows: Vec<Row>,
    db: Option<(PathBuf, Connection)>,
    last_prune: Vt,
}

fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

/// `1247` as `1,247`, as Spacedrive's summaries print counts.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

impl SpacedriveSim {
    /// A simulator keeping its rows in memory (for tests). `base`: the time of virtual 0 (ns
    /// since the epoch); background traffic starts at `filler_from`.
    pub fn new(mut rng: Rng, rate: u32, base: i64, filler_from: Vt) -> SpacedriveSim {
        let device = rng.uuid();
        let peers: Vec<String> = PEERS.iter().map(|_| rng.uuid()).collect();
        let mut agenda = Agenda::default();
        agenda.at(0, Act::Cycle);
        agenda.at(filler_from, Act::Filler);
        SpacedriveSim {
            rng,
            base,
            device,
            peers,
            agenda,
            filler_every: filler_interval(rate, 45, 1.0),
            fillers: Vec::new(),
            s: Sessions::default(),
            rows: Vec::new(),
            db: None,
            last_prune: 0,
        }
    }

    /// A simulator writing a new `sync.db` at `path` (an old one there is replaced).
    pub fn create(
        rng: Rng,
        rate: u32,
        base: i64,
        filler_from: Vt,
        path: &Path,
    ) -> Result<SpacedriveSim> {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        let conn =
            Connection::open(path).wrap_err_with(|| format!("cannot create {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))
            .and_then(|_| conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"))
            .and_then(|_| conn.execute_batch(SCHEMA))
            .wrap_err_with(|| format!("cannot set up {}", path.display()))?;
        let mut sim = SpacedriveSim::new(rng, rate, base, filler_from);
        sim.db = Some((path.to_path_buf(), conn));
        Ok(sim)
    }

    /// Runs every action due by `until` and inserts the rows; the number of rows.
    pub fn advance(&mut self, until: Vt) -> Result<u64> {
        self.generate(until);
        let n = self.rows.len() as u64;
        self.write(until)?;
        Ok(n)
    }

    pub fn generate(&mut self, until: Vt) {
        while let Some((at, act)) = self.agenda.pop_due(until) {
            self.act(at, act);
        }
    }

    pub fn finish(&mut self) -> Result<()> {
        self.write(0)
    }

    fn write(&mut self, vt: Vt) -> Result<()> {
        let Some((path, conn)) = self.db.as_mut() else {
            self.rows.clear();
            return Ok(());
        };
        let shown = path.display().to_string();
        if !self.rows.is_empty() {
            let tx = conn
                .transaction()
                .wrap_err_with(|| format!("cannot write {shown}"))?;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO sync_event_log (timestamp, device_id, event_type, category,
                           severity, summary, details, correlation_id, peer_device_id, model_types,
                           record_count, duration_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )
                    .wrap_err_with(|| format!("cannot write {shown}"))?;
                for r in &self.rows {
                    let ts = chrono::DateTime::from_timestamp_nanos(self.base + r.vt as i64)
                        .to_rfc3339();
                    st.execute(rusqlite::params![
                        ts,
                        self.device,
                        r.event_type,
                        r.category,
                        r.severity,
                        r.summary,
                        r.details,
                        r.correlation_id,
                        r.peer,
                        r.model_types,
                        r.record_count,
                        r.duration_ms
                    ])
                    .wrap_err_with(|| format!("cannot insert into {shown}"))?;
                }
            }
            tx.commit()
                .wrap_err_with(|| format!("cannot commit to {shown}"))?;
            self.rows.clear();
        }
        if vt >= self.last_prune + 60 * SEC {
            self.last_prune = vt;
            conn.execute(
                "DELETE FROM sync_event_log WHERE id <= (SELECT max(id) FROM sync_event_log) - ?1",
                [KEEP_ROWS],
            )
            .wrap_err_with(|| format!("cannot prune {shown}"))?;
        }
        Ok(())
    }

    fn peer(&self, i: usize) -> String {
        self.peers[i % self.peers.len()].clone()
    }

    fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    fn transition(&mut self, at: Vt, from: &str, to: &str, reason: &str) {
        let mut r = Row::new(
            at,
            "state_transition",
            "lifecycle",
            "info",
            format!("{from} → {to}"),
        );
        r.details = Some(serde_json::json!({"from": from, "to": to, "reason": reason}).to_string());
        self.push(r);
    }

    fn peer_event(&mut self, at: Vt, p: usize, connected: bool) {
        let id = self.peer(p);
        let (t, verb) = if connected {
            ("peer_connected", "connected")
        } else {
            ("peer_disconnected", "disconnected")
        };
        let mut r = Row::new(
            at,
            t,
            "network",
            "info",
            format!("Peer {} ({}) {verb}", short(&id), PEERS[p]),
        );
        r.peer = Some(id);
        self.push(r);
    }

    fn batch(&mut self, at: Vt, corr: &str, p: usize, records: i64, ms: i64, models: &'static str) {
        let mut r = Row::new(
            at,
            "batch_ingestion",
            "data_flow",
            "debug",
            format!(
                "Ingested batch of {} records ({models}) in {:.1}s",
                thousands(records),
                ms as f64 / 1000.0
            ),
        );
        r.correlation_id = Some(corr.to_string());
        r.peer = Some(self.peer(p));
        r.model_types = Some(models);
        r.record_count = Some(records);
        r.duration_ms = Some(ms);
        self.push(r);
    }

    fn act(&mut self, at: Vt, act: Act) {
        match act {
            Act::Cycle => self.cycle(at),
            Act::Filler => {
                self.filler(at);
                self.agenda.at(at + self.filler_every, Act::Filler);
            }
            Act::Beat(b) => self.beat(at, b),
        }
    }

    fn cycle(&mut self, at: Vt) {
        use Beat::*;
        let s = |x: u64| at + x * SEC;
        let mut beats = vec![
            (s(0), PhoneCatchUp),
            (s(1) + SEC / 2, PhoneBatch),
            (s(3), PhoneBatch),
            (s(4), PhoneDone),
            (story::BACKFILL_AT + at, BackfillStart),
        ];
        for i in 0..9u32 {
            beats.push((
                at + story::BACKFILL_AT + u64::from(i + 1) * 3 * SEC,
                BackfillBatch(i),
            ));
        }
        beats.extend([
            (at + story::OVERFLOW_AT, Overflow),
            (s(60), Stuck),
            (s(62), BackfillDone),
            (s(64), BackfillReady),
            (at + story::NAS_DROPS_AT, NasDrops),
            (at + story::NAS_BACK_AT, NasBack),
        ]);
        for i in 0..4u32 {
            beats.push((
                at + story::NAS_BACK_AT + u64::from(i + 1) * 3 * SEC,
                NasBatch(i),
            ));
        }
        beats.extend([
            (at + story::NAS_BACKFILL_FAILS_AT, NasFails),
            (s(135), Resume),
        ]);
        for (t, b) in beats {
            self.agenda.at(t, Act::Beat(b));
        }
        self.agenda.at(at + CYCLE, Act::Cycle);
    }

    fn beat(&mut self, at: Vt, b: Beat) {
        match b {
            Beat::PhoneCatchUp => {
                self.s.phone = self.rng.uuid();
                self.peer_event(at, PHONE, true);
                self.transition(at, "Ready", "CatchingUp", "peer has newer changes");
                let mut r = Row::new(
                    at,
                    "catch_up_session_started",
                    "lifecycle",
                    "debug",
                    format!(
                        "Catch-up session started with peer {}",
                        short(&self.peer(PHONE))
                    ),
                );
                r.correlation_id = Some(self.s.phone.clone());
                r.peer = Some(self.peer(PHONE));
                self.push(r);
            }
            Beat::PhoneBatch => {
                let n = self.rng.range(200, 2500) as i64;
                let ms = self.rng.range(150, 900) as i64;
                let corr = self.s.phone.clone();
                self.batch(at, &corr, PHONE, n, ms, "entry,tag,location");
            }
            Beat::PhoneDone => {
                let mut r = Row::new(
                    at,
                    "catch_up_session_completed",
                    "lifecycle",
                    "debug",
                    format!(
                        "Catch-up session with peer {} completed",
                        short(&self.peer(PHONE))
                    ),
                );
                r.correlation_id = Some(self.s.phone.clone());
                r.peer = Some(self.peer(PHONE));
                r.duration_ms = Some(4000);
                self.push(r);
                self.transition(at, "CatchingUp", "Ready", "caught up");
            }
            Beat::BackfillStart => {
                self.s.backfill = self.rng.uuid();
                self.s.backfill_records = 0;
                self.s.backfill_started = at;
                let reason = if at < CYCLE {
                    "new device joined"
                } else {
                    "library re-paired"
                };
                self.transition(at, "Ready", "Backfilling", reason);
                let candidates: Vec<serde_json::Value> = [DESKTOP, NAS, PHONE]
                    .iter()
                    .map(|&p| {
                        let latency = [12, 48, 95][p];
                        let active = [0, 2, 1][p];
                        serde_json::json!({
                            "device_id": self.peer(p),
                            "is_online": true,
                            "has_complete_state": p != PHONE,
                            "latency_ms": latency,
                            "active_syncs": active,
                        })
                    })
                    .collect();
                let mut r = Row::new(
                    at,
                    "backfill_session_started",
                    "lifecycle",
                    "info",
                    format!(
                        "Backfill session started with peer {}",
                        short(&self.peer(DESKTOP))
                    ),
                );
                r.details = Some(serde_json::json!({ "candidates": candidates }).to_string());
                r.correlation_id = Some(self.s.backfill.clone());
                r.peer = Some(self.peer(DESKTOP));
                self.push(r);
                let mut q = Row::new(
                    at + SEC / 10,
                    "backfill_request_sent",
                    "network",
                    "debug",
                    format!(
                        "Backfill request sent to peer {}",
                        short(&self.peer(DESKTOP))
                    ),
                );
                q.correlation_id = Some(self.s.backfill.clone());
                q.peer = Some(self.peer(DESKTOP));
                self.push(q);
            }
            Beat::BackfillBatch(i) => {
                // Slower and slower: a foreign-key dependency bottleneck.
                let n = self.rng.range(8000, 10_000) as i64;
                let ms = 2500 + i64::from(i) * 800 + self.rng.below(400) as i64;
                self.s.backfill_records += n;
                let corr = self.s.backfill.clone();
                let models = MODELS[i as usize % MODELS.len()];
                self.batch(at, &corr, DESKTOP, n, ms, models);
            }
            Beat::Overflow => {
                let dropped = self.rng.range(900, 2500) as i64;
                let mut r = Row::new(
                    at,
                    "sync_error",
                    "error",
                    "error",
                    format!(
                        "Buffer overflow: {} updates dropped during backfill",
                        thousands(dropped)
                    ),
                );
                r.details = Some(
                    serde_json::json!({
                        "dropped_count": dropped,
                        "max_buffer_size": 100_000,
                        "phase": "backfill_to_catchup_transition"
                    })
                    .to_string(),
                );
                r.correlation_id = Some(self.s.backfill.clone());
                r.peer = Some(self.peer(DESKTOP));
                self.push(r);
                self.transition(at, "Backfilling", "CatchingUp", "backfill complete");
            }
            Beat::Stuck => {
                let waiting = self.rng.range(5, 40) as i64;
                let deps = self.rng.range(1, 5) as i64;
                let mut r = Row::new(
                    at,
                    "sync_error",
                    "error",
                    "warning",
                    format!(
                        "Stuck dependencies: {waiting} records waiting for {deps} missing parents"
                    ),
                );
                r.details = Some(
                    serde_json::json!({
                        "total_dependencies": deps,
                        "total_waiting_updates": waiting,
                        "phase": "backfill_to_ready_transition"
                    })
                    .to_string(),
                );
                r.correlation_id = Some(self.s.backfill.clone());
                self.push(r);
            }
            Beat::BackfillDone => {
                let ms = ((at - self.s.backfill_started) / 1_000_000) as i64;
                let mut r = Row::new(
                    at,
                    "backfill_session_completed",
                    "lifecycle",
                    "info",
                    format!(
                        "Backfill session completed: {} records in {}s",
                        thousands(self.s.backfill_records),
                        ms / 1000
                    ),
                );
                r.correlation_id = Some(self.s.backfill.clone());
                r.peer = Some(self.peer(DESKTOP));
                r.record_count = Some(self.s.backfill_records);
                r.duration_ms = Some(ms);
                self.push(r);
            }
            Beat::BackfillReady => self.transition(at, "CatchingUp", "Ready", "caught up"),
            Beat::NasDrops => self.peer_event(at, NAS, false),
            Beat::NasBack => {
                self.peer_event(at, NAS, true);
                let mut w = Row::new(
                    at,
                    "sync_error",
                    "error",
                    "warning",
                    "Watermark too old: 35 days (threshold: 25 days), forcing full sync".into(),
                );
                w.details = Some(
                    serde_json::json!({
                        "watermark_age_days": 35,
                        "threshold_days": 25,
                        "action": "force_full_sync"
                    })
                    .to_string(),
                );
                w.peer = Some(self.peer(NAS));
                self.push(w);
                self.transition(at, "Ready", "Backfilling", "watermark too old");
                self.s.nas = self.rng.uuid();
                let mut r = Row::new(
                    at,
                    "backfill_session_started",
                    "lifecycle",
                    "info",
                    format!(
                        "Backfill session started with peer {}",
                        short(&self.peer(NAS))
                    ),
                );
                r.correlation_id = Some(self.s.nas.clone());
                r.peer = Some(self.peer(NAS));
                self.push(r);
            }
            Beat::NasBatch(i) => {
                let n = self.rng.range(3000, 6000) as i64;
                let ms = 1800 + i64::from(i) * 300;
                let corr = self.s.nas.clone();
                self.batch(at, &corr, NAS, n, ms, "entry,object");
            }
            Beat::NasFails => {
                let mut r = Row::new(
                    at,
                    "backfill_session_failed",
                    "lifecycle",
                    "error",
                    format!(
                        "Backfill session failed: peer {} disconnected after 4 batches",
                        short(&self.peer(NAS))
                    ),
                );
                r.details = Some(
                    serde_json::json!({"reason": "peer disconnected", "batches": 4}).to_string(),
                );
                r.correlation_id = Some(self.s.nas.clone());
                r.peer = Some(self.peer(NAS));
                self.push(r);
                self.peer_event(at, NAS, false);
                self.transition(at, "Backfilling", "Paused", "backfill peer lost");
            }
            Beat::Resume => self.transition(at, "Paused", "Ready", "resuming with catch-up"),
        }
    }

    /// One row of background traffic.
    fn filler(&mut self, at: Vt) {
        while self.fillers.len() < 3 {
            let serve = self.rng.percent(50);
            let f = Filler {
                serve,
                // Peers backfilling from us; catch-ups with the desktop, phone or tablet.
                peer: self.rng.below(PEERS.len() as u64) as usize,
                corr: self.rng.uuid(),
                step: 0,
                steps: if serve {
                    2 * self.rng.range(2, 8) as u32
                } else {
                    self.rng.range(3, 10) as u32
                },
            };
            self.fillers.push(f);
        }
        let i = self.rng.below(self.fillers.len() as u64) as usize;
        let f = self.fillers[i].clone();
        let peer = self.peer(f.peer);
        let models = MODELS[self.rng.below(MODELS.len() as u64) as usize];
        let mut r = if f.serve {
            if f.step.is_multiple_of(2) {
                Row::new(
                    at,
                    "backfill_request_received",
                    "network",
                    "debug",
                    format!(
                        "Backfill request received from peer {} ({models})",
                        short(&peer)
                    ),
                )
            } else {
                let n = self.rng.range(100, 10_000) as i64;
                let ms = self.rng.range(5, 400) as i64;
                let mut r = Row::new(
                    at,
                    "backfill_response_sent",
                    "network",
                    "debug",
                    format!(
                        "Backfill response sent to peer {}: {} records in {ms}ms",
                        short(&peer),
                        thousands(n)
                    ),
                );
                r.record_count = Some(n);
                r.duration_ms = Some(ms);
                r
            }
        } else if f.step == 0 {
            Row::new(
                at,
                "catch_up_session_started",
                "lifecycle",
                "debug",
                format!("Catch-up session started with peer {}", short(&peer)),
            )
        } else if f.step + 1 == f.steps {
            Row::new(
                at,
                "catch_up_session_completed",
                "lifecycle",
                "debug",
                format!("Catch-up session with peer {} completed", short(&peer)),
            )
        } else {
            let n = self.rng.range(10, 3000) as i64;
            let ms = self.rng.range(20, 1500) as i64;
            let mut r = Row::new(
                at,
                "batch_ingestion",
                "data_flow",
                "debug",
                format!(
                    "Ingested batch of {} records ({models}) in {:.1}s",
                    thousands(n),
                    ms as f64 / 1000.0
                ),
            );
            r.model_types = Some(models);
            r.record_count = Some(n);
            r.duration_ms = Some(ms);
            r
        };
        r.correlation_id = Some(f.corr.clone());
        r.peer = Some(peer);
        self.push(r);
        let f = &mut self.fillers[i];
        f.step += 1;
        if f.step >= f.steps {
            self.fillers.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{build_event, EventFields, Severity};
    use std::borrow::Cow;

    const BASE: i64 = 1_767_225_600_000_000_000;

    fn fields<'a>(r: &'a Row, ts: &'a str, device: &'a str) -> EventFields<'a> {
        EventFields {
            timestamp: Some(Cow::Borrowed(ts)),
            device_id: Some(Cow::Borrowed(device)),
            event_type: Some(Cow::Borrowed(r.event_type)),
            category: Some(Cow::Borrowed(r.category)),
            severity: Some(Cow::Borrowed(r.severity)),
            summary: Some(Cow::Borrowed(&r.summary)),
            details: r.details.as_deref().map(Cow::Borrowed),
            details_is_json: false,
            correlation_id: r.correlation_id.as_deref().map(Cow::Borrowed),
            peer_device_id: r.peer.as_deref().map(Cow::Borrowed),
            model_types: r.model_types.map(Cow::Borrowed),
            record_count: r.record_count,
            duration_ms: r.duration_ms,
            source: None,
            subject: None,
        }
    }

    #[test]
    fn every_row_is_an_event_and_the_backfill_overflows() {
        let mut sim = SpacedriveSim::new(Rng::new(4), 200, BASE, 0);
        sim.generate(CYCLE);
        let mut events = Vec::new();
        for r in &sim.rows {
            let ts = chrono::DateTime::from_timestamp_nanos(BASE + r.vt as i64).to_rfc3339();
            let e = build_event(fields(r, &ts, &sim.device), "spacedrive")
                .unwrap_or_else(|e| panic!("{r:?}: {}", e.0));
            events.push(e);
        }
        let overflow = events
            .iter()
            .find(|e| e.summary.starts_with("Buffer overflow"))
            .expect("an overflow");
        assert_eq!(overflow.severity, Severity::Error);
        let corr = overflow.correlation_id.clone().unwrap();
        let session: Vec<&str> = events
            .iter()
            .filter(|e| e.correlation_id.as_deref() == Some(corr.as_str()))
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(session.first(), Some(&"backfill_session_started"));
        assert_eq!(session.last(), Some(&"backfill_session_completed"));
        assert!(session.iter().filter(|t| **t == "batch_ingestion").count() >= 5);
        assert!(events
            .iter()
            .any(|e| e.event_type == "backfill_session_failed"));
        assert!(events.iter().any(|e| e.event_type == "state_transition"));
        assert!(events
            .iter()
            .any(|e| e.event_type == "backfill_response_sent"));
        // About 45% of 200 events/s, plus the story.
        assert!((10_000..16_000).contains(&events.len()), "{}", events.len());
    }

    #[test]
    fn writes_the_real_schema_and_the_reader_sees_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let mut sim = SpacedriveSim::create(Rng::new(5), 500, BASE, 0, &path).unwrap();
        let n = sim.advance(20 * SEC).unwrap() + sim.advance(40 * SEC).unwrap();
        sim.finish().unwrap();
        let store = dir.path().join("store.db");
        let opts = crate::ingest::IngestOptions {
            once: true,
            log_status: false,
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let report = rt
            .block_on(crate::ingest::run(
                store,
                crate::sources::plan(
                    &[crate::sources::SourceSpec::new(
                        &crate::sources::spacedrive::spec::DB,
                        crate::sources::spacedrive::spec::DbSpec(path.clone()),
                    )],
                    &opts,
                )
                .unwrap(),
                opts,
                tokio_util::sync::CancellationToken::new(),
            ))
            .unwrap();
        let out = report.values().next().unwrap();
        assert_eq!((out.inserted as u64, out.rejected), (n, 0));
        // The table is the one Spacedrive creates.
        let c = Connection::open(&path).unwrap();
        let sql: String = c
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'sync_event_log'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("id INTEGER PRIMARY KEY AUTOINCREMENT"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1247), "1,247");
        assert_eq!(thousands(82_345), "82,345");
        assert_eq!(thousands(12), "12");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
