//! What the fuzz targets share: the allocator that makes an input costing more than
//! [`LIMIT`] bytes of memory a failure, and the checks every parsed event must pass.
//!
//! The limit is counted here, not by libFuzzer's `-malloc_limit_mb` (which only sees the
//! allocations of a sanitizer's allocator, and one at a time) or `-rss_limit_mb` (which counts
//! the whole process: libFuzzer's corpus and, under ASan, its shadow memory and quarantine).
//! Every Rust allocation of the target goes through [`Limited`]; when the live heap passes
//! 64 MiB the target aborts with a message, and libFuzzer saves the input as a crash.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use syncscope::model::Event;
use syncscope::sanitize::{multi_line, one_line};

/// The memory one input may cost: live heap bytes at any moment.
pub const LIMIT: usize = 64 << 20;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static TRIPPED: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting.
pub struct Limited;

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    if now > LIMIT && !TRIPPED.swap(true, Ordering::Relaxed) {
        // No allocation from here on: a fixed message on unbuffered stderr.
        let _ = std::io::stderr()
            .write_all(b"==syncscope-fuzz== the input costs more than 64 MiB of heap\n");
        std::process::abort();
    }
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller's layout, as given.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Limited = Limited;

/// Untrusted text as the terminal sees it: no control character survives the sanitizer
/// (multi-line views keep newlines, nothing else).
pub fn check_text(text: &str) {
    let one = one_line(text);
    assert!(
        !one.chars().any(char::is_control),
        "control character after one_line: {one:?}"
    );
    let multi = multi_line(text);
    assert!(
        !multi.chars().any(|c| c.is_control() && c != '\n'),
        "control character after multi_line: {multi:?}"
    );
}

/// Every text field of an event, through [`check_text`].
pub fn check_event(e: &Event) {
    for t in [&e.source, &e.event_type, &e.category, &e.summary] {
        check_text(t);
    }
    for t in [
        &e.device_id,
        &e.details,
        &e.correlation_id,
        &e.peer_device_id,
        &e.model_types,
        &e.subject,
    ]
    .into_iter()
    .flatten()
    {
        check_text(t);
    }
}

/// Splits `data` at its first `0xff` byte (or in two halves when it has none): targets that
/// read two inputs (two answers of a poll, a chunking and a text).
pub fn split2(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => data.split_at(data.len() / 2),
    }
}

/// Lines as the followed-lines source hands them to a format: split at `\n` (without it),
/// a byte-order mark dropped from the first, blank lines skipped. (number, offset, bytes).
pub fn lines(data: &[u8]) -> impl Iterator<Item = (u64, u64, &[u8])> {
    let mut offset = 0u64;
    data.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(move |(i, l)| {
            let at = offset;
            offset += l.len() as u64 + 1;
            let l = if i == 0 {
                l.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(l)
            } else {
                l
            };
            (!l.iter().all(u8::is_ascii_whitespace)).then_some((i as u64 + 1, at, l))
        })
}
