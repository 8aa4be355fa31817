//! Reads that would never end: a blob or a cache entry that is a symlink to
//! `/dev/zero`, a FIFO in place of a manifest, an HTTP body that never ends
//! or that trickles, and Ctrl-C while one of them is being read.
//!
//! Each seed runs the binary itself (not through cargo, so that a signal
//! reaches the process that reads) under a watchdog: one still running
//! after [`WATCHDOG`] is killed and fails its test, so a regression fails
//! instead of hanging CI. After every refusal the build dir is as it was
//! and cargo builds nothing.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cargo_seed::snapshot::signing::SecretKey;
use serde_json::json;

use super::common::http::Server;
use super::common::*;
use super::{unit, world, Victim};

/// Far longer than any of these seeds takes when its protection holds.
const WATCHDOG: Duration = Duration::from_secs(20);

/// What one seed said and how it ended.
struct Run {
    status: ExitStatus,
    stderr: String,
}

/// `cargo-seed seed --force --commit <base> --store <store>` in the
/// victim's clone with `env` set, as [`Victim::seed`] runs it.
fn seed_command(v: &Victim, store: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = command(BIN, &v.dir);
    cmd.args(["seed", "--store", store, "--force", "--commit"])
        .arg(&world().commits.base)
        .env("RUSTC_WRAPPER", BIN)
        .envs(env.iter().copied());
    cmd
}

/// Runs `cmd`, calling `started` with its process id, and kills it and
/// fails the test if it is still running after [`WATCHDOG`].
fn watched(mut cmd: Command, case: &str, started: impl FnOnce(u32)) -> Run {
    let log = world().root.join(format!("reads-{case}.stderr"));
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    started(child.id());
    let since = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if since.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the seed still ran after {WATCHDOG:?} and was killed; it said:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    Run {
        status,
        stderr: fs::read_to_string(&log).unwrap(),
    }
}

impl Victim {
    /// Seeds from `store` under the watchdog and asserts the seed is
    /// refused with `code` and one error line containing `says`, that no
    /// staging dir is left, and that neither the build dir nor the guard
    /// changed: cargo still builds nothing.
    fn assert_refused_within(&self, store: &str, env: &[(&str, &str)], code: i32, says: &str) {
        let (target, guard) = (
            tree_listing(&self.dir.join("target")),
            tree_listing(&self.guard),
        );
        let case = self.store.file_name().unwrap().to_str().unwrap();
        let run = watched(seed_command(self, store, env), case, |_| {});
        self.assert_refusal(&run, code, says);
        assert_same_tree(&target, &tree_listing(&self.dir.join("target")));
        assert_same_tree(&guard, &tree_listing(&self.guard));
        assert_nothing_compiles(&self.dir, "hello, seed (v1)");
    }

    fn assert_refusal(&self, run: &Run, code: i32, says: &str) {
        let err = &run.stderr;
        assert_eq!(run.status.code(), Some(code), "{err}");
        assert!(err.contains(says), "expected {says:?} in:\n{err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{err}"
        );
        let left: Vec<_> = fs::read_dir(self.dir.join("target"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".cargo-seed-staging"))
            .collect();
        assert!(left.is_empty(), "staging dirs left: {left:?}");
    }

    /// Gives unit `name` a blob of its own that the victim has not seeded:
    /// its blob with an empty skippable zstd frame appended, so that it
    /// unpacks to the same files under another digest, and the seed must
    /// read it. Returns the new blob's key.
    fn fresh_blob(&self, name: &str) -> String {
        let mut m = World::manifest(&self.store, &world().commits.base);
        let old = unit(&mut m, name)["blob"].clone();
        let mut zst = fs::read(self.store.join(key_of(old["sha256"].as_str().unwrap()))).unwrap();
        // Magic 0x184D2A50, four bytes of content.
        zst.extend_from_slice(&[0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0]);
        zst.extend_from_slice(b"seed");
        let sha = cargo_seed::digest::sha256_hex(&zst);
        let key = key_of(&sha);
        fs::create_dir_all(self.store.join(&key).parent().unwrap()).unwrap();
        fs::write(self.store.join(&key), &zst).unwrap();
        self.edit(|m| {
            unit(m, name)["blob"] =
                json!({"sha256": sha, "size": zst.len(), "unpacked": old["unpacked"]});
        });
        key
    }

