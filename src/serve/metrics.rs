//! syncscope's derived state as Prometheus metrics: what `status`, `relays`, `failures` and
//! `sources` answer, read from the store in one read transaction per page.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use color_eyre::eyre::{Result, WrapErr};

use super::exposition::{labels, Family};
use crate::model::ci::{NightCell, STRIP_NIGHTS};
use crate::model::gerrit::{Direction, RefStatus, NO_INSTANCE};
use crate::model::relay::TargetState;
use crate::model::Timestamp;
use crate::store::{Reader, SourceOverview};

/// The replication-status plugin's statuses, each a `status` label value.
const STATUSES: [RefStatus; 5] = [
    RefStatus::Succeeded,
    RefStatus::Failed,
    RefStatus::NotAttempted,
    RefStatus::Scheduled,
    RefStatus::Unknown,
];

/// A source's states (`syncscope sources`), each a `state` label value.
const SOURCE_STATES: [&str; 5] = ["ok", "waiting", "backoff", "fault", "done"];

/// What a page is made of: read from the store, then rendered at a given time.
pub struct Snapshot {
    /// Per (gerrit_instance, project, remote), by those names.
    pub refs: Vec<RemoteRefs>,
    pub targets: Vec<TargetState>,
    /// Relay targets whose saved state cannot be read (`KEY: reason`; rebuilt on the next scrape).
    pub unreadable: Vec<String>,
    pub ci_night: Option<String>,
    /// (project, last night's cell, NEW patterns that hit it that night).
    pub ci: Vec<(String, NightCell, u32)>,
    pub sources: Vec<SourceOverview>,
}

/// What `status` counts for one (gerrit_instance, project, remote).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteRefs {
    /// `none`: the node without an `instanceId`.
    pub instance: String,
    pub project: String,
    pub remote: String,
    /// Refs by [`STATUSES`] (refs deleted on the primary excluded).
    pub by_status: [u64; 5],
    pub push: u64,
    pub pull: u64,
    pub retrying: u64,
    pub stuck: u64,
    pub not_deleted: u64,
    /// Unix seconds of the oldest failure among the refs failing now.
    pub oldest_failure: Option<i64>,
    /// The first [`LISTED_FAILURES`] failing refs by name.
    pub failing: Vec<String>,
}

/// Failing refs listed by name per (gerrit_instance, project, remote); the count of all of
/// them is `syncscope_gerrit_refs{status="FAILED"}` + `{status="UNKNOWN"}`.
pub const LISTED_FAILURES: usize = 100;

/// Counts the refs as `status` does (same predicates, on every row of `ref_state`) at `now`
/// (Unix seconds), by interned ids, then names the groups and their failing refs.
fn remote_refs(reader: &Reader, now: i64, stuck_after: i64) -> Result<Vec<RemoteRefs>> {
    struct Acc {
        c: RemoteRefs,
        failing: Vec<i64>,
    }
    let mut groups: HashMap<[i64; 3], Acc> = HashMap::new();
    reader.for_each_ref_state_ids(|[instance, project, remote, reff], r| {
        // As `status`: deleted refs whose deletion replicated are history.
        if !(r.reported() || r.deletion_not_replicated()) {
            return;
        }
        let g = groups
            .entry([instance, project, remote])
            .or_insert_with(|| Acc {
                c: RemoteRefs::default(),
                failing: Vec::new(),
            });
        if !r.reported() {
            g.c.not_deleted += 1;
            return;
        }
        let status = RefStatus::parse(&r.status);
        g.c.by_status[status_index(status)] += 1;
        match r.direction {
            Direction::Push => g.c.push += 1,
            Direction::Pull => g.c.pull += 1,
        }
        g.c.retrying += u64::from(r.retrying);
        g.c.stuck += u64::from(r.stuck(now, stuck_after));
        if status.is_failure() {
            let at = r.last_failure.unwrap_or(r.when);
            g.c.oldest_failure = Some(g.c.oldest_failure.map_or(at, |o| o.min(at)));
            g.failing.push(reff);
        }
    })?;
    let mut names: HashMap<i64, String> = HashMap::new();
    let mut name = |id: i64| -> Result<String> {
        if let Some(n) = names.get(&id) {
            return Ok(n.clone());
        }
        let n = reader.interned_text(id)?.unwrap_or_default();
        names.insert(id, n.clone());
        Ok(n)
    };
    let mut out = Vec::with_capacity(groups.len());
    for ([instance, project, remote], mut g) in groups {
        g.c.instance = match instance {
            0 => NO_INSTANCE.to_string(),
            id => name(id)?,
        };
        g.c.project = name(project)?;
        g.c.remote = name(remote)?;
        let mut failing = g
            .failing
            .iter()
            .map(|id| Ok(reader.interned_text(*id)?.unwrap_or_default()))
            .collect::<Result<Vec<String>>>()?;
        failing.sort();
        failing.truncate(LISTED_FAILURES);
        g.c.failing = failing;
        out.push(g.c);
    }
    out.sort_by(|a, b| {
        (&a.instance, &a.project, &a.remote).cmp(&(&b.instance, &b.project, &b.remote))
    });
    Ok(out)
}

