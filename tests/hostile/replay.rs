//! The incremental replay runs rustc on what a manifest recorded: nothing
//! of the store may run in it (a proc-macro it loads, a toolchain file in
//! its working directory), no argument may be read from a file, and a
//! workspace unit may not hide a file cargo tracks from the content check.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use super::common::*;
use super::{add_rustc_args, id_of, put_blob, stderr, unit, world, Victim};

/// The directory of unit `id`'s fingerprint, relative to the profile dir,
/// in the layout the snapshot was built in.
fn fingerprint_dir(manifest: &Value, id: &str) -> String {
    match manifest["layout"].as_str() {
        Some("per-unit") => {
            let (package, hash) = id.rsplit_once('-').unwrap();
            format!("build/{package}/{hash}/fingerprint")
        }
        _ => format!(".fingerprint/{id}"),
    }
}

/// Where `rel` (below the profile dir) was on the build machine.
fn on_ci(manifest: &Value, rel: &str) -> String {
    format!(
        "{}/{}/{rel}",
        manifest["build_dir"].as_str().unwrap(),
        manifest["profile_dir"].as_str().unwrap()
    )
}

/// The blob of `name` in `store` with `extra` files (path below the
/// profile dir, contents, mode) added; returns its manifest entry.
fn blob_with(
    store: &Path,
    manifest: &Value,
    name: &str,
    extra: &[(String, Vec<u8>, u32)],
) -> Value {
    let sha = manifest["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap()["blob"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let zst = fs::read(
        store
            .join("blobs")
            .join(&sha[..2])
            .join(format!("{sha}.zst")),
    )
    .unwrap();
    let old = zstd::decode_all(&zst[..]).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(&old[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().into_owned();
        tar.append_data(&mut header, path, &mut entry).unwrap();
    }
    for (path, bytes, mode) in extra {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(*mode);
        tar.append_data(&mut header, path, &bytes[..]).unwrap();
    }
    put_blob(store, &tar.into_inner().unwrap())
}

/// A real proc-macro crate `evil` whose library constructor, run when
/// rustc loads it, leaves `pwned` in `guard` with the token it can read.
fn evil_proc_macro(guard: &Path) -> Vec<u8> {
    let dir = guard.parent().unwrap().join("evil-proc-macro");
    fs::create_dir_all(&dir).unwrap();
    let src = dir.join("evil.rs");
    fs::write(
        &src,
        format!(
            r#"
extern crate proc_macro;
#[used]
#[cfg_attr(target_os = "linux", unsafe(link_section = ".init_array"))]
static CTOR: extern "C" fn() = ctor;
extern "C" fn ctor() {{
    let token = std::env::var("CARGO_SEED_TOKEN").unwrap_or_default();
    let _ = std::fs::write("{}/pwned", token);
}}
#[proc_macro]
pub fn nothing(_: proc_macro::TokenStream) -> proc_macro::TokenStream {{
    proc_macro::TokenStream::new()
}}
"#,
            guard.display()
        ),
    )
    .unwrap();
    ok(command("rustc", &dir).args([
        "--edition=2021",
        "--crate-type=proc-macro",
        "--crate-name=evil",
        "evil.rs",
    ]));
    fs::read(dir.join("libevil.so")).unwrap()
}

#[test]
fn the_replay_never_loads_a_proc_macro_from_an_unsigned_store() {
    let v = Victim::new("proc-macro");
    let m = World::manifest(&v.store, &world().commits.base);
    let dir = fingerprint_dir(&m, &id_of(&m, "lib greet"));
    let so = format!("{dir}/libevil.so");
    let blob = blob_with(
        &v.store,
        &m,
        "lib greet",
        &[(so.clone(), evil_proc_macro(&v.guard), 0o755)],
    );
    let at = on_ci(&m, &so);
    v.edit(|m| {
        unit(m, "lib greet")["blob"] = blob;
        assert!(add_rustc_args(m, &["--extern", &format!("evil={at}")]) > 0);
    });
    let guard = tree_listing(&v.guard);
    let out = seed_env(
        &v.dir,
        &[
            "--store",
            v.store.to_str().unwrap(),
            "--force",
            "--commit",
            &world().commits.base,
        ],
        &[
            ("RUSTC_WRAPPER", Some(BIN)),
            ("CARGO_SEED_TOKEN", Some("s3cr3t-token")),
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !v.guard.join("pwned").exists(),
        "the store's proc-macro ran during the seed"
    );
    assert_same_tree(&guard, &tree_listing(&v.guard));
    // What was left, and how to get it.
    assert!(err.contains("no trusted key signed"), "{err}");
    assert_nothing_compiles(&v.dir, "hello, seed (v1)");
}

#[test]
fn an_argument_file_is_never_passed_to_the_replay() {
    let v = Victim::new("argfile");
    let m = World::manifest(&v.store, &world().commits.base);
    let dir = fingerprint_dir(&m, &id_of(&m, "lib greet"));
    let args = format!("{dir}/greet.args");
    let evil = v.guard.join("evil.d");
    // The first line is `--cfg`'s value; the next writes a file.
    let text = format!("x\n--emit=dep-info={}\n", evil.display());
    let blob = blob_with(
        &v.store,
        &m,
        "lib greet",
        &[(args.clone(), text.into_bytes(), 0o644)],
    );
    let at = on_ci(&m, &args);
    v.edit(|m| {
        unit(m, "lib greet")["blob"] = blob;
        assert!(add_rustc_args(m, &["--cfg", &format!("@{at}")]) > 0);
    });
    let guard = tree_listing(&v.guard);
    let out = v.seed();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!evil.exists(), "rustc wrote where the argument file said");
    assert!(
        err.contains("which rustc would expand from a file"),
        "{err}"
    );
    assert_same_tree(&guard, &tree_listing(&v.guard));
    assert_nothing_compiles(&v.dir, "hello, seed (v1)");
}

#[test]
fn a_toolchain_file_in_the_build_dir_never_picks_the_replays_rustc() {
    let v = Victim::new("toolchain");
    let m = World::manifest(&v.store, &world().commits.base);
    let dir = fingerprint_dir(&m, &id_of(&m, "lib greet"));
    let rustc = format!("#!/bin/sh\ntouch {}/pwned\nexit 1\n", v.guard.display());
    let blob = blob_with(
        &v.store,
        &m,
        "lib greet",
        &[
            (
                format!("{dir}/rust-toolchain.toml"),
                // rustup takes only an absolute path: the attacker
                // guesses where the developer's checkout is.
                format!(
                    "[toolchain]\npath = \"{}/target/debug/{dir}/evil\"\n",
                    v.dir.display()
                )
                .into_bytes(),
                0o644,
            ),
            (format!("{dir}/evil/bin/rustc"), rustc.into_bytes(), 0o755),
            (
                format!("{dir}/evil/bin/cargo"),
                b"#!/bin/sh\n".to_vec(),
                0o755,
            ),
        ],
    );
    let cwd = on_ci(&m, &dir);
    v.edit(|m| {
        unit(m, "lib greet")["blob"] = blob;
        // A repository root above the workspace holds its build dir.
        let root = Path::new(m["workspace_root"].as_str().unwrap()).to_owned();
        m["repository_root"] = json!(root.parent().unwrap());
        for u in m["units"].as_array_mut().unwrap() {
            let Some(src) = u["src_path"].as_str().map(str::to_owned) else {
                continue;
            };
            if let Some(rustc) = u.get_mut("rustc") {
                // The source, named from the new working directory.
                for arg in rustc["args"].as_array_mut().unwrap() {
                    if root.join(arg.as_str().unwrap()) == Path::new(&src) {
                        *arg = json!(src);
                    }
                }
                rustc["cwd"] = json!(cwd);
            }
        }
    });
    let guard = tree_listing(&v.guard);
    // Run as `cargo-seed seed`: rustup's proxy has not chosen a toolchain.
    let mut cmd = command(BIN, &v.dir);
    cmd.args([
        "seed",
        "--store",
        v.store.to_str().unwrap(),
        "--force",
        "--commit",
        &world().commits.base,
    ])
    .env("RUSTC_WRAPPER", BIN)
    .env_remove("RUSTUP_TOOLCHAIN")
    .env_remove("RUSTC");
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert!(
        !v.guard.join("pwned").exists(),
        "the store's rustc ran: {err}"
    );
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("ran in the build dir"), "{err}");
    assert_same_tree(&guard, &tree_listing(&v.guard));
    assert_nothing_compiles(&v.dir, "hello, seed (v1)");
}

