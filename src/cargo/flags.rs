//! Configuration that enters every unit's fingerprint: the flags cargo
//! passes to rustc for the target (`RUSTFLAGS` and its config forms) and
//! the linker. A snapshot built with other values is rebuilt whole by
//! cargo, so the seed compares them before downloading anything.
//!
//! cargo-seed reads them as cargo does, for a build without `--target`:
//! the first of `CARGO_ENCODED_RUSTFLAGS`, `RUSTFLAGS`, the
//! `target.<triple>.rustflags` and matching `target.<cfg>.rustflags`
//! (with `CARGO_TARGET_<TRIPLE>_RUSTFLAGS`), and `build.rustflags` (with
//! `CARGO_BUILD_RUSTFLAGS`); list values of several config files are joined,
//! the nearest file last. Publishing checks the result against the flags
//! cargo recorded in the fingerprints and records nothing when they differ,
//! so a configuration this reading gets wrong is never compared.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cargo_platform::{Cfg, Platform};
use serde::{Deserialize, Serialize};
use toml_edit::{DocumentMut, Item};

/// What a snapshot's units were compiled with, besides the toolchain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuildFlags {
    /// The flags cargo passed to rustc for every unit.
    pub rustflags: Vec<String>,
    /// The linker cargo told rustc to use (`-C linker`), if one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linker: Option<String>,
}

impl fmt::Display for BuildFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rustflags.is_empty() {
            f.write_str("no rustflags")?;
        } else {
            write!(f, "rustflags `{}`", self.rustflags.join(" "))?;
        }
        match &self.linker {
            Some(linker) => write!(f, " and linker `{linker}`"),
            None => Ok(()),
        }
    }
}

/// Where a value comes from, for the message when they differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub flags: BuildFlags,
    /// `RUSTFLAGS`, `build.rustflags in /ws/.cargo/config.toml`…
    pub rustflags_from: Option<String>,
}

/// The flags cargo would use for a build in `cwd` for `host`, read from
/// `env` and the config files. `cfg` gives `rustc --print cfg`'s lines, asked
/// only when a `target.<cfg>` table needs them; `None` when it fails, and
/// then so does this.
pub fn resolve(
    cwd: &Path,
    cargo_home: &Path,
    host: &str,
    env: &dyn Fn(&str) -> Option<String>,
    cfg: &dyn Fn() -> Option<Vec<String>>,
) -> Option<Resolved> {
    let files = crate::setup::config_files(cwd, cargo_home);
    let mut docs = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).ok()?;
        docs.push((file.clone(), text.parse::<DocumentMut>().ok()?));
    }
    let triple_env = host.to_uppercase().replace(['-', '.'], "_");
    let cfgs = std::cell::OnceCell::new();
    let target_cfgs = || -> Option<&Vec<Cfg>> {
        cfgs.get_or_init(|| {
            cfg()?
                .iter()
                .map(|l| Cfg::from_str(l).ok())
                .collect::<Option<Vec<_>>>()
        })
        .as_ref()
    };
    // The `target.*` tables that apply to this host: its triple, and every
    // `cfg(…)` that matches.
    let mut applies: BTreeMap<String, bool> = BTreeMap::new();
    for (_, doc) in &docs {
        let Some(targets) = doc.get("target").and_then(Item::as_table_like) else {
            continue;
        };
        for (key, _) in targets.iter() {
            if applies.contains_key(key) {
                continue;
            }
            let hit = if key.starts_with("cfg(") {
                let platform = Platform::from_str(key).ok()?;
                platform.matches(host, target_cfgs()?)
            } else {
                key == host
            };
            applies.insert(key.to_owned(), hit);
        }
    }

    // The tables that apply: the triple's first, then the matching cfg
    // tables, by key.
    let mut keys: Vec<&String> = applies
        .iter()
        .filter(|(_, hit)| **hit)
        .map(|(k, _)| k)
        .collect();
    keys.sort_by_key(|k| (k.starts_with("cfg("), k.as_str()));

    let rustflags_from;
    let rustflags = if let Some(v) = env("CARGO_ENCODED_RUSTFLAGS") {
        rustflags_from = Some("CARGO_ENCODED_RUSTFLAGS".to_owned());
        if v.is_empty() {
            Vec::new()
        } else {
            v.split('\x1f').map(str::to_owned).collect()
        }
    } else if let Some(v) = env("RUSTFLAGS") {
        rustflags_from = Some("RUSTFLAGS".to_owned());
        words(&v)
    } else {
        let mut flags = Vec::new();
        let mut from = Vec::new();
        for key in &keys {
            let found = list(&docs, &["target", key, "rustflags"])?;
            if !found.is_empty() {
                from.push(format!("target.{key}.rustflags"));
            }
            flags.extend(found);
        }
        if let Some(v) = env(&format!("CARGO_TARGET_{triple_env}_RUSTFLAGS")) {
            from.push(format!("CARGO_TARGET_{triple_env}_RUSTFLAGS"));
            flags.extend(words(&v));
        }
        if from.is_empty() {
            flags = list(&docs, &["build", "rustflags"])?;
            if !flags.is_empty() {
                from.push("build.rustflags".to_owned());
            }
            if let Some(v) = env("CARGO_BUILD_RUSTFLAGS") {
                from.push("CARGO_BUILD_RUSTFLAGS".to_owned());
                flags.extend(words(&v));
            }
        }
        rustflags_from = (!from.is_empty()).then(|| from.join(" and "));
        flags
    };

    let linker = match env(&format!("CARGO_TARGET_{triple_env}_LINKER")) {
        Some(v) => Some(program(&v, cwd)),
        None => {
            let mut found = None;
            // The triple's own setting wins over a cfg table's.
            'keys: for key in &keys {
                for (file, doc) in &docs {
                    let value = doc
                        .get("target")
                        .and_then(|t| t.get(key))
                        .and_then(|t| t.get("linker"));
                    if let Some(value) = value {
                        let text = value.as_str()?;
                        // Relative to the directory that holds `.cargo/`.
                        let base = file.parent().and_then(Path::parent).unwrap_or(cwd);
                        found = Some(program(text, base));
                        break 'keys;
                    }
                }
            }
            found
        }
    };
    Some(Resolved {
        flags: BuildFlags { rustflags, linker },
        rustflags_from,
    })
}

