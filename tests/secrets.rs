//! A secret CI builds with must never reach the store. In the fixture, gen's
//! build script watches `DEPLOY_TOKEN` (`rerun-if-env-changed`) and greet
//! reads it with `option_env!`; CI builds and publishes with it set. Those
//! units and what depends on them are withheld, and a developer's seeded
//! checkout rebuilds exactly them. shout's build script watches a variable
//! that is no secret: its value stays out of the manifest, yet the unit is
//! reused where the value is the same.

mod common;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use common::*;

const SECRET: &str = "s3cr3t-7f2c9a41e8b6d05f-for-deploys";
const STYLE: &str = "shout-style-c4f1e9";

fn world() -> &'static OneCommit {
    static WORLD: OnceLock<OneCommit> = OnceLock::new();
    WORLD.get_or_init(|| {
        OneCommit::create(
            "secrets-tests",
            reads_secrets,
            &[("DEPLOY_TOKEN", SECRET), ("SHOUT_STYLE", STYLE)],
        )
    })
}

/// The fixture, changed so that its build reads the environment.
fn reads_secrets(ws: &Path) {
    fs::write(
        ws.join("gen/build.rs"),
        r#"//! Turns data/greeting.txt into a constant, and says how long DEPLOY_TOKEN is.
use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=data/greeting.txt");
    println!("cargo:rerun-if-env-changed=DEPLOY_TOKEN");
    let text = fs::read_to_string("data/greeting.txt").expect("data/greeting.txt");
    let token = env::var("DEPLOY_TOKEN").map_or(0, |t| t.len());
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("generated.rs");
    let code = format!("pub const GENERATED: &str = {:?};\npub const TOKEN_LEN: usize = {token};\n", text.trim());
    fs::write(out, code).unwrap();
}
"#,
    )
    .unwrap();
    let greet = ws.join("greet/src/lib.rs");
    let mut lib = fs::read_to_string(&greet).unwrap();
    lib.push_str(
        "\npub fn token_len() -> usize {\n    option_env!(\"DEPLOY_TOKEN\").map_or(0, str::len)\n}\n",
    );
    fs::write(greet, lib).unwrap();
    fs::write(
        ws.join("shout/build.rs"),
        "fn main() {\n    println!(\"cargo:rerun-if-changed=build.rs\");\n    \
         println!(\"cargo:rerun-if-env-changed=SHOUT_STYLE\");\n}\n",
    )
    .unwrap();
    edit(
        &ws.join("app/src/main.rs"),
        "    println!(\"count: {}\", gen::count_vowels(\"incremental\"));\n",
        "    println!(\"count: {}\", gen::count_vowels(\"incremental\"));\n    \
         println!(\"token: {} {}\", gen::TOKEN_LEN, greet::token_len());\n",
    );
}

