//! All-core mode (`--all-cores`): the same workload on every core at once, one rayon task
//! per thread, each with keys and buffers of its own, for the same time. Gives the
//! machine's crypto ceiling and how far it falls short of one core's figure times the
//! number of threads.

use std::num::NonZeroUsize;
use std::sync::Barrier;

use serde::Serialize;

use crate::BenchError;
use crate::measure::{Row, Workload};
use crate::{layers, md5_rows};

/// Most threads all-core mode runs (`--threads` above it is refused, and a machine with
/// more cores gets this many): a bound on memory and set-up time, far above today's
/// largest sockets.
pub const THREADS_MAX: usize = 1024;

/// Payload bytes per operation in all-core mode: the gateway's segment size.
pub const SIZE_BYTES: usize = 64 << 10;

/// The all-core section of the report.
#[derive(Debug, Clone, Serialize)]
pub struct AllCores {
    /// Threads that ran each workload at once (one rayon task each).
    pub threads: usize,
    /// What `std::thread::available_parallelism` reported (1 where it could not tell).
    pub available_cores: usize,
    /// One row per workload, in the order measured.
    pub rows: Vec<AllCoreRow>,
}

/// One workload's one-core and all-core throughput.
#[derive(Debug, Clone, Serialize)]
pub struct AllCoreRow {
    /// As in the one-core rows.
    pub group: &'static str,
    /// As in the one-core rows.
    pub implementation: &'static str,
    /// As in the one-core rows.
    pub operation: &'static str,
    /// Payload bytes per operation.
    pub size_bytes: usize,
    /// One thread alone, measured just before the all-core run, GB/s.
    pub one_core_gb_per_s: f64,
    /// All threads together: their payload bytes summed over the longest thread's timed
    /// part, GB/s.
    pub aggregate_gb_per_s: f64,
    /// `aggregate / (one_core × threads)`: 1.0 is perfect scaling; `null` if the one-core
    /// figure was zero.
    pub scaling: Option<f64>,
    /// The slowest thread's own GB/s during the all-core run.
    pub slowest_thread_gb_per_s: f64,
    /// The fastest thread's own GB/s during the all-core run.
    pub fastest_thread_gb_per_s: f64,
}

/// What `std::thread::available_parallelism` reports, 1 where it cannot tell.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Threads without `--threads`: one per available core, at most [`THREADS_MAX`].
pub fn default_threads() -> usize {
    available_cores().clamp(1, THREADS_MAX)
}

/// The workloads all-core mode runs, in order, all at [`SIZE_BYTES`]: the envelope's seal
/// and open, each layer's seal alone, and the gateway's MD5.
pub fn workloads() -> Vec<Workload> {
    vec![
        layers::dual_seal_workload(SIZE_BYTES),
        layers::dual_open_workload(SIZE_BYTES),
        layers::inner_seal_workload(SIZE_BYTES),
        layers::outer_seal_workload(SIZE_BYTES),
        md5_rows::twofold_workload(SIZE_BYTES),
    ]
}

/// Runs every workload of [`workloads`] first on one thread, then on `threads` threads at
/// once, each for about `budget_s` seconds after its warm-up.
pub fn run(threads: usize, budget_s: f64) -> Result<AllCores, BenchError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("simd-bench-{i}"))
        .build()
        .map_err(|e| BenchError::Threads(e.to_string()))?;
    let mut rows = Vec::new();
    for workload in workloads() {
        let one_core = workload.measure(budget_s)?;
        let per_thread = measure_together(&pool, &workload, budget_s)?;
        rows.push(combine(&workload, one_core.gb_per_s, &per_thread));
    }
    Ok(AllCores {
        threads: pool.current_num_threads(),
        available_cores: available_cores(),
        rows,
    })
}

/// Runs `workload` on every thread of `pool` at once: each thread sets up its own
/// operation, all wait at a barrier, then each warms up and times its own for `budget_s`.
/// Returns each thread's row.
fn measure_together(
    pool: &rayon::ThreadPool,
    workload: &Workload,
    budget_s: f64,
) -> Result<Vec<Row>, BenchError> {
    let start = Barrier::new(pool.current_num_threads());
    let rows: Vec<Result<Row, BenchError>> = pool.broadcast(|_| {
        // Set up before the barrier, so every thread starts timing at about the same
        // moment; a failed set-up still waits, so the others are not left hanging.
        let op = workload.prepare();
        start.wait();
        op.and_then(|op| workload.measure_prepared(budget_s, op))
    });
    rows.into_iter().collect()
}

