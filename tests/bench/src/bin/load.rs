//! `twofold-bench-load`: the benchmark's load generator, a real S3 client (aws-sdk-s3,
//! SigV4-signed requests, aws-chunked bodies with a CRC32 trailer as the SDK sends by
//! default) running several requests at once. It runs one operation until a time or a
//! count is reached and prints one JSON object: operations, bytes, throughput, objects/s,
//! and latency and time-to-first-byte percentiles. The secret access key comes from the
//! environment variable `TWOFOLD_BENCH_SECRET`. `--checksum when-required` turns the
//! SDK's default checksum off, so that PUT bodies go out plain (`UNSIGNED-PAYLOAD` or a
//! signed SHA-256) instead of aws-chunked with a trailer: Ceph RGW 16 refuses the latter.
//! `--content-md5` adds the Content-MD5 header that many clients (rclone, s3cmd) send with
//! each PUT; it is computed once per distinct body before the run, not per request, so
//! that the client's own cost stays low. Used with `--checksum when-required`, so that no
//! CRC trailer is added beside it. `--rate`, `--key-offset` and `--pick random` shape the
//! key-hierarchy workload: paced writes of distinct objects, then uniformly random reads.
#![forbid(unsafe_code)]

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use twofold_bench::stats::percentile_ms;

const USAGE: &str = "\
usage: twofold-bench-load --endpoint URL --access-key ID --bucket B
         --op create-bucket|put|get|range [--size BYTES] [--keys N] [--prefix P]
         [--concurrency N] [--seconds S] [--count N] [--range-bytes BYTES]
         [--checksum when-supported|when-required] [--content-md5]
         [--rate OPS_PER_S] [--key-offset N] [--pick round-robin|random]
  (secret access key in TWOFOLD_BENCH_SECRET)
  put:   PUT objects P-O..P-(O+N-1) of --size bytes, round robin (O: --key-offset, 0)
  get:   GET them, checking each length
  range: GET --range-bytes at random offsets of them
  --content-md5: each PUT carries the Content-MD5 of its body (computed once)
  --rate: start at most this many requests per second, all connections together
  --pick random: each request picks its object uniformly at random instead";

/// Seconds past the run's end after which unfinished requests count as hung.
const HANG_TIMEOUT_SECS: u64 = 120;
/// Bytes of the random block every object body repeats.
const BLOCK_BYTES: usize = 1 << 20;
/// Highest `--rate` accepted: beyond it pacing is no longer meaningful on loopback.
const RATE_MAX: f64 = 1e6;

#[derive(Debug, Clone)]
struct Args {
    endpoint: String,
    access_key: String,
    bucket: String,
    op: String,
    size: u64,
    keys: u64,
    prefix: String,
    concurrency: usize,
    seconds: f64,
    count: u64,
    range_bytes: u64,
    /// Whether the SDK adds a CRC32 to every PUT (its default, sent as an aws-chunked
    /// trailer) or only where an operation requires one (a plain body).
    checksum_when_required: bool,
    /// Whether every PUT carries the Content-MD5 of its body.
    content_md5: bool,
    /// Requests started per second at most, all connections together; `None`: no pacing.
    rate: Option<f64>,
    /// Index of the first object name: objects are P-(O)..P-(O+keys-1).
    key_offset: u64,
    /// Whether each request picks its object uniformly at random (else round robin).
    pick_random: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        endpoint: String::new(),
        access_key: String::new(),
        bucket: String::new(),
        op: String::new(),
        size: 4096,
        keys: 1,
        prefix: "obj".into(),
        concurrency: 1,
        seconds: 10.0,
        count: u64::MAX,
        range_bytes: 1 << 20,
        checksum_when_required: false,
        content_md5: false,
        rate: None,
        key_offset: 0,
        pick_random: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        // The one flag without a value.
        if flag == "--content-md5" {
            a.content_md5 = true;
            continue;
        }
        let v = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v:?}"))
        };
        match flag.as_str() {
            "--endpoint" => a.endpoint = v,
            "--access-key" => a.access_key = v,
            "--bucket" => a.bucket = v,
            "--op" => a.op = v,
            "--size" => a.size = num(&v)?,
            "--keys" => a.keys = num(&v)?.max(1),
            "--prefix" => a.prefix = v,
            "--concurrency" => a.concurrency = usize::try_from(num(&v)?.max(1)).unwrap_or(1),
            "--seconds" => {
                a.seconds = v
                    .parse()
                    .map_err(|_| format!("--seconds: not a number: {v:?}"))?
            }
            "--count" => a.count = num(&v)?,
            "--range-bytes" => a.range_bytes = num(&v)?.max(1),
            "--checksum" => {
                a.checksum_when_required = match v.as_str() {
                    "when-supported" => false,
                    "when-required" => true,
                    _ => return Err(format!("--checksum: {v:?}\n{USAGE}")),
                }
            }
            "--rate" => {
                let r: f64 = v
                    .parse()
                    .map_err(|_| format!("--rate: not a number: {v:?}"))?;
                if !(r > 0.0 && r <= RATE_MAX) {
                    return Err(format!("--rate must be above 0 and at most {RATE_MAX}"));
                }
                a.rate = Some(r);
            }
            "--key-offset" => a.key_offset = num(&v)?,
            "--pick" => {
                a.pick_random = match v.as_str() {
                    "round-robin" => false,
                    "random" => true,
                    _ => return Err(format!("--pick: {v:?}\n{USAGE}")),
                }
            }
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    if a.endpoint.is_empty() || a.access_key.is_empty() || a.bucket.is_empty() {
        return Err(USAGE.into());
    }
    Ok(a)
}

