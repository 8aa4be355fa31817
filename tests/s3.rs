//! Object storage: `s3://bucket/prefix` against a real S3-compatible server
//! on loopback (moto's), configured only through the AWS environment.
//! Publish, seed, list and gc, a gc between a publish's blobs and its
//! manifest, multipart uploads, stalled and damaged or missing objects.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::http::{Fault, Proxy};
use common::s3::Moto;
use common::window::publish_with_window;
use common::*;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World::create_in("s3-tests", None))
}

fn s3_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = command("cargo", dir);
    // Nothing of the developer's own AWS setup may redirect the tests.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(Moto::shared().env()).arg("seed").args(args);
    cmd
}

fn s3_seed(dir: &Path, args: &[&str]) -> Output {
    s3_cmd(dir, args).output().unwrap()
}

/// As [`s3_seed`], compiling through cargo-seed's wrapper as CI did, so
/// that incremental state is fetched too.
fn s3_seed_wrapped(dir: &Path, args: &[&str]) -> Output {
    s3_cmd(dir, args)
        .env("RUSTC_WRAPPER", BIN)
        .output()
        .unwrap()
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
    assert!(
        proxy.ranged.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the truncated download was resumed with a range"
    );

    assert_nothing_compiles(&dir, "hello, seed");
}

/// A download that stalls (half its body sent, then nothing on an open
/// connection) is given up after the read timeout and resumed where it
/// stopped. The timeout is 30 s unless `AWS_READ_TIMEOUT` says otherwise, as
/// it does here.
#[test]
fn seeding_from_s3_gives_up_on_a_stalled_download_and_resumes_it() {
    use std::sync::atomic::Ordering::Relaxed;

    let w = world();
    let (_, url) = bucket_with_snapshots("stall", |_| {});
    let proxy = Proxy::start(&Moto::shared().endpoint);
    proxy.inject([Fault::Hang]);
    let dir = w.clone_at(&w.commits.base);
    let out = s3_cmd(&dir, &["--store", &url])
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .env("AWS_READ_TIMEOUT", "2s")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(proxy.faults_left(), 0, "the stall was met");
    assert_eq!(
        proxy.abandoned.load(Relaxed),
        1,
        "the client closed the stalled connection itself"
    );
    assert!(
        proxy.ranged.load(Relaxed) > 0,
        "the download was resumed with a range"
    );
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

/// A gc without grace removes the blobs a publish found in the bucket before
/// the publish's manifest references them; the publish checks its blobs
/// again after writing the manifest and puts them back. Without grace the
/// refresh protects nothing, so this is the re-check alone; the refresh is
/// `publishing_again_refreshes_blobs_instead_of_uploading_them` (moto cannot
/// age an object, which a gc in the window with a grace period would need).
#[test]
fn publish_to_s3_puts_back_the_blobs_a_gc_removed_before_its_manifest() {
    use cargo_seed::store::S3Store;

    let w = world();
    let moto = Moto::shared();
    // As a gc leaves the bucket once `greet_changed`'s snapshot has aged
    // out: the blobs only it used are unreferenced, and CI's checkout, at
    // `greet_changed`, reuses them.
    let (bucket, url) = bucket_with_snapshots("window", |local| {
        std::fs::remove_dir_all(local.join("snapshots").join(&w.commits.greet_changed)).unwrap();
    });
    let base = referenced(&s3_manifest(&bucket, &w.commits.base).unwrap());
    let before = blob_keys(&moto.list(&bucket, "team/"));
    let only_greet: BTreeSet<_> = before.difference(&base).cloned().collect();
    assert!(!only_greet.is_empty());

    let env = moto.env();
    let config = env.iter().map(|(k, v)| (*k, v.as_str()));
    let s3 = S3Store::with_config(&url, config).unwrap();
    let (_, in_window) = publish_with_window(&w.ci, &s3, || {
        let out = s3_seed(&w.ci, &["gc", "--store", &url, "--grace-hours", "0"]);
        assert!(out.status.success(), "{}", stderr(&out));
        blob_keys(&moto.list(&bucket, "team/"))
    });
    assert!(
        in_window.is_disjoint(&only_greet),
        "the gc removed the reused blobs before the manifest was written"
    );

    let m = s3_manifest(&bucket, &w.commits.greet_changed).unwrap();
    let present = blob_keys(&moto.list(&bucket, "team/"));
    let missing: Vec<_> = referenced(&m).difference(&present).cloned().collect();
    assert!(missing.is_empty(), "blobs missing: {missing:?}");
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
    let out = s3_seed_wrapped(&dir, &["--store", &url]);
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
    let out = s3_seed_wrapped(&dir, &["--store", &url, "--force", "--commit", &target]);
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

/// A unit whose blob is over the part size (a build script that writes
/// 20 MiB zstd cannot shrink into its `OUT_DIR`) goes up in three parts, and
/// seeds like any other.
#[test]
fn a_blob_over_the_part_size_is_published_in_parts_and_seeds() {
    const NOISE: &str = r#"
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..20 << 17)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    fs::write(out.with_file_name("noise.bin"), noise).unwrap();
"#;
    let one = OneCommit::create(
        "s3-parts",
        |origin| {
            let at = "    fs::write(out,";
            edit(&origin.join("gen/build.rs"), at, &format!("{NOISE}{at}"));
        },
        &[],
    );
    let moto = Moto::shared();
    let bucket = moto.bucket("parts");
    let url = format!("s3://{bucket}/team");
    let out = s3_seed(&one.ci, &["publish", "--store", &url]);
    assert!(out.status.success(), "{}", stderr(&out));

    let m = s3_manifest(&bucket, &one.commit).unwrap();
    let etags = moto.etags(&bucket, "team/blobs/");
    let part = 8 << 20;
    let mut big = 0;
    for unit in m["units"].as_array().unwrap() {
        let (sha, size) = (
            unit["blob"]["sha256"].as_str().unwrap(),
            unit["blob"]["size"].as_u64().unwrap(),
        );
        let etag = &etags[&format!("team/blobs/{}/{sha}.zst", &sha[..2])];
        if size > part {
            big += 1;
            assert!(
                etag.ends_with("-3"),
                "{} ({size} bytes): {etag}",
                unit["id"]
            );
        } else {
            assert!(!etag.contains('-'), "{} ({size} bytes): {etag}", unit["id"]);
        }
    }
    assert_eq!(big, 1, "one blob over {part} bytes");

    let dir = one.clone_dev();
    let out = s3_seed(&dir, &["--store", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_compiles(&dir, "hello, seed");
    // In gen's build-script run's OUT_DIR: `build/gen-<hash>/out` (flat
    // layout) or `build/gen/<hash>/out` (per-unit).
    let noise = |root: &Path| {
        let profile_dir = root.join("target/debug");
        let flat = std::fs::read_dir(profile_dir.join("build"))
            .unwrap()
            .map(|e| e.unwrap().path().join("out/noise.bin"));
        let per_unit = output_dirs(&profile_dir)
            .into_iter()
            .map(|d| profile_dir.join(d).join("noise.bin"));
        let found = flat
            .chain(per_unit)
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no noise.bin under {}", profile_dir.display()));
        std::fs::read(found).unwrap()
    };
    assert!(
        noise(&dir) == noise(&one.ci),
        "the restored OUT_DIR file is CI's"
    );
}

/// The store's own operations, through the library: a blob large enough for
/// a multipart upload, a bucket without a prefix and one with a deep prefix.
#[test]
fn objects_round_trip_with_and_without_a_prefix_and_in_parts() {
    use cargo_seed::store::{ReadBound, S3Store, Store, StoreError};
    use sha2::{Digest, Sha256};
    static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let bound = ReadBound {
        size: 20 << 20,
        cancel: &NEVER,
    };

    let moto = Moto::shared();
    let bucket = moto.bucket("objects");
    let env = moto.env();
    let config: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = world().root.join("objects");
    std::fs::create_dir_all(&dir).unwrap();
    // 20 MiB that compress to nothing less: three parts of 8 MiB.
    let big = dir.join("big");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let bytes: Vec<u8> = (0..20 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&big, &bytes).unwrap();
    let small = dir.join("small");
    std::fs::write(&small, b"small").unwrap();

    for (url, prefix) in [
        (format!("s3://{bucket}"), String::new()),
        (format!("s3://{bucket}/a/b.c/d_e"), "a/b.c/d_e/".to_owned()),
    ] {
        let store = S3Store::with_config(&url, config.iter().copied()).unwrap();
        assert_eq!(store.location(), url);
        store.put_file("blobs/ab/big.zst", &big).unwrap();
        store.put_file("blobs/ab/small.zst", &small).unwrap();
        store.put_file("snapshots/abcd/x.json", &small).unwrap();

        // Seen by an independent client under exactly the prefix.
        let keys = moto.list(&bucket, &prefix);
        assert!(
            keys.contains_key(&format!("{prefix}blobs/ab/big.zst")),
            "{keys:?}"
        );
        // 20 MiB in parts of 8: the ETag of a three-part upload.
        let etags = moto.etags(&bucket, &prefix);
        let etag = |key: &str| etags[&format!("{prefix}{key}")].as_str();
        assert!(etag("blobs/ab/big.zst").ends_with("-3"), "{etags:?}");
        assert!(!etag("blobs/ab/small.zst").contains('-'), "{etags:?}");
        let mut body = Vec::new();
        store
            .get("blobs/ab/big.zst", bound)
            .unwrap()
            .read_to_end(&mut body)
            .unwrap();
        assert_eq!(Sha256::digest(&body), Sha256::digest(&bytes));

        let listed = store.list("blobs/").unwrap().unwrap();
        let mut found: Vec<_> = listed.iter().map(|l| (l.key.as_str(), l.size)).collect();
        found.sort();
        assert_eq!(
            found,
            [("blobs/ab/big.zst", 20 << 20), ("blobs/ab/small.zst", 5)]
        );
        // `snapshots/abc/` is not a prefix of `snapshots/abcd/x.json`.
        assert!(store.list("snapshots/abc/").unwrap().unwrap().is_empty());
        assert!(store.exists("blobs/ab/small.zst").unwrap());
        assert!(store.modified("blobs/ab/small.zst").unwrap().is_some());
        store.touch("blobs/ab/small.zst").unwrap();
        for key in [
            "blobs/ab/big.zst",
            "blobs/ab/small.zst",
            "snapshots/abcd/x.json",
        ] {
            store.delete(key).unwrap();
            assert!(!store.exists(key).unwrap());
        }
        assert!(matches!(
            store.get("blobs/ab/big.zst", bound).map(drop),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.modified("blobs/ab/big.zst").unwrap(), None);
        // Deleting what is gone is not an error.
        store.delete("blobs/ab/big.zst").unwrap();
    }
    assert!(moto.list(&bucket, "").is_empty(), "nothing left behind");

    for bad in [
        format!("s3://{bucket}/a//b"),
        format!("s3://{bucket}/we~ird"),
    ] {
        let err = S3Store::with_config(&bad, config.iter().copied())
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::Config { .. }), "{bad}: {err}");
    }
    let remote_http = [("aws_endpoint_url", "http://minio.internal:9000")];
    let err = S3Store::with_config("s3://b/p", remote_http).err().unwrap();
    assert!(err.to_string().contains("plain http"), "{err}");
    let allowed = [
        ("aws_endpoint_url", "http://minio.internal:9000"),
        ("aws_allow_http", "true"),
    ];
    if let Err(e) = S3Store::with_config("s3://b/p", allowed) {
        panic!("http allowed explicitly: {e}");
    }
}
