//! How fast a seed makes a large build dir, against `cp -a` of the same
//! directory: from a directory store, and from an HTTP store whose blobs
//! are all in the local blob cache already.
//!
//! The workspace is generated, with no network: `DATA_CRATES` libraries
//! whose build scripts write `DATA_MIB` MiB of data of mixed
//! compressibility (from all text to all random, by crate) into `OUT_DIR`,
//! which the library embeds with `include_bytes!`; `SMALL_CRATES` small
//! libraries, some with build scripts, for the many small files of a real
//! build dir; and a binary over all of them. Each data byte sits in the
//! build dir three times (the build script's output, the rlib, the
//! binary), so the profile dir is over 2 GB while the build takes a couple
//! of minutes. It is built once, published once into a directory store,
//! and seeded into fresh clones at another path.
//!
//! `cargo bench --bench throughput` prints, for each way, the median of
//! `RUNS` runs (default 5) with the range, the ratio to `cp -a`, and the
//! median of each stage time the `seeded` event reports. The page cache
//! cannot be dropped here: every way runs once untimed first, so all of
//! them read from a warm page cache. Needs `git`, `cp` and nginx (as the
//! restore bench). Leaves nothing behind in `target/tmp` unless `KEEP` is
//! set.

mod common;
#[path = "../tests/common/http.rs"]
mod http;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{dir_size, runs, spread};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-seed");
const DATA_CRATES: usize = 24;
const DATA_MIB: usize = 32;
const SMALL_CRATES: usize = 40;

fn sh(dir: &Path, script: &str) {
    let st = Command::new("bash")
        .args(["-ec", script])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_BUILD_DIR")
        .status()
        .unwrap();
    assert!(st.success(), "failed: {script}");
}

/// The generated workspace, a git repository at `root`.
fn generate(root: &Path) {
    let mut members = Vec::new();
    let mut deps = String::new();
    let mut uses = String::new();
    for i in 0..DATA_CRATES {
        let name = format!("data{i:02}");
        let dir = root.join(&name);
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(
            dir.join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        )
        .unwrap();
        // Chunks of 64 KiB, chunk `c` random when `c % 4 < i % 5`: from
        // all text (crate 0) to all random (crate 4), and again.
        fs::write(
            dir.join("build.rs"),
            format!(
                r#"use std::io::Write;
fn main() {{
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("data.bin");
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut x: u64 = {seed};
    let mut chunk = vec![0u8; 64 << 10];
    for c in 0..({mib} * 16) {{
        if c % 4 < {random} {{
            for b in chunk.chunks_mut(8) {{
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
            }}
        }} else {{
            let mut line = Vec::new();
            let mut n = 0usize;
            while line.len() < chunk.len() {{
                write!(line, "chunk {{c}} line {{n}}: the quick brown fox\n").unwrap();
                n += 1;
            }}
            let len = chunk.len();
            chunk.copy_from_slice(&line[..len]);
        }}
        f.write_all(&chunk).unwrap();
    }}
}}
"#,
                seed = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1),
                mib = DATA_MIB,
                random = i % 5,
            ),
        )
        .unwrap();
        fs::write(
            dir.join("src/lib.rs"),
            "pub static DATA: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/data.bin\"));\n\
             pub fn sum() -> u64 { DATA.iter().step_by(4096).map(|&b| b as u64).sum() }\n",
        )
        .unwrap();
        members.push(name.clone());
        deps.push_str(&format!("{name} = {{ path = \"../{name}\" }}\n"));
        uses.push_str(&format!("    total += {name}::sum();\n"));
    }
    for i in 0..SMALL_CRATES {
        let name = format!("small{i:02}");
        let dir = root.join(&name);
        fs::create_dir_all(dir.join("src")).unwrap();
        let mut manifest =
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
        let mut lib = String::new();
        if i % 4 == 0 {
            fs::write(
                dir.join("build.rs"),
                "fn main() {\n    println!(\"cargo:rerun-if-changed=build.rs\");\n    \
                 let out = std::path::PathBuf::from(std::env::var_os(\"OUT_DIR\").unwrap());\n    \
                 std::fs::write(out.join(\"gen.rs\"), \"pub fn generated() -> u32 { 7 }\").unwrap();\n}\n",
            )
            .unwrap();
            lib.push_str("include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\n");
        } else {
            lib.push_str("pub fn generated() -> u32 { 3 }\n");
        }
        if i > 0 {
            let prev = format!("small{:02}", i - 1);
            manifest.push_str(&format!(
                "\n[dependencies]\n{prev} = {{ path = \"../{prev}\" }}\n"
            ));
            lib.push_str(&format!(
                "pub fn chain() -> u32 {{ generated() + {prev}::chain() }}\n"
            ));
        } else {
            lib.push_str("pub fn chain() -> u32 { generated() }\n");
        }
        for f in 0..20 {
            lib.push_str(&format!(
                "pub fn f{f}(x: u32) -> u32 {{ x.wrapping_mul({f} + 1).rotate_left({f}) }}\n"
            ));
        }
        fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        fs::write(dir.join("src/lib.rs"), lib).unwrap();
        members.push(name);
    }
    let last = format!("small{:02}", SMALL_CRATES - 1);
    deps.push_str(&format!("{last} = {{ path = \"../{last}\" }}\n"));
    fs::create_dir_all(root.join("app/src")).unwrap();
    fs::write(
        root.join("app/Cargo.toml"),
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{deps}"
        ),
    )
    .unwrap();
    fs::write(
        root.join("app/src/main.rs"),
        format!(
            "fn main() {{\n    let mut total = 0u64;\n{uses}    println!(\"{{total}} {{}}\", {last}::chain());\n}}\n"
        ),
    )
    .unwrap();
    members.push("app".into());
    let list: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    fs::write(
        root.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
    fs::write(root.join(".gitignore"), "/target\n").unwrap();
    sh(
        root,
        "git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm base",
    );
}

