//! Which layout cargo writes here, asked of cargo itself: it checks an
//! empty library in a scratch build dir, with the workspace's configuration
//! and this environment, and the file it reports says where a unit's files
//! go. Known before any build dir exists, so a fresh checkout never gets a
//! snapshot of the other layout. About 0.1 s.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::Message;

use super::{unit_hash, Layout};

/// Why cargo's layout could not be learned.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("failed to run `cargo check` on a scratch crate to learn cargo's build-dir layout")]
    Io(#[from] io::Error),
    #[error("`cargo check` of a scratch crate failed ({status}), so cargo's build-dir layout is unknown: {stderr}")]
    Failed { status: String, stderr: String },
    #[error("cargo wrote a scratch crate's metadata to {0}, which is in no build-dir layout cargo-seed knows")]
    Unrecognised(PathBuf),
}

/// The layout `cargo` writes when run in `workspace_root` with this
/// process's environment.
pub(crate) fn probe(cargo: &Path, workspace_root: &Path) -> Result<Layout, ProbeError> {
    probe_with_rustc_info(cargo, workspace_root).map(|(layout, _)| layout)
}

/// The file where cargo keeps what it asked rustc (`rustc -vV`, the target's
/// file names and cfg), in the build dir, keyed by the rustc, its wrapper and
/// the flags it was asked with: cargo checks the key before it uses any of it.
pub(crate) const RUSTC_INFO: &str = ".rustc_info.json";

/// [`probe`], and the contents of the [`RUSTC_INFO`] cache the probe's cargo
/// wrote with this machine's configuration, when it wrote one of at most
/// 1 MiB: a build dir that has none would make the first build ask rustc
/// again (about 50 ms).
pub(crate) fn probe_with_rustc_info(
    cargo: &Path,
    workspace_root: &Path,
) -> Result<(Layout, Option<Vec<u8>>), ProbeError> {
    let scratch = tempfile::Builder::new()
        .prefix("cargo-seed-layout-")
        .tempdir()?;
    let root = scratch.path();
    std::fs::create_dir_all(root.join("src"))?;
    // Its own workspace, so that a scratch dir below a workspace (a
    // temporary dir inside a checkout) is not taken for a member.
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"cargo-seed-layout-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )?;
    std::fs::write(root.join("src/lib.rs"), "")?;
    let build = root.join("build");
    // The working directory is the workspace's, so that cargo reads the
    // same configuration files (an `[unstable]` table, `build.target`).
    let out = Command::new(cargo)
        .current_dir(workspace_root)
        .args([
            "check",
            "--offline",
            "--message-format",
            "json",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", root.join("target"))
        .env("CARGO_BUILD_BUILD_DIR", &build)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(ProbeError::Failed {
            status: out.status.to_string(),
            stderr: stderr.lines().last().unwrap_or("").to_owned(),
        });
    }
    let reported = Message::parse_stream(&out.stdout[..])
        .filter_map(Result::ok)
        .find_map(|m| match m {
            Message::CompilerArtifact(a) => a.filenames.into_iter().next(),
            _ => None,
        })
        .map(|f| f.into_std_path_buf())
        .unwrap_or_else(|| build.clone());
    let layout = classify(&reported).ok_or(ProbeError::Unrecognised(reported))?;
    let rustc_info = [build.join(RUSTC_INFO), root.join("target").join(RUSTC_INFO)]
        .iter()
        .find_map(|p| {
            let meta = std::fs::symlink_metadata(p).ok()?;
            (meta.is_file() && meta.len() <= 1 << 20)
                .then(|| std::fs::read(p).ok())
                .flatten()
        });
    Ok((layout, rustc_info))
}

/// `…/deps/lib<name>-<hash>.rmeta` is the flat layout,
/// `…/build/<name>/<hash>/out/lib<name>-<hash>.rmeta` the per-unit one.
fn classify(rmeta: &Path) -> Option<Layout> {
    let hash = unit_hash(&rmeta.file_name()?.to_string_lossy())?.to_owned();
    let dir = rmeta.parent()?;
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    if name(dir)? == "deps" {
        return Some(Layout::Flat);
    }
    let unit = dir.parent()?;
    let build = unit.parent()?.parent()?;
    (name(dir)? == "out" && name(unit)? == hash && name(build)? == "build")
        .then_some(Layout::PerUnit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_each_cargo_reports() {
        let flat = Path::new("/t/debug/deps/libcargo_seed_layout_probe-a74a82eb4040597b.rmeta");
        assert_eq!(classify(flat), Some(Layout::Flat));
        let per_unit = Path::new(
            "/t/debug/build/cargo-seed-layout-probe/8e11bef9d54a4e5b/out/libcargo_seed_layout_probe-8e11bef9d54a4e5b.rmeta",
        );
        assert_eq!(classify(per_unit), Some(Layout::PerUnit));
        let unknown =
            Path::new("/t/debug/units/x/libcargo_seed_layout_probe-8e11bef9d54a4e5b.rmeta");
        assert_eq!(classify(unknown), None);
        assert_eq!(classify(Path::new("/t/debug/deps/libx.rmeta")), None);
    }

    /// The cargo this runs under: whatever layout it writes, the probe
    /// names it, and it is the one a real build writes beside it.
    #[test]
    fn probe_agrees_with_a_real_build() {
        let cargo = crate::cargo::workspace::cargo_exe();
        let here = std::env::current_dir().unwrap();
        let layout = probe(&cargo, &here).unwrap();
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("src")).unwrap();
        std::fs::write(
            ws.path().join("Cargo.toml"),
            "[package]\nname = \"p\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(ws.path().join("src/lib.rs"), "").unwrap();
        let ok = Command::new(&cargo)
            .current_dir(ws.path())
            .args(["check", "--offline", "-q"])
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_BUILD_DIR")
            .status()
            .unwrap();
        assert!(ok.success());
        assert_eq!(
            Layout::detect(&ws.path().join("target/debug")),
            Some(layout)
        );
    }
}
