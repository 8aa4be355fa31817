//! The moment a `cargo seed gc` running beside a publish can do the most
//! harm, made to happen on purpose: the publish has found (and refreshed) or
//! uploaded every blob it will reference, and its manifest does not exist
//! yet, so a gc sees those blobs as unreferenced. Racing two processes would
//! rarely hit that moment; this holds the publish there, runs the test's
//! code, and lets it go on.
//!
//! The publish runs in the test's process, through the library, on the real
//! store wrapped in [`Window`]; everything else (gc, seeding) runs the real
//! binary as the other tests do.

#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use cargo_seed::cargo::workspace::Workspace;
use cargo_seed::publish::cover::Cover;
use cargo_seed::publish::{self, PublishOptions, Published};
use cargo_seed::report::Reporter;
use cargo_seed::snapshot::secrets::SecretNames;
use cargo_seed::store::{parse_manifest_key, Listing, ReadBound, Store, StoreError};

/// `store`, with `hook` run once, just before the first manifest is put.
/// Every operation is passed on, `touch` and `modified` included: left to
/// the trait's defaults they would quietly do nothing.
struct Window<'a, R> {
    store: &'a dyn Store,
    hook: Mutex<Option<Box<dyn FnOnce() -> R + Send + 'a>>>,
    ran: Mutex<Option<R>>,
}

impl<R: Send> Store for Window<'_, R> {
    fn location(&self) -> String {
        self.store.location()
    }
    fn is_remote(&self) -> bool {
        self.store.is_remote()
    }
    fn get(&self, key: &str, bound: ReadBound) -> Result<Box<dyn Read + Send>, StoreError> {
        self.store.get(key, bound)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.store.exists(key)
    }
    fn put_file(&self, key: &str, src: &Path) -> Result<(), StoreError> {
        if parse_manifest_key(key).is_some() {
            if let Some(hook) = self.hook.lock().unwrap().take() {
                *self.ran.lock().unwrap() = Some(hook());
            }
        }
        self.store.put_file(key, src)
    }
    fn list(&self, prefix: &str) -> Result<Option<Vec<Listing>>, StoreError> {
        self.store.list(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store.delete(key)
    }
    fn modified(&self, key: &str) -> Result<Option<SystemTime>, StoreError> {
        self.store.modified(key)
    }
    fn touch(&self, key: &str) -> Result<(), StoreError> {
        self.store.touch(key)
    }
}

/// Publishes CI's checkout `ci` (its `build` in the dev profile) to
/// `store`, running `hook` after every blob is in the store and before the
/// manifest is; returns what the publish and `hook` returned.
///
/// In-process publishes take one at a time: they name their scratch files
/// in the build dir after the process id.
pub fn publish_with_window<R: Send>(
    ci: &Path,
    store: &dyn Store,
    hook: impl FnOnce() -> R + Send,
) -> (Vec<Published>, R) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let manifest_path = ci.join("Cargo.toml");
    let ws = Workspace::load(Some(&manifest_path)).unwrap();
    let covers = [Cover::build("dev", &[]).unwrap()];
    let secrets = SecretNames::new([]);
    let opts = PublishOptions {
        manifest_path: Some(&manifest_path),
        covers: &covers,
        secrets: &secrets,
        signing_key: None,
        trusted: None,
    };
    let window = Window {
        store,
        hook: Mutex::new(Some(Box::new(hook))),
        ran: Mutex::new(None),
    };
    let published = publish::publish(&ws, &window, &opts, &Reporter::default())
        .unwrap_or_else(|e| panic!("publish from {}: {e:?}", ci.display()));
    let ran = window.ran.into_inner().unwrap();
    (published, ran.expect("the publish put a manifest"))
}
