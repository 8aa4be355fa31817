//! `cargo seed setup`: the one step that makes this machine compile through
//! cargo-seed's rustc wrapper, and the check of whether it does.
//!
//! rustc's incremental state is only reusable at another checkout path when
//! both CI and the developer ran rustc through the same rewrite (see
//! [`crate::rustc::wrapper`]). The setting goes into the user's
//! `$CARGO_HOME/config.toml` (`build.rustc-wrapper`), not into the
//! workspace: nothing is committed, and a teammate without cargo-seed
//! installed builds as before. A wrapper already configured there (sccache)
//! is kept, chained behind cargo-seed through `[env]`, which cargo passes to
//! every rustc invocation without entering any fingerprint.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table};

use crate::rustc::wrapper::CHAIN_VAR;

/// Where cargo takes its rustc wrapper from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An environment variable (`RUSTC_WRAPPER`, `CARGO_BUILD_RUSTC_WRAPPER`).
    Env(&'static str),
    /// A cargo config file.
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env(var) => write!(f, "the environment ({var})"),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The rustc wrapper cargo will use in a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wrapper {
    /// cargo-seed.
    Ours(Source),
    /// Another program.
    Other { program: String, from: Source },
    /// None.
    Absent,
}

impl Wrapper {
    pub(crate) fn is_ours(&self) -> bool {
        matches!(self, Wrapper::Ours(_))
    }
}

/// Whether `program` (as configured: a path or a name on `PATH`) is
/// cargo-seed.
fn is_cargo_seed(program: &str) -> bool {
    Path::new(program)
        .file_stem()
        .is_some_and(|s| s == "cargo-seed")
}

/// The rustc wrapper cargo uses for a build in `ws_root`, read as cargo
/// reads it: `RUSTC_WRAPPER`, then `CARGO_BUILD_RUSTC_WRAPPER`, then
/// `build.rustc-wrapper` in the nearest `.cargo/config.toml` from the
/// workspace up, then `$CARGO_HOME/config.toml`. An empty value means none.
pub(crate) fn detect(ws_root: &Path, cargo_home: &Path) -> Wrapper {
    let env = |var: &'static str| {
        std::env::var(var)
            .ok()
            .map(|program| (program, Source::Env(var)))
    };
    let found = env("RUSTC_WRAPPER")
        .or_else(|| env("CARGO_BUILD_RUSTC_WRAPPER"))
        .or_else(|| {
            config_files(ws_root, cargo_home)
                .into_iter()
                .find_map(|file| Some((configured(&file)?, Source::File(file))))
        });
    match found {
        None => Wrapper::Absent,
        Some((program, _)) if program.is_empty() => Wrapper::Absent,
        Some((program, from)) if is_cargo_seed(&program) => Wrapper::Ours(from),
        Some((program, from)) => Wrapper::Other { program, from },
    }
}

/// The config files cargo reads for a build in `ws_root`, nearest first.
pub(crate) fn config_files(ws_root: &Path, cargo_home: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ws_root
        .ancestors()
        .filter_map(|dir| config_in(&dir.join(".cargo")))
        .collect();
    if let Some(home) = config_in(cargo_home) {
        if !files.contains(&home) {
            files.push(home);
        }
    }
    files
}

/// `config.toml` in `dir`, or the older `config`.
fn config_in(dir: &Path) -> Option<PathBuf> {
    ["config.toml", "config"]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// `build.rustc-wrapper` in one config file.
fn configured(file: &Path) -> Option<String> {
    let doc: DocumentMut = fs::read_to_string(file).ok()?.parse().ok()?;
    doc.get("build")?
        .get("rustc-wrapper")?
        .as_str()
        .map(str::to_owned)
}

/// What `cargo seed setup` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Done {
    /// The setting was already there.
    Already(Source),
    /// Written into `file`; `chained` is the wrapper that was there before.
    Written {
        file: PathBuf,
        chained: Option<String>,
    },
    /// Removed from `file` (with `--undo`); `restored` the chained wrapper.
    Removed {
        file: PathBuf,
        restored: Option<String>,
    },
    /// `--undo` found nothing to remove.
    NothingToUndo,
}

/// Why the setting cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{from} sets the rustc wrapper to `{program}`, which takes precedence over \
         {home}; set {CHAIN_VAR}={program} and the wrapper there to cargo-seed instead"
    )]
    Overridden {
        program: String,
        from: Source,
        home: String,
    },
    #[error("{}: not a TOML document cargo can read: {message}", .file.display())]
    Unreadable { file: PathBuf, message: String },
    #[error("failed to {op} {}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Makes cargo in `ws_root` compile through `exe` (cargo-seed), by writing
/// `build.rustc-wrapper` into `$CARGO_HOME/config.toml`.
pub fn install(ws_root: &Path, cargo_home: &Path, exe: &Path) -> Result<Done, SetupError> {
    let file = config_in(cargo_home).unwrap_or_else(|| cargo_home.join("config.toml"));
    match detect(ws_root, cargo_home) {
        Wrapper::Other { program, from } if from != Source::File(file.clone()) => {
            return Err(SetupError::Overridden {
                program,
                from,
                home: file.display().to_string(),
            })
        }
        Wrapper::Ours(from) if from != Source::File(file.clone()) => {
            return Ok(Done::Already(from))
        }
        _ => {}
    }
    let mut doc = read_doc(&file)?;
    let exe_text = exe.to_string_lossy().into_owned();
    let build = table(&mut doc, "build");
    let before = build
        .get("rustc-wrapper")
        .and_then(Item::as_str)
        .map(str::to_owned);
    if before.as_deref() == Some(exe_text.as_str()) {
        return Ok(Done::Already(Source::File(file)));
    }
    build["rustc-wrapper"] = toml_edit::value(exe_text);
    let chained = before.filter(|p| !p.is_empty() && !is_cargo_seed(p));
    if let Some(program) = &chained {
        table(&mut doc, "env")[CHAIN_VAR] = toml_edit::value(program.as_str());
    }
    write_doc(&file, &doc)?;
    Ok(Done::Written { file, chained })
}

