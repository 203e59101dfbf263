use super::*;
use crate::model::Event;
use crate::store::writer::tests::{event, scalar, writer};

const DAY: i64 = 86_400;

fn texts(w: &Writer) -> Vec<String> {
    let mut st = w
        .connection()
        .prepare("SELECT text FROM strings ORDER BY id")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn with_corr(i: i64, corr: &str) -> Event {
    let mut e = event(i);
    e.correlation_id = Some(corr.into());
    e.summary = format!("event {i} of {corr}");
    e
}

/// Makes everything stored so far look received `days` ago.
fn age(w: &Writer, days: i64) {
    w.connection()
        .execute("UPDATE batches SET received = received - ?1", [days * DAY])
        .unwrap();
}

/// Every event's interned columns name a string that exists (none dangles).
fn dangling(w: &Writer) -> i64 {
    let mut n = 0;
    for (t, c) in STRING_COLUMNS {
        n += scalar(
            w,
            &format!(
                "SELECT count(*) FROM {t} WHERE {c} IS NOT NULL AND {c} != 0 AND {c} NOT IN (SELECT id FROM strings)"
            ),
        );
    }
    n
}

#[test]
fn every_table_and_column_of_the_schema_is_known_to_retention() {
    let (_d, w) = writer();
    let c = w.connection();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut known: Vec<&str> = TABLES.iter().map(|t| t.0).collect();
    known.sort_unstable();
    assert_eq!(
        tables, known,
        "a table retention does not know (add it to TABLES)"
    );
    for (table, _, others) in TABLES {
        let mut cols: Vec<String> = c
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY name"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        cols.sort();
        let mut want: Vec<String> = others.iter().map(|s| s.to_string()).collect();
        want.extend(
            STRING_COLUMNS
                .iter()
                .filter(|(t, _)| t == table)
                .map(|(_, c)| c.to_string()),
        );
        want.sort();
        assert_eq!(
            cols, want,
            "columns of {table}: a new one holding string ids goes in STRING_COLUMNS, any other in TABLES"
        );
    }
}

#[test]
fn strings_no_row_uses_go_and_their_ids_are_never_handed_out_again() {
    let (_d, mut w) = writer();
    w.commit_batch(
        "s",
        &[with_corr(1, "corr-old-aaaa"), with_corr(2, "corr-old-bbbb")],
        &[],
        None,
    )
    .unwrap();
    let old_id = scalar(&w, "SELECT id FROM strings WHERE text = 'corr-old-aaaa'");
    age(&w, 10);
    w.commit_batch("s", &[with_corr(3, "corr-new-cccc")], &[], None)
        .unwrap();
    let max_before = scalar(&w, "SELECT max(id) FROM strings");
    let p = w
        .prune_span(7 * DAY as u64, crate::store::unix_now())
        .unwrap();
    assert_eq!(p.events, 2);
    assert_eq!(p.strings, 2, "{:?}", texts(&w));
    let t = texts(&w);
    assert!(!t.iter().any(|s| s.starts_with("corr-old")), "{t:?}");
    for kept in ["spacedrive", "dev-a", "batch_ingestion", "corr-new-cccc"] {
        assert!(t.iter().any(|s| s == kept), "{kept} in {t:?}");
    }
    assert_eq!(scalar(&w, "SELECT max(id) FROM strings"), max_before);
    // Both tiers of the text -> id lookup follow.
    assert_eq!(
        scalar(&w, "SELECT count(*) FROM string_ids"),
        scalar(&w, "SELECT count(*) FROM strings")
    );
    // The writer's cache had the old id: interning the text again makes a new one.
    w.commit_batch("s", &[with_corr(4, "corr-old-aaaa")], &[], None)
        .unwrap();
    let again = scalar(&w, "SELECT id FROM strings WHERE text = 'corr-old-aaaa'");
    assert!(again > max_before && again != old_id, "{again} vs {old_id}");
    assert_eq!(dangling(&w), 0);
    // Search finds it through the event that names it now, and not the gone one.
    let r = crate::store::Reader::new(
        rusqlite::Connection::open(w.connection().path().unwrap()).unwrap(),
    );
    let f = crate::store::EventFilter {
        grep: Some("corr-old-bbbb".into()),
        ..Default::default()
    };
    assert!(r.page_before(&f, None, 10).unwrap().is_empty());
    let f = crate::store::EventFilter {
        grep: Some("corr-old-aaaa".into()),
        ..Default::default()
    };
    let found = r.page_before(&f, None, 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].event.correlation_id.as_deref(),
        Some("corr-old-aaaa")
    );
}

