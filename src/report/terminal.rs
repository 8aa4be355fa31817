//! The one way text reaches a terminal: every line the human renderer, the
//! listings and the error report print is written here, with the
//! characters a terminal acts on escaped. Much of that text comes from a
//! store (keys, manifest fields, entry names, messages quoting them), which
//! may be hostile: an escape sequence could recolour or rewrite the screen,
//! a newline forge a `warning:` or `error:` line, a bidi override reorder
//! what is read.
//!
//! It must never write a control character (C0, DEL, C1) or a bidi
//! formatting character of the text it is given; the line breaks between
//! lines are its own.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::Write;

/// Whether a terminal (or a reader of its screen) would act on `c` rather
/// than show it: control characters, and the characters that change the
/// direction text is shown in.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character written as a Rust escape (`\n`,
/// `\u{1b}`), borrowed when there is none.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Writes one line to stderr, escaped. A closed stderr is ignored.
pub(crate) fn stderr_line(line: fmt::Arguments) {
    let text = escape_args(line);
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// Writes one line to stdout, escaped. A closed stdout (the reader went
/// away) is not the command's failure, so write errors are ignored.
pub(crate) fn stdout_line(line: fmt::Arguments) {
    let text = escape_args(line);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

fn escape_args(line: fmt::Arguments) -> String {
    match line.as_str() {
        Some(s) => escape(s).into_owned(),
        None => escape(&line.to_string()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_and_bidi_characters_are_shown_not_acted_on() {
        assert_eq!(escape("plain, ünïcode"), "plain, ünïcode");
        assert_eq!(
            escape("\x1b[31mred\x07\nwarning: forged\r\t\x7f\u{9b}"),
            "\\u{1b}[31mred\\u{7}\\nwarning: forged\\r\\t\\u{7f}\\u{9b}"
        );
        assert_eq!(
            escape("a\u{202e}b\u{2066}c\u{200f}"),
            "a\\u{202e}b\\u{2066}c\\u{200f}"
        );
    }
}
