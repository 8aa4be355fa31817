//! Cargo's fingerprint hash, reproduced, so that fingerprints can be rewritten
//! for another `CARGO_HOME`: the hash covers the absolute source path of a
//! registry or git unit, and the hashes of its dependencies.
//!
//! Cargo hashes the fields of its private `Fingerprint` type with
//! `rustc-stable-hash`'s `StableSipHasher128`. The types below mirror cargo
//! 1.95's field for field; the JSON beside each hash file has exactly these
//! fields. Nothing here is trusted on its own: [`Fields::hash`] must give back
//! the hash cargo wrote before any rewritten hash is used, and any field or
//! variant this module does not know makes the fingerprint unreadable (the
//! unit is then rebuilt), never guessed at.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};

use rustc_stable_hash::StableSipHasher128;
use serde::{Deserialize, Serialize};

use super::{read_error, ReadError};
use crate::snapshot::manifest::FingerprintRecord;

/// `LocalFingerprint` of cargo 1.95 (`core/compiler/fingerprint/mod.rs`):
/// the derive(Hash) order of variants and fields matters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
enum LocalFingerprint {
    Precalculated(String),
    CheckDepInfo {
        dep_info: PathBuf,
        checksum: bool,
    },
    RerunIfChanged {
        output: PathBuf,
        paths: Vec<PathBuf>,
    },
    RerunIfEnvChanged {
        var: String,
        val: Option<String>,
    },
}

/// The serialized fields of cargo's `Fingerprint`, in cargo's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fields {
    rustc: u64,
    features: String,
    declared_features: String,
    target: u64,
    profile: u64,
    path: u64,
    /// `(package id hash, name, public, dependency's fingerprint hash)`.
    deps: Vec<(u64, String, bool, u64)>,
    local: Vec<LocalFingerprint>,
    rustflags: Vec<String>,
    config: u64,
    compile_kind: u64,
}

impl Fields {
    /// Whether these fields hash to the hash cargo stored beside them: only
    /// then is a rewrite of them known to give the hash cargo would compute.
    pub(crate) fn reproduces(&self, recorded: u64) -> bool {
        self.hash() == recorded
    }

    pub fn parse(json: &str) -> Option<Fields> {
        serde_json::from_str(json).ok()
    }

    /// The JSON cargo would write for these fields.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("fingerprint fields serialise")
    }

    /// Cargo's `impl Hash for Fingerprint`: the scalar fields and `local` as
    /// one tuple (note `path` before `profile`), then the deps one by one.
    pub fn hash(&self) -> u64 {
        let mut h = StableSipHasher128::new();
        (
            self.rustc,
            &self.features,
            &self.declared_features,
            self.target,
            self.path,
            self.profile,
            &self.local,
            self.config,
            self.compile_kind,
            &self.rustflags,
        )
            .hash(&mut h);
        h.write_usize(self.deps.len());
        for (pkg_id, name, public, fingerprint) in &self.deps {
            pkg_id.hash(&mut h);
            name.as_str().hash(&mut h);
            public.hash(&mut h);
            h.write_u64(*fingerprint);
        }
        Hasher::finish(&h)
    }

    /// The `path` field: for a unit outside the workspace, the hash of its
    /// target's absolute source path.
    pub fn path(&self) -> u64 {
        self.path
    }

    pub(crate) fn set_path(&mut self, path: u64) {
        self.path = path;
    }

    pub(crate) fn dep_hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.deps.iter().map(|d| d.3)
    }

    /// The variables of `rerun-if-env-changed`, in order, with the value
    /// cargo recorded (`None`: unset).
    pub(crate) fn watched_env(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        self.local.iter().filter_map(|l| match l {
            LocalFingerprint::RerunIfEnvChanged { var, val } => {
                Some((var.as_str(), val.as_deref()))
            }
            _ => None,
        })
    }

    /// Replaces the recorded values of [`Fields::watched_env`], in its
    /// order; `None` (nothing changed) when the counts differ.
    pub(crate) fn set_watched_values(&mut self, values: Vec<Option<String>>) -> Option<()> {
        if values.len() != self.watched_env().count() {
            return None;
        }
        let mut values = values.into_iter();
        for local in &mut self.local {
            if let LocalFingerprint::RerunIfEnvChanged { val, .. } = local {
                *val = values.next()?;
            }
        }
        Some(())
    }

    /// The string of a `Precalculated` entry, when it is the only entry of
    /// `local` (a build script that prints no `rerun-if-*`).
    #[cfg(test)]
    pub(crate) fn precalculated(&self) -> Option<&str> {
        match self.local.as_slice() {
            [LocalFingerprint::Precalculated(s)] => Some(s),
            _ => None,
        }
    }

    /// Replaces the string of [`Fields::precalculated`]; `None` (nothing
    /// changed) when there is none.
    pub(crate) fn set_precalculated(&mut self, value: String) -> Option<()> {
        match self.local.as_mut_slice() {
            [LocalFingerprint::Precalculated(s)] => {
                *s = value;
                Some(())
            }
            _ => None,
        }
    }

    /// Replaces each dependency's fingerprint hash through `map`; `None`
    /// when a dependency has no new hash.
    pub(crate) fn map_deps(&mut self, map: impl Fn(u64) -> Option<u64>) -> Option<()> {
        for dep in &mut self.deps {
            dep.3 = map(dep.3)?;
        }
        Some(())
    }
}

