use super::*;

#[test]
fn unit_hash_from_file_names() {
    assert_eq!(
        unit_hash("libgreet-d2c3ef4c070f78bb.rmeta"),
        Some("d2c3ef4c070f78bb")
    );
    assert_eq!(unit_hash("app-3f5d035ce61743c3"), Some("3f5d035ce61743c3"));
    assert_eq!(
        unit_hash("build_script_build-6b6761007ad40275.d"),
        Some("6b6761007ad40275")
    );
    assert_eq!(unit_hash("libgreet.rlib"), None);
    assert_eq!(unit_hash("serde-json"), None);
}

#[test]
fn flat_units_own_only_their_paths() {
    let id = "greet-d2c3ef4c070f78bb";
    let own = |p: &str, dir| Layout::Flat.owns(id, Path::new(p), dir);
    assert!(own(".fingerprint/greet-d2c3ef4c070f78bb/lib-greet", false));
    assert!(own("build/greet-d2c3ef4c070f78bb/out/x.rs", false));
    assert!(own("deps/libgreet-d2c3ef4c070f78bb.rlib", false));
    assert!(own("deps", true));
    assert!(!own("deps", false));
    assert!(!own("deps/libitoa-d62e748016f8bd79.rlib", false));
    assert!(!own(".fingerprint/itoa-d62e748016f8bd79/lib-itoa", false));
    assert!(!own("deps/sub/libgreet-d2c3ef4c070f78bb.rlib", false));
    assert!(!own("build/greet/d2c3ef4c070f78bb/out/x.rs", false));
    assert!(!own("app", false));
    assert!(!own("incremental/greet-2bym/s-1/dep-graph.bin", false));
    assert!(!own("../deps/libgreet-d2c3ef4c070f78bb.rlib", false));
    let inc = "incremental/greet-2bym";
    for layout in [Layout::Flat, Layout::PerUnit] {
        assert!(layout.owns(
            inc,
            Path::new("incremental/greet-2bym/s-1/dep-graph.bin"),
            false
        ));
        assert!(!layout.owns(
            inc,
            Path::new("incremental/app-31li/s-1/dep-graph.bin"),
            false
        ));
        assert!(!layout.owns(inc, Path::new("build/greet-2bym/x"), false));
    }
}

#[test]
fn per_unit_units_own_only_their_directory() {
    let id = "greet-d2c3ef4c070f78bb";
    let own = |p: &str, dir| Layout::PerUnit.owns(id, Path::new(p), dir);
    assert!(own(
        "build/greet/d2c3ef4c070f78bb/fingerprint/lib-greet",
        false
    ));
    assert!(own(
        "build/greet/d2c3ef4c070f78bb/out/libgreet-d2c3ef4c070f78bb.rlib",
        false
    ));
    assert!(own("build/greet/d2c3ef4c070f78bb/run/stdout", false));
    assert!(own("build/greet/d2c3ef4c070f78bb", true));
    assert!(own("build/greet", true));
    assert!(own("build", true));
    assert!(!own("build/greet", false));
    assert!(!own("build/itoa", true));
    assert!(!own("build/greet/d62e748016f8bd79/out/x", false));
    assert!(!own("build/itoa/d2c3ef4c070f78bb/out/x", false));
    assert!(!own("deps/libgreet-d2c3ef4c070f78bb.rlib", false));
    assert!(!own(".fingerprint/greet-d2c3ef4c070f78bb/lib-greet", false));
    assert!(!own("build/greet/../itoa/d2c3ef4c070f78bb/x", false));
    assert!(!own("/build/greet/d2c3ef4c070f78bb/x", false));
}

