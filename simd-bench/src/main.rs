//! `simd-bench`: single-core AES-256-GCM throughput of each Twofold layer (inner:
//! RustCrypto `aes-gcm`, outer: AWS-LC), seal and open, at 4 KiB, 64 KiB and 1 MiB, with
//! the CPU features that decide which code paths they take. Prints a table, and writes the
//! same as JSON with `--json`.
#![forbid(unsafe_code)]

mod cpu;
mod layers;
mod measure;

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::cpu::CpuFeatures;
use crate::measure::Row;

/// Timed seconds per measurement by default.
const SECONDS_DEFAULT: f64 = 0.5;
/// Timed seconds per measurement with `--quick`.
const SECONDS_QUICK: f64 = 0.1;
/// Longest `--seconds` accepted, so a typo cannot tie up a machine for hours.
const SECONDS_MAX: f64 = 600.0;

const USAGE: &str = "\
usage: simd-bench [--quick | --seconds N] [--json FILE|-]

Single-core AES-256-GCM throughput (GB/s = 10^9 bytes/s) of each Twofold layer,
seal and open, at 4 KiB, 64 KiB and 1 MiB buffers.

  --seconds N   timed seconds per measurement (default 0.5); a fifth more warms up
  --quick       same as --seconds 0.1
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
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Usage(msg) => write!(f, "{msg}"),
            BenchError::Crypto(what) => write!(f, "AEAD call failed: {what}"),
            BenchError::Output(msg) => write!(f, "writing the report: {msg}"),
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
}

/// Parses the arguments after the program name. `--seconds` wins over `--quick` whatever
/// their order.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, BenchError> {
    let mut seconds: Option<f64> = None;
    let mut quick = false;
    let mut json = None;
    let mut help = false;
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
        match flag.as_str() {
            "-h" | "--help" => help = true,
            "--quick" => quick = true,
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
    Ok(Args {
        seconds,
        json,
        help,
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
    rows: Vec<Row>,
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
        "compiled to assume: {}\n\n",
        list(&report.cpu.compiled_in)
    ));

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
    let report = Report {
        tool: "simd-bench",
        version: env!("CARGO_PKG_VERSION"),
        unit: "GB/s = 10^9 payload bytes per second",
        seconds_per_measurement: args.seconds,
        threads: 1,
        cpu: cpu::detect(),
        rows: layers::all_rows(args.seconds)?,
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

    fn parse(args: &[&str]) -> Result<Args, BenchError> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.seconds, SECONDS_DEFAULT);
        assert_eq!(a.json, None);
        assert!(!a.help);
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
        let report = Report {
            tool: "simd-bench",
            version: "0",
            unit: "GB/s",
            seconds_per_measurement: 0.1,
            threads: 1,
            cpu: cpu::detect(),
            rows: vec![
                row("a", "seal", 4096, 1.0),
                row("a", "seal", 65536, 2.0),
                row("a", "open", 4096, 3.0),
            ],
        };
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
        // Per size: seal and open of each layer alone, and of the whole envelope.
        assert_eq!(rows.len(), layers::SIZES_BYTES.len() * 6);
        let dual = rows
            .iter()
            .filter(|r| r.group == layers::GROUP_DUAL_LAYER)
            .count();
        assert_eq!(dual, layers::SIZES_BYTES.len() * 2);
        assert!(rows.iter().all(|r| r.gb_per_s > 0.0 && r.iterations > 0));
    }
}
