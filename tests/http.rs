//! Remote stores over HTTP: publish with PUT, seed with GET, and the faults
//! a network brings (truncated and damaged bodies, 5xx, 429, dropped
//! connections, refusals), served by an in-process server on loopback.

mod common;

use std::fs;
use std::sync::OnceLock;

use common::http::{Fault, Server};
use common::*;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World::create_in("http-tests", None))
}

fn stderr(out: &std::process::Output) -> String {
    text(&out.stderr)
}

#[test]
fn seeding_over_http_rides_out_transient_faults() {
    let w = world();
    let server = Server::start(w.store.clone());
    server.inject([
        Fault::Truncate(1000),
        Fault::Flip,
        Fault::Status(500),
        Fault::Status(503),
        Fault::TooMany(1),
        Fault::Drop,
        Fault::Slow(std::time::Duration::from_millis(300)),
    ]);
    let dir = w.clone_at(&w.commits.base);
    let out = seed(&dir, &["--store", &server.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.faults_left(), 0, "every fault was met");

    assert_nothing_compiles(&dir, "hello, seed");
}

#[test]
fn a_blob_damaged_on_every_fetch_fails_cleanly() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    // Compiling through the wrapper, as CI did: the other snapshot's
    // incremental state differs from what the build dir holds, so it must
    // be fetched.
    let wrapped = &[("RUSTC_WRAPPER", Some(BIN))];
    let out = seed_env(&dir, &["--store", w.store_arg()], wrapped);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = tree_listing(&dir.join("target"));

    let server = Server::start(w.store.clone());
    server
        .always_flip
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let target = &w.commits.greet_changed;
    let out = seed_env(
        &dir,
        &["--store", &server.url, "--force", "--commit", target],
        wrapped,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not match its digest"),
        "{}",
        stderr(&out)
    );
    assert_same_tree(&before, &tree_listing(&dir.join("target")));
}

#[test]
fn publishing_over_http_stores_a_snapshot_others_can_seed() {
    let w = world();
    let server = Server::start(w.root.join("http-store"));
    let out = command("cargo", &w.ci)
        .args(["seed", "publish", "--store", &server.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let manifests = fs::read_dir(server.root.join("snapshots").join(&w.commits.greet_changed))
        .unwrap()
        .count();
    assert_eq!(manifests, 1);

    let dir = w.clone_at(&w.commits.greet_changed);
    let out = seed(&dir, &["--store", &server.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_compiles(&dir, "hi there, seed");
}

#[test]
fn refused_and_unreachable_stores_say_so_and_keep_secrets() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    let server = Server::start(w.store.clone());
    server
        .deny
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let out = command("cargo", &dir)
        .args(["seed", "--store", &server.url])
        .env("CARGO_SEED_TOKEN", "s3cr3t-t0ken")
        .output()
        .unwrap();
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("was refused (HTTP 403)"), "{said}");
    assert!(
        said.contains("hint: check the store's credentials"),
        "{said}"
    );
    assert!(!said.contains("s3cr3t-t0ken") && !text(&out.stdout).contains("s3cr3t-t0ken"));
    assert!(!dir.join("target").exists());

    // Nothing listens on port 1 of loopback.
    let out = seed(&dir, &["--store", "http://127.0.0.1:1/store"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("http://127.0.0.1:1/store"), "{said}");
    assert!(said.contains("gave up after"), "{said}");
    assert!(
        said.contains("hint: check that the store is reachable"),
        "{said}"
    );
    assert!(!dir.join("target").exists());
}

#[test]
fn publish_and_seed_through_nginx_webdav() {
    let w = world();
    let nginx = common::http::Nginx::start(&w.root.join("nginx"), &w.root.join("nginx-store"));
    let out = command("cargo", &w.ci)
        .args(["seed", "publish", "--store", &nginx.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Published"), "{}", stderr(&out));

    let dir = w.clone_at(&w.commits.greet_changed);
    let out = seed(&dir, &["--store", &nginx.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_compiles(&dir, "hi there, seed");

    // Publishing again uploads nothing new.
    let out = command("cargo", &w.ci)
        .args(["seed", "publish", "--store", &nginx.url])
        .output()
        .unwrap();
    assert!(stderr(&out).contains(" 0 new blobs"), "{}", stderr(&out));
}
