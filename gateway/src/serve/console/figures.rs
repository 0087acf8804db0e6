//! The console's figures, read from the Prometheus text that `/metrics` serves: the console
//! keeps no counters of its own, so its numbers are the metrics' numbers.

use serde::Serialize;
use std::collections::BTreeMap;

/// One sample of the exposition: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric's name (with `_sum`, `_count`, `_bucket` suffixes as written).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// The samples of Prometheus text exposition (comments and malformed lines skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = BTreeMap::new();
    let rest = match rest.strip_prefix('{') {
        Some(inner) => {
            let mut chars = inner.char_indices();
            let mut end = None;
            let (mut key, mut value, mut in_value, mut escaped) =
                (String::new(), String::new(), false, false);
            for (i, c) in chars.by_ref() {
                match (in_value, c) {
                    (true, _) if escaped => {
                        value.push(match c {
                            'n' => '\n',
                            other => other,
                        });
                        escaped = false;
                    }
                    (true, '\\') => escaped = true,
                    (true, '"') => {
                        labels.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                        in_value = false;
                    }
                    (true, c) => value.push(c),
                    (false, '}') => {
                        end = Some(i);
                        break;
                    }
                    (false, '"') => in_value = true,
                    (false, '=' | ',' | ' ') => {}
                    (false, c) => key.push(c),
                }
            }
            &inner[end? + 1..]
        }
        None => rest,
    };
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Operations whose success writes an object.
const WRITES: &[&str] = &[
    "PutObject",
    "PostObject",
    "CopyObject",
    "CompleteMultipartUpload",
];

/// The overview's totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Requests answered.
    pub requests: u64,
    /// Requests by S3 operation.
    pub requests_by_operation: BTreeMap<String, u64>,
    /// Errors by kind: `client` (4xx), `server` (5xx), `integrity`, `auth`, `backend`,
    /// `custodian`.
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    /// Objects written (successful PUT, POST, copy and Complete).
    pub objects_written: u64,
    /// Bytes received from clients.
    pub client_received_bytes: u64,
    /// Bytes sent to clients.
    pub client_sent_bytes: u64,
    /// Bytes sealed, both layers.
    pub sealed_bytes: u64,
    /// Bytes opened, both layers.
    pub opened_bytes: u64,
    /// Stored objects that failed verification.
    pub integrity_failures: u64,
    /// Custodian operations.
    pub hsm_operations: u64,
    /// Their mean latency (ms), if there were any.
    pub hsm_mean_ms: Option<f64>,
    /// Bucket-key cache hits over lookups, if there were any.
    pub key_cache_hit_rate: Option<f64>,
    /// Client connections open (the admin listener's own left out).
    pub connections_open: u64,
}

fn sum(samples: &[Sample], name: &str, keep: impl Fn(&Sample) -> bool) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && keep(s))
        .map(|s| s.value)
        .sum()
}

fn label<'a>(s: &'a Sample, name: &str) -> &'a str {
    s.labels.get(name).map_or("", String::as_str)
}

/// A count as a whole number (counters are whole; a gauge's fraction is cut).
fn whole(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

/// The totals of `samples`.
pub fn totals(samples: &[Sample]) -> Totals {
    use crate::telemetry as t;
    let all = |_: &Sample| true;
    let requests: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == t::REQUESTS_TOTAL)
        .collect();
    let mut by_operation = BTreeMap::new();
    let (mut client, mut server, mut written) = (0, 0, 0);
    for s in &requests {
        let n = whole(s.value);
        *by_operation
            .entry(label(s, "operation").to_owned())
            .or_insert(0) += n;
        match label(s, "code").as_bytes().first() {
            Some(b'4') => client += n,
            Some(b'5') => server += n,
            Some(b'2') if WRITES.contains(&label(s, "operation")) => written += n,
            _ => {}
        }
    }
    let integrity = whole(sum(samples, t::INTEGRITY_FAILURES_TOTAL, all));
    let errors = BTreeMap::from([
        ("client", client),
        ("server", server),
        ("integrity", integrity),
        ("auth", whole(sum(samples, t::AUTH_FAILURES_TOTAL, all))),
        ("backend", whole(sum(samples, t::BACKEND_ERRORS_TOTAL, all))),
        ("custodian", whole(sum(samples, t::HSM_ERRORS_TOTAL, all))),
    ]);
    let hsm_sum = sum(
        samples,
        &format!("{}_sum", t::HSM_OPERATION_DURATION_SECONDS),
        all,
    );
    let hsm_count = sum(
        samples,
        &format!("{}_count", t::HSM_OPERATION_DURATION_SECONDS),
        all,
    );
    let hits = sum(samples, t::KEY_CACHE_HITS_TOTAL, all);
    let misses = sum(samples, t::KEY_CACHE_MISSES_TOTAL, all);
    Totals {
        requests: by_operation.values().sum(),
        requests_by_operation: by_operation,
        errors_by_kind: errors,
        objects_written: written,
        client_received_bytes: whole(sum(samples, t::CLIENT_RECEIVED_BYTES_TOTAL, all)),
        client_sent_bytes: whole(sum(samples, t::CLIENT_SENT_BYTES_TOTAL, all)),
        sealed_bytes: whole(sum(samples, t::SEALED_BYTES_TOTAL, all)),
        opened_bytes: whole(sum(samples, t::OPENED_BYTES_TOTAL, all)),
        integrity_failures: integrity,
        hsm_operations: whole(sum(samples, t::HSM_OPERATIONS_TOTAL, all)),
        hsm_mean_ms: (hsm_count > 0.0).then(|| hsm_sum / hsm_count * 1000.0),
        key_cache_hit_rate: (hits + misses > 0.0).then(|| hits / (hits + misses)),
        connections_open: whole(sum(samples, t::CONNECTIONS_OPEN, |s| {
            label(s, "listener") != "admin"
        })),
    }
}

