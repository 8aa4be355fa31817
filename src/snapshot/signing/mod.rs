//! Signed snapshots: whether a manifest was published by someone this
//! workspace trusts. Whoever can write to a store decides what runs on every
//! machine that seeds from it; a signature made in CI with a secret key, and
//! checked against public keys committed with the code, takes that power away
//! from anyone who can merely write to the store.
//!
//! What is signed is `signature::message`: the manifest's exact bytes (by digest)
//! bound to the commit and variant it is stored under, so a signed manifest
//! cannot be replayed for another commit or variant. The signature lives
//! beside the manifest, in one line of text (`SIGNATURE_TAG`, the signer's
//! public key, the signature).
//!
//! This module must never accept a snapshot whose signature it has not
//! verified against one of the trusted keys; the key named in a signature
//! file only says which trusted key to try, it is never trusted itself. It
//! must never print or log a secret key: only `cargo seed keygen` shows one,
//! once, on stdout.
//!
//! The parts, each depending only on those before it: the `signature`
//! file format and what is signed, the `key`s, and the `trust` a checkout
//! places in them.

mod key;
mod signature;
#[cfg(test)]
mod tests;
mod trust;

pub use key::{KeyError, KeyId, PublicKey, SecretKey};
pub use signature::{SignatureFileError, SIGNATURE_CAP};
pub use trust::{KeyOrigin, Refusal, TrustedKeyError, TrustedKeys};