#[test]
fn a_workspace_unit_cannot_leave_its_crate_root_unchecked() {
    for (case, keep) in [("no-inputs", None), ("no-root", Some("src/suffix.rs"))] {
        let v = Victim::new(case);
        edit(&v.dir.join("greet/src/lib.rs"), "hello, ", "edited here, ");
        v.edit(|m| {
            let files = &mut unit(m, "lib greet")["check"]["inputs"]["files"];
            let kept: Vec<Value> = files
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| Some(f["path"].as_str().unwrap()) == keep)
                .cloned()
                .collect();
            assert_eq!(kept.len(), usize::from(keep.is_some()), "{files}");
            *files = json!(kept);
        });
        v.assert_refused_after_edit(3, "leave out its crate root");
        assert!(run_app(&v.dir).starts_with("edited here, seed"));
    }
}

#[test]
fn a_workspace_unit_cannot_leave_a_file_of_its_dep_info_unchecked() {
    let v = Victim::new("no-module");
    edit(
        &v.dir.join("greet/src/suffix.rs"),
        "    \"\"\n",
        "    \" (edited)\"\n",
    );
    v.edit(|m| {
        let files = unit(m, "lib greet")["check"]["inputs"]["files"]
            .as_array_mut()
            .unwrap();
        let before = files.len();
        files.retain(|f| f["path"] != "src/suffix.rs");
        assert_eq!(files.len(), before - 1);
    });
    v.assert_refused_after_edit(1, "which its dep-info tracks");
    assert_eq!(
        run_app(&v.dir).lines().next(),
        Some("hello, seed (v1) (edited)")
    );
}

#[test]
fn a_stand_in_for_a_rebuilt_library_is_never_written_outside_the_build_dir() {
    let v = Victim::new("stand-in");
    // greet differs here, so cargo rebuilds it, and the replay of app (a
    // binary, which reads its libraries' paths) stands in for it where
    // the manifest says cargo writes it: here, the guard directory.
    edit(&v.dir.join("greet/src/lib.rs"), "hello, ", "edited here, ");
    let outside = v.guard.to_str().unwrap().to_owned();
    v.edit(|m| {
        let args = unit(m, "lib greet")["rustc"]["args"]
            .as_array_mut()
            .unwrap();
        let at = args.iter().position(|a| a == "--out-dir").unwrap();
        args[at + 1] = json!(outside);
    });
    let guard = tree_listing(&v.guard);
    // A file made and removed again changes its directory's mtime.
    let touched = || fs::metadata(&v.guard).unwrap().modified().unwrap();
    let before = touched();
    let out = v.seed();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_same_tree(&guard, &tree_listing(&v.guard));
    assert_eq!(touched(), before, "a file was made in the guard directory");
    let build = cargo_build(&v.dir);
    assert_compiled(&build, &["app", "greet"]);
    assert!(run_app(&v.dir).starts_with("edited here, seed"));
}
