use super::*;
use crate::snapshot::inputs::tests::roots;
use crate::snapshot::inputs::{digest_path, Budget};

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

fn sorted(mut v: Vec<PathBuf>) -> Vec<String> {
    v.sort();
    v.iter().map(|p| p.display().to_string()).collect()
}

/// A repository holding package `pkg` with a nested package, an ignored
/// file, a `target/` and an untracked file.
fn repository() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, ".gitignore", "*.log\n/pkg/target\n");
    write(r, "pkg/Cargo.toml", "[package]\nname = \"pkg\"\n");
    write(r, "pkg/build.rs", "fn main() {}");
    write(r, "pkg/src/lib.rs", "");
    write(r, "pkg/data/sub/b.txt", "b");
    write(r, "pkg/inner/Cargo.toml", "[package]\nname = \"inner\"\n");
    write(r, "pkg/inner/src/lib.rs", "");
    write(r, "other/x.rs", "");
    git(r, &["init", "-q"]);
    git(r, &["add", "-A"]);
    git(r, &["commit", "-qm", "x"]);
    write(r, "pkg/target/debug/out", "");
    write(r, "pkg/debug.log", "ignored");
    write(r, "pkg/data/new.txt", "untracked");
    d
}

#[test]
fn in_git_the_list_is_tracked_and_untracked_files_less_nested_packages() {
    let d = repository();
    let files = list(&d.path().join("pkg")).unwrap();
    assert_eq!(
        sorted(files),
        [
            "Cargo.toml",
            "build.rs",
            "data/new.txt",
            "data/sub/b.txt",
            "src/lib.rs"
        ]
    );
}

#[test]
fn outside_git_the_walk_skips_hidden_files_target_and_nested_packages() {
    let d = tempfile::tempdir().unwrap();
    let pkg = d.path().join("pkg");
    write(&pkg, "Cargo.toml", "[package]\nname = \"pkg\"\n");
    write(&pkg, "src/lib.rs", "");
    write(&pkg, ".hidden", "");
    write(&pkg, "data/.cache/x", "");
    write(&pkg, "data/a.txt", "");
    write(&pkg, "target/debug/out", "");
    write(&pkg, "inner/Cargo.toml", "");
    write(&pkg, "inner/src/lib.rs", "");
    let files = list(&pkg).unwrap();
    assert_eq!(sorted(files), ["Cargo.toml", "data/a.txt", "src/lib.rs"]);
}

#[cfg(unix)]
#[test]
fn what_cargo_lists_by_other_rules_is_refused() {
    let d = repository();
    let pkg = d.path().join("pkg");
    // A link to a directory below a linked one (cargo would follow it,
    // guarding against loops).
    std::os::unix::fs::symlink("data", pkg.join("linked")).unwrap();
    std::os::unix::fs::symlink("sub", pkg.join("data/again")).unwrap();
    assert!(
        matches!(list(&pkg), Err(Unlisted::SymlinkedDirectory(p)) if p.ends_with("again")),
        "{:?}",
        list(&pkg)
    );
    fs::remove_file(pkg.join("linked")).unwrap();
    fs::remove_file(pkg.join("data/again")).unwrap();
    let nested = pkg.join("vendored");
    fs::create_dir(&nested).unwrap();
    write(&nested, "f", "");
    git(&nested, &["init", "-q"]);
    git(&nested, &["add", "-A"]);
    git(&nested, &["commit", "-qm", "x"]);
    assert!(
        matches!(list(&pkg), Err(Unlisted::NestedRepository(p)) if p.starts_with("vendored")),
        "an untracked repository"
    );
    git(d.path(), &["add", "pkg/vendored"]);
    assert!(
        matches!(list(&pkg), Err(Unlisted::NestedRepository(p)) if p.starts_with("vendored")),
        "a submodule"
    );
}

#[cfg(unix)]
#[test]
fn a_link_to_a_directory_is_walked_as_cargo_walks_it() {
    let d = repository();
    let pkg = d.path().join("pkg");
    // What git ignores, a hidden file and a nested package below it.
    write(&pkg, "data/sub/skipped.log", "ignored by git");
    write(&pkg, "data/.hidden", "");
    write(
        &pkg,
        "data/nested/Cargo.toml",
        "[package]\nname = \"nested\"\n",
    );
    write(&pkg, "data/nested/src/lib.rs", "");
    std::os::unix::fs::symlink("data", pkg.join("linked")).unwrap();
    let files = sorted(list(&pkg).unwrap());
    for f in [
        "linked/.hidden",
        "linked/new.txt",
        "linked/sub/b.txt",
        "linked/sub/skipped.log",
        "data/sub/b.txt",
    ] {
        assert!(files.iter().any(|x| x == f), "{f} in {files:?}");
    }
    assert!(!files.iter().any(|x| x.contains("nested")), "{files:?}");
    // Linked to a repository, it is cargo's git listing again: refused.
    git(&pkg.join("data"), &["init", "-q"]);
    assert!(matches!(list(&pkg), Err(Unlisted::NestedRepository(_))));
}

#[test]
fn the_string_names_the_first_newest_file_in_listing_order() {
    let files: Vec<PathBuf> = ["src/lib.rs", "build.rs", "data/a.txt"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let tie = [(7, 5), (7, 5), (6, 0)];
    assert_eq!(precalculated(&files, &tie), "7.000000005s (src/lib.rs)");
    assert_eq!(
        precalculated(&files, &[(7, 5), (7, 6), (6, 0)]),
        "7.000000006s (build.rs)"
    );
    assert_eq!(precalculated(&[], &[]), "0.000000000s ()");
}

#[test]
fn a_seed_reuses_only_the_same_list_with_the_same_digests() {
    let d = repository();
    let pkg = d.path().join("pkg");
    let roots = roots(d.path());
    let record = |files: &[PathBuf]| {
        let mut files: Vec<PackageFile> = files
            .iter()
            .map(|f| PackageFile {
                path: f.clone(),
                sha256: digest_path(&pkg.join(f), &roots).unwrap().unwrap(),
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        PackageFiles {
            base: crate::snapshot::manifest::Base::Workspace,
            package_root: "pkg".into(),
            files,
        }
    };
    let recorded = record(&list(&pkg).unwrap());
    let compare = || compare(&pkg, &recorded, &mut Digests::new(&roots, Budget::SEED));
    let files = list(&pkg).unwrap();
    assert_eq!(compare(), Ok(precalculated(&files, &mtimes(&pkg, &files))));
    write(&pkg, "data/sub/c.txt", "untracked, in a subdirectory");
    assert_eq!(compare(), Err(Differs::Added("data/sub/c.txt".into())));
    fs::remove_file(pkg.join("data/sub/c.txt")).unwrap();
    fs::remove_file(pkg.join("data/sub/b.txt")).unwrap();
    assert_eq!(compare(), Err(Differs::Removed("data/sub/b.txt".into())));
    write(&pkg, "data/sub/b.txt", "B");
    assert_eq!(compare(), Err(Differs::Changed("data/sub/b.txt".into())));
    write(&pkg, "data/sub/b.txt", "b");
    // Ignored files and those of the nested package are not cargo's.
    write(&pkg, "more.log", "ignored");
    write(&pkg, "inner/src/more.rs", "");
    assert!(compare().is_ok());
}
