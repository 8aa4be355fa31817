//! Signed snapshots: whether a manifest was published by someone this
//! workspace trusts. Whoever can write to a store decides what runs on every
//! machine that seeds from it; a signature made in CI with a secret key, and
//! checked against public keys committed with the code, takes that power away
//! from anyone who can merely write to the store.
//!
//! What is signed is [`message`]: the manifest's exact bytes (by digest)
//! bound to the commit and variant it is stored under, so a signed manifest
//! cannot be replayed for another commit or variant. The signature lives
//! beside the manifest, in one line of text ([`SIGNATURE_TAG`], the signer's
//! public key, the signature).
//!
//! This module must never accept a snapshot whose signature it has not
//! verified against one of the trusted keys; the key named in a signature
//! file only says which trusted key to try, it is never trusted itself. It
//! must never print or log a secret key: only `cargo seed keygen` shows one,
//! once, on stdout.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::digest::{hex, short_digest};

/// How a secret key is written (then 64 lowercase hex digits).
pub const SECRET_PREFIX: &str = "cargo-seed-secret-ed25519:";
/// How a public key is written (then 64 lowercase hex digits).
pub const PUBLIC_PREFIX: &str = "cargo-seed-ed25519:";
/// The first field of a signature file; a new format gets a new tag.
pub const SIGNATURE_TAG: &str = "cargo-seed-signature-v1";
/// The most of a signature file that is read: it is one line of about 220
/// bytes, and a store must not make a reader swallow more.
pub const SIGNATURE_CAP: u64 = 4096;
/// Sets snapshot signatures apart from anything else the key could sign.
const DOMAIN: &[u8] = b"cargo-seed snapshot v1\0";

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
    fn of(public: &[u8; 32]) -> KeyId {
        KeyId(short_digest(public))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// CI's signing key. Its `Debug` shows only the public half.
pub struct SecretKey(SigningKey);

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
    pub fn to_text(&self) -> String {
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
pub struct PublicKey(VerifyingKey);

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
pub struct TrustedKeys(Vec<PublicKey>);

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

/// What is wrong with a signature file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureFileError {
    #[error("larger than {SIGNATURE_CAP} bytes")]
    TooLarge,
    #[error("not one line of three fields")]
    Shape,
    #[error("not in the format this cargo-seed reads (`{SIGNATURE_TAG}`)")]
    Format,
    #[error("the signer's key is not 64 lowercase hexadecimal digits")]
    Key,
    #[error("the signature is not 128 lowercase hexadecimal digits")]
    Signature,
}

/// What a snapshot's signature signs: the manifest's digest, bound to where
/// it is stored.
pub fn message(commit: &str, variant: &str, manifest: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest(manifest);
    let mut m = Vec::with_capacity(DOMAIN.len() + commit.len() + variant.len() + 2 + 32);
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(commit.as_bytes());
    m.push(0);
    m.extend_from_slice(variant.as_bytes());
    m.push(0);
    m.extend_from_slice(&digest);
    m
}

fn parse_signature_file(file: &[u8]) -> Result<([u8; 32], Signature), SignatureFileError> {
    let text = std::str::from_utf8(file).map_err(|_| SignatureFileError::Shape)?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let fields: Vec<&str> = line.split(' ').collect();
    let [tag, key, signature] = fields[..] else {
        return Err(SignatureFileError::Shape);
    };
    if tag != SIGNATURE_TAG {
        return Err(SignatureFileError::Format);
    }
    let key = decode_hex::<32>(key).ok_or(SignatureFileError::Key)?;
    let signature = decode_hex::<64>(signature).ok_or(SignatureFileError::Signature)?;
    Ok((key, Signature::from_bytes(&signature)))
}

/// Exactly `2 * N` lowercase hex digits.
fn decode_hex<const N: usize>(digits: &str) -> Option<[u8; N]> {
    fn value(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let digits = digits.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const VARIANT: &str = "dev-x86_64-unknown-linux-gnu-0123456789abcdef";
    const MANIFEST: &[u8] = b"{\"schema\":1}";

    fn key(seed: u8) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&[seed; 32]))
    }

    fn trusting(keys: &[&SecretKey]) -> TrustedKeys {
        TrustedKeys::new(keys.iter().map(|k| k.public()).collect())
    }

    #[test]
    fn keys_round_trip_through_their_text() {
        let secret = SecretKey::generate().unwrap();
        let text = secret.to_text();
        assert!(text.starts_with(SECRET_PREFIX));
        assert_eq!(text.len(), SECRET_PREFIX.len() + 64);
        let again = SecretKey::parse(&format!("  {text}\n")).unwrap();
        assert_eq!(again.public(), secret.public());

        let public = secret.public().to_string();
        assert!(public.starts_with(PUBLIC_PREFIX));
        assert_eq!(public.len(), PUBLIC_PREFIX.len() + 64);
        assert_eq!(PublicKey::parse(&public).unwrap(), secret.public());
        let id = secret.public().id().to_string();
        assert_eq!(id.len(), 16);
        assert_eq!(id, short_digest(secret.public().0.as_bytes()));
        assert!(!format!("{secret:?}").contains(&text[SECRET_PREFIX.len()..]));
        // Two keys from the random source differ.
        assert_ne!(SecretKey::generate().unwrap().public(), secret.public());
    }

    #[test]
    fn signatures_verify_for_the_signed_bytes_and_place_only() {
        let k = key(1);
        let trust = trusting(&[&key(9), &k]);
        let sig = k.sign(COMMIT, VARIANT, MANIFEST);
        assert!(sig.starts_with(SIGNATURE_TAG) && sig.ends_with('\n') && sig.len() < 256);
        let ok = trust.verify(COMMIT, VARIANT, MANIFEST, Some(sig.as_bytes()));
        assert_eq!(ok, Ok(k.public().id()));

        let bad = Err(Refusal::BadSignature {
            key: k.public().id(),
        });
        let mut altered = MANIFEST.to_vec();
        altered[3] ^= 1;
        assert_eq!(
            trust.verify(COMMIT, VARIANT, &altered, Some(sig.as_bytes())),
            bad
        );
        let other_commit = "f".repeat(40);
        assert_eq!(
            trust.verify(&other_commit, VARIANT, MANIFEST, Some(sig.as_bytes())),
            bad
        );
        assert_eq!(
            trust.verify(COMMIT, "release-x", MANIFEST, Some(sig.as_bytes())),
            bad
        );
        // The boundary between commit and variant is part of what is signed.
        let (c, v) = (&COMMIT[..39], format!("{}{VARIANT}", &COMMIT[39..]));
        assert_eq!(trust.verify(c, &v, MANIFEST, Some(sig.as_bytes())), bad);
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let (k, stranger) = (key(1), key(2));
        let trust = trusting(&[&k]);
        let verify = |file: &[u8]| trust.verify(COMMIT, VARIANT, MANIFEST, Some(file));

        assert_eq!(
            trust.verify(COMMIT, VARIANT, MANIFEST, None),
            Err(Refusal::Unsigned)
        );
        let theirs = stranger.sign(COMMIT, VARIANT, MANIFEST);
        let refused = verify(theirs.as_bytes()).unwrap_err();
        assert_eq!(
            refused,
            Refusal::UntrustedKey {
                key: stranger.public().id()
            }
        );
        assert!(refused
            .to_string()
            .contains(&stranger.public().id().to_string()));

        // The stranger's signature under the trusted key's name.
        let ours = k.sign(COMMIT, VARIANT, MANIFEST);
        let forged = format!(
            "{SIGNATURE_TAG} {} {}\n",
            hex(k.public().0.as_bytes()),
            theirs.trim_end().rsplit(' ').next().unwrap()
        );
        assert_eq!(
            verify(forged.as_bytes()),
            Err(Refusal::BadSignature {
                key: k.public().id()
            })
        );

        let malformed = |file: &str| match verify(file.as_bytes()) {
            Err(Refusal::Malformed(e)) => e,
            other => panic!("{file:?}: {other:?}"),
        };
        let fields: Vec<&str> = ours.trim_end().split(' ').collect();
        assert_eq!(malformed(""), SignatureFileError::Shape);
        assert_eq!(
            malformed(&ours.replace(' ', "  ")),
            SignatureFileError::Shape
        );
        assert_eq!(
            malformed(&format!("{ours}{ours}")),
            SignatureFileError::Shape
        );
        assert_eq!(
            malformed(&ours.replace(SIGNATURE_TAG, "cargo-seed-signature-v2")),
            SignatureFileError::Format
        );
        let upper = format!("{} {} {}", fields[0], fields[1].to_uppercase(), fields[2]);
        assert_eq!(malformed(&upper), SignatureFileError::Key);
        let short = format!("{} {} {}", fields[0], fields[1], &fields[2][2..]);
        assert_eq!(malformed(&short), SignatureFileError::Signature);
        assert!(matches!(
            trust.verify(COMMIT, VARIANT, MANIFEST, Some(&[0xff, 0xfe][..])),
            Err(Refusal::Malformed(SignatureFileError::Shape))
        ));
    }

    #[test]
    fn malformed_keys_are_refused_and_never_echoed() {
        // 0xab: hex digits that have an uppercase form.
        let secret = key(0xab).to_text();
        let public = key(0xab).public().to_string();
        assert_eq!(
            SecretKey::parse("hunter2").unwrap_err(),
            KeyError::Prefix {
                expected: SECRET_PREFIX
            }
        );
        assert_eq!(
            SecretKey::parse(&public).unwrap_err(),
            KeyError::PublicForSecret
        );
        assert_eq!(
            SecretKey::parse(&secret[..secret.len() - 1]).unwrap_err(),
            KeyError::Digits
        );
        assert_eq!(
            SecretKey::parse(
                &secret
                    .to_uppercase()
                    .replace("CARGO-SEED-SECRET-ED25519:", SECRET_PREFIX)
            )
            .unwrap_err(),
            KeyError::Digits
        );
        assert_eq!(
            PublicKey::parse(&secret).unwrap_err(),
            KeyError::SecretForPublic
        );
        assert_eq!(
            PublicKey::parse(&format!("{public}0")).unwrap_err(),
            KeyError::Digits
        );
        assert_eq!(
            PublicKey::parse(&public.replacen(PUBLIC_PREFIX, "ed25519:", 1)).unwrap_err(),
            KeyError::Prefix {
                expected: PUBLIC_PREFIX
            }
        );
        // The identity point: small order, so it would accept forgeries.
        let weak = format!("{PUBLIC_PREFIX}01{}", "0".repeat(62));
        assert_eq!(PublicKey::parse(&weak).unwrap_err(), KeyError::Point);

        // A secret key configured as a trusted one is named, not shown.
        let err = TrustedKeys::configured(Some(&format!("{public}, {secret}")), &[]).unwrap_err();
        assert_eq!(err.origin, KeyOrigin::Environment);
        assert_eq!(err.reason, KeyError::SecretForPublic);
        let said = format!("{err}: {}", err.reason);
        assert!(!said.contains(&secret[SECRET_PREFIX.len()..]), "{said}");
        assert!(said.contains("CARGO_SEED_TRUSTED_KEYS"), "{said}");
    }

    #[test]
    fn the_environment_wins_over_the_workspace() {
        let (a, b, c) = (key(1).public(), key(2).public(), key(3).public());
        let file = vec![c.to_string()];
        let env = format!("{a},{b}\n\t{c} ,");
        let trust = TrustedKeys::configured(Some(&env), &file).unwrap().unwrap();
        assert_eq!(trust.0, [a.clone(), b.clone(), c.clone()]);
        let trust = TrustedKeys::configured(Some(&a.to_string()), &file)
            .unwrap()
            .unwrap();
        assert!(trust.contains(&a) && !trust.contains(&c));
        // An empty variable (a CI secret that is not passed on) is unset.
        let trust = TrustedKeys::configured(Some(" "), &file).unwrap().unwrap();
        assert!(trust.contains(&c) && !trust.contains(&a));
        assert!(TrustedKeys::configured(None, &[]).unwrap().is_none());

        let err = TrustedKeys::configured(None, &[c.to_string(), "cargo-seed-ed25519:zz".into()])
            .unwrap_err();
        assert_eq!(err.origin, KeyOrigin::Workspace);
        assert_eq!(err.reason, KeyError::Digits);
        assert!(err.to_string().contains("`cargo-seed-ed25519:zz`"), "{err}");
    }
}
