//! What a blob may make and what reaches the terminal are bounded by what
//! the manifest declares: text rewritten for this machine cannot grow past
//! the snapshot's declared size, directories implied by entries' paths
//! count against it, and whatever a store names is escaped before a
//! terminal sees it.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use super::common::*;
use super::{id_of, put_blob, stderr, unit, world, Victim};

/// The id of the unit named `name` and the snapshot's layout.
fn id_and_layout(v: &Victim, name: &str) -> (String, String) {
    let m = World::manifest(&v.store, &world().commits.base);
    let id = id_of(&m, name);
    let layout = m["layout"].as_str().unwrap_or("flat").to_owned();
    (id, layout)
}

/// Where a unit's own files go, in the snapshot's layout: a directory
/// below which it may create anything.
fn own_dir(id: &str, layout: &str) -> String {
    match layout {
        "per-unit" => {
            let (package, hash) = id.rsplit_once('-').unwrap();
            format!("build/{package}/{hash}")
        }
        _ => format!(".fingerprint/{id}"),
    }
}

/// Appends a file to a tar (a long path gets a GNU long-name header).
fn append(tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, path, data).unwrap();
}

/// Bytes that do not compress, so that a blob's declared size passes the
/// manifest's ratio check.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every regular file below `dir` larger than `bound`.
fn files_over(dir: &Path, bound: u64) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.len() > bound {
                out.push((e.path().display().to_string(), meta.len()));
            }
        }
    }
    out
}

#[test]
fn a_dep_info_file_that_repeats_a_short_path_cannot_amplify() {
    let v = Victim::new("amplify");
    let (greet, layout) = id_and_layout(&v, "lib greet");
    let m = World::manifest(&v.store, &world().commits.base);
    let ci_root = m["workspace_root"].as_str().unwrap().to_owned();
    // The repository root may be any directory above the workspace root:
    // its first component is the shortest path the rewrite replaces.
    let short = format!("/{}", ci_root.split('/').nth(1).unwrap());
    let local = Path::new(&v.dir);
    let factor = (local.as_os_str().len() / short.len()) as u64;
    assert!(factor >= 5, "{short} -> {}", local.display());
    let declared: u64 = m["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["blob"]["unpacked"].as_u64().unwrap())
        .sum();
    // Unbounded, rewriting the file grows the seed by (factor - 1) times
    // its size, which must exceed everything the snapshot declares.
    let size = (declared / (factor - 2) + (1 << 20)) as usize;
    let dep_info = short.repeat(size / short.len());
    let path = match layout.as_str() {
        "per-unit" => format!("{}/out/evil.d", own_dir(&greet, &layout)),
        _ => format!("deps/{greet}.d"),
    };
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, &path, dep_info.as_bytes());
    // In the unit's fingerprint directory, which the seed writes the
    // relocated fingerprint into.
    let noise_at = match layout.as_str() {
        "per-unit" => format!("{}/fingerprint/noise", own_dir(&greet, &layout)),
        _ => format!("{}/noise", own_dir(&greet, &layout)),
    };
    append(&mut tar, &noise_at, &noise(size / 150));
    let blob = put_blob(&v.store, &tar.into_inner().unwrap());
    let grown = dep_info.len() as u64 * (factor - 1);
    let total = declared + blob["unpacked"].as_u64().unwrap();
    assert!(grown > total, "{grown} bytes grown, {total} declared");
    v.edit(|m| {
        m["repository_root"] = json!(short);
        unit(m, "lib greet")["blob"] = blob;
    });

    v.assert_refused(1, "would grow the snapshot's files by more than");
    // Nowhere in the clone is a file larger than the whole snapshot.
    let over = files_over(&v.dir, total);
    assert!(over.is_empty(), "{over:?}");
}

