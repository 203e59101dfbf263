//! The text index behind `EventFilter::grep`: which blocks of events can contain a text.
//!
//! A text search must match every column a row shows (the summary and the interned columns:
//! source, device, type, category, correlation id, peer, model types, subject) and must not
//! scan ten million summaries to say "nothing". An FTS5 trigram index answers that, but
//! building it cost 11 to 17 µs per event here (measured, see README), several times the
//! whole ingest budget (300,000 events/s is 3.3 µs). This index is far cheaper:
//!
//! - events are cut into blocks of [`EVENT_BLOCK`] consecutive store ids; each block has a
//!   Bloom filter (`text_blocks.bits`) of the 3-byte grams of its summaries (ASCII
//!   letters folded to lower case, as SQLite's `LIKE` folds them) and the exact set of the
//!   string ids of its interned columns (`text_blocks.ids`, sorted, delta varints: a few
//!   hundred per block; in a Bloom filter they were false positives in a block of seven);
//! - strings are cut the same way (`string_blocks`) with the 3- and 4-byte grams of their
//!   text (and of the snake_case spelling of a type name);
//! - a search computes the grams of its text, finds the strings that contain it (reading only
//!   the string blocks whose filter has every gram) and the event blocks whose filter has every
//!   gram or one of those strings, and the query reads only those id ranges.
//!
//! A Bloom filter has no false negatives, so the answer is exact: the query itself still
//! checks every row (`LIKE` on the summary, the matched string ids on the other columns); the
//! index only says which rows cannot match. The writer updates it in the transaction that
//! stores the events (rows above the `meta` high-water marks), so readers never see events
//! the index does not cover; rows above the marks (none, normally) are always read.

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::model::canonical_type;

/// Events per block (a power of two): a candidate block costs a scan of this many rows.
pub const EVENT_BLOCK_SHIFT: u32 = 12;
pub const EVENT_BLOCK: i64 = 1 << EVENT_BLOCK_SHIFT;
/// Strings per block: 256 random UUIDs leave a filter a third full (1024 filled it).
pub const STRING_BLOCK_SHIFT: u32 = 8;
/// Bytes of each block's filter (32,768 bits).
pub const BLOOM_BYTES: usize = 4096;
const BLOOM_BITS: u64 = (BLOOM_BYTES * 8) as u64;

/// `meta` keys: every event (string) id up to this is in the index.
pub const EVENTS_UPTO: &str = "text_events_upto";
pub const STRINGS_UPTO: &str = "text_strings_upto";

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A Bloom filter of [`BLOOM_BITS`] bits with two probes per item.
#[derive(Clone)]
pub struct Bloom(Vec<u8>);

impl Bloom {
    pub fn new() -> Self {
        Bloom(vec![0; BLOOM_BYTES])
    }

    /// A stored filter; one of another size (never written by this version) is ignored.
    fn from_blob(b: Vec<u8>) -> Option<Self> {
        (b.len() == BLOOM_BYTES).then_some(Bloom(b))
    }

    fn probes(h: u64) -> [usize; 2] {
        [
            (h >> 49) as usize % BLOOM_BITS as usize,
            ((h >> 17) & (BLOOM_BITS - 1)) as usize,
        ]
    }

    fn insert_hash(&mut self, h: u64) {
        for p in Self::probes(h) {
            self.0[p / 8] |= 1 << (p % 8);
        }
    }

    #[cfg(test)]
    fn has_hash(&self, h: u64) -> bool {
        Self::probes(h)
            .iter()
            .all(|&p| self.0[p / 8] & (1 << (p % 8)) != 0)
    }

    /// Adds every 4-byte gram of `text` (ASCII folded to lower case): for strings, where ids
    /// made of hex digits hold every 3-gram of hex in a few hundred (a text under 4 bytes
    /// reads every string).
    pub fn insert_text(&mut self, text: &str) {
        for_each_gram(text.as_bytes(), STRING_GRAMS, |h| self.insert_hash(h));
    }

    /// Adds every 3-byte gram of an event's summary (half the work of 3- and 4-grams; the
    /// ids are interned, so summaries hold few runs of hex).
    pub fn insert_summary(&mut self, text: &str) {
        for_each_gram(text.as_bytes(), SUMMARY_GRAMS, |h| self.insert_hash(h));
    }

