//! The `:` command line: `:since 2h`, `:source gerrit`, `:goto 14:02`, `:corr ID`, `:w FILE`...
//! Parsed and applied to the state here; errors are flashed, never fatal. Pure, like `update`.

use super::app::{
    open_session, reset_positions, set_severity, set_text_filter, AppState, Command, EventsNav,
    Filters,
};
use super::keymap::Mode;
use super::theme::ThemeName;
use super::worker::Anchor;
use super::Pane;
use crate::model::{Severity, Timestamp};
use crate::store::query::Cursor;

/// `:` commands. Errors are flashed, never fatal.
pub fn run_command(state: &mut AppState, line: &str) -> Option<Command> {
    let line = line.trim();
    let (cmd, arg) = match line.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (line, ""),
    };
    let now = state.now;
    match cmd {
        "" => {}
        "q" | "quit" => {
            state.quit = true;
            return Some(Command::Quit);
        }
        "since" | "until" => {
            let t = if arg.is_empty() || arg == "all" {
                Ok(None)
            } else {
                crate::model::parse_time_spec(arg, utc(now)).map(Some)
            };
            match t {
                Ok(t) => {
                    if cmd == "since" {
                        state.filters.since = t;
                    } else {
                        state.filters.until = t;
                    }
                    reset_positions(state);
                    state.pane = Pane::Timeline;
                    state.stack.clear();
                }
                Err(e) => state.flash(format!(":{cmd}: {e}")),
            }
        }
        "source" | "src" => {
            state.filters.source = match arg {
                "" | "all" | "*" => None,
                s => Some(s.to_string()),
            };
            reset_positions(state);
        }
        "severity" | "sev" => match arg {
            "" | "all" => set_severity(state, None),
            s => match Severity::parse(s) {
                Some(s) => set_severity(state, Some(s)),
                None => state.flash(format!(":severity: unknown {s:?} (error, warning, info, debug, all)")),
            },
        },
        "goto" | "g" => match goto_time(arg, now) {
            Ok(t) => {
                state.stack.clear();
                state.pane = Pane::Timeline;
                state.timeline = EventsNav {
                    anchor: Anchor::At(Cursor {
                        ts: t.as_nanos(),
                        key: i64::MAX - 1,
                    }),
                    screen_row: state.list_rows() / 2,
                };
            }
            Err(e) => state.flash(format!(":goto: {e}")),
        },
        "corr" | "session" => {
            if arg.is_empty() {
                state.flash(":corr needs an id");
            } else {
                open_session(state, arg.to_string());
            }
        }
        "filter" => set_text_filter(state, arg.to_string()),
        "w" | "write" => {
            if arg.is_empty() {
                state.flash(":w needs a file: :w refs.csv (json, csv or md)");
            } else {
                match super::export::table_of(state) {
                    Some(t) => return Some(Command::Write(std::path::PathBuf::from(arg), t)),
                    None => state.flash(":w: this view has no table to write"),
                }
            }
        }
        "clear" => {
            state.filters = Filters::default();
            reset_positions(state);
        }
        "theme" => match ThemeName::parse(arg) {
            Some(t) => state.theme = t,
            None => state.flash(":theme: dark, light or mono"),
        },
        "help" => state.mode = Mode::Help,
        other => state.flash(format!(
            "unknown command :{other} (since, until, source, severity, goto, corr, filter, w, clear, theme, quit)"
        )),
    }
    None
}

fn utc(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_nanos(t.as_nanos())
}

/// `:goto 14:02` (today, local time; yesterday if that is still ahead), or any time spec.
fn goto_time(arg: &str, now: Timestamp) -> Result<Timestamp, String> {
    use chrono::{Local, NaiveTime, TimeZone};
    let arg = arg.trim();
    if arg.is_empty() {
        return Err("needs a time, like 14:02 or 2025-12-03 10:15".into());
    }
    let parsed = NaiveTime::parse_from_str(arg, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(arg, "%H:%M:%S"));
    if let Ok(t) = parsed {
        let now_local =
            chrono::DateTime::from_timestamp_nanos(now.as_nanos()).with_timezone(&Local);
        let mut day = now_local.date_naive();
        let at = |d: chrono::NaiveDate| Local.from_local_datetime(&d.and_time(t)).earliest();
        if at(day).is_some_and(|x| x > now_local) {
            day = day.pred_opt().unwrap_or(day);
        }
        return at(day)
            .and_then(|x| x.timestamp_nanos_opt())
            .map(Timestamp::from_nanos)
            .ok_or_else(|| format!("{arg} does not exist in the local zone today"));
    }
    crate::model::parse_time_spec(arg, utc(now))
}
