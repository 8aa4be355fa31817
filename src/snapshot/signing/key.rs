//! The keys: CI's secret key, the public keys a workspace trusts, their text
//! forms, and the short id that names a key in messages.
//!
//! It must never print, log or put into an error the text of a secret key:
//! only `cargo seed keygen` shows one, once, on stdout; a secret key's
//! `Debug` shows its public half.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use super::signature::{decode_hex, message, SIGNATURE_TAG};
use crate::digest::{hex, short_digest};

/// How a secret key is written (then 64 lowercase hex digits).
pub(super) const SECRET_PREFIX: &str = "cargo-seed-secret-ed25519:";
/// How a public key is written (then 64 lowercase hex digits).
pub(super) const PUBLIC_PREFIX: &str = "cargo-seed-ed25519:";
/// Why a key's text was not accepted. Never includes the text itself: it
/// may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("it does not start with `{expected}`")]
    Prefix { expected: &'static str },
    #[error("it is a public key (`{PUBLIC_PREFIX}…`); signing needs the secret key `cargo seed keygen` printed with it")]
    PublicForSecret,
    #[error("it is a SECRET key (`{SECRET_PREFIX}…`): only the public key belongs here; treat this secret as leaked and replace the key pair")]
    SecretForPublic,
    #[error("expected 64 lowercase hexadecimal digits after the prefix")]
    Digits,
    #[error("it is not a usable ed25519 public key")]
    Point,
}

/// A short, stable name for a public key in messages: the first 16 hex
/// digits of the sha256 of its 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId(String);

impl KeyId {
    pub(super) fn of(public: &[u8; 32]) -> KeyId {
        KeyId(short_digest(public))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// CI's signing key. Its `Debug` shows only the public half.
pub struct SecretKey(pub(super) SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public().id())
    }
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<SecretKey, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        let key = SecretKey(SigningKey::from_bytes(&seed));
        seed.fill(0);
        Ok(key)
    }

    /// Reads the text form, ignoring surrounding whitespace (a secret pasted
    /// with its line break).
    pub fn parse(text: &str) -> Result<SecretKey, KeyError> {
        let text = text.trim();
        let Some(digits) = text.strip_prefix(SECRET_PREFIX) else {
            return Err(if text.starts_with(PUBLIC_PREFIX) {
                KeyError::PublicForSecret
            } else {
                KeyError::Prefix {
                    expected: SECRET_PREFIX,
                }
            });
        };
        let seed = decode_hex::<32>(digits).ok_or(KeyError::Digits)?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// The text form: `cargo-seed-secret-ed25519:<64 hex>`. For keygen only.
    pub(crate) fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", hex(self.0.as_bytes()))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The signature file for `manifest` stored as `commit`'s `variant`.
    pub fn sign(&self, commit: &str, variant: &str, manifest: &[u8]) -> String {
        let signature = self.0.sign(&message(commit, variant, manifest));
        format!(
            "{SIGNATURE_TAG} {} {}\n",
            hex(self.0.verifying_key().as_bytes()),
            hex(&signature.to_bytes())
        )
    }
}

/// A key whose signatures are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(pub(super) VerifyingKey);

impl PublicKey {
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let text = text.trim();
        let Some(digits) = text.strip_prefix(PUBLIC_PREFIX) else {
            return Err(if text.starts_with(SECRET_PREFIX) {
                KeyError::SecretForPublic
            } else {
                KeyError::Prefix {
                    expected: PUBLIC_PREFIX,
                }
            });
        };
        let bytes = decode_hex::<32>(digits).ok_or(KeyError::Digits)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Point)?;
        // A small-order key would accept signatures nobody made.
        if key.is_weak() {
            return Err(KeyError::Point);
        }
        Ok(PublicKey(key))
    }

    pub fn id(&self) -> KeyId {
        KeyId::of(self.0.as_bytes())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex(self.0.as_bytes()))
    }
}