#[test]
fn a_string_used_while_retention_marks_is_kept() {
    let (_d, mut w) = writer();
    w.commit_batch("s", &[with_corr(1, "corr-reused")], &[], None)
        .unwrap();
    age(&w, 10);
    let mut run = Pruning::new(7 * DAY as u64, crate::store::unix_now());
    // Delete the old event and mark what is left, up to the sweep.
    while !matches!(run.phase, Phase::Sweep { .. }) {
        assert!(!w.prune_step(&mut run).unwrap());
    }
    assert_eq!(run.done.events, 1);
    // Meanwhile a new event names the text again: the old id, from the writer's cache.
    w.commit_batch("s", &[with_corr(2, "corr-reused")], &[], None)
        .unwrap();
    while !w.prune_step(&mut run).unwrap() {}
    assert!(texts(&w).iter().any(|t| t == "corr-reused"));
    assert_eq!(dangling(&w), 0);
    let corr: String = w
        .connection()
        .query_row(
            "SELECT s.text FROM events e JOIN strings s ON s.id = e.corr",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(corr, "corr-reused");
}

#[test]
fn a_new_writer_on_a_pruned_store_interns_without_reusing_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut w = Writer::open(&db).unwrap();
    w.commit_batch(
        "s",
        &[with_corr(1, "corr-x"), with_corr(2, "corr-y")],
        &[],
        None,
    )
    .unwrap();
    age(&w, 10);
    w.commit_batch("s", &[with_corr(3, "corr-z")], &[], None)
        .unwrap();
    let max = scalar(&w, "SELECT max(id) FROM strings");
    w.prune_span(DAY as u64, crate::store::unix_now()).unwrap();
    drop(w);
    let mut w = Writer::open(&db).unwrap();
    w.commit_batch("s", &[with_corr(4, "corr-x")], &[], None)
        .unwrap();
    assert!(scalar(&w, "SELECT id FROM strings WHERE text = 'corr-x'") > max);
    assert_eq!(dangling(&w), 0);
}

#[test]
fn the_string_text_index_forgets_deleted_strings() {
    let (_d, mut w) = writer();
    // More than one string block (256 strings) of ids used once.
    let old: Vec<Event> = (0..600)
        .map(|i| with_corr(i, &format!("gone-{i:04}")))
        .collect();
    w.commit_batch("s", &old, &[], None).unwrap();
    age(&w, 10);
    w.commit_batch("s", &[with_corr(1000, "kept-1000")], &[], None)
        .unwrap();
    let blocks_before = scalar(&w, "SELECT count(*) FROM string_blocks");
    let p = w.prune_span(DAY as u64, crate::store::unix_now()).unwrap();
    assert_eq!(p.strings, 600);
    assert!(scalar(&w, "SELECT count(*) FROM string_blocks") < blocks_before);
    let m = crate::store::textindex::find(w.connection(), "gone-0123").unwrap();
    assert!(m.string_ids.is_empty());
    // Every block left has a filter that still finds what it holds.
    let m = crate::store::textindex::find(w.connection(), "spacedrive").unwrap();
    assert_eq!(m.string_ids.len(), 1);
    let m = crate::store::textindex::find(w.connection(), "kept-1000").unwrap();
    assert_eq!(m.string_ids.len(), 1);
}