    /// Signs the manifest with a new key; returns the public key to trust.
    fn sign(&self) -> String {
        let path = World::manifest_path(&self.store, &world().commits.base);
        let variant = path.file_stem().unwrap().to_str().unwrap();
        let key = SecretKey::generate().unwrap();
        let signature = key.sign(&world().commits.base, variant, &fs::read(&path).unwrap());
        let mut sig = path.clone().into_os_string();
        sig.push(".sig");
        fs::write(sig, signature).unwrap();
        key.public().to_string()
    }

    fn manifest_key(&self) -> String {
        let path = World::manifest_path(&self.store, &world().commits.base);
        let rel = path.strip_prefix(&self.store).unwrap();
        rel.to_str().unwrap().to_owned()
    }
}

/// The key of the blob named `sha`, as the stores and the cache lay it out.
fn key_of(sha: &str) -> String {
    cargo_seed::store::blob_key(sha)
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

#[test]
fn a_signed_snapshot_whose_blob_is_a_symlink_to_dev_zero_is_refused() {
    let v = Victim::new("reads-dev-zero-blob");
    let key = v.fresh_blob("lib greet");
    let trusted = v.sign();
    let blob = v.store.join(&key);
    fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &blob).unwrap();
    v.assert_refused_within(
        v.store.to_str().unwrap(),
        &[("CARGO_SEED_TRUSTED_KEYS", &trusted)],
        1,
        "is a symbolic link, not a regular file",
    );
}

#[test]
fn a_manifest_that_is_a_fifo_is_refused_without_blocking() {
    let v = Victim::new("reads-fifo-manifest");
    let path = World::manifest_path(&v.store, &world().commits.base);
    fs::remove_file(&path).unwrap();
    mkfifo(&path);
    v.assert_refused_within(
        v.store.to_str().unwrap(),
        &[],
        3,
        "is a FIFO, not a regular file",
    );
}

#[test]
fn cache_entries_that_are_not_files_are_fetched_again() {
    let v = Victim::new("reads-cache");
    let zero = v.fresh_blob("lib greet");
    let fifo = v.fresh_blob("lib itoa");
    let cache = world().root.join("reads-cache-dir");
    for key in [&zero, &fifo] {
        fs::create_dir_all(
            cache
                .join(key.strip_prefix("blobs/").unwrap())
                .parent()
                .unwrap(),
        )
        .unwrap();
    }
    let entry = |key: &String| cache.join(key.strip_prefix("blobs/").unwrap());
    std::os::unix::fs::symlink("/dev/zero", entry(&zero)).unwrap();
    mkfifo(&entry(&fifo));
    let server = Server::start(v.store.clone());
    let cache_env = cache.to_str().unwrap();
    let run = watched(
        seed_command(&v, &server.url, &[("CARGO_SEED_CACHE_DIR", cache_env)]),
        "cache",
        |_| {},
    );
    assert!(run.status.success(), "{}", run.stderr);
    for key in [&zero, &fifo] {
        assert_eq!(server.gets(key), 1, "{key} was not fetched from the store");
        let meta = fs::symlink_metadata(entry(key)).unwrap();
        assert!(meta.is_file(), "{key}: the blob took the entry's place");
    }
    assert_nothing_compiles(&v.dir, "hello, seed (v1)");
}

/// What a hostile server sends for its one key.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// Zeros as fast as they are taken, without end.
    Endless,
    /// One zero byte per interval, without end.
    Trickle(Duration),
}

/// A server on loopback that serves the files below `root` whole, except
/// `key`, for which it sends `body` after an answer without a length.
struct Hostile {
    url: String,
    /// Bytes of `body` sent so far.
    sent: Arc<AtomicU64>,
}

impl Hostile {
    fn start(root: PathBuf, key: String, body: Body) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (root, key, sent) = (root.clone(), key.clone(), counter.clone());
                thread::spawn(move || {
                    let _ = answer(conn, &root, &key, body, &sent);
                });
            }
        });
        Hostile { url, sent }
    }
}