/// A developer's environment: no DEPLOY_TOKEN, and `style` as SHOUT_STYLE.
fn dev_env(style: &str) -> [(&str, Option<&str>); 2] {
    [("DEPLOY_TOKEN", None), ("SHOUT_STYLE", Some(style))]
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every file below `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The store's manifests and blobs that hold `needle`: raw bytes, and each
/// blob decompressed (the tar stream, with every file's contents).
fn store_files_holding(store: &Path, needle: &str) -> (Vec<String>, usize) {
    let mut holding = Vec::new();
    let mut blobs = 0;
    for path in files(store) {
        let raw = fs::read(&path).unwrap();
        let mut found = contains(&raw, needle);
        if path.extension().is_some_and(|e| e == "zst") {
            blobs += 1;
            found |= contains(&zstd::decode_all(&raw[..]).unwrap(), needle);
        }
        if found {
            holding.push(path.display().to_string());
        }
    }
    (holding, blobs)
}

fn unit_names(list: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .map(|l| {
            l.iter()
                .map(|u| u["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn the_secret_stays_in_ci_and_exactly_its_readers_are_rebuilt() {
    let w = world();
    let ci_build = w.ci.join("target/debug");
    // CI's own build dir holds the secret where the issue found it.
    let fingerprints = match is_per_unit(&ci_build) {
        true => ci_build.join("build"),
        false => ci_build.join(".fingerprint"),
    };
    assert!(files(&fingerprints)
        .iter()
        .any(|f| contains(&fs::read(f).unwrap(), SECRET)));

    let (holding, blobs) = store_files_holding(&w.store, SECRET);
    assert!(
        holding.is_empty(),
        "the secret is in the store: {holding:?}\n{}",
        w.publish
    );
    assert!(blobs > 5, "{blobs} blobs\n{}", w.publish);

    // The publish says what it left out and why.
    assert!(w.publish.contains("Withheld"), "{}", w.publish);
    for line in [
        "withheld run-build-script gen: it reads DEPLOY_TOKEN",
        "withheld lib greet: it reads DEPLOY_TOKEN",
        "withheld lib gen: it depends on run-build-script gen",
        "withheld bin app: it depends on",
        "withheld incremental greet: state of lib greet",
    ] {
        assert!(w.publish.contains(line), "no `{line}` in\n{}", w.publish);
    }
    let manifest = World::manifest(&w.store, &w.commit);
    assert_eq!(
        unit_names(&manifest["withheld"]),
        sorted(&[
            "bin app",
            "incremental app",
            "incremental gen",
            "incremental greet",
            "lib gen",
            "lib greet",
            "run-build-script gen",
        ])
    );

    // The non-secret watched value: a digest in the manifest, no value.
    let text = fs::read_to_string(World::manifest_path(&w.store, &w.commit)).unwrap();
    assert!(!text.contains(STYLE), "{text}");
    let digest = cargo_seed::digest::sha256_hex(STYLE.as_bytes());
    assert!(text.contains(&digest), "{text}");

    // A developer has no DEPLOY_TOKEN: seeding reuses the rest, and cargo
    // compiles exactly the withheld units.
    let dir = w.clone_dev();
    let out = seed_env(&dir, &["--store", w.store_arg()], &dev_env(STYLE));
    let said = text_of(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("not in the snapshot: it depends on"),
        "{said}"
    );
    let build = cargo_build_env(&dir, &dev_env(STYLE));
    assert_compiled(&build, &["app", "gen", "greet"]);
    assert_eq!(
        build.fresh,
        sorted(&["itoa", "memchr", "shout"]),
        "{}",
        build.stderr
    );
    let printed = run_app(&dir);
    assert!(printed.ends_with("token: 0 0\n"), "{printed}");
}

#[test]
fn a_watched_variable_with_another_value_here_is_left_to_rebuild() {
    let w = world();
    let dir = w.clone_dev();
    let other = dev_env("another-style");
    let out = seed_env(&dir, &["--store", w.store_arg(), "--dry-run"], &other);
    let plan = text(&out.stdout);
    assert!(out.status.success(), "{}", text_of(&out));
    assert!(
        plan.contains("rebuild run-build-script shout: CI's value of SHOUT_STYLE differs here"),
        "{plan}"
    );
    assert!(
        plan.contains("rebuild lib greet: not in the snapshot: it reads DEPLOY_TOKEN"),
        "{plan}"
    );

    let out = seed_env(&dir, &["--store", w.store_arg()], &other);
    assert!(out.status.success(), "{}", text_of(&out));
    let build = cargo_build_env(&dir, &other);
    assert_compiled(&build, &["app", "gen", "greet", "shout"]);
    assert_eq!(build.fresh, sorted(&["itoa", "memchr"]), "{}", build.stderr);
}

#[test]
fn variables_the_user_lists_are_secrets_too() {
    let w = world();
    let publish = |store: &str, env: &[(&str, Option<&str>)]| {
        let mut cmd = command("cargo", &w.ci);
        cmd.args(["seed", "publish", "--store", store, "-v"])
            .env("DEPLOY_TOKEN", SECRET)
            .env("SHOUT_STYLE", STYLE);
        with_env(&mut cmd, env).output().unwrap()
    };

    // From the environment (it replaces the workspace's list).
    let listed = w.root.join("store-listed");
    let out = publish(
        listed.to_str().unwrap(),
        &[("CARGO_SEED_SECRET_ENV", Some("OTHER_THING, shout_style"))],
    );
    let said = text_of(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("withheld run-build-script shout: it reads SHOUT_STYLE"),
        "{said}"
    );
    assert!(store_files_holding(&listed, STYLE).0.is_empty());

    // From `[workspace.metadata.seed]`, which must be a list; an empty
    // CARGO_SEED_SECRET_ENV (an unset CI variable) does not clear it.
    let manifest = w.ci.join("Cargo.toml");
    let original = fs::read_to_string(&manifest).unwrap();
    let configure = |value: &str| {
        let config = format!("{original}\n[workspace.metadata.seed]\nsecret-env = {value}\n");
        fs::write(&manifest, config).unwrap();
    };
    let empty = [("CARGO_SEED_SECRET_ENV", Some(""))];
    configure("[\"SHOUT_STYLE\"]");
    let configured = w.root.join("store-configured");
    let out = publish(configured.to_str().unwrap(), &empty);
    let said = text_of(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("withheld run-build-script shout: it reads SHOUT_STYLE"),
        "{said}"
    );

    configure("\"SHOUT_STYLE\"");
    let out = publish(configured.to_str().unwrap(), &empty);
    fs::write(&manifest, &original).unwrap();
    let said = text_of(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("is not a list of names"), "{said}");
    assert!(said.contains("hint: write it as `secret-env = ["), "{said}");
}

fn text_of(out: &std::process::Output) -> String {
    text(&out.stderr)
}
