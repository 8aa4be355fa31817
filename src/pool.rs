//! Running one job per item on all cores, stopping at the first error.
//!
//! Both directions are dominated by per-unit work (compress or decompress,
//! hash, write) of very uneven size, so workers pull the next item from a
//! shared counter rather than taking fixed shares.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Applies `f` to every item on `threads` workers and returns the results in
/// item order, or the first error (the remaining items are not started).
pub fn map<T: Sync, R: Send, E: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let error: Mutex<Option<E>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    match f(item) {
                        Ok(r) => slots.lock().unwrap()[i] = Some(r),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            error.lock().unwrap().get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(slots
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect())
}

/// The number of workers: one per core.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    #[test]
    fn results_come_in_item_order() {
        let items: Vec<u32> = (0..100).collect();
        let out: Result<Vec<u32>, ()> = super::map(&items, 4, |i| Ok(i * 2));
        assert_eq!(
            out.unwrap(),
            items.iter().map(|i| i * 2).collect::<Vec<_>>()
        );
    }

    /// With one worker the items are taken in order, so "the remaining items
    /// are not started" can be checked exactly (with more, the items other
    /// workers have already taken still finish): nothing after the failing
    /// item ran, and the error returned is the first one.
    #[test]
    fn one_worker_starts_no_item_after_an_error() {
        let items: Vec<u32> = (0..100).collect();
        let ran = Mutex::new(Vec::new());
        let out: Result<Vec<u32>, u32> = super::map(&items, 1, |&i| {
            ran.lock().unwrap().push(i);
            if i == 50 || i == 60 {
                Err(i)
            } else {
                Ok(i)
            }
        });
        assert_eq!(out.unwrap_err(), 50);
        assert_eq!(ran.into_inner().unwrap(), (0..=50).collect::<Vec<_>>());
    }
}
