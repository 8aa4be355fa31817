//! rustc's dependency graph (`dep-graph.bin`), read exactly, and the one
//! edit cargo-seed makes to it: replacing the value fingerprints of the two
//! queries whose results are made of paths.
//!
//! In a binary, a test harness or a proc-macro crate built with debuginfo,
//! every codegen unit reads `used_crate_source(dep)` (the dependencies'
//! absolute, canonical rlib paths) and `output_filenames(())` (the output
//! directory). Restored at another path, their values differ from what the
//! graph remembers, so rustc marks every codegen unit red and reuses none.
//! Where the restored value is the one a stub build at CI's paths computes
//! (so it is made of paths and nothing else), writing the value a stub build
//! at the local paths computes makes rustc see the inputs as unchanged.
//!
//! The file comes from an untrusted store and its layout is private to each
//! rustc release (the node kind numbers move whenever rustc's query list
//! changes; rustc itself refuses a graph written by any other version). So
//! this module must never:
//! - read a graph of a rustc that is not in [`LAYOUTS`], verified against
//!   files that very rustc wrote (`tests/depgraph.rs`);
//! - accept a graph that does not parse to its trailer, with every count the
//!   trailer claims matching what was read;
//! - write into a file it could not read that way, or write anything but
//!   16-byte value fingerprints of the two path queries;
//! - panic, or allocate more than the size of its input justifies.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the node kinds that matter sit in one rustc release's graph.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    /// The rustc version exactly as its graph header spells it
    /// (`rustc -V` without the leading `rustc `).
    pub rustc: &'static str,
    /// How many node kinds rustc has (`DepKind::MAX + 1`): the trailer holds
    /// one count per kind.
    pub node_kinds: u16,
    /// Low bits of a node record's head that hold its kind: the bit length
    /// of the largest kind number.
    pub kind_bits: u32,
    /// Kind number of the `output_filenames` query.
    pub output_filenames: u16,
    /// Kind number of the `used_crate_source` query.
    pub used_crate_source: u16,
}

impl Layout {
    /// The kind number of `query` in this layout.
    pub fn kind(&self, query: PathQuery) -> u16 {
        match query {
            PathQuery::OutputFilenames => self.output_filenames,
            PathQuery::UsedCrateSource => self.used_crate_source,
        }
    }
}

/// The layouts this cargo-seed has verified, one per rustc release.
///
/// rustc 1.95.0: 327 node kinds (kind 0 is `Null`), so 9 kind bits. Kind
/// 282 is `output_filenames`, the only kind whose value changes when only
/// `--out-dir` changes; kind 262 is `used_crate_source`, the only kind whose
/// value changes when only a dependency's rlib moves; the per-kind counts
/// rustc prints under `-Z incremental-info` agree for both.
pub static LAYOUTS: &[Layout] = &[Layout {
    rustc: "1.95.0 (59807616e 2026-04-14)",
    node_kinds: 327,
    kind_bits: 9,
    output_filenames: 282,
    used_crate_source: 262,
}];

/// The verified layout of the rustc whose header says `version`.
pub fn layout(version: &str) -> Option<&'static Layout> {
    LAYOUTS.iter().find(|l| l.rustc == version)
}

/// The queries whose values are made of paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathQuery {
    /// `output_filenames(())`: the output directory and file stem.
    OutputFilenames,
    /// `used_crate_source(dep)`: where a dependency's rlib/rmeta/dylib is.
    UsedCrateSource,
}

impl PathQuery {
    /// The query's name in rustc.
    pub fn rustc_name(self) -> &'static str {
        match self {
            PathQuery::OutputFilenames => "output_filenames",
            PathQuery::UsedCrateSource => "used_crate_source",
        }
    }
}

impl fmt::Display for PathQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rustc_name())
    }
}

/// A 16-byte fingerprint as rustc stores it (two little-endian u64s).
pub type Fingerprint = [u8; 16];

/// The value fingerprints of one graph's path nodes, by query and key.
pub type PathValues = BTreeMap<(PathQuery, Fingerprint), Fingerprint>;

