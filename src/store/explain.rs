//! Short ids and empty answers: resolving the short correlation id a screen shows to the
//! session it names, and saying why a query found nothing (no such id, an id that names
//! several sessions, a text no event contains, a window with no events, or filters that each
//! match something but not together).

use color_eyre::eyre::Result;
use rusqlite::OptionalExtension;

use super::query::{EventFilter, Reader};

/// The shortest prefix accepted for an id (as the filters accept it).
pub const MIN_PREFIX: usize = 4;
/// How many candidates a resolution lists at most.
const MAX_LISTED: usize = 5;

/// What a possibly shortened correlation id names.
#[derive(Debug, Clone, PartialEq)]
pub enum IdMatch {
    /// The whole id of a stored session.
    Exact(String),
    /// A prefix of exactly one stored session's id.
    Unique(String),
    /// A prefix of several: `total` of them, the first few (in id order) listed.
    Ambiguous { total: u64, first: Vec<String> },
    /// No stored session has this id or starts with it (or it is shorter than 4 characters).
    None,
}

impl IdMatch {
    /// The one id it names, if it names one.
    pub fn id(&self) -> Option<&str> {
        match self {
            IdMatch::Exact(s) | IdMatch::Unique(s) => Some(s),
            _ => None,
        }
    }
}

/// Why a query found nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum EmptyReason {
    /// The store holds no events at all.
    EmptyStore,
    /// A filter names something the store has never seen: `field` (e.g. "correlation id")
    /// and the values given.
    NoSuch {
        field: &'static str,
        values: Vec<String>,
    },
    /// No event shows this text in any column.
    NoText { text: String },
    /// No event in the time window (or store id range) asked for.
    NoneInWindow,
    /// Every part matches some events, but no event matches all of them.
    FiltersExcludeAll,
}

impl std::fmt::Display for EmptyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmptyReason::EmptyStore => write!(f, "the store holds no events yet"),
            EmptyReason::NoSuch { field, values } => {
                let v = values.join(", ");
                if values.iter().any(|v| v.chars().count() < MIN_PREFIX) {
                    write!(
                        f,
                        "no {field} {v} (short ids need at least {MIN_PREFIX} characters)"
                    )
                } else {
                    write!(f, "no {field} is or starts with {v}")
                }
            }
            EmptyReason::NoText { text } => write!(f, "no event contains \"{text}\""),
            EmptyReason::NoneInWindow => write!(f, "no events in the time window"),
            EmptyReason::FiltersExcludeAll => write!(
                f,
                "each filter matches events, but no event matches all of them together"
            ),
        }
    }
}

/// A filter of one list only.
type OnlyThis = fn(Vec<String>) -> EventFilter;

impl Reader {
    /// Resolves a correlation id as a screen shows it (whole or its first characters).
    pub fn resolve_correlation_id(&self, id: &str) -> Result<IdMatch> {
        let conn = self.connection();
        let used = |sid: i64| -> Result<bool> {
            Ok(conn
                .prepare_cached("SELECT 1 FROM events WHERE corr = ?1 LIMIT 1")?
                .query_row([sid], |_| Ok(()))
                .optional()?
                .is_some())
        };
        let exact: Option<i64> = conn
            .prepare_cached("SELECT id FROM string_ids WHERE text = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        if let Some(sid) = exact {
            if used(sid)? {
                return Ok(IdMatch::Exact(id.to_string()));
            }
        }
        if id.chars().count() < MIN_PREFIX {
            return Ok(IdMatch::None);
        }
        let mut st = conn.prepare_cached(
            "SELECT id, text FROM string_ids WHERE text >= ?1 AND text < ?1 || char(1114111) ORDER BY text",
        )?;
        let mut rows = st.query([id])?;
        let (mut total, mut first) = (0u64, Vec::new());
        while let Some(r) = rows.next()? {
            let (sid, text): (i64, String) = (r.get(0)?, r.get(1)?);
            if used(sid)? {
                total += 1;
                if first.len() < MAX_LISTED {
                    first.push(text);
                }
            }
        }
        Ok(match total {
            0 => IdMatch::None,
            1 => IdMatch::Unique(first.remove(0)),
            _ => IdMatch::Ambiguous { total, first },
        })
    }

