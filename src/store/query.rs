//! Read queries shared by the CLI and the TUI. Results stream in time order `(ts, key)` and
//! page by keyset, so memory stays flat whatever the store size.

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};

use super::schema::{self, INDEXED_SEVERITY_MIN};
use crate::model::{canonical_type, pascal_type, Event, Severity, StoredEvent, Timestamp};

/// Every filter of `syncscope events`; all combine with AND, lists with OR inside.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub severities: Vec<Severity>,
    pub min_severity: Option<Severity>,
    pub event_types: Vec<String>,
    pub categories: Vec<String>,
    pub sources: Vec<String>,
    /// Exact ids, or prefixes of at least 4 characters (`6f1c` for `6f1c...`).
    pub devices: Vec<String>,
    pub peers: Vec<String>,
    pub correlation_ids: Vec<String>,
    pub subjects: Vec<String>,
    /// A text every shown column is searched for (case-insensitive for ASCII letters): the
    /// summary, source, device, type (as stored or in snake_case), category, correlation id,
    /// peer, model types and subject. Served by the text index (store/textindex.rs).
    pub grep: Option<String>,
    /// Only events stored after this store id (ids grow in the order events were received).
    pub after_id: Option<i64>,
    /// Only events stored up to this store id (a snapshot: what was there at a moment).
    pub upto_id: Option<i64>,
}

/// A position in the `(ts, key)` order, for keyset pagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub ts: i64,
    pub key: i64,
}

/// One reject as listed by `syncscope rejects`.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectRow {
    pub source: String,
    pub location: String,
    pub reason: String,
    pub excerpt: String,
    pub received: i64,
}

/// A source's last reported health.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStatusRow {
    pub source: String,
    pub state: String,
    pub message: String,
    pub since: i64,
    pub updated: i64,
}

/// What the store knows of one source: health, and what it delivered (within retention).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SourceOverview {
    pub source: String,
    /// ok / waiting / backoff / fault / done, or None if it never reported.
    pub state: Option<String>,
    pub message: String,
    /// Unix seconds: since when in this state.
    pub since: Option<i64>,
    /// Unix seconds of the last committed batch.
    pub last_batch: Option<i64>,
    pub inserted: i64,
    pub duplicates: i64,
    pub rejected: i64,
    /// The saved position (JSON), if any.
    pub checkpoint: Option<String>,
}

const SELECT_EVENT: &str = "SELECT e.id, e.ts, e.key, src.text, dev.text, typ.text, cat.text, e.severity, e.summary, e.details, cor.text, peer.text, mt.text, e.record_count, e.duration_ms, sub.text
FROM events e
LEFT JOIN strings src ON src.id = e.source
LEFT JOIN strings dev ON dev.id = e.device
LEFT JOIN strings typ ON typ.id = e.event_type
LEFT JOIN strings cat ON cat.id = e.category
LEFT JOIN strings cor ON cor.id = e.corr
LEFT JOIN strings peer ON peer.id = e.peer
LEFT JOIN strings mt ON mt.id = e.model_types
LEFT JOIN strings sub ON sub.id = e.subject";

/// The WHERE clause of a filter, with interned names already resolved to ids.
struct Compiled {
    conds: Vec<String>,
    params: Vec<Value>,
    /// A filter named something the store has never seen: nothing can match.
    impossible: bool,
    /// The text index narrowed the query to a few id ranges: read those, then sort.
    by_id_ranges: bool,
}

/// The interned columns a row shows, which a text search matches besides the summary.
const TEXT_COLUMNS: [&str; 8] = [
    "source",
    "device",
    "event_type",
    "category",
    "corr",
    "peer",
    "model_types",
    "subject",
];

impl Compiled {
    fn where_sql(&self, extra: Option<&str>) -> String {
        let mut all: Vec<&str> = self.conds.iter().map(String::as_str).collect();
        if let Some(x) = extra {
            all.push(x);
        }
        if all.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", all.join(" AND "))
        }
    }
}

/// The highest string id when looked up, the session start type ids, the end type ids.
pub(super) type SessionTypes = (i64, Vec<i64>, Vec<i64>);

