//! `twofold-keysim`: a model of how many custodian (HSM) operations a cluster of gateways
//! makes under a given workload, for today's key hierarchy (`v1`) and the proposed one
//! (`v2`, see `docs/key-hierarchy.md`). No cryptography: only key identities and per-core
//! caches.
//!
//! Writes and reads land on random cores. Each core keeps one cache of unwrapped keys per
//! layer. The two layers' keys have the same identities (a function of bucket, time and
//! core) and their caches the same size, so they hit and miss together: the simulator keeps
//! one cache per core and counts every custodian call once per layer.
//!
//! The objects are not materialised. An object picked by a read is a past write: its time
//! follows from the read skew, and its bucket and writing core are uniform, because writes
//! land on uniformly random buckets and cores. The cores' caches are independent of each
//! other (a core sees only its own requests), so the steady state is measured on a sample of
//! cores (`--sample-cores`) receiving their share of the traffic, and scaled to the cluster.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
usage: twofold-keysim [--scheme v1|v2] [--buckets N] [--appliances N] [--cores N]
         [--window-secs S] [--epoch-days D | --epoch-secs S] [--days D | --duration-secs S]
         [--writes-per-sec X] [--reads-per-sec X] [--skew uniform|zipf:S]
         [--cache-entries N] [--eviction lru|fifo] [--reads N] [--warmup-reads N]
         [--sample-cores N] [--seed N] [--json]
  v1: one random bucket key per (bucket, layer, window, core), wrapped by the custodian
  v2: one key per (bucket, layer, epoch) derived by the custodian (a PRF of the KEK);
      window keys are derived from it locally with HKDF
  --skew: uniform over all objects ever written, or zipf:S over objects ranked newest first
  --reads: reads measured (over the sampled cores), after --warmup-reads
    (default: c·(ln c + 5) per sampled core, c the cache entries)
  --json: print one JSON object instead of the text report";

/// Key layers: inner and outer, each with its own custodian.
const LAYERS: u64 = 2;

/// Which key hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// A random bucket key per (bucket, layer, window, core), wrapped by the custodian.
    V1,
    /// A custodian-derived key per (bucket, layer, epoch); window keys derived locally.
    V2,
}

/// How reads pick an object.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Skew {
    /// Uniform over every object written so far.
    Uniform,
    /// Zipf with this exponent over objects ranked by age, newest first.
    Zipf(f64),
}

/// Which entry a full cache drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eviction {
    /// Least recently used.
    Lru,
    /// Oldest inserted (what the gateway's cache does today: hits do not refresh).
    Fifo,
}

#[derive(Debug, Clone)]
struct Params {
    scheme: Scheme,
    buckets: u64,
    appliances: u64,
    cores: u64,
    window_secs: u64,
    epoch_secs: u64,
    duration_secs: u64,
    writes_per_sec: f64,
    reads_per_sec: f64,
    skew: Skew,
    cache_entries: usize,
    eviction: Eviction,
    reads: u64,
    warmup_reads: Option<u64>,
    sample_cores: u64,
    seed: u64,
    /// Print one JSON object instead of the text report.
    json: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            scheme: Scheme::V1,
            buckets: 1,
            appliances: 10,
            cores: 64,
            window_secs: 3600,
            epoch_secs: 30 * 86_400,
            duration_secs: 365 * 86_400,
            writes_per_sec: 1000.0,
            reads_per_sec: 10_000.0,
            skew: Skew::Uniform,
            cache_entries: 4096,
            eviction: Eviction::Lru,
            reads: 4_000_000,
            warmup_reads: None,
            sample_cores: 64,
            seed: 1,
            json: false,
        }
    }
}

