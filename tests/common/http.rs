//! A small HTTP/1.1 server on loopback for the tests: serves and stores
//! files under a directory (GET with Range, HEAD, PUT, DELETE) and injects
//! the faults a test asks for into blob downloads. Every response closes its
//! connection, which keeps the server simple and exercises reconnects.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// What to do to the next matching download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Send at most this many bytes of the body, and never more than half
    /// of it (so something is always missing), then close the connection.
    Truncate(usize),
    /// Flip one byte in the middle of the body.
    Flip,
    /// Answer with this status and no body.
    Status(u16),
    /// Answer 429 with `Retry-After: <secs>`.
    TooMany(u64),
    /// Answer 503 with `Retry-After: <secs>`.
    Unavailable(u64),
    /// Accept the request and close without answering.
    Drop,
    /// Wait this long before answering.
    Slow(Duration),
    /// Send half the body, then wait this long before the rest.
    Stall(Duration),
    /// Send half the body, then nothing, holding the connection open until
    /// the client gives up on it (at most [`STALL_LIMIT`]).
    Hang,
}

/// How long a [`Fault::Hang`] waits for the client to give up: far longer
/// than the timeout a test sets, so that only a client without one waits it
/// out.
pub const STALL_LIMIT: Duration = Duration::from_secs(20);

/// Sends `partial` and then nothing until the client closes the connection;
/// returns whether it did, rather than [`STALL_LIMIT`] running out.
fn stall(conn: &mut TcpStream, partial: &[u8]) -> std::io::Result<bool> {
    conn.write_all(partial)?;
    conn.flush()?;
    conn.set_read_timeout(Some(STALL_LIMIT))?;
    // The request was read whole, so the client sends nothing more: the
    // read ends when it closes (or resets) the connection, or times out.
    let mut byte = [0u8; 1];
    Ok(match conn.read(&mut byte) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    })
}

/// One request the server read, in the order they arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The path, without its leading `/`.
    pub path: String,
    /// The first byte a `Range: bytes=<n>-` asked for.
    pub range: Option<usize>,
    pub authorization: Option<String>,
    /// When its head had been read.
    pub at: Instant,
    pub fault: Option<Fault>,
    /// Of a body the fault cut short (or stalled): the bytes sent (before
    /// the stall) and the bytes the answer had.
    pub cut: Option<(usize, usize)>,
}

pub struct Server {
    pub url: String,
    pub root: PathBuf,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    faults_by_key: Arc<Mutex<HashMap<String, VecDeque<Fault>>>>,
    /// Flip a byte in every blob download, forever.
    pub always_flip: Arc<AtomicBool>,
    /// Refuse every request with 403.
    pub deny: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

/// What every connection's thread shares with the server.
#[derive(Clone)]
struct Shared {
    root: PathBuf,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    faults_by_key: Arc<Mutex<HashMap<String, VecDeque<Fault>>>>,
    flip: Arc<AtomicBool>,
    deny: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn start(root: PathBuf) -> Server {
        fs::create_dir_all(&root).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = Server {
            url,
            root: root.clone(),
            faults: Arc::default(),
            faults_by_key: Arc::default(),
            always_flip: Arc::default(),
            deny: Arc::default(),
            requests: Arc::default(),
            seen: Arc::default(),
            stop: Arc::default(),
        };
        let shared = Shared {
            root,
            faults: server.faults.clone(),
            faults_by_key: server.faults_by_key.clone(),
            flip: server.always_flip.clone(),
            deny: server.deny.clone(),
            requests: server.requests.clone(),
            seen: server.seen.clone(),
        };
        let stop = server.stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                thread::spawn(move || {
                    let _ = handle(conn, &shared);
                });
            }
        });
        server
    }

    /// Faults for the next blob downloads, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    /// Faults for the next downloads of `key`, in order, before any
    /// [`Server::inject`] gave.
    pub fn inject_for(&self, key: &str, faults: impl IntoIterator<Item = Fault>) {
        let mut by_key = self.faults_by_key.lock().unwrap();
        by_key.entry(key.to_owned()).or_default().extend(faults);
    }

    pub fn faults_left(&self) -> usize {
        let by_key: usize = self
            .faults_by_key
            .lock()
            .unwrap()
            .values()
            .map(|q| q.len())
            .sum();
        self.faults.lock().unwrap().len() + by_key
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Every request read so far (since [`Server::reset_gets`]).
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests for `key`, in order.
    pub fn seen_for(&self, key: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == key).collect()
    }

    /// How many GETs asked for a path starting with `prefix` (`blobs/`, or
    /// one blob's key).
    pub fn gets(&self, prefix: &str) -> usize {
        self.count("GET", prefix)
    }

    /// How many PUTs stored a path starting with `prefix`.
    pub fn puts(&self, prefix: &str) -> usize {
        self.count("PUT", prefix)
    }

    fn count(&self, method: &str, prefix: &str) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.method == method && s.path.starts_with(prefix))
            .count()
    }

    /// Forgets the requests seen so far.
    pub fn reset_gets(&self) {
        self.seen.lock().unwrap().clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://").trim_end_matches('/'));
    }
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)
}

