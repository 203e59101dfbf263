//! Sorting a table by a column, k9s-style: each sortable column has a letter, shown
//! underlined in its header; Shift + that letter sorts by it, a second press reverses. The
//! columns of each pane are declared here once: the header, the keys and `update` read them.

use std::cmp::Ordering;

use super::Pane;
use crate::model::relay::RelayState;
use crate::store::ci::CiPatternRow;
use crate::store::RemoteSummary;

/// A pane's sort: the column's letter and the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub letter: char,
    pub descending: bool,
}

/// `(header, sort letter)` per column of the Replication pane's remotes.
pub const REMOTES: &[(&str, Option<char>)] = &[
    ("STATUS", Some('S')),
    ("REMOTE", Some('R')),
    ("PROJ", Some('P')),
    ("REFS", Some('E')),
    ("FAILED", Some('F')),
    ("RETRY", Some('T')),
    ("SCHED", Some('C')),
    ("EVENT", Some('V')),
    ("LAST OK", Some('O')),
    ("LAST ERROR", Some('L')),
];

/// The Relays pane's columns.
pub const RELAYS: &[(&str, Option<char>)] = &[
    ("STATE", Some('S')),
    ("RELAY", Some('R')),
    ("TARGET", Some('T')),
    ("CONNECTION/HEALTH", Some('C')),
    ("IN", Some('I')),
    ("STREAK", Some('K')),
    ("FLAP", Some('F')),
    ("LAST HOUR", None),
];

/// The CI pane's pattern columns.
pub const CI_PATTERNS: &[(&str, Option<char>)] = &[
    ("", None),
    ("PATTERN", Some('P')),
    ("ERROR", Some('E')),
    ("JOBS", Some('J')),
    ("PROJ", Some('R')),
    ("D14", Some('D')),
    ("M30", Some('M')),
    ("FIRST", Some('F')),
    ("ISSUE", Some('I')),
];

/// The sortable columns of a top-level pane.
pub fn columns(pane: Pane) -> &'static [(&'static str, Option<char>)] {
    match pane {
        Pane::Replication => REMOTES,
        Pane::Relays => RELAYS,
        Pane::Ci => CI_PATTERNS,
        _ => &[],
    }
}

/// The letters a pane sorts by, for messages: `S R P`.
pub fn letters(pane: Pane) -> String {
    columns(pane)
        .iter()
        .filter_map(|(_, l)| *l)
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ")
}

fn dir(o: Ordering, s: Sort) -> Ordering {
    if s.descending {
        o.reverse()
    } else {
        o
    }
}

pub fn remotes(list: &mut [&RemoteSummary], s: Sort) {
    let rank = |r: &RemoteSummary| (r.is_failed(), r.retrying > 0);
    list.sort_by(|a, b| {
        let o = match s.letter {
            'S' => rank(b).cmp(&rank(a)),
            'R' => a.remote.cmp(&b.remote),
            'P' => a.projects.cmp(&b.projects),
            'E' => a.refs.cmp(&b.refs),
            'F' => a.failed.cmp(&b.failed),
            'T' => a.retrying.cmp(&b.retrying),
            'C' => a.scheduled.cmp(&b.scheduled),
            'V' => a.last_event.cmp(&b.last_event),
            'O' => a.last_success.cmp(&b.last_success),
            'L' => a.last_error.cmp(&b.last_error),
            _ => Ordering::Equal,
        };
        dir(o, s).then(a.remote.cmp(&b.remote))
    });
}

/// One relay row as sorted: (target, name, state).
pub fn relays(list: &mut [(String, String, &RelayState)], s: Sort) {
    list.sort_by(|a, b| {
        let o = match s.letter {
            'S' => b.2.display().severity().cmp(&a.2.display().severity()),
            'R' => a.1.cmp(&b.1),
            'T' => a.0.cmp(&b.0),
            'C' => (
                a.2.connection.map(|c| c.code()),
                a.2.health.map(|h| h.code()),
            )
                .cmp(&(
                    b.2.connection.map(|c| c.code()),
                    b.2.health.map(|h| h.code()),
                )),
            // Longest in its state first is the natural reading of "IN".
            'I' => a.2.since().cmp(&b.2.since()),
            'K' => a.2.streak.cmp(&b.2.streak),
            'F' => b.2.flapping.cmp(&a.2.flapping),
            _ => Ordering::Equal,
        };
        dir(o, s).then(a.1.cmp(&b.1))
    });
}

pub fn ci_patterns(list: &mut [&CiPatternRow], s: Sort) {
    list.sort_by(|a, b| {
        let o = match s.letter {
            'P' => a.name.cmp(&b.name),
            'E' => a.identity.cmp(&b.identity),
            'J' => a.jobs_last_night.cmp(&b.jobs_last_night),
            'R' => a
                .projects_last_night
                .len()
                .cmp(&b.projects_last_night.len()),
            'D' => a.nights_14.cmp(&b.nights_14),
            'M' => a.nights_30.cmp(&b.nights_30),
            'F' => a.first_seen.cmp(&b.first_seen),
            'I' => a.issue_url.cmp(&b.issue_url),
            _ => Ordering::Equal,
        };
        dir(o, s).then(a.id.cmp(&b.id))
    });
}

/// A header row: each sortable column's letter underlined, the sorted one marked ▲/▼.
pub fn header<'a>(
    cols: &[(&'a str, Option<char>)],
    sort: Option<Sort>,
    theme: &super::theme::Theme,
) -> ratatui::widgets::Row<'a> {
    use ratatui::style::Modifier;
    use ratatui::text::{Line, Span};
    let cells: Vec<ratatui::widgets::Cell> = cols
        .iter()
        .map(|(name, letter)| {
            let mut spans = Vec::new();
            let pos = letter.and_then(|l| name.find(l));
            match pos {
                Some(i) => {
                    // Only the letter underlined (the mono theme underlines headers).
                    let plain = theme.header.remove_modifier(Modifier::UNDERLINED);
                    spans.push(Span::styled(&name[..i], plain));
                    spans.push(Span::styled(
                        &name[i..i + 1],
                        theme.header.add_modifier(Modifier::UNDERLINED),
                    ));
                    spans.push(Span::styled(&name[i + 1..], plain));
                }
                None => spans.push(Span::styled(*name, theme.header)),
            }
            if let (Some(s), Some(l)) = (sort, letter) {
                if s.letter == *l {
                    spans.push(Span::styled(
                        if s.descending { "▼" } else { "▲" },
                        theme.key,
                    ));
                }
            }
            ratatui::widgets::Cell::from(Line::from(spans))
        })
        .collect();
    ratatui::widgets::Row::new(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_letter_is_in_its_header_and_unique_per_pane() {
        for pane in Pane::ALL {
            let cols = columns(pane);
            let mut seen = Vec::new();
            for (name, l) in cols {
                if let Some(l) = l {
                    assert!(name.contains(*l), "{pane:?}: {l} not in {name}");
                    assert!(!seen.contains(l), "{pane:?}: {l} twice");
                    // G and N are bound (bottom, previous match).
                    assert!(!matches!(l, 'G' | 'N'), "{pane:?}: {l} is bound");
                    seen.push(*l);
                }
            }
        }
    }
}
