//! Keeping CI's environment values out of the store.
//!
//! Cargo and rustc write down the values of the environment variables a unit
//! depends on: a build script run's fingerprint holds the value of every
//! variable it watches (`rerun-if-env-changed`), rustc's dep-info and
//! cargo's encoded copy of it the value of every `env!`/`option_env!`, and
//! the compiled code and incremental state embed what the crate read.
//! Whoever can read the store could read them. So publishing
//!
//! - writes no watched value into the manifest: `redact` keeps a digest in
//!   its place (nothing at all for a secret-looking name). At seed time that
//!   tells whether this machine has CI's value (`local_values`); if so, the
//!   fields are exactly CI's again and relocation proves cargo's hash as
//!   before; if not, cargo would rerun the unit anyway;
//! - withholds every unit that read a secret-looking variable set in CI
//!   (`secret_read`), with everything built from it: a developer does not
//!   have CI's value, so cargo rebuilds those units on their side anyway.
//!
//! This module must never let a value into the manifest, nor call a name the
//! user listed harmless.

use std::ffi::OsString;
use std::fmt;

use crate::cargo::fingerprint::Fields;
use crate::digest::sha256_hex;
use crate::snapshot::manifest::{EnvValue, FingerprintRecord, WatchedEnv};

/// Fragments of secret-looking names, matched case-insensitively.
const FRAGMENTS: [&str; 8] = [
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
];

/// Variables cargo itself sets for a compilation or a build script, from
/// `Cargo.toml` and its own state: never secrets, and without this
/// `env!("CARGO_PKG_AUTHORS")` (clap's `crate_authors!`) would look like one.
/// A trailing `_` marks a prefix.
const SET_BY_CARGO: [&str; 10] = [
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_BIN_EXE_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "OUT_DIR",
];

/// Which variable names are secret-looking: the built-in fragments, and the
/// names the user lists (`secret-env` in `[workspace.metadata.seed]`, or
/// `CARGO_SEED_SECRET_ENV`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretNames {
    listed: Vec<String>,
    /// No name is a secret: for units that stay on this machine.
    none: bool,
}

impl SecretNames {
    pub fn new(listed: impl IntoIterator<Item = String>) -> SecretNames {
        SecretNames {
            listed: listed.into_iter().collect(),
            none: false,
        }
    }

    /// No variable is a secret: a sibling checkout's units are copied on
    /// this machine, for the same user, and never leave it.
    pub(crate) fn none() -> SecretNames {
        SecretNames {
            listed: Vec::new(),
            none: true,
        }
    }

    /// Names separated by commas or whitespace: `DB_URL, SENTRY_DSN`.
    pub(crate) fn parse_list(text: &str) -> Vec<String> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub(crate) fn is_secret(&self, var: &str) -> bool {
        if self.none {
            return false;
        }
        if self.listed.iter().any(|l| l.eq_ignore_ascii_case(var)) {
            return true;
        }
        let upper = var.to_ascii_uppercase();
        let set_by_cargo = SET_BY_CARGO.iter().any(|p| match p.strip_suffix('_') {
            Some(_) => upper.starts_with(p),
            None => upper == *p,
        });
        !set_by_cargo && FRAGMENTS.iter().any(|f| upper.contains(f))
    }
}

/// The first secret-looking variable among `env` (names with the value CI
/// had) that was set in CI.
pub(crate) fn secret_read<'a>(
    env: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    names: &SecretNames,
) -> Option<&'a str> {
    env.into_iter()
        .find(|(var, value)| value.is_some() && names.is_secret(var))
        .map(|(var, _)| var)
}