/// `t` as an HTTP date (RFC 9110's IMF-fixdate).
pub fn http_date(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn handle(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("/").to_owned(),
    );
    let (mut len, mut range, mut authorization) = (0usize, None::<usize>, None);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((h, ""));
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().unwrap_or(0),
            "range" => {
                range = v
                    .trim()
                    .strip_prefix("bytes=")
                    .and_then(|r| r.trim_end_matches('-').parse().ok())
            }
            "authorization" => authorization = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    let at = Instant::now();
    let rel = path.trim_start_matches('/').to_owned();
    let mut seen = Seen {
        method: method.clone(),
        path: rel.clone(),
        range,
        authorization,
        at,
        fault: None,
        cut: None,
    };
    let log = |seen: Seen| shared.seen.lock().unwrap().push(seen);
    if shared.deny.load(Ordering::Relaxed) {
        log(seen);
        return respond(&mut conn, 403, &[], b"");
    }
    if rel.split('/').any(|c| c == ".." || c.is_empty()) {
        log(seen);
        return respond(&mut conn, 400, &[], b"");
    }
    let file = shared.root.join(&rel);
    match method.as_str() {
        "PUT" => {
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body)?;
            fs::create_dir_all(file.parent().unwrap())?;
            let tmp = file.with_extension("upload");
            fs::write(&tmp, body)?;
            fs::rename(&tmp, &file)?;
            log(seen);
            respond(&mut conn, 201, &[("Content-Length", "0".into())], b"")
        }
        "DELETE" => {
            let status = if fs::remove_file(&file).is_ok() {
                204
            } else {
                404
            };
            log(seen);
            respond(&mut conn, status, &[], b"")
        }
        "GET" | "HEAD" => {
            let read = fs::read(&file).and_then(|b| Ok((b, fs::metadata(&file)?.modified()?)));
            let Ok((mut body, modified)) = read else {
                log(seen);
                return respond(&mut conn, 404, &[("Content-Length", "0".into())], b"");
            };
            let is_blob = rel.starts_with("blobs/") && method == "GET";
            let fault = if is_blob {
                let by_key = shared
                    .faults_by_key
                    .lock()
                    .unwrap()
                    .get_mut(&rel)
                    .and_then(|q| q.pop_front());
                by_key.or_else(|| shared.faults.lock().unwrap().pop_front())
            } else {
                None
            };
            if is_blob && shared.flip.load(Ordering::Relaxed) {
                let mid = body.len() / 2;
                body[mid] ^= 0x20;
            }
            let full = body.len();
            let start = range.unwrap_or(0).min(full);
            let (status, mut headers) = match range {
                Some(_) => (
                    206,
                    vec![(
                        "Content-Range",
                        format!("bytes {start}-{}/{full}", full.max(1) - 1),
                    )],
                ),
                None => (200, vec![]),
            };
            let body = &mut body[start..];
            headers.push(("Content-Length", body.len().to_string()));
            headers.push(("Last-Modified", http_date(modified)));
            headers.push(("Date", http_date(SystemTime::now())));
            seen.cut = match fault {
                Some(Fault::Truncate(n)) => Some((n.min(body.len() / 2), body.len())),
                Some(Fault::Stall(_)) => Some((body.len() / 2, body.len())),
                _ => None,
            };
            seen.fault = fault.clone();
            let cut = seen.cut;
            log(seen);
            match fault {
                Some(Fault::Status(code)) => {
                    respond(&mut conn, code, &[("Content-Length", "0".into())], b"")
                }
                Some(Fault::TooMany(secs) | Fault::Unavailable(secs)) => {
                    let code = if matches!(fault, Some(Fault::TooMany(_))) {
                        429
                    } else {
                        503
                    };
                    let headers = [
                        ("Retry-After", secs.to_string()),
                        ("Content-Length", "0".into()),
                    ];
                    respond(&mut conn, code, &headers, b"")
                }
                Some(Fault::Drop) => Ok(()),
                Some(Fault::Truncate(_)) => {
                    let (sent, _) = cut.unwrap();
                    respond(&mut conn, status, &headers, &body[..sent])?;
                    conn.shutdown(std::net::Shutdown::Both)
                }
                Some(Fault::Stall(d)) => {
                    let (sent, _) = cut.unwrap();
                    respond(&mut conn, status, &headers, &body[..sent])?;
                    conn.flush()?;
                    thread::sleep(d);
                    conn.write_all(&body[sent..])
                }
                Some(Fault::Flip) => {
                    let mid = body.len() / 2;
                    body[mid] ^= 0x20;
                    respond(&mut conn, status, &headers, body)
                }
                Some(Fault::Slow(d)) => {
                    thread::sleep(d);
                    respond(&mut conn, status, &headers, body)
                }
                Some(Fault::Hang) => {
                    let half = body.len() / 2;
                    respond(&mut conn, status, &headers, b"")?;
                    stall(&mut conn, &body[..half]).map(drop)
                }
                None if method == "HEAD" => respond(&mut conn, status, &headers, b""),
                None => respond(&mut conn, status, &headers, body),
            }
        }
        _ => {
            log(seen);
            respond(&mut conn, 405, &[], b"")
        }
    }
}

