//! `gerrit-rest:URL`: polls the replication-status plugin's REST endpoint
//! (`GET /a/projects/{project}/remotes/{remote}/replication-status`) every scrape interval, with
//! HTTP basic auth from `SYNCSCOPE_GERRIT_USER` + `SYNCSCOPE_GERRIT_PASSWORD` or a file named by
//! `SYNCSCOPE_GERRIT_CREDENTIALS` (`user:password`; never argv, never stored, never printed).
//! Each ref whose status or time changed since the last poll is an event; the payload also
//! fills the ref state where the event streams left it older or missing (events lost while a
//! stream was down). The answer names no node: with `,instance=ID` (`none`: the node without an
//! id) it is that node's and applies only to its rows; without, it applies to the ref on every
//! instance that has it (a guess, see the writer). 401/403/404 and other failures are the source's fault status, with
//! Gerrit's own message, and the source keeps polling.

use std::collections::BTreeMap;
use std::time::Duration;

use color_eyre::eyre::{bail, eyre, Result};
use serde::{Deserialize, Serialize};

use super::stream::epoch_time;
use crate::ingest::SourceCtx;
use crate::model::gerrit::{Direction, RefStatus, RefUpdate, UpdateKind, NO_INSTANCE, SOURCE};
use crate::model::{Event, Reject, Severity, Timestamp};
use crate::sources::client::{self, Client};
use crate::sources::lines::Pending;
use crate::sources::poll::{self, Every, Polled};
use crate::sources::Source;

const TIMEOUT: Duration = Duration::from_secs(20);
/// A bigger answer is not one project's replication status (100,000 refs are ~15 MiB).
const MAX_ANSWER: usize = 64 << 20;

/// `user:password` for basic auth, from the environment or a file it names.
fn credentials() -> Result<Option<(String, String)>> {
    if let (Ok(u), Ok(p)) = (
        std::env::var("SYNCSCOPE_GERRIT_USER"),
        std::env::var("SYNCSCOPE_GERRIT_PASSWORD"),
    ) {
        return Ok(Some((u, p)));
    }
    let Some(path) = std::env::var_os("SYNCSCOPE_GERRIT_CREDENTIALS") else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        eyre!(
            "cannot read the Gerrit credentials file {}: {e}",
            std::path::Path::new(&path).display()
        )
    })?;
    let line = text.lines().next().unwrap_or_default().trim();
    match line.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok(Some((u.to_string(), p.to_string()))),
        _ => bail!(
            "the Gerrit credentials file {} must hold user:password on its first line",
            std::path::Path::new(&path).display()
        ),
    }
}

/// The endpoint's payload (extra fields ignored).
#[derive(Debug, Deserialize)]
struct Payload {
    project: Option<String>,
    remotes: BTreeMap<String, RemotePayload>,
}

#[derive(Debug, Deserialize)]
struct RemotePayload {
    #[serde(default)]
    status: BTreeMap<String, RefPayload>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct RefPayload {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    status: String,
    when: i64,
}

/// What the last poll saw, kept as the source's checkpoint.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Seen {
    refs: BTreeMap<String, RefPayload>,
}

/// Reads a payload (with or without Gerrit's `)]}'` prefix).
fn parse_payload(body: &str) -> Result<Payload, String> {
    let json = body.trim_start().strip_prefix(")]}'").unwrap_or(body);
    serde_json::from_str(json).map_err(|e| format!("not a replication-status payload: {e}"))
}

/// The node named by `,instance=TEXT`: `none` is the node without an id.
pub fn answering_instance(text: &str) -> Option<String> {
    (text != NO_INSTANCE).then(|| text.to_string())
}

pub struct RestSource {
    url: String,
    /// The node whose plugin answers (`,instance=`): Some(None) is the node without an id;
    /// None, not said (the answer applies to every instance that has the ref).
    instance: Option<Option<String>>,
}

impl RestSource {
    pub fn new(url: String, instance: Option<Option<String>>) -> Self {
        RestSource { url, instance }
    }

    /// A ref update from this answer: the named node's, or any instance's.
    fn update(&self, kind: UpdateKind, project: &str, remote: &str, r: &str) -> RefUpdate {
        RefUpdate {
            instance: self.instance.clone().flatten(),
            only_instance: self.instance.is_some(),
            kind,
            project: project.to_string(),
            remote: remote.to_string(),
            ref_name: r.to_string(),
            direction: Direction::Push,
            status: None,
            when: 0,
            detail: None,
            newer_only: false,
        }
    }

