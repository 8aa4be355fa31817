//! Retention (`cargo seed gc`) and concurrent use of one store: publishers
//! racing each other and a gc, with every snapshot left complete.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use common::*;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World::create_in("gc-tests", None))
}

fn blobs(store: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for dir in fs::read_dir(store.join("blobs")).into_iter().flatten() {
        for f in fs::read_dir(dir.unwrap().path()).unwrap() {
            out.insert(
                f.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .trim_end_matches(".zst")
                    .to_owned(),
            );
        }
    }
    out
}

fn gc(dir: &Path, store: &Path, args: &[&str]) -> std::process::Output {
    let mut a = vec!["gc", "--store", store.to_str().unwrap()];
    a.extend(args);
    let out = seed(dir, &a);
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

#[test]
fn gc_removes_old_snapshots_and_only_their_blobs() {
    let w = world();
    let store = w.store_copy("gc");
    // The base snapshot was published 200 days ago.
    let path = World::manifest_path(&store, &w.commits.base);
    let mut m = World::manifest(&store, &w.commits.base);
    let base_blobs = referenced(&m);
    m["created"] = (m["created"].as_u64().unwrap() - 200 * 86_400).into();
    fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let next_blobs = referenced(&World::manifest(&store, &w.commits.greet_changed));
    let before = blobs(&store);

    let dir = w.clone_at(&w.commits.greet_changed);
    let out = gc(
        &dir,
        &store,
        &["--keep-last", "1", "--grace-hours", "0", "--dry-run"],
    );
    assert!(
        text(&out.stderr).contains("Would remove 1 snapshots"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(blobs(&store), before, "a dry run removes nothing");
    assert!(path.exists());

    gc(&dir, &store, &["--keep-last", "1", "--grace-hours", "0"]);
    assert!(!path.exists(), "the old snapshot is gone");
    let after = blobs(&store);
    let only_base: BTreeSet<_> = base_blobs.difference(&next_blobs).cloned().collect();
    assert!(!only_base.is_empty());
    assert!(
        after.is_disjoint(&only_base),
        "blobs only the old snapshot used are gone"
    );
    assert_eq!(
        after, next_blobs,
        "every blob the kept snapshot uses is still there"
    );

    // The kept snapshot still seeds, and cargo finds everything fresh.
    let out = seed(&dir, &["--store", store.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(cargo_build(&dir).compiled.is_empty());
}

#[test]
fn gc_spares_unreferenced_blobs_younger_than_the_grace_period() {
    let w = world();
    let store = w.store_copy("grace");
    // A blob a publish has just uploaded and not yet referenced.
    let pending = store.join("blobs/ab/ab".to_owned() + &"0".repeat(62) + ".zst");
    fs::create_dir_all(pending.parent().unwrap()).unwrap();
    fs::write(&pending, b"not referenced yet").unwrap();

    let dir = w.clone_at(&w.commits.base);
    gc(&dir, &store, &[]);
    assert!(pending.exists(), "the default grace period keeps it");
    gc(&dir, &store, &["--grace-hours", "0"]);
    assert!(!pending.exists(), "without a grace period it is removed");
    // Both snapshots are recent: nothing they use was touched.
    for commit in [&w.commits.base, &w.commits.greet_changed] {
        let m = World::manifest(&store, commit);
        assert!(referenced(&m).is_subset(&blobs(&store)));
    }
}

#[test]
fn concurrent_publishers_and_an_aggressive_gc_leave_every_snapshot_complete() {
    let w = world();
    let store = w.root.join("race-store");
    let store_arg = store.to_str().unwrap().to_owned();
    for round in 0..3 {
        let spawn = |args: &[&str]| command("cargo", &w.ci).args(args).spawn().unwrap();
        let mut children = vec![
            spawn(&["seed", "publish", "-q", "--store", &store_arg]),
            spawn(&["seed", "publish", "-q", "--store", &store_arg]),
            // No grace at all: it may delete blobs a publisher has uploaded
            // but not yet referenced, which the publisher must put back.
            spawn(&[
                "seed",
                "gc",
                "-q",
                "--store",
                &store_arg,
                "--grace-hours",
                "0",
            ]),
        ];
        for c in &mut children {
            assert!(c.wait().unwrap().success(), "round {round}");
        }
        let m = World::manifest(&store, &w.commits.greet_changed);
        let missing: Vec<_> = referenced(&m).difference(&blobs(&store)).cloned().collect();
        assert!(
            missing.is_empty(),
            "round {round}: blobs missing {missing:?}"
        );
        assert!(
            !store.join("tmp").exists() || fs::read_dir(store.join("tmp")).unwrap().count() == 0
        );
    }
    let dir = w.clone_at(&w.commits.greet_changed);
    let out = seed(&dir, &["--store", &store_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_nothing_compiles(&dir, "hi there, seed");
}
