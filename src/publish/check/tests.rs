use super::*;
use crate::cargo::depinfo::rustc_env_deps;
use crate::snapshot::manifest::{FingerprintRecord, UnitKind};

/// When the tests' compiles happened.
const COMPILED: u64 = 1_700_000_000;

fn test_roots(dir: &Path, build: &Path) -> Roots {
    Roots::new(&dir.join("ws"), None, &dir.join("home"), build)
}

/// Sets a file's mtime to `secs` after the epoch: tests order files in
/// time explicitly, as no sleep can on a file system with 1-second
/// timestamps.
fn set_mtime(path: &Path, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

#[test]
fn env_deps_that_embed_machine_paths() {
    let d = "/ci/ws/target/debug/deps/app-1: src/main.rs\n\n\
             # env-dep:CARGO_MANIFEST_DIR=/ci/ws/app\n\
             # env-dep:OUT_DIR=/ci/ws/target/debug/build/app-2/out\n\
             # env-dep:REG=/ci/home/registry/src/x\n\
             # env-dep:GREETING=hi\n\
             # env-dep:UNSET\n";
    let env = rustc_env_deps(d);
    assert_eq!(env.len(), 5);
    assert_eq!(env[4], ("UNSET".to_owned(), None));
    let baked = baked_paths(
        &env,
        Path::new("/ci/ws"),
        Path::new("/ci/home"),
        Path::new("/ci/ws/target"),
    );
    assert_eq!(
        baked,
        vec![
            BakedPath {
                var: "CARGO_MANIFEST_DIR".into(),
                under: BakedRoot::Workspace
            },
            BakedPath {
                var: "REG".into(),
                under: BakedRoot::CargoHome
            },
        ]
    );
}

#[test]
fn a_longer_name_is_not_under_a_root() {
    let env = [
        (
            "HOME_DIR".to_owned(),
            Some("/x/ci-home/git/embed".to_owned()),
        ),
        ("DATA".to_owned(), Some("/x/ci/target-data/f".to_owned())),
    ];
    let baked = baked_paths(
        &env,
        Path::new("/x/ci"),
        Path::new("/x/ci-home"),
        Path::new("/x/ci/target"),
    );
    // `target-data` is in the workspace, not the build dir.
    assert_eq!(
        baked,
        vec![
            BakedPath {
                var: "DATA".into(),
                under: BakedRoot::Workspace
            },
            BakedPath {
                var: "HOME_DIR".into(),
                under: BakedRoot::CargoHome
            },
        ]
    );
}

#[test]
fn an_input_newer_than_its_compile_is_not_vouched_for() {
    let d = tempfile::tempdir().unwrap();
    let (build, pkg) = (d.path().join("target"), d.path().join("ws/app"));
    fs::create_dir_all(build.join("debug/.fingerprint/app-0")).unwrap();
    fs::create_dir_all(pkg.join("src")).unwrap();
    // cargo's encoded dep-info listing src/main.rs (package-relative).
    let mut dep = vec![1, 0, 0, 0, 0xff, 1, 1, 0, 0, 0, 0, 11, 0, 0, 0];
    dep.extend(b"src/main.rs");
    dep.extend([0, 0, 0, 0, 0]);
    let dep_path = build.join("debug/.fingerprint/app-0/dep-bin-app");
    fs::write(pkg.join("src/main.rs"), "fn main() {}").unwrap();
    fs::write(&dep_path, &dep).unwrap();
    // Written, then compiled: cargo's reference is the dep-info's mtime.
    set_mtime(&pkg.join("src/main.rs"), COMPILED - 10);
    set_mtime(&dep_path, COMPILED);
    let unit = LiveUnit {
        kind: UnitKind::Compile,
        package_id: "path+file:///ws/app#0.1.0".into(),
        name: "bin app".into(),
        crate_name: "app".into(),
        package_root: pkg.clone(),
        src_path: None,
        host: false,
    };
    let fp = Fingerprint {
        hash: 0,
        record: FingerprintRecord::default(),
        json: serde_json::from_str(
            r#"{"deps":[],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/app-0/dep-bin-app","checksum":false}}]}"#,
        )
        .unwrap(),
    };
    let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &[]).unwrap();
    let Check::Inputs(inputs) = check else {
        panic!("{check:?}")
    };
    assert_eq!(inputs.package_root, PathBuf::from("app"));
    assert_eq!(inputs.files[0].path, PathBuf::from("src/main.rs"));
    assert!(inputs.files[0].sha256.is_some());

    // Written in the same second as the compile, as a file system with
    // 1-second timestamps shows it: not newer, so cargo calls it fresh
    // and its digest is recorded.
    set_mtime(&pkg.join("src/main.rs"), COMPILED);
    let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &[]).unwrap();
    assert!(matches!(&check, Check::Inputs(_)), "{check:?}");

    // Edited after the compile: the digest would not be of what was built.
    fs::write(pkg.join("src/main.rs"), "fn main() { edited() }").unwrap();
    set_mtime(&pkg.join("src/main.rs"), COMPILED + 1);
    let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &[]).unwrap();
    assert!(
        matches!(&check, Check::Unverifiable { reason } if reason.contains("after")),
        "{check:?}"
    );
}