/// Undoes [`install`]: removes cargo-seed from `$CARGO_HOME/config.toml`
/// and puts a chained wrapper back in its place.
pub(crate) fn uninstall(cargo_home: &Path) -> Result<Done, SetupError> {
    let Some(file) = config_in(cargo_home) else {
        return Ok(Done::NothingToUndo);
    };
    let mut doc = read_doc(&file)?;
    let ours = doc
        .get("build")
        .and_then(|b| b.get("rustc-wrapper"))
        .and_then(Item::as_str)
        .is_some_and(is_cargo_seed);
    if !ours {
        return Ok(Done::NothingToUndo);
    }
    let restored = doc
        .get_mut("env")
        .and_then(Item::as_table_like_mut)
        .and_then(|env| env.remove(CHAIN_VAR))
        .and_then(|item| item.as_str().map(str::to_owned));
    let build = table(&mut doc, "build");
    match &restored {
        Some(program) => build["rustc-wrapper"] = toml_edit::value(program.as_str()),
        None => {
            build.remove("rustc-wrapper");
        }
    }
    write_doc(&file, &doc)?;
    Ok(Done::Removed { file, restored })
}

fn read_doc(file: &Path) -> Result<DocumentMut, SetupError> {
    match fs::read_to_string(file) {
        Ok(text) => text
            .parse()
            .map_err(|e: toml_edit::TomlError| SetupError::Unreadable {
                file: file.to_owned(),
                message: e.message().to_owned(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DocumentMut::new()),
        Err(source) => Err(SetupError::Io {
            op: "read",
            path: file.to_owned(),
            source,
        }),
    }
}

/// The table `name` of `doc`, made if missing.
fn table<'a>(doc: &'a mut DocumentMut, name: &str) -> &'a mut Table {
    if !doc.contains_table(name) {
        doc[name] = Item::Table(Table::new());
    }
    doc[name].as_table_mut().expect("made a table above")
}

/// Writes beside and renames, so cargo never reads half a file.
fn write_doc(file: &Path, doc: &DocumentMut) -> Result<(), SetupError> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| SetupError::Io { op, path, source }
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    // Written beside it and renamed over it: cargo never reads half a file,
    // and a failed write leaves the old one (the temporary file is deleted).
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io("write in", dir))?;
    tmp.write_all(doc.to_string().as_bytes())
        .map_err(io("write", tmp.path()))?;
    tmp.persist(file)
        .map_err(|e| io("replace", file)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_chains_and_undoes_in_the_users_config() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("cargo-home");
        let ws = d.path().join("ws");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&ws).unwrap();
        let config = home.join("config.toml");
        let original = "# mine\n[build]\nrustc-wrapper = \"sccache\"\njobs = 3\n";
        fs::write(&config, original).unwrap();
        let exe = Path::new("/opt/bin/cargo-seed");

        let done = install(&ws, &home, exe).unwrap();
        assert_eq!(
            done,
            Done::Written {
                file: config.clone(),
                chained: Some("sccache".into())
            }
        );
        let text = fs::read_to_string(&config).unwrap();
        assert!(text.starts_with("# mine\n"), "{text}");
        assert!(
            text.contains("rustc-wrapper = \"/opt/bin/cargo-seed\""),
            "{text}"
        );
        assert!(text.contains("jobs = 3"), "{text}");
        assert!(
            text.contains("CARGO_SEED_RUSTC_WRAPPER = \"sccache\""),
            "{text}"
        );
        assert_eq!(
            install(&ws, &home, exe).unwrap(),
            Done::Already(Source::File(config.clone()))
        );

        let undone = uninstall(&home).unwrap();
        assert_eq!(
            undone,
            Done::Removed {
                file: config.clone(),
                restored: Some("sccache".into())
            }
        );
        let text = fs::read_to_string(&config).unwrap();
        assert!(text.contains("rustc-wrapper = \"sccache\""), "{text}");
        assert!(!text.contains("CARGO_SEED"), "{text}");
        assert_eq!(uninstall(&home).unwrap(), Done::NothingToUndo);
    }

    #[test]
    fn a_workspace_setting_wins_over_the_users() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("cargo-home");
        let ws = d.path().join("ws");
        fs::create_dir_all(ws.join(".cargo")).unwrap();
        fs::create_dir_all(&home).unwrap();
        fs::write(
            ws.join(".cargo/config.toml"),
            "[build]\nrustc-wrapper = \"/usr/bin/sccache\"\n",
        )
        .unwrap();
        fs::write(
            home.join("config.toml"),
            "[build]\nrustc-wrapper = \"cargo-seed\"\n",
        )
        .unwrap();
        assert!(matches!(
            detect(&ws, &home),
            Wrapper::Other { ref program, .. } if program == "/usr/bin/sccache"
        ));
        let err = install(&ws, &home, Path::new("/x/cargo-seed")).unwrap_err();
        assert!(err.to_string().contains("takes precedence"), "{err}");

        fs::write(
            ws.join(".cargo/config.toml"),
            "[build]\nrustc-wrapper = \"\"\n",
        )
        .unwrap();
        assert_eq!(
            detect(&ws, &home),
            Wrapper::Absent,
            "an empty value turns it off"
        );
        fs::remove_file(ws.join(".cargo/config.toml")).unwrap();
        assert!(detect(&ws, &home).is_ours());
    }
}