pub struct Reader {
    conn: Connection,
    /// The session start and end type ids (`open_sessions`), with the highest string id when
    /// they were looked up: looked up again only when new strings came.
    pub(super) session_types: std::cell::RefCell<Option<SessionTypes>>,
}

impl Reader {
    pub fn new(conn: Connection) -> Self {
        Reader {
            conn,
            session_types: std::cell::RefCell::new(None),
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn compile(&self, f: &EventFilter) -> Result<Compiled> {
        let mut c = Compiled {
            conds: Vec::new(),
            params: Vec::new(),
            impossible: false,
            by_id_ranges: false,
        };
        if let Some(s) = f.since {
            c.conds.push("e.ts >= ?".into());
            c.params.push(Value::Integer(s.as_nanos()));
        }
        if let Some(u) = f.until {
            c.conds.push("e.ts <= ?".into());
            c.params.push(Value::Integer(u.as_nanos()));
        }
        if !f.severities.is_empty() {
            let list = f
                .severities
                .iter()
                .map(|s| s.rank().to_string())
                .collect::<Vec<_>>()
                .join(",");
            c.conds.push(format!("e.severity IN ({list})"));
        }
        if let Some(m) = f.min_severity {
            c.conds.push(format!("e.severity >= {}", m.rank()));
        }
        // The partial index `ev_severity` holds warnings and errors only; SQLite uses it when
        // the query says so in the index's own words.
        let lowest = f
            .severities
            .iter()
            .map(|s| s.rank())
            .min()
            .into_iter()
            .chain(f.min_severity.map(|m| m.rank()))
            .max();
        if lowest.is_some_and(|l| l >= INDEXED_SEVERITY_MIN) {
            c.conds
                .push(format!("e.severity >= {INDEXED_SEVERITY_MIN}"));
        }
        // Errors only: an equality lets SQLite walk the index in time order (newest errors
        // at once) instead of sorting every error of the store.
        let top = Severity::Error.rank();
        if lowest == Some(top) {
            c.conds.push(format!("e.severity = {top}"));
        }
        let types: Vec<String> = f
            .event_types
            .iter()
            .flat_map(|t| {
                // Unknown types are stored as they came: match either spelling of them.
                let canon = canonical_type(t).into_owned();
                [t.clone(), pascal_type(&canon), canon]
            })
            .collect();
        self.interned_filter(&mut c, "e.event_type", &types, false)?;
        self.interned_filter(&mut c, "e.category", &f.categories, false)?;
        self.interned_filter(&mut c, "e.source", &f.sources, false)?;
        self.interned_filter(&mut c, "e.device", &f.devices, true)?;
        self.interned_filter(&mut c, "e.peer", &f.peers, true)?;
        self.interned_filter(&mut c, "e.corr", &f.correlation_ids, true)?;
        self.interned_filter(&mut c, "e.subject", &f.subjects, false)?;
        if let Some(id) = f.after_id {
            c.conds.push(format!("e.id > {id}"));
        }
        if let Some(id) = f.upto_id {
            c.conds.push(format!("e.id <= {id}"));
        }
        if let Some(g) = f.grep.as_deref().filter(|g| !g.is_empty()) {
            self.text_filter(&mut c, g)?;
        }
        Ok(c)
    }

    /// The text search: the summary or any interned column a row shows contains `text`
    /// (ASCII case folded), narrowed to the id ranges the text index allows.
    fn text_filter(&self, c: &mut Compiled, text: &str) -> Result<()> {
        let m = super::textindex::find(&self.conn, text)?;
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        c.params.push(Value::Text(format!("%{escaped}%")));
        let mut any = vec!["e.summary LIKE ? ESCAPE '\\'".to_string()];
        if !m.string_ids.is_empty() {
            let list = m
                .string_ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            for col in TEXT_COLUMNS {
                any.push(format!("e.{col} IN ({list})"));
            }
        }
        c.conds.push(format!("({})", any.join(" OR ")));
        if let Some(ranges) = m.ranges {
            if ranges.is_empty() {
                c.impossible = true;
            } else {
                let r = ranges
                    .iter()
                    .map(|(lo, hi)| format!("e.id BETWEEN {lo} AND {hi}"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                c.conds.push(format!("({r})"));
                c.by_id_ranges = true;
            }
        }
        Ok(())
    }

    /// Resolves names to string ids (exactly, or by prefix of 4+ characters when allowed).
    fn interned_filter(
        &self,
        c: &mut Compiled,
        column: &str,
        names: &[String],
        prefix: bool,
    ) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<i64> = Vec::new();
        let mut exact = self
            .conn
            .prepare_cached("SELECT id FROM string_ids WHERE text = ?1")?;
        let mut by_prefix = self.conn.prepare_cached(
            "SELECT id FROM string_ids WHERE text >= ?1 AND text < ?1 || char(1114111) LIMIT 10000",
        )?;
        for n in names {
            if let Some(id) = exact.query_row([n], |r| r.get(0)).optional()? {
                ids.push(id);
            } else if prefix && n.chars().count() >= 4 {
                let found = by_prefix.query_map([n], |r| r.get::<_, i64>(0))?;
                for id in found {
                    ids.push(id?);
                }
            }
        }
        if ids.is_empty() {
            c.impossible = true;
            return Ok(());
        }
        ids.sort_unstable();
        ids.dedup();
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        c.conds.push(format!("{column} IN ({list})"));
        Ok(())
    }

    /// The event SELECT with the filter's WHERE clause, or None when nothing can match.
    pub(super) fn select_sql(&self, filter: &EventFilter) -> Result<(Option<String>, Vec<Value>)> {
        let c = self.compile(filter)?;
        if c.impossible {
            return Ok((None, Vec::new()));
        }
        Ok((
            Some(format!("{SELECT_EVENT}{}", c.where_sql(None))),
            c.params,
        ))
    }

    /// Streams the matching events to `f` in time order (newest first if `newest_first`).
    /// With a `limit`, only the newest `limit` matches are visited. Returns how many were.
    pub fn for_each_event(
        &self,
        filter: &EventFilter,
        limit: Option<u64>,
        newest_first: bool,
        mut f: impl FnMut(StoredEvent) -> Result<()>,
    ) -> Result<u64> {
        let c = self.compile(filter)?;
        if c.impossible || limit == Some(0) {
            return Ok(0);
        }
        let mut params = c.params.clone();
        let sql = if newest_first {
            let mut sql = format!(
                "{SELECT_EVENT}{} ORDER BY e.ts DESC, e.key DESC",
                c.where_sql(None)
            );
            if let Some(l) = limit {
                sql.push_str(&format!(" LIMIT {l}"));
            }
            sql
        } else {
            // Oldest first, but only the newest `limit`: find where that window starts, then
            // stream forward from it (flat memory, no reversal buffer).
            let start = match limit {
                Some(l) => self.nth_newest(&c, l)?,
                None => None,
            };
            let extra = start.map(|cur| {
                params.push(Value::Integer(cur.ts));
                params.push(Value::Integer(cur.key));
                "(e.ts, e.key) >= (?, ?)"
            });
            format!("{SELECT_EVENT}{} ORDER BY e.ts, e.key", c.where_sql(extra))
        };
        let mut st = self
            .conn
            .prepare(&sql)
            .wrap_err("cannot prepare the events query")?;
        let mut rows = st.query(params_from_iter(params.iter()))?;
        let mut n = 0u64;
        while let Some(row) = rows.next()? {
            f(stored_event(row)?)?;
            n += 1;
        }
        Ok(n)
    }

    /// The position of the `n`th newest match, or None when there are fewer than `n`.
    fn nth_newest(&self, c: &Compiled, n: u64) -> Result<Option<Cursor>> {
        let sql = format!(
            "SELECT e.ts, e.key FROM events e{} ORDER BY e.ts DESC, e.key DESC LIMIT 1 OFFSET {}",
            c.where_sql(None),
            n.saturating_sub(1)
        );
        Ok(self
            .conn
            .prepare(&sql)?
            .query_row(params_from_iter(c.params.iter()), |r| {
                Ok(Cursor {
                    ts: r.get(0)?,
                    key: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// One page of the timeline: up to `limit` events strictly older than `before` (or the
    /// newest when None), newest first. Keyset pagination on the indexed `(ts, key)`.
    pub fn page_before(
        &self,
        filter: &EventFilter,
        before: Option<Cursor>,
        limit: u64,
    ) -> Result<Vec<StoredEvent>> {
        let c = self.compile(filter)?;
        if c.impossible {
            return Ok(Vec::new());
        }
        let mut params = c.params.clone();
        let extra = before.map(|cur| {
            params.push(Value::Integer(cur.ts));
            params.push(Value::Integer(cur.key));
            "(e.ts, e.key) < (?, ?)"
        });
        let sql = format!(
            "{SELECT_EVENT}{} ORDER BY e.ts DESC, e.key DESC LIMIT {limit}",
            c.where_sql(extra)
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params_from_iter(params.iter()), |r| {
            stored_event(r).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Null, e.into())
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot read a page of events")
    }

    /// Events stored after `after_id` that match, in the order they were stored (for following
    /// the store live). Returns how many were visited and the position to continue from.
    pub fn for_each_new_event(
        &self,
        filter: &EventFilter,
        after_id: i64,
        limit: u64,
        mut f: impl FnMut(StoredEvent) -> Result<()>,
    ) -> Result<(u64, i64)> {
        let top = self.max_event_id()?;
        if top <= after_id {
            return Ok((0, after_id));
        }
        let filter = EventFilter {
            after_id: Some(after_id),
            upto_id: Some(top),
            ..filter.clone()
        };
        let c = self.compile(&filter)?;
        if c.impossible {
            return Ok((0, top));
        }
        let sql = format!(
            "{SELECT_EVENT}{} ORDER BY e.id LIMIT {limit}",
            c.where_sql(None)
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(c.params.iter()))?;
        let (mut n, mut last) = (0u64, after_id);
        while let Some(row) = rows.next()? {
            let e = stored_event(row)?;
            last = last.max(e.id);
            f(e)?;
            n += 1;
        }
        // A full page may have more behind it; otherwise everything up to `top` was seen.
        Ok((n, if n == limit { last } else { top }))
    }

    /// The highest store id so far (0 for an empty store).
    pub fn max_event_id(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?)
    }

    /// How many events match.
    pub fn count_events(&self, filter: &EventFilter) -> Result<u64> {
        let c = self.compile(filter)?;
        if c.impossible {
            return Ok(0);
        }
        let sql = format!("SELECT count(*) FROM events e{}", c.where_sql(None));
        let n: i64 = self
            .conn
            .query_row(&sql, params_from_iter(c.params.iter()), |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Events per severity (indexed by rank) at or after `since`: whole minutes from
    /// `event_counts`, the minute `since` falls in from the events themselves.
    pub fn counts_by_severity(&self, since: Timestamp) -> Result<[u64; 4]> {
        let since = since.as_nanos();
        let first_full = schema::count_bucket(since) + 1;
        let boundary = first_full.saturating_mul(schema::COUNT_BUCKET_NS);
        let mut out = [0u64; 4];
        let mut add = |sql: &str, a: i64, b: Option<i64>| -> Result<()> {
            let mut st = self.conn.prepare_cached(sql)?;
            let mut rows = match b {
                Some(b) => st.query(rusqlite::params![a, b])?,
                None => st.query([a])?,
            };
            while let Some(r) = rows.next()? {
                let (sev, n): (i64, i64) = (r.get(0)?, r.get(1)?);
                if let Some(slot) = usize::try_from(sev).ok().and_then(|i| out.get_mut(i)) {
                    *slot += n.max(0) as u64;
                }
            }
            Ok(())
        };
        add(
            "SELECT severity, sum(n) FROM event_counts WHERE minute >= ?1 GROUP BY severity",
            first_full,
            None,
        )?;
        add(
            "SELECT severity, count(*) FROM events WHERE ts >= ?1 AND ts < ?2 GROUP BY severity",
            since,
            Some(boundary),
        )?;
        Ok(out)
    }

    /// Every stored event (from `event_counts`, without reading the events).
    pub fn total_events(&self) -> Result<u64> {
        let n: i64 =
            self.conn
                .query_row("SELECT coalesce(sum(n), 0) FROM event_counts", [], |r| {
                    r.get(0)
                })?;
        Ok(n.max(0) as u64)
    }

    /// The checkpoints of every source whose key starts with `prefix`: `(key, state)`.
    pub fn checkpoints(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT source, state FROM checkpoints WHERE substr(source, 1, length(?1)) = ?1 ORDER BY source",
        )?;
        let rows = st.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot read source checkpoints")
    }

    /// Rejects, newest first, optionally for one source (exact or by substring).
    pub fn rejects(&self, source: Option<&str>, limit: u64) -> Result<Vec<RejectRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT source, location, reason, excerpt, received FROM rejects
             WHERE ?1 IS NULL OR instr(source, ?1) > 0 ORDER BY received DESC, id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(rusqlite::params![source, limit as i64], |r| {
            Ok(RejectRow {
                source: r.get(0)?,
                location: r.get(1)?,
                reason: r.get(2)?,
                excerpt: r.get(3)?,
                received: r.get(4)?,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot read rejects")
    }

    /// Every source the store has heard of, by name.
    pub fn source_overview(&self) -> Result<Vec<SourceOverview>> {
        let mut st = self.conn.prepare_cached(
            "WITH names AS (SELECT source FROM source_status UNION SELECT source FROM checkpoints
                            UNION SELECT source FROM batches),
                  b AS (SELECT source, max(received) AS last, sum(inserted) AS ins,
                               sum(duplicates) AS dup, sum(rejected) AS rej FROM batches GROUP BY source)
             SELECT n.source, s.state, coalesce(s.message, ''), s.since, b.last,
                    coalesce(b.ins, 0), coalesce(b.dup, 0), coalesce(b.rej, 0), c.state
             FROM names n
             LEFT JOIN source_status s ON s.source = n.source
             LEFT JOIN b ON b.source = n.source
             LEFT JOIN checkpoints c ON c.source = n.source
             ORDER BY n.source",
        )?;
        let rows = st.query_map([], |r| {
            Ok(SourceOverview {
                source: r.get(0)?,
                state: r.get(1)?,
                message: r.get(2)?,
                since: r.get(3)?,
                last_batch: r.get(4)?,
                inserted: r.get(5)?,
                duplicates: r.get(6)?,
                rejected: r.get(7)?,
                checkpoint: r.get(8)?,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot read the sources")
    }

    pub fn source_statuses(&self) -> Result<Vec<SourceStatusRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT source, state, message, since, updated FROM source_status ORDER BY source",
        )?;
        let rows = st.query_map([], |r| {
            Ok(SourceStatusRow {
                source: r.get(0)?,
                state: r.get(1)?,
                message: r.get(2)?,
                since: r.get(3)?,
                updated: r.get(4)?,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot read source status")
    }
}

pub(super) fn stored_event(r: &Row<'_>) -> Result<StoredEvent> {
    let sev: i64 = r.get(7)?;
    Ok(StoredEvent {
        id: r.get(0)?,
        key: r.get(2)?,
        event: Event {
            timestamp: Timestamp::from_nanos(r.get(1)?),
            source: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            device_id: r.get(4)?,
            event_type: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            category: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
            severity: Severity::from_rank(sev).unwrap_or(Severity::Error),
            summary: r.get(8)?,
            details: r.get(9)?,
            correlation_id: r.get(10)?,
            peer_device_id: r.get(11)?,
            model_types: r.get(12)?,
            record_count: r.get(13)?,
            duration_ms: r.get(14)?,
            subject: r.get(15)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Writer;

    fn ev(i: i64, sev: Severity, ty: &str, corr: Option<&str>, dev: &str) -> Event {
        Event {
            timestamp: Timestamp::from_nanos(1_000_000_000_000 + i * 1_000_000_000),
            source: if i % 2 == 0 { "spacedrive" } else { "jsonl" }.into(),
            device_id: Some(dev.into()),
            event_type: ty.into(),
            category: "lifecycle".into(),
            severity: sev,
            summary: format!("event {i} 100% done_ok"),
            details: None,
            correlation_id: corr.map(String::from),
            peer_device_id: Some("peer-9999".into()),
            model_types: None,
            record_count: None,
            duration_ms: None,
            subject: None,
        }
    }

    fn store() -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut w = Writer::open(&path).unwrap();
        let mut evs = Vec::new();
        for i in 0..40 {
            let sev = Severity::from_rank(i % 4).unwrap();
            let ty = if i % 5 == 0 {
                "sync_error"
            } else {
                "batch_ingestion"
            };
            let corr = if i < 10 { Some("0b8e1111-aaaa") } else { None };
            let dev = if i % 3 == 0 { "6f1c-dev" } else { "a93d-dev" };
            evs.push(ev(i, sev, ty, corr, dev));
        }
        w.commit_batch("t", &evs, &[], None).unwrap();
        let r = crate::store::open_reader(&path).unwrap();
        (dir, r)
    }

    fn ids(r: &Reader, f: &EventFilter, limit: Option<u64>, newest: bool) -> Vec<i64> {
        let mut v = Vec::new();
        r.for_each_event(f, limit, newest, |e| {
            v.push(e.event.timestamp.as_nanos() / 1_000_000_000 - 1000);
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn counts_by_severity_are_exact_from_any_instant() {
        let (_d, r) = store();
        // Events are 1 s apart from t0 = 1000 s; try every start, minute-aligned or not.
        for start in [0i64, 1, 17, 20, 39, 40] {
            let since = Timestamp::from_nanos((1000 + start) * 1_000_000_000);
            let got = r.counts_by_severity(since).unwrap();
            for s in Severity::ALL {
                let want = r
                    .count_events(&EventFilter {
                        since: Some(since),
                        severities: vec![s],
                        ..Default::default()
                    })
                    .unwrap();
                assert_eq!(got[s.rank() as usize], want, "{s:?} since +{start}s");
            }
        }
        assert_eq!(r.total_events().unwrap(), 40);
    }

    fn plan(r: &Reader, f: &EventFilter) -> String {
        let c = r.compile(f).unwrap();
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT e.id FROM events e{} ORDER BY e.ts DESC, e.key DESC LIMIT 100",
            c.where_sql(None)
        );
        let mut st = r.conn.prepare(&sql).unwrap();
        let rows = st
            .query_map(params_from_iter(c.params.iter()), |row| {
                row.get::<_, String>(3)
            })
            .unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
    }

    #[test]
    fn the_indexed_queries_use_their_index() {
        let (_d, r) = store();
        let errors = EventFilter {
            severities: vec![Severity::Error],
            ..Default::default()
        };
        assert!(
            plan(&r, &errors).contains("ev_severity"),
            "{}",
            plan(&r, &errors)
        );
        let corr = EventFilter {
            correlation_ids: vec!["0b8e1111-aaaa".into()],
            ..Default::default()
        };
        assert!(plan(&r, &corr).contains("ev_corr"), "{}", plan(&r, &corr));
        let page = EventFilter::default();
        assert!(plan(&r, &page).contains("ev_time"), "{}", plan(&r, &page));
        let source = EventFilter {
            sources: vec!["jsonl".into()],
            ..Default::default()
        };
        assert!(
            plan(&r, &source).contains("ev_source"),
            "{}",
            plan(&r, &source)
        );
    }

    #[test]
    fn an_unknown_type_is_found_by_either_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut w = Writer::open(&path).unwrap();
        let e = ev(1, Severity::Warning, "WatermarkReset", None, "dev-1");
        w.commit_batch("t", &[e], &[], None).unwrap();
        let r = crate::store::open_reader(&path).unwrap();
        for spelling in ["WatermarkReset", "watermark_reset"] {
            let f = EventFilter {
                event_types: vec![spelling.into()],
                ..Default::default()
            };
            assert_eq!(r.count_events(&f).unwrap(), 1, "{spelling}");
        }
    }

    #[test]
    fn filters_combine() {
        let (_d, r) = store();
        let all = EventFilter::default();
        assert_eq!(r.count_events(&all).unwrap(), 40);
        let f = EventFilter {
            severities: vec![Severity::Error],
            ..Default::default()
        };
        assert_eq!(r.count_events(&f).unwrap(), 10);
        let f = EventFilter {
            min_severity: Some(Severity::Warning),
            ..Default::default()
        };
        assert_eq!(r.count_events(&f).unwrap(), 20);
        let f = EventFilter {
            event_types: vec!["SyncError".into()],
            ..Default::default()
        };
        assert_eq!(r.count_events(&f).unwrap(), 8);
        let f = EventFilter {
            correlation_ids: vec!["0b8e".into()],
            ..Default::default()
        };
        assert_eq!(
            r.count_events(&f).unwrap(),
            10,
            "prefix of a correlation id"
        );
        let f = EventFilter {
            devices: vec!["6f1c-dev".into()],
            sources: vec!["spacedrive".into()],
            ..Default::default()
        };
        assert_eq!(r.count_events(&f).unwrap(), 7);
        let f = EventFilter {
            since: Some(Timestamp::from_nanos(
                1_000_000_000_000 + 30 * 1_000_000_000,
            )),
            until: Some(Timestamp::from_nanos(
                1_000_000_000_000 + 34 * 1_000_000_000,
            )),
            ..Default::default()
        };
        assert_eq!(ids(&r, &f, None, false), vec![30, 31, 32, 33, 34]);
        let f = EventFilter {
            grep: Some("100% DONE_ok".into()),
            ..Default::default()
        };
        assert_eq!(
            r.count_events(&f).unwrap(),
            40,
            "LIKE wildcards are escaped"
        );
        let f = EventFilter {
            grep: Some("100x done".into()),
            ..Default::default()
        };
        assert_eq!(r.count_events(&f).unwrap(), 0);
        let f = EventFilter {
            sources: vec!["nowhere".into()],
            ..Default::default()
        };
        assert_eq!(r.count_events(&f).unwrap(), 0);
        assert_eq!(ids(&r, &f, None, false), Vec::<i64>::new());
        let f = EventFilter {
            peers: vec!["peer".into()],
            ..Default::default()
        };
        assert_eq!(r.count_events(&f).unwrap(), 40);
    }

    #[test]
    fn text_search_covers_every_shown_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let mut w = Writer::open(&path).unwrap();
        // Enough events for several index blocks, one of them different from all others.
        let mut evs: Vec<Event> = (0..10_000)
            .map(|i| ev(i, Severity::Info, "batch_ingestion", None, "a93d-dev"))
            .collect();
        let mut odd = ev(
            10_001,
            Severity::Error,
            "RelayDead",
            Some("7ceff8ba-1234"),
            "6f1c-dev",
        );
        odd.summary = "wss://relay.dead.example lost: Connection refused".into();
        odd.subject = Some("wss://relay.dead.example".into());
        evs.push(odd);
        for chunk in evs.chunks(3000) {
            w.commit_batch("t", chunk, &[], None).unwrap();
        }
        let r = crate::store::open_reader(&path).unwrap();
        let grep = |t: &str| EventFilter {
            grep: Some(t.into()),
            ..Default::default()
        };
        for (text, want) in [
            ("connection REFUSED", 1),
            ("relay_dead", 1),
            ("RelayDead", 1),
            ("7ceff8ba", 1),
            ("6f1c-dev", 1),
            ("a93d", 10_000),
            ("spacedrive", 5_000),
            ("event 9999 ", 1),
            ("lifecycle", 10_001),
            ("nothing-like-this", 0),
            ("1234567", 0),
            ("event 100", 11),
            ("zq", 0),
            ("ev", 10_001),
        ] {
            assert_eq!(r.count_events(&grep(text)).unwrap(), want, "{text}");
            let page = r.page_before(&grep(text), None, 50).unwrap();
            assert_eq!(page.len() as u64, want.min(50), "{text}");
        }
        // A few matches are read from their blocks, not by scanning the store in time order.
        let c = r.compile(&grep("connection refused")).unwrap();
        assert!(c.by_id_ranges);
        assert!(r.compile(&grep("nothing-like-this")).unwrap().impossible);
        assert!(
            r.compile(&grep("1234567")).unwrap().impossible,
            "longer than any run of digits in a summary"
        );
        let p = plan(&r, &grep("connection refused"));
        assert!(p.contains("INTEGER PRIMARY KEY"), "{p}");
    }

    #[test]
    fn limit_takes_the_newest_in_time_order() {
        let (_d, r) = store();
        let f = EventFilter::default();
        assert_eq!(ids(&r, &f, Some(3), false), vec![37, 38, 39]);
        assert_eq!(ids(&r, &f, Some(3), true), vec![39, 38, 37]);
        assert_eq!(ids(&r, &f, Some(100), false).len(), 40);
        assert_eq!(ids(&r, &f, Some(0), false).len(), 0);
    }

    #[test]
    fn source_overview_joins_status_batches_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let mut w = Writer::open(&path).unwrap();
        let evs: Vec<Event> = (0..3)
            .map(|i| ev(i, Severity::Info, "peer_connected", None, "d"))
            .collect();
        w.commit_batch("jsonl:/a", &evs, &[], Some("{}")).unwrap();
        w.commit_batch("jsonl:/a", &evs, &[], None).unwrap();
        w.set_status("jsonl:/a", "ok", "").unwrap();
        w.set_status("spacedrive-db:/b", "fault", "gone").unwrap();
        let r = crate::store::open_reader(&path).unwrap();
        let o = r.source_overview().unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!((o[0].inserted, o[0].duplicates), (3, 3));
        assert_eq!(o[0].checkpoint.as_deref(), Some("{}"));
        assert_eq!(o[1].state.as_deref(), Some("fault"));
        assert_eq!(o[1].message, "gone");
        assert_eq!(o[1].last_batch, None);
    }

    #[test]
    fn following_new_events_by_store_id() {
        let (_d, r) = store();
        assert_eq!(r.max_event_id().unwrap(), 40);
        let mut seen = Vec::new();
        let (n, pos) = r
            .for_each_new_event(&EventFilter::default(), 35, 1000, |e| {
                seen.push(e.id);
                Ok(())
            })
            .unwrap();
        assert_eq!((n, pos), (5, 40));
        assert_eq!(seen, vec![36, 37, 38, 39, 40]);
        let (n, pos) = r
            .for_each_new_event(&EventFilter::default(), 30, 2, |_| Ok(()))
            .unwrap();
        assert_eq!(
            (n, pos),
            (2, 32),
            "a full page continues after its last row"
        );
        let errors = EventFilter {
            severities: vec![Severity::Error],
            ..Default::default()
        };
        let (n, pos) = r.for_each_new_event(&errors, 30, 1000, |_| Ok(())).unwrap();
        assert_eq!((n, pos), (3, 40), "ids 32, 36 and 40 are errors");
        let (n, pos) = r.for_each_new_event(&errors, 40, 1000, |_| Ok(())).unwrap();
        assert_eq!((n, pos), (0, 40));
    }

    #[test]
    fn keyset_pages_cover_everything_once() {
        let (_d, r) = store();
        let f = EventFilter::default();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = r.page_before(&f, cursor, 7).unwrap();
            if page.is_empty() {
                break;
            }
            let last = &page[page.len() - 1];
            cursor = Some(Cursor {
                ts: last.event.timestamp.as_nanos(),
                key: last.key,
            });
            seen.extend(page.iter().map(|e| e.id));
        }
        assert_eq!(seen.len(), 40);
        let mut s = seen.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 40);
        let counts = r.counts_by_severity(Timestamp::from_nanos(0)).unwrap();
        assert_eq!(counts, [10, 10, 10, 10]);
    }
}
