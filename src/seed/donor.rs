//! `cargo seed --from <path>`: the units come from another checkout's build
//! dir on this machine instead of a store. The donor's fresh units are
//! found by cargo itself ([`crate::publish::donor`]), under cargo's lock on
//! the donor's profile dir, held until every file is copied, so that no
//! build there changes a file in between. Nothing is written to the donor.
//!
//! Files are copied, not linked: cargo truncates a fingerprint in place
//! before it rebuilds a unit, which through a hard link would make the
//! donor rebuild too. `std::fs::copy` lets the kernel share extents where
//! the file system can (`copy_file_range`: a reflink on btrfs and XFS).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use super::resolve::Found;
use super::swap::{lock_cargo_shared, CargoLock};
use crate::cargo::layout::Layout;
use crate::cargo::unit_id::UnitId;
use crate::cargo::workspace::Workspace;
use crate::git::{self, CommitId};
use crate::publish::cover::Cover;
use crate::publish::donor::{observe_donor, DonorBuild};
use crate::report::Reporter;
use crate::snapshot::archive::Unpacked;
use crate::snapshot::manifest::Unit;
use crate::snapshot::want::Want;
use crate::Error;

mod copy;
mod prefetch;

use copy::{copy_tree, mapping, Mapping};

use prefetch::{Prefetch, Prefetched};

/// A donor checkout, locked, with its fresh units planned.
pub(crate) struct Donor {
    /// The donor's workspace root.
    pub root: PathBuf,
    /// Whether its code may run here as a signed snapshot's does (the
    /// incremental replay loads proc-macros): only a build dir of this user's.
    pub own: bool,
    members: HashMap<UnitId, Vec<PathBuf>>,
    dir: PathBuf,
    mapping: Arc<Mapping>,
    /// Copies started while cargo looked, until staging first asks.
    prefetch: Mutex<Option<Prefetch>>,
    prefetched: OnceLock<Option<Prefetched>>,
    _lock: CargoLock,
    _scratch: prefetch::Held,
}

/// Finds the donor at `path` (a checkout of the same repository, its root
/// or its workspace root), locks its profile dir and plans its fresh units
/// as a snapshot of its `HEAD`.
pub(crate) fn open(
    ws: &Workspace,
    (path, donor): (&Path, Workspace),
    profile: &str,
    covers: &[Cover],
    want: &Want,
    (prefetch, wait): (bool, bool),
    reporter: &Reporter,
) -> Result<(Found, Donor), Error> {
    let refused = |why: String| Error::Donor {
        path: path.to_owned(),
        why,
    };
    if same_dir(&donor.build_dir, &ws.build_dir) {
        return Err(refused("it is this checkout's own build dir".into()));
    }
    if !same_repository(&ws.root, &donor.root) {
        return Err(refused(
            "it is not a checkout of this repository (no root commit in common)".into(),
        ));
    }
    let dir = donor.profile_build_dir(profile);
    if !dir.is_dir() {
        return Err(refused(format!(
            "it has no {} build ({} is missing)",
            profile,
            dir.display()
        )));
    }
    // `--from auto` does not wait on a checkout a build holds: it looks at
    // another (the hook runs it, and must not hang a `git worktree add`).
    let Some(lock) = lock_cargo_shared(&dir, wait, reporter)? else {
        return Err(refused("a build there holds its build dir".into()));
    };
    let scratch = shadow_place(ws)?;
    let rustc = crate::rustc::toolchain::sysroot_rustc(&ws.root).ok();
    // Copying starts as cargo reports each unit fresh, within half the room
    // the build dir's file system has: the rest is for staging what was not
    // copied ahead, and for cargo's own work.
    let room = super::free_space(&ws.build_dir).map_or(u64::MAX, |(bytes, _)| {
        bytes.saturating_sub(2 * super::FREE_SPACE_MARGIN) / 2
    });
    let mapping = Arc::new(mapping(ws, &donor, want.layout));
    let mut copying = prefetch
        .then(|| {
            let threads = crate::pool::threads().max(2);
            Prefetch::start(&dir, &ws.build_dir, threads, room, mapping.clone()).ok()
        })
        .flatten();
    let mut on_fresh = |members: &[PathBuf]| {
        if let Some(p) = copying.as_mut() {
            p.queue(members);
        }
    };
    let DonorBuild {
        manifest,
        members,
        dir,
        cargo_said,
    } = observe_donor(
        &donor,
        profile,
        covers,
        (want.layout, &want.toolchain, rustc.as_deref()),
        scratch.path(),
        &mut on_fresh,
    )?;
    if manifest.units.is_empty() {
        let said = cargo_said
            .map(|s| format!(" (cargo: {s})"))
            .unwrap_or_default();
        return Err(refused(format!("cargo finds no unit of it fresh{said}")));
    }
    if let Some(why) = manifest.incompatibility(want) {
        return Err(refused(why.to_string()));
    }
    let commit = git::resolve_commit(&donor.root, "HEAD")?;
    let distance = git::distance(&ws.root, "HEAD", commit.as_str()).unwrap_or(0);
    let found = Found {
        commit,
        distance,
        manifest,
        signer: None,
    };
    let own = same_owner(&dir, scratch.path());
    Ok((
        found,
        Donor {
            root: donor.root,
            own,
            members,
            dir,
            mapping,
            prefetch: Mutex::new(copying),
            prefetched: OnceLock::new(),
            _lock: lock,
            _scratch: scratch,
        },
    ))
}

