//! Keys, signature files and the trust verdict.

use ed25519_dalek::SigningKey;

use super::key::{PUBLIC_PREFIX, SECRET_PREFIX};
use super::signature::SIGNATURE_TAG;
use super::*;
use crate::digest::{hex, short_digest};

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