/// One all-core row from the one-core figure and the threads' rows.
fn combine(workload: &Workload, one_core_gb_per_s: f64, per_thread: &[Row]) -> AllCoreRow {
    let aggregate = aggregate_gb_per_s(per_thread);
    let rates = || per_thread.iter().map(|r| r.gb_per_s);
    let slowest = if per_thread.is_empty() {
        0.0
    } else {
        rates().fold(f64::INFINITY, f64::min)
    };
    AllCoreRow {
        group: workload.group,
        implementation: workload.implementation,
        operation: workload.operation,
        size_bytes: workload.size_bytes,
        one_core_gb_per_s,
        aggregate_gb_per_s: aggregate,
        scaling: scaling(aggregate, one_core_gb_per_s, per_thread.len()),
        slowest_thread_gb_per_s: slowest,
        fastest_thread_gb_per_s: rates().fold(0.0, f64::max),
    }
}

/// The threads' payload bytes together over the longest thread's timed part, in GB/s.
/// The threads start together and time the same budget, so their timed parts overlap
/// all but the last batch; dividing by the longest errs low rather than high.
pub fn aggregate_gb_per_s(per_thread: &[Row]) -> f64 {
    let bytes: f64 = per_thread
        .iter()
        .map(|r| r.iterations as f64 * r.size_bytes as f64)
        .sum();
    let seconds = per_thread.iter().map(|r| r.seconds).fold(0.0, f64::max);
    if seconds > 0.0 {
        bytes / seconds / 1e9
    } else {
        0.0
    }
}

/// `aggregate / (one_core × threads)`, or `None` where that is undefined (no threads, or
/// a one-core figure that is zero or not finite).
pub fn scaling(aggregate_gb_per_s: f64, one_core_gb_per_s: f64, threads: usize) -> Option<f64> {
    let ideal = one_core_gb_per_s * threads as f64;
    (ideal.is_finite() && ideal > 0.0 && aggregate_gb_per_s.is_finite())
        .then(|| aggregate_gb_per_s / ideal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(iterations: u64, seconds: f64) -> Row {
        Row {
            group: layers::GROUP_DUAL_LAYER,
            implementation: "x",
            operation: "seal",
            size_bytes: 1_000_000,
            gb_per_s: iterations as f64 * 1e6 / seconds / 1e9,
            iterations,
            seconds,
        }
    }

    #[test]
    fn scaling_arithmetic() {
        assert_eq!(scaling(8.0, 1.0, 8), Some(1.0));
        assert_eq!(scaling(6.0, 1.0, 8), Some(0.75));
        assert_eq!(scaling(3.0, 2.0, 1), Some(1.5));
        assert_eq!(scaling(1.0, 0.0, 4), None);
        assert_eq!(scaling(1.0, 1.0, 0), None);
        assert_eq!(scaling(1.0, f64::NAN, 2), None);
        assert_eq!(scaling(f64::INFINITY, 1.0, 2), None);
    }

    #[test]
    fn aggregate_sums_bytes_over_the_longest_thread() {
        // 1000 × 1 MB in 1 s and 500 × 1 MB in 0.5 s: 1.5 GB over 1 s.
        let rows = [row(1000, 1.0), row(500, 0.5)];
        assert!((aggregate_gb_per_s(&rows) - 1.5).abs() < 1e-9);
        assert_eq!(aggregate_gb_per_s(&[]), 0.0);
    }

    #[test]
    fn combine_reports_threads_and_bounds() {
        let w = layers::dual_seal_workload(SIZE_BYTES);
        let rows = [row(2000, 1.0), row(1000, 1.0)];
        let r = combine(&w, 1.5, &rows);
        assert!((r.aggregate_gb_per_s - 3.0).abs() < 1e-9);
        assert_eq!(r.scaling, Some(1.0));
        assert!((r.slowest_thread_gb_per_s - 1.0).abs() < 1e-9);
        assert!((r.fastest_thread_gb_per_s - 2.0).abs() < 1e-9);
        assert_eq!((r.group, r.operation), (layers::GROUP_DUAL_LAYER, "seal"));
    }

    #[test]
    fn default_threads_are_bounded() {
        let n = default_threads();
        assert!((1..=THREADS_MAX).contains(&n));
    }

    /// Two threads at once, briefly: every workload must run and add up.
    #[test]
    fn runs_briefly_on_two_threads() {
        let report = run(2, 0.001).unwrap();
        assert_eq!(report.threads, 2);
        assert_eq!(report.rows.len(), workloads().len());
        assert!(report.rows.iter().all(|r| r.aggregate_gb_per_s > 0.0
            && r.one_core_gb_per_s > 0.0
            && r.scaling.is_some()
            && r.size_bytes == SIZE_BYTES));
    }
}