    /// Why `filter` matches no event (call it when a query came back empty). Each check is
    /// one indexed lookup or one use of the text index, never a count of the store.
    pub fn why_empty(&self, filter: &EventFilter) -> Result<EmptyReason> {
        if self.max_event_id()? == 0 {
            return Ok(EmptyReason::EmptyStore);
        }
        let any =
            |f: EventFilter| -> Result<bool> { Ok(!self.page_before(&f, None, 1)?.is_empty()) };
        let lists: [(&'static str, &Vec<String>, OnlyThis); 7] = [
            ("correlation id", &filter.correlation_ids, |v| EventFilter {
                correlation_ids: v,
                ..Default::default()
            }),
            ("source", &filter.sources, |v| EventFilter {
                sources: v,
                ..Default::default()
            }),
            ("device", &filter.devices, |v| EventFilter {
                devices: v,
                ..Default::default()
            }),
            ("peer", &filter.peers, |v| EventFilter {
                peers: v,
                ..Default::default()
            }),
            ("event type", &filter.event_types, |v| EventFilter {
                event_types: v,
                ..Default::default()
            }),
            ("category", &filter.categories, |v| EventFilter {
                categories: v,
                ..Default::default()
            }),
            ("subject", &filter.subjects, |v| EventFilter {
                subjects: v,
                ..Default::default()
            }),
        ];
        for (field, values, only) in lists {
            if !values.is_empty() && !any(only(values.clone()))? {
                return Ok(EmptyReason::NoSuch {
                    field,
                    values: values.clone(),
                });
            }
        }
        if let Some(text) = filter.grep.as_deref().filter(|t| !t.is_empty()) {
            let f = EventFilter {
                grep: Some(text.to_string()),
                ..Default::default()
            };
            if !any(f)? {
                return Ok(EmptyReason::NoText {
                    text: text.to_string(),
                });
            }
        }
        let window = EventFilter {
            since: filter.since,
            until: filter.until,
            after_id: filter.after_id,
            upto_id: filter.upto_id,
            ..Default::default()
        };
        if window != EventFilter::default() && !any(window)? {
            return Ok(EmptyReason::NoneInWindow);
        }
        Ok(EmptyReason::FiltersExcludeAll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Severity, Timestamp};
    use crate::store::Writer;

    fn ev(i: i64, corr: &str) -> Event {
        let mut e = Event::new(
            Timestamp::from_nanos(1_800_000_000_000_000_000 + i * 1_000_000_000),
            "spacedrive",
            "batch_ingestion",
            "data_flow",
            Severity::Info,
            format!("batch {i}"),
        );
        e.correlation_id = Some(corr.into());
        e.device_id = Some("6f1c0000-dev".into());
        e
    }

    fn store() -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let mut w = Writer::open(&db).unwrap();
        let evs = vec![
            ev(0, "7ceff8ba-0001-4000-8000-000000000001"),
            ev(1, "7ceff8ba-0001-4000-8000-000000000001"),
            ev(2, "a1b2c3d4-0002-4000-8000-000000000002"),
            ev(3, "a1b2ffff-0003-4000-8000-000000000003"),
        ];
        w.commit_batch("t", &evs, &[], None).unwrap();
        (dir, crate::store::open_reader(&db).unwrap())
    }

    #[test]
    fn short_ids_resolve_to_their_session() {
        let (_d, r) = store();
        let full = "7ceff8ba-0001-4000-8000-000000000001";
        assert_eq!(
            r.resolve_correlation_id(full).unwrap(),
            IdMatch::Exact(full.into())
        );
        assert_eq!(
            r.resolve_correlation_id("7ceff8ba").unwrap(),
            IdMatch::Unique(full.into())
        );
        assert_eq!(
            r.resolve_correlation_id("a1b2").unwrap(),
            IdMatch::Ambiguous {
                total: 2,
                first: vec![
                    "a1b2c3d4-0002-4000-8000-000000000002".into(),
                    "a1b2ffff-0003-4000-8000-000000000003".into()
                ]
            }
        );
        assert_eq!(r.resolve_correlation_id("7ce").unwrap(), IdMatch::None);
        assert_eq!(r.resolve_correlation_id("ffff0000").unwrap(), IdMatch::None);
        // A device id is a string of the store too, but not a session.
        assert_eq!(r.resolve_correlation_id("6f1c").unwrap(), IdMatch::None);
        // The session view of a short id is that session's.
        assert_eq!(r.session_summary("7ceff8ba").unwrap().events, 2);
        assert_eq!(r.session_summary("a1b2").unwrap().events, 0, "ambiguous");
    }

    #[test]
    fn an_empty_answer_says_why() {
        let (_d, r) = store();
        let f = |f: EventFilter| r.why_empty(&f).unwrap().to_string();
        let no_id = f(EventFilter {
            correlation_ids: vec!["deadbeef".into()],
            ..Default::default()
        });
        assert_eq!(no_id, "no correlation id is or starts with deadbeef");
        let short = f(EventFilter {
            correlation_ids: vec!["7ce".into()],
            ..Default::default()
        });
        assert!(short.contains("at least 4 characters"), "{short}");
        assert_eq!(
            f(EventFilter {
                grep: Some("Connection refused".into()),
                ..Default::default()
            }),
            "no event contains \"Connection refused\""
        );
        assert_eq!(
            f(EventFilter {
                since: Some(Timestamp::from_nanos(1_900_000_000_000_000_000)),
                ..Default::default()
            }),
            "no events in the time window"
        );
        let both = EventFilter {
            correlation_ids: vec!["7ceff8ba".into()],
            grep: Some("batch 3".into()),
            ..Default::default()
        };
        assert_eq!(r.count_events(&both).unwrap(), 0);
        assert_eq!(r.why_empty(&both).unwrap(), EmptyReason::FiltersExcludeAll);
        let empty = tempfile::tempdir().unwrap();
        let db = empty.path().join("e.db");
        drop(Writer::open(&db).unwrap());
        let r = crate::store::open_reader(&db).unwrap();
        assert_eq!(
            r.why_empty(&EventFilter::default()).unwrap(),
            EmptyReason::EmptyStore
        );
    }
}
