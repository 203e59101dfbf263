//! `syncscope sources`: is ingest alive, and is every source healthy?

use std::io::Write;

use color_eyre::eyre::Result;

use super::Outcome;
use crate::cli::{RejectFormat, SourcesArgs};
use crate::sanitize::one_line;
use crate::store;

fn when(secs: Option<i64>) -> String {
    secs.and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// Exit 1 when any source is in fault, so cron and monitoring can call it.
pub fn run(args: SourcesArgs, db: std::path::PathBuf) -> Result<Outcome> {
    if args.kinds {
        return kinds(&args);
    }
    let reader = store::open_reader(&db)?;
    let rows = reader.source_overview()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        RejectFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        RejectFormat::Table => {
            if rows.is_empty() {
                writeln!(out, "no sources have been ingested into {}", db.display())?;
            }
            for r in &rows {
                writeln!(
                    out,
                    "{:<8} {}",
                    r.state.as_deref().unwrap_or("-").to_uppercase(),
                    one_line(&r.source)
                )?;
                writeln!(
                    out,
                    "         since {}  last batch {}  stored {}  already stored {}  rejected {}",
                    when(r.since),
                    when(r.last_batch),
                    r.inserted,
                    r.duplicates,
                    r.rejected
                )?;
                if !r.message.is_empty() {
                    writeln!(out, "         {}", one_line(&r.message))?;
                }
            }
        }
    }
    let faulty = rows.iter().any(|r| r.state.as_deref() == Some("fault"));
    Ok(if faulty {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}

/// The kinds of the sources' registry, as a table or JSON.
fn kinds(args: &SourcesArgs) -> Result<Outcome> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let kinds = crate::sources::KINDS;
    match args.format {
        RejectFormat::Json => {
            let rows: Vec<_> = kinds
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "kind": k.name,
                        "where": k.help,
                        "example": format!("{}:{}", k.name, k.example),
                        "config": k.config.map(|c| c.name),
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        RejectFormat::Table => {
            for k in kinds {
                writeln!(out, "{}:{}", k.name, k.help)?;
                let section = k
                    .config
                    .map(|c| format!("  [{}] in the config", c.name))
                    .unwrap_or_default();
                writeln!(out, "    e.g. {}:{}{section}", k.name, k.example)?;
            }
        }
    }
    Ok(Outcome::Ok)
}
