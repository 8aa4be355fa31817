use super::*;
use crate::snapshot::manifest::{Blob, Check, Unit};
use crate::snapshot::secrets::SecretNames;

/// itoa's fingerprint as cargo 1.95 wrote it under `CARGO_HOME=/root/.cargo`
/// (pinned in `fingerprint`'s tests), and its source file.
const ITOA: &str = r#"{"rustc":7458672600737419911,"features":"[]","declared_features":"[\"no-panic\"]","target":18426369533666673425,"profile":15657897354478470176,"path":3355421602437736376,"deps":[],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/itoa-d62e748016f8bd79/dep-lib-itoa","checksum":false}}],"rustflags":[],"config":8247474407144887393,"compile_kind":0}"#;
const ITOA_SRC: &str =
    "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/itoa-1.0.18/src/lib.rs";

/// A manifest of CI at `/ci/ws` with `CARGO_HOME` `/root/.cargo`, without units.
fn empty_manifest() -> Manifest {
    serde_json::from_value(serde_json::json!({
        "schema": crate::snapshot::manifest::SCHEMA, "commit": "c", "created": 0,
        "toolchain": {"verbose_version": "", "release": "", "host": ""},
        "target": "", "profile": "dev", "profile_dir": "debug",
        "workspace_root": "/ci/ws", "cargo_home": "/root/.cargo",
        "build_dir": "/ci/ws/target", "dirty": false, "units": [],
    }))
    .unwrap()
}

fn unit(id: &str, name: &str, fields: &str, src: Option<&str>) -> Unit {
    let hash = Fields::parse(fields).unwrap().hash();
    let record = FingerprintRecord {
        file: "f".into(),
        hash: fingerprint::to_hash_file(hash),
        fields: fields.into(),
        env: vec![],
    };
    Unit {
        id: id.into(),
        name: name.into(),
        kind: UnitKind::Compile,
        host: false,
        package_id: Some(format!(
            "registry+https://github.com/rust-lang/crates.io-index#{id}@1.0.0"
        )),
        blob: Blob {
            sha256: String::new(),
            size: 0,
            unpacked: 0,
        },
        deps: vec![],
        check: Check::None,
        baked: vec![],
        // As publishing stores it: no values.
        fingerprint: Some(crate::snapshot::secrets::redact(
            &record,
            &SecretNames::default(),
        )),
        src_path: src.map(PathBuf::from),
        rustc: None,
        path_values: Vec::new(),
    }
}

#[test]
fn a_watched_variable_with_ci_s_value_is_proven_and_rewritten_and_one_without_is_not() {
    let itoa_hash = Fields::parse(ITOA).unwrap().hash();
    // A registry build script's run that depends on itoa and watches CC,
    // which CI set to gcc-13: its hash changes when itoa's does.
    let run = format!(
        r#"{{"rustc":7458672600737419911,"features":"","declared_features":"","target":0,"profile":0,"path":0,"deps":[[1,"build_script_build",false,{itoa_hash}]],"local":[{{"RerunIfEnvChanged":{{"var":"CC","val":"gcc-13"}}}}],"rustflags":[],"config":0,"compile_kind":0}}"#
    );
    let mut m = empty_manifest();
    m.units
        .push(unit("itoa-1", "lib itoa", ITOA, Some(ITOA_SRC)));
    m.units
        .push(unit("cc-2", "run-build-script cc", &run, None));
    let stored = m.units[1].fingerprint.clone().unwrap();
    assert!(!stored.fields.contains("gcc-13"), "{}", stored.fields);
    let moves = Moves::new(
        &m,
        Path::new("/home/dev/.cargo"),
        Path::new("/home/dev/ws"),
        Path::new("/home/dev/ws/target"),
        None,
    );

    let same = |var: &str| (var == "CC").then(|| OsString::from("gcc-13"));
    let proven = plan(&m, &moves, &same);
    assert!(proven.failed.is_empty(), "{:?}", proven.failed);
    let new_itoa = parse_hash_file(&proven.rewrites["itoa-1"].hash).unwrap();
    let rewritten = &proven.rewrites["cc-2"];
    let fields = Fields::parse(&rewritten.fields).unwrap();
    assert_eq!(
        fields.watched_env().collect::<Vec<_>>(),
        [("CC", Some("gcc-13"))]
    );
    assert_eq!(fields.dep_hashes().collect::<Vec<_>>(), [new_itoa]);
    assert_eq!(Some(fields.hash()), parse_hash_file(&rewritten.hash));
    // What cargo computes here, from scratch: the run's fields with the
    // local itoa's hash and this machine's CC.
    let expected = run.replace(&itoa_hash.to_string(), &new_itoa.to_string());
    assert_eq!(rewritten.fields, expected);

    for (here, why) in [
        (Some("clang"), EnvMismatch::Differs { var: "CC".into() }),
        (None, EnvMismatch::UnsetHere { var: "CC".into() }),
    ] {
        let other = move |var: &str| here.filter(|_| var == "CC").map(OsString::from);
        let refused = plan(&m, &moves, &other);
        assert_eq!(refused.failed.get("cc-2"), Some(&Unrelocatable::Env(why)));
        assert!(!refused.rewrites.contains_key("cc-2"));
        assert!(refused.rewrites.contains_key("itoa-1"));
    }
}