    /// What one answer changes since `seen` (the last answer's refs): an event and a ref
    /// update for each ref whose status is new, and one for each ref no longer listed for a
    /// remote the answer still answers for (retired at `now`); and the refs seen now.
    fn changes(
        &self,
        payload: &Payload,
        seen: &Seen,
        now: Timestamp,
    ) -> (Vec<(Event, RefUpdate)>, BTreeMap<String, RefPayload>) {
        let project = payload.project.clone().unwrap_or_default();
        let mut out = Vec::new();
        let mut now_seen = BTreeMap::new();
        for (remote, rp) in &payload.remotes {
            for (r, p) in &rp.status {
                let key = format!("{remote}\u{1f}{r}");
                let before = seen.refs.get(&key);
                if before != Some(p) {
                    let update = RefUpdate {
                        direction: if p.kind.as_deref() == Some("PULL") {
                            Direction::Pull
                        } else {
                            Direction::Push
                        },
                        status: Some(RefStatus::parse(&p.status)),
                        when: epoch_time(p.when).map_or(p.when, |t| t.0),
                        newer_only: true,
                        ..self.update(UpdateKind::Replication, &project, remote, r)
                    };
                    let mut e = ref_event(&project, remote, r, p, before);
                    e.device_id = update.instance.clone();
                    out.push((e, update));
                }
                now_seen.insert(key, p.clone());
            }
        }
        // A ref the answer no longer lists (for a remote it still answers for) is
        // gone from the repository: retired, as the plugin leaves it out.
        for (key, p) in &seen.refs {
            let Some((remote, r)) = key.split_once('\u{1f}') else {
                continue;
            };
            if now_seen.contains_key(key) || !payload.remotes.contains_key(remote) {
                continue;
            }
            let mut e = Event::new(
                now,
                SOURCE,
                "rest_ref_retired",
                "replication",
                Severity::Info,
                format!(
                    "{project} {r} -> {remote}: no longer in the replication-status REST answer (the ref was deleted; it was {})",
                    p.status
                ),
            );
            e.peer_device_id = Some(remote.to_string());
            e.subject = Some(r.to_string());
            let retire = RefUpdate {
                when: now.as_nanos().div_euclid(1_000_000_000),
                ..self.update(UpdateKind::RefDeleted, &project, remote, r)
            };
            e.device_id = retire.instance.clone();
            out.push((e, retire));
        }
        (out, now_seen)
    }

    fn poll(
        &self,
        client: &Client,
        auth: &Option<(String, String)>,
    ) -> Result<String, (String, Option<Vec<u8>>)> {
        let mut req = client.get(&self.url).header("Accept", "application/json");
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        // reqwest's errors name the URL, never the credentials.
        let resp = req
            .send()
            .map_err(|e| (client::describe(e, TIMEOUT), None))?;
        if let Some(why) = client::unfollowed_redirect(&resp) {
            return Err((why, None));
        }
        let status = resp.status();
        let body = client::read_body(resp, MAX_ANSWER, TIMEOUT)
            .map_err(|e| (format!("cannot read the answer: {e}"), None))?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            let msg = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("");
            let hint = match status.as_u16() {
                401 => " (check SYNCSCOPE_GERRIT_USER / SYNCSCOPE_GERRIT_PASSWORD or SYNCSCOPE_GERRIT_CREDENTIALS)",
                403 => " (the account needs Administrate Server or project owner)",
                404 => " (unknown project, or the replication-status plugin is not installed)",
                _ => "",
            };
            return Err((
                format!(
                    "HTTP {status}: {}{hint}",
                    crate::sanitize::one_line(&msg.chars().take(200).collect::<String>())
                ),
                Some(body.to_vec()),
            ));
        }
        Ok(text)
    }
}

