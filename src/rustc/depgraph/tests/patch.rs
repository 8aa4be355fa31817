//! Path nodes and the patch, on graphs encoded by the parent module.

use std::fs;

use super::*;

#[test]
fn path_nodes_that_rustc_would_not_write_are_refused() {
    let two = [
        (OUT, 0, [0; 16], fp(1), vec![]),
        (OUT, 1, [0; 16], fp(2), vec![]),
    ];
    let g = parse(&encode(V195, &l195(), &two, 2), &l195()).unwrap();
    assert_eq!(
        g.path_nodes().unwrap_err(),
        WrongLayout::ManyOutputFilenames {
            kind: OUT,
            count: 2
        }
    );
    let keyed = [(OUT, 0, fp(3), fp(1), vec![])];
    let g = parse(&encode(V195, &l195(), &keyed, 1), &l195()).unwrap();
    assert!(matches!(
        g.path_nodes(),
        Err(WrongLayout::OutputFilenamesKey { .. })
    ));
    let same = [
        (SRC, 0, fp(3), fp(1), vec![]),
        (SRC, 1, fp(3), fp(2), vec![]),
    ];
    let g = parse(&encode(V195, &l195(), &same, 2), &l195()).unwrap();
    assert_eq!(
        g.path_nodes().unwrap_err(),
        WrongLayout::RepeatedCrateSource { kind: SRC }
    );
}

#[test]
fn path_queries_serialise_in_kebab_case() {
    let json =
        serde_json::to_string(&[PathQuery::OutputFilenames, PathQuery::UsedCrateSource]).unwrap();
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
    let before = encode(V195, &l195(), &nodes, 6);
    fs::write(&file, &before).unwrap();

    let done = patch_paths(&file, &l195(), &ci, &local).unwrap();
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
    assert_eq!(after, encode(V195, &l195(), &expected_nodes, 6));

    // Patching again finds the local values in place.
    let again = patch_paths(&file, &l195(), &ci, &local).unwrap();
    assert_eq!((again.patched, again.already_local), (0, 3));
    assert_eq!(fs::read(&file).unwrap(), after);
    assert_eq!(
        values(&file, &l195())
            .unwrap()
            .get(&(UsedCrateSource, fp(20))),
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

    let other = encode("1.96.0 (0123456789 2026-05-28)", &l195(), &nodes, 1);
    fs::write(&file, &other).unwrap();
    let err = patch_paths(&file, &l195(), &ci, &local).unwrap_err();
    assert!(
        matches!(err, Refused::Unreadable(Unreadable::Unverified { .. })),
        "{err}"
    );
    assert_eq!(fs::read(&file).unwrap(), other);

    let mut cut = encode(V195, &l195(), &nodes, 1);
    cut.remove(cut.len() - FOOTER.len() - 1);
    fs::write(&file, &cut).unwrap();
    let err = patch_paths(&file, &l195(), &ci, &local).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("its dep graph does not parse to its trailer"),
        "{err}"
    );
    assert_eq!(fs::read(&file).unwrap(), cut);

    let err = patch_paths(&d.path().join("missing"), &l195(), &ci, &local).unwrap_err();
    assert!(matches!(err, Refused::Io { op: "read", .. }), "{err}");
}
