//! Cargo's two build-dir layouts (flat before cargo 1.100, per-unit since):
//! a snapshot records the one it was built in, and a checkout whose cargo
//! writes the other refuses it before anything is downloaded or written,
//! saying why in every output. The layout is what cargo itself writes, so
//! both sides run the nightly toolchain (on every machine here, CI's too),
//! where `CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT` chooses it; the rest of the
//! suite covers each layout whole, run once per toolchain.

mod common;

use common::*;
use serde_json::Value;

fn stderr(out: &std::process::Output) -> String {
    text(&out.stderr)
}

/// The nightly toolchain, writing the per-unit layout or the flat one.
fn nightly(per_unit: bool) -> [(&'static str, &'static str); 2] {
    [
        ("RUSTUP_TOOLCHAIN", "nightly"),
        (
            "CARGO_UNSTABLE_BUILD_DIR_NEW_LAYOUT",
            if per_unit { "true" } else { "false" },
        ),
    ]
}

fn env(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, Option<&'static str>)> {
    pairs.iter().map(|(k, v)| (*k, Some(*v))).collect()
}

/// Published in one layout, seeded where cargo writes the other: exit 3
/// with the reason, no build dir, and `list` and JSON say the same; seeded
/// where cargo writes the same, cargo finds every unit fresh.
fn refused_across_layouts(tag: &str, ci_per_unit: bool) {
    let c = OneCommit::create(tag, |_| {}, &nightly(ci_per_unit));
    let recorded = World::manifest(&c.store, &c.commit)["layout"].clone();
    let (theirs, here) = match ci_per_unit {
        true => ("per-unit", "flat"),
        false => ("flat", "per-unit"),
    };
    assert_eq!(recorded, Value::from(theirs));

    let dir = c.clone_dev();
    let other = env(&nightly(!ci_per_unit));
    let out = seed_env(
        &dir,
        &["--store", c.store_arg(), "--commit", &c.commit],
        &other,
    );
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains(&format!("cargo's {theirs} build-dir layout"))
            && said.contains(&format!(
                "cargo here writes cargo's {here} build-dir layout"
            )),
        "{said}"
    );
    assert!(!dir.join("target").exists(), "{said}");

    let listed = seed_env(&dir, &["list", "--store", c.store_arg()], &other);
    assert!(
        text(&listed.stdout).contains("cargo here writes"),
        "{}{}",
        text(&listed.stdout),
        stderr(&listed)
    );
    let json = seed_env(
        &dir,
        &["list", "--store", c.store_arg(), "--message-format", "json"],
        &other,
    );
    let unusable: Vec<Value> = text(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "snapshot")
        .map(|e| e["unusable"].clone())
        .collect();
    assert_eq!(unusable.len(), 1, "{}{}", text(&json.stdout), stderr(&json));
    assert_eq!(unusable[0]["kind"], "mismatch", "{}", unusable[0]);
    assert_eq!(unusable[0]["why"]["kind"], "layout", "{}", unusable[0]);
    assert_eq!(unusable[0]["why"]["theirs"], theirs, "{}", unusable[0]);
    assert_eq!(unusable[0]["why"]["here"], here, "{}", unusable[0]);
    assert!(!dir.join("target").exists());

    let same = env(&nightly(ci_per_unit));
    let out = seed_env(&dir, &["--store", c.store_arg()], &same);
    assert!(out.status.success(), "{}", stderr(&out));
    let build = cargo_build_env(&dir, &same);
    assert_compiled(&build, &[]);
    assert!(run_app(&dir).starts_with("hello, seed"));
}

#[test]
fn a_flat_snapshot_is_refused_where_cargo_writes_per_unit() {
    refused_across_layouts("layout-flat", false);
}

#[test]
fn a_per_unit_snapshot_is_refused_where_cargo_writes_flat() {
    refused_across_layouts("layout-per-unit", true);
}