/// A fingerprint record as a manifest stores it: each watched value is
/// `null` in `fields`, and `env` says what it was (unset, its digest, or
/// withheld for a secret-looking name). Fields cargo-seed cannot parse are
/// not stored at all: they might hold values in a shape it does not know,
/// and such a unit cannot be relocated anyway.
pub(crate) fn redact(record: &FingerprintRecord, names: &SecretNames) -> FingerprintRecord {
    let Some(mut fields) = Fields::parse(&record.fields) else {
        return FingerprintRecord {
            fields: String::new(),
            env: Vec::new(),
            ..record.clone()
        };
    };
    let env: Vec<WatchedEnv> = fields
        .watched_env()
        .map(|(var, value)| WatchedEnv {
            var: var.to_owned(),
            value: match value {
                None => EnvValue::Unset,
                Some(_) if names.is_secret(var) => EnvValue::Withheld,
                Some(v) => EnvValue::Sha256(sha256_hex(v.as_bytes())),
            },
        })
        .collect();
    if env.is_empty() {
        return record.clone();
    }
    fields
        .set_watched_values(vec![None; env.len()])
        .expect("as many values as watched variables");
    FingerprintRecord {
        file: record.file.clone(),
        hash: record.hash.clone(),
        fields: fields.to_json(),
        env,
    }
}

/// This machine's values of the watched variables, in order, when every one
/// is exactly CI's (by digest); otherwise the first that is not. `lookup`
/// reads a variable (`std::env::var_os` in `cargo seed`).
pub(crate) fn local_values(
    watched: &[WatchedEnv],
    lookup: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Vec<Option<String>>, EnvMismatch> {
    watched
        .iter()
        .map(|w| {
            let var = w.var.clone();
            match (&w.value, lookup(&w.var)) {
                (EnvValue::Withheld, _) => Err(EnvMismatch::Withheld { var }),
                (EnvValue::Unset, None) => Ok(None),
                (EnvValue::Unset, Some(_)) => Err(EnvMismatch::SetHere { var }),
                (EnvValue::Sha256(_), None) => Err(EnvMismatch::UnsetHere { var }),
                (EnvValue::Sha256(digest), Some(here)) => match here.into_string() {
                    Ok(here) if sha256_hex(here.as_bytes()) == *digest => Ok(Some(here)),
                    _ => Err(EnvMismatch::Differs { var }),
                },
            }
        })
        .collect()
}

/// Why this machine's environment does not give back CI's fingerprint of a
/// unit: cargo would rerun it here.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnvMismatch {
    Differs { var: String },
    SetHere { var: String },
    UnsetHere { var: String },
    Withheld { var: String },
}

