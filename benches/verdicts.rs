//! What a seed spends before any download, against the size of the
//! manifest: parsing, validating every field and judging every unit
//! (comparing recorded inputs by content, spreading "rebuilt" to
//! dependents), on synthetic manifests of 3,000 to 24,000 units.
//!
//! The shape is a monorepo's: units listed by id (as publish writes them,
//! so in no dependency order), each depending on three of the eight units
//! before it in dependency order (a deep graph); one in
//! five a workspace member with a source file compared by content; one in
//! a thousand naming `$CARGO_HOME/registry` (32 MiB here) as a directory
//! input, as a build script that watches the registry does (its recorded
//! digest differs, and no unit depends on it). The source of
//! the member in the middle differs, so "rebuilt" spreads through the
//! upper half of the graph.
//!
//! Then one manifest of 3,000 units of which one in ten names the
//! directory.
//!
//! `cargo bench --bench verdicts`; `RUNS=n` (default 3) runs per size,
//! `SIZES=3000,6000` to choose the sizes. Prints the median and the range.

mod common;

use std::fs;
use std::path::Path;
use std::time::Instant;

use cargo_seed::cargo::workspace::Workspace;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use common::{runs, spread};

/// Files and size of the big directory the directory inputs name.
const REGISTRY_FILES: usize = 512;
const REGISTRY_FILE_SIZE: usize = 64 << 10;
/// A unit depends on three of the units this far before it in dependency
/// order: layers of crates, each built on its neighbours below.
const WINDOW: usize = 8;