    #[cfg(test)]
    fn has_all(&self, grams: &[u64]) -> bool {
        grams.iter().all(|&h| self.has_hash(h))
    }
}

impl Default for Bloom {
    fn default() -> Self {
        Self::new()
    }
}

const GRAM_SEED: u64 = 0x6772_616d_0000_0000;

/// The hash of one gram as stored filters hold it (the length, then the bytes folded to lower
/// case); [`for_each_gram`] computes the same values rolling.
#[cfg(test)]
fn gram_hash(bytes: &[u8]) -> u64 {
    let mut v: u64 = bytes.len() as u64;
    for &b in bytes {
        v = (v << 8) | u64::from(b.to_ascii_lowercase());
    }
    mix(v ^ GRAM_SEED)
}

/// Sorted ids as delta LEB128 varints.
fn encode_ids(ids: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 3);
    let mut prev = 0i64;
    for &id in ids {
        let mut d = id.wrapping_sub(prev) as u64;
        prev = id;
        loop {
            let b = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }
    out
}

/// The ids of [`encode_ids`]; stops at a truncated varint.
fn decode_ids(mut b: &[u8], mut f: impl FnMut(i64) -> bool) -> bool {
    let mut prev = 0i64;
    while !b.is_empty() {
        let (mut d, mut shift) = (0u64, 0u32);
        loop {
            let Some((&byte, rest)) = b.split_first() else {
                return false;
            };
            b = rest;
            if shift < 64 {
                d |= u64::from(byte & 0x7f) << shift;
            }
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        prev = prev.wrapping_add(d as i64);
        if f(prev) {
            return true;
        }
    }
    false
}

/// Does the encoded set hold one of `sorted`?
fn ids_intersect(encoded: &[u8], sorted: &[i64]) -> bool {
    !sorted.is_empty() && decode_ids(encoded, |id| sorted.binary_search(&id).is_ok())
}

/// The gram lengths of each filter.
const STRING_GRAMS: &[usize] = &[4];
const SUMMARY_GRAMS: &[usize] = &[3];

/// Calls `f` with the hash of every `n`-byte window of `b` for each `n` of `sizes` (at most
/// 7): the same values as [`gram_hash`] of each window, computed rolling (a byte each, not n:
/// this is the text index's share of ingest).
fn for_each_gram(b: &[u8], sizes: &[usize], mut f: impl FnMut(u64)) {
    for &n in sizes {
        debug_assert!((1..=7).contains(&n));
        if b.len() < n {
            continue;
        }
        let bits = 8 * n as u32;
        let mask = (1u64 << bits) - 1;
        let tag = (n as u64) << bits;
        let mut v = 0u64;
        for (i, &c) in b.iter().enumerate() {
            v = ((v << 8) | u64::from(c.to_ascii_lowercase())) & mask;
            if i + 1 >= n {
                f(mix((v | tag) ^ GRAM_SEED));
            }
        }
    }
}

/// The grams a text to find must have in a string's filter, or None when it is too short to
/// use the index.
pub fn needle_grams(needle: &str) -> Option<Vec<u64>> {
    grams_of(needle, STRING_GRAMS)
}

fn grams_of(needle: &str, sizes: &[usize]) -> Option<Vec<u64>> {
    let b = needle.as_bytes();
    if sizes.iter().any(|&n| b.len() < n) {
        return None;
    }
    let mut v = Vec::new();
    for_each_gram(b, sizes, |h| v.push(h));
    v.sort_unstable();
    v.dedup();
    Some(v)
}

/// Does `hay` contain `needle` (already ASCII-lower-cased), ASCII case folded as `LIKE` does?
fn contains_folded(hay: &str, needle_lower: &str) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    let h = hay.as_bytes();
    let n = needle_lower.as_bytes();
    h.len() >= n.len()
        && h.windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// Does an interned string, as a row shows it, contain the text? A type also matches in its
/// snake_case spelling (`relay_dead` finds `RelayDead`).
pub fn string_matches(text: &str, needle_lower: &str) -> bool {
    contains_folded(text, needle_lower)
        || snake_spelling(text).is_some_and(|s| contains_folded(&s, needle_lower))
}

/// The snake_case spelling a row may show a name in, for names with capitals
/// (`RelayDead`); ids and lower-case names have none (no work for the many ids).
fn snake_spelling(text: &str) -> Option<String> {
    if !text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    match canonical_type(text) {
        std::borrow::Cow::Owned(s) => Some(s),
        std::borrow::Cow::Borrowed(_) => None,
    }
}

/// Does an event match a text search, exactly as the store's `grep` filter decides (for a
/// find that highlights rows already on screen)?
pub fn event_matches(e: &crate::model::Event, text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    contains_folded(&e.summary, &lower)
        || [
            Some(e.source.as_str()),
            e.device_id.as_deref(),
            Some(e.event_type.as_str()),
            Some(e.category.as_str()),
            e.correlation_id.as_deref(),
            e.peer_device_id.as_deref(),
            e.model_types.as_deref(),
            e.subject.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|s| string_matches(s, &lower))
}

fn meta(conn: &Connection, key: &str) -> Result<i64> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn set_meta(tx: &Connection, key: &str, value: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// One block being updated: its filter and (for events) its string ids.
struct Block {
    number: i64,
    bloom: Bloom,
    /// Sorted and deduplicated when written.
    ids: Vec<i64>,
    /// The longest run of ASCII digits in its summaries (None: not known, e.g. a block a
    /// build without it wrote). Digits fill every digit gram of a block's filter (counts,
    /// numbers), so a text of more digits in a row than any summary has is ruled out here.
    digits: Option<i64>,
}

/// A block row as read: filter, string ids, longest digit run.
type StoredBlock = (Vec<u8>, Option<Vec<u8>>, Option<i64>);

/// The longest run of ASCII digits in `b`.
fn digit_run(b: &[u8]) -> i64 {
    let (mut best, mut run) = (0i64, 0i64);
    for &c in b {
        if c.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// Filters being updated, by block, read from the store on first use.
struct Pending<'t> {
    table: &'static str,
    shift: u32,
    /// Keeps the exact set of string ids (`text_blocks.ids`).
    with_ids: bool,
    current: Option<Block>,
    conn: &'t Connection,
}

impl<'t> Pending<'t> {
    fn new(conn: &'t Connection, table: &'static str, shift: u32, with_ids: bool) -> Self {
        Pending {
            table,
            shift,
            with_ids,
            current: None,
            conn,
        }
    }

    fn block_for(&mut self, id: i64) -> Result<&mut Block> {
        let number = id >> self.shift;
        if self.current.as_ref().map(|c| c.number) != Some(number) {
            self.flush()?;
            let cols = if self.with_ids {
                "bits, ids, digits"
            } else {
                "bits, NULL, NULL"
            };
            let stored: Option<StoredBlock> = self
                .conn
                .prepare_cached(&format!(
                    "SELECT {cols} FROM {} WHERE block = ?1",
                    self.table
                ))?
                .query_row([number], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let digits = match &stored {
                None => Some(0),
                Some((_, _, d)) => *d,
            };
            let (bits, ids, _) = stored.unwrap_or_default();
            let mut set = Vec::new();
            decode_ids(ids.as_deref().unwrap_or_default(), |id| {
                set.push(id);
                false
            });
            self.current = Some(Block {
                number,
                bloom: Bloom::from_blob(bits).unwrap_or_default(),
                ids: set,
                digits,
            });
        }
        match self.current.as_mut() {
            Some(b) => Ok(b),
            None => unreachable!("set just above"),
        }
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(mut b) = self.current.take() {
            if self.with_ids {
                b.ids.sort_unstable();
                b.ids.dedup();
                self.conn
                    .prepare_cached(&format!(
                        "INSERT INTO {} (block, bits, ids, digits) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (block) DO UPDATE SET bits = excluded.bits, ids = excluded.ids,
                             digits = excluded.digits",
                        self.table
                    ))?
                    .execute(params![b.number, b.bloom.0, encode_ids(&b.ids), b.digits])?;
            } else {
                self.conn
                    .prepare_cached(&format!(
                        "INSERT INTO {} (block, bits) VALUES (?1, ?2)
                         ON CONFLICT (block) DO UPDATE SET bits = excluded.bits",
                        self.table
                    ))?
                    .execute(params![b.number, b.bloom.0])?;
            }
        }
        Ok(())
    }
}

/// Adds the strings and events stored since the last call (above the high-water marks) to the
/// index, reading them from the store; called by the migration that creates the index.
/// Returns how many events it indexed.
pub fn update(conn: &Connection) -> Result<u64> {
    Indexer::begin(conn)?.finish()
}

/// The index's upkeep inside one writer transaction: [`Indexer::begin`] before the events go
/// in, [`Indexer::add`] for each event stored (from the writer's memory: reading them back
/// cost a fifth of ingest), [`Indexer::finish`] before the commit.
pub struct Indexer<'t> {
    conn: &'t Connection,
    upto: i64,
    events: EventIndexer<'t>,
}

impl<'t> Indexer<'t> {
    /// Indexes the rows above the high-water mark that no writer handed over (none,
    /// normally: a store written by a build without the index), so the index covers every
    /// event up to its mark.
    pub fn begin(conn: &'t Connection) -> Result<Self> {
        let upto = meta(conn, EVENTS_UPTO)?;
        let mut events = EventIndexer::new(conn);
        let mut st = conn.prepare_cached(
            "SELECT id, summary, source, device, event_type, category, corr, peer, model_types, subject
             FROM events WHERE id > ?1 ORDER BY id",
        )?;
        let mut rows = st.query([upto])?;
        while let Some(r) = rows.next()? {
            let mut ids = [None; 8];
            for (col, slot) in (2..10).zip(ids.iter_mut()) {
                *slot = r.get::<_, Option<i64>>(col)?;
            }
            let summary = r.get_ref(1)?.as_str().unwrap_or_default();
            events.add(r.get(0)?, summary, &ids)?;
        }
        Ok(Indexer { conn, upto, events })
    }

    /// An event just stored: its id, summary and the string ids of its interned columns
    /// (source, device, type, category, correlation id, peer, model types, subject). Ids
    /// mostly ascend; any order is right.
    pub fn add(&mut self, id: i64, summary: &str, ids: &[Option<i64>; 8]) -> Result<()> {
        self.events.add(id, summary, ids)
    }

    /// One more string id shown by an event stored before (a device attributed to it now).
    pub fn add_string(&mut self, id: i64, string_id: i64) -> Result<()> {
        self.events.add_id(id, string_id)
    }

    /// Writes the filters, indexes the strings interned meanwhile and moves the marks.
    /// Returns how many events were indexed.
    pub fn finish(mut self) -> Result<u64> {
        self.events.pending.flush()?;
        if self.events.max > self.upto {
            set_meta(self.conn, EVENTS_UPTO, self.events.max)?;
        }
        index_strings(self.conn)?;
        Ok(self.events.n)
    }
}

/// Adds the strings above their high-water mark to the string filters.
fn index_strings(conn: &Connection) -> Result<()> {
    let s_upto = meta(conn, STRINGS_UPTO)?;
    let mut strings = Pending::new(conn, "string_blocks", STRING_BLOCK_SHIFT, false);
    let mut s_max = s_upto;
    {
        let mut st =
            conn.prepare_cached("SELECT id, text FROM strings WHERE id > ?1 ORDER BY id")?;
        let mut rows = st.query([s_upto])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let text = r.get_ref(1)?.as_str().unwrap_or_default();
            let b = &mut strings.block_for(id)?.bloom;
            b.insert_text(text);
            if let Some(snake) = snake_spelling(text) {
                b.insert_text(&snake);
            }
            s_max = id;
        }
    }
    strings.flush()?;
    if s_max > s_upto {
        set_meta(conn, STRINGS_UPTO, s_max)?;
    }
    Ok(())
}

/// Event blocks being updated, with the last id of each column (most repeat from one event
/// to the next, so the block's id list grows by few).
struct EventIndexer<'t> {
    pending: Pending<'t>,
    last: [i64; 8],
    block: i64,
    max: i64,
    n: u64,
}

impl<'t> EventIndexer<'t> {
    fn new(conn: &'t Connection) -> Self {
        EventIndexer {
            pending: Pending::new(conn, "text_blocks", EVENT_BLOCK_SHIFT, true),
            last: [0; 8],
            block: -1,
            max: 0,
            n: 0,
        }
    }

    fn add(&mut self, id: i64, summary: &str, ids: &[Option<i64>; 8]) -> Result<()> {
        let b = self.pending.block_for(id)?;
        if b.number != self.block {
            self.block = b.number;
            self.last = [0; 8];
        }
        b.bloom.insert_summary(summary);
        if let Some(d) = b.digits.as_mut() {
            *d = (*d).max(digit_run(summary.as_bytes()));
        }
        for (sid, prev) in ids.iter().zip(self.last.iter_mut()) {
            if let Some(sid) = *sid {
                if sid != *prev {
                    b.ids.push(sid);
                    *prev = sid;
                }
            }
        }
        self.max = self.max.max(id);
        self.n += 1;
        Ok(())
    }

    /// One more string id shown by an event already indexed.
    fn add_id(&mut self, id: i64, sid: i64) -> Result<()> {
        let b = self.pending.block_for(id)?;
        b.ids.push(sid);
        self.block = -1;
        Ok(())
    }
}

/// Retention deleted every event up to `hi`: drop the filters of the blocks it emptied.
pub fn prune(tx: &Transaction<'_>, hi: i64) -> Result<()> {
    tx.execute(
        "DELETE FROM text_blocks WHERE block < ?1",
        [(hi + 1) >> EVENT_BLOCK_SHIFT],
    )?;
    Ok(())
}

/// Retention deleted strings of string block `block`: its filter is built again from the
/// strings left, exactly as [`index_strings`] builds one (the row goes when none is left).
pub(super) fn rebuild_string_block(tx: &Connection, block: i64) -> Result<()> {
    let lo = block << STRING_BLOCK_SHIFT;
    let hi = lo + (1 << STRING_BLOCK_SHIFT) - 1;
    let mut bloom = Bloom::new();
    let mut left = 0usize;
    {
        let mut st = tx.prepare_cached("SELECT text FROM strings WHERE id BETWEEN ?1 AND ?2")?;
        let mut rows = st.query([lo, hi])?;
        while let Some(r) = rows.next()? {
            let text = r.get_ref(0)?.as_str().unwrap_or_default();
            bloom.insert_text(text);
            if let Some(snake) = snake_spelling(text) {
                bloom.insert_text(&snake);
            }
            left += 1;
        }
    }
    if left == 0 {
        tx.prepare_cached("DELETE FROM string_blocks WHERE block = ?1")?
            .execute([block])?;
    } else {
        tx.prepare_cached("UPDATE string_blocks SET bits = ?2 WHERE block = ?1")?
            .execute(params![block, bloom.0])?;
    }
    Ok(())
}

/// What the index says about a text to find.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextMatch {
    /// Every interned string (source, device, type, id, ...) that contains the text.
    pub string_ids: Vec<i64>,
    /// The event id ranges that can hold a match (inclusive), in order; None when the index
    /// cannot narrow the search (a text under 3 bytes, or matches spread over too many blocks).
    pub ranges: Option<Vec<(i64, i64)>>,
}

