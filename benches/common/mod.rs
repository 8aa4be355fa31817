//! What the benches share: how many runs, the median with its range, and
//! the size of a directory.

#![allow(dead_code)]

use std::fs;
use std::path::Path;

/// Runs per case: `RUNS`, else `default`.
pub fn runs(default: usize) -> usize {
    std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

/// Median, lowest and highest.
pub fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Bytes of every file below `p`.
pub fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(p).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    n
}