/// Reads everything a page shows in one read transaction (one consistent view beside a
/// running ingest) at `now`. `today` is the local date where CI nights are counted; a ref
/// SCHEDULED for longer than `stuck_after` seconds is stuck.
pub fn collect(
    reader: &Reader,
    today: NaiveDate,
    now: Timestamp,
    stuck_after: i64,
) -> Result<Snapshot> {
    let now_s = now.as_nanos().div_euclid(1_000_000_000);
    let conn = reader.connection();
    conn.execute_batch("BEGIN DEFERRED")
        .wrap_err("cannot start a read of the store")?;
    let read = (|| -> Result<Snapshot> {
        let refs = remote_refs(reader, now_s, stuck_after)?;
        let (targets, unreadable) = reader.relay_targets()?;
        let night = reader.ci_default_night(today)?;
        let mut ci = Vec::new();
        let mut ci_night = None;
        if let Some(n) = night {
            ci_night = Some(crate::model::ci::night_label(n));
            let mut new: BTreeMap<String, u32> = BTreeMap::new();
            for p in reader.ci_patterns(Some(n), None)? {
                if p.is_new {
                    for project in &p.projects_last_night {
                        *new.entry(project.clone()).or_default() += 1;
                    }
                }
            }
            let h = reader.ci_history(Some(n), STRIP_NIGHTS, None)?;
            for s in h.projects {
                let cell = s.cells.last().copied().unwrap_or(NightCell::NoRun);
                let n_new = new.get(&s.project).copied().unwrap_or(0);
                ci.push((s.project, cell, n_new));
            }
        }
        Ok(Snapshot {
            refs,
            targets,
            unreadable,
            ci_night,
            ci,
            sources: reader.source_overview()?,
        })
    })();
    let end = conn.execute_batch("COMMIT");
    let snap = read?;
    end.wrap_err("cannot end a read of the store")?;
    Ok(snap)
}

fn b(v: bool) -> f64 {
    if v {
        1.0
    } else {
        0.0
    }
}

fn status_index(s: RefStatus) -> usize {
    STATUSES.iter().position(|x| *x == s).unwrap_or(4)
}

fn cell_label(c: NightCell) -> &'static str {
    match c {
        NightCell::Failed => "failed",
        NightCell::Warnings => "passed_with_warnings",
        NightCell::Passed => "passed",
        NightCell::Other => "other",
        NightCell::NoRun => "no_run",
    }
}

const CELLS: [NightCell; 5] = [
    NightCell::Failed,
    NightCell::Warnings,
    NightCell::Passed,
    NightCell::Other,
    NightCell::NoRun,
];

