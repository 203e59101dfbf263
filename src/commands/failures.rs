//! `syncscope failures`: GitLab CI's nightly failures as the person on nightly duty asks for
//! them: last night's failed and passed-with-warnings pipelines with their failed jobs and
//! error patterns (default), the patterns by prevalence (`--patterns`), each project's strip of
//! nights (`--history`), and `failures link PATTERN ISSUE_URL`. Table for people, JSON for
//! scripts, Markdown for the nightly report. Exit 1 when a pipeline failed on the night asked.

use std::io::Write;

use chrono::NaiveDate;
use color_eyre::eyre::{eyre, Result};
use serde_json::json;

use super::Outcome;
use crate::cli::{FailuresAction, FailuresArgs, FailuresFormat};
use crate::model::ci::{parse_night, STRIP_NIGHTS};
use crate::sanitize::one_line;
use crate::store::{self, CiHistory, CiNight, CiPatternRow};

/// Today's date where nights are counted: the `[gitlab]` timezone, else local.
fn today(config: &crate::config::Config) -> Result<NaiveDate> {
    let gitlab = config
        .settings()
        .get::<crate::sources::gitlab::config::GitlabConfig>();
    let zone = match gitlab.timezone.as_deref() {
        Some(z) => crate::model::LogZone::parse(z).map_err(|e| eyre!("[gitlab] timezone: {e}"))?,
        None => crate::model::LogZone::Local,
    };
    Ok(crate::model::ci::local_time(crate::model::Timestamp::now(), &zone).date())
}

