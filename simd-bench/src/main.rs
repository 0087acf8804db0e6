//! `simd-bench`: single-core AES-256-GCM throughput of each Twofold layer (inner:
//! RustCrypto `aes-gcm`, outer: AWS-LC), seal and open, at 4 KiB, 64 KiB and 1 MiB, with
//! the CPU features that decide which code paths they take, and single-core MD5 (RustCrypto
//! `md-5` and the gateway's `twofold-md5`). With `--all-cores`, also the same workloads on
//! every core at once and their scaling. Prints a table, and writes the same as JSON with
//! `--json`.
#![forbid(unsafe_code)]

mod all_cores;
mod cpu;
mod layers;
mod md5_rows;
mod measure;
mod paths;

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::all_cores::{AllCoreRow, AllCores, THREADS_MAX};
use crate::cpu::CpuFeatures;
use crate::measure::Row;
use crate::paths::Paths;

/// Timed seconds per measurement by default.
const SECONDS_DEFAULT: f64 = 0.5;
/// Timed seconds per measurement with `--quick`.
const SECONDS_QUICK: f64 = 0.1;
/// Longest `--seconds` accepted, so a typo cannot tie up a machine for hours.
const SECONDS_MAX: f64 = 600.0;

const USAGE: &str = "\
usage: simd-bench [--quick | --seconds N] [--all-cores] [--threads N] [--json FILE|-]

Single-core AES-256-GCM throughput (GB/s = 10^9 bytes/s) of each Twofold layer,
seal and open, at 4 KiB, 64 KiB and 1 MiB buffers, and single-core MD5 (md-5 and
twofold-md5) fed 64 KiB and 1 MiB chunks; with the code path each one takes here.

  --seconds N   timed seconds per measurement (default 0.5); a fifth more warms up
  --quick       same as --seconds 0.1
  --all-cores   also run the envelope's seal and open, each layer's seal and
                twofold-md5 at 64 KiB on one thread, then on all threads at once
                (one per available core), and report the aggregate and its scaling
                (aggregate / (one core x threads))
  --threads N   threads for --all-cores, 1 to 1024 (default: one per available
                core); implies --all-cores
  --json FILE   also write the results as JSON to FILE; '-' writes JSON to stdout
                and moves the table to stderr
  -h, --help    print this help";

/// What went wrong, and so how the process exits.
#[derive(Debug)]
pub enum BenchError {
    /// The command line was wrong (the user's to fix); exit status 2.
    Usage(String),
    /// An AEAD call failed where it cannot fail: a bug here or in a library.
    Crypto(&'static str),
    /// Writing the report failed.
    Output(String),
    /// The all-core thread pool could not be started.
    Threads(String),
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Usage(msg) => write!(f, "{msg}"),
            BenchError::Crypto(what) => write!(f, "AEAD call failed: {what}"),
            BenchError::Output(msg) => write!(f, "writing the report: {msg}"),
            BenchError::Threads(msg) => write!(f, "starting the all-core threads: {msg}"),
        }
    }
}

/// Where the JSON report goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JsonTarget {
    Stdout,
    File(String),
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq)]
struct Args {
    seconds: f64,
    json: Option<JsonTarget>,
    help: bool,
    /// All-core mode and its thread count; `None` without `--all-cores` or `--threads`.
    all_cores: Option<ThreadCount>,
}

/// How many threads all-core mode runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ThreadCount {
    /// One per available core (`--all-cores` alone).
    PerCore,
    /// `--threads N`.
    Exactly(usize),
}

impl ThreadCount {
    /// The number of threads to start.
    fn resolve(self) -> usize {
        match self {
            ThreadCount::PerCore => all_cores::default_threads(),
            ThreadCount::Exactly(n) => n,
        }
    }
}

