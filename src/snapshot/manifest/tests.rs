use super::*;
use crate::snapshot::want::{Mismatch, Want};

fn toolchain(v: &str) -> Toolchain {
    Toolchain {
        verbose_version: format!("rustc {v}\nhost: x86_64-unknown-linux-gnu\nrelease: {v}"),
        release: v.into(),
        host: "x86_64-unknown-linux-gnu".into(),
    }
}

fn manifest() -> Manifest {
    Manifest {
        schema: SCHEMA,
        commit: "c".repeat(40),
        created: 0,
        toolchain: toolchain("1.95.0"),
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
        libc: Some("glibc 2.36".into()),
        native_cpu: false,
        rustc_wrapper: None,
        build_flags: None,
        repository_root: None,
        units: vec![],
        withheld: vec![],
    }
}

#[test]
fn compatibility_names_the_difference() {
    let m = manifest();
    let mut want = Want {
        toolchain: toolchain("1.95.0"),
        target: m.target.clone(),
        cross: false,
        profile: "dev".into(),
        libc: Some("glibc 2.36".into()),
        flags: None,
        layout: crate::cargo::layout::Layout::Flat,
        rustc_info: None,
    };
    assert_eq!(m.incompatibility(&want), None);
    want.layout = crate::cargo::layout::Layout::PerUnit;
    let why = m.incompatibility(&want).unwrap();
    assert!(matches!(why, Mismatch::Layout { .. }), "{why}");
    assert!(why.to_string().contains("cargo here writes"), "{why}");
    want.layout = crate::cargo::layout::Layout::Flat;
    want.toolchain = toolchain("1.94.0");
    let why = m.incompatibility(&want).unwrap().to_string();
    assert!(why.contains("1.95.0") && why.contains("1.94.0"), "{why}");
    want.toolchain = toolchain("1.95.0");
    want.profile = "release".into();
    assert!(m
        .incompatibility(&want)
        .unwrap()
        .to_string()
        .contains("release"));
    want.profile = "dev".into();
    want.libc = Some("glibc 2.31".into());
    assert_eq!(
        m.incompatibility(&want).unwrap().to_string(),
        "C library glibc 2.36 (here glibc 2.31)"
    );
    want.libc = None;
    assert_eq!(
        m.incompatibility(&want),
        None,
        "an unknown libc is not a difference"
    );
    let mut native = m.clone();
    native.native_cpu = true;
    assert!(native
        .incompatibility(&want)
        .unwrap()
        .to_string()
        .contains("target-cpu=native"));
}

#[test]
fn manifest_round_trips_through_json() {
    let mut m = manifest();
    m.units.push(Unit {
        id: "greet-0123456789abcdef".into(),
        name: "lib greet".into(),
        kind: UnitKind::Compile,
        host: false,
        package_id: Some("path+file:///ci/ws/greet#0.1.0".into()),
        blob: Blob {
            sha256: "ab".repeat(32),
            size: 10,
            unpacked: 20,
        },
        deps: vec!["itoa-0000000000000000".into()],
        baked: vec![],
        fingerprint: None,
        src_path: None,
        rustc: None,
        path_values: Vec::new(),
        check: Check::Inputs(Inputs {
            base: Base::Workspace,
            package_root: "greet".into(),
            files: vec![Input {
                base: Base::Package,
                path: "src/lib.rs".into(),
                sha256: None,
            }],
        }),
    });
    let text = serde_json::to_string(&m).unwrap();
    let back: Manifest = serde_json::from_str(&text).unwrap();
    assert_eq!(back.units[0].blob, m.units[0].blob);
    assert!(matches!(&back.units[0].check,
        Check::Inputs(i) if i.files.len() == 1 && i.base == Base::Workspace));
}
