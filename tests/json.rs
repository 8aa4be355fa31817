//! `--message-format json` on every command: each runs the real binary, and
//! every line it prints on stdout must parse as one JSON event. The events
//! are checked against what the store holds and what cargo then does, not
//! only against themselves.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use cargo_seed::snapshot::signing::{PublicKey, SecretKey};
use common::*;
use serde_json::Value;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World::create_in("json-tests", None))
}

/// Every stdout line as JSON; fails on any line that is not an object with
/// an `event` field.
fn events(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{}", text(&out.stdout)));
            assert!(v["event"].is_string(), "no event field: {line}");
            v
        })
        .collect()
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// The one event of this kind.
fn one<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    let found = of(events, kind);
    assert_eq!(found.len(), 1, "{kind}: {events:#?}");
    found[0]
}

fn json(dir: &Path, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--message-format", "json"]);
    seed(dir, &all)
}

fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `lib greet` → `greet`: the package a unit name is about.
fn package(unit: &Value) -> String {
    let name = unit["name"].as_str().unwrap();
    name.rsplit(' ').next().unwrap().to_owned()
}

/// The packages of the non-incremental unit events with these actions.
fn packages(units: &[&Value], actions: &[&str]) -> BTreeSet<String> {
    units
        .iter()
        .filter(|u| u["kind"] != "incremental" && actions.iter().any(|a| u["action"] == *a))
        .map(|u| package(u))
        .collect()
}