impl Params {
    fn total_cores(&self) -> u64 {
        self.appliances * self.cores
    }
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: cannot parse {v:?} as a number"))
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Params, String> {
    let mut p = Params::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        if flag == "--json" {
            p.json = true;
            continue;
        }
        let v = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--scheme" => {
                p.scheme = match v.as_str() {
                    "v1" => Scheme::V1,
                    "v2" => Scheme::V2,
                    _ => return Err(format!("--scheme: v1 or v2, not {v:?}")),
                }
            }
            "--buckets" => p.buckets = parse_num(&flag, &v)?,
            "--appliances" => p.appliances = parse_num(&flag, &v)?,
            "--cores" => p.cores = parse_num(&flag, &v)?,
            "--window-secs" => p.window_secs = parse_num(&flag, &v)?,
            "--epoch-days" => p.epoch_secs = parse_num::<u64>(&flag, &v)? * 86_400,
            "--epoch-secs" => p.epoch_secs = parse_num(&flag, &v)?,
            "--days" => p.duration_secs = parse_num::<u64>(&flag, &v)? * 86_400,
            "--duration-secs" => p.duration_secs = parse_num(&flag, &v)?,
            "--writes-per-sec" => p.writes_per_sec = parse_num(&flag, &v)?,
            "--reads-per-sec" => p.reads_per_sec = parse_num(&flag, &v)?,
            "--skew" => {
                p.skew = if v == "uniform" {
                    Skew::Uniform
                } else if let Some(s) = v.strip_prefix("zipf:") {
                    let s: f64 = parse_num(&flag, s)?;
                    if !(s > 0.0 && s.is_finite()) {
                        return Err("--skew zipf:S needs S > 0".into());
                    }
                    Skew::Zipf(s)
                } else {
                    return Err(format!("--skew: uniform or zipf:S, not {v:?}"));
                }
            }
            "--cache-entries" => p.cache_entries = parse_num(&flag, &v)?,
            "--eviction" => {
                p.eviction = match v.as_str() {
                    "lru" => Eviction::Lru,
                    "fifo" => Eviction::Fifo,
                    _ => return Err(format!("--eviction: lru or fifo, not {v:?}")),
                }
            }
            "--reads" => p.reads = parse_num(&flag, &v)?,
            "--warmup-reads" => p.warmup_reads = Some(parse_num(&flag, &v)?),
            "--sample-cores" => p.sample_cores = parse_num(&flag, &v)?,
            "--seed" => p.seed = parse_num(&flag, &v)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if p.buckets == 0 || p.appliances == 0 || p.cores == 0 || p.sample_cores == 0 {
        return Err("buckets, appliances, cores and sample cores must be at least 1".into());
    }
    if p.window_secs == 0 || p.epoch_secs == 0 || p.duration_secs == 0 {
        return Err("window, epoch and duration must be at least 1 second".into());
    }
    if p.cache_entries == 0 {
        return Err("--cache-entries must be at least 1".into());
    }
    if !(p.writes_per_sec > 0.0 && p.reads_per_sec >= 0.0) {
        return Err("--writes-per-sec must be > 0 and --reads-per-sec >= 0".into());
    }
    p.sample_cores = p.sample_cores.min(p.total_cores());
    Ok(p)
}

/// splitmix64: small, fast, deterministic.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n ≥ 1).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Multiply-rotate hasher for the u64 key identities (they are not attacker-chosen).
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

const NIL: u32 = u32::MAX;

/// A bounded cache of key identities: a hash map into a doubly linked list kept in arrays.
/// The list runs from most to least recently used (LRU) or newest to oldest insert (FIFO).
#[derive(Debug)]
struct Cache {
    index: IdMap<u32>,
    ids: Vec<u64>,
    prev: Vec<u32>,
    next: Vec<u32>,
    head: u32,
    tail: u32,
    capacity: usize,
    eviction: Eviction,
}

