//! The rules for single fields of a manifest: digests, file names, plain
//! relative and absolute paths, environment variable names, and text that
//! a terminal may show; and [`Invalid`], the reason a field is refused.
//!
//! It must never repair or guess at a field: a value that breaks a rule is
//! refused with the field named, shown escaped and cut short.

use std::fmt;
use std::path::{Component, Path};

/// Why a manifest was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub(super) String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

pub(super) fn invalid(what: impl Into<String>) -> Invalid {
    Invalid(what.into())
}

/// Longest text field accepted (names, reasons, package ids), so that a
/// manifest cannot flood a terminal or a log with one field.
const MAX_TEXT: usize = 4096;
/// Exactly 64 lowercase hex digits: a sha256, and nothing a key or a path
/// could be built from otherwise.
fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(super) fn digest(what: &str, s: &str) -> Result<(), Invalid> {
    is_digest(s)
        .then_some(())
        .ok_or_else(|| invalid(format!("{what} `{}` is not a sha256", shown(s))))
}

/// One file name: no separator, not `.` or `..`.
pub(super) fn plain_name(what: &str, s: &str) -> Result<(), Invalid> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then_some(())
        .ok_or_else(|| invalid(format!("{what} `{}` is not a plain file name", shown(s))))
}

/// A name an environment variable can have and a terminal can show: the
/// cc and pkg-config crates watch `CC_x86_64-unknown-linux-gnu` and the
/// like, so not only letters, digits and `_`.
pub(super) fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic() && b != b'=')
}

/// Relative, made of plain components only (no root, `.` or `..`), and
/// without control characters.
pub(super) fn relative(what: &str, p: &Path) -> Result<(), Invalid> {
    let plain =
        !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(invalid(format!(
            "{what} `{}` is not a plain relative path",
            p.display()
        )));
    }
    text(what, &p.to_string_lossy(), false)
}

/// Absolute, below the root, with no `.` or `..`, and without control
/// characters: the build machine's directories, mapped to this machine's.
pub(super) fn absolute(what: &str, p: &Path) -> Result<(), Invalid> {
    let mut parts = p.components();
    let ok = p.is_absolute()
        && parts.clone().count() > 1
        && parts.all(|c| {
            matches!(
                c,
                Component::RootDir | Component::Prefix(_) | Component::Normal(_)
            )
        });
    if !ok {
        return Err(invalid(format!(
            "{what} `{}` is not a plain absolute path",
            shown(&p.to_string_lossy())
        )));
    }
    text(what, &p.to_string_lossy(), false)
}

/// No control characters (a newline in a path ends up in a debugger script
/// as a command of its own; an escape sequence rewrites the terminal), and
/// a bounded length.
pub(super) fn text(what: &str, s: &str, multiline: bool) -> Result<(), Invalid> {
    if s.len() > MAX_TEXT {
        return Err(invalid(format!("{what} is {} bytes long", s.len())));
    }
    let bad = s
        .chars()
        .find(|c| c.is_control() && !(multiline && *c == '\n'));
    match bad {
        Some(c) => Err(invalid(format!(
            "{what} `{}` holds the control character {c:?}",
            shown(s)
        ))),
        None => Ok(()),
    }
}

/// A field as it may be shown in a message: control characters escaped,
/// and cut short.
pub(super) fn shown(s: &str) -> String {
    let escaped: String = s.chars().flat_map(char::escape_debug).take(80).collect();
    escaped
}
