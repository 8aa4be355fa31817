//! The parser against graphs encoded here the way rustc 1.95 encodes them,
//! with the layout calibrated for 1.95.0 (its kind numbers are only the
//! encoder's inputs here; `tests/depgraph.rs` checks calibration against
//! graphs rustc wrote).

use super::cursor::Reader;
use super::layout::WIDTH_BITS;
use super::read::{FOOTER, FORMAT_VERSION, INDEX_LIMIT, MAGIC, TOTALS};
use super::*;

mod calibrate;
mod patch;

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

/// What calibration learns from rustc 1.95.0's graphs.
fn l195() -> Layout {
    Layout {
        rustc: V195.into(),
        node_kinds: 327,
        kind_bits: 9,
        output_filenames: OUT,
        used_crate_source: SRC,
    }
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
    encode(V195, &l195(), &nodes, max)
}

#[test]
fn a_layout_is_consistent_only_as_rustc_packs_kinds() {
    let l = l195();
    assert!(l.is_consistent());
    for broken in [
        // rustc's kind bits are the bit length of the largest kind.
        Layout {
            kind_bits: 10,
            ..l195()
        },
        Layout {
            node_kinds: 257,
            kind_bits: 8,
            ..l195()
        },
        Layout {
            node_kinds: 256,
            kind_bits: 8,
            ..l195()
        },
        // No room for edge counts.
        Layout {
            node_kinds: 16000,
            kind_bits: 14,
            ..l195()
        },
        Layout {
            output_filenames: 0,
            ..l195()
        },
        Layout {
            used_crate_source: 327,
            ..l195()
        },
        Layout {
            output_filenames: SRC,
            ..l195()
        },
        Layout {
            node_kinds: 1,
            kind_bits: 0,
            ..l195()
        },
    ] {
        assert!(!broken.is_consistent(), "{broken:?}");
    }
}

#[test]
fn parses_exactly() {
    let bytes = sample_bytes();
    let g = parse(&bytes, &l195()).unwrap();
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
    let g = parse(&encode(V195, &l195(), &[], 0), &l195()).unwrap();
    assert!(g.nodes().is_empty());
    assert!(g.path_nodes().unwrap().is_empty());
}

fn damage(bytes: &[u8]) -> Damage {
    match parse(bytes, &l195()) {
        Err(Unreadable::Damaged(d)) => d,
        other => panic!("expected damage, got {other:?}"),
    }
}

#[test]
fn every_truncation_is_refused() {
    let bytes = sample_bytes();
    for len in 0..bytes.len() {
        assert!(
            parse(&bytes[..len], &l195()).is_err(),
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
        assert!(parse(&b, &l195()).is_err(), "parsed without byte {at}");
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
            let _ = parse(&b, &l195());
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
    assert!(parse(&with_totals(max, n, 46), &l195()).is_ok());
    assert_eq!(
        damage(&with_totals(max, n, 45)),
        Damage::EdgeCount {
            claimed: 45,
            found: 46
        }
    );
    // One node fewer: the last record is read as per-kind counts.
    assert!(parse(&with_totals(max, n - 1, 46), &l195()).is_err());
    assert!(parse(&with_totals(max, n + 1, 46), &l195()).is_err());
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
            parse(&with_totals(max, count, 46), &l195()).is_err(),
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
        let b = encode(V195, &l195(), nodes, 9);
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
    let other = encode("1.96.0 (0123456789 2026-05-28)", &l195(), &nodes, max);
    assert_eq!(
        parse(&other, &l195()).unwrap_err(),
        Unreadable::Unverified {
            rustc: "1.96.0 (0123456789 2026-05-28)".into(),
            calibrated: V195.into()
        }
    );
    let msg = parse(&encode("evil\n(x)", &l195(), &nodes, max), &l195())
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "its dep graph was written by rustc evil\\n(x), not by rustc 1.95.0 (59807616e 2026-04-14), \
         whose layout was calibrated"
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
