//! Session headers and replay command lines.

use std::fs;

use super::args::replay_args;
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
        fs::write(deps.join("libgreet-1.rlib"), "!<arch>\n").unwrap();
        fs::write(deps.join("libgreet-1.rmeta"), "not rustc's").unwrap();
        fs::write(deps.join("libshout-2.so"), "\x7fELF").unwrap();
        fs::write(deps.join("libfake-3.rlib"), "\x7fELF").unwrap();
        dir
    })
}

fn replay(inv: &Invocation) -> Result<Vec<String>, String> {
    replay_args_here(inv, Path::new("/ci/ws/app/src/main.rs"))
}

fn replay_args_here(inv: &Invocation, src: &Path) -> Result<Vec<String>, String> {
    replay_loading(inv, src, &Libraries::all()).map(|r| r.args)
}

fn replay_loading(
    inv: &Invocation,
    src: &Path,
    libraries: &Libraries,
) -> Result<super::args::ReplayArgs, String> {
    let moved = |p: &Path| Some(here().join(p.strip_prefix("/ci/ws").ok()?));
    let build_dir = here().join("target");
    let place = Place {
        cwd: here(),
        build_dir: &build_dir,
        map: &moved,
        libraries,
    };
    let args = replay_args(
        inv,
        src,
        Path::new("/s/stub.rs"),
        Path::new("/s/out"),
        Path::new("/s/inc"),
        &place,
    )
    .map_err(|e| e.to_string())?;
    // Shown as if this machine's checkout were `/here/ws`.
    let shown = here().to_str().unwrap();
    Ok(super::args::ReplayArgs {
        args: args
            .args
            .iter()
            .map(|a| a.replace(shown, "/here/ws"))
            .collect(),
        withheld: args.withheld,
    })
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
        &["--cfg", "@/tmp/args"],
        &["--check-cfg", "@/tmp/args"],
        &["-W", "@/tmp/args"],
        &["--crate-type", "@../args"],
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

#[test]
fn an_argument_file_is_never_passed_on() {
    for extra in [["--cfg", "@/tmp/args"], ["--edition", "@args"]] {
        let mut args = CARGO_ARGS.to_vec();
        args.extend(extra);
        let err = replay(&invocation(&args)).unwrap_err();
        assert!(err.contains("expand from a file"), "{err}");
    }
}

#[test]
fn an_unsigned_replay_sees_only_crate_metadata() {
    let mut args = CARGO_ARGS.to_vec();
    args.extend([
        "--extern",
        "shout=/ci/ws/target/debug/deps/libshout-2.so",
        "--extern",
        "fake=/ci/ws/target/debug/deps/libfake-3.rlib",
    ]);
    let scratch = tempfile::tempdir().unwrap();
    let libraries = Libraries::metadata_only(scratch.path().join("libs"));
    let replayed = replay_loading(
        &invocation(&args),
        Path::new("/ci/ws/app/src/main.rs"),
        &libraries,
    )
    .unwrap();
    // The proc-macro and the library that is not what its name says are
    // withheld; the search path is a mirror of the metadata alone.
    assert_eq!(replayed.withheld, ["shout", "fake"]);
    assert_eq!(extern_crates(&replayed.args), ["greet"]);
    let mirror = scratch.path().join("libs/0");
    assert!(
        replayed
            .args
            .contains(&format!("-Ldependency={}", mirror.display())),
        "{:?}",
        replayed.args
    );
    let mut mirrored: Vec<String> = fs::read_dir(&mirror)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    mirrored.sort();
    assert_eq!(mirrored, ["libgreet-1.rlib"]);

    // Signed: everything the build would load.
    let all = replay_loading(
        &invocation(&args),
        Path::new("/ci/ws/app/src/main.rs"),
        &Libraries::all(),
    )
    .unwrap();
    assert!(all.withheld.is_empty());
    assert_eq!(extern_crates(&all.args), ["greet", "shout", "fake"]);
}

/// `CARGO_ARGS` as cargo compiles the library `greet` instead of the binary.
fn library_args() -> Vec<&'static str> {
    CARGO_ARGS
        .iter()
        .map(|a| match *a {
            "app" => "greet",
            "bin" => "lib",
            "metadata=abc" => "extra-filename=-1",
            other => other,
        })
        .collect()
}

#[test]
fn a_library_is_named_by_its_crate_and_extra_filename() {
    let lib = super::library(&invocation(&library_args())).unwrap();
    assert_eq!(lib.out_dir, Path::new("/ci/ws/target/debug/deps"));
    assert_eq!(lib.files, ["libgreet-1.rlib", "libgreet-1.rmeta"]);
    assert!(!super::reads_dependency_paths(&invocation(&library_args())));
    // A binary, a test harness and a proc-macro are no library a
    // dependent's `--extern` names as an rlib.
    assert_eq!(super::library(&invocation(CARGO_ARGS)), None);
    assert!(super::reads_dependency_paths(&invocation(CARGO_ARGS)));
    let test: Vec<&str> = library_args().into_iter().chain(["--test"]).collect();
    assert_eq!(super::library(&invocation(&test)), None);
    assert!(super::reads_dependency_paths(&invocation(&test)));
    let pm: Vec<&str> = library_args()
        .into_iter()
        .map(|a| if a == "lib" { "proc-macro" } else { a })
        .collect();
    assert_eq!(super::library(&invocation(&pm)), None);
    // A name that would climb out of the directory is none.
    let climbing: Vec<&str> = library_args()
        .into_iter()
        .map(|a| {
            if a == "extra-filename=-1" {
                "extra-filename=/../../x"
            } else {
                a
            }
        })
        .collect();
    assert_eq!(super::library(&invocation(&climbing)), None);
}

#[test]
fn a_stand_in_bundles_no_native_library_and_keeps_no_session() {
    let args: Vec<String> = [
        "-l",
        "static=z",
        "-lfoo",
        "-Cincremental=/s/inc",
        "-Copt-level=0",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        super::args::without_native_and_incremental(&args),
        ["-Copt-level=0"]
    );
}
