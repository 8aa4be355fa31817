//! `cargo seed publish`: store the build state of `HEAD` so that other
//! checkouts can seed from it.
//!
//! Blobs go first, each under its content digest (so unchanged units of the
//! next commit are not uploaded again); then, when CI signs, the signature
//! of the manifest's exact bytes; the manifest goes last, so a reader never
//! sees a snapshot whose blobs (or signature) are not all there.
//!
//! Units that read a secret-looking variable set in CI, and everything built
//! from them, are never packed (see [`crate::snapshot::secrets`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

mod check;
mod context;
pub mod cover;
pub(crate) mod donor;
pub(crate) mod observe;
mod pack;
mod plan;
mod variant;

use crate::cargo::layout;
use crate::cargo::workspace::{self, Workspace};
use crate::git::{self};
use crate::report::{Event, Reporter};
use crate::rustc::toolchain::Toolchain;
use crate::snapshot::inputs::Roots;
use crate::snapshot::manifest::{self};
use crate::store::Store;
use crate::Error;
use context::Context;
pub use context::{PublishOptions, Published};
use variant::{publish_variant, Group, Variant};

/// Publishes one snapshot per profile directory the covered commands build
/// into (`debug` for build, test, check and clippy; `release`…), in that
/// order; blobs they share are stored once.
pub fn publish(
    ws: &Workspace,
    store: &dyn Store,
    opts: &PublishOptions,
    reporter: &Reporter,
) -> Result<Vec<Published>, Error> {
    let toolchain = Toolchain::detect(&ws.root)?;
    let commit = git::resolve_commit(&ws.root, "HEAD")?;
    let dirty = git::is_dirty(&ws.root)?;
    if dirty {
        reporter.emit(Event::Warning {
            message: "the working tree has uncommitted changes; seeding still decides freshness by content"
                .into(),
        });
    }
    match (opts.signing_key, opts.trusted) {
        (None, Some(_)) => reporter.emit(Event::Warning {
            message: "this workspace trusts only signed snapshots and CARGO_SEED_SIGNING_KEY is not set: \
                      checkouts will refuse this one"
                .into(),
        }),
        (Some(key), Some(trusted)) if !trusted.contains(&key.public()) => reporter.emit(Event::Warning {
            message: format!(
                "the signing key {} is not among this workspace's trusted keys: checkouts will refuse this snapshot",
                key.public().id()
            ),
        }),
        _ => {}
    }

    // Which covered command built which snapshot's units: a host build's
    // go by the profile directory that holds them, a `--target` build's
    // (with the host units of that build) by its profile and target.
    let layout = layout::probe::probe(&workspace::cargo_exe(), &ws.root)?;
    let mut groups: BTreeMap<Variant, Group> = BTreeMap::new();
    for cover in opts.covers {
        let messages =
            observe::observe(&workspace::cargo_exe(), &ws.root, opts.manifest_path, cover)?;
        let dirs = layout::profile_dirs(&ws.build_dir);
        let split = observe::split_by_profile_dir(messages, &dirs, &ws.build_dir, &ws.target_dir)?;
        let cross: Vec<&PathBuf> = split
            .keys()
            .filter(|d| d.components().count() == 2)
            .collect();
        let cross = match cross[..] {
            [] => None,
            [dir] => {
                let target = dir
                    .parent()
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                let profile = dir.file_name().map(PathBuf::from).unwrap_or_default();
                Some((target, profile))
            }
            _ => {
                return Err(Error::CoverTargets {
                    cover: cover.to_string(),
                })
            }
        };
        for (dir, messages) in split {
            let (variant, host) = match &cross {
                None => (
                    Variant {
                        dir: dir.clone(),
                        target: None,
                    },
                    false,
                ),
                Some((target, profile)) => (
                    Variant {
                        dir: profile.clone(),
                        target: Some(target.clone()),
                    },
                    dir == *profile,
                ),
            };
            // Read right after the command: the final artifacts it names
            // (`target/debug/app`) are linked to its units until another
            // command links them to its own.
            let live = observe::live_units(&ws.build_dir.join(&dir), layout, &messages)?;
            let group = groups.entry(variant).or_default();
            group.live.extend(live, host);
            let shown = cover.to_string();
            if !group.covers.contains(&shown) {
                group.covers.push(shown);
            }
        }
    }
    let repository = git::toplevel(&ws.root)?;
    let cx = Context {
        roots: Roots::new(&ws.root, Some(&repository), &ws.cargo_home, &ws.build_dir),
        toolchain,
        commit,
        dirty,
        repository,
        layout,
        opts,
    };
    let siblings: Vec<manifest::Sibling> = groups
        .keys()
        .filter_map(|v| {
            Some(manifest::Sibling {
                profile: workspace::profile_of_dir(&v.dir)?,
                target: v.target.clone(),
            })
        })
        .collect();
    let mut published = Vec::new();
    for (variant, group) in groups {
        let Some(profile) = workspace::profile_of_dir(&variant.dir) else {
            reporter.emit(Event::Skipped {
                what: format!(
                    "the units in {} (from `cargo {}`)",
                    ws.build_dir.join(&variant.dir).display(),
                    group.covers.join("`, `cargo ")
                ),
                reason: "not in a profile directory cargo-seed knows".into(),
            });
            continue;
        };
        let me = manifest::Sibling {
            profile: profile.clone(),
            target: variant.target.clone(),
        };
        let group = Group {
            published_with: siblings.iter().filter(|s| **s != me).cloned().collect(),
            ..group
        };
        published.push(publish_variant(
            ws,
            store,
            &cx,
            &profile,
            variant.target.as_deref(),
            group,
            reporter,
        )?);
    }
    if published.is_empty() {
        return Err(Error::NothingToPublish {
            covers: opts.covers.iter().map(|c| c.to_string()).collect(),
        });
    }
    Ok(published)
}
