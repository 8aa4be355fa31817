//! Making rustc load a snapshot's incremental state at another workspace
//! path.
//!
//! rustc keys a crate's incremental session on a hash of its tracked
//! options, and the working directory is one of them, so a session made in
//! CI's checkout is ignored in any other. The hash is not computed here: the
//! unit's exact command line (recorded in CI by the `RUSTC_WRAPPER` mode) is
//! replayed with the local rustc, in the local working directory, on a stub
//! source file, and rustc writes a session whose header carries the hash it
//! will expect. Those 8 bytes are copied into the snapshot's sessions.
//!
//! A header whose layout or rustc version is not exactly the local one is
//! left untouched: a wrong hash only makes rustc ignore the state, but a
//! damaged file must never reach it.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::rustc::depgraph;
use crate::rustc::wrapper::{self, Invocation};
use crate::snapshot::manifest::PathValue;

const MAGIC: &[u8; 4] = b"RSIC";

/// The part of `dep-graph.bin` before the options hash, and the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Magic, format version and rustc version: must match exactly.
    pub prefix: Vec<u8>,
    pub options_hash: [u8; 8],
}

/// Reads the header of a `dep-graph.bin`: `RSIC`, a u16 format version, a
/// length byte and the rustc version string, then the 8-byte options hash.
pub fn read_header(path: &Path) -> io::Result<Option<Header>> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 7];
    if f.read_exact(&mut head).is_err() || &head[..4] != MAGIC {
        return Ok(None);
    }
    let mut rest = vec![0u8; head[6] as usize + 8];
    if f.read_exact(&mut rest).is_err() {
        return Ok(None);
    }
    let split = rest.len() - 8;
    let mut prefix = head.to_vec();
    prefix.extend_from_slice(&rest[..split]);
    let options_hash = rest[split..].try_into().expect("8 bytes");
    Ok(Some(Header {
        prefix,
        options_hash,
    }))
}

