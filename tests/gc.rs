//! Retention (`cargo seed gc`), and a gc running while a publish is between
//! finding its blobs in the store and writing the manifest that references
//! them, with the snapshot left complete.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cargo_seed::store::LocalStore;
use common::window::publish_with_window;
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

/// A copy of the store without `greet_changed`'s snapshot, as a gc leaves it
/// once that snapshot has aged out, and the blobs only that snapshot used,
/// which nothing references now. CI's checkout is at `greet_changed`: its
/// publish finds them in the store and reuses them.
fn store_without_greet_changed(name: &str) -> (PathBuf, BTreeSet<String>) {
    let w = world();
    let store = w.store_copy(name);
    let only_greet: BTreeSet<String> =
        referenced(&World::manifest(&store, &w.commits.greet_changed))
            .difference(&referenced(&World::manifest(&store, &w.commits.base)))
            .cloned()
            .collect();
    assert!(!only_greet.is_empty());
    fs::remove_dir_all(store.join("snapshots").join(&w.commits.greet_changed)).unwrap();
    (store, only_greet)
}

/// Every blob `commit`'s manifest references is in the store, and a fresh
/// clone seeded from it compiles nothing.
fn assert_complete(store: &Path, commit: &str, prints: &str) {
    let missing: Vec<_> = referenced(&World::manifest(store, commit))
        .difference(&blobs(store))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "blobs missing: {missing:?}");
    let staged = fs::read_dir(store.join("tmp")).map_or(0, |d| d.count());
    assert_eq!(staged, 0, "nothing is left in the store's staging area");
    let dir = world().clone_at(commit);
    let out = seed(&dir, &["--store", store.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_nothing_compiles(&dir, prints);
}

/// A gc without grace removes the blobs a publish found in the store before
/// the publish's manifest references them; the publish checks its blobs
/// again after writing the manifest and puts them back.
#[test]
fn publish_puts_back_the_blobs_a_gc_removed_before_its_manifest() {
    let w = world();
    let (store, only_greet) = store_without_greet_changed("window-recheck");
    let local = LocalStore::new(store.clone());
    let (_, in_window) = publish_with_window(&w.ci, &local, || {
        gc(&w.ci, &store, &["--grace-hours", "0"]);
        blobs(&store)
    });
    assert!(
        in_window.is_disjoint(&only_greet),
        "the gc removed the reused blobs before the manifest was written"
    );
    assert_complete(&store, &w.commits.greet_changed, "hi there, seed");
}

/// Publishing refreshes the blobs it reuses, so that a gc with its grace
/// period spares them even though they are old and, until the manifest is
/// written, unreferenced.
#[test]
fn publish_refreshes_reused_blobs_so_a_gc_before_its_manifest_spares_them() {
    let w = world();
    let (store, only_greet) = store_without_greet_changed("window-refresh");
    for sha in &only_greet {
        backdate(&store.join(format!("blobs/{}/{sha}.zst", &sha[..2])));
    }
    let local = LocalStore::new(store.clone());
    let (_, (in_window, said)) = publish_with_window(&w.ci, &local, || {
        let out = gc(&w.ci, &store, &[]);
        (blobs(&store), text(&out.stderr))
    });
    assert!(
        only_greet.is_subset(&in_window),
        "the gc spared the refreshed blobs: {said}"
    );
    assert!(
        said.contains(&format!(
            "{} unreferenced blobs younger than the grace period",
            only_greet.len()
        )),
        "{said}"
    );
    assert_complete(&store, &w.commits.greet_changed, "hi there, seed");
}
