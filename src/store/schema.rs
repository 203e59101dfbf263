//! The schema, versioned with `PRAGMA user_version` and applied by forward migrations.
//!
//! Layout choices (measured with `cargo bench --bench ingest`, see README):
//! - repeated strings (sources, devices, types, categories, correlation ids, peers, model type
//!   lists, subjects) are interned in `strings` and events hold integer ids;
//! - timestamps are integer nanoseconds;
//! - the dedup key is a 64-bit content hash made unique *together with the timestamp*
//!   (`ev_time`), so the one index serves both dedup and time order, and inserts arrive near its
//!   right edge instead of at random places;
//! - every secondary index ends in `(ts, key)` so each filtered query reads in time order and
//!   pages by keyset on `(ts, key)`;
//! - event ids are assigned by the writer, growing in receive order and never reused (no
//!   AUTOINCREMENT, whose per-row bookkeeping cost 8% of ingest; `meta.event_id_hwm` instead);
//! - 16 KiB pages (5% fewer instructions per insert than 4 KiB, measured);
//! - per-minute counts by source and severity (`event_counts`) instead of a full severity
//!   index: only warnings and errors are indexed by severity; no index on the event type, whose
//!   filter scans the time index (v2).

use color_eyre::eyre::{bail, Result, WrapErr};
use rusqlite::Connection;

