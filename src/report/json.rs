//! `--message-format json`: every [`Event`] as one line of JSON on stdout.
//!
//! Stdout carries nothing else, so that a script can parse every line; a
//! line is written whole under stdout's lock, so events emitted from worker
//! threads never interleave. Nothing here may print to stdout in any other
//! shape, nor drop an event because of `-q`: a script asked for all of them.

use std::io::Write;

use super::event::Event;

/// Writes one event as a JSON line. A closed stdout (the reader went away)
/// is not the command's failure, so write errors are ignored.
pub(crate) fn render(event: &Event) {
    let mut line = serde_json::to_vec(event).expect("events serialise");
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&line).and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::super::event::{Event, UnitAction};
    use crate::seed::reason::{Change, Reason};
    use crate::snapshot::manifest::UnitKind;

    /// The field names scripts rely on: the tag, snake_case variants,
    /// enums as strings.
    #[test]
    fn events_are_internally_tagged_snake_case_objects() {
        let unit = Event::Unit {
            id: "greet-0123".into(),
            name: "lib greet".into(),
            kind: UnitKind::RunBuildScript,
            action: UnitAction::Rebuilt,
            reason: Some(
                Reason::Input {
                    path: "src/lib.rs".into(),
                    change: Change::Changed,
                }
                .into(),
            ),
            bytes: 0,
            from_cache: false,
        };
        let v = serde_json::to_value(&unit).unwrap();
        assert_eq!(v["event"], "unit");
        assert_eq!(v["action"], "rebuilt");
        assert_eq!(v["kind"], "run-build-script");
        assert_eq!(v["reason"]["message"], "src/lib.rs changed");
        assert_eq!(v["reason"]["kind"], "input");
        assert_eq!(v["reason"]["path"], "src/lib.rs");
        assert_eq!(v["reason"]["change"], "changed");
        let done = serde_json::to_value(Event::FetchFinished).unwrap();
        assert_eq!(done, serde_json::json!({ "event": "fetch_finished" }));
    }
}
