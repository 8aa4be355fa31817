//! The exact parser of `dep-graph.bin`: header, node records and their
//! edges, per-kind counts, totals and footer, every count checked against
//! what was read.
//!
//! The bytes come from an untrusted store, so it must never read a graph of
//! a rustc other than the one its [`Layout`] was calibrated against, accept
//! anything left over, panic, or allocate more than the input's size
//! justifies. It never writes.

pub use super::cursor::Damage;
use super::cursor::Reader;
pub(super) use super::cursor::FORMAT_VERSION;
use super::graph::{Body, Graph, Node};
use super::layout::{Layout, WIDTH_BITS};

/// Why bytes are not a graph this cargo-seed can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error(
        "its dep graph was written by rustc {}, not by rustc {}, whose layout was calibrated",
        .rustc.escape_debug(),
        .calibrated.escape_debug()
    )]
    Unverified { rustc: String, calibrated: String },
    #[error("its dep graph does not parse to its trailer: {0}")]
    Damaged(#[from] Damage),
}

/// The file magic of rustc's incremental files.
pub(super) const MAGIC: &[u8; 4] = b"RSIC";
/// What rustc's `FileEncoder` writes last.
pub(super) const FOOTER: &[u8; 13] = b"rust-end-file";
/// A node record: u16 head, u32 index, key and value fingerprints.
pub(super) const RECORD: usize = 38;
/// Offset of the value fingerprint in a node record.
pub(super) const VALUE_AT: usize = 22;
/// `node_max`, `node_count` and `edge_count`, u64 each, before the footer.
pub(super) const TOTALS: usize = 24;
/// Node indices are `SerializedDepNodeIndex`, at most `0x7FFF_FFFF`.
pub(super) const INDEX_LIMIT: u64 = 0x8000_0000;

/// Parses a `dep-graph.bin` written by the rustc `layout` was calibrated
/// against, exactly: the header, every node record and its edges, one node
/// count per kind, the session count, the totals and the footer, with
/// nothing left over and every count matching what was read.
pub fn parse(bytes: &[u8], layout: &Layout) -> Result<Graph, Unreadable> {
    let body = read(bytes, &layout.rustc, Kinds::of(layout))?;
    Ok(Graph {
        body,
        layout: layout.clone(),
    })
}

/// How node records pack their kind: the part of a [`Layout`] the parser
/// needs, and what calibration tries candidates of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kinds {
    pub(super) node_kinds: u16,
    pub(super) kind_bits: u32,
}

impl Kinds {
    fn of(layout: &Layout) -> Kinds {
        Kinds {
            node_kinds: layout.node_kinds,
            kind_bits: layout.kind_bits,
        }
    }
}

/// Reads a graph of rustc `rustc` whose records pack their kind as `kinds`
/// says, exactly (see [`parse`]).
pub(super) fn read(bytes: &[u8], rustc: &str, kinds: Kinds) -> Result<Body, Unreadable> {
    let Records {
        rustc,
        options_hash,
        totals,
        nodes,
        tally,
        edges_read,
        mut rest,
    } = records(bytes, rustc, kinds)?;
    let r = &mut rest;
    let mut kind_counts = Vec::with_capacity(tally.len());
    for (kind, &found) in tally.iter().enumerate() {
        let claimed = r.leb_u32("the per-kind node counts")?;
        if u64::from(claimed) != found {
            return Err(Damage::KindCount {
                kind: kind as u16,
                claimed: claimed.into(),
                found,
            }
            .into());
        }
        kind_counts.push(claimed);
    }
    let session_count = r.leb_u64("the session count")?;
    if r.pos != r.bytes.len() {
        return Err(Damage::Trailing(r.bytes.len() - r.pos).into());
    }
    if edges_read != totals.edge_count {
        return Err(Damage::EdgeCount {
            claimed: totals.edge_count,
            found: edges_read,
        }
        .into());
    }
    // rustc asserts that no two records share an index.
    let mut indices: Vec<u32> = nodes.iter().map(|n| n.index).collect();
    indices.sort_unstable();
    if let Some(pair) = indices.windows(2).find(|p| p[0] == p[1]) {
        let second = nodes.iter().rev().find(|n| n.index == pair[0]);
        let at = second.map_or(0, |n| n.value_offset - VALUE_AT);
        return Err(invalid("a second node with the same index", at));
    }
    Ok(Body {
        rustc,
        options_hash,
        nodes,
        kind_counts,
        #[cfg(test)]
        node_max: totals.node_max,
        #[cfg(test)]
        edge_count: totals.edge_count,
        session_count,
    })
}

