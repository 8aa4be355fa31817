//! How long a download from a remote store may take as a whole, and how it
//! stops on Ctrl-C.
//!
//! A transport's timeout bounds each wait for the next bytes; that alone
//! lets a server that trickles a byte now and then hold a seed forever. So
//! a download of an object expected to hold `size` bytes gets a deadline of
//! `WAITS × wait + size / rate`: `wait` is the transport's wait for an
//! answer (the HTTP store's `CARGO_SEED_HTTP_TIMEOUT`, 60 s by default), and
//! [`WAITS`] of them leave room for a slow answer, a stall detected and
//! resumed, and a retry, which the transports' retry policies promise to
//! ride out; the rate is `CARGO_SEED_MIN_RATE` ([`DEFAULT_MIN_RATE`] by
//! default). Every read, and every retry or resume of the request, checks
//! the deadline and the cancel flag first.
//!
//! It must never let a download go on past its deadline, or after the flag
//! is set, by more than one wait for bytes.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::report::format::bytes;
use crate::store::api::{ReadBound, StoreError};

/// The slowest a store may send, unless `CARGO_SEED_MIN_RATE` says
/// otherwise: half a megabit per second, far below any link one would seed
/// over (a 100 MiB blob still gets 27 minutes), and far above a server that
/// only trickles to keep a connection open.
pub const DEFAULT_MIN_RATE: u64 = 64 << 10;

/// How many of its transport's waits for an answer a download is allowed
/// besides the time its bytes take at the minimum rate: one would leave no
/// room for a retry or a resume after a stall, which the transports exist
/// to ride out.
pub(crate) const WAITS: u32 = 3;

/// The wait of a store whose transport has no timeout of ours to reuse
/// (S3): the HTTP store's default. Three of them are also `object_store`'s
/// retry timeout.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// How often a wait between retries looks at the cancel flag.
const SLICE: Duration = Duration::from_millis(100);

/// `CARGO_SEED_MIN_RATE`, in bytes per second (`64K`, `1M`, `4096`), or the
/// default when it is unset or empty; `store` names the store in the error.
pub(crate) fn min_rate(store: &str) -> Result<u64, StoreError> {
    match std::env::var("CARGO_SEED_MIN_RATE") {
        Ok(v) if !v.trim().is_empty() => parse_rate(&v).ok_or_else(|| StoreError::Config {
            store: store.to_owned(),
            detail: format!(
                "CARGO_SEED_MIN_RATE must be bytes per second such as 64K or 1M (at least 1), not `{v}`"
            ),
        }),
        _ => Ok(DEFAULT_MIN_RATE),
    }
}

fn parse_rate(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.strip_suffix("/s").unwrap_or(text);
    crate::store::cache::parse_size(text).filter(|&rate| rate > 0)
}

/// Why a bounded download stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    Cancelled,
    /// Past the deadline; says what was allowed.
    TooSlow(String),
}

impl Stop {
    /// As the error of a read: a deadline is `TimedOut`, which the readers
    /// of a blob tell from a broken connection. A cancelled read is told by
    /// its flag, never by its kind (`Interrupted` would be retried).
    pub fn into_io(self) -> io::Error {
        match self {
            Stop::Cancelled => io::Error::other("interrupted"),
            Stop::TooSlow(why) => io::Error::new(io::ErrorKind::TimedOut, why),
        }
    }

    pub fn into_store(self, store: String, key: &str) -> StoreError {
        let key = key.to_owned();
        match self {
            Stop::Cancelled => StoreError::Interrupted { store, key },
            Stop::TooSlow(why) => StoreError::TooSlow { store, key, why },
        }
    }
}

/// The clock of one download.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    /// `None`: so far away that it cannot be written as an instant.
    at: Option<Instant>,
    allowance: Duration,
    allowed: Duration,
    bound: ReadBound,
    rate: u64,
}

