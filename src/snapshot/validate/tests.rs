//! Manifests with one field broken at a time.

use super::field::is_env_name;
use super::*;
use crate::rustc::toolchain::Toolchain;
use crate::rustc::wrapper::Invocation;
use crate::snapshot::manifest::{
    Base, Blob, Check, FingerprintRecord, Input, Inputs, PackageFile, PackageFiles, Unit, UnitKind,
    SCHEMA,
};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn good() -> Manifest {
    let unit = |id: &str, kind, check| Unit {
        id: id.into(),
        name: format!("lib {id}"),
        kind,
        host: false,
        package_id: Some("path+file:///ci/ws/greet#0.1.0".into()),
        blob: Blob {
            sha256: "ab".repeat(32),
            size: 100,
            unpacked: 1000,
        },
        deps: vec!["itoa-00000000000000aa".into()],
        check,
        baked: vec![],
        fingerprint: Some(FingerprintRecord {
            file: "lib-greet".into(),
            hash: "0123456789abcdef".into(),
            fields: "{}".into(),
            env: vec![],
        }),
        src_path: Some("/ci/ws/greet/src/lib.rs".into()),
        rustc: Some(Invocation {
            cwd: "/ci/ws".into(),
            args: vec!["--crate-name".into(), "greet".into()],
            scheme: Some(1),
        }),
        path_values: Vec::new(),
    };
    let inputs = Check::Inputs(Inputs {
        base: Base::Workspace,
        package_root: "greet".into(),
        files: vec![Input {
            base: Base::Package,
            path: "src/lib.rs".into(),
            sha256: Some("cd".repeat(32)),
        }],
    });
    Manifest {
        schema: SCHEMA,
        commit: COMMIT.into(),
        created: 0,
        toolchain: Toolchain {
            verbose_version: "rustc 1.95.0\nhost: x86_64-unknown-linux-gnu".into(),
            release: "1.95.0".into(),
            host: "x86_64-unknown-linux-gnu".into(),
        },
        target: "x86_64-unknown-linux-gnu".into(),
        cross: false,
        profile: "dev".into(),
        profile_dir: "debug".into(),
        layout: crate::cargo::layout::Layout::Flat,
        covers: vec![],
        published_with: vec![],
        workspace_root: "/ci/ws".into(),
        cargo_home: "/ci/.cargo".into(),
        build_dir: "/ci/ws/target".into(),
        dirty: false,
        libc: None,
        native_cpu: false,
        rustc_wrapper: None,
        build_flags: None,
        repository_root: None,
        units: vec![
            unit("greet-0123456789abcdef", UnitKind::Compile, inputs),
            unit(
                "incremental/greet-2bym0xyz",
                UnitKind::Incremental,
                Check::None,
            ),
        ],
        withheld: vec![],
    }
}

fn check(edit: impl FnOnce(&mut Manifest)) -> Result<(), Invalid> {
    let mut m = good();
    let variant = m.variant();
    edit(&mut m);
    manifest(&m, COMMIT, &variant)
}

fn inputs(m: &mut Manifest) -> &mut Inputs {
    match &mut m.units[0].check {
        Check::Inputs(i) => i,
        _ => unreachable!(),
    }
}

#[test]
fn a_manifest_as_publish_writes_it_is_accepted() {
    assert_eq!(check(|_| {}), Ok(()));
}

#[test]
fn a_cross_snapshot_names_a_triple_and_only_it_places_host_units() {
    let judged = |m: &Manifest| manifest(m, COMMIT, &m.variant());
    let said = |m: &Manifest| judged(m).unwrap_err().to_string();
    let mut m = good();
    m.cross = true;
    m.target = "../../x".into();
    assert!(said(&m).contains("not a plain file name"), "{}", said(&m));
    m.target = "x86_64-unknown-linux-musl".into();
    assert_eq!(judged(&m), Ok(()));
    m.units[0].host = true;
    assert_eq!(judged(&m), Ok(()));
    m.units[1].host = true;
    assert!(said(&m).contains("host's directory"));
    m.units[1].host = false;
    m.cross = false;
    assert!(said(&m).contains("host's directory"));
}

#[test]
fn environment_names_are_those_build_scripts_watch() {
    for name in [
        "GREETING",
        "CC_x86_64-unknown-linux-gnu",
        "PKG_CONFIG_PATH_x86_64-unknown-linux-gnu",
    ] {
        assert!(is_env_name(name), "{name}");
    }
    for name in ["", "A=B", "A B", "A\nB", "\u{1b}[2J", &"A".repeat(257)] {
        assert!(!is_env_name(name), "{name:?}");
    }
}