/// A seed one commit behind: the events name the snapshot, and the units
/// they say were restored and left to rebuild are exactly the packages
/// cargo then finds fresh and compiles.
#[test]
fn seed_reports_each_unit_as_cargo_then_treats_it() {
    let w = world();
    let dir = w.clone_at(&w.commits.greet_changed);
    let out = json(
        &dir,
        &["--store", w.store_arg(), "--commit", &w.commits.base],
    );
    succeeded(&out);
    assert!(
        out.stderr.is_empty(),
        "human output in JSON mode: {}",
        text(&out.stderr)
    );
    let events = events(&out);
    assert_eq!(events[0]["event"], "resolved", "{events:#?}");
    let resolved = &events[0];
    assert_eq!(resolved["commit"], w.commits.base.as_str());
    assert_eq!(resolved["distance"], 1);
    assert_eq!(resolved["profile"], "dev");
    assert_eq!(resolved["store"], w.store_arg());
    assert_eq!(
        resolved["bytes"],
        World::manifest(&w.store, &w.commits.base)["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["blob"]["size"].as_u64().unwrap())
            .sum::<u64>()
    );

    let units = of(&events, "unit");
    let rebuilt: Vec<&&Value> = units.iter().filter(|u| u["action"] == "rebuilt").collect();
    let greet = rebuilt
        .iter()
        .find(|u| u["name"] == "lib greet")
        .unwrap_or_else(|| panic!("{units:#?}"));
    assert_eq!(greet["reason"]["message"], "src/lib.rs changed");
    assert_eq!(greet["reason"]["kind"], "input");
    assert_eq!(greet["reason"]["path"], "src/lib.rs");
    assert_eq!(greet["reason"]["change"], "changed");
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "seeded", "{events:#?}");
    assert_eq!(summary["commit"], w.commits.base.as_str());
    let restored = units
        .iter()
        .filter(|u| {
            u["kind"] != "incremental" && (u["action"] == "fetched" || u["action"] == "kept")
        })
        .count();
    assert_eq!(summary["reused"], restored, "{events:#?}");
    assert_eq!(
        summary["rebuilt"].as_array().unwrap().len(),
        rebuilt.len(),
        "{events:#?}"
    );
    let fetched: u64 = units
        .iter()
        .filter(|u| u["action"] == "fetched")
        .map(|u| u["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(summary["fetched_bytes"], fetched);
    stage_times_add_up(summary);

    let build = cargo_build(&dir);
    let fresh: BTreeSet<String> = build.fresh.iter().cloned().collect();
    let compiled: BTreeSet<String> = build.compiled.iter().cloned().collect();
    assert_eq!(
        packages(&units, &["fetched", "kept"]),
        fresh,
        "{}",
        build.stderr
    );
    assert_eq!(packages(&units, &["rebuilt"]), compiled, "{}", build.stderr);
    assert_eq!(compiled, ["app", "greet"].map(String::from).into());
}

/// The `stages` of a `seeded` event: every stage present, in seconds; the
/// wall-time stages, one after the other, within the whole seed; the
/// staging work, summed over the workers, within the staging stage's wall
/// time on as many workers as the seed runs. Units were unpacked, so that
/// work took some time.
fn stage_times_add_up(seeded: &Value) {
    let stages = &seeded["stages"];
    let secs = |name: &str| -> f64 {
        let t = stages[name]
            .as_f64()
            .unwrap_or_else(|| panic!("stages.{name} in {seeded:#}"));
        assert!(t.is_finite() && t >= 0.0, "stages.{name} = {t}");
        t
    };
    let total = seeded["seconds"].as_f64().unwrap();
    let wall: f64 = ["resolve", "judge", "stage", "swap", "replay"]
        .map(secs)
        .iter()
        .sum();
    assert!(
        wall <= total,
        "{wall} s of stages in a seed of {total} s: {stages:#}"
    );
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let work: f64 = ["fetch", "verify", "decompress", "write", "relocate"]
        .map(secs)
        .iter()
        .sum();
    assert!(work > 0.0, "{stages:#}");
    assert!(
        work <= secs("stage") * workers as f64,
        "{work} thread-seconds on {workers} workers in {} s: {stages:#}",
        secs("stage")
    );
    assert_eq!(stages.as_object().unwrap().len(), 10, "{stages:#}");
}

/// A dry run says, per unit, whether it would be reused and why not, and
/// changes nothing.
#[test]
fn dry_run_reports_a_verdict_per_unit_and_the_plan() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    edit(&dir.join("greet/src/lib.rs"), "hello, ", "hey, ");
    let out = json(&dir, &["--store", w.store_arg(), "--dry-run"]);
    succeeded(&out);
    let events = events(&out);
    let verdicts = of(&events, "verdict");
    let manifest = World::manifest(&w.store, &w.commits.base);
    assert_eq!(
        verdicts.len(),
        manifest["units"].as_array().unwrap().len()
            + manifest["withheld"].as_array().map_or(0, Vec::len)
    );
    let not_reused: BTreeSet<&str> = verdicts
        .iter()
        .filter(|v| v["reuse"] == false && v["kind"] != "incremental")
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(not_reused, BTreeSet::from(["bin app", "lib greet"]));
    assert!(verdicts
        .iter()
        .all(|v| (v["reuse"] == true) == v["reason"].is_null()));
    let plan = one(&events, "plan");
    assert_eq!(plan["commit"], w.commits.base.as_str());
    assert_eq!(plan["distance"], 0);
    let reused = verdicts
        .iter()
        .filter(|v| v["reuse"] == true && v["kind"] != "incremental")
        .count();
    assert_eq!(plan["reused"], reused);
    assert!(plan["rebuilt"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "lib greet" && r["reason"]["message"] == "src/lib.rs changed"));
    assert!(!dir.join("target").exists());
}

/// A publish's summary counts the units its manifest holds, and every blob
/// a fresh store lacked is reported as stored.
#[test]
fn publish_reports_what_the_manifest_holds() {
    let w = world();
    let store = w.root.join("store-json-publish");
    let out = command("cargo", &w.ci)
        .env("RUSTC_WRAPPER", BIN)
        .args(["seed", "publish", "--store", store.to_str().unwrap()])
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    succeeded(&out);
    let events = events(&out);
    let manifest = World::manifest(&store, &w.commits.greet_changed);
    let units = manifest["units"].as_array().unwrap().len();
    let packing = one(&events, "packing");
    assert_eq!(packing["units"], units);
    let published = one(&events, "published");
    assert_eq!(events.last().unwrap(), published);
    assert_eq!(published["commit"], w.commits.greet_changed.as_str());
    assert_eq!(published["units"], units);
    assert_eq!(published["profile"], "dev");
    assert_eq!(published["store"], store.to_str().unwrap());
    let blobs = referenced(&manifest).len();
    assert_eq!(published["new_blobs"], blobs);
    assert_eq!(of(&events, "stored").len(), blobs);
    assert!(
        published["key"]
            .as_str()
            .unwrap()
            .contains(&w.commits.greet_changed),
        "{published}"
    );
}

/// `list`: one event per snapshot reachable from HEAD, nearest first.
#[test]
fn list_reports_each_snapshot() {
    let w = world();
    let dir = w.clone_at(&w.commits.data_changed);
    let out = json(&dir, &["list", "--store", w.store_arg()]);
    succeeded(&out);
    let events = events(&out);
    let snapshots = of(&events, "snapshot");
    let commits: Vec<&str> = snapshots
        .iter()
        .map(|s| s["commit"].as_str().unwrap())
        .collect();
    assert_eq!(
        commits,
        [w.commits.greet_changed.as_str(), w.commits.base.as_str()]
    );
    assert_eq!(snapshots[0]["distance"], 1);
    assert_eq!(snapshots[1]["distance"], 2);
    for s in &snapshots {
        assert_eq!(s["usable"], true, "{s}");
        assert!(s["unusable"].is_null(), "{s}");
        assert_eq!(s["covers"], serde_json::json!(["build --profile dev"]));
    }
    let listed = one(&events, "listed");
    assert_eq!(listed["snapshots"], 2);
    assert_eq!(listed["commits_searched"], 3);
}

/// `gc` that keeps nothing: a removal per snapshot, and counts that match
/// the store's blobs before and after.
#[test]
fn gc_reports_its_removals() {
    let w = world();
    let store = w.store_copy("json-gc");
    // Both published 200 days ago, beyond any `--keep-days`.
    for commit in [&w.commits.base, &w.commits.greet_changed] {
        World::edit_manifest(&store, commit, |m| {
            m["created"] = (m["created"].as_u64().unwrap() - 200 * 86_400).into();
        });
    }
    let blob_files: Vec<u64> = fs::read_dir(store.join("blobs"))
        .unwrap()
        .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().metadata().unwrap().len())
        .collect();
    let out = json(
        &w.root,
        &[
            "gc",
            "--store",
            store.to_str().unwrap(),
            "--keep-last",
            "0",
            "--keep-days",
            "90",
            "--grace-hours",
            "0",
        ],
    );
    succeeded(&out);
    let events = events(&out);
    let removed = of(&events, "snapshot_removed");
    assert_eq!(removed.len(), 2, "{events:#?}");
    assert!(removed.iter().all(|r| r["dry_run"] == false));
    let gc = one(&events, "gc");
    assert_eq!(gc["snapshots_removed"], 2);
    assert_eq!(gc["snapshots_kept"], 0);
    assert_eq!(gc["blobs_removed"], blob_files.len());
    assert_eq!(gc["bytes_removed"], blob_files.iter().sum::<u64>());
    assert!(fs::read_dir(store.join("blobs"))
        .unwrap()
        .all(|d| fs::read_dir(d.unwrap().path()).unwrap().next().is_none()));
}

