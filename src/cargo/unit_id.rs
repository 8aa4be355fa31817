//! A unit's name as cargo gives it: the `.fingerprint/` entry
//! `<package>-<hash>` (the hash is cargo's 16 hex digits, also in the
//! unit's file names), or `incremental/<crate>-<tag>` for rustc's state of a
//! crate. The one place that knows how such a name splits.
//!
//! Making a `UnitId` checks nothing: ids read from a store are checked once,
//! where the manifest is validated, before any other module sees them.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnitId(String);

impl UnitId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The package (or, for incremental state, the crate) and the hash (or
    /// session tag) the name joins with its last `-`.
    pub fn parts(&self) -> Option<(&str, &str)> {
        split(self.0.strip_prefix("incremental/").unwrap_or(&self.0))
    }

    /// The package name part: `greet` of `greet-0123456789abcdef`.
    pub fn package(&self) -> Option<&str> {
        self.parts().map(|(package, _)| package)
    }

    /// The hash part: `0123456789abcdef` of `greet-0123456789abcdef`.
    pub fn hash(&self) -> Option<&str> {
        self.parts().map(|(_, hash)| hash)
    }
}

/// `name-hash` split at its last `-`: cargo's unit names and rustc's
/// incremental directory names (`<crate>-<tag>`) are both made this way.
pub fn split(name: &str) -> Option<(&str, &str)> {
    name.rsplit_once('-')
}

impl From<String> for UnitId {
    fn from(id: String) -> UnitId {
        UnitId(id)
    }
}

impl From<&str> for UnitId {
    fn from(id: &str) -> UnitId {
        UnitId(id.to_owned())
    }
}

impl Deref for UnitId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for UnitId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::path::Path> for UnitId {
    fn as_ref(&self) -> &std::path::Path {
        self.0.as_ref()
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for UnitId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for UnitId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::UnitId;

    #[test]
    fn ids_split_into_package_and_hash() {
        let id = UnitId::from("build-script-build-0123456789abcdef");
        assert_eq!(id.package(), Some("build-script-build"));
        assert_eq!(id.hash(), Some("0123456789abcdef"));
        let inc = UnitId::from("incremental/greet-1a2b3c");
        assert_eq!(inc.parts(), Some(("greet", "1a2b3c")));
        assert_eq!(UnitId::from("nodash").parts(), None);
    }
}