impl Donor {
    /// Bytes of `units` already copied ahead into this checkout's build
    /// dir (waiting for the copies to be made): room they need no more.
    pub(super) fn copied_ahead(&self, units: &[&Unit]) -> u64 {
        let Some(prefetched) = self.prefetched() else {
            return 0;
        };
        let members = units
            .iter()
            .filter_map(|u| self.members.get(&u.id))
            .flatten();
        prefetched.bytes_of(members)
    }

    /// The copies made while cargo looked, once they are all made.
    fn prefetched(&self) -> Option<&Prefetched> {
        self.prefetched
            .get_or_init(|| {
                let running = self.prefetch.lock().ok()?.take()?;
                Some(running.finish())
            })
            .as_ref()
    }

    /// Copies unit `unit`'s files from the donor into `root` (a staging
    /// dir), each with the mtime `stamp`, as an unpack would leave them.
    pub(super) fn copy_unit(
        &self,
        unit: &Unit,
        root: &Path,
        layout: Layout,
        stamp: SystemTime,
    ) -> Result<Unpacked, Error> {
        let mut unpacked = Unpacked {
            files: Vec::new(),
            symlinks: false,
        };
        let members = self.members.get(&unit.id).map(Vec::as_slice).unwrap_or(&[]);
        let prefetched = self.prefetched();
        for member in members {
            if let Some(files) = prefetched.and_then(|p| p.take(member, root, stamp)) {
                unpacked.files.extend(files);
                continue;
            }
            copy_tree(
                &self.dir,
                root,
                member,
                (stamp, &self.mapping),
                &mut unpacked.files,
            )
            .map_err(Error::io("copy from the donor", &self.dir.join(member)))?;
        }
        // What the unit owns and nothing else, as an archive entry would be
        // checked.
        for (rel, _) in &unpacked.files {
            if !layout.owns(&unit.id, rel, false) {
                return Err(Error::Donor {
                    path: self.root.clone(),
                    why: format!("{} is not a file of {}", rel.display(), unit.name),
                });
            }
        }
        Ok(unpacked)
    }
}

/// The layout of the donor's build of `profile`, and cargo's cache of what
/// it asked rustc there (at most 1 MiB): this cargo's, for the seed need
/// not ask cargo (a build of the other layout has no unit cargo finds
/// fresh). `None` when the build dir says neither.
pub(crate) fn layout_of(
    donor: &Workspace,
    profile: &str,
) -> Option<(crate::cargo::layout::Layout, Option<Vec<u8>>)> {
    let layout = Layout::detect(&donor.profile_build_dir(profile))?;
    let info = donor
        .build_dir
        .join(crate::cargo::layout::probe::RUSTC_INFO);
    let info = fs::metadata(&info)
        .ok()
        .filter(|m| m.is_file() && m.len() <= 1 << 20)
        .and_then(|_| fs::read(&info).ok());
    Some((layout, info))
}