/// `setup`, `setup --check` and `--undo` on a CARGO_HOME of their own; a
/// failing check ends with an `error` event carrying the exit code, and
/// its message still goes to stderr.
#[test]
fn setup_reports_its_status_and_a_failed_check_its_error() {
    let root = scratch("json-setup");
    let ws = root.join("solo");
    fs::create_dir_all(ws.join("src")).unwrap();
    fs::write(
        ws.join("Cargo.toml"),
        "[package]\nname = \"solo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(ws.join("src/lib.rs"), "").unwrap();
    let home = root.join("cargo-home");
    fs::create_dir_all(&home).unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["seed"];
        all.extend(args);
        all.extend(["--message-format", "json"]);
        with_env(
            command("cargo", &ws).args(&all),
            &[("CARGO_HOME", home.to_str())],
        )
        .output()
        .unwrap()
    };

    let out = run(&["setup", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let said = events(&out);
    assert_eq!(said.len(), 1, "{said:#?}");
    assert_eq!(said[0]["event"], "error");
    assert_eq!(said[0]["exit_code"], 1);
    let message = said[0]["message"].as_str().unwrap();
    assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));

    let out = run(&["setup"]);
    succeeded(&out);
    let setup = one(&events(&out), "setup").clone();
    assert_eq!(setup["status"], "written");
    let config = home.join("config.toml");
    assert_eq!(setup["config"], config.to_str().unwrap());
    assert!(fs::read_to_string(&config)
        .unwrap()
        .contains("rustc-wrapper"));

    let out = run(&["setup", "--check"]);
    succeeded(&out);
    let check = one(&events(&out), "setup").clone();
    assert_eq!(check["status"], "ready");

    let out = run(&["setup", "--undo"]);
    succeeded(&out);
    assert_eq!(one(&events(&out), "setup")["status"], "removed");
}