#[test]
fn nested_directories_map_to_their_own_counterparts() {
    let moves = Moves {
        pairs: vec![
            ("/ci/ws/target".into(), "/home/me/t".into()),
            ("/ci/ws".into(), "/home/me/app".into()),
            ("/ci/.cargo".into(), "/home/me/.cargo".into()),
        ],
    };
    assert_eq!(
        moves.map(Path::new("/ci/ws/target/debug/x")),
        Some(PathBuf::from("/home/me/t/debug/x"))
    );
    assert_eq!(
        moves.map(Path::new("/ci/ws/src/lib.rs")),
        Some(PathBuf::from("/home/me/app/src/lib.rs"))
    );
    assert_eq!(moves.map(Path::new("/usr/include/x.h")), None);
    assert_eq!(
        moves.map_text("a: /ci/ws/src/a.rs /ci/.cargo/registry/x.rs\n"),
        "a: /home/me/app/src/a.rs /home/me/.cargo/registry/x.rs\n"
    );
    // A name that only starts like a moved directory is another one.
    assert_eq!(
        moves.map_text("/ci/ws-tools/a /ci/ws.old /ci/ws2 /ci/ws:/ci/ws\n/ci/ws"),
        "/ci/ws-tools/a /ci/ws.old /ci/ws2 /home/me/app:/home/me/app\n/home/me/app"
    );
}

#[test]
fn debugger_scripts_hold_only_plain_paths() {
    let maps: Vec<(PathBuf, PathBuf)> = vec![
        ("/ci/ws".into(), "/home/me/app".into()),
        ("/ci/x\nshell touch /tmp/pwned".into(), "/home/me/x".into()),
        ("/ci/a b".into(), "/home/me/c".into()),
    ];
    let (gdb, lldb, left_out) = debugger_scripts(&maps);
    assert_eq!(gdb.lines().count(), 2, "{gdb}");
    assert!(
        gdb.ends_with("set substitute-path /ci/ws /home/me/app\n"),
        "{gdb}"
    );
    assert!(
        lldb.ends_with("settings append target.source-map /ci/ws /home/me/app\n"),
        "{lldb}"
    );
    assert_eq!(left_out.len(), 2);
}

#[test]
fn text_is_mapped_in_one_pass_across_windows_within_its_bound() {
    // A Docker build at /app, seeded at /home/me/app: the local path holds
    // CI's, and must not be replaced again.
    let moves = Moves {
        pairs: vec![
            ("/app/target".into(), "/home/me/app/target".into()),
            ("/app".into(), "/home/me/app".into()),
        ],
    };
    assert_eq!(
        moves.map_text("/app/src/a.rs /app/target/debug/x.rlib \n"),
        "/home/me/app/src/a.rs /home/me/app/target/debug/x.rlib \n"
    );
    // Matches that straddle the window are found whole.
    let line = "x: /app/target/debug/deps/libx.rlib\n";
    let text = line.repeat(2 * WINDOW / line.len() + 3);
    let mapped = moves.map_text(&text);
    assert_eq!(mapped, text.replace("/app/", "/home/me/app/"));
    assert_eq!(moves.growth_factor(), 3);

    // A text that is nothing but a short directory grows by the factor,
    // which bounds it; a bound below that stops the writing there.
    let moves = Moves {
        pairs: vec![("/q".into(), "/a/much/longer/local/path".into())],
    };
    let factor = moves.growth_factor();
    assert_eq!(factor, 13);
    let bomb = "/q".repeat(1000);
    let mut out = Vec::new();
    let (n, replaced) = moves
        .map_stream(bomb.as_bytes(), &mut out, 1000 * 2 * factor)
        .unwrap();
    assert!(replaced);
    assert_eq!(n, out.len() as u64);
    assert_eq!(n, 1000 * 25);
    let mut out = Vec::new();
    let err = moves
        .map_stream(bomb.as_bytes(), &mut out, 5000)
        .unwrap_err();
    assert!(err.get_ref().is_some_and(|e| e.is::<Overflow>()), "{err}");
    assert!(out.len() <= 5000, "{}", out.len());
}

