//! `syncscope rejects`.

use std::io::Write;

use color_eyre::eyre::Result;

use super::Outcome;
use crate::cli::{RejectFormat, RejectsArgs};
use crate::sanitize::one_line;
use crate::store;

pub fn run(args: RejectsArgs, db: std::path::PathBuf) -> Result<Outcome> {
    let reader = store::open_reader(&db)?;
    let rows = reader.rejects(args.source.as_deref(), args.limit)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        RejectFormat::Json => {
            let list: Vec<_> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "source": r.source,
                        "location": r.location,
                        "reason": r.reason,
                        "excerpt": r.excerpt,
                        "received": chrono::DateTime::from_timestamp(r.received, 0)
                            .map(|d| d.to_rfc3339()),
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        RejectFormat::Table => {
            if rows.is_empty() {
                writeln!(out, "no rejects")?;
            }
            for r in &rows {
                let when = chrono::DateTime::from_timestamp(r.received, 0)
                    .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                writeln!(out, "{}  {}", when, one_line(&r.location))?;
                writeln!(out, "  reason: {}", one_line(&r.reason))?;
                if !r.excerpt.is_empty() {
                    writeln!(out, "  input:  {}", one_line(&r.excerpt))?;
                }
            }
        }
    }
    Ok(Outcome::Ok)
}
