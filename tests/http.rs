//! Remote stores over HTTP: publish with PUT, seed with GET, and the faults
//! a network brings (truncated and damaged bodies, 5xx, 429, dropped
//! connections, refusals), served by an in-process server on loopback.

mod common;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use cargo_seed::store::blob_key;
use common::http::{Fault, Proxy, Seen, Server};
use common::*;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World::create_in("http-tests", None))
}

fn stderr(out: &std::process::Output) -> String {
    text(&out.stderr)
}

/// The keys of the blobs of `commit`'s units in `store` other than
/// incremental state, by unit name: a seed into an empty target dir fetches
/// every one of them.
fn unit_blobs(store: &Path, commit: &str) -> Vec<String> {
    let manifest = World::manifest(store, commit);
    let mut units: Vec<(&str, &str)> = manifest["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] != "incremental")
        .map(|u| {
            let name = u["name"].as_str().unwrap();
            (name, u["blob"]["sha256"].as_str().unwrap())
        })
        .collect();
    units.sort();
    units.iter().map(|(_, sha)| blob_key(sha)).collect()
}

/// Every fault a network brings, each on a blob of its own, so that what the
/// client did next for that blob (the server records every request) shows
/// how it handled it: resumed where the body broke, fetched a damaged blob
/// again from its start, waited as `Retry-After` asked, gave up on a stalled
/// answer.
#[test]
fn seeding_over_http_rides_out_transient_faults() {
    let w = world();
    let server = Server::start(w.store.clone());
    // The client gives up on an attempt after a second without an answer,
    // or without bytes; the server would stall far longer.
    let timeout = Duration::from_secs(1);
    let stall = Duration::from_secs(5);
    let faults = [
        Fault::Truncate(1000),
        Fault::Stall(stall),
        Fault::Flip,
        Fault::Status(500),
        Fault::Unavailable(1),
        Fault::TooMany(1),
        Fault::Drop,
        Fault::Slow(stall),
    ];
    let blobs = unit_blobs(&w.store, &w.commits.base);
    assert!(blobs.len() >= faults.len(), "{blobs:?}");
    for (key, fault) in blobs.iter().zip(&faults) {
        server.inject_for(key, [fault.clone()]);
    }
    let dir = w.clone_at(&w.commits.base);
    let secs = timeout.as_secs().to_string();
    let out = seed_env(
        &dir,
        &["--store", &server.url],
        &[("CARGO_SEED_HTTP_TIMEOUT", Some(&secs))],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.faults_left(), 0, "every fault was met");

    for (key, fault) in blobs.iter().zip(&faults) {
        let seen = server.seen_for(key);
        assert_eq!(seen[0].fault.as_ref(), Some(fault), "{key}");
        let Some(next) = seen.get(1) else {
            panic!("after {fault:?}, {key} was not asked for again: {seen:#?}");
        };
        let waited = next.at - seen[0].at;
        match fault {
            Fault::Truncate(_) | Fault::Stall(_) => {
                let (sent, len) = seen[0].cut.unwrap();
                assert!(sent < len, "{fault:?} sent {sent} of {len} bytes");
                assert_eq!(
                    (next.method.as_str(), next.range),
                    ("GET", Some(sent)),
                    "after {fault:?}, the download resumes where it broke"
                );
            }
            Fault::Flip => assert_eq!(
                next.range, None,
                "a damaged blob is fetched again from its start"
            ),
            Fault::Unavailable(secs) | Fault::TooMany(secs) => assert!(
                waited >= Duration::from_secs(*secs),
                "after {fault:?}, the next request came {waited:?} later"
            ),
            _ => {}
        }
        if matches!(fault, Fault::Stall(_) | Fault::Slow(_)) {
            assert!(
                waited >= timeout && waited < stall,
                "after {fault:?}, the client gave up and asked again {waited:?} later"
            );
        }
    }
    assert!(
        server.seen().iter().all(|s| s.authorization.is_none()),
        "no token, no Authorization header"
    );

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

/// With `CARGO_SEED_TOKEN` set, every request of a publish (HEAD, PUT) and
/// of a seed (GET) carries it as a bearer token.
#[test]
fn publishing_over_http_stores_a_snapshot_others_can_seed() {
    let w = world();
    let server = Server::start(w.root.join("http-store"));
    let token = [("CARGO_SEED_TOKEN", Some("t0ken-for-the-store"))];
    let sent_it = |method: &str| {
        let seen: Vec<Seen> = server.seen();
        let of = seen
            .iter()
            .filter(|s| s.method == method)
            .collect::<Vec<_>>();
        assert!(!of.is_empty(), "no {method}");
        for s in of {
            assert_eq!(
                s.authorization.as_deref(),
                Some("Bearer t0ken-for-the-store"),
                "{} {}",
                s.method,
                s.path
            );
        }
    };
    let out = with_env(
        command("cargo", &w.ci).args(["seed", "publish", "--store", &server.url]),
        &token,
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    sent_it("PUT");
    sent_it("HEAD");
    let manifests = fs::read_dir(server.root.join("snapshots").join(&w.commits.greet_changed))
        .unwrap()
        .count();
    assert_eq!(manifests, 1);

    server.reset_gets();
    let dir = w.clone_at(&w.commits.greet_changed);
    let out = seed_env(&dir, &["--store", &server.url], &token);
    assert!(out.status.success(), "{}", stderr(&out));
    sent_it("GET");
    assert_nothing_compiles(&dir, "hi there, seed");
}

/// Sets the modification time of every file below `dir` to `t`.
fn set_mtimes(dir: &Path, t: SystemTime) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            set_mtimes(&path, t);
        } else {
            let file = fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(t).unwrap();
        }
    }
}