/// Writes `expected`'s hash into `path` if its header prefix is exactly
/// `expected`'s; returns whether it did.
pub fn patch(path: &Path, expected: &Header) -> io::Result<bool> {
    match read_header(path)? {
        Some(h) if h.prefix == expected.prefix => {
            if h.options_hash != expected.options_hash {
                let mut f = File::options().write(true).open(path)?;
                f.seek(SeekFrom::Start(expected.prefix.len() as u64))?;
                f.write_all(&expected.options_hash)?;
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Finalized sessions' `dep-graph.bin` files in one crate's incremental dir.
pub fn sessions(crate_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(crate_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("s-") && !name.ends_with("-working") && e.path().is_dir()
        })
        .map(|e| e.path().join("dep-graph.bin"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// What a replay of a unit's command line found out.
#[derive(Debug)]
pub struct Replayed {
    /// The name of the incremental directory rustc uses for the crate.
    pub dir: String,
    /// The header rustc wrote: it expects it in a session it loads.
    pub header: Header,
    /// The values of the path-only queries in the replay's graph, or why
    /// they could not be read.
    pub paths: Result<depgraph::PathValues, depgraph::Refused>,
}

/// The rustc that cargo runs here: `$RUSTC`, else `rustc` on `PATH`.
pub fn rustc() -> PathBuf {
    std::env::var_os("RUSTC").map_or_else(|| PathBuf::from("rustc"), PathBuf::from)
}

/// Where a replay may find the dependencies a command line names.
pub struct Place<'a> {
    /// The working directory here.
    pub cwd: &'a Path,
    /// The build dir here: `--extern` and `-L dependency=` are kept only
    /// below it, after `map`.
    pub build_dir: &'a Path,
    /// A recorded path on this machine (CI's build dir to this one's).
    pub map: &'a dyn Fn(&Path) -> Option<PathBuf>,
}

/// Replays `inv` with rustc on a stub source file, in `place`'s working
/// directory, writing into `scratch`, and returns what rustc wrote.
///
/// Only what does not enter the options hash is changed: the input file,
/// `--out-dir`, `-C incremental` (into `scratch`), and `-L` and `--extern`
/// (mapped to this machine). When CI ran the unit through the wrapper, the
/// replay is rewritten as the wrapper rewrites it here, so the header is the
/// one the developer's build expects. The stub names every dependency with
/// `extern crate`, so that rustc loads them as the real build did and the
/// graph holds their `used_crate_source`.
pub fn replay(
    rustc: &Path,
    inv: &Invocation,
    src_path: &Path,
    place: &Place,
    scratch: &Path,
) -> Result<Replayed, String> {
    let (out, inc) = (scratch.join("out"), scratch.join("inc"));
    let stub = scratch.join("stub.rs");
    let mut args = replay_args(inv, src_path, &stub, &out, &inc, place)?;
    let mut source = String::from("#![allow(dead_code, unused_extern_crates)]\n");
    for name in extern_crates(&args) {
        source.push_str(&format!("extern crate {name};\n"));
    }
    source.push_str("fn main() {}\n");
    fs::create_dir_all(&out)
        .and_then(|()| fs::create_dir_all(&inc))
        .and_then(|()| fs::write(&stub, source))
        .map_err(|e| format!("cannot prepare {}: {e}", scratch.display()))?;
    match inv.scheme {
        None => {}
        Some(wrapper::SCHEME) => {
            args = wrapper::rewrite(&args, place.cwd, &wrapper::repository_root(place.cwd));
        }
        Some(other) => {
            return Err(format!(
                "CI ran it through rewrite scheme {other} of cargo-seed's wrapper, which this cargo-seed does not know"
            ))
        }
    }
    let result = Command::new(rustc)
        .args(&args)
        .current_dir(place.cwd)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rustc.display()))?;
    if !result.status.success() {
        let err = String::from_utf8_lossy(&result.stderr);
        let first = err
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or("")
            .trim();
        return Err(format!("replaying its rustc command failed: {first}"));
    }
    let dirs: Vec<PathBuf> = fs::read_dir(&inc)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    let [dir] = dirs.as_slice() else {
        return Err("the replay left no single incremental directory".into());
    };
    let session = sessions(dir)
        .into_iter()
        .next()
        .ok_or("the replay wrote no session")?;
    let header = read_header(&session)
        .ok()
        .flatten()
        .ok_or("the replay wrote no session header")?;
    let name = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    Ok(Replayed {
        dir: name,
        header,
        paths: depgraph::values(&session),
    })
}

/// Path-query values as a manifest records them (hex).
pub fn to_records(values: &depgraph::PathValues) -> Vec<PathValue> {
    values
        .iter()
        .map(|(&(query, key), value)| PathValue {
            query,
            key: hex(&key),
            value: hex(value),
        })
        .collect()
}

/// The values a manifest records; `None` if one is not 32 hex digits.
pub fn from_records(records: &[PathValue]) -> Option<depgraph::PathValues> {
    records
        .iter()
        .map(|r| Some(((r.query, unhex(&r.key)?), unhex(&r.value)?)))
        .collect()
}

fn hex(bytes: &[u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The crates a replay's `--extern name=path` arguments name.
fn extern_crates(args: &[String]) -> Vec<&str> {
    args.iter()
        .zip(args.iter().skip(1))
        .filter(|(opt, _)| *opt == "--extern")
        .map(|(_, v)| v.split_once('=').map_or(v.as_str(), |(name, _)| name))
        .collect()
}

/// The program rustc is told to link with during a replay: the stub's
/// output is thrown away, and the linker is not in the options hash.
const NO_OP_LINKER: &str = "/bin/true";

/// `-C` options kept in a replay: they shape the options hash and name no
/// program, plugin or file.
const CODEGEN_KEPT: &[&str] = &[
    "opt-level",
    "debuginfo",
    "debug-assertions",
    "overflow-checks",
    "panic",
    "lto",
    "codegen-units",
    "embed-bitcode",
    "split-debuginfo",
    "metadata",
    "extra-filename",
    "target-cpu",
    "target-feature",
    "relocation-model",
    "code-model",
    "force-frame-pointers",
    "force-unwind-tables",
    "prefer-dynamic",
    "link-dead-code",
    "no-redzone",
    "no-vectorize-loops",
    "no-vectorize-slp",
    "soft-float",
    "symbol-mangling-version",
    "relro-level",
    "dwarf-version",
    "jump-tables",
    "collapse-macro-debuginfo",
    "instrument-coverage",
];

/// `-C` options dropped from a replay: they only matter when linking, which
/// the replay never does, and rustc leaves them out of the options hash.
const CODEGEN_DROPPED: &[&str] = &[
    "linker",
    "link-arg",
    "link-args",
    "linker-flavor",
    "strip",
    "rpath",
];

/// Options with a value that are kept as they are: no file, no program.
const KEPT_WITH_VALUE: &[&str] = &[
    "--crate-name",
    "--edition",
    "--crate-type",
    "--error-format",
    "--json",
    "--diagnostic-width",
    "--color",
    "--cap-lints",
    "--cfg",
    "--check-cfg",
    "--remap-path-prefix",
    "--target",
    "--emit",
    "-A",
    "-W",
    "-D",
    "-F",
    "--allow",
    "--warn",
    "--deny",
    "--forbid",
    "--force-warn",
];

/// Flags without a value that are kept.
const KEPT_FLAGS: &[&str] = &["--test", "-g", "-O"];

/// The command line of a replay: the recorded one, with the input, the
/// output and incremental directories pointed into `scratch`, `-L` and
/// `--extern` dropped (none of these enter the options hash), and linking
/// sent to a program that does nothing.
///
/// The recorded command comes from the store, so it is read as hostile:
/// every argument must be one that names no program, plugin, codegen backend
/// or output path, or it is refused with the reason and nothing is run.
fn replay_args(
    inv: &Invocation,
    src_path: &Path,
    stub: &Path,
    out: &Path,
    inc: &Path,
    place: &Place,
) -> Result<Vec<String>, String> {
    let show = |p: &Path| p.to_string_lossy().into_owned();
    let mut args = Vec::with_capacity(inv.args.len() + 2);
    let mut it = inv.args.iter();
    let mut replaced_src = false;
    while let Some(a) = it.next() {
        // `--opt value`, `--opt=value` and `-Xvalue` all come apart here.
        let (opt, inline) = split_option(a);
        let mut value = || -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_owned()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("`{a}` has no value")),
            }
        };
        match opt {
            "--out-dir" => {
                value()?;
                args.extend(["--out-dir".to_owned(), show(out)]);
            }
            "-L" => {
                // Only where the crates were: below the build dir.
                let v = value()?;
                if let Some(dir) = v.strip_prefix("dependency=").and_then(|d| local(d, place)) {
                    args.push(format!("-Ldependency={}", show(&dir)));
                }
            }
            "--extern" => {
                // `name=path` below the build dir, or a sysroot crate by
                // name; anything else is left out (the replay then only
                // loses that crate's `used_crate_source`).
                let v = value()?;
                let (name, path) = match v.split_once('=') {
                    Some((name, path)) => (name, local(path, place)),
                    None => (v.as_str(), None),
                };
                if !is_identifier(name) {
                    continue;
                }
                match path {
                    Some(path) => {
                        args.extend(["--extern".to_owned(), format!("{name}={}", show(&path))])
                    }
                    None if !v.contains('=') => {
                        args.extend(["--extern".to_owned(), name.to_owned()])
                    }
                    None => {}
                }
            }
            "-C" | "--codegen" => {
                let v = value()?;
                let key = v.split_once('=').map_or(v.as_str(), |(k, _)| k);
                if key == "incremental" {
                    args.push(format!("-Cincremental={}", show(inc)));
                } else if CODEGEN_DROPPED.contains(&key) {
                } else if CODEGEN_KEPT.contains(&key) {
                    args.push(format!("-C{v}"));
                } else {
                    return Err(format!(
                        "its recorded command line has `-C {v}`, which cargo-seed does not replay"
                    ));
                }
            }
            "--target" => {
                let v = value()?;
                // A target triple; a path to a target spec would be read.
                if v.contains('/') || v.contains('\\') || v.ends_with(".json") {
                    return Err(format!(
                        "its recorded command line names a target spec file `{v}`"
                    ));
                }
                args.push(format!("--target={v}"));
            }
            "--emit" => {
                let v = value()?;
                if v.contains('=') {
                    return Err(format!(
                        "its recorded command line has `--emit {v}`, which names an output path"
                    ));
                }
                args.push(format!("--emit={v}"));
            }
            "--crate-name" => {
                let v = value()?;
                if !is_identifier(&v) {
                    return Err(format!(
                        "its recorded crate name `{v}` is not an identifier"
                    ));
                }
                args.extend([opt.to_owned(), v]);
            }
            "-l" => {
                let v = value()?;
                // A library name; a path would be read (and bundled).
                if v.contains('/') || v.contains('\\') {
                    return Err(format!("its recorded command line links `{v}`, a path"));
                }
                args.extend([opt.to_owned(), v]);
            }
            _ if KEPT_WITH_VALUE.contains(&opt) => {
                let v = value()?;
                args.extend([opt.to_owned(), v]);
            }
            _ if KEPT_FLAGS.contains(&opt) && inline.is_none() => args.push(opt.to_owned()),
            _ if a.starts_with('-') => {
                return Err(format!(
                    "its recorded command line has `{a}`, which cargo-seed does not replay"
                ));
            }
            _ if !replaced_src && (Path::new(a) == src_path || inv.cwd.join(a) == src_path) => {
                replaced_src = true;
                args.push(show(stub));
            }
            _ => {
                return Err(format!(
                    "its recorded command line has a second input `{a}`"
                ))
            }
        }
    }
    if !replaced_src {
        return Err("its source file is not on its recorded command line".into());
    }
    args.push(format!("-Clinker={NO_OP_LINKER}"));
    Ok(args)
}

/// A crate name as rustc takes it.
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A recorded dependency path on this machine: absolute and plain, below
/// the build dir once mapped, and there; `None` otherwise.
fn local(recorded: &str, place: &Place) -> Option<PathBuf> {
    let path = Path::new(recorded);
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !plain {
        return None;
    }
    let here = (place.map)(path).unwrap_or_else(|| path.to_owned());
    // A dependency that is not here (one cargo will rebuild) is left out.
    (here.starts_with(place.build_dir) && here.exists()).then_some(here)
}

/// `--name=value` → (`--name`, value); `-Cvalue` → (`-C`, value); the short
/// options with a value (`-C`, `-L`, `-l`, `-A`…) may be glued to it.
fn split_option(a: &str) -> (&str, Option<&str>) {
    if let Some(long) = a.strip_prefix("--") {
        return match long.split_once('=') {
            Some((name, v)) => (&a[..name.len() + 2], Some(v)),
            None => (a, None),
        };
    }
    if a.len() > 2 && a.starts_with('-') && a.is_char_boundary(2) {
        let (opt, v) = a.split_at(2);
        if matches!(opt, "-C" | "-L" | "-l" | "-A" | "-W" | "-D" | "-F") {
            return (opt, Some(v));
        }
    }
    (a, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(version: &str, hash: [u8; 8]) -> Vec<u8> {
        let mut b = b"RSIC".to_vec();
        b.extend([0, 0, version.len() as u8]);
        b.extend(version.as_bytes());
        b.extend(hash);
        b.extend(b"rest of the graph");
        b
    }

    #[test]
    fn patches_only_a_header_of_the_same_layout_and_version() {
        let d = tempfile::tempdir().unwrap();
        let ours = d.path().join("ours.bin");
        fs::write(&ours, header_bytes("1.95.0 (x)", [9; 8])).unwrap();
        let expected = read_header(&ours).unwrap().unwrap();
        assert_eq!(expected.options_hash, [9; 8]);

        let theirs = d.path().join("theirs.bin");
        fs::write(&theirs, header_bytes("1.95.0 (x)", [1; 8])).unwrap();
        assert!(patch(&theirs, &expected).unwrap());
        assert_eq!(
            fs::read(&theirs).unwrap(),
            header_bytes("1.95.0 (x)", [9; 8])
        );

        let other = d.path().join("other.bin");
        let original = header_bytes("1.94.0 (y)", [1; 8]);
        fs::write(&other, &original).unwrap();
        assert!(!patch(&other, &expected).unwrap());
        assert_eq!(
            fs::read(&other).unwrap(),
            original,
            "another rustc's file is left alone"
        );

        let junk = d.path().join("junk.bin");
        fs::write(&junk, b"RS").unwrap();
        assert!(!patch(&junk, &expected).unwrap());
        assert_eq!(fs::read(&junk).unwrap(), b"RS");
    }

    fn invocation(args: &[&str]) -> Invocation {
        Invocation {
            cwd: "/ci/ws".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            scheme: None,
        }
    }

    /// This machine's checkout in the tests: a directory holding the one
    /// dependency the recorded command line names (`greet`).
    fn here() -> &'static Path {
        static HERE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        HERE.get_or_init(|| {
            let dir = std::env::temp_dir()
                .join(format!("cargo-seed-replay-{}", std::process::id()))
                .join("ws");
            let deps = dir.join("target/debug/deps");
            fs::create_dir_all(&deps).unwrap();
            fs::write(deps.join("libgreet-1.rlib"), "").unwrap();
            dir
        })
    }

    fn replay(inv: &Invocation) -> Result<Vec<String>, String> {
        replay_args_here(inv, Path::new("/ci/ws/app/src/main.rs"))
    }

    fn replay_args_here(inv: &Invocation, src: &Path) -> Result<Vec<String>, String> {
        let moved = |p: &Path| Some(here().join(p.strip_prefix("/ci/ws").ok()?));
        let build_dir = here().join("target");
        let place = Place {
            cwd: here(),
            build_dir: &build_dir,
            map: &moved,
        };
        let args = replay_args(
            inv,
            src,
            Path::new("/s/stub.rs"),
            Path::new("/s/out"),
            Path::new("/s/inc"),
            &place,
        )?;
        // Shown as if this machine's checkout were `/here/ws`.
        let shown = here().to_str().unwrap();
        Ok(args.iter().map(|a| a.replace(shown, "/here/ws")).collect())
    }

    const CARGO_ARGS: &[&str] = &[
        "--crate-name",
        "app",
        "--edition=2021",
        "app/src/main.rs",
        "--error-format=json",
        "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
        "--crate-type",
        "bin",
        "--emit=dep-info,link",
        "-C",
        "embed-bitcode=no",
        "-C",
        "debuginfo=2",
        "--check-cfg",
        "cfg(docsrs,test)",
        "-C",
        "metadata=abc",
        "--out-dir",
        "/ci/ws/target/debug/deps",
        "-C",
        "incremental=/ci/ws/target/debug/incremental",
        "-L",
        "dependency=/ci/ws/target/debug/deps",
        "--extern",
        "greet=/ci/ws/target/debug/deps/libgreet-1.rlib",
        "-C",
        "link-arg=-fuse-ld=lld",
    ];

    #[test]
    fn replay_changes_only_untracked_arguments() {
        let args = replay(&invocation(CARGO_ARGS)).unwrap();
        assert_eq!(
            args,
            [
                "--crate-name",
                "app",
                "--edition",
                "2021",
                "/s/stub.rs",
                "--error-format",
                "json",
                "--json",
                "diagnostic-rendered-ansi,artifacts,future-incompat",
                "--crate-type",
                "bin",
                "--emit=dep-info,link",
                "-Cembed-bitcode=no",
                "-Cdebuginfo=2",
                "--check-cfg",
                "cfg(docsrs,test)",
                "-Cmetadata=abc",
                "--out-dir",
                "/s/out",
                "-Cincremental=/s/inc",
                "-Ldependency=/here/ws/target/debug/deps",
                "--extern",
                "greet=/here/ws/target/debug/deps/libgreet-1.rlib",
                "-Clinker=/bin/true",
            ]
        );
        let elsewhere = replay_args_here(&invocation(CARGO_ARGS), Path::new("/elsewhere.rs"));
        assert!(elsewhere.is_err());
    }

    #[test]
    fn replay_reads_dependencies_only_below_the_build_dir() {
        let mut args = CARGO_ARGS.to_vec();
        args.extend([
            "--extern",
            "passwd=/etc/passwd",
            "--extern",
            "up=/ci/ws/target/../../../etc/passwd",
            "--extern",
            "rel=target/debug/deps/librel.rlib",
            "--extern",
            "../x=/ci/ws/target/debug/deps/libx.rlib",
            "--extern",
            "noprelude:y=/ci/ws/target/debug/deps/liby.rlib",
            "--extern",
            "proc_macro",
            "-L",
            "dependency=/etc",
            "-Lnative=/ci/ws/target/debug/build/x/out",
        ]);
        let replayed = replay(&invocation(&args)).unwrap();
        let deps: Vec<&String> = replayed
            .iter()
            .zip(replayed.iter().skip(1))
            .filter(|(o, _)| *o == "--extern" || o.starts_with("-L"))
            .map(|(o, v)| if o == "--extern" { v } else { o })
            .collect();
        assert_eq!(
            deps,
            [
                "-Ldependency=/here/ws/target/debug/deps",
                "greet=/here/ws/target/debug/deps/libgreet-1.rlib",
                "proc_macro",
            ],
            "{replayed:?}"
        );
        assert_eq!(extern_crates(&replayed), ["greet", "proc_macro"]);
    }

    #[test]
    fn replay_refuses_what_names_a_program_a_plugin_or_an_output() {
        let hostile: &[&[&str]] = &[
            &["-C", "linker-plugin-lto=/tmp/x.so"],
            &["-C", "llvm-args=-info-output-file=/tmp/x"],
            &["--codegen", "profile-use=/etc/passwd"],
            &["-Zcodegen-backend=/tmp/evil.so"],
            &["-Z", "llvm-plugins=/tmp/evil.so"],
            &["--emit=link=/tmp/evil"],
            &["--emit", "obj=/tmp/evil.o"],
            &["-o", "/tmp/evil"],
            &["--sysroot", "/tmp/evil"],
            &["--print", "cfg=/tmp/evil"],
            &["--target", "/tmp/evil.json"],
            &["-l", "static:+verbatim=/etc/passwd"],
            &["--crate-name", "../x"],
            &["@/tmp/args"],
            &["/etc/passwd"],
            &["-C"],
        ];
        for extra in hostile {
            let mut args = CARGO_ARGS.to_vec();
            args.extend_from_slice(extra);
            let err = replay(&invocation(&args)).expect_err(&format!("{extra:?} was replayed"));
            assert!(!err.is_empty());
        }
        // What only matters for linking is dropped, and linking goes nowhere.
        let mut args = CARGO_ARGS.to_vec();
        args.extend([
            "-C",
            "linker=/tmp/evil",
            "--codegen",
            "link-args=-Wl,-x",
            "-Clinker-flavor=gcc",
        ]);
        let replayed = replay(&invocation(&args)).unwrap();
        assert!(
            !replayed
                .iter()
                .any(|a| a.contains("evil") || a.contains("link-arg") || a.contains("flavor")),
            "{replayed:?}"
        );
        assert_eq!(replayed.last().unwrap(), "-Clinker=/bin/true");
    }
}