pub fn run(
    args: FailuresArgs,
    config: &crate::config::Config,
    db: std::path::PathBuf,
) -> Result<Outcome> {
    if let Some(FailuresAction::Link { pattern, issue_url }) = &args.action {
        let url = issue_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(eyre!(
                "the issue must be an http(s) URL, not '{}'",
                one_line(url)
            ));
        }
        if !db.exists() {
            return Err(eyre!(
                "no store at {}: run `syncscope ingest` first",
                db.display()
            ));
        }
        let conn = store::open(&db)?;
        let id = store::ci::link_issue(&conn, pattern, url)?;
        println!("pattern {id} -> {}", one_line(url));
        return Ok(Outcome::Ok);
    }
    let night: Option<NaiveDate> = args
        .night
        .as_deref()
        .map(|n| parse_night(n).map_err(|e| eyre!("--night: {e}")))
        .transpose()?;
    let reader = store::open_reader(&db)?;
    let night = match night {
        Some(n) => Some(n),
        None => reader.ci_default_night(today(config)?)?,
    };
    let project = args.project.as_deref();
    let the_night = reader.ci_night(night, project)?;
    let failed = the_night.as_ref().is_some_and(|n| n.failed > 0);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let Some(n) = the_night else {
        match args.format {
            FailuresFormat::Json => writeln!(out, "{}", if args.patterns { "[]" } else { "null" })?,
            _ => writeln!(
                out,
                "no GitLab CI pipelines in {} (ingest --source gitlab:URL)",
                db.display()
            )?,
        }
        return Ok(Outcome::Ok);
    };
    let asked = parse_night(&n.night).ok();
    if args.patterns {
        let pats = reader.ci_patterns(asked, project)?;
        match args.format {
            FailuresFormat::Json => {
                serde_json::to_writer_pretty(&mut out, &pats)?;
                writeln!(out)?;
            }
            FailuresFormat::Table => patterns_table(&mut out, &n.night, &pats)?,
            FailuresFormat::Markdown => patterns_markdown(&mut out, &n.night, &pats)?,
        }
    } else if args.history {
        let h = reader.ci_history(asked, STRIP_NIGHTS, project)?;
        match args.format {
            FailuresFormat::Json => {
                let v = json!({
                    "nights": h.nights,
                    "projects": h.projects.iter().map(|s| json!({
                        "project": s.project, "strip": s.symbols(), "cells": s.cells,
                    })).collect::<Vec<_>>(),
                });
                serde_json::to_writer_pretty(&mut out, &v)?;
                writeln!(out)?;
            }
            FailuresFormat::Table => history_text(&mut out, &h, false)?,
            FailuresFormat::Markdown => history_text(&mut out, &h, true)?,
        }
    } else {
        let pats = reader.ci_patterns(asked, project)?;
        match args.format {
            FailuresFormat::Json => {
                serde_json::to_writer_pretty(&mut out, &n)?;
                writeln!(out)?;
            }
            FailuresFormat::Table => night_table(&mut out, &n)?,
            FailuresFormat::Markdown => {
                night_markdown(&mut out, &n)?;
                let last: Vec<CiPatternRow> =
                    pats.into_iter().filter(|p| p.jobs_last_night > 0).collect();
                if !last.is_empty() {
                    writeln!(out)?;
                    patterns_markdown(&mut out, &n.night, &last)?;
                }
            }
        }
    }
    Ok(if failed {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}

fn summary(n: &CiNight) -> String {
    format!(
        "{} failed, {} passed with warnings, {} passed, {} other ({} projects)",
        n.failed, n.warnings, n.passed, n.other, n.projects
    )
}

fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

fn night_table(out: &mut impl Write, n: &CiNight) -> Result<()> {
    writeln!(out, "night {}: {}", n.night, summary(n))?;
    for p in &n.pipelines {
        writeln!(out)?;
        let label = if p.cell == crate::model::ci::NightCell::Failed {
            "FAILED  "
        } else {
            "WARNINGS"
        };
        let downstream = if p.downstream_failed && p.status != "failed" {
            format!(
                " (GitLab says {}: a downstream pipeline failed)",
                one_line(&p.status)
            )
        } else if p.downstream_failed {
            " (a downstream pipeline failed)".to_string()
        } else {
            String::new()
        };
        writeln!(
            out,
            "{label} {}  #{} {}  {}{downstream}",
            one_line(&p.project),
            p.id,
            one_line(p.ref_name.as_deref().unwrap_or("")),
            one_line(p.web_url.as_deref().unwrap_or(""))
        )?;
        for j in &p.jobs {
            let allowed = if j.allow_failure {
                ", allowed to fail"
            } else {
                ""
            };
            let pattern = match (&j.pattern_name, &j.pattern_identity) {
                (Some(name), Some(id)) => format!("{}: {}", one_line(name), one_line(id)),
                _ => format!("log {}", j.log_state),
            };
            let mut tags = Vec::new();
            if let Some(id) = &j.pattern_id {
                tags.push(format!("[{id}]"));
            }
            if j.pattern_new {
                tags.push("NEW".into());
            }
            if let Some(u) = &j.issue_url {
                tags.push(format!("issue {}", one_line(u)));
            }
            writeln!(
                out,
                "  {} ({}{allowed})  {pattern}  {}",
                one_line(&j.name),
                one_line(j.stage.as_deref().unwrap_or("?")),
                tags.join(" ")
            )?;
            if let Some(c) = &j.chain {
                writeln!(out, "      via {}", one_line(c))?;
            }
            if let Some(e) = j.excerpt.as_deref().filter(|e| !e.is_empty()) {
                let sec = j
                    .section
                    .as_deref()
                    .map(|s| format!("in {}: ", one_line(s)))
                    .unwrap_or_default();
                writeln!(out, "      {sec}{}", one_line(first_line(e)))?;
            }
            if let Some(u) = &j.web_url {
                writeln!(out, "      {}", one_line(u))?;
            }
        }
    }
    Ok(())
}

/// Text for inside a Markdown code span or table cell.
fn md(s: &str) -> String {
    one_line(s).replace('`', "'").replace('|', "\\|")
}

fn night_markdown(out: &mut impl Write, n: &CiNight) -> Result<()> {
    writeln!(out, "## Nightly CI: {}", n.night)?;
    writeln!(out)?;
    writeln!(out, "{}.", summary(n))?;
    for (title, cell) in [
        ("Failed", crate::model::ci::NightCell::Failed),
        (
            "Passed with warnings",
            crate::model::ci::NightCell::Warnings,
        ),
    ] {
        let list: Vec<_> = n.pipelines.iter().filter(|p| p.cell == cell).collect();
        if list.is_empty() {
            continue;
        }
        writeln!(out)?;
        writeln!(out, "### {title}")?;
        writeln!(out)?;
        for p in list {
            writeln!(
                out,
                "- **{}** [#{}]({}) on `{}`",
                md(&p.project),
                p.id,
                md(p.web_url.as_deref().unwrap_or("")),
                md(p.ref_name.as_deref().unwrap_or("?"))
            )?;
            for j in &p.jobs {
                let what = match (&j.pattern_name, &j.pattern_identity) {
                    (Some(name), Some(id)) => format!("{}: `{}`", md(name), md(id)),
                    _ => format!("log {}", j.log_state),
                };
                let mut tags = Vec::new();
                if let Some(id) = &j.pattern_id {
                    tags.push(format!("pattern `{id}`"));
                }
                if j.pattern_new {
                    tags.push("**NEW**".into());
                }
                if let Some(u) = &j.issue_url {
                    tags.push(format!("[issue]({})", md(u)));
                }
                let allowed = if j.allow_failure {
                    " (allowed to fail)"
                } else {
                    ""
                };
                let via = j
                    .chain
                    .as_deref()
                    .map(|c| format!(" via {}", md(c)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  - [{}]({}){allowed}{via}: {what} ({})",
                    md(&j.name),
                    md(j.web_url.as_deref().unwrap_or("")),
                    tags.join(", ")
                )?;
            }
        }
    }
    Ok(())
}

fn patterns_table(out: &mut impl Write, night: &str, pats: &[CiPatternRow]) -> Result<()> {
    writeln!(
        out,
        "error patterns of the 30 nights up to {night}, most prevalent first"
    )?;
    writeln!(
        out,
        "{:<12}  {:>5} {:>5} {:>4}  {:<10}  {:<10}  PATTERN",
        "ID", "14N", "30N", "JOBS", "FIRST", "LAST"
    )?;
    for p in pats {
        writeln!(
            out,
            "{:<12}  {:>5} {:>5} {:>4}  {:<10}  {:<10}  {}{}: {}",
            p.id,
            p.nights_14,
            p.nights_30,
            p.jobs_last_night,
            p.first_seen,
            p.last_seen,
            if p.is_new { "NEW " } else { "" },
            one_line(&p.name),
            one_line(&p.identity)
        )?;
        let mut more = vec![format!("projects: {}", one_line(&p.projects.join(", ")))];
        if let Some(u) = &p.issue_url {
            more.push(format!("issue: {}", one_line(u)));
        }
        writeln!(out, "{:14}{}", "", more.join("  "))?;
        for e in &p.examples {
            writeln!(out, "{:14}e.g. {}", "", one_line(e))?;
        }
    }
    Ok(())
}

fn patterns_markdown(out: &mut impl Write, night: &str, pats: &[CiPatternRow]) -> Result<()> {
    writeln!(out, "### Error patterns (30 nights up to {night})")?;
    writeln!(out)?;
    writeln!(
        out,
        "| Pattern | Last night | Nights (14 / 30) | First seen | Projects | Issue |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for p in pats {
        let example = p
            .examples
            .first()
            .map(|e| format!(" ([example]({}))", md(e)))
            .unwrap_or_default();
        writeln!(
            out,
            "| {}{}: `{}` `{}`{example} | {} jobs, {} projects | {} / {} | {} | {} | {} |",
            if p.is_new { "**NEW** " } else { "" },
            md(&p.name),
            md(&p.identity),
            p.id,
            p.jobs_last_night,
            p.projects_last_night.len(),
            p.nights_14,
            p.nights_30,
            p.first_seen,
            md(&p.projects.join(", ")),
            p.issue_url
                .as_deref()
                .map(|u| format!("[issue]({})", md(u)))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

fn history_text(out: &mut impl Write, h: &CiHistory, markdown: bool) -> Result<()> {
    let (Some(first), Some(last)) = (h.nights.first(), h.nights.last()) else {
        return Ok(());
    };
    if markdown {
        writeln!(out, "### Nightly history {first} .. {last}")?;
        writeln!(out)?;
        writeln!(out, "```")?;
    }
    writeln!(
        out,
        "nights {first} .. {last}, oldest left: F failed, W passed with warnings, P passed, ? other, . no run"
    )?;
    let width = h
        .projects
        .iter()
        .map(|s| s.project.chars().count())
        .max()
        .unwrap_or(0);
    for s in &h.projects {
        writeln!(out, "{:<width$}  {}", one_line(&s.project), s.symbols())?;
    }
    if markdown {
        writeln!(out, "```")?;
    }
    Ok(())
}
