//! The writer's string interning: text -> id of the `strings` table, through a bounded cache,
//! the last string of each call site, and a filter of every text the store holds (so a new
//! string, most of a Gerrit stream's refs, is inserted without two index lookups that miss).

use std::collections::HashMap;

use color_eyre::eyre::Result;
use rusqlite::{params, OptionalExtension, Transaction};
use xxhash_rust::xxh3::{xxh3_64, Xxh3DefaultBuilder};

use super::schema;

/// Interned strings kept in memory before the cache is reset (bounds the writer's memory).
const INTERN_CACHE_MAX: usize = 200_000;

/// The string -> id cache of interned strings (a fast, fixed-seed hash: keys are our own).
type Interned = HashMap<String, i64, Xxh3DefaultBuilder>;

/// Call sites of [`Interner::id_in`]: each remembers the last string it interned.
#[derive(Clone, Copy)]
pub(super) enum Slot {
    Source,
    Device,
    Type,
    Category,
    Corr,
    Peer,
    Models,
    Subject,
    Ref,
    Remote,
    Project,
}
const SLOTS: usize = Slot::Project as usize + 1;

/// Interns strings through a bounded cache, and knows which ids the current transaction made.
#[derive(Default)]
pub(super) struct Interner {
    pub(super) cache: Interned,
    /// The last string (and its id) of each call site: consecutive events mostly repeat their
    /// source, device, type and category, and events of one push their ref and remote. A
    /// comparison with it costs less than a lookup among hundreds of thousands of strings.
    recent: [Option<(String, i64)>; SLOTS],
    /// The first id the current transaction interned. `strings` ids grow and are never
    /// reused (retention never deletes the highest), so every id from it on is new in this transaction: no stored row refers to
    /// it yet.
    pub(super) fresh_from: Option<i64>,
    /// The id the next new string gets (None: read it from the store).
    next_id: Option<i64>,
    /// Rows in `string_ids_recent` (None: count them).
    pub(super) recent_rows: Option<i64>,
    /// Every text the store holds, as a filter (see [`Known`]).
    known: Known,
    /// While retention looks for unused strings: every id below its limit this writer hands
    /// out is marked used (see `super::retention`).
    pub(super) marks: Option<super::retention::Marks>,
}

/// Built when a writer's first transaction finds at most this many strings (reading them all
/// takes a few tens of milliseconds); a larger store interns through its indexes as before.
const KNOWN_BUILD_MAX: i64 = 200_000;
/// Strings the filter holds before it is dropped: past this its false positives (lookups
/// that find nothing) are too many to pay for its megabyte.
const KNOWN_MAX: usize = 2_000_000;
/// Bits of the filter (1 MiB), and probes per text.
const KNOWN_BITS: usize = 1 << 23;
const KNOWN_PROBES: u64 = 3;

/// `Known::Filter::upto` after a rollback: take the store's highest id at the next begin.
const ROLLED_BACK: i64 = -1;

/// What the writer knows of the texts in `strings`.
#[derive(Default)]
enum Known {
    /// Not looked at yet.
    #[default]
    Unknown,
    /// Too many, or another connection wrote strings: always look up.
    Off,
    /// A Bloom filter of the hash of every text in the store, and the highest string id
    /// it covers. A text it does not have is new: no lookup.
    Filter {
        bits: Vec<u64>,
        count: usize,
        upto: i64,
    },
}

impl Known {
    fn probes(h: u64) -> impl Iterator<Item = usize> {
        let step = (h >> 32) | 1;
        (0..KNOWN_PROBES).map(move |i| (h.wrapping_add(i.wrapping_mul(step)) as usize) % KNOWN_BITS)
    }

    /// False only when the store surely has no string `text`.
    fn may_have(&self, text: &str) -> bool {
        match self {
            Known::Filter { bits, .. } => {
                Known::probes(xxh3_64(text.as_bytes())).all(|p| bits[p / 64] & (1 << (p % 64)) != 0)
            }
            _ => true,
        }
    }

    fn insert(&mut self, text: &str, id: i64) {
        if let Known::Filter { bits, count, upto } = self {
            for p in Known::probes(xxh3_64(text.as_bytes())) {
                bits[p / 64] |= 1 << (p % 64);
            }
            *count += 1;
            if *upto != ROLLED_BACK {
                *upto = (*upto).max(id);
            }
            if *count > KNOWN_MAX {
                *self = Known::Off;
            }
        }
    }