#[test]
fn where_each_layout_keeps_things() {
    let id = "gen-c0d324aacf139a66";
    assert_eq!(
        Layout::Flat.fingerprint_dir(id),
        Path::new(".fingerprint/gen-c0d324aacf139a66")
    );
    assert_eq!(
        Layout::PerUnit.fingerprint_dir(id),
        Path::new("build/gen/c0d324aacf139a66/fingerprint")
    );
    assert_eq!(
        Layout::PerUnit.build_script_dir(id),
        Path::new("build/gen/c0d324aacf139a66")
    );
    assert!(Layout::Flat.is_script_output(Path::new("build/gen-c0d324aacf139a66/output")));
    assert!(!Layout::Flat.is_script_output(Path::new("build/gen-c0d324aacf139a66/out/output")));
    assert!(Layout::PerUnit.is_script_output(Path::new("build/gen/c0d324aacf139a66/run/stdout")));
    assert!(!Layout::PerUnit.is_script_output(Path::new("build/gen/c0d324aacf139a66/out/stdout")));
    assert!(Layout::PerUnit
        .is_fingerprint_file(Path::new("build/gen/c0d324aacf139a66/fingerprint/lib-gen")));
    assert!(!Layout::PerUnit
        .is_fingerprint_file(Path::new("build/gen/c0d324aacf139a66/out/fingerprint")));
    assert_eq!(
        Layout::PerUnit.unit_entry(Path::new("build/gen/c0d324aacf139a66/out/x.rs")),
        Path::new("build/gen/c0d324aacf139a66")
    );
    assert_eq!(
        Layout::Flat.unit_entry(Path::new("build/gen-c0d324aacf139a66/out/x.rs")),
        Path::new("build/gen-c0d324aacf139a66")
    );
    assert_eq!(
        Layout::PerUnit.hash_of_file(Path::new("build/app/ae451c17e96bca75/out/app")),
        Some("ae451c17e96bca75".to_owned())
    );
    assert_eq!(
        Layout::Flat.hash_of_file(Path::new("deps/libgreet-d2c3ef4c070f78bb.rlib")),
        Some("d2c3ef4c070f78bb".to_owned())
    );
    assert_eq!(
        Layout::Flat.hash_of_file(Path::new("build/gen-c0d324aacf139a66/out")),
        Some("c0d324aacf139a66".to_owned())
    );
    assert_eq!(Layout::PerUnit.hash_of_file(Path::new("app")), None);
}

#[test]
fn detects_the_layout_cargo_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert_eq!(Layout::detect(p), None);
    fs::create_dir_all(p.join(".fingerprint/greet-d2c3ef4c070f78bb")).unwrap();
    assert_eq!(Layout::detect(p), Some(Layout::Flat));
    fs::create_dir_all(p.join("build/greet/d2c3ef4c070f78bb/fingerprint")).unwrap();
    assert_eq!(Layout::detect(p), Some(Layout::PerUnit));
    assert_eq!(
        Layout::PerUnit.unit_ids(p).unwrap(),
        vec!["greet-d2c3ef4c070f78bb".to_owned()]
    );
}

#[test]
fn package_names_from_ids() {
    assert_eq!(
        package_name("registry+https://github.com/rust-lang/crates.io-index#itoa@1.0.18"),
        "itoa"
    );
    assert_eq!(package_name("path+file:///tmp/ws1/gen#0.1.0"), "gen");
    assert_eq!(
        package_name("path+file:///tmp/ws1/my-dir#my-pkg@0.1.0"),
        "my-pkg"
    );
}

#[test]
fn a_unit_is_removed_whole_and_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for f in [
        "build/greet/d2c3ef4c070f78bb/fingerprint/lib-greet",
        "build/greet/d2c3ef4c070f78bb/out/libgreet-d2c3ef4c070f78bb.rlib",
        "build/greet/1111111111111111/out/x",
        "build/itoa/d2c3ef4c070f78bb/out/x",
        "incremental/greet-2bym/s-1/dep-graph.bin",
    ] {
        fs::create_dir_all(p.join(f).parent().unwrap()).unwrap();
        fs::write(p.join(f), "").unwrap();
    }
    assert_eq!(
        Layout::PerUnit.entries_of(p, "greet-d2c3ef4c070f78bb"),
        vec![PathBuf::from("build/greet/d2c3ef4c070f78bb")]
    );
    assert_eq!(
        Layout::PerUnit.entries_of(p, "incremental/greet-2bym"),
        vec![PathBuf::from("incremental/greet-2bym")]
    );
    for f in [
        ".fingerprint/greet-d2c3ef4c070f78bb/lib-greet",
        "deps/libgreet-d2c3ef4c070f78bb.rlib",
        "deps/libitoa-1111111111111111.rlib",
    ] {
        fs::create_dir_all(p.join(f).parent().unwrap()).unwrap();
        fs::write(p.join(f), "").unwrap();
    }
    assert_eq!(
        Layout::Flat.entries_of(p, "greet-d2c3ef4c070f78bb"),
        vec![
            PathBuf::from(".fingerprint/greet-d2c3ef4c070f78bb"),
            PathBuf::from("deps/libgreet-d2c3ef4c070f78bb.rlib")
        ]
    );
}