#[test]
fn every_field_is_checked() {
    type Edit = Box<dyn FnOnce(&mut Manifest)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("another commit", Box::new(|m| m.commit = "f".repeat(40))),
        (
            "another profile",
            Box::new(|m| m.profile_dir = "../x".into()),
        ),
        (
            "relative root",
            Box::new(|m| m.workspace_root = "ci/ws".into()),
        ),
        ("root is /", Box::new(|m| m.cargo_home = "/".into())),
        (
            "dotdot root",
            Box::new(|m| m.build_dir = "/ci/../etc".into()),
        ),
        (
            "newline in a root",
            Box::new(|m| m.workspace_root = "/ci/ws\nshell id".into()),
        ),
        (
            "escape in a name",
            Box::new(|m| m.units[0].name = "lib \u{1b}[2J".into()),
        ),
        (
            "traversing id",
            Box::new(|m| m.units[0].id = "../../../../x".into()),
        ),
        (
            "id without hash",
            Box::new(|m| m.units[0].id = "greet".into()),
        ),
        (
            "incremental id",
            Box::new(|m| m.units[1].id = "incremental/../../x".into()),
        ),
        (
            "duplicate id",
            Box::new(|m| m.units[1] = m.units[0].clone()),
        ),
        (
            "same hash twice",
            Box::new(|m| {
                let mut other = m.units[0].clone();
                other.id = "shout-0123456789abcdef".into();
                m.units.push(other);
            }),
        ),
        (
            "short digest",
            Box::new(|m| m.units[0].blob.sha256 = "a".into()),
        ),
        (
            "traversing digest",
            Box::new(|m| m.units[0].blob.sha256 = format!("../../{}", "a".repeat(58))),
        ),
        (
            "uppercase digest",
            Box::new(|m| m.units[0].blob.sha256 = "AB".repeat(32)),
        ),
        ("bomb", Box::new(|m| m.units[0].blob.unpacked = 1 << 40)),
        (
            "dependency id",
            Box::new(|m| m.units[0].deps = vec!["/etc/passwd".into()]),
        ),
        (
            "workspace unit unchecked",
            Box::new(|m| m.units[0].check = Check::None),
        ),
        (
            "package root absolute",
            Box::new(|m| inputs(m).package_root = "/etc".into()),
        ),
        (
            "package root in build dir",
            Box::new(|m| inputs(m).base = Base::BuildDir),
        ),
        (
            "input absolute",
            Box::new(|m| inputs(m).files[0].path = "/dev/zero".into()),
        ),
        (
            "input dotdot",
            Box::new(|m| inputs(m).files[0].path = "../../../home/me/.ssh/id_rsa".into()),
        ),
        (
            "input digest",
            Box::new(|m| inputs(m).files[0].sha256 = Some("x".into())),
        ),
        (
            "fingerprint file path",
            Box::new(|m| m.units[0].fingerprint.as_mut().unwrap().file = "/tmp/x".into()),
        ),
        (
            "fingerprint file dotdot",
            Box::new(|m| m.units[0].fingerprint.as_mut().unwrap().file = "..".into()),
        ),
        (
            "source path",
            Box::new(|m| m.units[0].src_path = Some("src/lib.rs".into())),
        ),
        (
            "replay elsewhere",
            Box::new(|m| m.units[0].rustc.as_mut().unwrap().cwd = "/tmp".into()),
        ),
        (
            "baked variable",
            Box::new(|m| {
                m.units[0].baked = vec![crate::snapshot::manifest::BakedPath {
                    var: "A=B".into(),
                    under: crate::snapshot::manifest::BakedRoot::Workspace,
                }]
            }),
        ),
        ("schema", Box::new(|m| m.schema = 1)),
    ];
    for (what, edit) in cases {
        let err = check(edit).expect_err(what);
        assert!(!err.to_string().contains('\n'), "{what}: one line: {err}");
    }
}

#[test]
fn the_variant_is_the_one_the_key_names() {
    let m = good();
    assert!(manifest(&m, COMMIT, "release-x86_64-unknown-linux-gnu-1.95.0").is_err());
}

/// The first unit as a build-script run that records its package's files.
fn package_files(m: &mut Manifest) -> &mut PackageFiles {
    let unit = &mut m.units[0];
    unit.kind = UnitKind::RunBuildScript;
    unit.src_path = None;
    unit.rustc = None;
    if !matches!(unit.check, Check::PackageFiles(_)) {
        unit.check = Check::PackageFiles(PackageFiles {
            base: Base::Workspace,
            package_root: "greet".into(),
            files: ["Cargo.toml", "build.rs", "data/sub/a.txt"]
                .iter()
                .map(|p| PackageFile {
                    path: p.into(),
                    sha256: "cd".repeat(32),
                })
                .collect(),
        });
    }
    match &mut unit.check {
        Check::PackageFiles(p) => p,
        _ => unreachable!(),
    }
}

#[test]
fn a_package_file_list_is_relative_sorted_digested_and_bounded() {
    assert_eq!(
        check(|m| {
            package_files(m);
        }),
        Ok(())
    );
    type Edit = Box<dyn FnOnce(&mut Manifest)>;
    let broken: Vec<(&str, Edit)> = vec![
        (
            "absolute",
            Box::new(|m| package_files(m).files[0].path = "/etc/passwd".into()),
        ),
        (
            "climbing",
            Box::new(|m| package_files(m).files[2].path = "data/../../x".into()),
        ),
        (
            "root climbing",
            Box::new(|m| package_files(m).package_root = "../elsewhere".into()),
        ),
        (
            "digest",
            Box::new(|m| package_files(m).files[1].sha256 = "xyz".into()),
        ),
        (
            "below CARGO_HOME",
            Box::new(|m| package_files(m).base = Base::CargoHome),
        ),
        (
            "twice",
            Box::new(|m| {
                let f = package_files(m);
                f.files[1].path = f.files[0].path.clone();
            }),
        ),
        ("unsorted", Box::new(|m| package_files(m).files.swap(0, 2))),
        (
            "too many",
            Box::new(|m| {
                let f = package_files(m);
                f.files = (0..=crate::snapshot::package::MAX_FILES)
                    .map(|i| PackageFile {
                        path: format!("f{i:06}").into(),
                        sha256: "cd".repeat(32),
                    })
                    .collect();
            }),
        ),
        (
            "a compile unit",
            Box::new(|m| {
                package_files(m);
                m.units[0].kind = UnitKind::Compile;
            }),
        ),
        (
            "a registry package",
            Box::new(|m| {
                package_files(m);
                m.units[0].package_id =
                    Some("registry+https://github.com/rust-lang/crates.io-index#cc@1.0.0".into());
            }),
        ),
    ];
    for (what, edit) in broken {
        assert!(check(edit).is_err(), "{what} was accepted");
    }
}
