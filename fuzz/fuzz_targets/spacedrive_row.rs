//! A `sync.db` row (`spacedrive-db:`) holding any values of any storage class, decoded as
//! the source decodes it. What is read is clean, and it is the same event (same identity) as
//! the same event read from an export.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rusqlite::types::Value;
use syncscope::export::{EventWriter, Format};
use syncscope::fuzzing::spacedrive_row;
use syncscope::model::{parse_wire_event, StoredEvent};
use syncscope_fuzz::{check_event, check_text};

/// Twelve column values from the input: a tag byte, then the value (texts and blobs take a
/// length byte).
fn columns(mut data: &[u8]) -> ([Value; 12], [bool; 12]) {
    let mut values: [Value; 12] = std::array::from_fn(|_| Value::Null);
    let mut as_text = [false; 12];
    for i in 0..12 {
        let Some((&tag, rest)) = data.split_first() else {
            break;
        };
        data = rest;
        let mut take = |n: usize| {
            let n = n.min(data.len());
            let (a, b) = data.split_at(n);
            data = b;
            a
        };
        values[i] = match tag % 5 {
            0 => Value::Null,
            1 => {
                let mut b = [0u8; 8];
                let t = take(8);
                b[..t.len()].copy_from_slice(t);
                Value::Integer(i64::from_le_bytes(b))
            }
            2 => {
                let mut b = [0u8; 8];
                let t = take(8);
                b[..t.len()].copy_from_slice(t);
                Value::Real(f64::from_le_bytes(b))
            }
            3 => {
                let n = take(1).first().copied().unwrap_or(0) as usize;
                Value::Text(String::from_utf8_lossy(take(n)).into_owned())
            }
            _ => {
                let n = take(1).first().copied().unwrap_or(0) as usize;
                as_text[i] = tag & 0x80 != 0;
                Value::Blob(take(n).to_vec())
            }
        };
    }
    (values, as_text)
}

fuzz_target!(|data: &[u8]| {
    let (values, as_text) = columns(data);
    let row = spacedrive_row(&values, &as_text).expect("an in-memory table takes any row");
    let e = match row {
        Ok(e) => e,
        Err((reason, excerpt)) => {
            check_text(&reason);
            check_text(&excerpt);
            return;
        }
    };
    check_event(&e);
    let mut out = Vec::new();
    let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let mut w = EventWriter::begin_at(Format::Jsonl, &mut out, 1, at).expect("a Vec takes it");
    let stored = StoredEvent {
        id: 1,
        key: 0,
        event: e.clone(),
    };
    w.write(&stored).expect("a Vec takes it");
    w.finish().expect("a Vec takes it");
    let back = parse_wire_event(out.trim_ascii_end(), "spacedrive")
        .unwrap_or_else(|err| panic!("the row's export does not read: {err}: {e:?}"));
    assert_eq!(
        e.dedup_key(),
        back.dedup_key(),
        "row {e:?}\nexport {back:?}"
    );
});