impl Cache {
    fn new(capacity: usize, eviction: Eviction) -> Self {
        Self {
            index: IdMap::default(),
            ids: Vec::new(),
            prev: Vec::new(),
            next: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.max(1),
            eviction,
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn unlink(&mut self, i: u32) {
        let (p, n) = (self.prev[i as usize], self.next[i as usize]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
    }

    fn push_front(&mut self, i: u32) {
        self.prev[i as usize] = NIL;
        self.next[i as usize] = self.head;
        if self.head != NIL {
            self.prev[self.head as usize] = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Looks `id` up; on a miss inserts it, evicting if full. True on a hit.
    fn access(&mut self, id: u64) -> bool {
        if let Some(&i) = self.index.get(&id) {
            if self.eviction == Eviction::Lru && self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return true;
        }
        let slot = if self.index.len() < self.capacity {
            self.ids.push(id);
            self.prev.push(NIL);
            self.next.push(NIL);
            (self.ids.len() - 1) as u32
        } else {
            let victim = self.tail;
            self.unlink(victim);
            self.index.remove(&self.ids[victim as usize]);
            self.ids[victim as usize] = id;
            victim
        };
        self.index.insert(id, slot);
        self.push_front(slot);
        false
    }
}

/// One simulated core: its key cache and, for v1, the window of its current sealing key per
/// bucket.
#[derive(Debug)]
struct Core {
    cache: Cache,
    seal_window: IdMap<u64>,
}

/// Custodian operations counted, each once per layer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Ops {
    /// v1: wraps of new bucket keys. v2: always 0.
    wraps: u64,
    /// v1: unwraps of bucket keys read from headers. v2: always 0.
    unwraps: u64,
    /// v2: derivations of epoch keys (for writing or reading). v1: always 0.
    derives: u64,
}

impl Ops {
    fn total(&self) -> u64 {
        self.wraps + self.unwraps + self.derives
    }
}

/// The key identity that sealed an object written at `t` seconds to `bucket` by core
/// `writer` (cluster-wide index).
fn key_id(p: &Params, t: f64, bucket: u64, writer: u64) -> u64 {
    let t = t.max(0.0) as u64;
    match p.scheme {
        Scheme::V1 => (t / p.window_secs * p.buckets + bucket) * p.total_cores() + writer,
        Scheme::V2 => t / p.epoch_secs * p.buckets + bucket,
    }
}

/// Age in seconds of the object a read picks, `now` seconds after the first write.
fn read_age(p: &Params, rng: &mut Rng, now: f64) -> f64 {
    match p.skew {
        Skew::Uniform => rng.unit() * now,
        Skew::Zipf(s) => {
            // Continuous inverse of P(rank r) ∝ r^-s over ranks 1..=n, newest first.
            let n = (now * p.writes_per_sec).max(1.0);
            let u = rng.unit();
            let r = if (s - 1.0).abs() < 1e-9 {
                (n + 1.0).powf(u)
            } else {
                let a = 1.0 - s;
                (1.0 + u * ((n + 1.0).powf(a) - 1.0)).powf(1.0 / a)
            };
            ((r - 1.0) / p.writes_per_sec).min(now)
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    reads: u64,
    writes: u64,
    ops: Ops,
    /// Of those, the ones made for reads.
    read_ops: u64,
    /// Simulated seconds the measurement covered.
    seconds: f64,
    /// Custodian operations per second over the whole cluster.
    cluster_ops_per_sec: f64,
    /// Keys in a sampled core's cache at the end (mean).
    mean_cached: f64,
}

impl Outcome {
    fn per_request(&self) -> f64 {
        self.ops.total() as f64 / (self.reads + self.writes).max(1) as f64
    }
}

/// Simulates the sampled cores from `p.duration_secs` on: warm-up, then `p.reads` measured
/// reads with the writes that arrive meanwhile.
fn simulate(p: &Params) -> Outcome {
    let mut rng = Rng(p.seed);
    let total_cores = p.total_cores();
    let k = p.sample_cores;
    let mut cores: Vec<Core> = (0..k)
        .map(|_| Core {
            cache: Cache::new(p.cache_entries, p.eviction),
            seal_window: IdMap::default(),
        })
        .collect();
    // The sampled cores' share of the cluster's requests.
    let share = k as f64 / total_cores as f64;
    let rate = (p.writes_per_sec + p.reads_per_sec) * share;
    let p_write = p.writes_per_sec / (p.writes_per_sec + p.reads_per_sec);
    // By default each sampled core reads enough to have met every key of a working set
    // that fits its cache (coupon collector: n·(ln n + 5) draws from n equally likely keys).
    let warmup = p.warmup_reads.unwrap_or_else(|| {
        let c = p.cache_entries as f64;
        (c * (c.ln() + 5.0)).ceil() as u64 * k
    });
    let mut now = p.duration_secs as f64;
    let mut measuring = warmup == 0;
    let mut start = now;
    let mut reads = 0u64;
    let mut writes = 0u64;
    let mut ops = Ops::default();
    let mut read_ops = 0u64;
    let mut seen_reads = 0u64;
    while reads < p.reads {
        now += 1.0 / rate;
        let c = rng.below(k) as usize;
        let core = &mut cores[c];
        let bucket = rng.below(p.buckets);
        let mut step = Ops::default();
        if rng.unit() < p_write {
            // The writing core's cluster-wide index: sampled cores are 0..k.
            let id = key_id(p, now, bucket, c as u64);
            match p.scheme {
                Scheme::V1 => {
                    let window = now as u64 / p.window_secs;
                    if core.seal_window.get(&bucket) != Some(&window) {
                        core.seal_window.insert(bucket, window);
                        step.wraps += LAYERS;
                        // The gateway also keeps the new key for reading.
                        core.cache.access(id);
                    }
                }
                Scheme::V2 => {
                    if !core.cache.access(id) {
                        step.derives += LAYERS;
                    }
                }
            }
            if measuring {
                writes += 1;
            }
        } else {
            let t = now - read_age(p, &mut rng, now);
            let writer = rng.below(total_cores);
            let id = key_id(p, t, bucket, writer);
            if !core.cache.access(id) {
                match p.scheme {
                    Scheme::V1 => step.unwraps += LAYERS,
                    Scheme::V2 => step.derives += LAYERS,
                }
            }
            seen_reads += 1;
            if measuring {
                reads += 1;
                read_ops += step.unwraps + step.derives;
            }
        }
        if measuring {
            ops.wraps += step.wraps;
            ops.unwraps += step.unwraps;
            ops.derives += step.derives;
        } else if seen_reads >= warmup {
            measuring = true;
            start = now;
        }
    }
    let seconds = now - start;
    let cluster_ops_per_sec = if seconds > 0.0 {
        ops.total() as f64 / seconds / share
    } else {
        0.0
    };
    let mean_cached = cores.iter().map(|c| c.cache.len() as f64).sum::<f64>() / k as f64;
    Outcome {
        reads,
        writes,
        ops,
        read_ops,
        seconds,
        cluster_ops_per_sec,
        mean_cached,
    }
}

/// Distinct keys per layer after `p.duration_secs`: each key slot (v1: bucket × window ×
/// core; v2: bucket × epoch) holds a key when at least one write landed in it. Writes form
/// a Poisson process split evenly over buckets and cores, so a slot of `s` seconds gets a
/// Poisson(W·s/slots-per-period) number of writes. Returns (expected, sampled); the sample
/// draws each slot (skipped, `None`, beyond 2·10⁸ slots).
fn distinct_keys(p: &Params, rng: &mut Rng) -> (f64, Option<u64>) {
    let (period, per_period) = match p.scheme {
        Scheme::V1 => (p.window_secs, p.buckets * p.total_cores()),
        Scheme::V2 => (p.epoch_secs, p.buckets),
    };
    let full = p.duration_secs / period;
    let rest = p.duration_secs % period;
    let occupied = |secs: u64| 1.0 - (-p.writes_per_sec * secs as f64 / per_period as f64).exp();
    let mut expected = full as f64 * per_period as f64 * occupied(period);
    let mut periods = vec![(full, occupied(period))];
    if rest > 0 {
        expected += per_period as f64 * occupied(rest);
        periods.push((1, occupied(rest)));
    }
    let slots = (full + u64::from(rest > 0)).saturating_mul(per_period);
    if slots > 200_000_000 {
        return (expected, None);
    }
    let mut count = 0u64;
    for (n, q) in periods {
        for _ in 0..n * per_period {
            if rng.unit() < q {
                count += 1;
            }
        }
    }
    (expected, Some(count))
}

/// The model's custodian operations per second, whole cluster, both layers, in steady state
/// under uniform reads: (unwraps or derives for reads, wraps or derives for writes).
fn model_ops_per_sec(p: &Params, distinct: f64) -> (f64, f64) {
    let layers = LAYERS as f64;
    let nc = p.total_cores() as f64;
    let b = p.buckets as f64;
    // Under the independent reference model with equally popular keys, a cache of c entries
    // holding n keys hits c/n of the time.
    let miss = if distinct > p.cache_entries as f64 {
        1.0 - p.cache_entries as f64 / distinct
    } else {
        0.0
    };
    match p.scheme {
        Scheme::V1 => {
            let lambda = p.writes_per_sec * p.window_secs as f64 / (b * nc);
            let wraps = layers * nc * b * (1.0 - (-lambda).exp()) / p.window_secs as f64;
            (layers * p.reads_per_sec * miss, wraps)
        }
        Scheme::V2 => {
            // With every key cached, each core fetches each bucket's new epoch key once per
            // epoch. Otherwise a write's epoch key is about as likely to be missing as a
            // read's.
            let writes = if miss > 0.0 {
                layers * p.writes_per_sec * miss
            } else {
                layers * nc * b / p.epoch_secs as f64
            };
            (layers * p.reads_per_sec * miss, writes)
        }
    }
}

/// A number for the report: 4 decimals, or 3 significant digits when small.
fn num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.abs() < 0.001 {
        format!("{x:.2e}")
    } else {
        format!("{x:.4}")
    }
}

/// A length of time for the report: whole days as days, anything else in seconds.
fn span(secs: u64) -> String {
    if secs >= 86_400 && secs.is_multiple_of(86_400) {
        format!("{} days", secs / 86_400)
    } else {
        format!("{secs} s")
    }
}

fn main() -> ExitCode {
    let p = match parse_args(std::env::args().skip(1)) {
        Ok(p) => p,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("twofold-keysim: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let started = Instant::now();
    let mut rng = Rng(p.seed ^ 0xD1B5_4A32_D192_ED03);
    let (expected_keys, sampled_keys) = distinct_keys(&p, &mut rng);
    let o = simulate(&p);
    let (model_read, model_write) = model_ops_per_sec(&p, expected_keys);
    let model_total = model_read + model_write;
    let requests_per_sec = p.reads_per_sec + p.writes_per_sec;
    let scheme = match p.scheme {
        Scheme::V1 => "v1",
        Scheme::V2 => "v2",
    };
    let skew = match p.skew {
        Skew::Uniform => "uniform".to_string(),
        Skew::Zipf(s) => format!("zipf:{s}"),
    };
    let per_read = o.read_ops as f64 / o.reads.max(1) as f64;
    if p.json {
        let model = (p.skew == Skew::Uniform).then(|| {
            serde_json::json!({
                "ops_per_request": model_total / requests_per_sec,
                "ops_per_sec": model_total,
                "read_ops_per_sec": model_read,
                "write_ops_per_sec": model_write,
            })
        });
        let report = serde_json::json!({
            "tool": "twofold-keysim",
            "params": {
                "scheme": scheme,
                "buckets": p.buckets,
                "appliances": p.appliances,
                "cores": p.cores,
                "window_secs": p.window_secs,
                "epoch_secs": p.epoch_secs,
                "duration_secs": p.duration_secs,
                "writes_per_sec": p.writes_per_sec,
                "reads_per_sec": p.reads_per_sec,
                "skew": skew,
                "cache_entries": p.cache_entries,
                "eviction": format!("{:?}", p.eviction).to_lowercase(),
                "sample_cores": p.sample_cores,
                "seed": p.seed,
            },
            "distinct_keys_expected": expected_keys,
            "distinct_keys_sampled": sampled_keys,
            "reads": o.reads,
            "writes": o.writes,
            "simulated_seconds": o.seconds,
            "mean_cached_keys": o.mean_cached,
            "ops": {"wraps": o.ops.wraps, "unwraps": o.ops.unwraps, "derives": o.ops.derives},
            "ops_per_request": o.per_request(),
            "ops_per_read": per_read,
            "cluster_ops_per_sec": o.cluster_ops_per_sec,
            "model": model,
            "run_seconds": started.elapsed().as_secs_f64(),
        });
        println!("{report}");
        return ExitCode::SUCCESS;
    }
    println!(
        "scheme {scheme}: {} buckets, {} appliances x {} cores, window {} s, epoch {}, {} of writes",
        p.buckets,
        p.appliances,
        p.cores,
        p.window_secs,
        span(p.epoch_secs),
        span(p.duration_secs)
    );
    println!(
        "workload: {} writes/s, {} reads/s, read skew {skew}, cache {} entries per core per layer ({:?})",
        p.writes_per_sec, p.reads_per_sec, p.cache_entries, p.eviction
    );
    match sampled_keys {
        Some(n) => println!("distinct keys per layer: {n} (sampled), {expected_keys:.0} expected"),
        None => println!(
            "distinct keys per layer: {expected_keys:.0} expected (too many slots to sample)"
        ),
    }
    println!(
        "measured on {} of {} cores: {} reads, {} writes, {:.0} simulated seconds; {:.0} keys cached per core",
        p.sample_cores,
        p.total_cores(),
        o.reads,
        o.writes,
        o.seconds,
        o.mean_cached
    );
    println!(
        "custodian ops (both layers): {} wraps, {} unwraps, {} derives",
        o.ops.wraps, o.ops.unwraps, o.ops.derives
    );
    println!(
        "custodian ops per request: {}; per read {}; cluster ops/s {}",
        num(o.per_request()),
        num(per_read),
        num(o.cluster_ops_per_sec)
    );
    if p.skew == Skew::Uniform {
        println!(
            "model (uniform reads): {} ops per request, {} ops/s ({} for reads, {} for writes)",
            num(model_total / requests_per_sec),
            num(model_total),
            num(model_read),
            num(model_write)
        );
    }
    println!("run time {:.1} s", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(args: &[&str]) -> Params {
        parse_args(args.iter().map(|s| s.to_string())).unwrap()
    }

    #[test]
    fn lru_evicts_least_recently_used() {
        let mut c = Cache::new(2, Eviction::Lru);
        assert!(!c.access(1));
        assert!(!c.access(2));
        assert!(c.access(1)); // 1 is now the most recent
        assert!(!c.access(3)); // evicts 2
        assert!(c.access(1));
        assert!(!c.access(2)); // evicts 3
        assert!(c.access(1));
        assert!(!c.access(3));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn fifo_ignores_hits() {
        let mut c = Cache::new(2, Eviction::Fifo);
        assert!(!c.access(1));
        assert!(!c.access(2));
        assert!(c.access(1));
        assert!(!c.access(3)); // evicts 1, the oldest insert, despite the hit
        assert!(!c.access(1));
        assert!(c.access(3));
    }

    #[test]
    fn cache_of_one_and_cycles() {
        let mut c = Cache::new(1, Eviction::Lru);
        assert!(!c.access(7));
        assert!(c.access(7));
        assert!(!c.access(8));
        assert!(!c.access(7));
        // A cycle over n > capacity keys misses every time under LRU.
        let mut c = Cache::new(3, Eviction::Lru);
        for round in 0..5 {
            for id in 0..4 {
                assert!(!c.access(id), "round {round} id {id}");
            }
        }
    }

    #[test]
    fn key_identities() {
        // 2 buckets, 1 appliance of 3 cores, window 10 s, epoch 1 day.
        let mut p = params(&[
            "--buckets",
            "2",
            "--appliances",
            "1",
            "--cores",
            "3",
            "--window-secs",
            "10",
            "--epoch-days",
            "1",
        ]);
        // v1: (window · buckets + bucket) · cores + core.
        assert_eq!(key_id(&p, 0.0, 0, 0), 0);
        assert_eq!(key_id(&p, 9.9, 0, 2), 2);
        assert_eq!(key_id(&p, 10.0, 0, 0), 6);
        assert_eq!(key_id(&p, 25.0, 1, 1), (2 * 2 + 1) * 3 + 1);
        p.scheme = Scheme::V2;
        // v2: epoch · buckets + bucket, whatever the core and window.
        assert_eq!(key_id(&p, 25.0, 1, 1), 1);
        assert_eq!(key_id(&p, 25.0, 1, 2), 1);
        assert_eq!(key_id(&p, 86_400.0, 0, 0), 2);
        assert_eq!(key_id(&p, 2.0 * 86_400.0 + 5.0, 1, 0), 5);
    }

    #[test]
    fn distinct_keys_by_hand() {
        // 1 bucket, 2 cores, window 1 h, 1 day, 7200 writes/s: every (window, core) slot
        // gets ~3.6 million writes, so all 24 · 2 = 48 v1 keys exist; v2 with a 1-day epoch
        // has exactly 1.
        let mut p = params(&[
            "--appliances",
            "1",
            "--cores",
            "2",
            "--days",
            "1",
            "--epoch-days",
            "1",
            "--writes-per-sec",
            "7200",
        ]);
        let mut rng = Rng(3);
        let (e, s) = distinct_keys(&p, &mut rng);
        assert!((e - 48.0).abs() < 1e-9);
        assert_eq!(s, Some(48));
        p.scheme = Scheme::V2;
        let (e, s) = distinct_keys(&p, &mut rng);
        assert!((e - 1.0).abs() < 1e-9);
        assert_eq!(s, Some(1));
        // v2 over 45 days with a 30-day epoch: one full epoch and one partial: 2 keys.
        let p = params(&["--scheme", "v2", "--days", "45", "--epoch-days", "30"]);
        let (e, s) = distinct_keys(&p, &mut rng);
        assert!((e - 2.0).abs() < 1e-9);
        assert_eq!(s, Some(2));
        // Sparse writes: 1 write per hour over 2 cores gives each slot e^-0.5 of being empty.
        let p = params(&[
            "--appliances",
            "1",
            "--cores",
            "2",
            "--days",
            "1",
            "--writes-per-sec",
            "0.0002777777777777778",
        ]);
        let (e, _) = distinct_keys(&p, &mut rng);
        assert!((e - 48.0 * (1.0 - (-0.5f64).exp())).abs() < 1e-6);
    }

    #[test]
    fn v1_reads_miss_when_keys_outnumber_the_cache() {
        // One core, one bucket, 10 days of 1-hour windows: 240 keys, all of them written.
        // A 24-entry cache under uniform reads hits 24/240 = 10% of reads, so ~1.8 unwraps
        // per read over both layers.
        let p = params(&[
            "--appliances",
            "1",
            "--cores",
            "1",
            "--days",
            "10",
            "--cache-entries",
            "24",
            "--writes-per-sec",
            "1",
            "--reads-per-sec",
            "100",
            "--reads",
            "200000",
            "--sample-cores",
            "1",
        ]);
        let o = simulate(&p);
        let per_read = o.read_ops as f64 / o.reads as f64;
        assert_eq!(o.read_ops, o.ops.unwraps);
        assert!((per_read - 1.8).abs() < 0.02, "{per_read}");
        // Writes: one wrap per layer per window: 2 per 3600 writes here.
        let per_write = o.ops.wraps as f64 / o.writes as f64;
        assert!(per_write < 0.01, "{per_write}");
        let (model_read, _) = model_ops_per_sec(&p, 240.0);
        assert!((model_read / p.reads_per_sec - 1.8).abs() < 1e-9);
    }

    #[test]
    fn v2_reads_hit_once_epoch_keys_fit() {
        // 3 buckets, 59 days, 30-day epochs: 6 epoch keys per layer; a cache of 8 holds them
        // all, so after warm-up no read calls the custodian.
        let p = params(&[
            "--scheme",
            "v2",
            "--buckets",
            "3",
            "--appliances",
            "2",
            "--cores",
            "2",
            "--days",
            "59",
            "--cache-entries",
            "8",
            "--reads",
            "100000",
            "--sample-cores",
            "4",
            "--warmup-reads",
            "10000",
        ]);
        let o = simulate(&p);
        assert_eq!(o.ops.total(), 0);
        assert_eq!(o.mean_cached, 6.0);
        // With a cache of 3, uniform reads over 6 keys miss half the time: 1 derive per
        // read over both layers.
        let p = params(&[
            "--scheme",
            "v2",
            "--buckets",
            "3",
            "--appliances",
            "2",
            "--cores",
            "2",
            "--days",
            "59",
            "--cache-entries",
            "3",
            "--reads",
            "200000",
            "--sample-cores",
            "4",
            "--writes-per-sec",
            "1",
        ]);
        let o = simulate(&p);
        let per_read = o.read_ops as f64 / o.reads as f64;
        assert!((per_read - 1.0).abs() < 0.03, "{per_read}");
    }

    #[test]
    fn zipf_ages_favour_recent_objects() {
        let p = params(&["--skew", "zipf:1.2"]);
        let mut rng = Rng(9);
        let now = p.duration_secs as f64;
        let n = 10_000;
        let recent = (0..n)
            .filter(|_| read_age(&p, &mut rng, now) < 86_400.0)
            .count();
        assert!(recent > n / 2, "{recent}");
        let p = params(&[]);
        let recent = (0..n)
            .filter(|_| read_age(&p, &mut rng, now) < 86_400.0)
            .count();
        // Uniform: 1/365 of reads are of the last day.
        assert!(recent < n / 100, "{recent}");
    }

    #[test]
    fn second_flags_and_json() {
        let p = params(&["--epoch-secs", "3600", "--duration-secs", "20", "--json"]);
        assert_eq!(p.epoch_secs, 3600);
        assert_eq!(p.duration_secs, 20);
        assert!(p.json);
        assert_eq!(span(20), "20 s");
        assert_eq!(span(2 * 86_400), "2 days");
        assert!(parse_args(["--duration-secs", "0"].iter().map(|s| s.to_string())).is_err());
    }

    #[test]
    fn rng_below_is_in_range() {
        let mut rng = Rng(1);
        for n in [1u64, 2, 3, 640, u64::MAX] {
            for _ in 0..1000 {
                assert!(rng.below(n) < n);
            }
        }
        assert_eq!(Rng(5).next_u64(), Rng(5).next_u64());
    }
}