/// Each entry moves the schema from version `i` to `i + 1`. Never edit a released entry: add one.
pub const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the foundation.
    r#"
    CREATE TABLE strings (
        id   INTEGER PRIMARY KEY,
        text TEXT NOT NULL UNIQUE
    );
    CREATE TABLE events (
        id           INTEGER PRIMARY KEY,
        ts           INTEGER NOT NULL,
        key          INTEGER NOT NULL,
        source       INTEGER NOT NULL,
        device       INTEGER,
        event_type   INTEGER NOT NULL,
        category     INTEGER NOT NULL,
        severity     INTEGER NOT NULL,
        summary      TEXT NOT NULL,
        details      TEXT,
        corr         INTEGER,
        peer         INTEGER,
        model_types  INTEGER,
        record_count INTEGER,
        duration_ms  INTEGER,
        subject      INTEGER
    );
    CREATE UNIQUE INDEX ev_time ON events(ts, key);
    CREATE INDEX ev_severity ON events(severity, ts, key);
    CREATE INDEX ev_type ON events(event_type, ts, key);
    CREATE INDEX ev_source ON events(source, ts, key);
    CREATE INDEX ev_corr ON events(corr, ts, key) WHERE corr IS NOT NULL;

    -- One row per committed batch: when it was received and the highest event id it wrote.
    -- Retention prunes by receive time through it (event ids grow in receive order).
    CREATE TABLE batches (
        id          INTEGER PRIMARY KEY,
        received    INTEGER NOT NULL,
        source      TEXT NOT NULL,
        max_event   INTEGER NOT NULL,
        inserted    INTEGER NOT NULL,
        duplicates  INTEGER NOT NULL,
        rejected    INTEGER NOT NULL
    );
    CREATE INDEX batches_received ON batches(received);

    -- Where each source stopped, committed with the events it produced.
    CREATE TABLE checkpoints (
        source   TEXT PRIMARY KEY,
        state    TEXT NOT NULL,
        updated  INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- Small facts about the store, e.g. the highest event id ever used ('event_id_hwm'), so
    -- ids never go back even after retention empties the table.
    CREATE TABLE meta (
        key    TEXT PRIMARY KEY,
        value  INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- What could not be read, and why.
    CREATE TABLE rejects (
        id        INTEGER PRIMARY KEY,
        source    TEXT NOT NULL,
        location  TEXT NOT NULL,
        reason    TEXT NOT NULL,
        excerpt   TEXT NOT NULL,
        received  INTEGER NOT NULL,
        UNIQUE (source, location)
    );

    -- The health of each source as its ingest loop last reported it (ok / backoff / fault).
    CREATE TABLE source_status (
        source   TEXT PRIMARY KEY,
        state    TEXT NOT NULL,
        message  TEXT NOT NULL,
        since    INTEGER NOT NULL,
        updated  INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 1 -> 2: events per minute, source and severity, kept by the writer in the transaction that
    // stores them (overview rates and per-severity counts without reading events); the severity
    // index keeps only warnings and errors: debug and info are the flood, dense in time order
    // and cheaper to find by scanning it than to index; no type index: it served only the CLI's
    // `--event-type` and cost a tenth of ingest throughput (measured, see README).
    r#"
    CREATE TABLE event_counts (
        minute    INTEGER NOT NULL,
        source    INTEGER NOT NULL,
        severity  INTEGER NOT NULL,
        n         INTEGER NOT NULL,
        PRIMARY KEY (minute, source, severity)
    ) WITHOUT ROWID;
    INSERT INTO event_counts (minute, source, severity, n)
        SELECT (ts - ((ts % 60000000000) + 60000000000) % 60000000000) / 60000000000,
               source, severity, count(*)
        FROM events GROUP BY 1, 2, 3;
    DROP INDEX ev_severity;
    CREATE INDEX ev_severity ON events(severity, ts, key) WHERE severity >= 2;
    DROP INDEX ev_type;
    "#,
    // 2 -> 3: Gerrit replication state per (project, remote, ref), as the replication-status
    // plugin keeps it plus what it cannot tell; changed in the transaction of its events.
    r#"
    -- ref, remote and project are interned (strings.id); the ref leads the key, so the rows of
    -- new refs (new, higher ids) go in at the right edge.
    CREATE TABLE ref_state (
        ref              INTEGER NOT NULL,
        remote           INTEGER NOT NULL,
        project          INTEGER NOT NULL,
        direction        TEXT NOT NULL,
        status           TEXT NOT NULL,
        when_s           INTEGER NOT NULL,
        retrying         INTEGER NOT NULL,
        attempts         INTEGER NOT NULL,
        last_success     INTEGER,
        last_failure     INTEGER,
        last_error       TEXT,
        scheduled_since  INTEGER,
        event_id         INTEGER,
        PRIMARY KEY (ref, remote, project)
    ) WITHOUT ROWID;
    CREATE INDEX ref_state_remote ON ref_state(remote, project);
    CREATE INDEX ref_state_project ON ref_state(project);
    "#,
    // 3 -> 4: no secondary index on ref_state. The status query reads every row (its filters
    // are optional, so SQLite scans either way: measured with EXPLAIN QUERY PLAN), while each
    // new ref inserted into both indexes at one place per (remote, project): in a bulk ingest
    // nearly every page of both was rewritten by each transaction (stream-events ingest at 1M
    // lines: ref state 2.5 -> 1.1 s, commits 6.7 -> 4.2 s).
    r#"
    DROP INDEX ref_state_remote;
    DROP INDEX ref_state_project;
    "#,
    // 4 -> 5: GitLab CI nightly pipelines, their failed jobs (with the pattern, excerpt and tail
    // of each log, never the whole log), the error patterns, and the issues people linked to
    // patterns; changed in the transaction of the events that report them.
    r#"
    CREATE TABLE ci_pipelines (
        project      TEXT NOT NULL,
        id           INTEGER NOT NULL,
        project_url  TEXT,
        night        TEXT NOT NULL,
        status       TEXT NOT NULL,
        warnings     INTEGER NOT NULL,
        ref          TEXT,
        sha          TEXT,
        source       TEXT,
        web_url      TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        PRIMARY KEY (project, id)
    ) WITHOUT ROWID;
    CREATE INDEX ci_pipelines_night ON ci_pipelines(night, project);
    CREATE TABLE ci_jobs (
        project         TEXT NOT NULL,
        id              INTEGER NOT NULL,
        pipeline        INTEGER NOT NULL,
        name            TEXT NOT NULL,
        stage           TEXT,
        status          TEXT NOT NULL,
        allow_failure   INTEGER NOT NULL,
        failure_reason  TEXT,
        web_url         TEXT,
        finished_at     INTEGER,
        log_state       TEXT NOT NULL,
        pattern         TEXT,
        section         TEXT,
        excerpt         TEXT,
        tail            TEXT,
        PRIMARY KEY (project, id)
    ) WITHOUT ROWID;
    CREATE INDEX ci_jobs_pipeline ON ci_jobs(project, pipeline);
    CREATE INDEX ci_jobs_pattern ON ci_jobs(pattern);
    CREATE TABLE ci_patterns (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL,
        identity    TEXT NOT NULL,
        rule_issue  TEXT
    ) WITHOUT ROWID;
    CREATE TABLE ci_issue_links (
        pattern    TEXT PRIMARY KEY,
        issue_url  TEXT NOT NULL,
        linked     INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    REF_STATE_PER_INSTANCE,
    // 6 -> 7: event identity (issue 12). Spacedrive events are keyed without their device (a
    // default `sd sync events` export names none): every one is keyed again, and the ones a
    // device's sync.db and its export stored twice become one, with the device (Rust step
    // `rekey_spacedrive`, marked below, in this step's transaction).
    //
    // And ingest no longer slows down as the store grows: the unique text index of `strings`
    // took every new correlation id (a random UUID) at a random leaf, so each commit rewrote
    // hundreds of its pages once it outgrew the cache (measured: 46,000 new strings in 200
    // commits, 1.0 s into an empty store, 6.2 s into one of 10M events). `strings` keeps the
    // id -> text rows (appended at the right edge); text -> id lookups go to `string_ids`, two
    // tiers: new strings into the small `string_ids_recent` (its pages stay hot), moved in bulk,
    // in text order, into `string_ids_main` by the writer once it holds 32,768 (each page of
    // the big tier rewritten once per move instead of once per commit). Readers look text up in
    // the view `string_ids` (both tiers, each by its primary key).
    r#"
    CREATE TABLE strings_v6 (
        id   INTEGER PRIMARY KEY,
        text TEXT NOT NULL
    );
    INSERT INTO strings_v6 (id, text) SELECT id, text FROM strings ORDER BY id;
    CREATE TABLE string_ids_main (
        text TEXT PRIMARY KEY,
        id   INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO string_ids_main (text, id) SELECT text, id FROM strings ORDER BY text;
    CREATE TABLE string_ids_recent (
        text TEXT PRIMARY KEY,
        id   INTEGER NOT NULL
    ) WITHOUT ROWID;
    DROP TABLE strings;
    ALTER TABLE strings_v6 RENAME TO strings;
    CREATE VIEW string_ids (text, id) AS
        SELECT text, id FROM string_ids_main UNION ALL SELECT text, id FROM string_ids_recent;
    -- rust: rekey_spacedrive
    "#,
    // 7 -> 8: the text index of `EventFilter::grep` (store/textindex.rs), and an index of
    // batches by source (per-source freshness): a Bloom filter of grams per block of 4096
    // events (with the set of its string ids) and of 256 strings, kept by the writer in
    // the transaction of its events; built for the events already stored by
    // `build_text_index` (RUST_STEPS).
    r#"
    -- rust: build_text_index
    CREATE TABLE text_blocks (
        block  INTEGER PRIMARY KEY,
        bits   BLOB NOT NULL,
        ids    BLOB,
        digits INTEGER
    );
    CREATE TABLE string_blocks (
        block  INTEGER PRIMARY KEY,
        bits   BLOB NOT NULL
    );
    -- Each ingest source's newest batch in one lookup (Reader::freshness).
    CREATE INDEX batches_source ON batches(source, received);
    "#,
    // 8 -> 9: CI downstream pipelines (see below).
    MIGRATION_CI_DOWNSTREAM,
    // 9 -> 10: relay state in a table of its own (store/relays.rs).
    super::relays::MIGRATION_RELAY_TARGETS,
    // 10 -> 11: the errors of one source in time order, with what the Overview groups them by
    // (`Reader::session_errors`): read from this index alone, not from `ev_severity`, which
    // walks every source's errors (a Gerrit outage's thousands) and reads each row for its
    // source. Errors only, so the writer's cost is nil where errors are rare.
    r#"
    CREATE INDEX ev_errors ON events(source, ts, key, corr, device) WHERE severity = 3;
    "#,
];

/// 5 -> 6: Gerrit ref state per instance, as each node's replication-status plugin counts only
/// the events stamped with its own `instanceId` (0: the node without one, and every row of an
/// older store, which merged them); when a ref was deleted on the primary (`deleted_at`: it left
/// the plugin's answer); and the projects whose deletion was replicated (their refs are history).
const REF_STATE_PER_INSTANCE: &str = r#"
    CREATE TABLE ref_state_v6 (
        ref              INTEGER NOT NULL,
        remote           INTEGER NOT NULL,
        project          INTEGER NOT NULL,
        instance         INTEGER NOT NULL,
        direction        TEXT NOT NULL,
        status           TEXT NOT NULL,
        when_s           INTEGER NOT NULL,
        retrying         INTEGER NOT NULL,
        attempts         INTEGER NOT NULL,
        last_success     INTEGER,
        last_failure     INTEGER,
        last_error       TEXT,
        scheduled_since  INTEGER,
        event_id         INTEGER,
        deleted_at       INTEGER,
        PRIMARY KEY (ref, remote, project, instance)
    ) WITHOUT ROWID;
    INSERT INTO ref_state_v6 (ref, remote, project, instance, direction, status, when_s, retrying,
            attempts, last_success, last_failure, last_error, scheduled_since, event_id)
        SELECT ref, remote, project, 0, direction, status, when_s, retrying, attempts,
               last_success, last_failure, last_error, scheduled_since, event_id
        FROM ref_state;
    DROP TABLE ref_state;
    ALTER TABLE ref_state_v6 RENAME TO ref_state;
    CREATE TABLE gerrit_deleted_projects (
        project     TEXT PRIMARY KEY,
        deleted_at  INTEGER NOT NULL,
        event_id    INTEGER
    ) WITHOUT ROWID;
"#;

/// How many strings `string_ids_recent` holds before the writer moves them to the main tier.
pub const RECENT_STRINGS_MAX: i64 = 32_768;

/// Moves the recent tier of `string_ids` into the main one, in text order (one transaction).
pub fn merge_string_ids(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "INSERT INTO string_ids_main (text, id) SELECT text, id FROM string_ids_recent ORDER BY text;
         DELETE FROM string_ids_recent;",
    )
    .wrap_err("cannot move the recent string ids to the main tier")
}

/// Steps that need Rust besides their SQL: a step whose SQL holds the marker runs the function
/// after its SQL, in the same transaction (found by marker, not position, so steps can be
/// renumbered).
type RustStep = fn(&rusqlite::Transaction<'_>) -> Result<()>;
const RUST_STEPS: &[(&str, RustStep)] = &[
    ("-- rust: rekey_spacedrive", super::rekey::rekey_spacedrive),
    ("-- rust: build_text_index", build_text_index),
];

/// 7 -> 8: indexes the events and strings a store already holds (about a microsecond per
/// event: see README).
fn build_text_index(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    super::textindex::update(tx)
        .map(|_| ())
        .wrap_err("cannot build the text index")
}

/// 8 -> 9 (issue 14): failures inside child and multi-project downstream pipelines. A nightly
/// whose downstream pipeline failed is failed even when GitLab says it passed
/// (`downstream_failed`); a failed job found downstream keeps the way to it (`chain`: the
/// bridges and pipelines). Existing rows: no downstream seen, no chain.
const MIGRATION_CI_DOWNSTREAM: &str = r#"
    ALTER TABLE ci_pipelines ADD COLUMN downstream_failed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE ci_jobs ADD COLUMN chain TEXT;
    "#;

/// Nanoseconds per bucket of `event_counts`.
pub const COUNT_BUCKET_NS: i64 = 60_000_000_000;

/// The `event_counts` bucket of a timestamp (floor division, as the migration computes it).
pub fn count_bucket(ts_nanos: i64) -> i64 {
    ts_nanos.div_euclid(COUNT_BUCKET_NS)
}

/// The lowest severity rank the partial index `ev_severity` holds.
pub const INDEXED_SEVERITY_MIN: i64 = 2;

pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .wrap_err("cannot read the store's schema version")
}

/// Brings the schema up to `target`, one transaction per step.
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    let current = version(conn)?;
    if current < 0 {
        bail!("the store's schema version is {current}, which no syncscope writes: it is damaged");
    }
    if current > LATEST_VERSION {
        bail!(
            "the store has schema version {current}, newer than this syncscope understands ({LATEST_VERSION}): upgrade syncscope"
        );
    }
    // A large store's upgrade takes minutes (a rekey of 10M events: about 5): say so, and how
    // far it got, rather than look hung. Small stores upgrade silently.
    let events: i64 = if current >= 1 && current < target.min(LATEST_VERSION) {
        conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))
            .unwrap_or(0)
    } else {
        0
    };
    let loud = events >= ANNOUNCE_UPGRADE_EVENTS;
    if loud {
        eprintln!(
            "syncscope: upgrading the store from schema {current} to {} (about {events} events): a large store takes minutes; if interrupted, the unfinished step starts again next time",
            target.min(LATEST_VERSION)
        );
    }
    for v in current..target.min(LATEST_VERSION) {
        let started = std::time::Instant::now();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .wrap_err("cannot lock the store to upgrade its schema")?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > v {
            tx.commit()?;
            continue;
        }
        let sql = MIGRATIONS[v as usize];
        tx.execute_batch(sql)
            .wrap_err_with(|| format!("schema migration {v} -> {} failed", v + 1))?;
        for (marker, step) in RUST_STEPS {
            if sql.contains(marker) {
                step(&tx).wrap_err_with(|| format!("schema migration {v} -> {} failed", v + 1))?;
            }
        }
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()
            .wrap_err_with(|| format!("cannot commit schema migration {v} -> {}", v + 1))?;
        if loud {
            eprintln!(
                "syncscope: schema {v} -> {} done in {:.1} s",
                v + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Stores with at least this many events announce a schema upgrade on stderr.
const ANNOUNCE_UPGRADE_EVENTS: i64 = 200_000;

pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, LATEST_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type IN ('table','index','view') ORDER BY name",
            )
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_large_store_upgrades_with_its_progress_said() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate_to(&mut c, 7).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO strings (id, text) VALUES (1, 's'), (2, 't'), (3, 'c');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ANNOUNCE_UPGRADE_EVENTS})
             INSERT INTO events (id, ts, key, source, event_type, category, severity, summary)
             SELECT i, i, i, 1, 2, 3, 1, 'event ' || i FROM n;"
        ))
        .unwrap();
        migrate(&mut c).unwrap();
        assert_eq!(version(&c).unwrap(), LATEST_VERSION);
        let m = crate::store::textindex::find(&c, "event 12345").unwrap();
        assert!(
            m.ranges.is_some_and(|r| !r.is_empty()),
            "indexed by the upgrade"
        );
    }

    #[test]
    fn from_empty_file_to_latest() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        assert_eq!(version(&c).unwrap(), LATEST_VERSION);
        let t = tables(&c);
        for want in [
            "events",
            "strings",
            "string_ids",
            "string_ids_main",
            "string_ids_recent",
            "checkpoints",
            "rejects",
            "batches",
            "ev_time",
            "ev_corr",
        ] {
            assert!(t.iter().any(|n| n == want), "{want} missing from {t:?}");
        }
        // Idempotent.
        migrate(&mut c).unwrap();
        assert_eq!(version(&c).unwrap(), LATEST_VERSION);
    }

    #[test]
    fn from_every_older_version_to_latest_equals_fresh() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let want = tables(&fresh);
        for start in 0..LATEST_VERSION {
            let mut c = Connection::open_in_memory().unwrap();
            migrate_to(&mut c, start).unwrap();
            assert_eq!(version(&c).unwrap(), start);
            migrate(&mut c).unwrap();
            assert_eq!(version(&c).unwrap(), LATEST_VERSION);
            assert_eq!(tables(&c), want, "migrating from version {start}");
        }
    }

    #[test]
    fn v2_counts_the_events_a_v1_store_holds() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate_to(&mut c, 1).unwrap();
        // Three events in one minute, one in the next, two sources, two severities; one
        // before 1970 to check the floor division.
        c.execute_batch(
            "INSERT INTO events (id, ts, key, source, event_type, category, severity, summary) VALUES
               (1, 60000000000, 1, 1, 1, 1, 0, 'a'), (2, 60000000001, 2, 1, 1, 1, 0, 'b'),
               (3, 119999999999, 3, 2, 1, 1, 3, 'c'), (4, 120000000000, 4, 1, 1, 1, 0, 'd'),
               (5, -1, 5, 1, 1, 1, 0, 'e');",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let rows: Vec<(i64, i64, i64, i64)> = c
            .prepare("SELECT minute, source, severity, n FROM event_counts ORDER BY 1, 2, 3")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![(-1, 1, 0, 1), (1, 1, 0, 2), (1, 2, 3, 1), (2, 1, 0, 1)]
        );
        assert_eq!(count_bucket(-1), -1);
        assert_eq!(count_bucket(119_999_999_999), 1);
    }

    #[test]
    fn v6_keys_the_ref_state_of_a_v5_store_by_instance() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate_to(&mut c, 5).unwrap();
        c.execute_batch(
            "INSERT INTO strings (id, text) VALUES (1, 'refs/heads/main'), (2, 'ssh://m/p.git'), (3, 'p');
             INSERT INTO ref_state (ref, remote, project, direction, status, when_s, retrying,
                 attempts, last_success, last_failure, last_error, scheduled_since, event_id)
             VALUES (1, 2, 3, 'PUSH', 'FAILED', 100, 1, 2, 50, 100, 'REJECTED_OTHER_REASON', NULL, 7);",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        // The merged row of the old store is the node without an id's; nothing deleted.
        let row: (i64, i64, String, i64, Option<i64>) = c
            .query_row(
                "SELECT ref, instance, status, event_id, deleted_at FROM ref_state",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(row, (1, 0, "FAILED".into(), 7, None));
        // The same ref of another instance is a row of its own.
        c.execute(
            "INSERT INTO ref_state (ref, remote, project, instance, direction, status, when_s,
                 retrying, attempts) VALUES (1, 2, 3, 9, 'PUSH', 'SUCCEEDED', 101, 0, 0)",
            [],
        )
        .unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM ref_state", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        let d: i64 = c
            .query_row("SELECT count(*) FROM gerrit_deleted_projects", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(d, 0);
    }

    #[test]
    fn v4_keeps_the_ref_state_of_a_v3_store_without_its_indexes() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate_to(&mut c, 3).unwrap();
        c.execute_batch(
            "INSERT INTO strings (id, text) VALUES (1, 'refs/heads/main'), (2, 'ssh://m/p.git'), (3, 'p');
             INSERT INTO ref_state (ref, remote, project, direction, status, when_s, retrying,
                 attempts, last_success, last_failure, last_error, scheduled_since, event_id)
             VALUES (1, 2, 3, 'PUSH', 'FAILED', 100, 1, 2, 50, 100, 'REJECTED_OTHER_REASON', NULL, 7);",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        assert!(!tables(&c).iter().any(|t| t.starts_with("ref_state_")));
        let row: (i64, i64, i64, String, String, i64, Option<String>, i64) = c
            .query_row(
                "SELECT ref, remote, project, direction, status, attempts, last_error, event_id FROM ref_state",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            row,
            (
                1,
                2,
                3,
                "PUSH".into(),
                "FAILED".into(),
                2,
                Some("REJECTED_OTHER_REASON".into()),
                7
            )
        );
    }

    #[test]
    fn v6_indexes_the_text_of_a_v5_store() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate_to(&mut c, 5).unwrap();
        c.execute_batch(
            "INSERT INTO strings (id, text) VALUES (1, 'ngit'), (2, 'RelayDead'), (3, 'relay'), (4, 'wss://r.example');
             INSERT INTO events (id, ts, key, source, event_type, category, severity, summary, subject) VALUES
               (1, 10, 1, 1, 2, 3, 3, 'relay lost: Connection refused', 4),
               (9000, 20, 2, 1, 3, 3, 1, 'relay back', NULL);",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let upto: i64 = c
            .query_row(
                "SELECT value FROM meta WHERE key = 'text_events_upto'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(upto, 9000);
        let blocks: i64 = c
            .query_row("SELECT count(*) FROM text_blocks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(blocks, 2, "ids 1 and 9000 are in blocks 0 and 2");
        let m = crate::store::textindex::find(&c, "connection refused").unwrap();
        assert_eq!(m.ranges, Some(vec![(0, 4095)]));
        let m = crate::store::textindex::find(&c, "relay_dead").unwrap();
        assert_eq!(m.string_ids, vec![2]);
        assert_eq!(m.ranges, Some(vec![(0, 4095)]));
        let m = crate::store::textindex::find(&c, "r.example").unwrap();
        assert_eq!((m.string_ids, m.ranges), (vec![4], Some(vec![(0, 4095)])));
        let m = crate::store::textindex::find(&c, "no such text").unwrap();
        assert_eq!(m.ranges, Some(vec![]));
    }

    #[test]
    fn ci_downstream_columns_keep_a_v5_stores_pipelines_and_jobs() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate_to(&mut c, 5).unwrap();
        c.execute_batch(
            "INSERT INTO ci_pipelines (project, id, night, status, warnings, created_at, updated_at)
             VALUES ('g/p', 1000, '2026-11-30', 'success', 0, 1, 2);
             INSERT INTO ci_jobs (project, id, pipeline, name, status, allow_failure, log_state, pattern)
             VALUES ('g/p', 5000, 1000, 'test', 'failed', 1, 'fetched', 'abc');",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let p: (String, i64) = c
            .query_row(
                "SELECT status, downstream_failed FROM ci_pipelines WHERE id = 1000",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(p, ("success".into(), 0));
        let j: (String, Option<String>, Option<String>) = c
            .query_row(
                "SELECT log_state, pattern, chain FROM ci_jobs WHERE id = 5000",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(j, ("fetched".into(), Some("abc".into()), None));
    }

    #[test]
    fn refuses_a_newer_store() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", LATEST_VERSION + 5)
            .unwrap();
        let err = migrate(&mut c).unwrap_err().to_string();
        assert!(
            err.contains("newer than this syncscope understands"),
            "{err}"
        );
    }
}