/// Where the shadow goes, a file for every file of the donor's units made
/// and removed: in memory where there is room for that (`/dev/shm`, 256
/// MiB free), else in the system's temporary dir, else in the build dir.
/// On a disk, ext4 makes files slowly where many were just removed (it
/// reads the inode table not to reuse a recently deleted inode). Each is
/// held locked while in use, so that a later seed removes only those a
/// killed one left ([`remove_leftovers`]).
fn shadow_place(ws: &Workspace) -> Result<prefetch::Held, Error> {
    let in_memory = Path::new(SHM);
    let roomy = super::free_space(in_memory).is_some_and(|(bytes, _)| bytes >= 256 << 20);
    let mut places = vec![std::env::temp_dir(), ws.build_dir.clone()];
    if roomy {
        places.insert(0, in_memory.to_owned());
    }
    let mut last = None;
    for place in places {
        let _ = fs::create_dir_all(&place);
        match prefetch::Held::new(&place, SHADOW) {
            Ok(held) => return Ok(held),
            Err(e) => last = Some(Error::io("create a directory in", &place)(e)),
        }
    }
    Err(last.expect("places to try"))
}

/// Where a shadow may be: see [`shadow_place`].
const SHM: &str = "/dev/shm";
const SHADOW: &str = ".cargo-seed-shadow-";

/// Removes what a killed seed left in `build_dir` (copies made ahead) and
/// in the places a shadow goes: those no seed holds locked.
pub(super) fn remove_leftovers(build_dir: &Path) {
    prefetch::remove_unheld(build_dir, prefetch::PREFIX);
    for place in [
        Path::new(SHM).to_owned(),
        std::env::temp_dir(),
        build_dir.to_owned(),
    ] {
        prefetch::remove_unheld(&place, SHADOW);
    }
}

/// The donor's workspace: `path` is its workspace root, or the root of a
/// checkout whose workspace sits where this one's does below its own.
pub(crate) fn locate(ws: &Workspace, path: &Path) -> Result<Workspace, Error> {
    let below = git::toplevel(&ws.root)
        .ok()
        .and_then(|top| ws.root.strip_prefix(top).ok().map(Path::to_owned))
        .unwrap_or_default();
    let manifest = [path.join(&below), path.to_owned()]
        .into_iter()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|m| m.is_file())
        .ok_or_else(|| Error::Donor {
            path: path.to_owned(),
            why: "no Cargo.toml there".into(),
        })?;
    Workspace::load(Some(&manifest)).map_err(|e| Error::Donor {
        path: path.to_owned(),
        why: e.to_string(),
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Whether two checkouts share a root commit.
fn same_repository(a: &Path, b: &Path) -> bool {
    let roots = |dir: &Path| git::root_commits(dir).unwrap_or_default();
    let theirs = roots(b);
    roots(a).iter().any(|c| theirs.contains(c))
}

/// Whether `dir` has the owner of `mine`, a directory this process made.
fn same_owner(dir: &Path, mine: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(dir), fs::metadata(mine)) {
            (Ok(a), Ok(b)) => a.uid() == b.uid(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, mine);
        false
    }
}

/// The covered commands a donor is looked at with: the workspace's
/// `cover` list, else `build` in the profile, and for `dev` also the test
/// harnesses `cargo test` builds.
pub(crate) fn covers(ws: &Workspace, profile: &str) -> Result<Vec<Cover>, Error> {
    if !ws.configured_covers.is_empty() {
        return ws
            .configured_covers
            .iter()
            .map(|c| Ok(Cover::parse(c)?))
            .collect();
    }
    let mut covers = vec![Cover::build(profile, &[])?];
    if profile == "dev" {
        covers.push(Cover::parse("test --no-run")?);
    }
    Ok(covers)
}

/// What one donor would give this checkout: units reused and rebuilt, and
/// the bytes copied, as the seed would judge them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gives {
    pub reused: usize,
    pub rebuilt: usize,
    pub bytes: u64,
}

/// Judges a donor's units for this checkout, as a seed from it would.
pub(crate) fn gives(ws: &Workspace, found: &Found) -> Gives {
    let (verdicts, ..) = super::freshness::judge(ws, &found.manifest, &mut Vec::new());
    let mut g = Gives {
        reused: 0,
        rebuilt: 0,
        bytes: 0,
    };
    for unit in &found.manifest.units {
        if unit.kind == crate::snapshot::manifest::UnitKind::Incremental {
            continue;
        }
        match verdicts.get(&unit.id) {
            Some(super::freshness::Verdict::Reuse) => {
                g.reused += 1;
                g.bytes += unit.blob.size;
            }
            _ => g.rebuilt += 1,
        }
    }
    g
}

