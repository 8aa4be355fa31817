//! The cargo commands a snapshot covers: CI's `build`, `test --no-run`,
//! `check --all-targets`, `clippy --all-targets`… Each is run again at
//! publish (a no-op right after CI ran it) to learn exactly which units it
//! uses; the snapshot holds the union.

use std::fmt;

/// The cargo subcommands whose units live in the build dir's profile
/// directories. `run` would run the program and `doc` writes elsewhere.
const COMMANDS: [&str; 5] = ["build", "check", "test", "bench", "clippy"];

#[derive(Debug, thiserror::Error)]
pub enum CoverError {
    #[error("`{text}` is not a command line (unbalanced quotes?)")]
    Unparsable { text: String },
    #[error("`{text}`: cargo-seed covers only `cargo {}` commands", COMMANDS.join("`, `cargo "))]
    Command { text: String },
    #[error("`{text}`: cargo-seed sets --message-format itself")]
    MessageFormat { text: String },
}

/// One covered command: a cargo subcommand and its arguments, as CI ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    args: Vec<String>,
}

impl Cover {
    /// Reads `test --no-run --workspace` (words split as a shell would).
    pub fn parse(text: &str) -> Result<Cover, CoverError> {
        let args = shlex::split(text).ok_or_else(|| CoverError::Unparsable {
            text: text.to_owned(),
        })?;
        Cover::from_args(args, text)
    }

    fn from_args(args: Vec<String>, text: &str) -> Result<Cover, CoverError> {
        if !args.first().is_some_and(|c| COMMANDS.contains(&c.as_str())) {
            return Err(CoverError::Command {
                text: text.to_owned(),
            });
        }
        let own = args.iter().take_while(|a| *a != "--");
        if own.clone().any(|a| a.starts_with("--message-format")) {
            return Err(CoverError::MessageFormat {
                text: text.to_owned(),
            });
        }
        Ok(Cover { args })
    }

    /// `build --profile <profile> <extra>`: what `cargo seed publish -- …`
    /// always meant, and the cover when none is configured.
    pub fn build(profile: &str, extra: &[String]) -> Result<Cover, CoverError> {
        let mut args = vec![
            "build".to_owned(),
            "--profile".to_owned(),
            profile.to_owned(),
        ];
        args.extend(extra.iter().cloned());
        let text = shlex::try_join(args.iter().map(String::as_str)).unwrap_or_default();
        Cover::from_args(args, &text)
    }

    /// The arguments for cargo: JSON messages (with rendered diagnostics on
    /// stderr), placed before a `--` that passes the rest to a tool, and
    /// `--no-run` for tests and benches: publishing observes builds, it
    /// never runs what they built.
    pub(crate) fn cargo_args(&self, manifest_path: Option<&std::path::Path>) -> Vec<String> {
        let split = self
            .args
            .iter()
            .position(|a| a == "--")
            .unwrap_or(self.args.len());
        let (own, rest) = self.args.split_at(split);
        let mut out = own.to_vec();
        out.push("--message-format=json-render-diagnostics".to_owned());
        if matches!(own[0].as_str(), "test" | "bench") && !own.iter().any(|a| a == "--no-run") {
            out.push("--no-run".to_owned());
        }
        if let Some(m) = manifest_path {
            out.push("--manifest-path".to_owned());
            out.push(m.display().to_string());
        }
        out.extend(rest.iter().cloned());
        out
    }
}

impl fmt::Display for Cover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = self.args.iter().map(String::as_str);
        match shlex::try_join(words) {
            Ok(text) => f.write_str(&text),
            Err(_) => f.write_str(&self.args.join(" ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_read_as_a_shell_splits_words() {
        let c = Cover::parse("clippy --all-targets -- -D warnings").unwrap();
        assert_eq!(
            c.cargo_args(None),
            [
                "clippy",
                "--all-targets",
                "--message-format=json-render-diagnostics",
                "--",
                "-D",
                "warnings"
            ]
        );
        let c = Cover::parse("build --features 'a b'").unwrap();
        assert_eq!(c.cargo_args(None)[2], "a b");
        assert_eq!(c.to_string(), "build --features 'a b'");
    }

    #[test]
    fn tests_are_built_never_run() {
        let c = Cover::parse("test --workspace").unwrap();
        assert!(c.cargo_args(None).contains(&"--no-run".to_owned()));
        let c = Cover::parse("test --no-run").unwrap();
        let args = c.cargo_args(None);
        assert_eq!(args.iter().filter(|a| *a == "--no-run").count(), 1);
    }

    #[test]
    fn only_building_commands_are_covered() {
        for bad in [
            "run",
            "doc",
            "install foo",
            "",
            "build --message-format=short",
            "build 'x",
        ] {
            assert!(Cover::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Cover::build("release", &["--locked".to_owned()])
                .unwrap()
                .to_string(),
            "build --profile release --locked"
        );
    }
}
