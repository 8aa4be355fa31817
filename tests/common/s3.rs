//! A real S3-compatible server on loopback for the tests: moto's server
//! (from PyPI, installed by `.ci/deps`), one per test binary, with a bucket
//! per test. Buckets are set up and inspected with boto3 (`s3tool.py`), a
//! client independent of the one under test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use std::io::Write;

pub struct Moto {
    pub endpoint: String,
    venv: PathBuf,
    /// Lives as long as the test binary; never waited for.
    _watchdog: std::process::Child,
    buckets: AtomicUsize,
}

/// The virtualenv where `.ci/deps` installs moto and boto3.
fn venv() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    let venv = cache.join("cargo-seed-tests/venv");
    assert!(
        venv.join("bin/moto_server").exists(),
        "moto's server is not installed in {}: run `bash .ci/deps`",
        venv.display()
    );
    venv
}

impl Moto {
    /// The test binary's server, started on first use. It stops when the
    /// test binary exits: a watchdog shell kills it once its parent is gone.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(Moto::start)
    }

    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let venv = venv();
        let server = venv.join("bin/moto_server");
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("moto-{}.log", std::process::id()));
        let script = format!(
            "'{}' -H 127.0.0.1 -p {port} >'{}' 2>&1 & m=$!\n\
             while kill -0 {pid} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done\n\
             kill $m 2>/dev/null",
            server.display(),
            log.display(),
            pid = std::process::id()
        );
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .spawn()
            .expect("start moto's server");
        for _ in 0..600 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Moto {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    venv,
                    _watchdog: watchdog,
                    buckets: AtomicUsize::new(0),
                };
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = watchdog.kill();
        let _ = watchdog.wait();
        panic!(
            "moto's server ({}) did not start on port {port}: {}",
            server.display(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Runs the tests' own S3 client (boto3) with `args`, feeding `input`.
    fn tool(&self, args: &[&str], input: &[u8]) -> std::process::Output {
        let python = self.venv.join("bin/python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/s3tool.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(&self.endpoint)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run s3tool.py");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    fn tool_ok(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let out = self.tool(args, input);
        assert!(
            out.status.success(),
            "s3tool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A new, empty bucket; returns its name.
    pub fn bucket(&self, tag: &str) -> String {
        let n = self.buckets.fetch_add(1, Ordering::Relaxed);
        let name = format!("{tag}-{n}");
        self.tool_ok(&["mb", &name], b"");
        name
    }

    /// The AWS environment cargo-seed is configured by.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        self.tool_ok(&["put", bucket, key], body);
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self.tool(&["get", bucket, key], b"");
        match out.status.code() {
            Some(0) => Some(out.stdout),
            Some(3) => None,
            _ => panic!("s3tool get {key}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// Every key under `prefix`, with its LastModified as S3 reports it.
    pub fn list(&self, bucket: &str, prefix: &str) -> BTreeMap<String, String> {
        serde_json::from_slice(&self.tool_ok(&["list", bucket, prefix], b"")).unwrap()
    }

    /// Every key under `prefix`, with its ETag unquoted: that of an object
    /// uploaded in N parts ends in `-N`.
    pub fn etags(&self, bucket: &str, prefix: &str) -> BTreeMap<String, String> {
        serde_json::from_slice(&self.tool_ok(&["etags", bucket, prefix], b"")).unwrap()
    }

    /// Copies a local store's objects into `bucket` under `prefix`.
    pub fn upload_store(&self, store: &Path, bucket: &str, prefix: &str) {
        self.tool_ok(&["upload", bucket, prefix, store.to_str().unwrap()], b"");
    }
}
