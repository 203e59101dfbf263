//! `syncscope status`: Gerrit replication per (project, remote) in the replication-status
//! plugin's own payload, with what the plugin cannot tell next to its fields (retrying, stuck,
//! attempts, last error, last success); a table grouped by remote, worst first.

use std::collections::BTreeMap;
use std::io::Write;

use color_eyre::eyre::Result;
use serde_json::{json, Map, Value};

use super::{age, Outcome};
use crate::cli::{RejectFormat, StatusArgs};
use crate::model::gerrit::{RefState, RefStatus};
use crate::sanitize::one_line;
use crate::store;

const DEFAULT_STUCK_SECS: i64 = 3600;

/// One project/remote pair's payload, as `GET .../remotes/{remote}/replication-status` answers.
fn payload(project: &str, remote: &str, refs: &[&RefState], now: i64, stuck_after: i64) -> Value {
    let mut status = Map::new();
    for r in refs {
        status.insert(
            r.ref_name.clone(),
            json!({
                "type": r.direction.as_str(),
                "status": r.status,
                "when": r.when,
                "retrying": r.retrying,
                "stuck": r.stuck(now, stuck_after),
                "attempts": r.attempts,
                "last_error": r.last_error,
                "last_success": r.last_success,
            }),
        );
    }
    json!({
        "project": project,
        "remotes": { remote: { "status": status } },
        "status": if failed(refs) { "FAILED" } else { "OK" },
    })
}

fn failed(refs: &[&RefState]) -> bool {
    refs.iter()
        .any(|r| RefStatus::parse(&r.status).is_failure())
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
pub fn run(args: StatusArgs, db: std::path::PathBuf) -> Result<Outcome> {
    let reader = store::open_reader(&db)?;
    let states = reader.ref_states(args.project.as_deref(), args.remote.as_deref())?;
    let now = chrono::Utc::now().timestamp();
    let stuck_after = args.stuck_after.unwrap_or(DEFAULT_STUCK_SECS);
    // (remote, project) -> refs.
    let mut pairs: BTreeMap<(&str, &str), Vec<&RefState>> = BTreeMap::new();
    for s in &states {
        pairs
            .entry((s.remote.as_str(), s.project.as_str()))
            .or_default()
            .push(s);
    }
    let any_failed = pairs.values().any(|refs| failed(refs));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        RejectFormat::Json => {
            let v = match (&args.project, &args.remote) {
                // One pair: the plugin's answer, also for a pair it has never heard of.
                (Some(p), Some(r)) => {
                    let refs = pairs
                        .get(&(r.as_str(), p.as_str()))
                        .cloned()
                        .unwrap_or_default();
                    payload(p, r, &refs, now, stuck_after)
                }
                _ => {
                    let mut list: Vec<(&(&str, &str), &Vec<&RefState>)> = pairs.iter().collect();
                    list.sort_by_key(|(k, refs)| (!failed(refs), **k));
                    Value::Array(
                        list.into_iter()
                            .map(|((r, p), refs)| payload(p, r, refs, now, stuck_after))
                            .collect(),
                    )
                }
            };
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        RejectFormat::Table => {
            if pairs.is_empty() {
                writeln!(
                    out,
                    "no replication state in {} (ingest --source gerrit-events:PATH)",
                    db.display()
                )?;
            }
            let mut remotes: BTreeMap<&str, Vec<&RefState>> = BTreeMap::new();
            for s in &states {
                remotes.entry(s.remote.as_str()).or_default().push(s);
            }
            let mut order: Vec<(&str, Vec<&RefState>)> = remotes.into_iter().collect();
            order.sort_by_key(|(r, refs)| (!failed(refs), *r));
            for (remote, mut refs) in order {
                refs.sort_by(|a, b| {
                    badness(b, now, stuck_after)
                        .cmp(&badness(a, now, stuck_after))
                        .then(a.project.cmp(&b.project))
                        .then(a.ref_name.cmp(&b.ref_name))
                });
                let n_failed = refs
                    .iter()
                    .filter(|r| RefStatus::parse(&r.status).is_failure())
                    .count();
                let retrying = refs.iter().filter(|r| r.retrying).count();
                let stuck = refs.iter().filter(|r| r.stuck(now, stuck_after)).count();
                writeln!(
                    out,
                    "{}  {}  {} refs, {n_failed} failed, {retrying} retrying, {stuck} stuck",
                    if n_failed > 0 { "FAILED" } else { "OK    " },
                    one_line(remote),
                    refs.len()
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
                    if let Some(e) = r.last_error.as_deref().filter(|_| r.status != "SUCCEEDED") {
                        flags.push(format!("error {}", one_line(e)));
                    }
                    let ok = r
                        .last_success
                        .map_or("never".to_string(), |t| format!("{} ago", age(now - t)));
                    writeln!(
                        out,
                        "  {:<13} {:<4} {:<28} {:<40} {:>6} ago  last ok {ok}  {}",
                        r.status,
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