impl fmt::Display for EnvMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvMismatch::Differs { var } => write!(f, "CI's value of {var} differs here"),
            EnvMismatch::SetHere { var } => write!(f, "{var} is set here but was unset in CI"),
            EnvMismatch::UnsetHere { var } => write!(f, "{var} is unset here but was set in CI"),
            EnvMismatch::Withheld { var } => {
                write!(f, "CI's value of {var} was withheld from the snapshot")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build-script run's fingerprint as cargo 1.95 wrote it (pinned in
    /// `fingerprint`'s tests too), watching `CC` (set) and an unset variable.
    const RUN: &str = r#"{"rustc":7458672600737419911,"features":"","declared_features":"","target":0,"profile":0,"path":0,"deps":[[11009375254044818469,"build_script_build",false,6931495264368205454]],"local":[{"RerunIfChanged":{"output":"debug/build/probe-ee69ccb76e862d29/output","paths":["build.rs"]}},{"RerunIfEnvChanged":{"var":"CC","val":"gcc-13"}},{"RerunIfEnvChanged":{"var":"PROBE_UNSET","val":null}}],"rustflags":[],"config":0,"compile_kind":0}"#;

    fn record(fields: &str) -> FingerprintRecord {
        let hash = Fields::parse(fields).unwrap().hash();
        FingerprintRecord {
            file: "run-build-script-build-script-build".into(),
            hash: crate::cargo::fingerprint::to_hash_file(hash),
            fields: fields.into(),
            env: vec![],
        }
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn secret_looking_names() {
        let names = SecretNames::new(SecretNames::parse_list("database_url,\n SENTRY_DSN"));
        for secret in [
            "DEPLOY_TOKEN",
            "github_token",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "PASSWD",
            "SSH_PRIVATE_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "NPM_AUTH",
            "DATABASE_URL",
            "sentry_dsn",
            "CARGO_REGISTRY_TOKEN",
        ] {
            assert!(names.is_secret(secret), "{secret}");
        }
        for plain in [
            "CC",
            "CFLAGS",
            "PKG_CONFIG_PATH",
            "OUT_DIR",
            "CARGO_PKG_AUTHORS",
            "CARGO_FEATURE_AUTH",
            "CARGO_MANIFEST_DIR",
        ] {
            assert!(!names.is_secret(plain), "{plain}");
        }
        // What the user lists wins over cargo's own names.
        assert!(SecretNames::new(["CARGO_PKG_AUTHORS".to_owned()]).is_secret("CARGO_PKG_AUTHORS"));
    }

    #[test]
    fn only_a_set_secret_looking_variable_is_a_secret_read() {
        let names = SecretNames::default();
        assert_eq!(
            secret_read([("CC", Some("gcc")), ("API_KEY", None)], &names),
            None
        );
        assert_eq!(
            secret_read([("CC", Some("gcc")), ("API_KEY", Some("k"))], &names),
            Some("API_KEY")
        );
    }

    #[test]
    fn the_manifest_keeps_digests_and_the_local_values_give_back_the_fields() {
        let cargo = record(RUN);
        let stored = redact(&cargo, &SecretNames::default());
        assert!(!stored.fields.contains("gcc-13"), "{}", stored.fields);
        assert_eq!(
            stored.env,
            vec![
                WatchedEnv {
                    var: "CC".into(),
                    value: EnvValue::Sha256(sha256_hex(b"gcc-13"))
                },
                WatchedEnv {
                    var: "PROBE_UNSET".into(),
                    value: EnvValue::Unset
                },
            ]
        );
        assert_eq!(stored.hash, "8ad0bb5e6d23bdf3");

        // The same values here: the fields are cargo's again, byte for byte.
        let values = local_values(&stored.env, &env(&[("CC", "gcc-13")])).unwrap();
        let mut fields = Fields::parse(&stored.fields).unwrap();
        fields.set_watched_values(values).unwrap();
        assert_eq!(fields.to_json(), RUN);

        for (here, why) in [
            (
                &[("CC", "clang")][..],
                EnvMismatch::Differs { var: "CC".into() },
            ),
            (&[][..], EnvMismatch::UnsetHere { var: "CC".into() }),
            (
                &[("CC", "gcc-13"), ("PROBE_UNSET", "1")][..],
                EnvMismatch::SetHere {
                    var: "PROBE_UNSET".into(),
                },
            ),
        ] {
            assert_eq!(local_values(&stored.env, &env(here)), Err(why));
        }
    }

    #[test]
    fn secret_looking_values_leave_not_even_a_digest() {
        let with_secret = RUN.replace(
            "\"CC\",\"val\":\"gcc-13\"",
            "\"API_KEY\",\"val\":\"hunter2\"",
        );
        let stored = redact(&record(&with_secret), &SecretNames::default());
        assert!(!stored.fields.contains("hunter2"));
        assert_eq!(stored.env[0].value, EnvValue::Withheld);
        assert!(!serde_json::to_string(&stored)
            .unwrap()
            .contains(&sha256_hex(b"hunter2")));
        assert_eq!(
            local_values(&stored.env, &env(&[("API_KEY", "hunter2")])),
            Err(EnvMismatch::Withheld {
                var: "API_KEY".into()
            })
        );
    }

    #[test]
    fn fields_of_an_unknown_shape_are_not_stored() {
        let unknown = RUN.replace("\"compile_kind\":0", "\"compile_kind\":0,\"new\":1");
        let cargo = FingerprintRecord {
            fields: unknown,
            ..record(RUN)
        };
        let stored = redact(&cargo, &SecretNames::default());
        assert_eq!(stored.fields, "");
        assert_eq!(stored.hash, cargo.hash);
    }
}