/// gc's safety over HTTP: a publish that reuses a blob the server wrote a
/// month ago uploads it again (an HTTP server cannot renew it in place), so
/// that a gc on the served directory which read the manifests just before
/// this publish wrote its own (it sees the store without that manifest)
/// keeps the blob, while it removes the old blobs no one reuses. A gc
/// racing the publish instead would be rescued by publish's re-check after
/// its manifest; this is the gc that deletes after that re-check.
#[test]
fn publishing_over_http_renews_old_blobs_so_gc_keeps_them() {
    let w = world();
    let root = w.root.join("renew-store");
    copy_tree(&w.store.join("blobs"), &root.join("blobs"));
    let month_ago = SystemTime::now() - Duration::from_secs(30 * 86_400);
    set_mtimes(&root.join("blobs"), month_ago);
    let server = Server::start(root.clone());
    let out = command("cargo", &w.ci)
        .args(["seed", "publish", "--store", &server.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let used = referenced(&World::manifest(&root, &w.commits.greet_changed));
    let base = referenced(&World::manifest(&w.store, &w.commits.base));
    let old_only: Vec<&String> = base.difference(&used).collect();
    assert!(!old_only.is_empty());
    for sha in &used {
        assert!(
            w.store.join(blob_key(sha)).exists(),
            "publishing again packs the same blobs: {sha} is new"
        );
    }

    let dir = w.clone_at(&w.commits.greet_changed);
    let snapshots = root.join("snapshots");
    let hidden = root.join("snapshots-not-yet-read");
    fs::rename(&snapshots, &hidden).unwrap();
    let gc = seed(
        &dir,
        &[
            "gc",
            "--store",
            root.to_str().unwrap(),
            "--grace-hours",
            "24",
        ],
    );
    fs::rename(&hidden, &snapshots).unwrap();
    assert!(gc.status.success(), "{}", stderr(&gc));
    let gone: Vec<&String> = used
        .iter()
        .filter(|sha| !root.join(blob_key(sha)).exists())
        .collect();
    assert!(
        gone.is_empty(),
        "gc removed blobs the new manifest names: {gone:?}\n{}\n{}",
        stderr(&out),
        stderr(&gc)
    );
    for sha in old_only {
        assert!(!root.join(blob_key(sha)).exists(), "gc removes {sha}");
    }
    for sha in &used {
        let key = blob_key(sha);
        assert_eq!(server.puts(&key), 1, "{key} is uploaded again");
        let age = fs::metadata(root.join(&key)).unwrap().modified().unwrap();
        assert!(age > SystemTime::now() - Duration::from_secs(3600), "{key}");
    }

    let out = seed(&dir, &["--store", &server.url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_nothing_compiles(&dir, "hi there, seed");
}

/// Every variable that names or bypasses a proxy (and CGI's
/// `REQUEST_METHOD`, under which they are ignored) unset, then `vars` set.
fn proxy_env<'a>(vars: &[(&'a str, &'a str)]) -> Vec<(&'a str, Option<&'a str>)> {
    let mut env: Vec<(&str, Option<&str>)> = [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "REQUEST_METHOD",
    ]
    .into_iter()
    .map(|v| (v, None))
    .collect();
    env.extend(vars.iter().map(|(k, v)| (*k, Some(*v))));
    env
}

/// Proxies come from the standard variables: a seed from an http:// store
/// goes through `HTTP_PROXY`, or around it for a host in `NO_PROXY`, and an
/// https:// store is reached through a tunnel asked of `https_proxy`.
#[test]
fn seeding_goes_through_the_proxy_the_environment_names() {
    let w = world();
    let server = Server::start(w.store.clone());
    let proxy = Proxy::start(&server.url);

    let dir = w.clone_at(&w.commits.base);
    let env = proxy_env(&[("HTTP_PROXY", &proxy.url)]);
    let out = seed_env(&dir, &["--store", &server.url], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let through = proxy.requests();
    assert!(server.gets("blobs/") > 0);
    assert_eq!(through.len(), server.seen().len(), "{through:#?}");
    let absolute = format!(" {}", server.url);
    assert!(
        through.iter().all(|r| r.contains(&absolute)),
        "asked as of a proxy: {through:#?}"
    );
    assert_nothing_compiles(&dir, "hello, seed");

    server.reset_gets();
    let dir = w.clone_at(&w.commits.base);
    let env = proxy_env(&[("HTTP_PROXY", &proxy.url), ("NO_PROXY", "127.0.0.1")]);
    let out = seed_env(&dir, &["--store", &server.url], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(server.gets("blobs/") > 0);
    assert_eq!(proxy.requests(), through, "NO_PROXY bypasses the proxy");

    // The proxy refuses to open the tunnel, so the seed fails, after
    // having asked it (never the name itself, which does not resolve).
    let env = proxy_env(&[("https_proxy", &proxy.url)]);
    let out = seed_env(&dir, &["--store", "https://seed.invalid/app"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let tunnels = proxy.requests()[through.len()..].to_vec();
    assert!(
        !tunnels.is_empty()
            && tunnels
                .iter()
                .all(|r| r.starts_with("CONNECT seed.invalid:443 ")),
        "{tunnels:#?}"
    );
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

    // Publishing again uploads nothing new, but a blob nginx says it wrote
    // a month ago: its PUT gives the file a new modification time (which a
    // gc on nginx's root goes by).
    let root = w.root.join("nginx-store");
    let old = root.join(blob_key(
        referenced(&World::manifest(&root, &w.commits.greet_changed))
            .first()
            .unwrap(),
    ));
    let month_ago = SystemTime::now() - Duration::from_secs(30 * 86_400);
    let file = fs::File::options().write(true).open(&old).unwrap();
    file.set_modified(month_ago).unwrap();
    let out = command("cargo", &w.ci)
        .args(["seed", "publish", "--store", &nginx.url])
        .output()
        .unwrap();
    assert!(stderr(&out).contains(" 1 new blobs"), "{}", stderr(&out));
    let renewed = fs::metadata(&old).unwrap().modified().unwrap();
    assert!(renewed > SystemTime::now() - Duration::from_secs(3600));
}

/// Environment that points seeds at the cache directory `dir` (every command
/// gets a fresh one otherwise), with `more` on top.
fn with_cache<'a>(
    dir: &'a std::path::Path,
    more: &[(&'a str, Option<&'a str>)],
) -> Vec<(&'a str, Option<&'a str>)> {
    let mut env = vec![("CARGO_SEED_CACHE_DIR", Some(dir.to_str().unwrap()))];
    env.extend_from_slice(more);
    env
}

/// Where the cache in `dir` keeps the blob named `sha`.
fn cached_blob(dir: &std::path::Path, sha: &str) -> std::path::PathBuf {
    dir.join(&sha[..2]).join(format!("{sha}.zst"))
}

#[test]
fn a_second_worktree_is_seeded_from_the_local_cache() {
    let w = world();
    let server = Server::start(w.store.clone());
    let cache = w.root.join("cache-second-worktree");
    let env = with_cache(&cache, &[]);

    let first = w.clone_at(&w.commits.base);
    let out = seed_env(&first, &["--store", &server.url], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let fetched = server.gets("blobs/");
    assert!(fetched > 0, "the first seed downloads the blobs");

    server.reset_gets();
    let second = w.clone_at(&w.commits.base);
    let out = seed_env(&second, &["--store", &server.url], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.gets("blobs/"), 0, "{}", stderr(&out));
    // Manifests are never cached: they are read from the store every time.
    assert!(server.gets("snapshots/") > 0);
    assert!(
        stderr(&out).contains("of it from the local cache"),
        "{}",
        stderr(&out)
    );
    assert_nothing_compiles(&second, "hello, seed");

    // With the cache turned off, everything is downloaded again.
    server.reset_gets();
    let third = w.clone_at(&w.commits.base);
    let off = with_cache(&cache, &[("CARGO_SEED_CACHE_SIZE", Some("0"))]);
    let out = seed_env(&third, &["--store", &server.url], &off);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.gets("blobs/"), fetched, "{}", stderr(&out));
}

#[test]
fn a_later_commit_fetches_only_the_blobs_that_changed() {
    let w = world();
    let server = Server::start(w.store.clone());
    let cache = w.root.join("cache-later-commit");
    // Compiling through the wrapper, as CI did: incremental state is
    // fetched too, so every blob of both snapshots is wanted.
    let env = with_cache(&cache, &[("RUSTC_WRAPPER", Some(BIN))]);
    let base = referenced(&World::manifest(&w.store, &w.commits.base));
    let later = referenced(&World::manifest(&w.store, &w.commits.greet_changed));
    let changed: Vec<&String> = later.difference(&base).collect();
    assert!(!changed.is_empty() && changed.len() < later.len());

    let dir = w.clone_at(&w.commits.base);
    let out = seed_env(&dir, &["--store", &server.url], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.gets("blobs/"), base.len(), "{}", stderr(&out));

    server.reset_gets();
    let dir = w.clone_at(&w.commits.greet_changed);
    let out = seed_env(&dir, &["--store", &server.url], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.gets("blobs/"), changed.len(), "{}", stderr(&out));
    for sha in changed {
        assert_eq!(server.gets(&cargo_seed::store::blob_key(sha)), 1, "{sha}");
    }
    assert_nothing_compiles(&dir, "hi there, seed");
}

#[test]
fn a_damaged_cache_entry_is_fetched_again_and_replaced() {
    let w = world();
    let server = Server::start(w.store.clone());
    let cache = w.root.join("cache-damaged");
    let env = with_cache(&cache, &[]);
    let dir = w.clone_at(&w.commits.base);
    let out = seed_env(&dir, &["--store", &server.url], &env);
    assert!(out.status.success(), "{}", stderr(&out));

    let manifest = World::manifest(&w.store, &w.commits.base);
    let victim = manifest["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "lib greet")
        .unwrap()["blob"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = cached_blob(&cache, &victim);
    let mut bytes = fs::read(&path).expect("the first seed cached the blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&path, bytes).unwrap();

    server.reset_gets();
    let dir = w.clone_at(&w.commits.base);
    let out = seed_env(&dir, &["--store", &server.url], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.gets(&cargo_seed::store::blob_key(&victim)),
        1,
        "the damaged blob is fetched from the store: {}",
        stderr(&out)
    );
    assert_eq!(server.gets("blobs/"), 1, "and nothing else");
    assert_nothing_compiles(&dir, "hello, seed");
    let replaced = fs::read(&path).expect("the cache holds the blob again");
    assert_eq!(cargo_seed::digest::sha256_hex(&replaced), victim);

    // Damaged again, in a cache that can no longer be written (a file where
    // its temporary directory should be): the seed still succeeds, and the
    // damaged copy is deleted rather than left to be read again.
    let mut bytes = replaced;
    bytes[mid] ^= 1;
    fs::write(&path, bytes).unwrap();
    let _ = fs::remove_dir_all(cache.join("tmp"));
    fs::write(cache.join("tmp"), "").unwrap();
    server.reset_gets();
    let dir = w.clone_at(&w.commits.base);
    let out = seed_env(&dir, &["--store", &server.url, "-v"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.gets("blobs/"), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the local blob cache was not used in full"),
        "{}",
        stderr(&out)
    );
    assert!(!path.exists(), "the damaged copy is deleted");
    assert_nothing_compiles(&dir, "hello, seed");
}

#[test]
fn a_snapshot_one_commit_back_is_found_without_asking_about_older_ones() {
    let w = world();
    // 40 commits on top of base, the newest but one with a snapshot (base's
    // manifest, restated for that commit: the store is not signed).
    let store = w.store_copy("nearest");
    let dir = w.clone_at(&w.commits.base);
    for i in 0..40 {
        git(
            &dir,
            &["commit", "-q", "--allow-empty", "-m", &format!("c{i}")],
        );
    }
    let parent = git(&dir, &["rev-parse", "HEAD~1"]);
    let from = World::manifest_path(&store, &w.commits.base);
    let mut manifest = World::manifest(&store, &w.commits.base);
    manifest["commit"] = serde_json::json!(parent);
    let to = store
        .join("snapshots")
        .join(&parent)
        .join(from.file_name().unwrap());
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::write(&to, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let server = Server::start(store);
    let out = seed(&dir, &["--store", &server.url, "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text(&out.stdout).contains("(distance 1)"),
        "{}",
        text(&out.stdout)
    );
    // HEAD and its parent: not the 39 commits behind it (or base's snapshot).
    assert_eq!(server.gets("snapshots/"), 2, "{:#?}", server.seen());
}