/// How many LEB128 numbers lie between the node records and the totals when
/// the records are read with `kind_bits` (any kind below `2^kind_bits`):
/// in a graph read right, one node count per kind and the session count.
/// Calibration learns the number of node kinds from it.
pub(super) fn numbers_after_records(
    bytes: &[u8],
    rustc: &str,
    kind_bits: u32,
) -> Result<usize, Unreadable> {
    let node_kinds = 1u16
        .checked_shl(kind_bits)
        .filter(|_| kind_bits + WIDTH_BITS < 16)
        .ok_or(Damage::Invalid {
            what: "no room for an edge count beside the kind",
            at: 0,
        })?;
    let kinds = Kinds {
        node_kinds,
        kind_bits,
    };
    let Records { rest, .. } = records(bytes, rustc, kinds)?;
    let tail = &rest.bytes[rest.pos..];
    if tail.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(Damage::Truncated {
            what: "the per-kind node counts",
            at: rest.bytes.len(),
        }
        .into());
    }
    // Every LEB128 number ends with the one byte whose high bit is clear.
    Ok(tail.iter().filter(|&&b| b & 0x80 == 0).count())
}

/// The rustc version in a graph's header.
pub(super) fn version(bytes: &[u8]) -> Result<String, Damage> {
    header(&mut Reader { bytes, pos: 0 }).map(|(rustc, _)| rustc)
}

/// The node records, read up to the per-kind counts.
struct Records<'a> {
    rustc: String,
    options_hash: [u8; 8],
    totals: Totals,
    nodes: Vec<Node>,
    /// Nodes read per kind, one entry per kind of `kinds`.
    tally: Vec<u64>,
    edges_read: u64,
    /// What lies between the records and the totals.
    rest: Reader<'a>,
}

/// Reads the header, the totals and every node record with its edges.
fn records<'a>(bytes: &'a [u8], expected: &str, kinds: Kinds) -> Result<Records<'a>, Unreadable> {
    let mut r = Reader { bytes, pos: 0 };
    let (rustc, options_hash) = header(&mut r)?;
    if rustc != expected {
        return Err(Unreadable::Unverified {
            rustc,
            calibrated: expected.to_owned(),
        });
    }
    let (mut r, totals) = totals(bytes, r.pos)?;

    // Never trust node_count for an allocation: the records must be there.
    let room = (r.bytes.len() - r.pos) / RECORD;
    let mut nodes = Vec::with_capacity(room.min(totals.node_count as usize));
    let mut tally = vec![0u64; usize::from(kinds.node_kinds)];
    let mut edges_read = 0u64;
    for _ in 0..totals.node_count {
        let (node, edges) = node(&mut r, kinds, totals.node_max)?;
        tally[usize::from(node.kind)] += 1;
        edges_read += u64::from(edges);
        nodes.push(node);
    }
    Ok(Records {
        rustc,
        options_hash,
        totals,
        nodes,
        tally,
        edges_read,
        rest: r,
    })
}

/// Reads the header: magic, format version, rustc version, options hash.
fn header(r: &mut Reader<'_>) -> Result<(String, [u8; 8]), Damage> {
    if r.take(MAGIC.len(), "the header").ok() != Some(MAGIC.as_slice()) {
        return Err(Damage::NoHeader);
    }
    let format = u16::from_le_bytes(r.array("the header")?);
    if format != FORMAT_VERSION {
        return Err(Damage::FormatVersion(format));
    }
    let len = usize::from(r.array::<1>("the header")?[0]);
    let at = r.pos;
    let rustc =
        std::str::from_utf8(r.take(len, "the rustc version")?).map_err(|_| Damage::Invalid {
            what: "a rustc version that is not UTF-8",
            at,
        })?;
    Ok((rustc.to_owned(), r.array("the options hash")?))
}