/// One node of a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: u16,
    /// The node's index, which edges refer to.
    pub index: u32,
    /// Fingerprint of the query's key: the same for the same key at any path.
    pub key: Fingerprint,
    /// Fingerprint of the query's value in the session that wrote the graph.
    pub value: Fingerprint,
    /// Where `value` is in the file.
    pub value_offset: usize,
}

/// A node of one of the [`PathQuery`] kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathNode {
    pub query: PathQuery,
    pub key: Fingerprint,
    pub value: Fingerprint,
    /// Where `value` is in the file.
    pub offset: u64,
}

/// A `dep-graph.bin` that parsed exactly to its trailer.
#[derive(Debug)]
pub struct Graph {
    rustc: String,
    options_hash: [u8; 8],
    layout: &'static Layout,
    nodes: Vec<Node>,
    kind_counts: Vec<u32>,
    node_max: u64,
    edge_count: u64,
    session_count: u64,
}

/// Why bytes are not a graph this cargo-seed can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("rustc {}'s graph layout is not verified by this cargo-seed", .rustc.escape_debug())]
    Unverified { rustc: String },
    #[error("its dep graph does not parse to its trailer: {0}")]
    Damaged(#[from] Damage),
}

/// What is wrong with a graph file of a verified rustc.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("it does not start with rustc's `RSIC` header")]
    NoHeader,
    #[error("its header has format version {0}, not {FORMAT_VERSION}")]
    FormatVersion(u16),
    #[error("it does not end with rustc's `rust-end-file` footer")]
    NoFooter,
    #[error("{what} at byte {at} runs past its end")]
    Truncated { what: &'static str, at: usize },
    #[error("{what} at byte {at}")]
    Invalid { what: &'static str, at: usize },
    #[error("its trailer counts {claimed} nodes of kind {kind}, it holds {found}")]
    KindCount { kind: u16, claimed: u64, found: u64 },
    #[error("its trailer counts {claimed} edges, it holds {found}")]
    EdgeCount { claimed: u64, found: u64 },
    #[error("{0} unread bytes are left before its totals")]
    Trailing(usize),
}

/// Why a parsed graph's path nodes do not look like the ones rustc writes:
/// a sign that its layout's kind numbers are wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrongLayout {
    #[error(
        "its dep graph has {count} nodes of kind {kind}, verified as output_filenames, \
         where rustc writes at most one"
    )]
    ManyOutputFilenames { kind: u16, count: usize },
    #[error(
        "its dep graph has an output_filenames node (kind {kind}) with a key, \
         where rustc's key for it is empty"
    )]
    OutputFilenamesKey { kind: u16 },
    #[error(
        "its dep graph repeats a key among the nodes of kind {kind}, verified as \
         used_crate_source, where rustc writes one per crate"
    )]
    RepeatedCrateSource { kind: u16 },
}

/// Why [`patch_paths`] or [`values`] left a file alone.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("failed to {op} {}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
    #[error(transparent)]
    WrongLayout(#[from] WrongLayout),
}

/// What [`patch_paths`] did with a graph's path nodes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Patched {
    /// Held CI's value and now hold the local one.
    pub patched: usize,
    /// Already held the local value.
    pub already_local: usize,
    /// Held neither: the value was computed from something other than
    /// paths (or the replays differ from the real build), so it is left for
    /// rustc to recompute.
    pub not_ci: usize,
    /// Missing from one of the replays (a crate CI's or the local replay did
    /// not load); left alone.
    pub not_replayed: usize,
}

/// The file magic of rustc's incremental files.
const MAGIC: &[u8; 4] = b"RSIC";
/// rustc's incremental file format version, the u16 after the magic.
const FORMAT_VERSION: u16 = 0;
/// What rustc's `FileEncoder` writes last.
const FOOTER: &[u8; 13] = b"rust-end-file";
/// A node record: u16 head, u32 index, key and value fingerprints.
const RECORD: usize = 38;
/// Offset of the value fingerprint in a node record.
const VALUE_AT: usize = 22;
/// `node_max`, `node_count` and `edge_count`, u64 each, before the footer.
const TOTALS: usize = 24;
/// Head bits after the kind that hold an edge index's byte width minus one.
const WIDTH_BITS: u32 = 2;
/// Node indices are `SerializedDepNodeIndex`, at most `0x7FFF_FFFF`.
const INDEX_LIMIT: u64 = 0x8000_0000;

