//! What the user sees: progress on stderr (only on a terminal, never in CI),
//! status lines, and the one-line summary.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Output settings from `-q`/`-v`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ui {
    pub quiet: bool,
    pub verbose: bool,
}

impl Ui {
    /// A status line on stderr, as cargo prints them.
    pub fn status(&self, verb: &str, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{verb:>12} {msg}");
        }
    }

    /// A `warning:` line on stderr, as cargo prints them.
    pub fn warning(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("warning: {msg}");
        }
    }

    /// Detail shown with `-v`.
    pub fn detail(&self, msg: impl std::fmt::Display) {
        if self.verbose && !self.quiet {
            eprintln!("{:>12} {msg}", "");
        }
    }

    /// A byte-counting progress bar, hidden when stderr is not a terminal,
    /// in CI, or with `-q`.
    pub fn bytes_bar(&self, total: u64, what: &str) -> ProgressBar {
        if self.quiet || std::env::var_os("CI").is_some() || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12.cyan.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// `3h`, `2d`: how long ago a Unix time was.
pub fn age(created: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(created);
    let s = now.saturating_sub(created);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_sizes() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(3 << 20), "3.0 MiB");
    }
}
