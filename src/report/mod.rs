//! Output: the commands emit [`Event`]s to a [`Reporter`], which renders
//! them for people (`human`, with what goes to stdout in `listing`) or as
//! JSON lines (`json`).
//!
//! The commands compute and emit; only this module prints. Nothing outside
//! it may write to stdout or stderr (the rustc wrapper, which runs as a
//! separate process under cargo, and `main`'s error report are the
//! exceptions), and nothing in it may decide what a command does.

pub(crate) mod event;
pub(crate) mod format;
pub(crate) mod human;
pub(crate) mod json;
mod listing;
pub(crate) mod terminal;

pub use event::{Event, Explained, Garbage, HookStatus, Rebuilt, SetupStatus, UnitAction, Why};

/// `--message-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormat {
    /// Status lines on stderr, as cargo prints them
    #[default]
    Human,
    /// One JSON object per line on stdout
    Json,
}

/// Where a command's events go. Shared by reference with worker threads.
#[derive(Debug)]
pub struct Reporter {
    human: Option<human::Human>,
    silent: bool,
}

impl Reporter {
    /// `quiet` and `verbose` (`-q`/`-v`) only change what people see: the
    /// JSON lines are all there either way.
    pub fn new(format: MessageFormat, quiet: bool, verbose: bool) -> Reporter {
        Reporter {
            human: match format {
                MessageFormat::Human => Some(human::Human::new(quiet, verbose, false)),
                MessageFormat::Json => None,
            },
            silent: false,
        }
    }

    /// A reporter that says nothing: for a step whose events would speak
    /// of another command (a donor checkout planned as a publish plans).
    pub(crate) fn silent() -> Reporter {
        Reporter {
            human: None,
            silent: true,
        }
    }

    /// `--explain`: people see every unit's verdict under a dry run's plan.
    /// (JSON has them with any dry run.)
    pub(crate) fn explaining(mut self, explain: bool) -> Reporter {
        if let Some(human) = &mut self.human {
            human.explain = explain;
        }
        self
    }

    pub(crate) fn is_json(&self) -> bool {
        self.human.is_none()
    }

    pub fn emit(&self, event: Event) {
        if self.silent {
            return;
        }
        match &self.human {
            Some(human) => human.render(&event),
            None => json::render(&event),
        }
    }
}

impl Default for Reporter {
    /// As cargo-seed prints without flags.
    fn default() -> Reporter {
        Reporter::new(MessageFormat::Human, false, false)
    }
}