/// Up to this many candidate blocks are always read by id range (then sorted by time); more
/// are read so only when they are at most one block in [`SPARSE`] of the store: then the text
/// is rare (a long session's id over an hour of blocks: 10 s by the scan in time order at 10M
/// events, measured). Otherwise it is common, and the scan in time order finds a screenful
/// sooner than reading and sorting every candidate (a common word's first screen: 140 ms by
/// ranges at 200,000 events, under 1 ms by the scan).
pub const MAX_BLOCKS: usize = 12;
pub const SPARSE: usize = 8;

/// The interned strings that contain `needle` as a row shows them (without the event blocks).
pub fn strings_containing(conn: &Connection, needle: &str) -> Result<Vec<i64>> {
    let lower = needle.to_ascii_lowercase();
    matching_strings(conn, &lower, needle_grams(needle).as_deref())
        .wrap_err("cannot search the interned strings")
}

/// Are `candidates` of `total` blocks few enough to read by id range?
fn read_by_ranges(candidates: usize, total: usize) -> bool {
    candidates <= MAX_BLOCKS || candidates * SPARSE <= total
}

/// Finds the strings that contain `needle` and the event blocks that can.
pub fn find(conn: &Connection, needle: &str) -> Result<TextMatch> {
    let lower = needle.to_ascii_lowercase();
    let grams = needle_grams(needle);
    let string_ids = matching_strings(conn, &lower, grams.as_deref())
        .wrap_err("cannot search the interned strings")?;
    let mut sorted = string_ids.clone();
    sorted.sort_unstable();
    let Some(grams) = grams_of(needle, SUMMARY_GRAMS) else {
        return Ok(TextMatch {
            string_ids,
            ranges: None,
        });
    };
    let upto = meta(conn, EVENTS_UPTO)?;
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    let needle_digits = digit_run(needle.as_bytes());
    let mut st =
        conn.prepare_cached("SELECT block, bits, ids, digits FROM text_blocks ORDER BY block")?;
    let mut rows = st.query([])?;
    let (mut blocks, mut total) = (0usize, 0usize);
    while let Some(r) = rows.next()? {
        total += 1;
        let block: i64 = r.get(0)?;
        let bits = r.get_ref(1)?.as_blob().unwrap_or_default();
        let bloom = BloomRef(bits);
        let ids = r.get_ref(2)?.as_blob_or_null()?.unwrap_or_default();
        let digits: Option<i64> = r.get(3)?;
        let summary_may = bloom.is_unusable()
            || (digits.is_none_or(|d| d >= needle_digits) && bloom.has_all(&grams));
        if summary_may || ids_intersect(ids, &sorted) {
            blocks += 1;
            let lo = block << EVENT_BLOCK_SHIFT;
            let hi = lo + EVENT_BLOCK - 1;
            match ranges.last_mut() {
                Some(last) if last.1 + 1 == lo => last.1 = hi,
                _ => ranges.push((lo, hi)),
            }
        }
    }
    if !read_by_ranges(blocks, total) {
        return Ok(TextMatch {
            string_ids,
            ranges: None,
        });
    }
    // Events not indexed yet (none when the writer keeps the index) are always read.
    let top: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
    if top > upto {
        match ranges.last_mut() {
            Some(last) if last.1 >= upto => last.1 = i64::MAX,
            _ => ranges.push((upto + 1, i64::MAX)),
        }
    }
    Ok(TextMatch {
        string_ids,
        ranges: Some(ranges),
    })
}

