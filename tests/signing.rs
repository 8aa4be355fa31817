//! Signed snapshots: CI signs with `CARGO_SEED_SIGNING_KEY`; a checkout that
//! pins the public key (`CARGO_SEED_TRUSTED_KEYS` or `trusted-keys` in the
//! workspace's Cargo.toml) seeds only what that key signed, and refuses with
//! exit 3, its build dir untouched, a snapshot that was altered, unsigned,
//! signed by another key or copied to another commit.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::SystemTime;

use cargo_seed::snapshot::signing::{PublicKey, SecretKey};
use common::http::Server;
use common::*;

/// The world of the other tests, plus CI's `greet_changed` published again,
/// signed, into a store of its own.
struct Signed {
    w: World,
    store: PathBuf,
    secret: String,
    public: String,
    /// A second key pair that no checkout trusts.
    other_secret: String,
    other_public: String,
    /// What the signed publish said.
    publish: String,
}

impl Signed {
    fn store_arg(&self) -> &str {
        self.store.to_str().unwrap()
    }

    /// A copy of the signed store that a test may damage.
    fn store_copy(&self, name: &str) -> PathBuf {
        let to = self.w.root.join(format!("signed-store-{name}"));
        copy_tree(&self.store, &to);
        to
    }
}

fn signed() -> &'static Signed {
    static SIGNED: OnceLock<Signed> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let w = World::create_in("signing-tests", None);
        let (secret, public) = keygen(&w.root);
        let (other_secret, other_public) = keygen(&w.root);
        assert_ne!(public, other_public);
        let store = w.root.join("signed-store");
        // CI's checkout is at greet_changed, built.
        let out = ok(command("cargo", &w.ci)
            .args(["seed", "publish", "--store", store.to_str().unwrap()])
            .env("CARGO_SEED_SIGNING_KEY", &secret));
        let publish = text(&out.stderr);
        Signed {
            w,
            store,
            secret,
            public,
            other_secret,
            other_public,
            publish,
        }
    })
}

