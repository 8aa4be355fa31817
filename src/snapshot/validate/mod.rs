//! The border: every field of a manifest read from a store is checked here,
//! before anything is fetched, compared, written or run.
//!
//! A store is untrusted input. Whoever can write to it chooses every byte of
//! a manifest, so nothing in one may name a path outside the directories the
//! seed maps to this machine, reuse another unit's files, skip the content
//! check of a workspace unit, or feed a malformed digest to code that builds
//! keys from it. The first violation rejects the whole snapshot with one
//! clear reason; no field is repaired or guessed at.
//!
//! This module must never accept a manifest it has not checked field by
//! field: a new field in [`Manifest`] needs its rule here.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Component, Path};

use crate::snapshot::manifest::{Base, Check, EnvValue, Manifest, UnitKind, WithheldWhy};

/// Why a manifest was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

fn invalid(what: impl Into<String>) -> Invalid {
    Invalid(what.into())
}

/// Longest text field accepted (names, reasons, package ids), so that a
/// manifest cannot flood a terminal or a log with one field.
const MAX_TEXT: usize = 4096;
/// Path query values per unit: one per crate the unit loads, and one.
const MAX_PATH_VALUES: usize = 4096;
/// Covered commands: a CI job runs a handful.
const MAX_COVERS: usize = 64;
/// Rustflags are compared, never passed on; a long list is still a sign of
/// a hostile manifest.
const MAX_RUSTFLAGS: usize = 1024;

/// How far a blob may expand: a tar of build outputs compresses a few times,
/// a decompression bomb thousands of times. The slack admits small blobs
/// whose tar headers alone outweigh their compressed size.
pub const MAX_RATIO: u64 = 200;
const RATIO_SLACK: u64 = 1 << 20;