/// The three totals before the footer.
struct Totals {
    /// One more than the largest index rustc allocated; some indices below
    /// it may be unused.
    node_max: u64,
    node_count: u64,
    edge_count: u64,
}

/// Finds the totals from the end of the file, and returns them with a
/// reader over what lies between the header (ending at `from`) and them.
fn totals(bytes: &[u8], from: usize) -> Result<(Reader<'_>, Totals), Damage> {
    let body = bytes
        .strip_suffix(FOOTER.as_slice())
        .ok_or(Damage::NoFooter)?;
    let Some(end) = body.len().checked_sub(TOTALS).filter(|&e| e >= from) else {
        return Err(Damage::Truncated {
            what: "the totals",
            at: from,
        });
    };
    let mut t = Reader {
        bytes: &body[end..],
        pos: 0,
    };
    let mut next = || t.array("the totals").map(u64::from_le_bytes);
    let totals = Totals {
        node_max: next()?,
        node_count: next()?,
        edge_count: next()?,
    };
    if totals.node_max > INDEX_LIMIT {
        return Err(Damage::Invalid {
            what: "a node_max past rustc's largest index",
            at: end,
        });
    }
    if totals.node_count > totals.node_max {
        return Err(Damage::Invalid {
            what: "a node_count larger than node_max",
            at: end + 8,
        });
    }
    let r = Reader {
        bytes: &body[..end],
        pos: from,
    };
    Ok((r, totals))
}

/// Reads one node record and its edges; returns the node and its number of
/// edges.
///
/// The record's u16 head packs, from the low bits: the kind
/// (`kinds.kind_bits`), the byte width of each edge index minus one (2
/// bits), and the edge count plus one (the rest; 0 when the count did not
/// fit and follows the record as LEB128).
fn node(r: &mut Reader<'_>, kinds: Kinds, node_max: u64) -> Result<(Node, u32), Damage> {
    let start = r.pos;
    let record: [u8; RECORD] = r.array("a node record")?;
    let head = u16::from_le_bytes([record[0], record[1]]);
    let kind = head & (u16::MAX >> (16 - kinds.kind_bits));
    // Kind 0 is `Null`, the kind of unused indices, never written.
    if kind == 0 || kind >= kinds.node_kinds {
        return Err(Damage::Invalid {
            what: "a node of no known kind",
            at: start,
        });
    }
    let index = u32::from_le_bytes(record[2..6].try_into().expect("4 bytes"));
    if u64::from(index) >= node_max {
        return Err(Damage::Invalid {
            what: "a node index past node_max",
            at: start + 2,
        });
    }
    let width = usize::from((head >> kinds.kind_bits) & 0b11) + 1;
    let inline = head.checked_shr(kinds.kind_bits + WIDTH_BITS).unwrap_or(0);
    let count = match inline.checked_sub(1) {
        Some(n) => u32::from(n),
        None => r.leb_u32("an edge count")?,
    };
    let at = r.pos;
    // At most 4 × u32::MAX bytes, which `take` refuses past the input's end.
    let len = usize::try_from(u64::from(count) * width as u64).unwrap_or(usize::MAX);
    for edge in r.take(len, "an edge list")?.chunks_exact(width) {
        let mut le = [0u8; 4];
        le[..width].copy_from_slice(edge);
        if u64::from(u32::from_le_bytes(le)) >= node_max {
            return Err(Damage::Invalid {
                what: "an edge to an index past node_max",
                at,
            });
        }
    }
    let node = Node {
        kind,
        index,
        key: record[6..VALUE_AT].try_into().expect("16 bytes"),
        value: record[VALUE_AT..].try_into().expect("16 bytes"),
        value_offset: start + VALUE_AT,
    };
    Ok((node, count))
}

fn invalid(what: &'static str, at: usize) -> Unreadable {
    Damage::Invalid { what, at }.into()
}
