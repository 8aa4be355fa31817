//! Path-query values as a manifest records them: 32 lowercase hex digits
//! for each key and value.
//!
//! It must never accept a recorded value that is not exactly 32 hex digits:
//! those bytes are written into a dep graph.

use crate::digest::hex;
use crate::rustc::depgraph;
use crate::snapshot::manifest::PathValue;

/// Path-query values as a manifest records them (hex).
pub fn to_records(values: &depgraph::PathValues) -> Vec<PathValue> {
    values
        .iter()
        .map(|(&(query, key), value)| PathValue {
            query,
            key: hex(&key),
            value: hex(value),
        })
        .collect()
}

/// The values a manifest records; `None` if one is not 32 hex digits.
pub fn from_records(records: &[PathValue]) -> Option<depgraph::PathValues> {
    records
        .iter()
        .map(|r| Some(((r.query, unhex(&r.key)?), unhex(&r.value)?)))
        .collect()
}

fn unhex(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