/// Parses a `dep-graph.bin` of a rustc in [`LAYOUTS`], exactly: the header,
/// every node record and its edges, one node count per kind, the session
/// count, the totals and the footer, with nothing left over and every count
/// matching what was read.
pub fn parse(bytes: &[u8]) -> Result<Graph, Unreadable> {
    let mut r = Reader { bytes, pos: 0 };
    let (rustc, options_hash) = header(&mut r)?;
    let Some(layout) = layout(&rustc) else {
        return Err(Unreadable::Unverified { rustc });
    };
    let (mut r, totals) = totals(bytes, r.pos)?;

    // Never trust node_count for an allocation: the records must be there.
    let room = (r.bytes.len() - r.pos) / RECORD;
    let mut nodes = Vec::with_capacity(room.min(totals.node_count as usize));
    let mut tally = vec![0u64; usize::from(layout.node_kinds)];
    let mut edges_read = 0u64;
    for _ in 0..totals.node_count {
        let (node, edges) = node(&mut r, layout, totals.node_max)?;
        tally[usize::from(node.kind)] += 1;
        edges_read += u64::from(edges);
        nodes.push(node);
    }

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

    Ok(Graph {
        rustc,
        options_hash,
        layout,
        nodes,
        kind_counts,
        node_max: totals.node_max,
        edge_count: totals.edge_count,
        session_count,
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
/// (`layout.kind_bits`), the byte width of each edge index minus one (2
/// bits), and the edge count plus one (the rest; 0 when the count did not
/// fit and follows the record as LEB128).
fn node(r: &mut Reader<'_>, layout: &Layout, node_max: u64) -> Result<(Node, u32), Damage> {
    let start = r.pos;
    let record: [u8; RECORD] = r.array("a node record")?;
    let head = u16::from_le_bytes([record[0], record[1]]);
    let kind = head & (u16::MAX >> (16 - layout.kind_bits));
    // Kind 0 is `Null`, the kind of unused indices, never written.
    if kind == 0 || kind >= layout.node_kinds {
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
    let width = usize::from((head >> layout.kind_bits) & 0b11) + 1;
    let inline = head.checked_shr(layout.kind_bits + WIDTH_BITS).unwrap_or(0);
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

/// A cursor that refuses to read past its slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Damage> {
        let at = self.pos;
        let slice = at
            .checked_add(n)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or(Damage::Truncated { what, at })?;
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Damage> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    /// Unsigned LEB128 of at most `bits` bits, as rustc's opaque encoder
    /// writes it: no longer than the type needs, no bit beyond it.
    fn leb(&mut self, bits: u32, what: &'static str) -> Result<u64, Damage> {
        let at = self.pos;
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.array::<1>(what)?[0];
            let low = u64::from(byte & 0x7f);
            if shift >= bits || (bits - shift < 7 && low >> (bits - shift) != 0) {
                return Err(Damage::Invalid {
                    what: "a number too large for its type",
                    at,
                });
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    fn leb_u32(&mut self, what: &'static str) -> Result<u32, Damage> {
        Ok(self.leb(32, what)? as u32)
    }

    fn leb_u64(&mut self, what: &'static str) -> Result<u64, Damage> {
        self.leb(64, what)
    }
}

impl Graph {
    /// The rustc version in the header.
    pub fn rustc(&self) -> &str {
        &self.rustc
    }

    /// The verified layout the graph was read with.
    pub fn layout(&self) -> &'static Layout {
        self.layout
    }

    /// The hash of the tracked options of the session that wrote the graph.
    pub fn options_hash(&self) -> [u8; 8] {
        self.options_hash
    }

    /// The nodes, in file order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// How many nodes of `kind` the graph holds (0 for a kind past the last).
    pub fn count_of(&self, kind: u16) -> u32 {
        self.kind_counts.get(kind as usize).copied().unwrap_or(0)
    }

    /// One more than the largest node index rustc allocated.
    pub fn node_max(&self) -> u64 {
        self.node_max
    }

    pub fn edge_count(&self) -> u64 {
        self.edge_count
    }

    /// How many sessions have written this graph in turn.
    pub fn session_count(&self) -> u64 {
        self.session_count
    }

    /// The nodes of the path queries, checked against what rustc writes for
    /// them: at most one `output_filenames` node, with the empty key, and
    /// one `used_crate_source` node per crate. Anything else means the
    /// layout's kind numbers are wrong, and nothing may be written.
    pub fn path_nodes(&self) -> Result<Vec<PathNode>, WrongLayout> {
        let layout = self.layout;
        let mut out = Vec::new();
        let mut crates = BTreeSet::new();
        for node in &self.nodes {
            let query = if node.kind == layout.output_filenames {
                if node.key != [0; 16] {
                    return Err(WrongLayout::OutputFilenamesKey { kind: node.kind });
                }
                PathQuery::OutputFilenames
            } else if node.kind == layout.used_crate_source {
                if !crates.insert(node.key) {
                    return Err(WrongLayout::RepeatedCrateSource { kind: node.kind });
                }
                PathQuery::UsedCrateSource
            } else {
                continue;
            };
            out.push(PathNode {
                query,
                key: node.key,
                value: node.value,
                offset: node.value_offset as u64,
            });
        }
        let count = self.count_of(layout.output_filenames) as usize;
        if count > 1 {
            return Err(WrongLayout::ManyOutputFilenames {
                kind: layout.output_filenames,
                count,
            });
        }
        Ok(out)
    }

    /// The value of every path node, by query and key.
    pub fn path_values(&self) -> Result<PathValues, WrongLayout> {
        Ok(self
            .path_nodes()?
            .into_iter()
            .map(|n| ((n.query, n.key), n.value))
            .collect())
    }
}

fn read(file: &Path) -> Result<Graph, Refused> {
    let bytes = fs::read(file).map_err(|source| Refused::Io {
        op: "read",
        path: file.to_owned(),
        source,
    })?;
    Ok(parse(&bytes)?)
}

/// The path values of a stub replay's graph.
pub fn values(file: &Path) -> Result<PathValues, Refused> {
    Ok(read(file)?.path_values()?)
}

/// Writes the local value into every path node of the restored graph `file`
/// whose value is CI's (`ci`, from a stub replay at CI's paths) and not the
/// local one (`local`, from a stub replay at the local paths).
///
/// A node whose value is not CI's depends on more than paths (or the stub
/// replays do not stand for the build) and is left for rustc to recompute.
/// Nothing is written unless the whole file parses exactly with a verified
/// layout; the file is written in place, 16 bytes per patched node.
///
/// A stub replay stands for the build when it has the build's options,
/// crate name and `--out-dir` (`output_filenames` holds the out dir and the
/// file stem; a linker that writes nothing keeps the real outputs intact),
/// and a source that loads every dependency (`extern crate name;` for each
/// `--extern`): rustc loads an `--extern` crate only when the source names
/// it, and a crate it did not load has no `used_crate_source` node.
pub fn patch_paths(file: &Path, ci: &PathValues, local: &PathValues) -> Result<Patched, Refused> {
    let graph = read(file)?;
    let mut outcome = Patched::default();
    let mut writes = Vec::new();
    for node in graph.path_nodes()? {
        let id = (node.query, node.key);
        match (ci.get(&id), local.get(&id)) {
            (_, Some(&here)) if node.value == here => outcome.already_local += 1,
            (Some(&there), Some(&here)) if node.value == there => {
                outcome.patched += 1;
                writes.push((node.offset, here));
            }
            (Some(_), Some(_)) => outcome.not_ci += 1,
            _ => outcome.not_replayed += 1,
        }
    }
    if writes.is_empty() {
        return Ok(outcome);
    }
    let io = |op: &'static str| {
        move |source: io::Error| Refused::Io {
            op,
            path: file.to_owned(),
            source,
        }
    };
    // Opened for writing only: never created, never truncated.
    let mut f = File::options()
        .write(true)
        .open(file)
        .map_err(io("open for writing"))?;
    for (offset, value) in writes {
        f.seek(SeekFrom::Start(offset)).map_err(io("seek in"))?;
        f.write_all(&value).map_err(io("write"))?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V195: &str = "1.95.0 (59807616e 2026-04-14)";

    /// A node to encode: kind, index, key, value, edges.
    type Spec = (u16, u32, Fingerprint, Fingerprint, Vec<u32>);

    fn leb(out: &mut Vec<u8>, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// Encodes a graph the way rustc 1.95's encoder does, for `layout`.
    fn encode(version: &str, layout: &Layout, nodes: &[Spec], node_max: u64) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend(FORMAT_VERSION.to_le_bytes());
        b.push(version.len() as u8);
        b.extend(version.as_bytes());
        b.extend([0xab; 8]);
        let len_bits = 16 - layout.kind_bits - WIDTH_BITS;
        let max_inline = (1usize << len_bits) - 2;
        let mut counts = vec![0u64; layout.node_kinds as usize];
        let mut edge_total = 0;
        for (kind, index, key, value, edges) in nodes {
            let max = edges.iter().copied().max().unwrap_or(0);
            let width = (4 - max.leading_zeros() as usize / 8).max(1);
            let mut head = *kind | ((width as u16 - 1) << layout.kind_bits);
            if edges.len() <= max_inline {
                head |= (edges.len() as u16 + 1) << (layout.kind_bits + WIDTH_BITS);
            }
            b.extend(head.to_le_bytes());
            b.extend(index.to_le_bytes());
            b.extend(key);
            b.extend(value);
            if edges.len() > max_inline {
                leb(&mut b, edges.len() as u64);
            }
            for e in edges {
                b.extend(&e.to_le_bytes()[..width]);
            }
            // A kind past the last has no count to go in.
            if let Some(c) = counts.get_mut(*kind as usize) {
                *c += 1;
            }
            edge_total += edges.len() as u64;
        }
        for c in counts {
            leb(&mut b, c);
        }
        leb(&mut b, 3);
        b.extend(node_max.to_le_bytes());
        b.extend((nodes.len() as u64).to_le_bytes());
        b.extend(edge_total.to_le_bytes());
        b.extend(FOOTER);
        b
    }

    fn l195() -> &'static Layout {
        layout(V195).expect("1.95.0 is verified")
    }

    fn fp(n: u8) -> Fingerprint {
        [n; 16]
    }

    const OUT: u16 = 282;
    const SRC: u16 = 262;

    /// A small graph with inline and spilled edge counts, 1- to 3-byte edge
    /// indices, gaps in the indices, and the path nodes of two crates.
    fn sample() -> (Vec<Spec>, u64) {
        let many: Vec<u32> = (0..40).collect();
        let nodes = vec![
            (1, 0, fp(1), fp(2), vec![]),
            (OUT, 1, [0; 16], fp(10), vec![0]),
            (SRC, 2, fp(20), fp(21), vec![]),
            (SRC, 300, fp(30), fp(31), vec![1, 2]),
            (7, 70_000, fp(40), fp(41), vec![300, 2, 0]),
            (326, 5, fp(50), fp(51), many),
        ];
        (nodes, 70_001)
    }

    fn sample_bytes() -> Vec<u8> {
        let (nodes, max) = sample();
        encode(V195, l195(), &nodes, max)
    }

    #[test]
    fn every_layout_is_self_consistent() {
        for l in LAYOUTS {
            // rustc's `KIND_BITS`: the bit length of the largest kind.
            assert_eq!(
                l.kind_bits,
                16 - (l.node_kinds - 1).leading_zeros(),
                "{l:?}"
            );
            assert!(
                l.kind_bits + WIDTH_BITS < 16,
                "no room for edge counts: {l:?}"
            );
            for kind in [l.output_filenames, l.used_crate_source] {
                assert!(kind > 0 && kind < l.node_kinds, "{l:?}");
            }
            assert_ne!(l.output_filenames, l.used_crate_source);
        }
        assert!(layout("1.95.0").is_none(), "versions match exactly");
    }

    #[test]
    fn parses_exactly() {
        let bytes = sample_bytes();
        let g = parse(&bytes).unwrap();
        let (specs, max) = sample();
        assert_eq!(g.rustc(), V195);
        assert_eq!(g.options_hash(), [0xab; 8]);
        assert_eq!(g.node_max(), max);
        assert_eq!(g.session_count(), 3);
        assert_eq!(g.edge_count(), 46);
        assert_eq!(g.count_of(SRC), 2);
        assert_eq!(g.count_of(0), 0);
        assert_eq!(g.count_of(1000), 0);
        assert_eq!(g.nodes().len(), specs.len());
        for (node, (kind, index, key, value, _)) in g.nodes().iter().zip(&specs) {
            assert_eq!(
                (node.kind, node.index, node.key, node.value),
                (*kind, *index, *key, *value)
            );
            assert_eq!(&bytes[node.value_offset..node.value_offset + 16], value);
        }
        let paths = g.path_nodes().unwrap();
        assert_eq!(
            paths
                .iter()
                .map(|p| (p.query, p.key, p.value))
                .collect::<Vec<_>>(),
            [
                (PathQuery::OutputFilenames, [0; 16], fp(10)),
                (PathQuery::UsedCrateSource, fp(20), fp(21)),
                (PathQuery::UsedCrateSource, fp(30), fp(31)),
            ]
        );
        for p in paths {
            let at = p.offset as usize;
            assert_eq!(bytes[at..at + 16], p.value);
        }
    }

    #[test]
    fn an_empty_graph_parses() {
        let g = parse(&encode(V195, l195(), &[], 0)).unwrap();
        assert!(g.nodes().is_empty());
        assert!(g.path_nodes().unwrap().is_empty());
    }

    fn damage(bytes: &[u8]) -> Damage {
        match parse(bytes) {
            Err(Unreadable::Damaged(d)) => d,
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = sample_bytes();
        for len in 0..bytes.len() {
            assert!(
                parse(&bytes[..len]).is_err(),
                "a prefix of {len} bytes parsed"
            );
        }
    }

    #[test]
    fn every_missing_byte_is_refused() {
        let bytes = sample_bytes();
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b.remove(at);
            assert!(parse(&b).is_err(), "parsed without byte {at}");
        }
    }

    #[test]
    fn no_damaged_byte_makes_it_panic() {
        let bytes = sample_bytes();
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] ^= flip;
                // Changing a fingerprint is undetectable; anything else is
                // refused or reads differently; nothing panics.
                let _ = parse(&b);
            }
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let bytes = sample_bytes();
        let mut after = bytes.clone();
        after.push(0);
        assert_eq!(damage(&after), Damage::NoFooter);

        let totals = bytes.len() - FOOTER.len() - TOTALS;
        let mut before = bytes.clone();
        before.insert(totals, 0);
        assert_eq!(damage(&before), Damage::Trailing(1));
    }

    /// The sample with its totals replaced.
    fn with_totals(node_max: u64, node_count: u64, edge_count: u64) -> Vec<u8> {
        let mut b = sample_bytes();
        let at = b.len() - FOOTER.len() - TOTALS;
        b[at..at + 8].copy_from_slice(&node_max.to_le_bytes());
        b[at + 8..at + 16].copy_from_slice(&node_count.to_le_bytes());
        b[at + 16..at + 24].copy_from_slice(&edge_count.to_le_bytes());
        b
    }

    #[test]
    fn wrong_counts_are_refused() {
        let (nodes, max) = sample();
        let n = nodes.len() as u64;
        assert!(parse(&with_totals(max, n, 46)).is_ok());
        assert_eq!(
            damage(&with_totals(max, n, 45)),
            Damage::EdgeCount {
                claimed: 45,
                found: 46
            }
        );
        // One node fewer: the last record is read as per-kind counts.
        assert!(parse(&with_totals(max, n - 1, 46)).is_err());
        assert!(parse(&with_totals(max, n + 1, 46)).is_err());
        // An index past node_max, and edges to one.
        assert!(matches!(
            damage(&with_totals(300, n, 46)),
            Damage::Invalid { .. }
        ));

        // A per-kind count that does not match the records.
        let mut b = sample_bytes();
        let counts = b.len() - FOOTER.len() - TOTALS - 1 - 327;
        assert_eq!(b[counts + 1], 1, "kind 1 has one node");
        b[counts + 1] = 2;
        assert_eq!(
            damage(&b),
            Damage::KindCount {
                kind: 1,
                claimed: 2,
                found: 1
            }
        );
    }

    #[test]
    fn a_huge_node_count_is_refused_without_allocating_for_it() {
        for (max, count) in [
            (u64::MAX, u64::MAX),
            (INDEX_LIMIT, INDEX_LIMIT),
            (INDEX_LIMIT, INDEX_LIMIT - 1),
            (70_001, u64::MAX),
        ] {
            assert!(
                parse(&with_totals(max, count, 46)).is_err(),
                "{max} {count}"
            );
        }
    }

    #[test]
    fn impossible_nodes_are_refused() {
        let bad: &[&[Spec]] = &[
            &[(0, 0, fp(1), fp(1), vec![])],
            &[(327, 0, fp(1), fp(1), vec![])],
            &[(1, 9, fp(1), fp(1), vec![])],
            &[(1, 0, fp(1), fp(1), vec![9])],
            &[(1, 0, fp(1), fp(1), vec![]), (2, 0, fp(2), fp(2), vec![])],
        ];
        for nodes in bad {
            let b = encode(V195, l195(), nodes, 9);
            assert!(matches!(damage(&b), Damage::Invalid { .. }), "{nodes:?}");
        }
    }

    #[test]
    fn overlong_numbers_are_refused() {
        let mut r = Reader {
            bytes: &[0xff, 0xff, 0xff, 0xff, 0x1f],
            pos: 0,
        };
        assert!(r.leb_u32("n").is_err(), "33 bits");
        let mut r = Reader {
            bytes: &[0xff, 0xff, 0xff, 0xff, 0x0f],
            pos: 0,
        };
        assert_eq!(r.leb_u32("n").unwrap(), u32::MAX);
        let mut r = Reader {
            bytes: &[0x80; 11],
            pos: 0,
        };
        assert!(r.leb_u64("n").is_err());
    }

    #[test]
    fn another_rustc_and_other_files_are_refused() {
        let (nodes, max) = sample();
        let other = encode("1.96.0 (0123456789 2026-05-28)", l195(), &nodes, max);
        assert_eq!(
            parse(&other).unwrap_err(),
            Unreadable::Unverified {
                rustc: "1.96.0 (0123456789 2026-05-28)".into()
            }
        );
        let msg = parse(&encode("evil\n(x)", l195(), &nodes, max))
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "rustc evil\\n(x)'s graph layout is not verified by this cargo-seed"
        );
        assert_eq!(
            damage(b"RSIC"),
            Damage::Truncated {
                what: "the header",
                at: 4
            }
        );
        assert_eq!(damage(b"query-cache"), Damage::NoHeader);
        let mut format = sample_bytes();
        format[4] = 1;
        assert_eq!(damage(&format), Damage::FormatVersion(1));
        assert_eq!(
            Unreadable::from(Damage::NoFooter).to_string(),
            "its dep graph does not parse to its trailer: it does not end with rustc's `rust-end-file` footer"
        );
    }

    #[test]
    fn path_nodes_that_rustc_would_not_write_are_refused() {
        let two = [
            (OUT, 0, [0; 16], fp(1), vec![]),
            (OUT, 1, [0; 16], fp(2), vec![]),
        ];
        let g = parse(&encode(V195, l195(), &two, 2)).unwrap();
        assert_eq!(
            g.path_nodes().unwrap_err(),
            WrongLayout::ManyOutputFilenames {
                kind: OUT,
                count: 2
            }
        );
        let keyed = [(OUT, 0, fp(3), fp(1), vec![])];
        let g = parse(&encode(V195, l195(), &keyed, 1)).unwrap();
        assert!(matches!(
            g.path_nodes(),
            Err(WrongLayout::OutputFilenamesKey { .. })
        ));
        let same = [
            (SRC, 0, fp(3), fp(1), vec![]),
            (SRC, 1, fp(3), fp(2), vec![]),
        ];
        let g = parse(&encode(V195, l195(), &same, 2)).unwrap();
        assert_eq!(
            g.path_nodes().unwrap_err(),
            WrongLayout::RepeatedCrateSource { kind: SRC }
        );
    }

    #[test]
    fn path_queries_serialise_in_kebab_case() {
        let json = serde_json::to_string(&[PathQuery::OutputFilenames, PathQuery::UsedCrateSource])
            .unwrap();
        assert_eq!(json, r#"["output-filenames","used-crate-source"]"#);
        assert_eq!(PathQuery::UsedCrateSource.to_string(), "used_crate_source");
    }

    fn map(entries: &[(PathQuery, Fingerprint, Fingerprint)]) -> PathValues {
        entries.iter().map(|&(q, k, v)| ((q, k), v)).collect()
    }

    #[test]
    fn patch_writes_local_values_only_over_ci_values() {
        use PathQuery::*;
        let nodes = [
            (1, 0, fp(1), fp(2), vec![]),
            // CI's value, another locally: patched.
            (OUT, 1, [0; 16], fp(10), vec![0]),
            (SRC, 2, fp(20), fp(21), vec![]),
            // Already the local value.
            (SRC, 3, fp(30), fp(32), vec![]),
            // Neither CI's nor the local value: left alone.
            (SRC, 4, fp(40), fp(49), vec![]),
            // Not in the local replay.
            (SRC, 5, fp(50), fp(51), vec![]),
        ];
        let ci = map(&[
            (OutputFilenames, [0; 16], fp(10)),
            (UsedCrateSource, fp(20), fp(21)),
            (UsedCrateSource, fp(30), fp(31)),
            (UsedCrateSource, fp(40), fp(41)),
            (UsedCrateSource, fp(50), fp(51)),
        ]);
        let local = map(&[
            (OutputFilenames, [0; 16], fp(11)),
            (UsedCrateSource, fp(20), fp(22)),
            (UsedCrateSource, fp(30), fp(32)),
            (UsedCrateSource, fp(40), fp(42)),
        ]);
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("dep-graph.bin");
        let before = encode(V195, l195(), &nodes, 6);
        fs::write(&file, &before).unwrap();

        let done = patch_paths(&file, &ci, &local).unwrap();
        assert_eq!(
            done,
            Patched {
                patched: 2,
                already_local: 1,
                not_ci: 1,
                not_replayed: 1
            }
        );
        let mut expected_nodes = nodes.clone();
        expected_nodes[1].3 = fp(11);
        expected_nodes[2].3 = fp(22);
        let after = fs::read(&file).unwrap();
        assert_eq!(after, encode(V195, l195(), &expected_nodes, 6));

        // Patching again finds the local values in place.
        let again = patch_paths(&file, &ci, &local).unwrap();
        assert_eq!((again.patched, again.already_local), (0, 3));
        assert_eq!(fs::read(&file).unwrap(), after);
        assert_eq!(
            values(&file).unwrap().get(&(UsedCrateSource, fp(20))),
            Some(&fp(22))
        );
    }

    #[test]
    fn patch_writes_nothing_into_a_graph_it_cannot_vouch_for() {
        use PathQuery::*;
        let ci = map(&[(OutputFilenames, [0; 16], fp(10))]);
        let local = map(&[(OutputFilenames, [0; 16], fp(11))]);
        let nodes = [(OUT, 0, [0; 16], fp(10), vec![])];
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("dep-graph.bin");

        let other = encode("1.96.0 (0123456789 2026-05-28)", l195(), &nodes, 1);
        fs::write(&file, &other).unwrap();
        let err = patch_paths(&file, &ci, &local).unwrap_err();
        assert!(
            matches!(err, Refused::Unreadable(Unreadable::Unverified { .. })),
            "{err}"
        );
        assert_eq!(fs::read(&file).unwrap(), other);

        let mut cut = encode(V195, l195(), &nodes, 1);
        cut.remove(cut.len() - FOOTER.len() - 1);
        fs::write(&file, &cut).unwrap();
        let err = patch_paths(&file, &ci, &local).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("its dep graph does not parse to its trailer"),
            "{err}"
        );
        assert_eq!(fs::read(&file).unwrap(), cut);

        let err = patch_paths(&d.path().join("missing"), &ci, &local).unwrap_err();
        assert!(matches!(err, Refused::Io { op: "read", .. }), "{err}");
    }
}
