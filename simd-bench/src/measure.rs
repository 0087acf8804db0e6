//! The timing loop: warm up, then repeat one operation until the time budget is spent,
//! and report bytes per second.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::BenchError;

/// Share of the time budget spent warming up before the timed part starts (on top of it).
const WARM_UP_SHARE: f64 = 0.2;
/// Target length of one batch of operations between two clock reads.
const BATCH_TARGET: Duration = Duration::from_millis(1);
/// Upper bound on the operations in one batch, so a very fast operation still checks the
/// clock now and then.
const BATCH_OPS_MAX: u64 = 1 << 20;

/// One operation ready to time: it owns its keys and buffers, and processes one buffer of
/// payload each call. Built fresh per measurement and per thread, so nothing on the data
/// path is shared between threads.
pub type Op = Box<dyn FnMut() -> Result<(), BenchError>>;

/// One thing to measure: the labels of its row, and how to set up its operation.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// See [`Row::group`].
    pub group: &'static str,
    /// See [`Row::implementation`].
    pub implementation: &'static str,
    /// See [`Row::operation`].
    pub operation: &'static str,
    /// Payload bytes per call of the operation.
    pub size_bytes: usize,
    /// Sets up keys and buffers of its own for `size_bytes` and returns the operation.
    pub prepare: fn(usize) -> Result<Op, BenchError>,
}

impl Workload {
    /// Sets the operation up (untimed) and measures it for about `budget_s` seconds.
    pub fn measure(&self, budget_s: f64) -> Result<Row, BenchError> {
        let op = self.prepare()?;
        self.measure_prepared(budget_s, op)
    }

    /// Sets up this workload's operation, with keys and buffers of its own.
    pub fn prepare(&self) -> Result<Op, BenchError> {
        (self.prepare)(self.size_bytes)
    }

    /// Measures an operation this workload's [`Workload::prepare`] returned.
    pub fn measure_prepared(&self, budget_s: f64, op: Op) -> Result<Row, BenchError> {
        measure_row(
            self.group,
            self.implementation,
            self.operation,
            self.size_bytes,
            budget_s,
            op,
        )
    }
}

/// One measured row of the report: an operation of one implementation at one buffer size.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Group of rows in the table, e.g. [`GROUP_SINGLE_LAYER`](crate::layers::GROUP_SINGLE_LAYER).
    pub group: &'static str,
    /// What was measured, e.g. "inner (twofold-gcm)".
    pub implementation: &'static str,
    /// "seal" or "open".
    pub operation: &'static str,
    /// Payload bytes per operation (the buffer size; tags and AAD not counted).
    pub size_bytes: usize,
    /// Throughput in GB/s (10^9 payload bytes per second).
    pub gb_per_s: f64,
    /// Operations in the timed part.
    pub iterations: u64,
    /// Length of the timed part in seconds.
    pub seconds: f64,
}

/// Runs `op` (which processes `size_bytes` of payload each call) for about `budget_s`
/// seconds after a warm-up of a fifth of that, and returns the row for it.
///
/// `op` must do the whole operation each call and pass its results through
/// [`std::hint::black_box`] so the compiler cannot drop the work.
pub fn measure_row(
    group: &'static str,
    implementation: &'static str,
    operation: &'static str,
    size_bytes: usize,
    budget_s: f64,
    mut op: impl FnMut() -> Result<(), BenchError>,
) -> Result<Row, BenchError> {
    let budget = Duration::from_secs_f64(budget_s);

    // Warm up: fills caches and TLBs, lets the clock frequency settle, and tells us how
    // long one operation takes, so the timed loop reads the clock about once a millisecond.
    let warm_up = budget.mul_f64(WARM_UP_SHARE);
    let warm_start = Instant::now();
    let mut warm_ops: u64 = 0;
    loop {
        op()?;
        warm_ops += 1;
        if warm_start.elapsed() >= warm_up {
            break;
        }
    }
    let per_op_s = warm_start.elapsed().as_secs_f64() / warm_ops as f64;
    let batch = if per_op_s > 0.0 {
        (BATCH_TARGET.as_secs_f64() / per_op_s).clamp(1.0, BATCH_OPS_MAX as f64) as u64
    } else {
        BATCH_OPS_MAX
    };

    let start = Instant::now();
    let mut iterations: u64 = 0;
    let elapsed = loop {
        for _ in 0..batch {
            op()?;
        }
        iterations += batch;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            break elapsed;
        }
    };

    let seconds = elapsed.as_secs_f64();
    let bytes = iterations as f64 * size_bytes as f64;
    Ok(Row {
        group,
        implementation,
        operation,
        size_bytes,
        gb_per_s: bytes / seconds / 1e9,
        iterations,
        seconds,
    })
}