/// The string cargo's `PathSource::fingerprint` records for a path package
/// (`Precalculated`): its newest mtime as `filetime` prints it (seconds,
/// then nanoseconds in nine digits, then `s`) and that file's path relative
/// to the package root in parentheses; `0.000000000s ()` for a package
/// without files.
pub(crate) fn precalculated(seconds: i64, nanos: u32, file: &Path) -> String {
    format!("{seconds}.{nanos:09}s ({})", file.display())
}

/// How cargo hashes a source path for `path` (`util::hash_u64(PathBuf)`).
pub(crate) fn hash_path(path: &Path) -> u64 {
    let mut h = StableSipHasher128::new();
    path.to_path_buf().hash(&mut h);
    Hasher::finish(&h)
}

/// The hash file holds the u64 as hex of its little-endian bytes.
pub(crate) fn to_hash_file(hash: u64) -> String {
    crate::digest::hex(&hash.to_le_bytes())
}

/// The parts of a fingerprint's `.json` that cargo-seed reads.
#[derive(Debug, Deserialize)]
pub(crate) struct FingerprintJson {
    #[serde(default)]
    pub deps: Vec<(u64, String, bool, u64)>,
    #[serde(default)]
    pub local: Vec<serde_json::Value>,
    #[serde(default)]
    pub rustflags: Vec<String>,
}

/// A unit's fingerprint: the hash cargo stored and the fields beside it.
pub struct Fingerprint {
    pub hash: u64,
    pub json: FingerprintJson,
    /// As cargo wrote them: the hash file's name, its text and the JSON.
    pub record: FingerprintRecord,
}

/// Reads `<kind>-<name>{,.json}` in unit `id`'s fingerprint directory.
pub(crate) fn read_fingerprint(
    profile_dir: &Path,
    layout: super::layout::Layout,
    id: &str,
) -> Result<Fingerprint, ReadError> {
    let dir = profile_dir.join(layout.fingerprint_dir(id));
    let mut json_path = None;
    for entry in fs::read_dir(&dir).map_err(read_error(&dir))? {
        let path = entry.map_err(read_error(&dir))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            json_path = Some(path);
        }
    }
    let json_path = json_path.ok_or_else(|| ReadError {
        path: dir.clone(),
        source: io::Error::new(io::ErrorKind::NotFound, "no fingerprint .json"),
    })?;
    let bad = |why: &str| ReadError {
        path: json_path.clone(),
        source: io::Error::new(io::ErrorKind::InvalidData, why.to_owned()),
    };
    let fields = fs::read_to_string(&json_path).map_err(read_error(&json_path))?;
    let json: FingerprintJson = serde_json::from_str(&fields).map_err(|e| bad(&e.to_string()))?;
    let hash_path = json_path.with_extension("");
    let text = fs::read_to_string(&hash_path).map_err(read_error(&hash_path))?;
    let hash = parse_hash_file(&text).ok_or_else(|| bad("unreadable fingerprint hash"))?;
    let file = hash_path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Fingerprint {
        hash,
        json,
        record: FingerprintRecord {
            file,
            hash: text.trim().to_owned(),
            fields,
            env: Vec::new(),
        },
    })
}