/// A stored filter read in place.
struct BloomRef<'a>(&'a [u8]);

impl BloomRef<'_> {
    fn is_unusable(&self) -> bool {
        self.0.len() != BLOOM_BYTES
    }
    fn has(&self, h: u64) -> bool {
        Bloom::probes(h)
            .iter()
            .all(|&p| self.0[p / 8] & (1 << (p % 8)) != 0)
    }
    fn has_all(&self, grams: &[u64]) -> bool {
        grams.iter().all(|&h| self.has(h))
    }
}

/// The ids of the strings that contain `lower` as a row shows them, reading only the string
/// blocks whose filter has every gram (all of them when the text is too short).
fn matching_strings(conn: &Connection, lower: &str, grams: Option<&[u64]>) -> Result<Vec<i64>> {
    let upto = meta(conn, STRINGS_UPTO)?;
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    match grams {
        None => ranges.push((i64::MIN, i64::MAX)),
        Some(grams) => {
            let mut st =
                conn.prepare_cached("SELECT block, bits FROM string_blocks ORDER BY block")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let block: i64 = r.get(0)?;
                let bloom = BloomRef(r.get_ref(1)?.as_blob().unwrap_or_default());
                if bloom.is_unusable() || bloom.has_all(grams) {
                    let lo = block << STRING_BLOCK_SHIFT;
                    let hi = lo + (1 << STRING_BLOCK_SHIFT) - 1;
                    match ranges.last_mut() {
                        Some(last) if last.1 + 1 == lo => last.1 = hi,
                        _ => ranges.push((lo, hi)),
                    }
                }
            }
            match ranges.last_mut() {
                Some(last) if last.1 >= upto => last.1 = i64::MAX,
                _ => ranges.push((upto + 1, i64::MAX)),
            }
        }
    }
    let mut out = Vec::new();
    let mut st = conn.prepare_cached("SELECT id, text FROM strings WHERE id BETWEEN ?1 AND ?2")?;
    for (lo, hi) in ranges {
        let mut rows = st.query([lo, hi])?;
        while let Some(r) = rows.next()? {
            let text = r.get_ref(1)?.as_str().unwrap_or_default();
            if string_matches(text, lower) {
                out.push(r.get(0)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_has_every_gram_of_what_it_holds() {
        let mut b = Bloom::new();
        let text = "Peer 7ceff8ba disconnected: Connection REFUSED";
        b.insert_text(text);
        let mut summary = Bloom::new();
        summary.insert_summary(text);
        for needle in ["connection refused", "7CEFF8BA", "ed: C", "Pee", "refused"] {
            if let Some(g) = needle_grams(needle) {
                assert!(b.has_all(&g), "{needle}");
            }
            assert!(
                summary.has_all(&grams_of(needle, SUMMARY_GRAMS).unwrap()),
                "{needle}"
            );
        }
        let absent = needle_grams("zzqx-nothing-here").unwrap();
        assert!(!b.has_all(&absent));
        assert_eq!(needle_grams("abc"), None, "strings: 4-grams");
        assert!(grams_of("abc", SUMMARY_GRAMS).is_some());
        assert_eq!(grams_of("ab", SUMMARY_GRAMS), None);
        let enc = encode_ids(&[3, 42, 300, 1 << 40]);
        let mut back = Vec::new();
        decode_ids(&enc, |id| {
            back.push(id);
            false
        });
        assert_eq!(back, [3, 42, 300, 1 << 40]);
        assert!(ids_intersect(&enc, &[1, 42]));
        assert!(!ids_intersect(&enc, &[43, 44]));
        assert!(!ids_intersect(&enc, &[]));
        assert!(
            !ids_intersect(&enc[..enc.len() - 1], &[1 << 40]),
            "truncated"
        );
    }

    #[test]
    fn few_or_sparse_candidates_are_read_by_range() {
        assert!(read_by_ranges(0, 2442));
        assert!(read_by_ranges(12, 12));
        assert!(!read_by_ranges(13, 13), "every block: a common text");
        assert!(read_by_ranges(300, 2442), "one block in eight: rare");
        assert!(!read_by_ranges(400, 2442));
    }

    #[test]
    fn strings_match_as_shown_and_in_snake_case() {
        assert!(string_matches("RelayDead", "relay_dead"));
        assert!(string_matches("relay_dead", "relay_d"));
        assert!(string_matches("wss://Relay.example", "relay.ex"));
        assert!(!string_matches("relay_alive", "relay_dead"));
        assert!(contains_folded("anything", ""));
    }

    #[test]
    fn an_event_matches_as_the_store_filter_decides() {
        use crate::model::{Event, Severity, Timestamp};
        let mut e = Event::new(
            Timestamp::from_nanos(0),
            "ngit",
            "RelayDead",
            "relay",
            Severity::Error,
            "wss://r: LIVE -> DEAD".into(),
        );
        e.correlation_id = Some("7ceff8ba-1".into());
        for yes in ["relay_dead", "live -> dead", "NGIT", "7CEFF8BA", "relay"] {
            assert!(event_matches(&e, yes), "{yes}");
        }
        assert!(!event_matches(&e, "connection refused"));
    }

    #[test]
    fn rolling_grams_hash_as_stored_filters_do() {
        let text = "Push to ssh://Mirror-EU.example.com/p.git FAILED: ünïcode \u{1b}[31m 12345";
        for &n in &[3usize, 4] {
            let mut rolled = Vec::new();
            for_each_gram(text.as_bytes(), &[n], |h| rolled.push(h));
            let direct: Vec<u64> = text.as_bytes().windows(n).map(gram_hash).collect();
            assert_eq!(rolled, direct, "{n}-grams");
        }
        let mut none = 0;
        for_each_gram(b"ab", &[3], |_| none += 1);
        assert_eq!(none, 0);
    }
}
