//! What compiler this is: `rustc -vV`, asked of the same `rustc` cargo uses.
//!
//! Every fingerprint hashes the exact `rustc -vV` output, so a snapshot is
//! only reusable with a byte-identical one; this module never normalises it.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The toolchain a snapshot was built with, or that is installed here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Toolchain {
    /// The whole `rustc -vV` output, trimmed.
    pub verbose_version: String,
    /// `release:` line, e.g. `1.95.0`.
    pub release: String,
    /// `host:` line, e.g. `x86_64-unknown-linux-gnu`.
    pub host: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    #[error("failed to run `{rustc} -vV`")]
    Spawn {
        rustc: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{rustc} -vV` failed: {stderr}")]
    Failed { rustc: String, stderr: String },
    #[error("`{rustc} -vV` printed no `{field}:` line")]
    Missing { rustc: String, field: &'static str },
    #[error("`{rustc}` in {} is not its sysroot's `{}`", .dir.display(), .binary.display())]
    NotInSysroot {
        rustc: String,
        dir: std::path::PathBuf,
        binary: std::path::PathBuf,
    },
}

/// The compiler binary itself that `$RUSTC` (or `rustc`) runs in `dir`,
/// where the build runs it: its sysroot's `bin/rustc`, once its `-vV`
/// matches. rustup's proxy picks a toolchain by the `rust-toolchain.toml`
/// of whatever directory it runs in; the binary reads none, so a replay in
/// another directory still runs the compiler the build will.
pub(crate) fn sysroot_rustc(dir: &Path) -> Result<std::path::PathBuf, ToolchainError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let ask = |program: &OsStr, args: &[&str]| -> Result<String, ToolchainError> {
        let shown = program.to_string_lossy().into_owned();
        let out = Command::new(program)
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|source| ToolchainError::Spawn {
                rustc: shown.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(ToolchainError::Failed {
                rustc: shown,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let sysroot = ask(rustc.as_ref(), &["--print", "sysroot"])?;
    let binary = Path::new(&sysroot).join("bin").join("rustc");
    let same =
        binary.is_file() && ask(rustc.as_ref(), &["-vV"])? == ask(binary.as_os_str(), &["-vV"])?;
    if !same {
        return Err(ToolchainError::NotInSysroot {
            rustc,
            dir: dir.to_owned(),
            binary,
        });
    }
    Ok(binary)
}

/// Whether the standard library for `target` is installed in rustc's
/// sysroot, so that this machine can build for it.
pub(crate) fn has_std(target: &str) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let Ok(out) = Command::new(&rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    out.status.success()
        && Path::new(&sysroot)
            .join("lib/rustlib")
            .join(target)
            .join("lib")
            .is_dir()
}

impl Toolchain {
    /// Asks `$RUSTC` (or `rustc`) in `dir`, so rustup overrides of the
    /// workspace apply as they do for cargo.
    pub(crate) fn detect(dir: &Path) -> Result<Toolchain, ToolchainError> {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
        let out = Command::new(&rustc)
            .arg("-vV")
            .current_dir(dir)
            .output()
            .map_err(|source| ToolchainError::Spawn {
                rustc: rustc.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(ToolchainError::Failed {
                rustc,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Self::parse(&rustc, &String::from_utf8_lossy(&out.stdout))
    }

    pub fn parse(rustc: &str, text: &str) -> Result<Toolchain, ToolchainError> {
        let field = |name: &'static str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
                .ok_or(ToolchainError::Missing {
                    rustc: rustc.to_owned(),
                    field: name,
                })
        };
        Ok(Toolchain {
            verbose_version: text.trim().to_owned(),
            release: field("release")?,
            host: field("host")?,
        })
    }

    /// A short, stable name for this exact toolchain, used in store keys.
    pub fn key(&self) -> String {
        crate::digest::short_digest(self.verbose_version.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rustc_vv() {
        let text = "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\ncommit-hash: 5980\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\nLLVM version: 22.1.2\n";
        let t = Toolchain::parse("rustc", text).unwrap();
        assert_eq!(t.release, "1.95.0");
        assert_eq!(t.host, "x86_64-unknown-linux-gnu");
        assert!(t.verbose_version.ends_with("22.1.2"));
        assert!(Toolchain::parse("rustc", "rustc 1.0\n").is_err());
    }
}