#[test]
fn ci_history_goes_after_the_floor_with_its_jobs_and_unnamed_patterns() {
    let (_d, mut w) = writer();
    let now = crate::store::unix_now();
    let c = w.connection();
    for (id, days_ago, pattern) in [
        (1, 40, "p-old"),
        (2, 40, "p-both"),
        (3, 20, "p-both"),
        (4, 2, "p-new"),
    ] {
        c.execute(
            "INSERT INTO ci_pipelines (project, id, night, status, warnings, created_at, updated_at)
             VALUES ('g/p', ?1, 'n', 'failed', 0, ?2, ?2)",
            params![id, now - days_ago * DAY],
        )
        .unwrap();
        c.execute(
            "INSERT INTO ci_jobs (project, id, pipeline, name, status, allow_failure, log_state, pattern)
             VALUES ('g/p', ?1, ?2, 'test', 'failed', 0, 'fetched', ?3)",
            params![id * 10, id, pattern],
        )
        .unwrap();
        c.execute(
            "INSERT OR IGNORE INTO ci_patterns (id, kind, name, identity) VALUES (?1, 'k', 'n', 'i')",
            [pattern],
        )
        .unwrap();
    }
    c.execute(
        "INSERT INTO ci_issue_links (pattern, issue_url, linked) VALUES ('p-old', 'https://i/1', 1)",
        [],
    )
    .unwrap();
    // A 7-day retention keeps the 31 nights CI marks read; older pipelines go.
    let p = w.prune_span(7 * DAY as u64, now).unwrap();
    assert_eq!((p.ci_pipelines, p.ci_jobs, p.ci_patterns), (2, 2, 1));
    assert_eq!(
        scalar(&w, "SELECT count(*) FROM ci_pipelines WHERE id IN (3, 4)"),
        2
    );
    assert_eq!(scalar(&w, "SELECT count(*) FROM ci_pipelines"), 2);
    let pats: String = w
        .connection()
        .query_row(
            "SELECT group_concat(id, ',') FROM (SELECT id FROM ci_patterns ORDER BY id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pats, "p-both,p-new");
    assert_eq!(
        scalar(&w, "SELECT count(*) FROM ci_issue_links"),
        1,
        "people's links stay"
    );
    // A 60-day retention keeps them all.
    let (_d2, mut w2) = writer();
    w2.connection()
        .execute(
            "INSERT INTO ci_pipelines (project, id, night, status, warnings, created_at, updated_at)
             VALUES ('g/p', 1, 'n', 'failed', 0, ?1, ?1)",
            [now - 40 * DAY],
        )
        .unwrap();
    assert_eq!(w2.prune_span(60 * DAY as u64, now).unwrap().ci_pipelines, 0);
}

#[test]
fn relay_targets_not_scraped_go_and_ref_state_stays() {
    let (_d, mut w) = writer();
    let now = crate::store::unix_now();
    let c = w.connection();
    c.execute_batch(&format!(
        "INSERT INTO relay_targets (source, target, last_scrape, state) VALUES
           ('ngit-metrics:a', 'a', {old}, '{{}}'), ('ngit-metrics:b', 'b', {new}, '{{}}'),
           ('ngit-metrics:c', 'c', NULL, '{{}}');
         INSERT INTO strings (id, text) VALUES (1, 'refs/heads/x'), (2, 'remote'), (3, 'proj'), (4, 'refs/heads/y');
         INSERT INTO string_ids_recent (text, id) VALUES ('refs/heads/x', 1), ('remote', 2), ('proj', 3), ('refs/heads/y', 4);
         INSERT INTO ref_state (ref, remote, project, instance, direction, status, when_s, retrying, attempts, deleted_at)
           VALUES (1, 2, 3, 0, 'PUSH', 'SUCCEEDED', {old}, 0, 0, {old}),
                  (4, 2, 3, 0, 'PUSH', 'SUCCEEDED', {old}, 0, 0, NULL);
         INSERT INTO gerrit_deleted_projects (project, deleted_at) VALUES ('gone', {old}), ('recent', {new});",
        old = now - 30 * DAY,
        new = now - 60,
    ))
    .unwrap();
    let p = w.prune_span(7 * DAY as u64, now).unwrap();
    assert_eq!(p.relay_targets, 2);
    assert_eq!(
        scalar(&w, "SELECT count(*) FROM relay_targets WHERE target = 'b'"),
        1
    );
    // Ref state is the plugin's state: even a ref deleted long ago stays, with its strings
    // (a refused deletion must stay shown); so do deleted projects.
    assert_eq!(scalar(&w, "SELECT count(*) FROM ref_state"), 2);
    assert_eq!(
        scalar(&w, "SELECT count(*) FROM gerrit_deleted_projects"),
        2
    );
    assert_eq!(
        texts(&w),
        vec!["refs/heads/x", "remote", "proj", "refs/heads/y"]
    );
    assert_eq!(dangling(&w), 0);
}

#[test]
fn zero_keeps_everything() {
    let (_d, mut w) = writer();
    w.commit_batch("s", &[event(1)], &[], None).unwrap();
    age(&w, 1000);
    assert_eq!(
        w.prune_span(0, crate::store::unix_now()).unwrap(),
        Pruned::default()
    );
    assert_eq!(scalar(&w, "SELECT count(*) FROM events"), 1);
}

#[test]
fn spans_read_as_the_flags_say() {
    assert_eq!(parse_span("10m"), Ok(600));
    assert_eq!(parse_span("7d"), Ok(7 * 86_400));
    assert_eq!(parse_span("7"), Ok(7 * 86_400));
    assert_eq!(parse_span("90s"), Ok(90));
    assert_eq!(parse_span("2w"), Ok(14 * 86_400));
    assert_eq!(parse_span("12h"), Ok(43_200));
    assert_eq!(parse_span("0"), Ok(0));
    for bad in ["", "m", "10x", "-1d", "99999999999999999999d", "1000000w"] {
        assert!(parse_span(bad).is_err(), "{bad}");
    }
}

#[test]
fn marks_cover_ids_below_the_limit_only() {
    let mut m = Marks::new(130);
    m.mark(0);
    m.mark(129);
    m.mark(500);
    assert!(m.is_marked(0) && m.is_marked(129));
    assert!(!m.is_marked(1) && !m.is_marked(128));
    assert!(
        m.is_marked(130) && m.is_marked(-1),
        "outside: never deleted"
    );
}