fn answer(
    mut conn: std::net::TcpStream,
    root: &Path,
    key: &str,
    body: Body,
    sent: &AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && line != "\r\n" {
        line.clear();
    }
    let path = request.split(' ').nth(1).unwrap_or("/");
    let path = path.trim_start_matches('/');
    if path == key {
        conn.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")?;
        // The client hanging up ends it; a minute at most either way.
        let since = Instant::now();
        while since.elapsed() < Duration::from_secs(60) {
            let chunk = match body {
                Body::Endless => 64 << 10,
                Body::Trickle(every) => {
                    thread::sleep(every);
                    1
                }
            };
            conn.write_all(&vec![0u8; chunk])?;
            sent.fetch_add(chunk as u64, Ordering::Relaxed);
        }
        return Ok(());
    }
    match fs::read(root.join(path)) {
        Ok(bytes) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                bytes.len()
            );
            conn.write_all(head.as_bytes())?;
            conn.write_all(&bytes)
        }
        Err(_) => conn
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
    }
}

#[test]
fn an_endless_blob_over_http_is_read_no_further_than_its_declared_size() {
    let v = Victim::new("reads-endless-blob");
    let key = v.fresh_blob("lib greet");
    let server = Hostile::start(v.store.clone(), key, Body::Endless);
    v.assert_refused_within(&server.url, &[], 1, "is longer than the");
    // Twice (the store is asked once more for a damaged blob) one byte
    // past the declared size, and what the socket buffers held.
    let sent = server.sent.load(Ordering::Relaxed);
    assert!(sent < 64 << 20, "the server sent {sent} bytes");
}

#[test]
fn a_trickled_blob_over_http_is_given_up_at_its_deadline() {
    let v = Victim::new("reads-trickle-blob");
    let key = v.fresh_blob("lib greet");
    let server = Hostile::start(
        v.store.clone(),
        key,
        Body::Trickle(Duration::from_millis(200)),
    );
    // Each read waits far less than the timeout; the whole download may
    // take three timeouts (3 s) plus its size at 1 MiB/s.
    let env = [
        ("CARGO_SEED_HTTP_TIMEOUT", "1"),
        ("CARGO_SEED_MIN_RATE", "1M"),
    ];
    v.assert_refused_within(&server.url, &env, 1, "was given up: it took longer than");
}

#[test]
fn endless_and_trickled_manifests_over_http_are_bounded() {
    for (case, body, code, says) in [
        ("endless", Body::Endless, 3, "larger than 32"),
        (
            "trickle",
            Body::Trickle(Duration::from_millis(200)),
            1,
            "was given up: it took longer than",
        ),
    ] {
        let v = Victim::new(&format!("reads-{case}-manifest"));
        let server = Hostile::start(v.store.clone(), v.manifest_key(), body);
        // Three timeouts (3 s), then the manifest's cap at 1 GiB/s.
        let env = [
            ("CARGO_SEED_HTTP_TIMEOUT", "1"),
            ("CARGO_SEED_MIN_RATE", "1G"),
        ];
        v.assert_refused_within(&server.url, &env, code, says);
    }
}

#[test]
fn ctrl_c_stops_a_seed_reading_a_blob_that_never_ends() {
    let v = Victim::new("reads-ctrl-c");
    let key = v.fresh_blob("lib greet");
    let server = Hostile::start(
        v.store.clone(),
        key,
        Body::Trickle(Duration::from_millis(50)),
    );
    let (target, guard) = (tree_listing(&v.dir.join("target")), tree_listing(&v.guard));
    // At one byte a second, the deadline is hours away: only Ctrl-C ends
    // this read.
    let cmd = seed_command(&v, &server.url, &[("CARGO_SEED_MIN_RATE", "1")]);
    let run = watched(cmd, "ctrl-c", |pid| {
        let since = Instant::now();
        while server.sent.load(Ordering::Relaxed) < 10 {
            assert!(
                since.elapsed() < WATCHDOG / 2,
                "the blob was never asked for"
            );
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGINT) }, 0);
    });
    v.assert_refusal(&run, 130, "interrupted; the build dir was not changed");
    assert_same_tree(&target, &tree_listing(&v.dir.join("target")));
    assert_same_tree(&guard, &tree_listing(&v.guard));
    assert_nothing_compiles(&v.dir, "hello, seed (v1)");
}