/// nginx from the system, serving `root` with WebDAV PUT/DELETE on a free
/// loopback port, in the foreground, stopped on drop. `.ci/deps` installs it.
pub struct Nginx {
    pub url: String,
    child: std::process::Child,
}

impl Nginx {
    pub fn start(prefix: &std::path::Path, root: &std::path::Path) -> Nginx {
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect(
                "nginx is not installed: run `bash .ci/deps` (Debian: apt-get install nginx-light)",
            );
        fs::create_dir_all(root).unwrap();
        fs::create_dir_all(prefix.join("tmp")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = prefix.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\n\
             error_log {p}/error.log;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/tmp/body;\n\
               proxy_temp_path {p}/tmp/proxy;\n  fastcgi_temp_path {p}/tmp/fastcgi;\n\
               uwsgi_temp_path {p}/tmp/uwsgi;\n  scgi_temp_path {p}/tmp/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    client_max_body_size 0;\n\
                 location / {{\n      dav_methods PUT DELETE;\n      create_full_put_path on;\n\
                   dav_access user:rw group:r all:r;\n    }}\n  }}\n}}\n",
            root = root.display()
        );
        let conf_path = prefix.join("nginx.conf");
        fs::write(&conf_path, conf).unwrap();
        let child = std::process::Command::new(bin)
            .args(["-p"])
            .arg(prefix)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .spawn()
            .unwrap();
        // Owned at once, so that it is stopped even if it never answers.
        let nginx = Nginx {
            url: format!("http://127.0.0.1:{port}/"),
            child,
        };
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nginx did not start: {}",
            fs::read_to_string(prefix.join("error.log")).unwrap_or_default()
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A proxy on loopback in front of another HTTP server: a reverse proxy
/// (the S3 tests point `AWS_ENDPOINT_URL` at it), or a forward proxy
/// (`HTTP_PROXY`), whose absolute-form requests (`GET http://host/path`) it
/// passes on in origin-form to the same upstream. It injects the same
/// faults into blob downloads: a GET whose path has `/blobs/` in it. Each
/// request is forwarded on a fresh connection. It cannot tunnel: a CONNECT
/// (`HTTPS_PROXY`) is recorded and refused with 502.
pub struct Proxy {
    pub url: String,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    /// Blob downloads that asked for a byte range (a resumed download).
    pub ranged: Arc<AtomicUsize>,
    /// The first line of every request, as the client sent it.
    seen: Arc<Mutex<Vec<String>>>,
    /// [`Fault::Hang`]s the client gave up on, closing the connection.
    pub abandoned: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let faults: Arc<Mutex<VecDeque<Fault>>> = Arc::default();
        let ranged: Arc<AtomicUsize> = Arc::default();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let abandoned: Arc<AtomicUsize> = Arc::default();
        let (queue, counter, log, gave_up) = (
            faults.clone(),
            ranged.clone(),
            seen.clone(),
            abandoned.clone(),
        );
        // Runs until the test binary exits; a test starts a few at most.
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (queue, counter, log, gave_up, upstream) = (
                    queue.clone(),
                    counter.clone(),
                    log.clone(),
                    gave_up.clone(),
                    upstream.clone(),
                );
                thread::spawn(move || {
                    let _ = forward(conn, &upstream, &queue, &counter, &log, &gave_up);
                });
            }
        });
        Proxy {
            url,
            faults,
            ranged,
            seen,
            abandoned,
        }
    }

    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    pub fn faults_left(&self) -> usize {
        self.faults.lock().unwrap().len()
    }

    /// The first line of every request so far (`GET http://127.0.0.1:…/x
    /// HTTP/1.1`, `CONNECT host:443 HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A request line with its target in origin-form: `GET http://h:1/a HTTP/1.1`