#[test]
fn build_dir_inputs_are_compared_unless_a_dependency_produced_them() {
    let d = tempfile::tempdir().unwrap();
    let (build, pkg) = (d.path().join("target"), d.path().join("ws/app"));
    fs::create_dir_all(build.join("debug/.fingerprint/app-0")).unwrap();
    fs::create_dir_all(build.join("debug/build/app-1/out")).unwrap();
    fs::create_dir_all(build.join("gen")).unwrap();
    fs::create_dir_all(&pkg).unwrap();
    fs::write(build.join("gen/data.txt"), "made by another tool").unwrap();
    fs::write(build.join("debug/build/app-1/out/x.rs"), "// by build.rs").unwrap();
    let mut dep = vec![1, 0, 0, 0, 0xff, 1, 2, 0, 0, 0];
    for path in ["gen/data.txt", "debug/build/app-1/out/x.rs"] {
        dep.push(1);
        dep.extend((path.len() as u32).to_le_bytes());
        dep.extend(path.as_bytes());
        dep.push(0);
    }
    dep.extend([0, 0, 0, 0]);
    let dep_path = build.join("debug/.fingerprint/app-0/dep-lib-app");
    fs::write(&dep_path, &dep).unwrap();
    // Both inputs were there before the compile.
    set_mtime(&build.join("gen/data.txt"), COMPILED - 10);
    set_mtime(&build.join("debug/build/app-1/out/x.rs"), COMPILED - 10);
    set_mtime(&dep_path, COMPILED);
    let unit = LiveUnit {
        kind: UnitKind::Compile,
        package_id: "path+file:///ws/app#0.1.0".into(),
        name: "lib app".into(),
        crate_name: "app".into(),
        package_root: pkg,
        src_path: None,
        host: false,
    };
    let fp = Fingerprint {
        hash: 0,
        record: FingerprintRecord::default(),
        json: serde_json::from_str(
            r#"{"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/app-0/dep-lib-app","checksum":false}}]}"#,
        )
        .unwrap(),
    };
    let produced = [PathBuf::from("debug/build/app-1")];
    let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &produced).unwrap();
    let Check::Inputs(inputs) = check else {
        panic!("{check:?}")
    };
    let files: Vec<_> = inputs
        .files
        .iter()
        .map(|i| (i.base, i.path.clone()))
        .collect();
    assert_eq!(files, vec![(Base::BuildDir, PathBuf::from("gen/data.txt"))]);
}

/// A package `ws/stamp` (outside git: cargo walks it) whose build script
/// printed nothing, and cargo's fingerprint of its run, made now.
fn stamp_package(dir: &Path) -> (LiveUnit, Fingerprint) {
    let pkg = dir.join("ws/stamp");
    fs::create_dir_all(pkg.join("data/sub")).unwrap();
    fs::write(pkg.join("Cargo.toml"), "[package]\nname = \"stamp\"\n").unwrap();
    fs::write(pkg.join("build.rs"), "fn main() {}").unwrap();
    fs::write(pkg.join("data/sub/b.txt"), "beta").unwrap();
    let files = package::list(&pkg).unwrap();
    let now = package::precalculated(&files, &package::mtimes(&pkg, &files));
    let unit = LiveUnit {
        kind: UnitKind::RunBuildScript,
        package_id: "path+file:///ws/stamp#0.1.0".into(),
        name: "run-build-script stamp".into(),
        crate_name: "build_script_build".into(),
        package_root: pkg,
        src_path: None,
        host: false,
    };
    let fp = Fingerprint {
        hash: 0,
        record: FingerprintRecord::default(),
        json: serde_json::from_value(serde_json::json!({
            "deps": [], "local": [{"Precalculated": now}], "rustflags": [],
        }))
        .unwrap(),
    };
    (unit, fp)
}

#[test]
fn a_script_without_rerun_if_changed_records_its_package_s_files() {
    let dir = tempfile::tempdir().unwrap();
    let (unit, fp) = stamp_package(dir.path());
    let roots = test_roots(dir.path(), &dir.path().join("ws/target"));
    let check = unit_check(&unit, &fp, &roots, &[]).unwrap();
    let Check::PackageFiles(files) = check else {
        panic!("{check:?}")
    };
    assert_eq!(files.base, Base::Workspace);
    assert_eq!(files.package_root, Path::new("stamp"));
    let paths: Vec<&Path> = files.files.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(
        paths,
        [
            Path::new("Cargo.toml"),
            Path::new("build.rs"),
            Path::new("data/sub/b.txt")
        ]
    );
}

#[test]
fn a_package_changed_after_its_script_ran_is_unverifiable() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("ws")).unwrap();
    let roots = test_roots(dir.path(), &dir.path().join("ws/target"));
    // A file changed, a file added, each after the run: what the script
    // produced may not be what the files give now.
    let changes: [&dyn Fn(&Path); 2] = [
        &|pkg| {
            fs::write(pkg.join("data/sub/b.txt"), "BETA").unwrap();
            set_mtime(&pkg.join("data/sub/b.txt"), 4_000_000_000);
        },
        &|pkg| {
            fs::write(pkg.join("data/c.txt"), "gamma").unwrap();
            set_mtime(&pkg.join("data/c.txt"), 4_000_000_000);
        },
    ];
    for change in changes {
        let (unit, fp) = stamp_package(dir.path());
        change(&unit.package_root);
        let check = unit_check(&unit, &fp, &roots, &[]).unwrap();
        assert!(
            matches!(&check, Check::Unverifiable { reason } if reason.contains("changed after")),
            "{check:?}"
        );
        fs::remove_dir_all(&unit.package_root).unwrap();
    }
}

#[test]
fn a_package_cargo_lists_by_its_include_is_unverifiable() {
    let dir = tempfile::tempdir().unwrap();
    let (unit, fp) = stamp_package(dir.path());
    fs::write(
        unit.package_root.join("Cargo.toml"),
        "[package]\nname = \"stamp\"\ninclude = [\"src\"]\n",
    )
    .unwrap();
    let roots = test_roots(dir.path(), &dir.path().join("ws/target"));
    let check = unit_check(&unit, &fp, &roots, &[]).unwrap();
    assert!(
        matches!(&check, Check::Unverifiable { reason } if reason.contains("package.include")),
        "{check:?}"
    );
}