/// How many of the nearest checkouts `--from auto` looks at: each is a
/// cargo run over its sources and a digest of what it would give.
const AUTO_TRIES: usize = 3;

/// A donor chosen and opened: the snapshot it is, and the checkout, locked.
pub(crate) type Opened = (Found, Donor);

/// A candidate donor: another checkout of this repository with a build of
/// the profile, and what it would give, or why it cannot.
pub(crate) struct Offer {
    pub root: PathBuf,
    pub commit: Option<CommitId>,
    /// Commits between it and this checkout's `HEAD`, either side.
    pub distance: Option<usize>,
    pub worktree: bool,
    pub gives: Result<Gives, String>,
}

/// The other checkouts of this repository that hold a build of `profile`,
/// the nearest commit first (unknown distances last).
fn candidates(ws: &Workspace, profile: &str) -> Result<Vec<Offer>, Error> {
    let dir_name = crate::cargo::workspace::profile_dir_name(profile);
    let mut out: Vec<Offer> = crate::local::checkouts::checkouts(&ws.root)
        .map_err(|e| Error::Donor {
            path: PathBuf::from("auto"),
            why: e.to_string(),
        })?
        .into_iter()
        .filter(|c| c.exists)
        .filter(|c| {
            c.build_dir
                .as_ref()
                .is_some_and(|b| b.join(dir_name).is_dir())
        })
        .map(|c| Offer {
            distance: c
                .head
                .as_ref()
                .and_then(|h| git::distance(&ws.root, "HEAD", h.as_str())),
            root: c.root,
            commit: c.head,
            worktree: c.worktree,
            gives: Err(String::new()),
        })
        .collect();
    out.sort_by_key(|o| o.distance.unwrap_or(usize::MAX));
    Ok(out)
}

/// Looks at every candidate (`limit`: only that many, the nearest first),
/// judging what each would give; returns them, and the one that gives the
/// most units (the nearer on a tie), opened.
pub(crate) fn survey(
    ws: &Workspace,
    profile: &str,
    covers: &[Cover],
    want: &Want,
    limit: usize,
) -> Result<(Vec<Offer>, Option<Opened>), Error> {
    let mut offers = candidates(ws, profile)?;
    let mut best: Option<(Found, Donor, usize)> = None;
    let quiet = Reporter::silent();
    for offer in offers.iter_mut().take(limit) {
        let opened = locate(ws, &offer.root).and_then(|donor| {
            open(
                ws,
                (&offer.root, donor),
                profile,
                covers,
                want,
                (false, false),
                &quiet,
            )
        });
        match opened {
            Ok((found, donor)) => {
                let g = gives(ws, &found);
                offer.gives = Ok(g);
                if g.reused > best.as_ref().map_or(0, |(.., most)| *most) {
                    best = Some((found, donor, g.reused));
                }
            }
            Err(Error::Donor { why, .. }) => offer.gives = Err(why),
            Err(e) => offer.gives = Err(e.to_string()),
        }
    }
    offers.truncate(limit);
    Ok((offers, best.map(|(f, d, _)| (f, d))))
}

/// `--from auto`: the candidate that gives the most units, among the
/// [`AUTO_TRIES`] nearest.
pub(crate) fn open_best(
    ws: &Workspace,
    profile: &str,
    covers: &[Cover],
    want: &Want,
) -> Result<(Found, Donor), Error> {
    let (offers, best) = survey(ws, profile, covers, want, AUTO_TRIES)?;
    best.ok_or_else(|| Error::Donor {
        path: PathBuf::from("auto"),
        why: match offers.len() {
            0 => format!("no other checkout of this repository has a {profile} build"),
            n => format!(
                "none of the {n} nearest checkouts with a {profile} build offers a unit: {}",
                offers
                    .iter()
                    .map(|o| format!(
                        "{} ({})",
                        o.root.display(),
                        o.gives.as_ref().err().map(String::as_str).unwrap_or("")
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        },
    })
}