/// A request body of `remaining` bytes made of one shared random block, handed to the SDK
/// in block-sized pieces without copying.
struct PatternBody {
    block: Bytes,
    remaining: u64,
}

impl http_body::Body for PatternBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.block.len() as u64);
        self.remaining -= n;
        let piece = self.block.slice(..n as usize);
        Poll::Ready(Some(Ok(http_body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// xorshift64*: cheap, good enough for offsets and filler bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The body every PUT of `size` bytes sends: `block` cut to `size`, or repeated up to it.
fn body_chunks(block: &Bytes, size: u64) -> impl Iterator<Item = Bytes> + '_ {
    let step = block.len() as u64;
    (0..size.div_ceil(step.max(1))).map(move |i| {
        let n = (size - i * step).min(step) as usize;
        block.slice(..n)
    })
}

/// The Content-MD5 header value (base64 of the MD5) of the body of `size` bytes.
fn content_md5(block: &Bytes, size: u64) -> String {
    use md5::Digest;
    let mut h = md5::Md5::new();
    for chunk in body_chunks(block, size) {
        h.update(&chunk);
    }
    base64(&h.finalize())
}

/// Standard base64 with padding (RFC 4648), for the 16 bytes of a Content-MD5.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn random_block() -> Bytes {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id()));
    let mut v = Vec::with_capacity(BLOCK_BYTES);
    while v.len() < BLOCK_BYTES {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    Bytes::from(v)
}

#[derive(Default)]
struct Samples {
    latency: Vec<Duration>,
    ttfb: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    bytes: u64,
    ops: u64,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("twofold-bench-load: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("twofold-bench-load: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("twofold-bench-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn client(args: &Args) -> Result<Client, String> {
    let secret = std::env::var("TWOFOLD_BENCH_SECRET")
        .map_err(|_| format!("TWOFOLD_BENCH_SECRET is not set\n{USAGE}"))?;
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .credentials_provider(Credentials::new(
            &args.access_key,
            secret,
            None,
            None,
            "twofold-bench",
        ))
        .region(Region::new("us-east-1"))
        .endpoint_url(&args.endpoint)
        .force_path_style(true)
        .retry_config(RetryConfig::disabled())
        // The paths differ in whether they return checksums; validating only some would
        // charge the client unevenly.
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .request_checksum_calculation(if args.checksum_when_required {
            RequestChecksumCalculation::WhenRequired
        } else {
            RequestChecksumCalculation::WhenSupported
        })
        .build();
    Ok(Client::from_conf(config))
}

async fn run(args: Args) -> Result<String, String> {
    let client = client(&args)?;
    if args.op == "create-bucket" {
        return match client.create_bucket().bucket(&args.bucket).send().await {
            Ok(_) => Ok("{\"created\":true}".into()),
            Err(e) => Err(format!(
                "CreateBucket: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )),
        };
    }
    if !matches!(args.op.as_str(), "put" | "get" | "range") {
        return Err(format!("unknown --op {:?}\n{USAGE}", args.op));
    }
    let block = random_block();
    // One body for every PUT of the run, so one digest.
    let md5: Option<Arc<str>> = (args.content_md5 && args.op == "put")
        .then(|| Arc::from(content_md5(&block, args.size).as_str()));
    let next = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let mut tasks = Vec::new();
    for w in 0..args.concurrency {
        let (client, args, next, samples, block, md5) = (
            client.clone(),
            args.clone(),
            next.clone(),
            samples.clone(),
            block.clone(),
            md5.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x1234_5678_9ABC_DEF1 ^ ((w as u64 + 1) << 32));
            let mut local = Samples::default();
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= args.count {
                    break;
                }
                if let Some(rate) = args.rate {
                    // Request i starts no earlier than i/rate seconds into the run.
                    let at = start + Duration::from_secs_f64(i as f64 / rate);
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                }
                let index = if args.pick_random {
                    rng.next() % args.keys
                } else {
                    i % args.keys
                };
                let key = format!("{}-{}", args.prefix, args.key_offset + index);
                let t0 = Instant::now();
                let result = match args.op.as_str() {
                    "put" => put(&client, &args, &key, &block, md5.as_deref()).await,
                    "get" => get(&client, &args, &key, None, t0).await,
                    _ => {
                        let span = args.size.saturating_sub(args.range_bytes) + 1;
                        let first = rng.next() % span;
                        let last = first + args.range_bytes.min(args.size) - 1;
                        get(&client, &args, &key, Some((first, last)), t0).await
                    }
                };
                match result {
                    Ok((n, ttfb)) => {
                        local.latency.push(t0.elapsed());
                        if let Some(t) = ttfb {
                            local.ttfb.push(t);
                        }
                        local.bytes += n;
                        local.ops += 1;
                    }
                    Err(e) => {
                        local.errors += 1;
                        local.first_error.get_or_insert(e);
                    }
                }
            }
            if let Ok(mut s) = samples.lock() {
                s.latency.append(&mut local.latency);
                s.ttfb.append(&mut local.ttfb);
                s.errors += local.errors;
                s.bytes += local.bytes;
                s.ops += local.ops;
                if s.first_error.is_none() {
                    s.first_error = local.first_error;
                }
            }
        }));
    }
    // A request that hangs must end the run with an error, not stall it.
    let hard_stop = deadline + Duration::from_secs(HANG_TIMEOUT_SECS);
    for t in tasks {
        match tokio::time::timeout_at(hard_stop.into(), t).await {
            Ok(r) => r.map_err(|e| format!("worker: {e}"))?,
            Err(_) => {
                return Err(format!(
                    "{} did not finish within {HANG_TIMEOUT_SECS} s after the run's end",
                    args.op
                ));
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut s = std::mem::take(&mut *samples.lock().map_err(|_| "samples lock poisoned")?);
    let json = serde_json::json!({
        "op": args.op,
        "size_bytes": args.size,
        "range_bytes": if args.op == "range" { Some(args.range_bytes) } else { None },
        "concurrency": args.concurrency,
        "content_md5": args.content_md5 && args.op == "put",
        "ops": s.ops,
        "errors": s.errors,
        "first_error": s.first_error,
        "bytes": s.bytes,
        "seconds": seconds,
        "gb_per_s": s.bytes as f64 / seconds / 1e9,
        "ops_per_s": s.ops as f64 / seconds,
        "latency_ms": {
            "p50": percentile_ms(&mut s.latency, 50.0),
            "p99": percentile_ms(&mut s.latency, 99.0),
        },
        "ttfb_ms": {
            "p50": percentile_ms(&mut s.ttfb, 50.0),
            "p99": percentile_ms(&mut s.ttfb, 99.0),
        },
    });
    Ok(json.to_string())
}

async fn put(
    client: &Client,
    args: &Args,
    key: &str,
    block: &Bytes,
    md5: Option<&str>,
) -> Result<(u64, Option<Duration>), String> {
    let body = if args.size <= BLOCK_BYTES as u64 {
        ByteStream::from(block.slice(..args.size as usize))
    } else {
        ByteStream::from_body_1_x(PatternBody {
            block: block.clone(),
            remaining: args.size,
        })
    };
    let len = i64::try_from(args.size).map_err(|_| "size out of range")?;
    let mut req = client
        .put_object()
        .bucket(&args.bucket)
        .key(key)
        .content_length(len)
        .body(body);
    if let Some(m) = md5 {
        req = req.content_md5(m);
    }
    req.send()
        .await
        .map_err(|e| format!("PutObject: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    Ok((args.size, None))
}

async fn get(
    client: &Client,
    args: &Args,
    key: &str,
    range: Option<(u64, u64)>,
    t0: Instant,
) -> Result<(u64, Option<Duration>), String> {
    let mut req = client.get_object().bucket(&args.bucket).key(key);
    let expected = match range {
        Some((first, last)) => {
            req = req.range(format!("bytes={first}-{last}"));
            last - first + 1
        }
        None => args.size,
    };
    let resp = req
        .send()
        .await
        .map_err(|e| format!("GetObject: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    let mut body = resp.body;
    let mut n = 0u64;
    let mut ttfb = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("GetObject body: {e}"))?;
        if ttfb.is_none() && !chunk.is_empty() {
            ttfb = Some(t0.elapsed());
        }
        n += chunk.len() as u64;
    }
    if n != expected {
        return Err(format!("GetObject {key}: {n} bytes, expected {expected}"));
    }
    Ok((n, ttfb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_known_digests() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn content_md5_of_repeated_block() {
        // MD5("") and MD5("abcabcab"), as S3 wants them in Content-MD5.
        let block = Bytes::from_static(b"abc");
        assert_eq!(content_md5(&block, 0), "1B2M2Y8AsgTpgAmY7PhCfg==");
        let whole: Vec<u8> = body_chunks(&block, 8).flat_map(|b| b.to_vec()).collect();
        assert_eq!(whole, b"abcabcab");
        use md5::Digest;
        assert_eq!(
            content_md5(&block, 8),
            base64(&md5::Md5::digest(b"abcabcab"))
        );
    }
}