/// `cargo seed keygen`, outside any workspace: (secret, public).
fn keygen(dir: &Path) -> (String, String) {
    let out = seed(dir, &["keygen"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{said}");
    assert!(lines[0].starts_with("secret key"), "{said}");
    assert!(lines[1].starts_with("public key"), "{said}");
    let key = |line: &str| line.rsplit(' ').next().unwrap().to_owned();
    let (secret, public) = (key(lines[0]), key(lines[1]));
    assert!(secret.starts_with("cargo-seed-secret-ed25519:"), "{said}");
    assert!(public.starts_with("cargo-seed-ed25519:"), "{said}");
    (secret, public)
}

fn key_id(public: &str) -> String {
    PublicKey::parse(public).unwrap().id().to_string()
}

/// `cargo seed <args>` in `dir`, trusting `keys` through the environment.
fn seed_trusting(dir: &Path, keys: &str, args: &[&str]) -> Output {
    command("cargo", dir)
        .arg("seed")
        .args(args)
        .env("CARGO_SEED_TRUSTED_KEYS", keys)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

fn signature_path(manifest: &Path) -> PathBuf {
    let mut name = manifest.file_name().unwrap().to_owned();
    name.push(".sig");
    manifest.with_file_name(name)
}

/// The variant a manifest is stored under (its file name's stem).
fn variant_of(manifest: &Path) -> String {
    manifest.file_stem().unwrap().to_str().unwrap().to_owned()
}

/// `cargo seed list`'s row for `commit`.
fn list_row(listing: &str, commit: &str) -> String {
    listing
        .lines()
        .find(|l| l.starts_with(&commit[..12]))
        .unwrap_or_else(|| panic!("no row for {commit}:\n{listing}"))
        .to_owned()
}

#[test]
fn a_signed_snapshot_seeds_where_its_key_is_trusted_and_nothing_compiles() {
    let s = signed();
    let w = &s.w;
    let id = key_id(&s.public);
    assert!(
        s.publish.contains(&format!("signed with key {id}")),
        "{}",
        s.publish
    );
    let manifest = World::manifest_path(&s.store, &w.commits.greet_changed);
    let signature = fs::read_to_string(signature_path(&manifest)).unwrap();
    assert!(
        signature.starts_with("cargo-seed-signature-v1 ") && signature.lines().count() == 1,
        "{signature}"
    );

    let dir = w.clone_at(&w.commits.greet_changed);
    // Two trusted keys, as while rotating, separated by a comma and a space.
    let keys = format!("{}, {}", s.other_public, s.public);
    let out = seed_trusting(&dir, &keys, &["--store", s.store_arg()]);
    let said = stderr(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("signed by key {id}")), "{said}");
    assert!(!said.contains("warning"), "{said}");
    assert_nothing_compiles(&dir, "hi there, seed");
}

#[test]
fn trusted_keys_committed_in_the_workspace_manifest_are_honoured() {
    let s = signed();
    let w = &s.w;
    let greet = &w.commits.greet_changed;
    let dir = w.clone_at(greet);
    let toml = dir.join("Cargo.toml");
    let committed = fs::read_to_string(&toml).unwrap();
    let trusting = |keys: &[&str]| {
        let list: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
        let seed = format!(
            "\n[workspace.metadata.seed]\ntrusted-keys = [{}]\n",
            list.join(", ")
        );
        fs::write(&toml, format!("{committed}{seed}")).unwrap();
    };
    trusting(&[&s.public]);

    let out = seed(&dir, &["list", "--store", s.store_arg()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = text(&out.stdout);
    assert!(list_row(&listing, greet).ends_with(" yes"), "{listing}");
    let out = seed(&dir, &["--store", s.store_arg(), "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text(&out.stdout).starts_with(&format!("would seed {}", &greet[..12])),
        "{}",
        text(&out.stdout)
    );

    // The world's own store is unsigned: nothing in it is usable.
    let out = seed(&dir, &["list", "--store", w.store_arg()]);
    let listing = text(&out.stdout);
    for commit in [greet, &w.commits.base] {
        let row = list_row(&listing, commit);
        assert!(row.contains("no: not authentic: unsigned"), "{listing}");
    }
    let out = seed(&dir, &["--store", w.store_arg(), "--commit", greet]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("unsigned"), "{}", stderr(&out));
    assert!(!dir.join("target").exists());

    // The environment wins over the file.
    let out = seed_trusting(&dir, &s.other_public, &["list", "--store", s.store_arg()]);
    let listing = text(&out.stdout);
    let refused = format!(
        "no: not authentic: signed by key {}, which is not a trusted key",
        key_id(&s.public)
    );
    assert!(list_row(&listing, greet).contains(&refused), "{listing}");

    // A key in the file that does not parse is an error naming it.
    trusting(&[&s.public, "cargo-seed-ed25519:0123"]);
    let out = seed(&dir, &["list", "--store", s.store_arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "trusted key `cargo-seed-ed25519:0123` in [workspace.metadata.seed] trusted-keys is malformed"
        ),
        "{}",
        stderr(&out)
    );
}

type Tree = BTreeMap<PathBuf, (u64, SystemTime, u64)>;

/// Seeding `commit` from a copy of the signed store that `damage` changed
/// fails with exit 3 and `reason`, leaves the target dir as `before`, and
/// `list` shows the snapshot as `no: not authentic: <reason>`.
fn assert_refused(
    s: &Signed,
    dir: &Path,
    before: &Tree,
    (case, commit): (&str, &str),
    damage: impl FnOnce(&Path),
    reason: &str,
) {
    let store = s.store_copy(case);
    damage(&store);
    let store = store.to_str().unwrap();
    let args = ["--store", store, "--force", "--commit", commit];
    let out = seed_trusting(dir, &s.public, &args);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{case}: {said}");
    assert!(said.contains(reason), "{case}: {said}");
    assert_same_tree(before, &tree_listing(&dir.join("target")));

    let out = seed_trusting(dir, &s.public, &["list", "--store", store]);
    assert!(out.status.success(), "{case}: {}", stderr(&out));
    let listing = text(&out.stdout);
    let row = list_row(&listing, commit);
    assert!(
        row.contains(&format!("no: not authentic: {reason}")),
        "{case}: {listing}"
    );
}

#[test]
fn altered_unsigned_foreign_and_replayed_snapshots_are_refused() {
    let s = signed();
    let w = &s.w;
    let (greet, base) = (&w.commits.greet_changed, &w.commits.base);
    let dir = w.clone_at(greet);
    let out = seed_trusting(&dir, &s.public, &["--store", s.store_arg()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = tree_listing(&dir.join("target"));
    let id = key_id(&s.public);
    let does_not_verify = format!("the signature by key {id} does not verify");

    // One byte of the manifest: a digit of its timestamp, so that it is
    // still a manifest this checkout could use.
    let one_byte = |store: &Path| {
        let path = World::manifest_path(store, greet);
        let mut bytes = fs::read(&path).unwrap();
        let at = String::from_utf8_lossy(&bytes)
            .find("\"created\": ")
            .unwrap()
            + 11;
        bytes[at] = if bytes[at] == b'9' {
            b'8'
        } else {
            bytes[at] + 1
        };
        fs::write(&path, bytes).unwrap();
    };
    assert_refused(
        s,
        &dir,
        &before,
        ("one-byte", greet),
        one_byte,
        &does_not_verify,
    );

    // Verified before it is parsed: what is not JSON is refused as not
    // authentic, never handed to the parser.
    let not_json = |store: &Path| {
        fs::write(World::manifest_path(store, greet), b"{ not json").unwrap();
    };
    assert_refused(
        s,
        &dir,
        &before,
        ("not-json", greet),
        not_json,
        &does_not_verify,
    );

    let unsigned = |store: &Path| {
        fs::remove_file(signature_path(&World::manifest_path(store, greet))).unwrap();
    };
    assert_refused(s, &dir, &before, ("unsigned", greet), unsigned, "unsigned");

    // The same manifest, signed again by a key nobody trusts.
    let foreign = |store: &Path| {
        let path = World::manifest_path(store, greet);
        let other = SecretKey::parse(&s.other_secret).unwrap();
        let sig = other.sign(greet, &variant_of(&path), &fs::read(&path).unwrap());
        fs::write(signature_path(&path), sig).unwrap();
    };
    let not_trusted = format!(
        "signed by key {}, which is not a trusted key",
        key_id(&s.other_public)
    );
    assert_refused(s, &dir, &before, ("foreign", greet), foreign, &not_trusted);

    // greet_changed's signed manifest and signature, as base's snapshot.
    let replayed = |store: &Path| {
        let path = World::manifest_path(store, greet);
        let to = store.join("snapshots").join(base);
        fs::create_dir_all(&to).unwrap();
        let name = path.file_name().unwrap();
        fs::copy(&path, to.join(name)).unwrap();
        fs::copy(signature_path(&path), signature_path(&to.join(name))).unwrap();
    };
    assert_refused(
        s,
        &dir,
        &before,
        ("replayed", base),
        replayed,
        &does_not_verify,
    );

    let shape = "malformed signature file: not one line of three fields";
    let too_large = "malformed signature file: larger than 4096 bytes";
    for (case, junk, reason) in [
        ("garbage", "garbage\n".to_owned(), shape),
        // Refused by its size, before its content is looked at.
        ("huge", "a".repeat(5000), too_large),
    ] {
        let malformed = |store: &Path| {
            let path = signature_path(&World::manifest_path(store, greet));
            fs::write(path, &junk).unwrap();
        };
        assert_refused(s, &dir, &before, (case, greet), malformed, reason);
    }
    assert!(cargo_build(&dir).compiled.is_empty());
}

#[test]
fn a_huge_manifest_is_refused_without_being_read_whole_even_without_keys() {
    let s = signed();
    let w = &s.w;
    let store = w.store_copy("huge-manifest");
    let path = World::manifest_path(&store, &w.commits.base);
    // Sparse: 512 MiB that take no disk.
    fs::File::create(&path).unwrap().set_len(512 << 20).unwrap();
    let dir = w.clone_at(&w.commits.base);
    let args = [
        "--store",
        store.to_str().unwrap(),
        "--commit",
        &w.commits.base,
    ];
    let out = seed(&dir, &args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is larger than 32.0 MiB"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("target").exists());
}

#[test]
fn without_keys_an_unsigned_local_store_seeds_without_a_warning() {
    let s = signed();
    let w = &s.w;
    let dir = w.clone_at(&w.commits.base);
    let out = seed(&dir, &["--store", w.store_arg()]);
    let said = stderr(&out);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("warning"), "{said}");
    assert!(!said.contains("signed by"), "{said}");
    assert_nothing_compiles(&dir, "hello, seed");
}

#[test]
fn over_http_an_unauthenticated_seed_warns_once_and_a_verified_one_does_not() {
    let s = signed();
    let w = &s.w;
    let unsigned = Server::start(w.store.clone());
    let dir = w.clone_at(&w.commits.base);
    let out = seed(&dir, &["--store", &unsigned.url]);
    let said = stderr(&out);
    assert!(out.status.success(), "{said}");
    let warnings: Vec<&str> = said.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{said}");
    assert!(warnings[0].starts_with("warning: "), "{said}");
    for needed in ["not authenticated", "cargo seed keygen", "trusted-keys"] {
        assert!(warnings[0].contains(needed), "{said}");
    }

    // Plain HTTP cannot list: the manifest and its signature are asked for
    // by name.
    let dir = w.clone_at(&w.commits.greet_changed);
    let out = seed_trusting(&dir, &s.public, &["--store", &unsigned.url]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("unsigned"), "{}", stderr(&out));
    assert!(!dir.join("target").exists());

    let signed_server = Server::start(s.store.clone());
    let out = seed_trusting(&dir, &s.public, &["--store", &signed_server.url]);
    let said = stderr(&out);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("warning"), "{said}");
    assert!(
        said.contains(&format!("signed by key {}", key_id(&s.public))),
        "{said}"
    );
    assert_nothing_compiles(&dir, "hi there, seed");
}

#[test]
fn malformed_keys_fail_clearly_before_anything_is_done() {
    let s = signed();
    let w = &s.w;
    let store = w.root.join("never-written");
    let short = "cargo-seed-secret-ed25519:0123abcd";
    for (value, says) in [
        (short, "64 lowercase hexadecimal digits"),
        (s.public.as_str(), "it is a public key"),
    ] {
        let out = command("cargo", &w.ci)
            .args(["seed", "publish", "--store", store.to_str().unwrap()])
            .env("CARGO_SEED_SIGNING_KEY", value)
            .output()
            .unwrap();
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(
            said.contains("CARGO_SEED_SIGNING_KEY is not a cargo-seed secret key"),
            "{said}"
        );
        assert!(said.contains(says), "{said}");
        assert!(!said.contains("0123abcd"), "{said}");
        assert!(!store.exists());
    }

    let dir = w.clone_at(&w.commits.base);
    let keys = format!("{} cargo-seed-ed25519:abc", s.public);
    let out = seed_trusting(&dir, &keys, &["--store", s.store_arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "trusted key `cargo-seed-ed25519:abc` in CARGO_SEED_TRUSTED_KEYS is malformed"
        ),
        "{}",
        stderr(&out)
    );
    // A secret key where a trusted one belongs is refused, and not shown.
    let out = seed_trusting(&dir, &s.secret, &["--store", s.store_arg()]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("SECRET key"), "{said}");
    let digits = s.secret.rsplit(':').next().unwrap();
    assert!(!said.contains(digits) && !text(&out.stdout).contains(digits));
    assert!(!dir.join("target").exists());
}

#[test]
fn gc_removes_a_signature_with_its_manifest() {
    let s = signed();
    let w = &s.w;
    let store = s.store_copy("gc");
    let greet = &w.commits.greet_changed;
    let manifest = World::manifest_path(&store, greet);
    let signature = signature_path(&manifest);
    World::edit_manifest(&store, greet, |m| {
        m["created"] = (m["created"].as_u64().unwrap() - 200 * 86_400).into();
    });
    // Signatures whose manifest is gone: an old one, and one a publish
    // may have just written.
    let orphans = store.join("snapshots").join(&w.commits.base);
    fs::create_dir_all(&orphans).unwrap();
    let (old, young) = (orphans.join("old.json.sig"), orphans.join("new.json.sig"));
    fs::write(&old, "x").unwrap();
    fs::write(&young, "x").unwrap();
    backdate(&old);

    let dir = w.clone_at(greet);
    let args = ["gc", "--store", store.to_str().unwrap(), "--keep-last", "0"];
    let out = seed(&dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!manifest.exists() && !signature.exists());
    assert!(!old.exists() && young.exists());
}

#[test]
fn publishing_unsigned_over_a_signed_snapshot_removes_its_signature() {
    let s = signed();
    let w = &s.w;
    let store = s.store_copy("republished");
    let signature = signature_path(&World::manifest_path(&store, &w.commits.greet_changed));
    assert!(signature.exists());
    let out = command("cargo", &w.ci)
        .args(["seed", "publish", "--store", store.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("signed with"), "{}", stderr(&out));
    assert!(!signature.exists());
}