/// Parses the arguments after the program name. `--seconds` wins over `--quick` whatever
/// their order.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, BenchError> {
    let mut seconds: Option<f64> = None;
    let mut quick = false;
    let mut json = None;
    let mut help = false;
    let mut all_cores = false;
    let mut threads: Option<usize> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, BenchError> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => Err(BenchError::Usage(format!("{name} needs a value"))),
            }
        };
        if inline.is_some() && matches!(flag.as_str(), "--help" | "--quick" | "--all-cores") {
            return Err(BenchError::Usage(format!("{flag} takes no value")));
        }
        match flag.as_str() {
            "-h" | "--help" => help = true,
            "--quick" => quick = true,
            "--all-cores" => all_cores = true,
            "--threads" => {
                let text = value("--threads")?;
                let n: usize = text.parse().map_err(|_| {
                    BenchError::Usage(format!("--threads: not a whole number: {text:?}"))
                })?;
                if !(1..=THREADS_MAX).contains(&n) {
                    return Err(BenchError::Usage(format!(
                        "--threads must be 1 to {THREADS_MAX}, got {text}"
                    )));
                }
                threads = Some(n);
            }
            "--seconds" => {
                let text = value("--seconds")?;
                let s: f64 = text
                    .parse()
                    .map_err(|_| BenchError::Usage(format!("--seconds: not a number: {text:?}")))?;
                if !(s.is_finite() && s > 0.0 && s <= SECONDS_MAX) {
                    return Err(BenchError::Usage(format!(
                        "--seconds must be above 0 and at most {SECONDS_MAX}, got {text}"
                    )));
                }
                seconds = Some(s);
            }
            "--json" => {
                let target = value("--json")?;
                json = Some(if target == "-" {
                    JsonTarget::Stdout
                } else if target.is_empty() {
                    return Err(BenchError::Usage(
                        "--json needs a file name or '-'".to_owned(),
                    ));
                } else {
                    JsonTarget::File(target)
                });
            }
            other => return Err(BenchError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    let seconds = seconds.unwrap_or(if quick {
        SECONDS_QUICK
    } else {
        SECONDS_DEFAULT
    });
    let all_cores = match threads {
        Some(n) => Some(ThreadCount::Exactly(n)),
        None => all_cores.then_some(ThreadCount::PerCore),
    };
    Ok(Args {
        seconds,
        json,
        help,
        all_cores,
    })
}

/// Everything one run measured: what goes into the JSON.
#[derive(Debug, Serialize)]
struct Report {
    tool: &'static str,
    version: &'static str,
    unit: &'static str,
    seconds_per_measurement: f64,
    threads: u32,
    cpu: CpuFeatures,
    /// The code path each layer (and MD5) takes on this CPU with this build.
    paths: Paths,
    rows: Vec<Row>,
    /// The all-core section; `null` without `--all-cores`.
    all_cores: Option<AllCores>,
}

/// Formats a byte count as "4 KiB", "64 KiB", "1 MiB" or plain bytes.
fn size_label(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// The human-readable table: one line per (group, implementation, operation), one column
/// per buffer size, in the order the rows were measured.
fn render_table(report: &Report) -> String {
    let mut sizes: Vec<usize> = Vec::new();
    let mut lines: Vec<(&str, &str, &str)> = Vec::new();
    for row in &report.rows {
        if !sizes.contains(&row.size_bytes) {
            sizes.push(row.size_bytes);
        }
        let key = (row.group, row.implementation, row.operation);
        if !lines.contains(&key) {
            lines.push(key);
        }
    }
    let list = |v: &[&str]| {
        if v.is_empty() {
            "(none)".to_owned()
        } else {
            v.join(" ")
        }
    };

    let mut out = String::new();
    out.push_str(&format!(
        "simd-bench: single-core AES-256-GCM, GB/s (10^9 bytes/s), {} s per measurement\n",
        report.seconds_per_measurement
    ));
    out.push_str(&format!(
        "CPU ({}) detected: {}\n",
        report.cpu.arch,
        list(&report.cpu.detected)
    ));
    out.push_str(&format!(
        "compiled to assume: {}\n",
        list(&report.cpu.compiled_in)
    ));
    out.push_str(&render_paths(&report.paths));
    out.push('\n');

    let group_w = lines
        .iter()
        .map(|l| l.0.len())
        .chain(["group".len()])
        .max()
        .unwrap_or(0);
    let impl_w = lines
        .iter()
        .map(|l| l.1.len())
        .chain(["implementation".len()])
        .max()
        .unwrap_or(0);
    let op_w = "operation".len();
    let col_w = 9;
    out.push_str(&format!(
        "{:group_w$}  {:impl_w$}  {:op_w$}",
        "group", "implementation", "operation"
    ));
    for size in &sizes {
        out.push_str(&format!("  {:>col_w$}", size_label(*size)));
    }
    out.push('\n');
    for (group, implementation, operation) in &lines {
        out.push_str(&format!(
            "{group:group_w$}  {implementation:impl_w$}  {operation:op_w$}"
        ));
        for size in &sizes {
            let cell = report
                .rows
                .iter()
                .find(|r| {
                    r.group == *group
                        && r.implementation == *implementation
                        && r.operation == *operation
                        && r.size_bytes == *size
                })
                .map_or_else(|| "-".to_owned(), |r| format!("{:.2}", r.gb_per_s));
            out.push_str(&format!("  {cell:>col_w$}"));
        }
        out.push('\n');
    }
    if let Some(all) = &report.all_cores {
        out.push_str(&render_all_cores(all));
    }
    out
}

/// The code-path lines of the table's preamble.
fn render_paths(paths: &Paths) -> String {
    let outer_sees = if paths.outer.sees.is_empty() {
        "(none)".to_owned()
    } else {
        paths.outer.sees.join(" ")
    };
    let mut out = format!(
        "inner path: AES {}; GHASH {}\n\
         outer path (AWS-LC, by CPUID at run time): {}; sees {}\n",
        paths.inner.aes, paths.inner.ghash, paths.outer.aes_gcm, outer_sees
    );
    if let Some(cap) = &paths.outer.ia32cap_override {
        out.push_str(&format!(
            "  (OPENSSL_ia32cap={cap:?} overrides AWS-LC's CPUID reading; its path may differ)\n"
        ));
    }
    out.push_str(&format!(
        "md5 path: md-5 {}; twofold-md5 {}\n",
        paths.md5.rustcrypto, paths.md5.twofold
    ));
    out
}

/// The all-core section of the table: one line per workload, with the one-core figure,
/// the aggregate, the scaling and the slowest thread's own figure.
fn render_all_cores(all: &AllCores) -> String {
    let width = |f: fn(&AllCoreRow) -> &str, title: &str| {
        all.rows
            .iter()
            .map(|r| f(r).len())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let group_w = width(|r| r.group, "group");
    let impl_w = width(|r| r.implementation, "implementation");
    let op_w = "operation".len();
    let col_w = 9;
    let mut out = format!(
        "\nall cores: {} threads at once ({} available), one task each, GB/s; \
         scaling = all cores / (one core x {}); \
         slowest = the slowest thread's own\n",
        all.threads, all.available_cores, all.threads
    );
    out.push_str(&format!(
        "{:group_w$}  {:impl_w$}  {:op_w$}  {:>col_w$}  {:>col_w$}  {:>col_w$}  {:>col_w$}  {:>col_w$}\n",
        "group", "implementation", "operation", "size", "one core", "all cores", "scaling", "slowest"
    ));
    for r in &all.rows {
        let scaling = r
            .scaling
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.2}"));
        out.push_str(&format!(
            "{:group_w$}  {:impl_w$}  {:op_w$}  {:>col_w$}  {:>col_w$.2}  {:>col_w$.2}  {scaling:>col_w$}  {:>col_w$.2}\n",
            r.group,
            r.implementation,
            r.operation,
            size_label(r.size_bytes),
            r.one_core_gb_per_s,
            r.aggregate_gb_per_s,
            r.slowest_thread_gb_per_s,
        ));
    }
    out
}

/// An open destination for the JSON report. A file is created before anything is
/// measured, so a bad path fails at once rather than after the whole run.
#[derive(Debug)]
enum JsonSink {
    Stdout,
    File(String, std::fs::File),
}

impl JsonSink {
    fn open(target: &JsonTarget) -> Result<Self, BenchError> {
        match target {
            JsonTarget::Stdout => Ok(JsonSink::Stdout),
            JsonTarget::File(path) => std::fs::File::create(path)
                .map(|file| JsonSink::File(path.clone(), file))
                .map_err(|e| BenchError::Output(format!("{path}: {e}"))),
        }
    }

    fn write(self, report: &Report) -> Result<(), BenchError> {
        let mut text =
            serde_json::to_string_pretty(report).map_err(|e| BenchError::Output(e.to_string()))?;
        text.push('\n');
        match self {
            JsonSink::Stdout => std::io::stdout()
                .lock()
                .write_all(text.as_bytes())
                .map_err(|e| BenchError::Output(format!("stdout: {e}"))),
            JsonSink::File(path, mut file) => file
                .write_all(text.as_bytes())
                .and_then(|()| file.flush())
                .map_err(|e| BenchError::Output(format!("{path}: {e}"))),
        }
    }
}

fn run(args: &Args) -> Result<(), BenchError> {
    let sink = args.json.as_ref().map(JsonSink::open).transpose()?;
    let mut rows = layers::all_rows(args.seconds)?;
    rows.extend(md5_rows::all_rows(args.seconds)?);
    let all_cores = args
        .all_cores
        .map(|threads| all_cores::run(threads.resolve(), args.seconds))
        .transpose()?;
    let report = Report {
        tool: "simd-bench",
        version: env!("CARGO_PKG_VERSION"),
        unit: "GB/s = 10^9 payload bytes per second",
        seconds_per_measurement: args.seconds,
        threads: 1,
        cpu: cpu::detect(),
        paths: paths::detect(),
        rows,
        all_cores,
    };
    let table = render_table(&report);
    if matches!(sink, Some(JsonSink::Stdout)) {
        eprint!("{table}");
    } else {
        print!("{table}");
    }
    match sink {
        Some(sink) => sink.write(&report),
        None => Ok(()),
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("simd-bench: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simd-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of this machine with the given rows and all-core section.
    fn test_report(rows: Vec<Row>, all_cores: Option<AllCores>) -> Report {
        Report {
            tool: "simd-bench",
            version: "0",
            unit: "GB/s",
            seconds_per_measurement: 0.1,
            threads: 1,
            cpu: cpu::detect(),
            paths: paths::detect(),
            rows,
            all_cores,
        }
    }

    fn parse(args: &[&str]) -> Result<Args, BenchError> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.seconds, SECONDS_DEFAULT);
        assert_eq!(a.json, None);
        assert!(!a.help);
        assert_eq!(a.all_cores, None);
    }

    #[test]
    fn all_cores_and_threads() {
        assert_eq!(
            parse(&["--all-cores"]).unwrap().all_cores,
            Some(ThreadCount::PerCore)
        );
        assert_eq!(
            parse(&["--all-cores", "--threads", "3"]).unwrap().all_cores,
            Some(ThreadCount::Exactly(3))
        );
        assert_eq!(
            parse(&["--threads=16", "--all-cores"]).unwrap().all_cores,
            Some(ThreadCount::Exactly(16))
        );
        // --threads alone implies --all-cores.
        assert_eq!(
            parse(&["--threads", "1"]).unwrap().all_cores,
            Some(ThreadCount::Exactly(1))
        );
        let max = THREADS_MAX.to_string();
        assert_eq!(
            parse(&["--threads", &max]).unwrap().all_cores,
            Some(ThreadCount::Exactly(THREADS_MAX))
        );
        // The other options still parse alongside.
        let a = parse(&["--quick", "--all-cores", "--json", "-"]).unwrap();
        assert_eq!(a.seconds, SECONDS_QUICK);
        assert_eq!(a.json, Some(JsonTarget::Stdout));
        assert!(
            USAGE.contains(&format!("1 to {THREADS_MAX}")),
            "usage names the bound"
        );
        let n = ThreadCount::PerCore.resolve();
        assert!((1..=THREADS_MAX).contains(&n));
        assert_eq!(ThreadCount::Exactly(5).resolve(), 5);
    }

    #[test]
    fn quick_and_seconds() {
        assert_eq!(parse(&["--quick"]).unwrap().seconds, SECONDS_QUICK);
        assert_eq!(parse(&["--seconds", "0.25"]).unwrap().seconds, 0.25);
        assert_eq!(parse(&["--seconds=2"]).unwrap().seconds, 2.0);
        assert_eq!(parse(&["--seconds", "2", "--quick"]).unwrap().seconds, 2.0);
        assert_eq!(parse(&["--quick", "--seconds", "2"]).unwrap().seconds, 2.0);
    }

    #[test]
    fn json_targets() {
        assert_eq!(
            parse(&["--json", "-"]).unwrap().json,
            Some(JsonTarget::Stdout)
        );
        assert_eq!(
            parse(&["--json", "out.json"]).unwrap().json,
            Some(JsonTarget::File("out.json".into()))
        );
        assert_eq!(
            parse(&["--json=out.json"]).unwrap().json,
            Some(JsonTarget::File("out.json".into()))
        );
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for bad in [
            &["--seconds"][..],
            &["--seconds", "abc"],
            &["--seconds", "0"],
            &["--seconds", "-1"],
            &["--seconds", "NaN"],
            &["--seconds", "inf"],
            &["--json"],
            &["--json", ""],
            &["--frobnicate"],
            &["--threads"],
            &["--threads", "0"],
            &["--threads", "-2"],
            &["--threads", "2.5"],
            &["--threads", "many"],
            &["--threads", ""],
            &["--threads=99999999999999999999999"],
            &["--all-cores=yes"],
            &["--quick=1"],
        ] {
            assert!(
                matches!(parse(bad), Err(BenchError::Usage(_))),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn size_labels() {
        assert_eq!(size_label(4096), "4 KiB");
        assert_eq!(size_label(65536), "64 KiB");
        assert_eq!(size_label(1 << 20), "1 MiB");
        assert_eq!(size_label(100), "100 B");
    }

    #[test]
    fn table_has_a_column_per_size_and_a_line_per_operation() {
        let row = |implementation, operation, size_bytes, gb_per_s| Row {
            group: layers::GROUP_SINGLE_LAYER,
            implementation,
            operation,
            size_bytes,
            gb_per_s,
            iterations: 1,
            seconds: 1.0,
        };
        let report = test_report(
            vec![
                row("a", "seal", 4096, 1.0),
                row("a", "seal", 65536, 2.0),
                row("a", "open", 4096, 3.0),
            ],
            None,
        );
        let table = render_table(&report);
        let header = table.lines().find(|l| l.starts_with("group")).unwrap();
        assert!(
            header.contains("4 KiB") && header.contains("64 KiB"),
            "{table}"
        );
        let open = table.lines().find(|l| l.contains(" open ")).unwrap();
        assert!(
            open.contains("3.00") && open.trim_end().ends_with('-'),
            "{table}"
        );
    }

    /// Every measured operation must really succeed, so a short run of all rows must work.
    #[test]
    fn all_rows_run_briefly() {
        let rows = layers::all_rows(0.001).unwrap();
        // Per size: seal and open of each layer alone, the inner layer's seal on
        // RustCrypto's aes-gcm, and seal and open of the whole envelope.
        assert_eq!(rows.len(), layers::SIZES_BYTES.len() * 7);
        let dual = rows
            .iter()
            .filter(|r| r.group == layers::GROUP_DUAL_LAYER)
            .count();
        assert_eq!(dual, layers::SIZES_BYTES.len() * 2);
        assert!(rows.iter().all(|r| r.gb_per_s > 0.0 && r.iterations > 0));
    }

    #[test]
    fn all_cores_section_and_json() {
        let all = AllCores {
            threads: 4,
            available_cores: 4,
            rows: vec![AllCoreRow {
                group: layers::GROUP_DUAL_LAYER,
                implementation: "envelope (inner + outer)",
                operation: "seal",
                size_bytes: 65536,
                one_core_gb_per_s: 1.5,
                aggregate_gb_per_s: 5.4,
                scaling: all_cores::scaling(5.4, 1.5, 4),
                slowest_thread_gb_per_s: 1.3,
                fastest_thread_gb_per_s: 1.4,
            }],
        };
        let table = render_all_cores(&all);
        assert!(table.contains("4 threads"), "{table}");
        let line = table.lines().find(|l| l.starts_with("dual layer")).unwrap();
        assert!(
            line.contains("64 KiB")
                && line.contains("1.50")
                && line.contains("5.40")
                && line.contains("0.90"),
            "{table}"
        );

        let report = test_report(Vec::new(), Some(all));
        let json = serde_json::to_value(&report).unwrap();
        let row = &json["all_cores"]["rows"][0];
        assert_eq!(json["all_cores"]["threads"], 4);
        for key in [
            "group",
            "implementation",
            "operation",
            "size_bytes",
            "one_core_gb_per_s",
            "aggregate_gb_per_s",
            "scaling",
        ] {
            assert!(!row[key].is_null(), "{key} missing: {row}");
        }
        assert!((row["scaling"].as_f64().unwrap() - 0.9).abs() < 1e-9);
        assert!(json["paths"]["inner"]["aes_hardware"].is_boolean());
        assert!(json["paths"]["outer"]["aes_gcm"].is_string());
        assert!(
            render_table(&report).contains("all cores: 4 threads"),
            "the table carries the section"
        );
    }

    #[test]
    fn default_mode_has_no_all_core_section() {
        let report = test_report(Vec::new(), None);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["all_cores"].is_null());
        assert!(!render_table(&report).contains("all cores"));
    }
}