/// Checks every field of `m`, which the store holds under
/// `snapshots/<commit>/<variant>.json`.
pub fn manifest(m: &Manifest, commit: &str, variant: &str) -> Result<(), Invalid> {
    if m.schema != crate::snapshot::manifest::SCHEMA {
        return Err(invalid(format!(
            "manifest schema {} (this cargo-seed reads {})",
            m.schema,
            crate::snapshot::manifest::SCHEMA
        )));
    }
    if m.commit != commit {
        return Err(invalid(format!(
            "it says commit {} but is stored under commit {commit}",
            shown(&m.commit)
        )));
    }
    if m.variant() != variant {
        return Err(invalid(format!(
            "it describes `{}` but is stored as `{variant}`",
            shown(&m.variant())
        )));
    }
    for (what, value) in [
        ("target", m.target.as_str()),
        ("profile", m.profile.as_str()),
        ("rustc version", m.toolchain.verbose_version.as_str()),
        ("rustc release", m.toolchain.release.as_str()),
        ("host", m.toolchain.host.as_str()),
        ("C library", m.libc.as_deref().unwrap_or("")),
    ] {
        text(what, value, true)?;
    }
    if m.covers.len() > MAX_COVERS {
        return Err(invalid(format!(
            "it names {} covered commands (at most {MAX_COVERS})",
            m.covers.len()
        )));
    }
    for cover in &m.covers {
        text("covered command", cover, false)?;
    }
    if m.published_with.len() > MAX_COVERS {
        return Err(invalid(format!(
            "it names {} snapshots published with it (at most {MAX_COVERS})",
            m.published_with.len()
        )));
    }
    for sibling in &m.published_with {
        plain_name("profile published with it", &sibling.profile)?;
        if let Some(target) = &sibling.target {
            plain_name("target published with it", target)?;
        }
    }
    if let Some(flags) = &m.build_flags {
        if flags.rustflags.len() > MAX_RUSTFLAGS {
            return Err(invalid(format!(
                "it names {} rustflags (at most {MAX_RUSTFLAGS})",
                flags.rustflags.len()
            )));
        }
        for flag in &flags.rustflags {
            text("rustflag", flag, false)?;
        }
        text("linker", flags.linker.as_deref().unwrap_or(""), false)?;
    }
    if m.profile_dir != crate::cargo::workspace::profile_dir_name(&m.profile) {
        return Err(invalid(format!(
            "its profile directory `{}` is not the one of profile `{}`",
            shown(&m.profile_dir),
            shown(&m.profile)
        )));
    }
    for (what, path) in [
        ("workspace root", &m.workspace_root),
        ("CARGO_HOME", &m.cargo_home),
        ("build dir", &m.build_dir),
    ] {
        absolute(what, path)?;
    }
    if let Some(repository) = &m.repository_root {
        absolute("repository root", repository)?;
        if !m.workspace_root.starts_with(repository) {
            return Err(invalid(
                "the workspace root is not inside the repository root",
            ));
        }
    }

    let mut ids = HashSet::new();
    // Files under deps/ and examples/ belong to a unit by their hash suffix,
    // so two units with one hash could write each other's files.
    let mut hashes = HashMap::new();
    if m.cross {
        plain_name("target", &m.target)?;
    }
    for unit in &m.units {
        let id = &unit.id;
        unit_id(id, unit.kind)?;
        if unit.host && (!m.cross || unit.kind == UnitKind::Incremental) {
            return Err(invalid(format!(
                "unit `{id}` is placed in the host's directory, which only a cross build's compile and build-script units are"
            )));
        }
        if !ids.insert(id.as_str()) {
            return Err(invalid(format!("unit `{id}` appears twice")));
        }
        if let Some((_, hash)) = id
            .rsplit_once('-')
            .filter(|_| unit.kind != UnitKind::Incremental)
        {
            if let Some(other) = hashes.insert(hash, id.as_str()) {
                return Err(invalid(format!(
                    "units `{other}` and `{id}` share the hash {hash}, so they would own the same files"
                )));
            }
        }
        let at = |what: &str| format!("{what} of unit `{id}`");
        text(&at("the name"), &unit.name, false)?;
        if let Some(p) = &unit.package_id {
            text(&at("the package id"), p, false)?;
        }
        digest(&at("the blob digest"), &unit.blob.sha256)?;
        if unit.blob.unpacked > unit.blob.size.saturating_mul(MAX_RATIO) + RATIO_SLACK {
            return Err(invalid(format!(
                "the blob of unit `{id}` declares {} bytes unpacked from {}: more than {MAX_RATIO} times its size",
                unit.blob.unpacked, unit.blob.size
            )));
        }
        for dep in &unit.deps {
            unit_id(dep, UnitKind::Compile)
                .map_err(|e| invalid(format!("{} (a dependency)", e.0)))?;
        }
        check(id, unit.kind, unit.package_id.as_deref(), &unit.check)?;
        for baked in &unit.baked {
            if !is_env_name(&baked.var) {
                return Err(invalid(format!(
                    "{} names no environment variable",
                    at("an env! entry")
                )));
            }
        }
        if let Some(fp) = &unit.fingerprint {
            plain_name(&at("the fingerprint file"), &fp.file)?;
            for watched in &fp.env {
                if !is_env_name(&watched.var) {
                    return Err(invalid(format!(
                        "{} names no environment variable",
                        at("a watched variable")
                    )));
                }
                if let EnvValue::Sha256(d) = &watched.value {
                    digest(&at("the digest of a watched variable"), d)?;
                }
            }
            if fp.hash.len() != 16 || !fp.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(format!(
                    "{} is not 16 hex digits",
                    at("the fingerprint hash")
                )));
            }
        }
        if let Some(src) = &unit.src_path {
            absolute(&at("the source path"), src)?;
        }
        if let Some(inv) = &unit.rustc {
            // Replayed in this checkout's root, or for a path package
            // outside the workspace in its directory inside the repository.
            let inside = m
                .repository_root
                .as_ref()
                .is_some_and(|r| inv.cwd.starts_with(r) && absolute("", &inv.cwd).is_ok());
            if inv.cwd != m.workspace_root && !inside {
                return Err(invalid(format!(
                    "{} ran outside the workspace root and its repository",
                    at("the recorded rustc command")
                )));
            }
            for arg in &inv.args {
                text(&at("the recorded rustc command"), arg, false)?;
            }
        }
        if unit.path_values.len() > MAX_PATH_VALUES {
            return Err(invalid(format!(
                "{} are more than {MAX_PATH_VALUES}",
                at("the path query values")
            )));
        }
        if crate::rustc::incremental::from_records(&unit.path_values).is_none() {
            return Err(invalid(format!(
                "{} are not 32 lowercase hex digits each",
                at("the path query values")
            )));
        }
    }
    // Withheld units are only named in messages.
    for w in &m.withheld {
        unit_id(&w.id, w.kind)?;
        text(
            &format!("the name of withheld unit `{}`", w.id),
            &w.name,
            false,
        )?;
        let var = match &w.why {
            WithheldWhy::Secret { var } => Some(var),
            WithheldWhy::Dependency { on, var } | WithheldWhy::Incremental { of: on, var } => {
                text(
                    &format!("the reason of withheld unit `{}`", w.id),
                    on,
                    false,
                )?;
                var.as_ref()
            }
            WithheldWhy::Unreadable => None,
        };
        if var.is_some_and(|v| !is_env_name(v)) {
            return Err(invalid(format!(
                "withheld unit `{}` names no environment variable",
                w.id
            )));
        }
    }
    Ok(())
}