/// The page at `now` (the ages in it are counted to `now`).
pub fn render(s: &Snapshot, now: Timestamp) -> String {
    let now_s = now.as_nanos().div_euclid(1_000_000_000);
    let now_ns = now.as_nanos();
    let mut out = String::with_capacity(64 * 1024);
    refs(&mut out, &s.refs, now_s);
    relays(&mut out, &s.targets, now_ns);
    if !s.unreadable.is_empty() {
        let mut f = Family::gauge(
            "syncscope_relay_targets_unreadable",
            "Relay targets whose saved state cannot be read (rebuilt on their next scrape; `syncscope relays` names them).",
        );
        f.sample(&[], s.unreadable.len() as f64);
        f.write_to(&mut out);
    }
    ci(&mut out, s);
    sources(&mut out, &s.sources, now_s);
    out
}

fn refs(out: &mut String, groups: &[RemoteRefs], now: i64) {
    let mut by_status = Family::gauge(
        "syncscope_gerrit_refs",
        "Refs of a (gerrit_instance, project, remote) by the replication-status plugin's status (refs deleted on the primary excluded).",
    );
    let mut by_dir = Family::gauge(
        "syncscope_gerrit_refs_by_direction",
        "Refs of a (gerrit_instance, project, remote) by replication direction (PUSH or PULL).",
    );
    let mut failed = Family::gauge(
        "syncscope_gerrit_remote_failed",
        "1 when the plugin answers FAILED for the (gerrit_instance, project, remote): a ref is FAILED or UNKNOWN.",
    );
    let mut retrying = Family::gauge(
        "syncscope_gerrit_refs_retrying",
        "Refs scheduled again after a failure.",
    );
    let mut stuck = Family::gauge(
        "syncscope_gerrit_refs_stuck",
        "Refs SCHEDULED for longer than --stuck-after seconds.",
    );
    let mut not_deleted = Family::gauge(
        "syncscope_gerrit_deletions_not_replicated",
        "Refs deleted on the primary whose deletion push failed.",
    );
    let mut oldest = Family::gauge(
        "syncscope_gerrit_oldest_failure_age_seconds",
        "Seconds since the oldest failure among the refs now FAILED or UNKNOWN (absent when none is).",
    );
    let mut failing = Family::gauge(
        "syncscope_gerrit_ref_failed",
        "1 for each ref now FAILED or UNKNOWN (at most 100 per gerrit_instance, project and remote, by name).",
    );
    for g in groups {
        let l = labels(&[
            ("gerrit_instance", g.instance.as_str()),
            ("project", g.project.as_str()),
            ("remote", g.remote.as_str()),
        ]);
        for (i, st) in STATUSES.iter().enumerate() {
            by_status.sample_with(&l, &[("status", st.as_str())], g.by_status[i] as f64);
        }
        by_dir.sample_with(&l, &[("direction", "PUSH")], g.push as f64);
        by_dir.sample_with(&l, &[("direction", "PULL")], g.pull as f64);
        let fails = g.by_status[status_index(RefStatus::Failed)]
            + g.by_status[status_index(RefStatus::Unknown)];
        failed.sample_with(&l, &[], b(fails > 0));
        retrying.sample_with(&l, &[], g.retrying as f64);
        stuck.sample_with(&l, &[], g.stuck as f64);
        not_deleted.sample_with(&l, &[], g.not_deleted as f64);
        if let Some(at) = g.oldest_failure {
            oldest.sample_with(&l, &[], (now - at).max(0) as f64);
        }
        for r in &g.failing {
            failing.sample_with(&l, &[("ref", r)], 1.0);
        }
    }
    for f in [
        &by_status,
        &by_dir,
        &failed,
        &retrying,
        &stuck,
        &not_deleted,
        &oldest,
        &failing,
    ] {
        f.write_to(out);
    }
}

