//! `/readyz` used to make a backend request and a call to each HSM for every probe, so a
//! flood of probes was a flood on the HSMs. Probes within a second now share one result.
//! In a process of its own (`crate::ran_in_own_process`): the metrics recorder is per
//! process.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use twofold::serve::admin::READINESS_REUSE;
use twofold_tests::admin::{Scrape, get};
use twofold_tests::gateway::{Options, TestGateway};

/// Probes in the burst: threads, and probes each.
const PROBE_THREADS: usize = 8;
const PROBES_PER_THREAD: usize = 25;

#[test]
fn a_burst_of_readyz_probes_costs_a_bounded_number_of_hsm_and_backend_calls() {
    if crate::ran_in_own_process() {
        return;
    }
    let gw = TestGateway::start_with(Options {
        admin_listener: true,
        ..Options::default()
    });
    let admin = gw.admin_addr();
    assert_eq!(get(admin, "/readyz").0, 200);
    let before = Scrape::take(admin);
    let started = Instant::now();
    let threads: Vec<_> = (0..PROBE_THREADS)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..PROBES_PER_THREAD {
                    let (status, body) = get(admin, "/readyz");
                    assert_eq!(status, 200, "{body}");
                    assert!(body.contains("custodian inner: ok"), "{body}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed();
    let after = Scrape::take(admin);
    // One probe per reuse window the burst touched, and one more for a window it began in.
    let windows = (elapsed.as_secs_f64() / READINESS_REUSE.as_secs_f64()).ceil() + 1.0;
    let probes = after.sum("twofold_readiness_probes_total", &[])
        - before.sum("twofold_readiness_probes_total", &[]);
    let hsm_checks = after.sum("twofold_hsm_operations_total", &[("kind", "check")])
        - before.sum("twofold_hsm_operations_total", &[("kind", "check")]);
    let asked = (PROBE_THREADS * PROBES_PER_THREAD) as f64;
    assert!(
        probes <= windows,
        "{asked} /readyz in {elapsed:?} made {probes} probes (at most {windows})"
    );
    assert!(
        hsm_checks <= 2.0 * windows,
        "{asked} /readyz in {elapsed:?} made {hsm_checks} HSM calls (at most {})",
        2.0 * windows
    );

    // A result goes stale: after the window, a probe is made again.
    std::thread::sleep(READINESS_REUSE + Duration::from_millis(100));
    let before = Scrape::take(admin);
    assert_eq!(get(admin, "/readyz").0, 200);
    let after = Scrape::take(admin);
    assert_eq!(
        after.sum("twofold_readiness_probes_total", &[])
            - before.sum("twofold_readiness_probes_total", &[]),
        1.0
    );
}