/// `keygen`: one event whose keys parse and belong together.
#[test]
fn keygen_reports_a_key_pair_that_parses() {
    let dir = scratch("json-keygen");
    fs::create_dir_all(&dir).unwrap();
    let out = json(&dir, &["keygen"]);
    succeeded(&out);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let events = events(&out);
    assert_eq!(events.len(), 1, "{events:#?}");
    let key = one(&events, "keygen");
    let public = PublicKey::parse(key["public_key"].as_str().unwrap()).unwrap();
    let secret = SecretKey::parse(key["secret_key"].as_str().unwrap()).unwrap();
    assert_eq!(secret.public(), public);
    assert_eq!(key["key_id"], public.id().to_string());
}

/// The environment variable chooses the format as the flag does.
#[test]
fn the_format_can_be_set_in_the_environment() {
    let dir = scratch("json-env");
    fs::create_dir_all(&dir).unwrap();
    let out = seed_env(
        &dir,
        &["keygen"],
        &[("CARGO_SEED_MESSAGE_FORMAT", Some("json"))],
    );
    succeeded(&out);
    assert_eq!(one(&events(&out), "keygen")["event"], "keygen");
}

/// `--explain` is a dry run that lists every unit: each verdict of the JSON
/// events has its line for people, rebuilt units first, with the reason,
/// and nothing is fetched or changed.
#[test]
fn explain_lists_every_units_verdict_before_anything_is_fetched() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    edit(&dir.join("greet/src/lib.rs"), "hello, ", "hey, ");
    let out = json(&dir, &["--store", w.store_arg(), "--explain"]);
    succeeded(&out);
    let events = events(&out);
    let verdicts: Vec<&Value> = of(&events, "verdict")
        .into_iter()
        .filter(|v| v["kind"] != "incremental")
        .collect();
    assert!(!verdicts.is_empty(), "{events:#?}");
    one(&events, "plan");

    let out = seed(&dir, &["--store", w.store_arg(), "--explain"]);
    succeeded(&out);
    let said = text(&out.stdout);
    let lines: Vec<&str> = said.lines().collect();
    assert!(lines[0].starts_with("would seed "), "{said}");
    for v in &verdicts {
        let name = v["name"].as_str().unwrap();
        let line = match v["reason"]["message"].as_str() {
            Some(why) => format!("  rebuild {name}: {why}"),
            None => format!("  reuse   {name} ("),
        };
        assert!(
            lines.iter().any(|l| l.starts_with(&line)),
            "{line:?}\n{said}"
        );
    }
    assert_eq!(
        lines[1],
        "  rebuild bin app: depends on lib greet, which is rebuilt"
    );
    assert!(!dir.join("target").exists());
}
