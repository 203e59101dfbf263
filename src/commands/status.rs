//! `syncscope status`: Gerrit replication per (project, remote) in the replication-status
//! plugin's own payload, with what the plugin cannot tell next to its fields (retrying, stuck,
//! attempts, last error, last success); a table grouped by remote, worst first.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use color_eyre::eyre::Result;
use serde_json::{json, Map, Value};

use super::{age, Outcome};
use crate::cli::{RejectFormat, StatusArgs};
use crate::config::Config;
use crate::model::gerrit::{RefState, RefStatus, NO_INSTANCE};
use crate::sanitize::one_line;
use crate::store;

const DEFAULT_STUCK_SECS: i64 = 3600;

/// One (project, remote, instance)'s payload, as `GET .../remotes/{remote}/replication-status`
/// on that instance answers: only refs that exist on the primary; `instance` says whose answer
/// it is (null: the node without an id) and `deletions_not_replicated` (when there are any)
/// lists refs deleted on the primary whose deletion push failed, which the plugin leaves out.
fn payload(
    project: &str,
    remote: &str,
    instance: Option<&str>,
    refs: &[&RefState],
    now: i64,
    stuck_after: i64,
) -> Value {
    let mut status = Map::new();
    let mut not_deleted = Map::new();
    for r in refs {
        let v = json!({
            "type": r.direction.as_str(),
            "status": r.status,
            "when": r.when,
            "retrying": r.retrying,
            "stuck": r.stuck(now, stuck_after),
            "attempts": r.attempts,
            "last_error": r.last_error,
            "last_success": r.last_success,
        });
        if r.reported() {
            status.insert(r.ref_name.clone(), v);
        } else if r.deletion_not_replicated() {
            let mut v = v;
            v["deleted"] = json!(r.deleted);
            not_deleted.insert(r.ref_name.clone(), v);
        }
    }
    let mut out = json!({
        "project": project,
        "remotes": { remote: { "status": status } },
        "status": if failed(refs) { "FAILED" } else { "OK" },
        "instance": instance,
    });
    if !not_deleted.is_empty() {
        out["deletions_not_replicated"] = Value::Object(not_deleted);
    }
    out
}

/// The plugin's overall FAILED: a reported ref that is FAILED or UNKNOWN.
fn failed(refs: &[&RefState]) -> bool {
    refs.iter()
        .any(|r| r.reported() && RefStatus::parse(&r.status).is_failure())
}

/// Worst first: failures, then retrying or stuck, then the rest.
fn badness(r: &RefState, now: i64, stuck_after: i64) -> u8 {
    if RefStatus::parse(&r.status).is_failure() {
        3
    } else if r.retrying || r.stuck(now, stuck_after) {
        2
    } else if r.status == RefStatus::Scheduled.as_str() {
        1
    } else {
        0
    }
}