/// becomes `GET /a HTTP/1.1`; other lines are returned as they are.
fn origin_form(line: &str) -> String {
    let mut parts = line.splitn(3, ' ');
    let (Some(method), Some(target), Some(rest)) = (parts.next(), parts.next(), parts.next())
    else {
        return line.to_owned();
    };
    match target.strip_prefix("http://") {
        Some(after) => {
            let path = after.find('/').map_or("/", |i| &after[i..]);
            format!("{method} {path} {rest}")
        }
        None => line.to_owned(),
    }
}

/// Reads one request (head and `Content-Length` body) as raw bytes, in
/// origin-form; also returns its first line as sent and whether it asked
/// for a range.
fn read_request(reader: &mut impl BufRead) -> std::io::Result<(String, bool, Vec<u8>)> {
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let mut raw = origin_form(&first).into_bytes();
    let mut len = 0usize;
    let mut ranged = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let (k, v) = line.split_once(':').unwrap_or((&line, ""));
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().unwrap_or(0);
        }
        ranged |= k.eq_ignore_ascii_case("range");
        // One request per connection, both ways.
        if !k.eq_ignore_ascii_case("connection") {
            raw.extend_from_slice(line.as_bytes());
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let head_end = raw.len() - 2;
    raw.splice(head_end..head_end, b"Connection: close\r\n".iter().copied());
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    raw.extend_from_slice(&body);
    Ok((first, ranged, raw))
}

fn forward(
    mut conn: TcpStream,
    upstream: &str,
    faults: &Mutex<VecDeque<Fault>>,
    ranged_blobs: &AtomicUsize,
    seen: &Mutex<Vec<String>>,
    abandoned: &AtomicUsize,
) -> std::io::Result<()> {
    let (first, ranged, request) = read_request(&mut BufReader::new(conn.try_clone()?))?;
    seen.lock().unwrap().push(first.trim_end().to_owned());
    if first.starts_with("CONNECT ") {
        return respond(&mut conn, 502, &[("Content-Length", "0".into())], b"");
    }
    let is_blob = first.starts_with("GET ") && first.contains("/blobs/");
    if is_blob && ranged {
        ranged_blobs.fetch_add(1, Ordering::Relaxed);
    }
    let fault = if is_blob {
        faults.lock().unwrap().pop_front()
    } else {
        None
    };
    match fault {
        Some(Fault::Status(code)) => {
            return respond(&mut conn, code, &[("Content-Length", "0".into())], b"")
        }
        Some(Fault::TooMany(secs) | Fault::Unavailable(secs)) => {
            let code = if matches!(fault, Some(Fault::TooMany(_))) {
                429
            } else {
                503
            };
            let headers = [
                ("Retry-After", secs.to_string()),
                ("Content-Length", "0".into()),
            ];
            return respond(&mut conn, code, &headers, b"");
        }
        Some(Fault::Drop) => return Ok(()),
        Some(Fault::Slow(d)) => thread::sleep(d),
        _ => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&request)?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    let body_at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    match fault {
        Some(Fault::Truncate(n)) => {
            // At most half the body, so that something is always missing.
            let n = n.min((response.len() - body_at) / 2);
            conn.write_all(&response[..body_at + n])?;
            conn.shutdown(std::net::Shutdown::Both)
        }
        Some(Fault::Stall(d)) => {
            let mid = body_at + (response.len() - body_at) / 2;
            conn.write_all(&response[..mid])?;
            conn.flush()?;
            thread::sleep(d);
            conn.write_all(&response[mid..])
        }
        Some(Fault::Hang) => {
            let half = (response.len() - body_at) / 2;
            if stall(&mut conn, &response[..body_at + half])? {
                abandoned.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
        Some(Fault::Flip) if response.len() > body_at => {
            let mid = body_at + (response.len() - body_at) / 2;
            response[mid] ^= 0x20;
            conn.write_all(&response)
        }
        _ => conn.write_all(&response),
    }
}
