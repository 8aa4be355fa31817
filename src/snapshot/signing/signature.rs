//! The signature file beside a manifest: one line of text (the format tag,
//! the signer's public key, the signature), and the message it signs, the
//! manifest's digest bound to the commit and variant it is stored under.
//!
//! It only reads and writes that format: it must never decide whether a
//! signer is trusted (`trust` does), and never accept a file that is not
//! exactly one line of three fields in a format it knows.

use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};

/// The first field of a signature file; a new format gets a new tag.
pub(super) const SIGNATURE_TAG: &str = "cargo-seed-signature-v1";
/// The most of a signature file that is read: it is one line of about 220
/// bytes, and a store must not make a reader swallow more.
pub const SIGNATURE_CAP: u64 = 4096;
/// Sets snapshot signatures apart from anything else the key could sign.
const DOMAIN: &[u8] = b"cargo-seed snapshot v1\0";

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
pub(super) fn message(commit: &str, variant: &str, manifest: &[u8]) -> Vec<u8> {
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

pub(super) fn parse_signature_file(
    file: &[u8],
) -> Result<([u8; 32], Signature), SignatureFileError> {
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
pub(super) fn decode_hex<const N: usize>(digits: &str) -> Option<[u8; N]> {
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
