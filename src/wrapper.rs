//! `RUSTC_WRAPPER=cargo-seed`: CI's build runs rustc through cargo-seed, which
//! records the exact command line of every incremental (workspace) unit so
//! that a seed elsewhere can recompute the options hash rustc will expect
//! (NOTES facts 10–12). The wrapper runs rustc unchanged: cargo does not
//! hash `RUSTC_WRAPPER` into fingerprints (NOTES fact 13), and a failure to
//! record never fails the build.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use serde::{Deserialize, Serialize};

/// Where records go, relative to the profile dir.
pub const RECORDS: &str = ".cargo-seed-rustc";

/// One rustc invocation, as cargo made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    pub cwd: PathBuf,
    /// The arguments after the rustc path.
    pub args: Vec<String>,
}

/// Whether cargo-seed was started as a rustc wrapper: cargo passes the path
/// of rustc (or of clippy-driver) first.
pub fn is_wrapper_call(first: &OsString) -> bool {
    let stem = Path::new(first)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem == "rustc" || stem.starts_with("rustc-") || stem == "clippy-driver"
}

pub fn run(rustc: OsString, args: Vec<OsString>) -> ExitCode {
    let status = match Command::new(&rustc).args(&args).status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: cargo-seed (as RUSTC_WRAPPER) failed to run {rustc:?}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if status.success() {
        record(&args);
    }
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}

/// `-C name=value` or `-Cname=value`.
pub fn codegen_opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let opt = if a == "-C" {
            it.next().map(String::as_str)
        } else {
            a.strip_prefix("-C")
        };
        if let Some(v) = opt.and_then(|o| o.strip_prefix(&prefix)) {
            return Some(v);
        }
    }
    None
}

fn record(args: &[OsString]) {
    let Some(args) = args
        .iter()
        .map(|a| a.to_str().map(str::to_owned))
        .collect::<Option<Vec<String>>>()
    else {
        return;
    };
    let (Some(incremental), Some(extra)) = (
        codegen_opt(&args, "incremental"),
        codegen_opt(&args, "extra-filename"),
    ) else {
        return;
    };
    let Some(profile_dir) = Path::new(incremental).parent() else {
        return;
    };
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    let dir = profile_dir.join(RECORDS);
    let hash = extra.trim_start_matches('-');
    let text = serde_json::to_vec(&Invocation {
        cwd,
        args: args.clone(),
    })
    .expect("serialises");
    let tmp = dir.join(format!(".{hash}.{}", std::process::id()));
    let _ = fs::create_dir_all(&dir)
        .and_then(|()| fs::write(&tmp, text))
        .and_then(|()| fs::rename(&tmp, dir.join(format!("{hash}.json"))));
}

/// The recorded invocation of the unit whose file names end in `-<hash>`.
pub fn recorded(profile_dir: &Path, hash: &str) -> Option<Invocation> {
    let text = fs::read(profile_dir.join(RECORDS).join(format!("{hash}.json"))).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codegen_options_in_both_spellings() {
        let args: Vec<String> = [
            "--crate-name",
            "app",
            "-C",
            "incremental=/t/debug/incremental",
            "-Cextra-filename=-0123",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            codegen_opt(&args, "incremental"),
            Some("/t/debug/incremental")
        );
        assert_eq!(codegen_opt(&args, "extra-filename"), Some("-0123"));
        assert_eq!(codegen_opt(&args, "metadata"), None);
    }

    #[test]
    fn knows_a_wrapper_call() {
        assert!(is_wrapper_call(
            &"/home/u/.rustup/toolchains/x/bin/rustc".into()
        ));
        assert!(is_wrapper_call(&"rustc".into()));
        assert!(!is_wrapper_call(&"seed".into()));
        assert!(!is_wrapper_call(&"publish".into()));
    }
}