impl Deadline {
    /// Starts the clock of a download within `bound`, at `rate` bytes per
    /// second after [`WAITS`] times `wait`.
    pub fn start(wait: Duration, rate: u64, bound: ReadBound) -> Deadline {
        let allowance = wait.saturating_mul(WAITS);
        let sending = Duration::try_from_secs_f64(bound.size as f64 / rate.max(1) as f64)
            .unwrap_or(Duration::MAX);
        let allowed = allowance.saturating_add(sending);
        let started = Instant::now();
        Deadline {
            at: started.checked_add(allowed),
            allowance,
            allowed,
            bound,
            rate,
        }
    }

    /// Fails once the cancel flag is set or the deadline has passed.
    pub fn check(&self) -> Result<(), Stop> {
        if self.bound.cancel.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled);
        }
        match self.at {
            Some(at) if Instant::now() >= at => Err(Stop::TooSlow(format!(
                "it took longer than {}s, the time allowed for {} at {}/s \
                 (CARGO_SEED_MIN_RATE) after {}s for answers and retries",
                self.allowed.as_secs(),
                bytes(self.bound.size),
                bytes(self.rate),
                self.allowance.as_secs(),
            ))),
            _ => Ok(()),
        }
    }

    /// Sleeps `wait` (a backoff between retries), cut short when the flag
    /// is set or the deadline comes first.
    pub fn sleep(&self, wait: Duration) -> Result<(), Stop> {
        let until = Instant::now() + wait;
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let mut nap = (until - now).min(SLICE);
            if let Some(at) = self.at {
                nap = nap.min(at.saturating_duration_since(now));
            }
            std::thread::sleep(nap);
        }
    }

    /// How long the download may take.
    #[cfg(test)]
    pub fn allowed(&self) -> Duration {
        self.allowed
    }
}

/// A stream whose every read first checks its [`Deadline`].
pub(crate) struct Checked<R> {
    pub inner: R,
    pub deadline: Deadline,
}

impl<R: io::Read> io::Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.deadline.check().map_err(Stop::into_io)?;
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    static NEVER: AtomicBool = AtomicBool::new(false);

    #[test]
    fn the_deadline_is_the_allowance_plus_the_size_at_the_minimum_rate() {
        let bound = ReadBound {
            size: 100 << 20,
            cancel: &NEVER,
        };
        let d = Deadline::start(Duration::from_secs(60), DEFAULT_MIN_RATE, bound);
        assert_eq!(d.allowed(), Duration::from_secs(180 + 1600));
        // Sizes no store holds still give a deadline, never an overflow.
        let huge = ReadBound {
            size: u64::MAX,
            cancel: &NEVER,
        };
        assert!(Deadline::start(Duration::MAX, 1, huge).check().is_ok());
    }

    #[test]
    fn a_past_deadline_and_a_set_flag_stop_reads_and_waits() {
        let bound = ReadBound {
            size: 0,
            cancel: &NEVER,
        };
        let past = Deadline::start(Duration::ZERO, 1, bound);
        let mut reader = Checked {
            inner: io::repeat(0),
            deadline: past.clone(),
        };
        let err = io::Read::read(&mut reader, &mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("CARGO_SEED_MIN_RATE"), "{err}");
        assert!(matches!(
            past.sleep(Duration::from_secs(3600)),
            Err(Stop::TooSlow(_))
        ));

        static SET: AtomicBool = AtomicBool::new(true);
        let cancelled = Deadline::start(
            Duration::from_secs(3600),
            1,
            ReadBound {
                size: 0,
                cancel: &SET,
            },
        );
        assert_eq!(cancelled.check(), Err(Stop::Cancelled));
        assert_eq!(
            cancelled.sleep(Duration::from_secs(3600)),
            Err(Stop::Cancelled)
        );
    }

    #[test]
    fn rates_read_as_sizes_per_second() {
        assert_eq!(parse_rate("64K"), Some(64 << 10));
        assert_eq!(parse_rate("1M/s"), Some(1 << 20));
        assert_eq!(parse_rate("4096"), Some(4096));
        assert_eq!(parse_rate("0"), None);
        assert_eq!(parse_rate("fast"), None);
    }
}
