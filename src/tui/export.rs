//! `:w FILE`: the rows the pane shows, with the filters and the sort in force, written as
//! JSON, CSV or Markdown (by the file's extension). Building the table is pure (from the
//! state, like `update`); writing it is the loop's, atomically (a temporary file renamed).

use std::io::Write;
use std::path::Path;

use color_eyre::eyre::{bail, Result, WrapErr};

use super::app::{AppState, Drill};
use super::worker::ViewData;
use super::Pane;
use crate::model::{format_rfc3339, StoredEvent};
use crate::sanitize::one_line;

/// A table as written: the headers and each row's cells (whole, not cut to the screen).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// What the rows are, for the confirmation: `remotes`, `events (the loaded window)`.
    pub what: String,
}

fn table(headers: &[&str], rows: Vec<Vec<String>>, what: &str) -> Table {
    Table {
        headers: headers.iter().map(|h| h.to_string()).collect(),
        rows,
        what: what.to_string(),
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn events(rows: &[StoredEvent]) -> Table {
    table(
        &[
            "time",
            "source",
            "severity",
            "type",
            "subject",
            "summary",
            "correlation_id",
        ],
        rows.iter()
            .map(|e| {
                let ev = &e.event;
                vec![
                    format_rfc3339(ev.timestamp),
                    ev.source.clone(),
                    ev.severity.as_str().to_string(),
                    ev.event_type.clone(),
                    opt(ev.subject.as_deref()),
                    ev.summary.clone(),
                    opt(ev.correlation_id.as_deref()),
                ]
            })
            .collect(),
        "events (the loaded window)",
    )
}

/// The table of the view on screen, or None where there is none (one event's details).
pub fn table_of(state: &AppState) -> Option<Table> {
    match (state.top(), state.pane) {
        (Some(Drill::Event(_)), _) | (Some(Drill::CiJob { .. }), _) => None,
        (Some(Drill::Refs { remote }), _) => match state.data() {
            Some(ViewData::Refs { refs, .. }) => Some(table(
                &[
                    "remote",
                    "status",
                    "type",
                    "project",
                    "ref",
                    "when",
                    "retrying",
                    "attempts",
                    "last_success",
                    "last_error",
                ],
                refs.iter()
                    .map(|r| {
                        vec![
                            remote.clone(),
                            r.status.clone(),
                            r.direction.as_str().to_string(),
                            r.project.clone(),
                            r.ref_name.clone(),
                            r.when.to_string(),
                            r.retrying.to_string(),
                            r.attempts.to_string(),
                            opt(r.last_success),
                            opt(r.last_error.as_deref()),
                        ]
                    })
                    .collect(),
                "refs (the loaded page)",
            )),
            _ => None,
        },
        (Some(Drill::CiJobs { pattern }), _) => Some(table(
            &[
                "project",
                "pipeline",
                "job",
                "name",
                "stage",
                "failure_reason",
                "url",
            ],
            state
                .ci_jobs(pattern)
                .into_iter()
                .map(|(p, j)| {
                    vec![
                        p.project.clone(),
                        p.id.to_string(),
                        j.id.to_string(),
                        j.name.clone(),
                        opt(j.stage.as_deref()),
                        opt(j.failure_reason.as_deref()),
                        opt(j.web_url.as_deref()),
                    ]
                })
                .collect(),
            "failed jobs",
        )),
        (Some(_), _) | (None, Pane::Timeline) | (None, Pane::Session) => {
            state.window().map(|w| events(&w.rows))
        }
        (None, Pane::Overview) => Some(table(
            &["system", "state", "name", "detail"],
            state
                .overview_lines()
                .into_iter()
                .map(|l| vec![l.system.to_string(), l.state.to_string(), l.name, l.tail])
                .collect(),
            "state lines",
        )),
        (None, Pane::Replication) => Some(table(
            &[
                "status",
                "remote",
                "projects",
                "refs",
                "failed",
                "retrying",
                "scheduled",
                "last_event",
                "last_success",
                "last_error",
            ],
            state
                .remotes()
                .0
                .into_iter()
                .map(|r| {
                    let status = if r.is_failed() {
                        "FAILED"
                    } else if r.retrying > 0 {
                        "RETRYING"
                    } else {
                        "OK"
                    };
                    vec![
                        status.to_string(),
                        r.remote.clone(),
                        r.projects.to_string(),
                        r.refs.to_string(),
                        r.failed.to_string(),
                        r.retrying.to_string(),
                        r.scheduled.to_string(),
                        r.last_event.to_string(),
                        opt(r.last_success),
                        opt(r.last_error.as_deref()),
                    ]
                })
                .collect(),
            "remotes",
        )),
        (None, Pane::Relays) => {
            let Some(ViewData::Relays(d)) = state.data() else {
                return None;
            };
            let rows = state
                .relays()
                .0
                .into_iter()
                .filter_map(|(t, n)| {
                    let target = d.targets.iter().find(|x| x.target == t)?;
                    let s = target.relays.get(&n)?;
                    let state_word = if target.up {
                        s.display().label().to_string()
                    } else {
                        "UNKNOWN (target down)".to_string()
                    };
                    Some(vec![
                        state_word,
                        n.clone(),
                        t.clone(),
                        opt(s.connection.map(|c| c.name())),
                        opt(s.health.map(|h| h.name())),
                        (s.since() / 1_000_000_000).to_string(),
                        s.streak.to_string(),
                        s.flapping.to_string(),
                    ])
                })
                .collect();
            Some(table(
                &[
                    "state",
                    "relay",
                    "target",
                    "connection",
                    "health",
                    "since",
                    "streak",
                    "flapping",
                ],
                rows,
                "relays",
            ))
        }
        (None, Pane::Ci) => Some(table(
            &[
                "new",
                "pattern",
                "error",
                "jobs",
                "projects",
                "nights_14",
                "nights_30",
                "first_seen",
                "issue",
            ],
            state
                .ci_patterns()
                .0
                .into_iter()
                .map(|p| {
                    vec![
                        p.is_new.to_string(),
                        p.name.clone(),
                        p.identity.clone(),
                        p.jobs_last_night.to_string(),
                        p.projects_last_night.len().to_string(),
                        p.nights_14.to_string(),
                        p.nights_30.to_string(),
                        p.first_seen.clone(),
                        opt(p.issue_url.as_deref()),
                    ]
                })
                .collect(),
            "patterns",
        )),
    }
}

/// Writes `t` to `path` as its extension says (`.json`, `.csv`, `.md`), atomically.
pub fn write(path: &Path, t: &Table) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let format = match ext.as_deref() {
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("md" | "markdown") => Format::Markdown,
        other => bail!(
            "{}: unknown extension {:?} (use .json, .csv or .md)",
            path.display(),
            other.unwrap_or("")
        ),
    };
    crate::export::write_output(&crate::export::Output::File(path.to_path_buf()), |w| {
        render(format, t, w).wrap_err_with(|| format!("cannot write {}", path.display()))
    })
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Json,
    Csv,
    Markdown,
}

fn render(format: Format, t: &Table, w: &mut dyn Write) -> Result<()> {
    match format {
        Format::Json => {
            let rows: Vec<serde_json::Map<String, serde_json::Value>> = t
                .rows
                .iter()
                .map(|r| {
                    t.headers
                        .iter()
                        .cloned()
                        .zip(r.iter().map(|c| serde_json::Value::String(c.clone())))
                        .collect()
                })
                .collect();
            serde_json::to_writer_pretty(&mut *w, &rows)?;
            writeln!(w)?;
        }
        Format::Csv => {
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .map(|c| {
                        if c.contains([',', '"', '\n', '\r']) {
                            format!("\"{}\"", c.replace('"', "\"\""))
                        } else {
                            c.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            writeln!(w, "{}", line(&t.headers))?;
            for r in &t.rows {
                writeln!(w, "{}", line(r))?;
            }
        }
        Format::Markdown => {
            let cell = |c: &String| one_line(c).replace('|', "\\|");
            writeln!(
                w,
                "| {} |",
                t.headers.iter().map(cell).collect::<Vec<_>>().join(" | ")
            )?;
            writeln!(w, "|{}", "---|".repeat(t.headers.len()))?;
            for r in &t.rows {
                writeln!(
                    w,
                    "| {} |",
                    r.iter().map(cell).collect::<Vec<_>>().join(" | ")
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Table {
        table(
            &["a", "b"],
            vec![
                vec!["x,y".into(), "say \"hi\"".into()],
                vec!["p|q".into(), "plain".into()],
            ],
            "rows",
        )
    }

    #[test]
    fn each_extension_writes_its_format_with_the_rows_whole() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("x.csv");
        write(&csv, &t()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&csv).unwrap(),
            "a,b\n\"x,y\",\"say \"\"hi\"\"\"\np|q,plain\n"
        );
        let md = dir.path().join("x.md");
        write(&md, &t()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&md).unwrap(),
            "| a | b |\n|---|---|\n| x,y | say \"hi\" |\n| p\\|q | plain |\n"
        );
        let json = dir.path().join("x.JSON");
        write(&json, &t()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v[1]["a"], "p|q");
        let e = write(&dir.path().join("x.txt"), &t())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown extension") && e.contains("x.txt"),
            "{e}"
        );
    }
}