#[test]
fn a_long_chain_of_fingerprints_is_relocated_without_deep_recursion() {
    // Each unit's fingerprint depends on the one before: a manifest can
    // make the chain as long as its size allows.
    let n = 20_000;
    let mut m = empty_manifest();
    // The first is a registry crate, whose source path moves with
    // CARGO_HOME: every hash above it changes.
    let src = "/root/.cargo/registry/src/index/c-1.0.0/src/lib.rs";
    let mut previous: Option<u64> = None;
    for i in 0..n {
        let path = if i == 0 {
            fingerprint::hash_path(Path::new(src))
        } else {
            0
        };
        let deps = previous
            .map(|h| format!(r#"[[1,"x",false,{h}]]"#))
            .unwrap_or_else(|| "[]".into());
        let fields = format!(
            r#"{{"rustc":1,"features":"","declared_features":"","target":{i},"profile":0,"path":{path},"deps":{deps},"local":[],"rustflags":[],"config":0,"compile_kind":0}}"#
        );
        previous = Some(Fields::parse(&fields).unwrap().hash());
        m.units.push(unit(
            &format!("c{i}-1"),
            &format!("lib c{i}"),
            &fields,
            (i == 0).then_some(src),
        ));
    }
    let moves = Moves::new(
        &m,
        Path::new("/home/dev/.cargo"),
        Path::new("/home/dev/ws"),
        Path::new("/home/dev/ws/target"),
        None,
    );
    let proven = plan(&m, &moves, &|_| None);
    assert!(
        proven.failed.is_empty(),
        "{:?}",
        proven.failed.first_key_value()
    );
    assert_eq!(
        proven.rewrites.len(),
        n,
        "every hash above the first changes"
    );
}

#[test]
fn a_package_s_string_is_given_to_its_run_and_its_dependents_get_the_new_hash() {
    // A build-script run judged by its package's newest mtime, a library
    // over it, and a unit cargo-seed cannot read that depends on neither.
    let run = r#"{"rustc":1,"features":"","declared_features":"","target":0,"profile":0,"path":0,"deps":[],"local":[{"Precalculated":"1796494298.422520041s (src/lib.rs)"}],"rustflags":[],"config":0,"compile_kind":0}"#;
    let run_hash = Fields::parse(run).unwrap().hash();
    let lib = format!(
        r#"{{"rustc":1,"features":"[]","declared_features":"[]","target":2,"profile":3,"path":4,"deps":[[5,"stamp",false,{run_hash}]],"local":[{{"CheckDepInfo":{{"dep_info":"debug/.fingerprint/stamp-2/dep-lib-stamp","checksum":false}}}}],"rustflags":[],"config":6,"compile_kind":0}}"#
    );
    let mut m = empty_manifest();
    m.units
        .push(unit("stamp-1", "run-build-script stamp", run, None));
    m.units.push(unit("stamp-2", "lib stamp", &lib, None));
    m.units[1].deps = vec!["stamp-1".into()];
    let mut odd = unit("odd-3", "lib odd", run, None);
    let record = odd.fingerprint.as_mut().unwrap();
    record.fields = "{}".into();
    record.hash = fingerprint::to_hash_file(7);
    m.units.push(odd);
    // Nothing moved: this checkout is CI's.
    let moves = Moves::new(
        &m,
        Path::new("/root/.cargo"),
        Path::new("/ci/ws"),
        Path::new("/ci/ws/target"),
        None,
    );
    assert!(moves.is_empty());
    let here = "1800000000.000000001s (build.rs)";
    let packages = BTreeMap::from([(UnitId::from("stamp-1"), here.to_owned())]);
    let planned = plan_with_packages(&m, &moves, &|_| None, &packages, false);
    assert!(planned.failed.is_empty(), "{:?}", planned.failed);
    let new_run = &planned.rewrites["stamp-1"];
    assert!(new_run.fields.contains(here), "{}", new_run.fields);
    let new_hash = parse_hash_file(&new_run.hash).unwrap();
    assert_ne!(new_hash, run_hash);
    let new_lib = Fields::parse(&planned.rewrites["stamp-2"].fields).unwrap();
    assert_eq!(new_lib.dep_hashes().collect::<Vec<_>>(), [new_hash]);
    // Nothing depends on it: it is neither rewritten nor failed.
    assert!(!planned.rewrites.contains_key("odd-3"));
}
