use super::*;

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn reads_codegen_options_in_both_spellings() {
    let args = strings(&[
        "--crate-name",
        "app",
        "-C",
        "incremental=/t/debug/incremental",
        "-Cextra-filename=-0123",
    ]);
    assert_eq!(
        codegen_opt(&args, "incremental"),
        Some("/t/debug/incremental")
    );
    assert_eq!(codegen_opt(&args, "extra-filename"), Some("-0123"));
    assert_eq!(codegen_opt(&args, "metadata"), None);
}

#[test]
fn knows_a_wrapper_call() {
    assert!(is_wrapper_call(
        &"/home/u/.rustup/toolchains/x/bin/rustc".into()
    ));
    assert!(is_wrapper_call(&"rustc".into()));
    assert!(!is_wrapper_call(&"seed".into()));
    assert!(!is_wrapper_call(&"publish".into()));
}

/// What cargo passes for a workspace member, at two checkout paths.
fn member(ws: &str) -> Vec<String> {
    strings(&[
        "--crate-name",
        "app",
        "--edition=2021",
        "app/src/main.rs",
        "--crate-type",
        "bin",
        "-C",
        &format!("incremental={ws}/target/debug/incremental"),
        "--out-dir",
        &format!("{ws}/target/debug/deps"),
        &format!("-Ldependency={ws}/target/debug/deps"),
        "-L",
        "native=/usr/lib/x86_64-linux-gnu",
        "--extern",
        &format!("greet={ws}/target/debug/deps/libgreet-1.rlib"),
        "--extern",
        "itoa=/home/ci/.cargo/registry/x/libitoa-2.rlib",
        "-Cmetadata=abc",
    ])
}

#[test]
fn rewrites_a_member_the_same_at_any_path_but_the_remap() {
    let at = |ws: &str| rewrite(&member(ws), Path::new(ws), Path::new(ws));
    let (ci, here) = (at("/ci/work/app"), at("/home/dev/src/app"));
    assert_eq!(ci[0], "--remap-path-prefix=/ci/work/app=.");
    assert_eq!(here[0], "--remap-path-prefix=/home/dev/src/app=.");
    assert_eq!(ci[1..], here[1..], "only the remap names the checkout");
    assert_eq!(
        ci[1..],
        strings(&[
            "--crate-name",
            "app",
            "--edition=2021",
            "app/src/main.rs",
            "--crate-type",
            "bin",
            "-C",
            "incremental=target/debug/incremental",
            "--out-dir",
            "target/debug/deps",
            "-Ldependency=target/debug/deps",
            "-L",
            "native=/usr/lib/x86_64-linux-gnu",
            "--extern",
            "greet=target/debug/deps/libgreet-1.rlib",
            "--extern",
            // Outside the repository: left absolute.
            "itoa=/home/ci/.cargo/registry/x/libitoa-2.rlib",
            "-Cmetadata=abc",
        ])[..]
    );
}

#[test]
fn a_path_dependency_outside_the_workspace_is_relative_to_its_own_dir() {
    // Cargo runs rustc in the package's directory for a path package
    // outside the workspace, with the source path absolute.
    let args = strings(&[
        "/r/ext/src/lib.rs",
        "--out-dir=/r/ws/target/debug/deps",
        "-Cincremental=/r/ws/target/debug/incremental",
    ]);
    let out = rewrite(&args, Path::new("/r/ext"), Path::new("/r"));
    assert_eq!(
        out,
        strings(&[
            "--remap-path-prefix=/r=.",
            "/r/ext/src/lib.rs",
            "--out-dir=../ws/target/debug/deps",
            "-Cincremental=../ws/target/debug/incremental",
        ])
    );
}

#[test]
fn leaves_paths_it_cannot_make_relative_plainly() {
    let root = Path::new("/r");
    let cwd = Path::new("/r/ws");
    assert_eq!(
        relative_under(Path::new("/r/ws/t"), cwd, root).as_deref(),
        Some("t")
    );
    assert_eq!(
        relative_under(Path::new("/r/ws"), cwd, root).as_deref(),
        Some(".")
    );
    assert_eq!(relative_under(Path::new("/elsewhere/t"), cwd, root), None);
    assert_eq!(relative_under(Path::new("/r/ws/../x"), cwd, root), None);
    assert_eq!(relative_under(Path::new("t"), cwd, root), None);
    // A dangling value stays as it was.
    let args = strings(&["--out-dir"]);
    assert_eq!(rewrite(&args, cwd, root)[1..], args[..]);
}

#[test]
fn the_repository_root_is_where_git_is() {
    let d = tempfile::tempdir().unwrap();
    let ws = d.path().join("repo/ws/app");
    fs::create_dir_all(&ws).unwrap();
    assert_eq!(
        repository_root(&ws),
        ws,
        "no repository: the directory itself"
    );
    fs::create_dir_all(d.path().join("repo/.git")).unwrap();
    assert_eq!(repository_root(&ws), d.path().join("repo"));
}