    /// At the start of a transaction: builds the filter the first time (small stores), and
    /// turns it off when `strings` holds ids it has not seen (a row written by another
    /// connection, which the single-writer rule should prevent: then lookups are exact).
    /// Returns false when another connection wrote strings.
    fn begin(&mut self, tx: &Transaction<'_>) -> Result<bool> {
        if matches!(self, Known::Off) {
            return Ok(true);
        }
        let max: i64 =
            tx.query_row("SELECT coalesce(max(id), 0) FROM strings", [], |r| r.get(0))?;
        match self {
            Known::Filter { upto, .. } if *upto == max => {}
            // Our own rollback: the rows it interned are gone, their texts stay (a superset).
            Known::Filter { upto, .. } if *upto == ROLLED_BACK => *upto = max,
            Known::Filter { .. } => {
                *self = Known::Off;
                return Ok(false);
            }
            Known::Unknown if max > KNOWN_BUILD_MAX => *self = Known::Off,
            Known::Unknown => {
                *self = Known::Filter {
                    bits: vec![0; KNOWN_BITS / 64],
                    count: 0,
                    upto: 0,
                };
                let mut st = tx.prepare("SELECT id, text FROM strings")?;
                let mut rows = st.query([])?;
                while let Some(r) = rows.next()? {
                    let id: i64 = r.get(0)?;
                    let text = r.get_ref(1)?.as_str().unwrap_or_default();
                    self.insert(text, id);
                }
                if let Known::Filter { upto, .. } = self {
                    *upto = max;
                }
            }
            Known::Off => {}
        }
        Ok(true)
    }
}

impl Interner {
    /// `text`'s id, as remembered by call site `slot` or found by [`Interner::id`].
    pub(super) fn id_in(&mut self, slot: Slot, tx: &Transaction<'_>, text: &str) -> Result<i64> {
        if let Some((last, id)) = &self.recent[slot as usize] {
            if last == text {
                // Marked when it was put here, or when the marks began (`start_marks`).
                return Ok(*id);
            }
        }
        let id = self.id(tx, text)?;
        if let Some(m) = &mut self.marks {
            m.mark(id);
        }
        match &mut self.recent[slot as usize] {
            Some((last, last_id)) => {
                last.clear();
                last.push_str(text);
                *last_id = id;
            }
            empty => *empty = Some((text.to_string(), id)),
        }
        Ok(id)
    }

    pub(super) fn id_opt_in(
        &mut self,
        slot: Slot,
        tx: &Transaction<'_>,
        text: Option<&str>,
    ) -> Result<Option<i64>> {
        text.map(|t| self.id_in(slot, tx, t)).transpose()
    }

    /// Called at the start of each transaction, in it.
    pub(super) fn begin(&mut self, tx: &Transaction<'_>) -> Result<()> {
        if self.cache.len() > INTERN_CACHE_MAX {
            self.cache.clear();
        }
        if !self.known.begin(tx)? {
            // Rows this writer did not write: its next id and row count are stale.
            self.next_id = None;
            self.recent_rows = None;
        }
        Ok(())
    }