/// A config value that is a list of flags, joined over every file (the
/// farthest first); a string is split at whitespace. `None` when a value
/// has another type.
fn list(docs: &[(PathBuf, DocumentMut)], path: &[&str]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for (_, doc) in docs.iter().rev() {
        let mut item: Option<&Item> = doc.get(path[0]);
        for key in &path[1..] {
            item = item.and_then(|i| i.get(key));
        }
        let Some(item) = item else { continue };
        if let Some(s) = item.as_str() {
            out.extend(words(s));
        } else if let Some(array) = item.as_array() {
            for v in array.iter() {
                out.push(v.as_str()?.to_owned());
            }
        } else {
            return None;
        }
    }
    Some(out)
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// A program setting as cargo reads it: a bare name is looked up on PATH,
/// anything with a path separator is relative to `base`.
fn program(value: &str, base: &Path) -> String {
    if value.contains('/') || value.contains('\\') {
        base.join(value).display().to_string()
    } else {
        value.to_owned()
    }
}

/// `rustc --print cfg` for `target`, line by line.
pub(crate) fn rustc_cfg(rustc: &Path, target: &str) -> Option<Vec<String>> {
    let out = std::process::Command::new(rustc)
        .args(["--print", "cfg", "--target", target])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8(out.stdout)
            .ok()?
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const HOST: &str = "x86_64-unknown-linux-gnu";

    fn resolved(ws: &Path, home: &Path, env: &[(&str, &str)]) -> Resolved {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cfg = || Some(vec!["unix".to_owned(), "target_os=\"linux\"".to_owned()]);
        resolve(ws, home, HOST, &|k| env.get(k).cloned(), &cfg).unwrap()
    }

    #[test]
    fn the_environment_comes_first_then_target_tables_then_build() {
        let d = tempfile::tempdir().unwrap();
        let (ws, home) = (d.path().join("ws"), d.path().join("home"));
        fs::create_dir_all(ws.join(".cargo")).unwrap();
        fs::create_dir_all(&home).unwrap();
        assert_eq!(
            resolved(&ws, &home, &[]).flags.rustflags,
            Vec::<String>::new()
        );

        fs::write(
            home.join("config.toml"),
            "[build]\nrustflags = [\"-Cdebug-assertions\"]\n",
        )
        .unwrap();
        fs::write(
            ws.join(".cargo/config.toml"),
            "[build]\nrustflags = \"--cfg ws\"\n",
        )
        .unwrap();
        let r = resolved(&ws, &home, &[]);
        // Lists of several files are joined, the nearest last.
        assert_eq!(r.flags.rustflags, ["-Cdebug-assertions", "--cfg", "ws"]);
        assert_eq!(r.rustflags_from.as_deref(), Some("build.rustflags"));

        fs::write(
            ws.join(".cargo/config.toml"),
            "[target.'cfg(unix)']\nrustflags = [\"--cfg\", \"unix_only\"]\n\
             [target.'cfg(windows)']\nrustflags = [\"--cfg\", \"never\"]\n\
             [target.x86_64-unknown-linux-gnu]\nlinker = \"tools/cc\"\n",
        )
        .unwrap();
        let r = resolved(&ws, &home, &[]);
        assert_eq!(r.flags.rustflags, ["--cfg", "unix_only"]);
        assert_eq!(
            r.flags.linker,
            Some(ws.join("tools/cc").display().to_string()),
            "relative to the directory that holds .cargo"
        );

        let r = resolved(&ws, &home, &[("RUSTFLAGS", "-D  warnings")]);
        assert_eq!(r.flags.rustflags, ["-D", "warnings"]);
        assert_eq!(r.rustflags_from.as_deref(), Some("RUSTFLAGS"));
        let r = resolved(
            &ws,
            &home,
            &[
                ("CARGO_ENCODED_RUSTFLAGS", "-C\x1fopt-level=1"),
                ("RUSTFLAGS", "-x"),
            ],
        );
        assert_eq!(r.flags.rustflags, ["-C", "opt-level=1"]);
        let r = resolved(
            &ws,
            &home,
            &[("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER", "clang")],
        );
        assert_eq!(r.flags.linker.as_deref(), Some("clang"));
    }

    #[test]
    fn an_unreadable_value_is_no_answer() {
        let d = tempfile::tempdir().unwrap();
        let (ws, home) = (d.path().join("ws"), d.path().join("home"));
        fs::create_dir_all(ws.join(".cargo")).unwrap();
        fs::write(ws.join(".cargo/config.toml"), "[build]\nrustflags = 3\n").unwrap();
        let cfg = || None;
        assert_eq!(resolve(&ws, &home, HOST, &|_| None, &cfg), None);
    }
}
