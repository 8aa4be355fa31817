//! What this machine needs of a snapshot ([`Want`]), and why a manifest
//! does not give it ([`Mismatch`]), decided from the manifest alone, before
//! anything is downloaded. A mismatch only ever makes a snapshot unusable.

use std::fmt;

use serde::Serialize;

use super::manifest::{Manifest, READS};
use crate::cargo::layout::Layout;
use crate::rustc::toolchain::Toolchain;

/// What the local build needs a snapshot to match.
#[derive(Debug, Clone)]
pub(crate) struct Want {
    pub toolchain: Toolchain,
    pub target: String,
    /// `--target` was given.
    pub cross: bool,
    pub profile: String,
    pub libc: Option<String>,
    /// The rustflags and linker cargo would use here; `None` if cargo-seed
    /// cannot tell, and then they are not compared.
    pub flags: Option<crate::cargo::flags::Resolved>,
    /// The build-dir layout cargo writes here.
    pub layout: Layout,
    /// What cargo asked rustc here, as the layout probe's cargo cached it
    /// (`cargo::layout::probe::RUSTC_INFO`): not compared with anything.
    pub rustc_info: Option<Vec<u8>>,
}

/// The C library this machine runs, as `getconf GNU_LIBC_VERSION` says
/// (`glibc 2.36`); `None` where it cannot tell (musl, other systems).
pub(crate) fn detect_libc() -> Option<String> {
    let out = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let v = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !v.is_empty()).then_some(v)
}

/// Why a snapshot cannot be used here: cargo would rebuild every unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mismatch {
    Schema {
        theirs: u32,
    },
    /// Units laid out as another cargo lays them: unpacked here, cargo
    /// would find none of them.
    Layout {
        theirs: Layout,
        here: Layout,
    },
    Profile {
        theirs: String,
        wanted: String,
    },
    Target {
        theirs: String,
        theirs_cross: bool,
        wanted: String,
        wanted_cross: bool,
    },
    NativeCpu,
    Libc {
        theirs: String,
        here: String,
    },
    /// Rustflags or linker, each side rendered, with where this machine's
    /// rustflags come from.
    Flags {
        theirs: String,
        here: String,
        from: Option<String>,
    },
    /// Another `rustc -vV` first line.
    Toolchain {
        theirs: String,
        here: String,
    },
    /// The same rustc, built for another host.
    Host {
        toolchain: String,
        theirs: String,
        here: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Schema { theirs } => {
                write!(
                    f,
                    "manifest schema {theirs} (this cargo-seed reads {} to {})",
                    READS.start(),
                    READS.end()
                )
            }
            Mismatch::Layout { theirs, here } => {
                write!(f, "built in {theirs}, but cargo here writes {here}")
            }
            Mismatch::Profile { theirs, wanted } => {
                write!(f, "profile `{theirs}` (wanted `{wanted}`)")
            }
            Mismatch::Target {
                theirs,
                theirs_cross,
                wanted,
                wanted_cross,
            } => {
                let shown = |cross: bool| {
                    if cross {
                        " (--target)"
                    } else {
                        " (host build)"
                    }
                };
                write!(
                    f,
                    "target {theirs}{} (wanted {wanted}{})",
                    shown(*theirs_cross),
                    shown(*wanted_cross)
                )
            }
            Mismatch::NativeCpu => {
                f.write_str("built with -C target-cpu=native, for the build machine's CPU")
            }
            Mismatch::Libc { theirs, here } => write!(f, "C library {theirs} (here {here})"),
            Mismatch::Flags { theirs, here, from } => {
                write!(f, "built with {theirs} (here {here}")?;
                if let Some(from) = from {
                    write!(f, ", from {from}")?;
                }
                f.write_str("), so cargo would rebuild every unit")
            }
            Mismatch::Toolchain { theirs, here } => {
                write!(f, "toolchain `{theirs}` (here `{here}`)")
            }
            Mismatch::Host {
                toolchain,
                theirs,
                here,
            } => write!(
                f,
                "toolchain `{toolchain}` built for host {theirs} (here {here})"
            ),
        }
    }
}

impl Manifest {
    /// Why this snapshot cannot be used for `want`, or `None` if it can.
    pub(crate) fn incompatibility(&self, want: &Want) -> Option<Mismatch> {
        if !READS.contains(&self.schema) {
            return Some(Mismatch::Schema {
                theirs: self.schema,
            });
        }
        if self.layout != want.layout {
            return Some(Mismatch::Layout {
                theirs: self.layout,
                here: want.layout,
            });
        }
        if self.profile != want.profile {
            return Some(Mismatch::Profile {
                theirs: self.profile.clone(),
                wanted: want.profile.clone(),
            });
        }
        if self.target != want.target || self.cross != want.cross {
            return Some(Mismatch::Target {
                theirs: self.target.clone(),
                theirs_cross: self.cross,
                wanted: want.target.clone(),
                wanted_cross: want.cross,
            });
        }
        if self.native_cpu {
            return Some(Mismatch::NativeCpu);
        }
        if let (Some(theirs), Some(here)) = (&self.libc, &want.libc) {
            if theirs != here {
                return Some(Mismatch::Libc {
                    theirs: theirs.clone(),
                    here: here.clone(),
                });
            }
        }
        if let (Some(theirs), Some(here)) = (&self.build_flags, &want.flags) {
            if *theirs != here.flags {
                return Some(Mismatch::Flags {
                    theirs: theirs.to_string(),
                    here: here.flags.to_string(),
                    from: here.rustflags_from.clone(),
                });
            }
        }
        if self.toolchain.verbose_version != want.toolchain.verbose_version {
            let first = |t: &Toolchain| t.verbose_version.lines().next().unwrap_or("").to_owned();
            let (theirs, here) = (first(&self.toolchain), first(&want.toolchain));
            return Some(if theirs == here {
                Mismatch::Host {
                    toolchain: theirs,
                    theirs: self.toolchain.host.clone(),
                    here: want.toolchain.host.clone(),
                }
            } else {
                Mismatch::Toolchain { theirs, here }
            });
        }
        None
    }
}