/// Exit 1 when anything shown is FAILED, so cron and monitoring can call it.
pub fn run(args: StatusArgs, config: &Config, db: std::path::PathBuf) -> Result<Outcome> {
    let reader = store::open_reader(&db)?;
    let mut states = reader.ref_states(args.project.as_deref(), args.remote.as_deref())?;
    let instance = args.instance.clone().or_else(|| {
        config
            .settings()
            .get::<crate::sources::gerrit::config::GerritConfig>()
            .instance_id
            .clone()
    });
    if let Some(i) = &instance {
        states.retain(|s| s.instance_name() == i);
    }
    // Deleted refs whose deletion replicated are history: not in the answer, not shown.
    states.retain(|s| s.reported() || s.deletion_not_replicated());
    let now = crate::model::now_utc().timestamp();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Some(p) = args.project.as_deref().filter(|_| states.is_empty()) {
        if let Some(at) = reader.project_deleted(p)? {
            match args.format {
                RejectFormat::Json => {
                    let v = json!({"project": p, "status": "DELETED", "deleted": at, "remotes": {}});
                    serde_json::to_writer_pretty(&mut out, &v)?;
                    writeln!(out)?;
                }
                RejectFormat::Table => writeln!(
                    out,
                    "project {} was deleted: its deletion was replicated at {} ({} ago); its refs are history",
                    one_line(p),
                    crate::model::format_rfc3339(crate::model::Timestamp::from_nanos(
                        at.saturating_mul(1_000_000_000)
                    )),
                    age(now - at)
                )?,
            }
            return Ok(Outcome::Ok);
        }
    }
    let stuck_after = args.stuck_after.unwrap_or(DEFAULT_STUCK_SECS);
    let instances: BTreeSet<&str> = states.iter().map(RefState::instance_name).collect();
    let several = instances.len() > 1;
    // (remote, project, instance) -> refs.
    type Group<'a> = (&'a str, &'a str, Option<&'a str>);
    let mut pairs: BTreeMap<Group<'_>, Vec<&RefState>> = BTreeMap::new();
    for s in &states {
        pairs
            .entry((s.remote.as_str(), s.project.as_str(), s.instance.as_deref()))
            .or_default()
            .push(s);
    }
    let any_failed = pairs.values().any(|refs| failed(refs));
    let asked = |i: Option<&str>| -> Option<String> {
        match &instance {
            Some(x) if x == NO_INSTANCE => None,
            Some(x) => Some(x.clone()),
            None => i.map(String::from),
        }
    };
    match args.format {
        RejectFormat::Json => {
            let v = match (&args.project, &args.remote) {
                // One pair: the plugin's answer (also for a pair it has never heard of); one per
                // instance when several answer and none was asked for.
                (Some(p), Some(r)) => {
                    let mut answers: Vec<Value> = pairs
                        .iter()
                        .map(|((_, _, i), refs)| {
                            payload(p, r, asked(*i).as_deref(), refs, now, stuck_after)
                        })
                        .collect();
                    match answers.len() {
                        0 => payload(p, r, asked(None).as_deref(), &[], now, stuck_after),
                        1 => answers.remove(0),
                        _ => Value::Array(answers),
                    }
                }
                _ => {
                    let mut list: Vec<(&Group<'_>, &Vec<&RefState>)> = pairs.iter().collect();
                    list.sort_by_key(|(k, refs)| (!failed(refs), **k));
                    Value::Array(
                        list.into_iter()
                            .map(|((r, p, i), refs)| {
                                payload(p, r, asked(*i).as_deref(), refs, now, stuck_after)
                            })
                            .collect(),
                    )
                }
            };
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        RejectFormat::Table => {
            if pairs.is_empty() {
                match &instance {
                    Some(i) => writeln!(
                        out,
                        "no replication state of instance {} in {}",
                        one_line(i),
                        db.display()
                    )?,
                    None => writeln!(
                        out,
                        "no replication state in {} (ingest --source gerrit-events:PATH)",
                        db.display()
                    )?,
                }
            }
            let mut remotes: BTreeMap<&str, Vec<&RefState>> = BTreeMap::new();
            for s in &states {
                remotes.entry(s.remote.as_str()).or_default().push(s);
            }
            let mut order: Vec<(&str, Vec<&RefState>)> = remotes.into_iter().collect();
            order.sort_by_key(|(r, refs)| (!failed(refs), *r));
            if several {
                writeln!(
                    out,
                    "  {:<13} {:<12} {:<4} {:<28} {:<40} {:>10}",
                    "STATUS", "INSTANCE", "TYPE", "PROJECT", "REF", "WHEN"
                )?;
            }
            for (remote, mut refs) in order {
                refs.sort_by(|a, b| {
                    a.deleted
                        .is_some()
                        .cmp(&b.deleted.is_some())
                        .then(badness(b, now, stuck_after).cmp(&badness(a, now, stuck_after)))
                        .then(a.project.cmp(&b.project))
                        .then(a.ref_name.cmp(&b.ref_name))
                        .then(a.instance.cmp(&b.instance))
                });
                let shown: Vec<&&RefState> = refs.iter().filter(|r| r.reported()).collect();
                let n_failed = shown
                    .iter()
                    .filter(|r| RefStatus::parse(&r.status).is_failure())
                    .count();
                let retrying = shown.iter().filter(|r| r.retrying).count();
                let stuck = shown.iter().filter(|r| r.stuck(now, stuck_after)).count();
                let not_deleted = refs.len() - shown.len();
                let apart = if not_deleted > 0 {
                    format!(", {not_deleted} deletions not replicated")
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "{}  {}  {} refs, {n_failed} failed, {retrying} retrying, {stuck} stuck{apart}",
                    if n_failed > 0 {
                        "FAILED "
                    } else if not_deleted > 0 {
                        "WARNING"
                    } else {
                        "OK     "
                    },
                    one_line(remote),
                    shown.len()
                )?;
                for r in refs {
                    let mut flags = Vec::new();
                    if r.retrying {
                        flags.push(format!("retrying (attempt {})", r.attempts));
                    }
                    if r.stuck(now, stuck_after) {
                        flags.push(format!(
                            "stuck {}",
                            age(now - r.scheduled_since.unwrap_or(now))
                        ));
                    }
                    if let Some(at) = r.deleted {
                        flags.push(format!(
                            "deletion not replicated: deleted on the primary {} ago",
                            age(now - at)
                        ));
                    }
                    if let Some(e) = r.last_error.as_deref().filter(|_| r.status != "SUCCEEDED") {
                        flags.push(format!("error {}", one_line(e)));
                    }
                    let ok = r
                        .last_success
                        .map_or("never".to_string(), |t| format!("{} ago", age(now - t)));
                    let who = if several {
                        format!("{:<12} ", one_line(r.instance_name()))
                    } else {
                        String::new()
                    };
                    let status = if r.reported() {
                        r.status.as_str()
                    } else {
                        "WARNING"
                    };
                    writeln!(
                        out,
                        "  {status:<13} {who}{:<4} {:<28} {:<40} {:>6} ago  last ok {ok}  {}",
                        r.direction.as_str(),
                        one_line(&r.project),
                        one_line(&r.ref_name),
                        age(now - r.when),
                        flags.join(", ")
                    )?;
                }
            }
        }
    }
    Ok(if any_failed {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}
