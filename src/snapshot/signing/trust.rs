//! Which keys a checkout trusts (`CARGO_SEED_TRUSTED_KEYS`, else the
//! workspace's `trusted-keys`), and the verdict on a snapshot's signature.
//!
//! It must never accept a snapshot whose signature it has not verified
//! against one of the trusted keys: the key named in a signature file only
//! says which trusted key to try. A configured key that does not parse is an
//! error, never a reason to turn verification off.

use std::fmt;

use super::key::{KeyError, KeyId, PublicKey, SECRET_PREFIX};
use super::signature::{message, parse_signature_file, SignatureFileError};

/// Where a trusted key was configured, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    Environment,
    Workspace,
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyOrigin::Environment => "CARGO_SEED_TRUSTED_KEYS",
            KeyOrigin::Workspace => "[workspace.metadata.seed] trusted-keys",
        })
    }
}

/// A configured trusted key that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted key `{shown}` in {origin} is malformed")]
pub struct TrustedKeyError {
    /// The key as configured, or only its prefix if it is a secret key.
    pub shown: String,
    pub origin: KeyOrigin,
    #[source]
    pub reason: KeyError,
}

/// The keys whose signatures this checkout accepts.
#[derive(Debug, Clone)]
pub struct TrustedKeys(pub(super) Vec<PublicKey>);

impl TrustedKeys {
    /// The keys of `CARGO_SEED_TRUSTED_KEYS` (separated by commas and/or
    /// whitespace) if it names any, else those of the workspace's
    /// `trusted-keys`; `None` when neither does. Every configured key must
    /// parse: a typo must not quietly turn verification off.
    pub fn configured(
        env: Option<&str>,
        workspace: &[String],
    ) -> Result<Option<TrustedKeys>, TrustedKeyError> {
        let from_env: Vec<&str> = env
            .into_iter()
            .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|k| !k.is_empty())
            .collect();
        let (texts, origin) = if from_env.is_empty() {
            let texts = workspace.iter().map(String::as_str).collect();
            (texts, KeyOrigin::Workspace)
        } else {
            (from_env, KeyOrigin::Environment)
        };
        let mut keys = Vec::with_capacity(texts.len());
        for text in texts {
            let key = PublicKey::parse(text).map_err(|reason| TrustedKeyError {
                shown: shown(text),
                origin,
                reason,
            })?;
            keys.push(key);
        }
        Ok((!keys.is_empty()).then_some(TrustedKeys(keys)))
    }

    pub fn new(keys: Vec<PublicKey>) -> TrustedKeys {
        TrustedKeys(keys)
    }

    pub fn contains(&self, key: &PublicKey) -> bool {
        self.0.contains(key)
    }

    /// Checks `signature_file` (`None`: there is none) for `manifest`,
    /// stored as `commit`'s `variant`. Returns the signer's key id.
    pub fn verify(
        &self,
        commit: &str,
        variant: &str,
        manifest: &[u8],
        signature_file: Option<&[u8]>,
    ) -> Result<KeyId, Refusal> {
        let file = signature_file.ok_or(Refusal::Unsigned)?;
        let (signer, signature) = parse_signature_file(file).map_err(Refusal::Malformed)?;
        let id = KeyId::of(&signer);
        let Some(key) = self.0.iter().find(|k| k.0.as_bytes() == &signer) else {
            return Err(Refusal::UntrustedKey { key: id });
        };
        key.0
            .verify_strict(&message(commit, variant, manifest), &signature)
            .map_err(|_| Refusal::BadSignature { key: id.clone() })?;
        Ok(id)
    }
}

/// Why a snapshot is not accepted as authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unsigned (no signature beside the manifest), and only signed snapshots are trusted")]
    Unsigned,
    #[error("signed by key {key}, which is not a trusted key")]
    UntrustedKey { key: KeyId },
    #[error(
        "the signature by key {key} does not verify: the manifest or its signature was altered, \
         or they were copied from another commit or variant"
    )]
    BadSignature { key: KeyId },
    #[error("malformed signature file: {0}")]
    Malformed(SignatureFileError),
    #[error("stored outside `snapshots/<commit>/<variant>.json`, where no signature can cover it")]
    Misplaced,
}

/// A configured key as it may be shown: a secret key pasted by mistake is
/// shown by its prefix only, and long junk is cut short.
fn shown(text: &str) -> String {
    if text.starts_with(SECRET_PREFIX) {
        return format!("{SECRET_PREFIX}…");
    }
    let mut s: String = text.chars().take(90).flat_map(char::escape_debug).collect();
    if text.chars().count() > 90 {
        s.push('…');
    }
    s
}