#[test]
fn directories_implied_by_paths_count_against_the_declared_size() {
    let v = Victim::new("nested");
    let (greet, layout) = id_and_layout(&v, "lib greet");
    let top = own_dir(&greet, &layout);
    let mut tar = tar::Builder::new(Vec::new());
    let mut implied = 0u64;
    // Entries 60 directories deep, each in a branch of its own: every one
    // implies 60 directories for a header and a long name.
    let depth = 60 - top.split('/').count();
    for i in 0..300 {
        let path = format!("{top}/x{i}/{}f", "d/".repeat(depth - 2));
        implied += depth as u64 - 1;
        append(&mut tar, &path, b"");
    }
    let tar = tar.into_inner().unwrap();
    let blob = put_blob(&v.store, &tar);
    let declared = tar.len() as u64;
    let zst = blob["size"].as_u64().unwrap();
    // As blobs of this kind: kilobytes, declaring hundreds.
    assert!(
        zst < 16 << 10 && declared > 256 << 10,
        "{zst} -> {declared}"
    );
    // More directories than the declared size has headers for.
    assert!(implied > declared / 512 + 64, "{implied} directories");
    v.edit(|m| unit(m, "lib greet")["blob"] = blob);

    v.assert_refused(1, "files, links and directories its declared size holds");
}

/// Whether `text` holds any byte a terminal would act on.
fn raw_controls(text: &[u8]) -> Vec<u8> {
    text.iter()
        .copied()
        .filter(|b| (*b < 0x20 && *b != b'\n') || *b == 0x7f)
        .collect()
}

#[test]
fn what_a_store_names_reaches_the_terminal_escaped() {
    let v = Victim::new("escapes");
    let base = &world().commits.base;
    let good = World::manifest_path(&v.store, base);
    v.edit(|m| {
        let release = m["toolchain"]["release"].as_str().unwrap().to_owned();
        m["toolchain"]["release"] = json!(format!("{release}\nwarning: forged"));
    });
    // Read before the stray key joins it in the manifest's directory.
    let mut manifest = World::manifest(&v.store, base);
    let (greet, layout) = id_and_layout(&v, "lib greet");
    let evil_key = "\x1b[31mevil\nwarning: forged key\x1b[0m.json";
    fs::write(good.parent().unwrap().join(evil_key), "not a manifest").unwrap();
    let list = |format: &[&str]| {
        let mut args = vec!["list", "--store", v.store.to_str().unwrap()];
        args.extend(format);
        seed(&v.dir, &args)
    };

    let out = list(&[]);
    let shown = format!("{}{}", text(&out.stdout), stderr(&out));
    assert!(out.status.success(), "{shown}");
    // Both snapshots are listed, the store's words shown, not acted on.
    assert!(shown.contains("\\u{1b}[31mevil"), "{shown}");
    assert!(shown.contains("\\nwarning: forged"), "{shown}");
    assert_eq!(raw_controls(&out.stdout), b"", "{shown}");
    assert_eq!(raw_controls(&out.stderr), b"", "{shown}");
    assert!(!shown.lines().any(|l| l.starts_with("warning:")), "{shown}");

    let out = list(&["--message-format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let rustc: Vec<&str> = listed.iter().filter_map(|e| e["rustc"].as_str()).collect();
    assert!(
        rustc.iter().any(|r| r.ends_with("\nwarning: forged")),
        "JSON carries the field as it is: {rustc:?}"
    );
    assert_eq!(raw_controls(&out.stdout), b"");

    // A seed's error that names an entry of a blob.
    let mut tar = tar::Builder::new(Vec::new());
    append(
        &mut tar,
        &format!("{}/\x1b]0;pwned\x07", own_dir(&greet, &layout)),
        b"x",
    );
    append(&mut tar, "\x1b[2J\u{202e}elsewhere", b"x");
    let blob = put_blob(&v.store, &tar.into_inner().unwrap());
    unit(&mut manifest, "lib greet")["blob"] = blob;
    fs::write(&good, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let out = v.seed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("\\u{1b}[2J\\u{202e}elsewhere"), "{err}");
    assert_eq!(raw_controls(&out.stderr), b"", "{err}");
    assert!(!err.contains('\u{202e}'), "{err}");

    // A seed's error that names a manifest key: the only one left.
    fs::remove_file(&good).unwrap();
    let out = v.seed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("\\u{1b}[31mevil\\nwarning: forged key"),
        "{err}"
    );
    assert_eq!(raw_controls(&out.stderr), b"", "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(!err.lines().any(|l| l.starts_with("warning:")), "{err}");
}