fn relays(out: &mut String, targets: &[TargetState], now_ns: i64) {
    let mut up = Family::gauge(
        "syncscope_relay_target_up",
        "1 when the last scrape of the relay target's /metrics succeeded.",
    );
    let mut last = Family::gauge(
        "syncscope_relay_target_last_scrape_timestamp_seconds",
        "When the relay target was last scraped (Unix seconds).",
    );
    let mut state = Family::gauge(
        "syncscope_relay_state",
        "1 for a relay's current state as `syncscope relays` shows it (state, connection and health labels).",
    );
    let mut streak = Family::gauge(
        "syncscope_relay_failure_streak",
        "Consecutive failed connection attempts of the relay.",
    );
    let mut flapping = Family::gauge(
        "syncscope_relay_flapping",
        "1 when the relay is flapping (connection lost and regained repeatedly).",
    );
    let mut since = Family::gauge(
        "syncscope_relay_state_seconds",
        "Seconds the relay has been in its current state.",
    );
    let mut connection = Family::gauge(
        "syncscope_relay_connection_code",
        "The relay's last ngit_sync_relay_connected code (0 Disconnected, 1 Connecting, 2 Syncing, 3 Connected, 4 ConnectedHistoricSyncFailures, 5 Disconnecting).",
    );
    let mut health = Family::gauge(
        "syncscope_relay_health_code",
        "The relay's last ngit_sync_relay_status code (1 Healthy, 2 Disconnected, 3 Degraded, 4 Dead, 5 RateLimited, 6 PolicyLimited).",
    );
    for t in targets {
        let lt = [("target", t.target.as_str())];
        up.sample(&lt, b(t.up && t.last_scrape.is_some()));
        if let Some(s) = t.last_scrape {
            last.sample(&lt, s.div_euclid(1_000_000_000) as f64);
        }
        // As `relays` without --all: tracked, or gone within the last hour.
        for (name, s) in t.relays.iter().filter(|(_, s)| s.listed_at(now_ns)) {
            let l = [("target", t.target.as_str()), ("relay", name.as_str())];
            let conn = s.connection.map_or("-".into(), |c| c.name());
            let heal = s.health.map_or("-".into(), |h| h.name());
            state.sample(
                &[
                    l[0],
                    l[1],
                    ("state", s.display().label()),
                    ("connection", &conn),
                    ("health", &heal),
                ],
                1.0,
            );
            streak.sample(&l, s.streak as f64);
            flapping.sample(&l, b(s.flapping));
            since.sample(&l, ((now_ns - s.since()).max(0) / 1_000_000_000) as f64);
            if let Some(c) = s.connection {
                connection.sample(&l, c.code() as f64);
            }
            if let Some(h) = s.health {
                health.sample(&l, h.code() as f64);
            }
        }
    }
    for f in [
        &up,
        &last,
        &state,
        &streak,
        &flapping,
        &since,
        &connection,
        &health,
    ] {
        f.write_to(out);
    }
}

fn ci(out: &mut String, s: &Snapshot) {
    let mut night = Family::gauge(
        "syncscope_ci_last_night_info",
        "The night (YYYY-MM-DD, the date of its morning) the CI metrics describe.",
    );
    let mut result = Family::gauge(
        "syncscope_ci_night_result",
        "1 for the result of the project's nightly pipelines on the last night (failed, passed_with_warnings, passed, other, no_run).",
    );
    let mut new = Family::gauge(
        "syncscope_ci_new_patterns",
        "Error patterns first seen on the last night that hit the project's failed jobs.",
    );
    if let Some(n) = &s.ci_night {
        night.sample(&[("night", n)], 1.0);
    }
    for (project, cell, n_new) in &s.ci {
        for c in CELLS {
            result.sample(
                &[("project", project), ("result", cell_label(c))],
                b(c == *cell),
            );
        }
        new.sample(&[("project", project)], f64::from(*n_new));
    }
    for f in [&night, &result, &new] {
        f.write_to(out);
    }
}