/// The hash file holds the u64 as hex of its little-endian bytes.
pub(crate) fn parse_hash_file(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.len() != 16 {
        return None;
    }
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fingerprints cargo 1.95.0 wrote for the fixture (`fixtures/sample-ws`)
    /// in a build dir: the hash file and the JSON beside it, verbatim. A bin
    /// with deps, a build-script run (`RerunIfChanged`), a build-script
    /// compile, and two registry crates (features, declared features); and
    /// a build-script run of a scratch crate watching `CC` (built with
    /// `CC=gcc-13`) and an unset variable (`RerunIfEnvChanged`).
    const PINNED: &[(&str, &str)] = &[
        (
            "1d3c57ee8da6e016",
            r#"{"rustc":7458672600737419911,"features":"[]","declared_features":"[]","target":12687594469746301899,"profile":8731458305071235362,"path":14551431238439086303,"deps":[[3900269124202853587,"greet",false,706937449378014100],[5843223417424653345,"gen",false,8561263918725201136],[8467425647369411091,"shout",false,9975683994709422570]],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/app-3f5d035ce61743c3/dep-bin-app","checksum":false}}],"rustflags":[],"config":8247474407144887393,"compile_kind":0}"#,
        ),
        (
            "282e3af627a52429",
            r#"{"rustc":7458672600737419911,"features":"","declared_features":"","target":0,"profile":0,"path":0,"deps":[[5843223417424653345,"build_script_build",false,48901855850700115]],"local":[{"RerunIfChanged":{"output":"debug/build/gen-13ecbe69c179598a/output","paths":["data/greeting.txt"]}}],"rustflags":[],"config":0,"compile_kind":0}"#,
        ),
        (
            "539dd692fabbad00",
            r#"{"rustc":7458672600737419911,"features":"[]","declared_features":"[]","target":5408242616063297496,"profile":7409704062750675268,"path":6629525625083499096,"deps":[],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/gen-6b6761007ad40275/dep-build-script-build-script-build","checksum":false}}],"rustflags":[],"config":8247474407144887393,"compile_kind":0}"#,
        ),
        (
            "41c03e3f594e65f5",
            r#"{"rustc":7458672600737419911,"features":"[]","declared_features":"[\"no-panic\"]","target":18426369533666673425,"profile":15657897354478470176,"path":3355421602437736376,"deps":[],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/itoa-d62e748016f8bd79/dep-lib-itoa","checksum":false}}],"rustflags":[],"config":8247474407144887393,"compile_kind":0}"#,
        ),
        (
            "f2bb0a756b906ccd",
            r#"{"rustc":7458672600737419911,"features":"[\"alloc\", \"default\", \"std\"]","declared_features":"[\"alloc\", \"core\", \"default\", \"libc\", \"logging\", \"rustc-dep-of-std\", \"std\", \"use_std\"]","target":11745930252914242013,"profile":15657897354478470176,"path":11512394480622317980,"deps":[],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/memchr-173228ab5b53d47a/dep-lib-memchr","checksum":false}}],"rustflags":[],"config":8247474407144887393,"compile_kind":0}"#,
        ),
        (
            "8ad0bb5e6d23bdf3",
            r#"{"rustc":7458672600737419911,"features":"","declared_features":"","target":0,"profile":0,"path":0,"deps":[[11009375254044818469,"build_script_build",false,6931495264368205454]],"local":[{"RerunIfChanged":{"output":"debug/build/probe-ee69ccb76e862d29/output","paths":["build.rs"]}},{"RerunIfEnvChanged":{"var":"CC","val":"gcc-13"}},{"RerunIfEnvChanged":{"var":"PROBE_UNSET","val":null}}],"rustflags":[],"config":0,"compile_kind":0}"#,
        ),
    ];

    /// itoa's `path`: the hash of its absolute source path when built under
    /// `CARGO_HOME=/root/.cargo`.
    const ITOA_SRC: &str =
        "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/itoa-1.0.18/src/lib.rs";

    #[test]
    fn reproduces_the_hashes_cargo_wrote() {
        for (hash, json) in PINNED {
            let fields = Fields::parse(json).unwrap();
            assert_eq!(to_hash_file(fields.hash()), *hash, "{json}");
        }
    }

    #[test]
    fn reproduces_a_registry_path_hash() {
        let itoa = PINNED.iter().find(|(_, j)| j.contains("no-panic")).unwrap();
        assert_eq!(
            hash_path(Path::new(ITOA_SRC)),
            Fields::parse(itoa.1).unwrap().path()
        );
    }

    #[test]
    fn json_round_trips_byte_for_byte() {
        for (_, json) in PINNED {
            assert_eq!(Fields::parse(json).unwrap().to_json(), *json);
        }
    }

    #[test]
    fn watched_values_are_read_and_replaced_in_order() {
        let (hash, json) = PINNED.last().unwrap();
        let mut fields = Fields::parse(json).unwrap();
        let watched: Vec<_> = fields.watched_env().collect();
        assert_eq!(watched, [("CC", Some("gcc-13")), ("PROBE_UNSET", None)]);
        fields.set_watched_values(vec![None, None]).unwrap();
        assert_ne!(to_hash_file(fields.hash()), *hash);
        assert_eq!(fields.set_watched_values(vec![None]), None);
        fields
            .set_watched_values(vec![Some("gcc-13".into()), None])
            .unwrap();
        assert_eq!(fields.to_json(), *json);
    }

    #[test]
    fn unknown_shapes_are_refused() {
        let newer = PINNED[0]
            .1
            .replace("\"compile_kind\":0", "\"compile_kind\":0,\"new\":1");
        assert!(Fields::parse(&newer).is_none());
        let variant = PINNED[0].1.replace("CheckDepInfo", "CheckDepInfoV2");
        assert!(Fields::parse(&variant).is_none());
    }

    /// A build-script run of a path package whose script printed nothing,
    /// as cargo 1.95.0 wrote it (nightly 1.97 wrote the same `local`).
    const PRECALCULATED: (&str, &str) = (
        "d3b649bef9af2cf3",
        r#"{"rustc":7458672600737419911,"features":"","declared_features":"","target":0,"profile":0,"path":0,"deps":[[6805135422637226417,"build_script_build",false,2054567761704627523]],"local":[{"Precalculated":"1796494298.422520041s (src/lib.rs)"}],"rustflags":[],"config":0,"compile_kind":0}"#,
    );

    #[test]
    fn precalculated_string_is_cargos() {
        let (hash, json) = PRECALCULATED;
        let mut fields = Fields::parse(json).unwrap();
        assert_eq!(to_hash_file(fields.hash()), hash);
        assert_eq!(
            fields.precalculated(),
            Some(precalculated(1796494298, 422520041, Path::new("src/lib.rs")).as_str())
        );
        assert_eq!(precalculated(5, 7, Path::new("")), "5.000000007s ()");
        fields
            .set_precalculated("1.000000000s (build.rs)".into())
            .unwrap();
        assert_ne!(to_hash_file(fields.hash()), hash);
        let other = Fields::parse(PINNED[1].1).unwrap();
        assert_eq!(other.precalculated(), None);
    }

    #[test]
    fn hash_file_is_little_endian_hex() {
        assert_eq!(parse_hash_file("0100000000000000"), Some(1));
        assert_eq!(parse_hash_file("00000000000000ff\n"), Some(0xff << 56));
        assert_eq!(parse_hash_file("xyz"), None);
    }
}
