//! Format v2's key hierarchy through a running gateway, counted in its metrics. In a
//! process of its own (`crate::ran_in_own_process`): the metrics recorder is global to the
//! process, so another gateway running beside it would count into the same figures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::{Duration, Instant};
use twofold_tests::admin::Scrape;
use twofold_tests::gateway::{Options, TestGateway, create_bucket, put};
use twofold_tests::random_bytes;

fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

/// Format v2's key hierarchy end to end: the custodians derive one epoch key per bucket,
/// layer and core, however many objects the cores write and read and on whichever
/// connections. Every core of every gateway derives the same epoch key, so a core reads
/// what another wrote without a further call; in format v1 every core wrapped a bucket key
/// of its own and a reader unwrapped each.
#[tokio::test]
async fn custodian_calls_do_not_grow_with_the_objects_or_the_cores_that_wrote_them() {
    if crate::ran_in_own_process() {
        return;
    }
    const CORES: usize = 2;
    const OBJECTS: usize = 24;
    let gw = TestGateway::start_with(Options {
        admin_listener: true,
        cores: CORES,
        ..Options::default()
    });
    let admin = gw.admin_addr();
    create_bucket(&gw.client(), "hierarchy").await;
    let before = Scrape::take(admin);
    let bodies: Vec<Vec<u8>> = (0..OBJECTS).map(|i| random_bytes(1000 + i)).collect();
    for (i, body) in bodies.iter().enumerate() {
        // A new client, so a new connection, every few objects: spread over the cores.
        let s3 = gw.client();
        put(&s3, "hierarchy", &format!("o-{i}"), body.clone()).await;
    }
    for (i, body) in bodies.iter().enumerate().rev() {
        let s3 = gw.client();
        let got = twofold_tests::gateway::get(&s3, "hierarchy", &format!("o-{i}")).await;
        assert!(&got == body, "object {i}");
    }
    let mut after = Scrape::take(admin);
    let deadline = Instant::now() + Duration::from_secs(10);
    while delta(&before, &after, "twofold_requests_total", &[]) < (2 * OBJECTS) as f64
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
        after = Scrape::take(admin);
    }
    let ops = |kind| {
        delta(
            &before,
            &after,
            "twofold_hsm_operations_total",
            &[("kind", kind)],
        )
    };
    let derives = ops("derive");
    assert!(
        (2.0..=(2 * CORES) as f64).contains(&derives),
        "{derives} derivations for {} requests on {CORES} cores",
        2 * OBJECTS
    );
    assert_eq!(ops("wrap") + ops("unwrap"), 0.0);
}
