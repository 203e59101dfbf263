//! `syncscope events`.

use color_eyre::eyre::{eyre, Result};

use super::Outcome;
use crate::cli::EventsArgs;
use crate::config::Config;
use crate::export::{write_output, write_stream, EventWriter, Format, Output};
use crate::model::parse_time_spec;
use crate::store::{self, EventFilter};

/// The filter the arguments describe, times read relative to `now`.
pub fn filter_of(args: &EventsArgs, now: chrono::DateTime<chrono::Utc>) -> Result<EventFilter> {
    let time = |flag: &str, v: &Option<String>| -> Result<_> {
        v.as_deref()
            .map(|t| parse_time_spec(t, now).map_err(|e| eyre!("{flag}: {e}")))
            .transpose()
    };
    Ok(EventFilter {
        since: time("--since", &args.since)?,
        until: time("--until", &args.until)?,
        severities: args.severity.clone(),
        min_severity: args.min_severity,
        event_types: args.event_type.clone(),
        categories: args.category.clone(),
        sources: args.source.clone(),
        devices: args.device.clone(),
        peers: args.peer.clone(),
        correlation_ids: args.correlation_id.clone(),
        subjects: args.subject.clone(),
        grep: args.grep.clone(),
        after_id: None,
        upto_id: None,
    })
}

pub fn run(args: EventsArgs, config: &Config, db: std::path::PathBuf) -> Result<Outcome> {
    let filter = filter_of(&args, crate::model::now_utc())?;
    let reader = store::open_reader(&db)?;
    let limit = match args.limit.or(config.events.limit).unwrap_or(1000) {
        0 => None,
        n => Some(n),
    };
    note_ambiguous_ids(&reader, &filter)?;
    if args.count {
        let n = reader.count_events(&filter)?;
        println!("{n}");
        if n == 0 {
            say_why_empty(&reader, &filter)?;
        }
        return Ok(if n == 0 {
            Outcome::CheckFailed
        } else {
            Outcome::Ok
        });
    }
    let format = args.format.or(config.events.format).unwrap_or(Format::Json);
    let count = if matches!(format, Format::Markdown | Format::Sql) {
        let n = reader.count_events(&filter)?;
        limit.map_or(n, |l| n.min(l))
    } else {
        0
    };
    let output = match &args.output {
        Some(p) => Output::File(p.clone()),
        None => Output::Stdout,
    };
    if args.follow {
        return follow(&reader, filter, limit, format, &output);
    }
    let written = write_output(&output, |out| {
        let mut w = EventWriter::begin(format, out, count)?;
        // Spacedrive's markdown lists the newest first; `--reverse` turns any format around.
        let newest_first = args.reverse != (format == Format::Markdown);
        reader.for_each_event(&filter, limit, newest_first, |e| w.write(&e))?;
        w.finish()
    })?;
    if written == 0 {
        say_why_empty(&reader, &filter)?;
    }
    Ok(if written == 0 {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}

/// On stderr (stdout stays the data): why nothing matched.
fn say_why_empty(reader: &store::Reader, filter: &EventFilter) -> Result<()> {
    let why = reader.why_empty(filter)?;
    eprintln!(
        "syncscope: no events: {}",
        crate::sanitize::one_line(&why.to_string())
    );
    Ok(())
}

/// On stderr: a short correlation id that names several sessions (all of them are shown).
fn note_ambiguous_ids(reader: &store::Reader, filter: &EventFilter) -> Result<()> {
    for id in &filter.correlation_ids {
        if let store::IdMatch::Ambiguous { total, first } = reader.resolve_correlation_id(id)? {
            eprintln!(
                "syncscope: correlation id {} matches {total} sessions ({}{}); showing all of them",
                crate::sanitize::one_line(id),
                crate::sanitize::one_line(&first.join(", ")),
                if total as usize > first.len() {
                    ", ..."
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

/// `--follow`: print the matching events there are now, then new ones as they are stored,
/// until interrupted. Events appear in the order they were stored.
fn follow(
    reader: &store::Reader,
    filter: EventFilter,
    limit: Option<u64>,
    format: Format,
    output: &Output,
) -> Result<Outcome> {
    if !matches!(format, Format::Jsonl | Format::Table) {
        color_eyre::eyre::bail!(
            "--follow prints jsonl or table (a {format:?} document cannot grow)"
        );
    }
    write_stream(output, |out| {
        let start = reader.max_event_id()?;
        let now = EventFilter {
            upto_id: Some(start),
            ..filter.clone()
        };
        let mut w = EventWriter::begin(format, out, 0)?;
        reader.for_each_event(&now, limit, false, |e| w.write(&e))?;
        w.flush()?;
        let mut pos = start;
        loop {
            let (n, next) = reader.for_each_new_event(&filter, pos, 1000, |e| w.write(&e))?;
            pos = next;
            w.flush()?;
            if n < 1000 {
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        }
    })
}