/// Runs `program` in `dir` and returns its wall time and stdout.
fn timed(dir: &Path, program: &str, args: &[&str]) -> (f64, String) {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_BUILD_DIR")
        .env("CI", "1")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "{program} {args:?} failed");
    (secs, String::from_utf8(out.stdout).unwrap())
}

/// The stages of the `seeded` event, and how many units were rebuilt.
fn seeded(stdout: &str) -> (Vec<(String, f64)>, usize) {
    let event: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "seeded")
        .expect("a seeded event");
    let stages = event["stages"]
        .as_object()
        .expect("stages")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect();
    (stages, event["rebuilt"].as_array().unwrap().len())
}

/// The timed runs of one way of seeding, and the median of each stage.
struct Way {
    secs: Vec<f64>,
    stages: Vec<Vec<(String, f64)>>,
}

impl Way {
    fn stage_medians(&self) -> String {
        let names: Vec<String> = self.stages[0].iter().map(|(k, _)| k.clone()).collect();
        let order = [
            "resolve",
            "judge",
            "stage",
            "fetch",
            "verify",
            "decompress",
            "write",
            "relocate",
            "swap",
            "replay",
        ];
        order
            .iter()
            .filter(|n| names.iter().any(|k| k == *n))
            .map(|name| {
                let v: Vec<f64> = self
                    .stages
                    .iter()
                    .map(|s| s.iter().find(|(k, _)| k == name).unwrap().1)
                    .collect();
                format!("{name} {:.2}", spread(v).0)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Seeds a fresh clone of `src` at `dir` from `store`; returns the time,
/// the stages, and the seeded profile dir.
fn seed_once(src: &Path, dir: &Path, store: &str) -> (f64, Vec<(String, f64)>, PathBuf) {
    sh(
        dir.parent().unwrap(),
        &format!("git clone -q {} {}", src.display(), dir.display()),
    );
    let (secs, out) = timed(
        dir,
        BIN,
        &["seed", "--message-format", "json", "--store", store],
    );
    let (stages, rebuilt) = seeded(&out);
    assert_eq!(rebuilt, 0, "every unit reused: {out}");
    (secs, stages, dir.join("target/debug"))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-throughput");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    // The bench's own blob cache, never the user's.
    std::env::set_var("CARGO_SEED_CACHE_DIR", root.join("blob-cache"));
    std::env::set_var("CARGO_SEED_CACHE_SIZE", "10G");
    // No incremental state: it would be a fourth copy of the data, which a
    // seed at another path without the wrapper does not fetch anyway.
    std::env::set_var("CARGO_INCREMENTAL", "0");

    let ci = root.join("ci");
    fs::create_dir_all(&ci).unwrap();
    generate(&ci);
    let start = Instant::now();
    sh(&ci, "cargo build -q");
    let build_s = start.elapsed().as_secs_f64();
    let profile = ci.join("target/debug");
    let size = dir_size(&profile);
    let store = root.join("store");
    let start = Instant::now();
    sh(
        &ci,
        &format!("{BIN} seed publish -q --store {}", store.display()),
    );
    let publish_s = start.elapsed().as_secs_f64();
    println!(
        "workspace: {} units of data ({DATA_MIB} MiB each), {SMALL_CRATES} small, a binary; \
         build {build_s:.1}s; profile dir {:.2} GB; store {:.2} GB; publish {publish_s:.1}s",
        DATA_CRATES,
        size as f64 / 1e9,
        dir_size(&store) as f64 / 1e9,
    );
    // Only the store is read from here on: the CI checkout's build dir goes.
    fs::remove_dir_all(ci.join("target")).unwrap();

    let n = runs(5);
    let dir_store = store.to_str().unwrap().to_owned();
    let nginx = http::Nginx::start(&root.join("nginx"), &store);
    let mut ways: Vec<(&str, Way)> = Vec::new();
    let mut copies = Vec::new();
    let mut dev_i = 0;
    let mut next_dev = || {
        dev_i += 1;
        let d = root.join(format!("dev-{dev_i}"));
        fs::create_dir_all(&d).unwrap();
        d
    };
    for (label, store) in [
        ("seed from a directory store", dir_store.as_str()),
        (
            "seed from HTTP, every blob in the local cache",
            nginx.url.as_str(),
        ),
    ] {
        // Untimed: warms the page cache (and, over HTTP, fills the blob
        // cache), and leaves the profile dir that `cp -a` copies.
        let warm = next_dev();
        let (_, _, seeded_dir) = seed_once(&ci, &warm.join("app"), store);
        if copies.is_empty() {
            let copy = root.join("copy");
            timed(
                &root,
                "cp",
                &["-a", seeded_dir.to_str().unwrap(), copy.to_str().unwrap()],
            );
            fs::remove_dir_all(&copy).unwrap();
            for _ in 0..n {
                let (secs, _) = timed(
                    &root,
                    "cp",
                    &["-a", seeded_dir.to_str().unwrap(), copy.to_str().unwrap()],
                );
                copies.push(secs);
                fs::remove_dir_all(&copy).unwrap();
            }
            println!(
                "seeded profile dir: {:.2} GB",
                dir_size(&seeded_dir) as f64 / 1e9
            );
        }
        fs::remove_dir_all(&warm).unwrap();
        let mut way = Way {
            secs: Vec::new(),
            stages: Vec::new(),
        };
        for _ in 0..n {
            let dev = next_dev();
            let (secs, stages, _) = seed_once(&ci, &dev.join("app"), store);
            way.secs.push(secs);
            way.stages.push(stages);
            fs::remove_dir_all(&dev).unwrap();
        }
        ways.push((label, way));
    }
    let (cp, lo, hi) = spread(copies);
    println!("cp -a of the seeded profile dir: {cp:.2}s (range {lo:.2}–{hi:.2}s)");
    for (label, way) in &ways {
        let (m, lo, hi) = spread(way.secs.clone());
        println!(
            "{label}: {m:.2}s (range {lo:.2}–{hi:.2}s), {:.2}x cp -a; stages (median s; \
             fetch to relocate summed over the workers): {}",
            m / cp,
            way.stage_medians()
        );
    }
    drop(nginx);
    // `KEEP=1` leaves the CI checkout and the store, to profile a seed by
    // hand.
    if std::env::var_os("KEEP").is_none() {
        let _ = fs::remove_dir_all(&root);
    }
}