/// A workspace (path) unit always carries its content check: without one,
/// a restored unit would be fresh to cargo whatever the sources say.
fn check(id: &str, kind: UnitKind, package_id: Option<&str>, check: &Check) -> Result<(), Invalid> {
    match check {
        Check::None => {
            let is_path = package_id.is_none_or(|p| p.starts_with("path+"));
            if kind != UnitKind::Incremental && is_path {
                return Err(invalid(format!(
                    "unit `{id}` of a workspace package carries no content check"
                )));
            }
        }
        Check::Unverifiable { reason } => {
            text(&format!("the reason of unit `{id}`"), reason, false)?
        }
        Check::Inputs(inputs) => {
            if !matches!(
                inputs.base,
                Base::Workspace | Base::Repository | Base::CargoHome
            ) {
                return Err(invalid(format!(
                    "the package root of unit `{id}` is not under the workspace, the repository or CARGO_HOME"
                )));
            }
            if !inputs.package_root.as_os_str().is_empty() {
                relative(
                    &format!("the package root of unit `{id}`"),
                    &inputs.package_root,
                )?;
            }
            for input in &inputs.files {
                relative(&format!("an input of unit `{id}`"), &input.path)?;
                if let Some(d) = &input.sha256 {
                    digest(
                        &format!("the digest of input `{}`", input.path.display()),
                        d,
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// `<package>-<16 hex>` for a compile or build-script unit, as cargo names
/// `.fingerprint/` entries; `incremental/<crate>-<id>` for rustc's state.
fn unit_id(id: &str, kind: UnitKind) -> Result<(), Invalid> {
    let bad = || invalid(format!("unit id `{}` is not one cargo makes", shown(id)));
    let name_ok = |s: &str, extra: char| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == extra)
    };
    if kind == UnitKind::Incremental {
        let dir = id.strip_prefix("incremental/").ok_or_else(bad)?;
        let (krate, tag) = dir.rsplit_once('-').ok_or_else(bad)?;
        let tag_ok = !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric());
        return (name_ok(krate, '_') && tag_ok)
            .then_some(())
            .ok_or_else(bad);
    }
    let (package, hash) = id.rsplit_once('-').ok_or_else(bad)?;
    let hash_ok = hash.len() == 16 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (name_ok(package, '-') && hash_ok)
        .then_some(())
        .ok_or_else(bad)
}

/// Exactly 64 lowercase hex digits: a sha256, and nothing a key or a path
/// could be built from otherwise.
pub fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn digest(what: &str, s: &str) -> Result<(), Invalid> {
    is_digest(s)
        .then_some(())
        .ok_or_else(|| invalid(format!("{what} `{}` is not a sha256", shown(s))))
}

/// One file name: no separator, not `.` or `..`.
fn plain_name(what: &str, s: &str) -> Result<(), Invalid> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then_some(())
        .ok_or_else(|| invalid(format!("{what} `{}` is not a plain file name", shown(s))))
}

/// A name an environment variable can have and a terminal can show: the
/// cc and pkg-config crates watch `CC_x86_64-unknown-linux-gnu` and the
/// like, so not only letters, digits and `_`.
fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'=')
}

/// Relative, made of plain components only (no root, `.` or `..`), and
/// without control characters.
fn relative(what: &str, p: &Path) -> Result<(), Invalid> {
    let plain =
        !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(invalid(format!(
            "{what} `{}` is not a plain relative path",
            p.display()
        )));
    }
    text(what, &p.to_string_lossy(), false)
}

/// Absolute, below the root, with no `.` or `..`, and without control
/// characters: the build machine's directories, mapped to this machine's.
fn absolute(what: &str, p: &Path) -> Result<(), Invalid> {
    let mut parts = p.components();
    let ok = p.is_absolute()
        && parts.clone().count() > 1
        && parts.all(|c| {
            matches!(
                c,
                Component::RootDir | Component::Prefix(_) | Component::Normal(_)
            )
        });
    if !ok {
        return Err(invalid(format!(
            "{what} `{}` is not a plain absolute path",
            shown(&p.to_string_lossy())
        )));
    }
    text(what, &p.to_string_lossy(), false)
}

/// No control characters (a newline in a path ends up in a debugger script
/// as a command of its own; an escape sequence rewrites the terminal), and
/// a bounded length.
fn text(what: &str, s: &str, multiline: bool) -> Result<(), Invalid> {
    if s.len() > MAX_TEXT {
        return Err(invalid(format!("{what} is {} bytes long", s.len())));
    }
    let bad = s
        .chars()
        .find(|c| c.is_control() && !(multiline && *c == '\n'));
    match bad {
        Some(c) => Err(invalid(format!(
            "{what} `{}` holds the control character {c:?}",
            shown(s)
        ))),
        None => Ok(()),
    }
}

/// A field as it may be shown in a message: control characters escaped,
/// and cut short.
fn shown(s: &str) -> String {
    let escaped: String = s.chars().flat_map(char::escape_debug).take(80).collect();
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rustc::toolchain::Toolchain;
    use crate::rustc::wrapper::Invocation;
    use crate::snapshot::manifest::{Blob, FingerprintRecord, Input, Inputs, Unit, SCHEMA};

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
}
