//! What calibration learns from graphs encoded by the parent module, and
//! what it refuses to conclude.

use super::super::calibrate::{learn, Graphs};
use super::*;

const OTHER: u16 = 7;

/// The binary's graph as a build writes it: a node of another kind, the
/// out dir's node, and the sources of two crates.
fn app() -> Vec<Spec> {
    vec![
        (1, 0, fp(1), fp(2), vec![]),
        (OUT, 1, [0; 16], fp(10), vec![0]),
        (SRC, 2, fp(20), fp(21), vec![]),
        (SRC, 3, fp(30), fp(31), vec![1, 2]),
        (OTHER, 4, fp(40), fp(41), vec![3, 2, 1]),
    ]
}

/// `app` with the value of node `at` replaced.
fn with_value(mut nodes: Vec<Spec>, at: usize, value: u8) -> Vec<Spec> {
    nodes[at].3 = fp(value);
    nodes
}

/// The graphs of calibration's builds for `layout`: the rlib moved changes
/// the second crate's source, another out dir the out dir's node.
fn graphs(layout: &Layout) -> (Graphs, [Vec<Spec>; 3]) {
    let to = |k: u16| match k {
        OUT => layout.output_filenames,
        SRC => layout.used_crate_source,
        k => k,
    };
    let relabel = |nodes: Vec<Spec>| -> Vec<Spec> {
        nodes
            .into_iter()
            .map(|(k, i, a, b, e)| (to(k), i, a, b, e))
            .collect()
    };
    let nodes = [
        relabel(app()),
        relabel(with_value(app(), 3, 39)),
        relabel(with_value(app(), 1, 19)),
    ];
    (encoded(layout, &nodes), nodes)
}

fn encoded(layout: &Layout, [app, moved, elsewhere]: &[Vec<Spec>; 3]) -> Graphs {
    let v = &layout.rustc;
    let dep = [
        (1, 0, fp(1), fp(2), vec![]),
        (OTHER, 1, fp(3), fp(4), vec![0]),
    ];
    Graphs {
        dep: encode(v, layout, &dep, 2),
        app: encode(v, layout, app, 6),
        moved: encode(v, layout, moved, 6),
        elsewhere: encode(v, layout, elsewhere, 6),
    }
}

#[test]
fn learns_the_layout_the_graphs_were_written_with() {
    assert_eq!(learn(&graphs(&l195()).0), Ok(l195()));
    // Another number of kinds, other kind numbers, another kind width.
    for layout in [
        Layout {
            rustc: "1.97.0-nightly (e50aa6fba 2026-05-19)".into(),
            node_kinds: 329,
            output_filenames: 284,
            used_crate_source: 263,
            ..l195()
        },
        Layout {
            node_kinds: 20,
            kind_bits: 5,
            output_filenames: 12,
            used_crate_source: 19,
            ..l195()
        },
        Layout {
            node_kinds: 513,
            kind_bits: 10,
            output_filenames: 512,
            used_crate_source: 300,
            ..l195()
        },
    ] {
        assert_eq!(learn(&graphs(&layout).0), Ok(layout.clone()), "{layout:?}");
    }
}

/// `learn` on the graphs of `l195()` with the binary's three graphs'
/// nodes replaced.
fn learn_from(
    app: Vec<Spec>,
    moved: Vec<Spec>,
    elsewhere: Vec<Spec>,
) -> Result<Layout, Inconclusive> {
    learn(&encoded(&l195(), &[app, moved, elsewhere]))
}

#[test]
fn a_change_must_change_exactly_one_kind() {
    let [app, moved, elsewhere] = graphs(&l195()).1;
    assert_eq!(
        learn_from(app.clone(), app.clone(), elsewhere.clone()),
        Err(Inconclusive::NoKindChanged(Change::RlibMoved))
    );
    assert_eq!(
        learn_from(app.clone(), moved.clone(), app.clone()),
        Err(Inconclusive::NoKindChanged(Change::OutDir))
    );
    assert_eq!(
        learn_from(
            app.clone(),
            with_value(moved.clone(), 4, 49),
            elsewhere.clone()
        ),
        Err(Inconclusive::KindsChanged {
            change: Change::RlibMoved,
            kinds: vec![OTHER, SRC]
        })
    );
    assert_eq!(
        learn_from(app.clone(), moved.clone(), with_value(elsewhere, 0, 9)),
        Err(Inconclusive::KindsChanged {
            change: Change::OutDir,
            kinds: vec![1, OUT]
        })
    );
    // Both changes point at the same kind.
    assert_eq!(
        learn_from(app.clone(), moved.clone(), moved),
        Err(Inconclusive::SameKind(SRC))
    );
}

#[test]
fn a_change_must_keep_the_nodes() {
    let [app, moved, elsewhere] = graphs(&l195()).1;
    let mut more = moved.clone();
    more.push((OTHER, 5, fp(50), fp(51), vec![]));
    assert_eq!(
        learn_from(app.clone(), more, elsewhere.clone()),
        Err(Inconclusive::OtherNodes(Change::RlibMoved))
    );
    let mut rekeyed = elsewhere;
    rekeyed[4].2 = fp(44);
    assert_eq!(
        learn_from(app, moved, rekeyed),
        Err(Inconclusive::OtherNodes(Change::OutDir))
    );
}

#[test]
fn the_kinds_found_must_hold_path_nodes() {
    let [mut app, mut moved, mut elsewhere] = graphs(&l195()).1;
    // What differs for another out dir has a key: not output_filenames.
    for nodes in [&mut app, &mut moved, &mut elsewhere] {
        nodes[1].2 = fp(11);
    }
    assert_eq!(
        learn_from(app, moved, elsewhere),
        Err(Inconclusive::PathNodes(WrongLayout::OutputFilenamesKey {
            kind: OUT
        }))
    );
}

#[test]
fn graphs_that_do_not_read_conclude_nothing() {
    let (good, _) = graphs(&l195());
    let mut other = graphs(&l195()).0;
    other.dep = encode("1.96.0 (0123456789 2026-05-28)", &l195(), &[], 0);
    assert!(matches!(learn(&other), Err(Inconclusive::Versions(..))));

    let mut cut = graphs(&l195()).0;
    cut.moved
        .remove(cut.moved.len() - FOOTER.len() - TOTALS - 1);
    assert_eq!(learn(&cut), Err(Inconclusive::NoRecordLayout));

    let mut junk = graphs(&l195()).0;
    junk.elsewhere = b"query-cache".to_vec();
    assert!(matches!(learn(&junk), Err(Inconclusive::Damaged(_))));

    // One count too many before the totals: no number of kinds fits.
    let mut extra = graphs(&l195()).0;
    let at = extra.app.len() - FOOTER.len() - TOTALS;
    extra.app.insert(at, 0);
    assert_eq!(learn(&extra), Err(Inconclusive::NoRecordLayout));
    assert!(learn(&good).is_ok());
}