fn ref_event(
    project: &str,
    remote: &str,
    r: &str,
    p: &RefPayload,
    before: Option<&RefPayload>,
) -> Event {
    let status = RefStatus::parse(&p.status);
    let severity = match status {
        RefStatus::Failed | RefStatus::Unknown => Severity::Warning,
        RefStatus::Scheduled => Severity::Debug,
        _ => Severity::Info,
    };
    // The summary holds only what the payload says (not what an earlier poll saw), so the same
    // answer polled again after a lost checkpoint is the same event.
    let (_, nanos) = epoch_time(p.when).unwrap_or((0, 0));
    let mut e = Event::new(
        Timestamp::from_nanos(nanos),
        SOURCE,
        "rest_ref_status",
        "replication",
        severity,
        format!(
            "{project} {r} -> {remote}: {} per the replication-status REST API",
            p.status
        ),
    );
    let mut details = serde_json::json!(p);
    if let Some(b) = before {
        details["was"] = serde_json::json!(b.status);
    }
    e.details = Some(details.to_string());
    e.peer_device_id = Some(remote.to_string());
    e.subject = Some(r.to_string());
    e
}

impl Source for RestSource {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        let auth = credentials()?;
        let client = client::build(&self.url, TIMEOUT).map_err(|e| eyre!(e))?;
        let mut seen: Seen = ctx
            .checkpoint
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let poll_once = |ctx: &SourceCtx| -> Result<Polled> {
            let mut pending = Pending::new();
            let polled = match self
                .poll(&client, &auth)
                .and_then(|b| parse_payload(&b).map_err(|e| (e, Some(b.into_bytes()))))
            {
                Ok(payload) => {
                    let (changes, now_seen) = self.changes(&payload, &seen, Timestamp::now());
                    for (e, update) in changes {
                        pending.push_with_updates(e, vec![update]);
                    }
                    seen.refs = now_seen;
                    Polled::ok("")
                }
                Err((reason, body)) => {
                    if let Some(b) = body {
                        pending.reject(Reject::new(self.url.clone(), reason.clone(), &b));
                    }
                    // With --once, the ingest fails naming the source (Gerrit's message kept).
                    Polled::fatal(reason)
                }
            };
            let checkpoint = serde_json::to_string(&seen).map_err(|e| eyre!("{e}"))?;
            pending.send(ctx, Some(checkpoint))?;
            Ok(polled)
        };
        poll::run(ctx, &Every::new(ctx.scrape_interval), poll_once)
    }
}

/// For the fuzz target `gerrit_rest`: two answers polled one after the other, as the source
/// reads them (the second's changes against the first's refs, through the saved checkpoint).
/// The events and ref updates of each, or why an answer is not one.
#[doc(hidden)]
pub fn fuzz_answers(first: &str, second: &str) -> Vec<Result<Vec<(Event, RefUpdate)>, String>> {
    let source = RestSource::new(String::new(), None);
    let now = Timestamp::from_nanos(1_700_000_000_000_000_000);
    let mut seen = Seen::default();
    let mut out = Vec::new();
    for body in [first, second] {
        out.push(parse_payload(body).map(|payload| {
            let (changes, now_seen) = source.changes(&payload, &seen, now);
            seen.refs = now_seen;
            // Through the checkpoint text, as a restart reads it.
            seen = serde_json::to_string(&seen)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            changes
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_with_and_without_the_xssi_prefix() {
        let raw = ")]}'\n{\"remotes\":{\"https://github.com/o/t.git\":{\"status\":{\"refs/heads/main\":{\"type\":\"PUSH\",\"status\":\"FAILED\",\"when\":1741944656}}}},\"status\":\"FAILED\",\"project\":\"tools/build\"}";
        let p = parse_payload(raw).unwrap();
        assert_eq!(p.project.as_deref(), Some("tools/build"));
        let r = &p.remotes["https://github.com/o/t.git"].status["refs/heads/main"];
        assert_eq!(
            (r.status.as_str(), r.when, r.kind.as_deref()),
            ("FAILED", 1741944656, Some("PUSH"))
        );
        // stable-3.2..3.4: no "type".
        let old = parse_payload("{\"remotes\":{\"m:29418\":{\"status\":{\"refs/heads/a\":{\"status\":\"SUCCEEDED\",\"when\":1}}}},\"status\":\"OK\",\"project\":\"p\"}").unwrap();
        assert_eq!(old.remotes["m:29418"].status["refs/heads/a"].kind, None);
        assert!(parse_payload("<html>Bad gateway</html>")
            .unwrap_err()
            .contains("not a replication-status payload"));
    }
}
