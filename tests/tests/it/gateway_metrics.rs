//! The admin listener of a running gateway: `/metrics` counts a PUT and a GET by exactly
//! the amounts they move (requests, bytes sealed and opened by each layer, bytes on both
//! sides, custodian operations, key-cache hits, authentication failures), `/healthz` and
//! `/readyz` answer, and `/readyz` turns to not ready when the backend goes away and back
//! when it returns. One core, so that which core serves a request cannot change the
//! key-cache and custodian counts. In a process of its own (`crate::ran_in_own_process`):
//! the metrics recorder is per process.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use twofold_tests::admin::{Scrape, get};
use twofold_tests::gateway::{Credential, Options, TestGateway, create_bucket, put, status_code};
use twofold_tests::random_bytes;

const SEGMENT_BYTES: usize = 65536;
const TAG_BYTES: usize = 16;

fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

/// Scrapes once the gateway has counted the request an operation just made: the count is
/// taken after the answer's last byte is written, so a client can hold the answer a moment
/// before the counter moves (waits at most 10 s, then scrapes anyway and lets the test's
/// exact assertions fail).
fn scrape_after(admin: std::net::SocketAddr, prev: &Scrape, operation: &str) -> Scrape {
    let started = Instant::now();
    loop {
        let s = Scrape::take(admin);
        let counted = delta(
            prev,
            &s,
            "twofold_requests_total",
            &[("operation", operation)],
        ) >= 1.0;
        if (counted && s.sum("twofold_requests_in_flight", &[]) == 0.0)
            || started.elapsed() > Duration::from_secs(10)
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `/readyz` until it answers `want` (or fails the test after 20 s).
fn wait_ready(gw: &TestGateway, want: u16) -> String {
    let started = Instant::now();
    loop {
        let (status, body) = get(gw.admin_addr(), "/readyz");
        if status == want {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/readyz stayed {status}, wanted {want}: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn metrics_count_a_put_and_a_get_exactly() {
    if crate::ran_in_own_process() {
        return;
    }
    let mut gw = TestGateway::start_with(Options {
        admin_listener: true,
        cores: 1,
        ..Options::default()
    });
    let admin = gw.admin_addr();
    let (status, body) = get(admin, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let body = wait_ready(&gw, 200);
    assert!(
        body.contains("backend: ok") && body.contains("custodian outer: ok"),
        "{body}"
    );
    assert!(body.contains("custodian inner: ok"), "{body}");

    let s3 = gw.client();
    create_bucket(&s3, "metered").await;
    // 200,000 bytes: three full 64 KiB segments and one of 3,392 bytes.
    let n = 200_000usize;
    let segments = n.div_ceil(SEGMENT_BYTES);
    let plain = random_bytes(n);
    let before = Scrape::take(admin);
    put(&s3, "metered", "object", plain.clone()).await;
    let after_put = scrape_after(admin, &before, "PutObject");
    let got = twofold_tests::gateway::get(&s3, "metered", "object").await;
    assert_eq!(got, plain);
    let after_get = scrape_after(admin, &after_put, "GetObject");

    let put_ok = [("operation", "PutObject"), ("code", "200")];
    let get_ok = [("operation", "GetObject"), ("code", "200")];
    assert_eq!(
        delta(&before, &after_put, "twofold_requests_total", &put_ok),
        1.0
    );
    assert_eq!(
        delta(&after_put, &after_get, "twofold_requests_total", &get_ok),
        1.0
    );
    assert_eq!(
        delta(&before, &after_put, "twofold_requests_total", &get_ok),
        0.0
    );

    // The inner layer seals the plaintext; the outer layer seals it with the inner tags.
    // The SDK sends a CRC32 with the PUT and asks for it back on the GET, so the object's
    // checksum record (3 bytes and the 4-byte CRC) is sealed and opened once besides.
    let record = 3 + 4;
    let sealed = |s: &Scrape, layer| s.sum("twofold_sealed_bytes_total", &[("layer", layer)]);
    let opened = |s: &Scrape, layer| s.sum("twofold_opened_bytes_total", &[("layer", layer)]);
    assert_eq!(
        sealed(&after_put, "inner") - sealed(&before, "inner"),
        (n + record) as f64
    );
    assert_eq!(
        sealed(&after_put, "outer") - sealed(&before, "outer"),
        (n + segments * TAG_BYTES + record + TAG_BYTES) as f64
    );
    assert_eq!(
        opened(&after_get, "inner") - opened(&after_put, "inner"),
        (n + record) as f64
    );
    assert_eq!(
        opened(&after_get, "outer") - opened(&after_put, "outer"),
        (n + segments * TAG_BYTES + record + TAG_BYTES) as f64
    );
    assert_eq!(
        delta(&before, &after_put, "twofold_opened_bytes_total", &[]),
        0.0
    );

    // Wire bytes: at least the body each way, and the stored form towards the backend.
    let stored = (n + segments * 2 * TAG_BYTES) as f64;
    let d = |a: &Scrape, b: &Scrape, name| delta(a, b, name, &[]);
    assert!(d(&before, &after_put, "twofold_client_received_bytes_total") >= n as f64);
    assert!(d(&before, &after_put, "twofold_backend_sent_bytes_total") >= stored);
    assert!(d(&after_put, &after_get, "twofold_client_sent_bytes_total") >= n as f64);
    assert!(
        d(
            &after_put,
            &after_get,
            "twofold_backend_received_bytes_total"
        ) >= stored
    );
    // Heads and XML only, no object body, on the other directions.
    assert!(d(&before, &after_put, "twofold_client_sent_bytes_total") < 4096.0);
    assert!(d(&after_put, &after_get, "twofold_backend_sent_bytes_total") < 4096.0);

    // The first PUT into a bucket has each custodian derive the bucket's epoch key once
    // (format v2: no wrap), and the GET finds both bucket keys in the cache.
    let ops = |s: &Scrape, layer, kind| {
        s.sum(
            "twofold_hsm_operations_total",
            &[("layer", layer), ("kind", kind)],
        )
    };
    for layer in ["inner", "outer"] {
        assert_eq!(
            ops(&after_put, layer, "derive") - ops(&before, layer, "derive"),
            1.0
        );
        assert_eq!(
            ops(&after_get, layer, "derive") - ops(&after_put, layer, "derive"),
            0.0
        );
        for kind in ["wrap", "unwrap"] {
            assert_eq!(
                ops(&after_get, layer, kind) - ops(&before, layer, kind),
                0.0
            );
        }
    }
    assert_eq!(
        delta(
            &after_put,
            &after_get,
            "twofold_key_cache_hits_total",
            &[("cache", "open")]
        ),
        2.0
    );
    assert!(after_get.sum("twofold_key_cache_entries", &[]) >= 2.0);
    assert!(after_get.has("twofold_hsm_operation_duration_seconds_bucket"));
    assert!(after_get.has("twofold_time_to_first_byte_seconds_bucket"));
    assert_eq!(
        delta(
            &after_put,
            &after_get,
            "twofold_request_duration_seconds_count",
            &[("operation", "GetObject")]
        ),
        1.0
    );

    // A second PUT to the same bucket needs no custodian at all.
    put(&s3, "metered", "second", random_bytes(1000)).await;
    let after_second = scrape_after(admin, &after_get, "PutObject");
    assert_eq!(
        delta(
            &after_get,
            &after_second,
            "twofold_hsm_operations_total",
            &[]
        ),
        0.0
    );
    assert_eq!(after_second.sum("twofold_requests_in_flight", &[]), 0.0);

    // A wrong secret is an authentication failure, counted by reason.
    let wrong = Credential {
        access_key_id: gw.admin().access_key_id.clone(),
        secret: "not-the-secret".to_owned(),
    };
    let e = gw
        .client_as(&wrong)
        .get_object()
        .bucket("metered")
        .key("object")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 403);
    let after_denied = scrape_after(admin, &after_second, "GetObject");
    assert_eq!(
        delta(
            &after_second,
            &after_denied,
            "twofold_auth_failures_total",
            &[("reason", "SignatureDoesNotMatch")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            &after_second,
            &after_denied,
            "twofold_requests_total",
            &[("operation", "GetObject"), ("code", "403")]
        ),
        1.0
    );

    // The backend goes away: not ready, and the answer says why; back: ready again.
    gw.stop_backend();
    let body = wait_ready(&gw, 503);
    assert!(body.contains("backend: unreachable"), "{body}");
    assert_eq!(Scrape::take(admin).sum("twofold_ready", &[]), 0.0);
    assert_eq!(get(admin, "/healthz").0, 200, "alive though not ready");
    gw.restart_backend();
    wait_ready(&gw, 200);
    assert_eq!(Scrape::take(admin).sum("twofold_ready", &[]), 1.0);
}
