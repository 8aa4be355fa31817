//! The workspace as cargo sees it: asked of `cargo metadata`, never guessed.
//!
//! Honours `--manifest-path`, `CARGO_TARGET_DIR`, `build.target-dir` and
//! `build.build-dir` because cargo does the resolving.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("`cargo metadata` failed")]
    Metadata(#[source] cargo_metadata::Error),
    #[error("could not read the home directory to locate CARGO_HOME")]
    NoCargoHome,
    #[error("`secret-env` under [workspace.metadata.seed] in {manifest} is not a list of names")]
    SecretEnv { manifest: PathBuf },
    #[error("[workspace.metadata.seed] {key} in {manifest} must be {expected}")]
    Config {
        manifest: PathBuf,
        key: &'static str,
        expected: &'static str,
    },
}

/// What cargo-seed needs to know about the workspace it runs in.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    /// Where final artifacts go (`target/`).
    pub target_dir: PathBuf,
    /// Where intermediate artifacts go: `.fingerprint`, `deps`, `build`,
    /// `incremental`. The same as `target_dir` unless `build.build-dir` is set.
    pub build_dir: PathBuf,
    /// The names of the workspace's member packages.
    pub members: Vec<String>,
    /// `[workspace.metadata.seed] store = "…"`, if any.
    pub configured_store: Option<String>,
    /// `[workspace.metadata.seed] secret-env = ["…"]`: variables that are
    /// secrets besides the secret-looking names.
    pub configured_secret_env: Vec<String>,
    /// `[workspace.metadata.seed] cover = ["build", "test --no-run"]`: the
    /// cargo commands `publish` covers when none is given.
    pub configured_covers: Vec<String>,
    /// `[workspace.metadata.seed] trusted-keys = ["…"]`, unparsed: see
    /// [`crate::snapshot::signing::TrustedKeys::configured`].
    pub configured_trusted_keys: Vec<String>,
    /// `[workspace.metadata.seed] cache-size = "…"`, in bytes: the bound of
    /// the local blob cache.
    pub configured_cache_size: Option<u64>,
    pub cargo_home: PathBuf,
}

/// The cargo executable: `$CARGO` when run as a cargo subcommand.
pub(crate) fn cargo_exe() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

impl Workspace {
    pub fn load(manifest_path: Option<&Path>) -> Result<Workspace, WorkspaceError> {
        let mut cmd = cargo_metadata::MetadataCommand::new();
        cmd.cargo_path(cargo_exe()).no_deps();
        if let Some(path) = manifest_path {
            cmd.manifest_path(path);
        }
        let meta = cmd.exec().map_err(WorkspaceError::Metadata)?;
        let seed = meta.workspace_metadata.get("seed");
        let configured_store = seed
            .and_then(|seed| seed.get("store"))
            .and_then(|s| s.as_str())
            .map(str::to_owned);
        let members = meta
            .workspace_packages()
            .iter()
            .map(|p| p.name.to_string())
            .collect();
        let manifest = || meta.workspace_root.join("Cargo.toml").into_std_path_buf();
        // Unlike a misspelt store, a misspelt list of secrets must not pass
        // unnoticed: publishing would leak what it names.
        let configured_secret_env =
            string_list(seed, "secret-env").ok_or_else(|| WorkspaceError::SecretEnv {
                manifest: manifest(),
            })?;
        // A trust root that cannot be read must not read as "no keys".
        let configured_trusted_keys =
            string_list(seed, "trusted-keys").ok_or_else(|| WorkspaceError::Config {
                manifest: manifest(),
                key: "trusted-keys",
                expected: "a list of public keys (strings)",
            })?;
        let configured_covers =
            string_list(seed, "cover").ok_or_else(|| WorkspaceError::Config {
                manifest: manifest(),
                key: "cover",
                expected: "a list of cargo commands (strings)",
            })?;
        let configured_cache_size = match seed.and_then(|seed| seed.get("cache-size")) {
            None => None,
            Some(size) => Some(
                size.as_str()
                    .and_then(crate::store::cache::parse_size)
                    .or_else(|| size.as_u64())
                    .ok_or_else(|| WorkspaceError::Config {
                        manifest: manifest(),
                        key: "cache-size",
                        expected: "a size such as \"10G\" or \"500M\" (\"0\" turns the cache off)",
                    })?,
            ),
        };
        let target_dir = PathBuf::from(meta.target_directory);
        let build_dir = meta
            .build_directory
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir.clone());
        Ok(Workspace {
            members,
            root: meta.workspace_root.into(),
            target_dir,
            build_dir,
            configured_store,
            configured_secret_env,
            configured_covers,
            configured_trusted_keys,
            configured_cache_size,
            cargo_home: cargo_home()?,
        })
    }

    /// `<build-dir>/<profile dir>`: the directory a snapshot restores.
    pub(crate) fn profile_build_dir(&self, profile: &str) -> PathBuf {
        self.build_dir.join(profile_dir_name(profile))
    }
}

/// `[workspace.metadata.seed] <key> = ["…"]`: empty when absent, `None`
/// when it is not a list of strings.
fn string_list(seed: Option<&serde_json::Value>, key: &str) -> Option<Vec<String>> {
    match seed.and_then(|seed| seed.get(key)) {
        None => Some(Vec::new()),
        Some(list) => list
            .as_array()?
            .iter()
            .map(|n| n.as_str().map(str::to_owned))
            .collect(),
    }
}

/// `CARGO_HOME` as cargo resolves it.
pub(crate) fn cargo_home() -> Result<PathBuf, WorkspaceError> {
    if let Some(home) = std::env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        return Ok(if home.is_absolute() {
            home
        } else {
            std::env::current_dir().unwrap_or_default().join(home)
        });
    }
    dirs::home_dir()
        .map(|h| h.join(".cargo"))
        .ok_or(WorkspaceError::NoCargoHome)
}

/// The directory cargo uses for a profile: `dev` and `test` build into
/// `debug`, `release` and `bench` into `release`, a custom profile into its name.
pub(crate) fn profile_dir_name(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "release" | "bench" => "release",
        other => other,
    }
}

/// The profile a snapshot of profile directory `dir` (relative to the
/// build dir) is published as: `debug` holds `dev` and `test`, `release`
/// holds `release` and `bench`. `None` for a cross build's
/// `<triple>/<profile>`.
pub(crate) fn profile_of_dir(dir: &Path) -> Option<String> {
    let mut parts = dir.components();
    let (Some(std::path::Component::Normal(name)), None) = (parts.next(), parts.next()) else {
        return None;
    };
    Some(match name.to_str()? {
        "debug" => "dev".to_owned(),
        other => other.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn profiles_of_dirs() {
        assert_eq!(
            super::profile_of_dir(Path::new("debug")).as_deref(),
            Some("dev")
        );
        assert_eq!(
            super::profile_of_dir(Path::new("release")).as_deref(),
            Some("release")
        );
        assert_eq!(
            super::profile_of_dir(Path::new("ci")).as_deref(),
            Some("ci")
        );
        assert_eq!(
            super::profile_of_dir(Path::new("x86_64-unknown-linux-musl/debug")),
            None
        );
    }

    #[test]
    fn profile_dirs() {
        assert_eq!(super::profile_dir_name("dev"), "debug");
        assert_eq!(super::profile_dir_name("bench"), "release");
        assert_eq!(super::profile_dir_name("ci"), "ci");
    }
}
