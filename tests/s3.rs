//! Object storage: `s3://bucket/prefix` against a real S3-compatible server
//! on loopback (moto's), configured only through the AWS environment.
//! Publish, seed, list and gc, publishers racing each other and a gc, and
//! damaged or missing objects.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::http::{Fault, Proxy};
use common::s3::Moto;
use common::*;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World::create_in("s3-tests", None))
}

fn s3_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = command("cargo", dir);
    cmd.envs(Moto::shared().env()).arg("seed").args(args);
    cmd
}

fn s3_seed(dir: &Path, args: &[&str]) -> Output {
    s3_cmd(dir, args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

/// A bucket holding a copy of the world's local store under `team/`.
fn bucket_with_snapshots(tag: &str, edit: impl FnOnce(&Path)) -> (String, String) {
    let w = world();
    let moto = Moto::shared();
    let bucket = moto.bucket(tag);
    let local = w.store_copy(&bucket);
    edit(&local);
    moto.upload_store(&local, &bucket, "team");
    let url = format!("s3://{bucket}/team");
    (bucket, url)
}

fn blob_keys(listing: &BTreeMap<String, String>) -> BTreeSet<String> {
    listing
        .keys()
        .filter_map(|k| k.strip_prefix("team/blobs/"))
        .map(|k| {
            k.split('/')
                .nth(1)
                .unwrap()
                .trim_end_matches(".zst")
                .to_owned()
        })
        .collect()
}

fn s3_manifest(bucket: &str, commit: &str) -> Option<serde_json::Value> {
    let moto = Moto::shared();
    let listing = moto.list(bucket, &format!("team/snapshots/{commit}/"));
    let key = listing.keys().next()?;
    Some(serde_json::from_slice(&moto.get(bucket, key)?).unwrap())
}

#[test]
fn publish_to_s3_then_seed_the_next_commit_from_it() {
    let w = world();
    let moto = Moto::shared();
    let bucket = moto.bucket("publish");
    let url = format!("s3://{bucket}/team");

    // CI's checkout is at `greet_changed`, already built.
    let out = s3_seed(&w.ci, &["publish", "--store", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = s3_manifest(&bucket, &w.commits.greet_changed).expect("a manifest in the bucket");
    let stored = moto.list(&bucket, "team/");
    assert_eq!(
        blob_keys(&stored),
        referenced(&m),
        "exactly the manifest's blobs"
    );
    assert!(stored.keys().all(|k| k.starts_with("team/")));

    let out = s3_seed(&w.ci, &["list", "--store", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text(&out.stdout).contains(&w.commits.greet_changed[..12]));

    // A developer one commit ahead: the build script's input changed since.
    let dir = w.clone_at(&w.commits.data_changed);
    let out = s3_seed(&dir, &["--store", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("(distance 1"), "{}", stderr(&out));
    let build = cargo_build(&dir);
    assert_eq!(build.ran_build_scripts, 1, "{}", build.stderr);
    assert_compiled(&build, &["app", "gen"]);
    let said = run_app(&dir);
    assert!(said.starts_with("hi there, seed"), "{said}");
    assert!(said.contains("generated: regenerated\n"), "{said}");
}

#[test]
fn seeding_from_s3_rides_out_transient_faults() {
    let w = world();
    let (_, url) = bucket_with_snapshots("faults", |_| {});
    let proxy = Proxy::start(&Moto::shared().endpoint);
    proxy.inject([
        Fault::Truncate(1000),
        Fault::Status(500),
        Fault::Status(503),
        Fault::TooMany(1),
        Fault::Drop,
        Fault::Flip,
        Fault::Slow(std::time::Duration::from_millis(300)),
    ]);
    let dir = w.clone_at(&w.commits.base);
    let out = s3_cmd(&dir, &["--store", &url])
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(proxy.faults_left(), 0, "every fault was met");

    assert_nothing_compiles(&dir, "hello, seed");
}

#[test]
fn publishing_again_refreshes_blobs_instead_of_uploading_them() {
    let w = world();
    let moto = Moto::shared();
    let (bucket, url) = bucket_with_snapshots("refresh", |_| {});
    let before = moto.list(&bucket, "team/blobs/");
    // S3 keeps LastModified to the second.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let out = s3_seed(&w.ci, &["publish", "--store", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("0 new blobs"),
        "nothing is uploaded again: {}",
        stderr(&out)
    );
    let after = moto.list(&bucket, "team/blobs/");
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let m = s3_manifest(&bucket, &w.commits.greet_changed).unwrap();
    for sha in referenced(&m) {
        let key = format!("team/blobs/{}/{sha}.zst", &sha[..2]);
        assert!(
            after[&key] > before[&key],
            "{key} was refreshed for gc's grace period: {} then {}",
            before[&key],
            after[&key]
        );
    }
}

#[test]
fn gc_on_s3_removes_old_snapshots_and_their_blobs_but_spares_young_ones() {
    let w = world();
    let moto = Moto::shared();
    let (bucket, url) = bucket_with_snapshots("gc", |local| {
        World::edit_manifest(local, &w.commits.base, |m| {
            m["created"] = (m["created"].as_u64().unwrap() - 200 * 86_400).into();
        });
    });
    let base = s3_manifest(&bucket, &w.commits.base).unwrap();
    let next = s3_manifest(&bucket, &w.commits.greet_changed).unwrap();
    let only_base: BTreeSet<_> = referenced(&base)
        .difference(&referenced(&next))
        .cloned()
        .collect();
    assert!(!only_base.is_empty());

    // With the default grace period, the old snapshot goes but its blobs,
    // uploaded just now, stay.
    let dir = w.clone_at(&w.commits.greet_changed);
    let out = s3_seed(&dir, &["gc", "--store", &url, "--keep-last", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        s3_manifest(&bucket, &w.commits.base).is_none(),
        "old snapshot removed"
    );
    assert!(only_base.is_subset(&blob_keys(&moto.list(&bucket, "team/"))));

    let out = s3_seed(
        &dir,
        &[
            "gc",
            "--store",
            &url,
            "--keep-last",
            "1",
            "--grace-hours",
            "0",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        blob_keys(&moto.list(&bucket, "team/")),
        referenced(&next),
        "exactly the kept snapshot's blobs remain"
    );

    let out = s3_seed(&dir, &["--store", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_compiles(&dir, "hi there, seed");
}

#[test]
fn publishers_racing_each_other_and_a_gc_on_s3_leave_the_snapshot_complete() {
    let w = world();
    let moto = Moto::shared();
    let bucket = moto.bucket("race");
    let url = format!("s3://{bucket}/team");
    for round in 0..2 {
        let mut children: Vec<_> = [
            vec!["publish", "-q", "--store", &url],
            vec!["publish", "-q", "--store", &url],
            // No grace at all: it may delete blobs a publisher has uploaded
            // but not yet referenced, which the publisher must put back.
            vec!["gc", "-q", "--store", &url, "--grace-hours", "0"],
        ]
        .iter()
        .map(|args| s3_cmd(&w.ci, args).spawn().unwrap())
        .collect();
        for c in &mut children {
            assert!(c.wait().unwrap().success(), "round {round}");
        }
        let m = s3_manifest(&bucket, &w.commits.greet_changed).unwrap();
        let present = blob_keys(&moto.list(&bucket, "team/"));
        let missing: Vec<_> = referenced(&m).difference(&present).cloned().collect();
        assert!(
            missing.is_empty(),
            "round {round}: blobs missing {missing:?}"
        );
    }
    let dir = w.clone_at(&w.commits.greet_changed);
    let out = s3_seed(&dir, &["--store", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_compiles(&dir, "hi there, seed");
}

#[test]
fn a_damaged_blob_or_a_missing_bucket_fails_cleanly_and_keeps_the_target_dir() {
    let w = world();
    let moto = Moto::shared();
    let (bucket, url) = bucket_with_snapshots("damaged", |_| {});
    let dir = w.clone_at(&w.commits.base);
    let out = s3_seed(&dir, &["--store", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = tree_listing(&dir.join("target"));

    // Flip a byte in every blob only the newer snapshot has.
    let base = s3_manifest(&bucket, &w.commits.base).unwrap();
    let next = s3_manifest(&bucket, &w.commits.greet_changed).unwrap();
    for sha in referenced(&next).difference(&referenced(&base)) {
        let key = format!("team/blobs/{}/{sha}.zst", &sha[..2]);
        let mut body = moto.get(&bucket, &key).unwrap();
        let mid = body.len() / 2;
        body[mid] ^= 0x55;
        moto.put(&bucket, &key, &body);
    }
    let target = w.commits.greet_changed.clone();
    let out = s3_seed(&dir, &["--store", &url, "--force", "--commit", &target]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not match its digest"),
        "{}",
        stderr(&out)
    );
    assert_same_tree(&before, &tree_listing(&dir.join("target")));

    let out = s3_seed(&dir, &["--store", "s3://no-such-bucket/team", "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("s3://no-such-bucket/team") && err.contains("NoSuchBucket"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(err.contains("\nhint: "), "{err}");
    assert_same_tree(&before, &tree_listing(&dir.join("target")));
}