    fn id(&mut self, tx: &Transaction<'_>, text: &str) -> Result<i64> {
        if let Some(id) = self.cache.get(text) {
            return Ok(*id);
        }
        // The small, hot recent tier first, then the big one (read only), then a new row;
        // no lookup at all for a text the store surely does not have.
        let may_have = self.known.may_have(text);
        let mut found: Option<i64> = None;
        if may_have {
            found = tx
                .prepare_cached("SELECT id FROM string_ids_recent WHERE text = ?1")?
                .query_row([text], |r| r.get(0))
                .optional()?;
        }
        if may_have && found.is_none() {
            found = tx
                .prepare_cached("SELECT id FROM string_ids_main WHERE text = ?1")?
                .query_row([text], |r| r.get(0))
                .optional()?;
        }
        let id = match found {
            Some(id) => id,
            None => {
                let id = match self.next_id {
                    Some(id) => id,
                    None => {
                        tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM strings", [], |r| {
                            r.get(0)
                        })?
                    }
                };
                tx.prepare_cached("INSERT INTO strings (id, text) VALUES (?1, ?2)")?
                    .execute(params![id, text])?;
                tx.prepare_cached("INSERT INTO string_ids_recent (text, id) VALUES (?1, ?2)")?
                    .execute(params![text, id])?;
                self.next_id = Some(id + 1);
                self.recent_rows = self.recent_rows.map(|n| n + 1);
                self.fresh_from.get_or_insert(id);
                self.known.insert(text, id);
                id
            }
        };
        self.cache.insert(text.to_string(), id);
        Ok(id)
    }

    /// Moves the recent string ids to the main tier once there are enough of them.
    pub(super) fn maybe_merge(&mut self, tx: &Transaction<'_>) -> Result<()> {
        let n = match self.recent_rows {
            Some(n) => n,
            None => tx.query_row("SELECT count(*) FROM string_ids_recent", [], |r| r.get(0))?,
        };
        if n >= schema::RECENT_STRINGS_MAX {
            schema::merge_string_ids(tx)?;
            self.recent_rows = Some(0);
        } else {
            self.recent_rows = Some(n);
        }
        Ok(())
    }

    /// Retention starts looking for unused strings below `limit`: the ids this writer holds
    /// in its call-site slots count as used from now on (the cache's are marked when used).
    pub(super) fn start_marks(&mut self, limit: i64) {
        let mut m = super::retention::Marks::new(limit);
        for (_, id) in self.recent.iter().flatten() {
            m.mark(*id);
        }
        self.marks = Some(m);
    }

    /// Retention deleted strings: no id it deleted may be handed out again from memory.
    /// (Ids are never reused: the highest is never deleted, so a text interned again gets
    /// a new one; the filter of known texts keeps the deleted ones, a superset.)
    pub(super) fn forget_deleted(&mut self) {
        self.cache.clear();
        self.recent = Default::default();
        self.recent_rows = None;
    }

    /// Interned by the current transaction.
    pub(super) fn is_fresh(&self, id: i64) -> bool {
        self.fresh_from.is_some_and(|f| id >= f)
    }

    /// Forgets every id (those of a rolled-back transaction no longer exist).
    pub(super) fn forget(&mut self) {
        self.cache.clear();
        // Texts of rolled-back rows stay in the filter: a lookup that finds nothing, no harm.
        if let Known::Filter { upto, .. } = &mut self.known {
            *upto = ROLLED_BACK;
        }
        self.recent = Default::default();
        self.next_id = None;
        self.recent_rows = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, TransactionBehavior};

    fn store() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        schema::migrate(&mut c).unwrap();
        c
    }

    fn intern(c: &mut Connection, i: &mut Interner, text: &str) -> Result<i64> {
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        i.begin(&tx)?;
        let id = i.id_in(Slot::Subject, &tx, text)?;
        tx.commit()?;
        Ok(id)
    }

    #[test]
    fn a_text_is_interned_once_with_or_without_the_filter() {
        let mut c = store();
        let mut i = Interner::default();
        let a = intern(&mut c, &mut i, "refs/heads/main").unwrap();
        assert!(matches!(i.known, Known::Filter { .. }));
        // A fresh interner (a restarted writer) builds the filter from the store, and finds it.
        let mut j = Interner::default();
        assert_eq!(intern(&mut c, &mut j, "refs/heads/main").unwrap(), a);
        let b = intern(&mut c, &mut j, "refs/heads/other").unwrap();
        assert_ne!(a, b);
        let n: i64 = c
            .query_row("SELECT count(*) FROM strings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn strings_written_by_another_connection_turn_the_filter_off() {
        let mut c = store();
        let mut i = Interner::default();
        intern(&mut c, &mut i, "a").unwrap();
        c.execute_batch(
            "INSERT INTO strings (id, text) VALUES (2, 'b');
             INSERT INTO string_ids_recent (text, id) VALUES ('b', 2);",
        )
        .unwrap();
        assert_eq!(
            intern(&mut c, &mut i, "b").unwrap(),
            2,
            "found, not inserted again"
        );
        assert!(matches!(i.known, Known::Off));
        assert_eq!(
            intern(&mut c, &mut i, "c").unwrap(),
            3,
            "next id read again"
        );
    }

    #[test]
    fn a_rolled_back_text_is_interned_again() {
        let mut c = store();
        let mut i = Interner::default();
        intern(&mut c, &mut i, "kept").unwrap();
        {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap();
            i.begin(&tx).unwrap();
            i.id_in(Slot::Subject, &tx, "rolled back").unwrap();
            drop(tx);
            i.forget();
        }
        let id = intern(&mut c, &mut i, "rolled back").unwrap();
        assert_eq!(id, 2);
        assert!(matches!(i.known, Known::Filter { upto: 2, .. }));
        let n: i64 = c
            .query_row("SELECT count(*) FROM strings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}