/// A deterministic stream of numbers (xorshift), so every run judges the
/// same graph.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Whether unit `i` (a workspace member) names the big directory: one in
/// `every` (a multiple of 5) does.
fn has_directory_input(i: usize, every: usize) -> bool {
    i % every == 5
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest a seed computes for a file input: sha256 of its sha256.
fn file_digest(content: &[u8]) -> String {
    hex(&Sha256::digest(Sha256::digest(content)))
}

/// Writes the workspace's files under `ws` and returns the manifest of
/// `n` units for it, with the names of the workspace's members.
fn synthetic(n: usize, every: usize, ws: &Workspace) -> (Vec<u8>, Vec<String>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
    let ids: Vec<String> = (0..n)
        .map(|i| {
            let h = rng.next();
            format!("c{:08x}-{h:016x}", h as u32 ^ i as u32)
        })
        .collect();
    let mut members = Vec::new();
    let mut units = Vec::with_capacity(n);
    for (i, id) in ids.iter().enumerate() {
        let package = id.rsplit_once('-').unwrap().0.to_owned();
        let mut deps = Vec::new();
        if i > 0 {
            for _ in 0..3 {
                let j = i - 1 - rng.below(i.min(WINDOW));
                // Nothing depends on a unit with a directory input, whose
                // recorded digest is made up: it alone is rebuilt.
                let j = if has_directory_input(j, every) {
                    j - 1
                } else {
                    j
                };
                deps.push(ids[j].clone());
            }
            deps.sort();
            deps.dedup();
        }
        let member = i % 5 == 0;
        let (package_id, check) = if member {
            members.push(package.clone());
            let src = ws.root.join(&package).join("src");
            fs::create_dir_all(&src).unwrap();
            let content = format!("pub fn f{i}() {{}}\n");
            fs::write(src.join("lib.rs"), &content).unwrap();
            // The middle member was edited since CI built it.
            let recorded = if i == n / 10 * 5 {
                file_digest(b"pub fn before() {}\n")
            } else {
                file_digest(content.as_bytes())
            };
            let mut files = vec![json!({"path": "src/lib.rs", "sha256": recorded})];
            if has_directory_input(i, every) {
                files.push(json!({
                    "base": "cargo-home",
                    "path": "registry",
                    "sha256": "0".repeat(64),
                }));
            }
            (
                format!(
                    "path+file://{}#{package}@0.1.0",
                    ws.root.join(&package).display()
                ),
                json!({"inputs": {"package_root": package, "files": files}}),
            )
        } else {
            (
                format!("registry+https://github.com/rust-lang/crates.io-index#{package}@1.0.0"),
                json!("none"),
            )
        };
        let mut unit = json!({
            "id": id,
            "name": format!("lib {package}"),
            "kind": "compile",
            "package_id": package_id,
            "blob": {"sha256": hex(&Sha256::digest(id.as_bytes())), "size": 100_000, "unpacked": 300_000},
            "deps": deps,
            "check": check,
        });
        // A workspace unit records its crate root, as validation requires.
        if member {
            unit["src_path"] = json!(ws.root.join(&package).join("src/lib.rs"));
        }
        units.push(unit);
    }
    units.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let manifest = json!({
        "schema": 3,
        "commit": "0".repeat(40),
        "created": 0,
        "toolchain": {"verbose_version": "rustc 1.0.0", "release": "1.0.0", "host": "x86_64-unknown-linux-gnu"},
        "target": "x86_64-unknown-linux-gnu",
        "profile": "dev",
        "profile_dir": "debug",
        "workspace_root": ws.root,
        "cargo_home": ws.cargo_home,
        "build_dir": ws.build_dir,
        "dirty": false,
        "units": Value::Array(units),
    });
    (serde_json::to_vec(&manifest).unwrap(), members)
}

fn workspace(dir: &Path) -> Workspace {
    let root = dir.join("ws");
    let cargo_home = dir.join("cargo-home");
    let registry = cargo_home.join("registry/src/index");
    fs::create_dir_all(&registry).unwrap();
    let mut rng = Rng(7);
    for f in 0..REGISTRY_FILES {
        let bytes: Vec<u8> = (0..REGISTRY_FILE_SIZE / 8)
            .flat_map(|_| rng.next().to_le_bytes())
            .collect();
        fs::write(registry.join(format!("f{f}.rs")), bytes).unwrap();
    }
    Workspace {
        build_dir: root.join("target"),
        target_dir: root.join("target"),
        root,
        members: Vec::new(),
        configured_store: None,
        configured_secret_env: Vec::new(),
        configured_covers: Vec::new(),
        configured_trusted_keys: Vec::new(),
        configured_cache_size: None,
        cargo_home,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "3000,6000,12000,24000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("SIZES: numbers"))
        .collect();
    let runs = runs(3);
    let dir = tempfile::tempdir().unwrap();
    println!(
        "validation + verdicts, before any download ({runs} runs, median (range)); \
         directory inputs name {} MiB",
        (REGISTRY_FILES * REGISTRY_FILE_SIZE) >> 20
    );
    println!(
        "units\tnaming the dir\tmanifest\tparse only\tparse+validate+verdicts\treused/rebuilt"
    );
    for n in sizes {
        measure(n, 1000, &dir.path().join(n.to_string()), runs);
    }
    // A manifest that names the directory for many units.
    measure(3000, 10, &dir.path().join("many"), runs);
}

/// Times the verdicts on a manifest of `n` units, one in `every` naming
/// the big directory, and prints a row.
fn measure(n: usize, every: usize, dir: &Path, runs: usize) {
    let base = workspace(dir);
    let (json, members) = synthetic(n, every, &base);
    let ws = Workspace { members, ..base };
    let mut parse = Vec::new();
    let mut total = Vec::new();
    let mut counts = (0, 0);
    for _ in 0..runs {
        let t = Instant::now();
        let _: serde::de::IgnoredAny = serde_json::from_slice(&json).unwrap();
        parse.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        counts = cargo_seed::verdicts_of(&ws, &json).unwrap();
        total.push(t.elapsed().as_secs_f64());
    }
    let shown = |v: Vec<f64>| {
        let (m, lo, hi) = spread(v);
        format!("{m:.3}s ({lo:.3}–{hi:.3})")
    };
    println!(
        "{n}\t{}\t{:.1} MiB\t{}\t{}\t{}/{}",
        n.div_ceil(every),
        json.len() as f64 / f64::from(1 << 20),
        shown(parse),
        shown(total),
        counts.0,
        counts.1
    );
}