fn sources(out: &mut String, rows: &[SourceOverview], now: i64) {
    let mut state = Family::gauge(
        "syncscope_source_state",
        "1 for the source's state as last recorded (ok, waiting, backoff, fault, done).",
    );
    let mut lag = Family::gauge(
        "syncscope_source_lag_seconds",
        "Seconds since the source's last committed batch.",
    );
    let mut last = Family::gauge(
        "syncscope_source_last_batch_timestamp_seconds",
        "When the source's last batch was committed (Unix seconds).",
    );
    let mut rejects = Family::gauge(
        "syncscope_source_rejects",
        "Records of the source that could not be read, within the store's retention.",
    );
    let mut stored = Family::counter(
        "syncscope_source_events_stored_total",
        "Events of the source stored, within the store's retention.",
    );
    let mut dups = Family::counter(
        "syncscope_source_events_already_stored_total",
        "Events of the source read again and not stored twice, within the store's retention.",
    );
    for r in rows {
        let l = [("source", r.source.as_str())];
        if let Some(st) = r.state.as_deref() {
            for known in SOURCE_STATES {
                state.sample(&[l[0], ("state", known)], b(st == known));
            }
            if !SOURCE_STATES.contains(&st) {
                state.sample(&[l[0], ("state", st)], 1.0);
            }
        }
        if let Some(t) = r.last_batch {
            lag.sample(&l, (now - t).max(0) as f64);
            last.sample(&l, t as f64);
        }
        rejects.sample(&l, r.rejected as f64);
        stored.sample(&l, r.inserted as f64);
        dups.sample(&l, r.duplicates as f64);
    }
    for f in [&state, &lag, &last, &rejects, &stored, &dups] {
        f.write_to(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::relay::{Connection, Health, RelayReading};
    use crate::sources::ngit::exposition::{parse, Exposition};

    const T0: i64 = 1_800_000_000;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_nanos(secs * 1_000_000_000)
    }

    fn one(e: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
        let v: Vec<f64> = e
            .family(name)
            .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .map(|s| s.value)
            .collect();
        assert_eq!(v.len(), 1, "{name} {labels:?}");
        v[0]
    }

    fn snapshot() -> Snapshot {
        let mut t = TargetState::new("http://relay-host:9090/metrics");
        let reading = |relay: &str, h: Health, fail: u64| RelayReading {
            relay: relay.into(),
            connection: Some(Connection::Disconnected),
            health: Some(h),
            ok: 1,
            fail,
        };
        t.observe(ts(T0), &[reading("wss://a\"x\x1b[2J", Health::Healthy, 0)]);
        t.observe(
            ts(T0 + 60),
            &[reading("wss://a\"x\x1b[2J", Health::Dead, 3)],
        );
        let mut down = TargetState::new("http://down:1/metrics");
        down.scrape_failed(ts(T0), "connection refused");
        Snapshot {
            refs: Vec::new(),
            targets: vec![t, down],
            unreadable: vec!["ngit-metrics:http://x: bad json".into()],
            ci_night: Some("2027-01-15".into()),
            ci: vec![
                ("group/app".into(), NightCell::Failed, 2),
                ("group/lib".into(), NightCell::NoRun, 0),
            ],
            sources: vec![
                SourceOverview {
                    source: "gerrit-events:/var/log/x".into(),
                    state: Some("fault".into()),
                    message: String::new(),
                    since: Some(T0),
                    last_batch: Some(T0 - 30),
                    inserted: 12,
                    duplicates: 3,
                    rejected: 2,
                    checkpoint: None,
                },
                SourceOverview {
                    source: "never".into(),
                    state: None,
                    message: String::new(),
                    since: None,
                    last_batch: None,
                    inserted: 0,
                    duplicates: 0,
                    rejected: 0,
                    checkpoint: None,
                },
            ],
        }
    }

    #[test]
    fn relays_ci_and_sources_render_what_the_commands_show() {
        let text = render(&snapshot(), ts(T0 + 100));
        assert!(!text.contains('\x1b'), "{text}");
        let e = parse(&text);
        assert!(e.errors.is_empty(), "{:?}\n{text}", e.errors);
        for s in &e.samples {
            assert!(
                e.types.contains_key(&s.name) && e.help.contains_key(&s.name),
                "{}",
                s.name
            );
        }
        let target = [("target", "http://relay-host:9090/metrics")];
        assert_eq!(one(&e, "syncscope_relay_target_up", &target), 1.0);
        assert_eq!(one(&e, "syncscope_relay_targets_unreadable", &[]), 1.0);
        assert_eq!(
            one(
                &e,
                "syncscope_relay_target_up",
                &[("target", "http://down:1/metrics")]
            ),
            0.0
        );
        let relay: Vec<_> = e.family("syncscope_relay_state").collect();
        assert_eq!(relay.len(), 1, "{text}");
        let name = relay[0].label("relay").unwrap().to_string();
        assert!(
            name.starts_with("wss://a\"x") && !name.contains('\x1b'),
            "{name:?}"
        );
        assert_eq!(relay[0].label("state"), Some("DEAD"));
        assert_eq!(relay[0].label("health"), Some("Dead"));
        let l = [("relay", name.as_str())];
        assert_eq!(one(&e, "syncscope_relay_health_code", &l), 4.0);
        assert_eq!(one(&e, "syncscope_relay_connection_code", &l), 0.0);
        assert_eq!(one(&e, "syncscope_relay_state_seconds", &l), 40.0);
        let streak = one(&e, "syncscope_relay_failure_streak", &l);
        let t = &snapshot().targets[0];
        let s = &t.relays.values().next().unwrap();
        assert_eq!(streak, s.streak as f64);
        assert_eq!(
            one(&e, "syncscope_relay_flapping", &l),
            if s.flapping { 1.0 } else { 0.0 }
        );

        assert_eq!(
            one(
                &e,
                "syncscope_ci_last_night_info",
                &[("night", "2027-01-15")]
            ),
            1.0
        );
        let app = ("project", "group/app");
        assert_eq!(
            one(
                &e,
                "syncscope_ci_night_result",
                &[app, ("result", "failed")]
            ),
            1.0
        );
        assert_eq!(
            one(
                &e,
                "syncscope_ci_night_result",
                &[app, ("result", "passed")]
            ),
            0.0
        );
        assert_eq!(
            one(
                &e,
                "syncscope_ci_night_result",
                &[("project", "group/lib"), ("result", "no_run")]
            ),
            1.0
        );
        assert_eq!(one(&e, "syncscope_ci_new_patterns", &[app]), 2.0);

        let src = ("source", "gerrit-events:/var/log/x");
        assert_eq!(
            one(&e, "syncscope_source_state", &[src, ("state", "fault")]),
            1.0
        );
        assert_eq!(
            one(&e, "syncscope_source_state", &[src, ("state", "ok")]),
            0.0
        );
        assert_eq!(one(&e, "syncscope_source_lag_seconds", &[src]), 130.0);
        assert_eq!(one(&e, "syncscope_source_rejects", &[src]), 2.0);
        assert_eq!(
            one(&e, "syncscope_source_events_stored_total", &[src]),
            12.0
        );
        assert_eq!(e.types["syncscope_source_events_stored_total"], "counter");
        // A source that never reported has no state and no lag, but is listed.
        assert_eq!(
            e.family("syncscope_source_state")
                .filter(|s| s.label("source") == Some("never"))
                .count(),
            0
        );
        assert_eq!(
            one(
                &e,
                "syncscope_source_events_stored_total",
                &[("source", "never")]
            ),
            0.0
        );
    }

    #[test]
    fn an_empty_store_renders_an_empty_page() {
        let s = Snapshot {
            refs: Vec::new(),
            targets: Vec::new(),
            unreadable: Vec::new(),
            ci_night: None,
            ci: Vec::new(),
            sources: Vec::new(),
        };
        assert_eq!(render(&s, ts(T0)), "");
    }
}