/// A custodian's figures: operations, errors, and its last success (Unix seconds).
pub fn custodian(samples: &[Sample], layer: &str) -> (u64, u64, Option<u64>) {
    use crate::telemetry as t;
    let of = |s: &Sample| label(s, "layer") == layer;
    let last = sum(samples, t::HSM_LAST_SUCCESS_TIMESTAMP_SECONDS, of);
    (
        whole(sum(samples, t::HSM_OPERATIONS_TOTAL, of)),
        whole(sum(samples, t::HSM_ERRORS_TOTAL, of)),
        (last > 0.0).then(|| whole(last)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP twofold_requests_total Requests.
# TYPE twofold_requests_total counter
twofold_requests_total{operation="PutObject",code="200"} 5
twofold_requests_total{operation="GetObject",code="200"} 7
twofold_requests_total{operation="GetObject",code="500"} 1
twofold_requests_total{operation="HeadObject",code="404"} 2
twofold_integrity_failures_total{reason="segment_rejected"} 1
twofold_client_received_bytes_total 1048576
twofold_hsm_operations_total{layer="outer",kind="wrap"} 3
twofold_hsm_operations_total{layer="inner",kind="wrap"} 1
twofold_hsm_operation_duration_seconds_sum{layer="outer",kind="wrap"} 0.003
twofold_hsm_operation_duration_seconds_count{layer="outer",kind="wrap"} 3
twofold_hsm_last_success_timestamp_seconds{layer="outer"} 1765000000
twofold_key_cache_hits_total{cache="seal"} 3
twofold_key_cache_misses_total{cache="seal"} 1
twofold_connections_open{listener="client"} 2
twofold_connections_open{listener="admin"} 1
odd{label="a \"quoted\" } value"} 4
broken{x="1" 
"#;

    #[test]
    fn totals_follow_the_metrics() {
        let samples = parse(TEXT);
        assert_eq!(
            samples.last().unwrap().labels["label"],
            "a \"quoted\" } value"
        );
        let t = totals(&samples);
        assert_eq!(t.requests, 15);
        assert_eq!(t.requests_by_operation["GetObject"], 8);
        assert_eq!(t.objects_written, 5);
        assert_eq!(t.errors_by_kind["client"], 2);
        assert_eq!(t.errors_by_kind["server"], 1);
        assert_eq!(t.integrity_failures, 1);
        assert_eq!(t.client_received_bytes, 1_048_576);
        assert_eq!(t.hsm_operations, 4);
        assert!((t.hsm_mean_ms.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(t.key_cache_hit_rate, Some(0.75));
        assert_eq!(t.connections_open, 2);
        assert_eq!(custodian(&samples, "outer"), (3, 0, Some(1_765_000_000)));
        assert_eq!(custodian(&samples, "inner"), (1, 0, None));
        assert_eq!(totals(&[]).hsm_mean_ms, None);
    }

    #[test]
    fn the_exporters_own_text_parses() {
        let handle = crate::telemetry::install_metrics();
        metrics::counter!(crate::telemetry::REQUESTS_TOTAL, "operation" => "PutObject", "code" => "200")
            .increment(1);
        let t = totals(&parse(&handle.render()));
        assert!(t.requests_by_operation["PutObject"] >= 1);
    }
}
