//! The driver's human-readable table, made from the same JSON it writes with `--json`.

use serde_json::Value;
use std::fmt::Write;

/// Workloads in table order: (key, label, field, unit).
const ROWS: &[(&str, &str, &str, &str)] = &[
    ("put_large", "PUT 64 MiB", "gb_per_s", "GB/s"),
    (
        "put_large_md5",
        "PUT 64 MiB, Content-MD5",
        "gb_per_s",
        "GB/s",
    ),
    ("get_large", "GET 64 MiB", "gb_per_s", "GB/s"),
    (
        "range_1mib",
        "GET 1 MiB range of 64 MiB",
        "ops_per_s",
        "req/s",
    ),
    ("put_small", "PUT 4 KiB", "ops_per_s", "obj/s"),
    ("get_small", "GET 4 KiB", "ops_per_s", "obj/s"),
    (
        "put_large_trailer",
        "PUT 64 MiB, CRC32 trailer",
        "gb_per_s",
        "GB/s",
    ),
];

/// Targets: (ratio key, label, limit, whether the value must stay below the limit).
const TARGETS: &[(&str, &str, f64, bool)] = &[
    ("put_large_vs_nginx", "large PUT, Twofold/nginx", 0.8, false),
    ("get_large_vs_nginx", "large GET, Twofold/nginx", 0.8, false),
    ("put_small_vs_nginx", "small PUT, Twofold/nginx", 0.8, false),
    ("get_small_vs_nginx", "small GET, Twofold/nginx", 0.8, false),
    (
        "ttfb_p99_added_ms",
        "TTFB p99 added over direct (ms)",
        1.0,
        true,
    ),
    (
        "hsm_ops_per_request",
        "HSM operations per request",
        0.01,
        true,
    ),
    (
        "rss_growth_mib",
        "RSS growth over a streamed PUT+GET (MiB)",
        64.0,
        true,
    ),
    ("cpu_per_gb_vs_budget", "CPU s/GB over budget", 1.0, true),
    (
        "put_cpu_vs_budget",
        "large PUT CPU over (nginx + dual seal)",
        1.1,
        true,
    ),
    (
        "put_md5_cpu_vs_budget",
        "Content-MD5 PUT CPU over (nginx+seal+MD5)",
        1.1,
        true,
    ),
    (
        "put_signed_cpu_vs_budget",
        "signed PUT CPU over (nginx+seal+SHA-256)",
        1.1,
        true,
    ),
];

/// Ratios shown without a target: (key, label).
const OTHER_RATIOS: &[(&str, &str)] = &[
    ("put_md5_vs_nginx", "Content-MD5 PUT, Twofold/nginx"),
    ("range_vs_nginx", "1 MiB ranges, Twofold/nginx"),
    ("ceph_put_vs_nginx", "Ceph: large PUT, Twofold/nginx"),
    ("ceph_get_vs_nginx", "Ceph: large GET, Twofold/nginx"),
    ("inner_vs_native", "inner seal, shipped/target-cpu=native"),
    ("all_core_scaling", "gateway all-core scaling, large GET"),
    (
        "all_core_scaling_put",
        "gateway all-core scaling, large PUT",
    ),
    (
        "simd_all_core_scaling",
        "simd-bench all-core scaling, dual seal",
    ),
    (
        "custodian_ops_per_request_simulated",
        "custodian ops/request, keysim (v2, a year)",
    ),
    (
        "custodian_ops_per_request_measured",
        "custodian ops/request, measured (small)",
    ),
    (
        "custodian_ops_per_request_model_small",
        "custodian ops/request, keysim (same small)",
    ),
];

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |cur, p| &cur[*p])
}

fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.3}"),
    }
}

/// The table for a report as `twofold-bench` builds it.
pub fn table(r: &Value) -> String {
    let mut s = String::new();
    let m = &r["machine"];
    let _ = writeln!(
        s,
        "\nTwofold end-to-end benchmark ({} mode) on {} ({} CPUs, Linux {}), load average {} at start, {} at end",
        r["mode"].as_str().unwrap_or("?"),
        m["cpu_model"].as_str().unwrap_or("?"),
        m["cpus"],
        m["kernel"].as_str().unwrap_or("?"),
        m["load_average_start"].as_str().unwrap_or("?"),
        m["load_average_end"].as_str().unwrap_or("?"),
    );
    let backend = r["backend"]["name"].as_str().unwrap_or("in-memory");
    if let Some(v) = r["backend"]["version"].as_str() {
        let _ = writeln!(s, "backend: {v}");
    }
    let _ = writeln!(
        s,
        "\n{:<28} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}  CPU s/GB (nginx, twofold; backend: direct, nginx, twofold)",
        format!("workload ({backend} backend)"),
        "unit",
        "direct",
        "nginx",
        "twofold",
        "tf/nginx",
        "tf/direct"
    );
    for (key, label, field, unit) in ROWS {
        if !r["results"][key].is_object() {
            continue;
        }
        let get = |t: &str| at(r, &["results", key, t, field]).as_f64();
        let (d, n, t) = (get("direct"), get("nginx"), get("twofold"));
        let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let cpu = |t: &str| at(r, &["results", key, t, "proxy_cpu_s_per_gb"]).as_f64();
        let bcpu = |t: &str| at(r, &["results", key, t, "backend_cpu_s_per_gb"]).as_f64();
        let _ = writeln!(
            s,
            "{label:<28} {unit:>6} {:>9} {:>9} {:>9} {:>9} {:>9}  {}, {}; {}, {}, {}",
            fmt_num(d),
            fmt_num(n),
            fmt_num(t),
            fmt_num(div(t, n)),
            fmt_num(div(t, d)),
            fmt_num(cpu("nginx")),
            fmt_num(cpu("twofold")),
            fmt_num(bcpu("direct")),
            fmt_num(bcpu("nginx")),
            fmt_num(bcpu("twofold")),
        );
    }
    let ttfb = |t: &str, p: &str| at(r, &["results", "ttfb_1mib", t, "ttfb_ms", p]).as_f64();
    let _ = writeln!(
        s,
        "{:<28} {:>6} {:>9} {:>9} {:>9}",
        "TTFB 1 MiB GET p50",
        "ms",
        fmt_num(ttfb("direct", "p50")),
        fmt_num(ttfb("nginx", "p50")),
        fmt_num(ttfb("twofold", "p50"))
    );
    let _ = writeln!(
        s,
        "{:<28} {:>6} {:>9} {:>9} {:>9}",
        "TTFB 1 MiB GET p99",
        "ms",
        fmt_num(ttfb("direct", "p99")),
        fmt_num(ttfb("nginx", "p99")),
        fmt_num(ttfb("twofold", "p99"))
    );
    if r["s3s_fs"].is_object() {
        for (key, label) in [
            ("put_large", "PUT 64 MiB, s3s-fs"),
            ("get_large", "GET 64 MiB, s3s-fs"),
        ] {
            let get = |t: &str| at(r, &["s3s_fs", key, t, "gb_per_s"]).as_f64();
            let (d, n, t) = (get("direct"), get("nginx"), get("twofold"));
            let _ = writeln!(
                s,
                "{label:<28} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "GB/s",
                fmt_num(d),
                fmt_num(n),
                fmt_num(t),
                fmt_num(t.zip(n).map(|(t, n)| t / n)),
                fmt_num(t.zip(d).map(|(t, d)| t / d)),
            );
        }
    }
    let sb = &r["simd_bench"];
    let _ = writeln!(
        s,
        "\nsimd-bench, one core, 64 KiB segments (GB/s): inner seal {} open {}, outer seal {} open {}, dual seal {} open {}",
        fmt_num(sb["inner_seal_gb_per_s"].as_f64()),
        fmt_num(sb["inner_open_gb_per_s"].as_f64()),
        fmt_num(sb["outer_seal_gb_per_s"].as_f64()),
        fmt_num(sb["outer_open_gb_per_s"].as_f64()),
        fmt_num(sb["dual_seal_gb_per_s"].as_f64()),
        fmt_num(sb["dual_open_gb_per_s"].as_f64()),
    );
    let _ = writeln!(
        s,
        "simd-bench inner seal 64 KiB, best of the alternated runs (GB/s): shipped {}, target-cpu=native {}; MD5 (twofold-md5) {}",
        fmt_num(sb["inner_seal_shipped_best_gb_per_s"].as_f64()),
        fmt_num(sb["inner_seal_native_gb_per_s"].as_f64()),
        fmt_num(sb["md5_gb_per_s"].as_f64()),
    );
    match sb["all_cores"]["rows"].as_array() {
        Some(rows) => {
            let list: Vec<String> = rows
                .iter()
                .filter(|row| row["size_bytes"] == 65536)
                .map(|row| {
                    // "inner (twofold-gcm)" -> "inner".
                    let implementation = row["implementation"]
                        .as_str()
                        .and_then(|i| i.split_whitespace().next())
                        .unwrap_or("?");
                    format!(
                        "{} {implementation} {} {} x{}",
                        row["group"].as_str().unwrap_or("?"),
                        row["operation"].as_str().unwrap_or("?"),
                        fmt_num(row["aggregate_gb_per_s"].as_f64()),
                        fmt_num(row["scaling"].as_f64()),
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "simd-bench on all {} cores, 64 KiB (aggregate GB/s, scaling per core): {}",
                sb["all_cores"]["threads"],
                list.join(", ")
            );
        }
        None => {
            let _ = writeln!(s, "simd-bench on all cores: not measured");
        }
    }
    let c = &r["cpu"];
    let _ = writeln!(
        s,
        "CPU s/GB, large PUT+GET: twofold {}, nginx {}, dual-layer crypto {}, budget (nginx + crypto) x 1.25 = {}",
        fmt_num(c["twofold_s_per_gb"].as_f64()),
        fmt_num(c["nginx_s_per_gb"].as_f64()),
        fmt_num(c["dual_layer_crypto_s_per_gb"].as_f64()),
        fmt_num(c["budget_s_per_gb"].as_f64()),
    );
    let _ = writeln!(
        s,
        "CPU s/GB, large PUT: twofold {}, budget nginx + dual seal = {}; Content-MD5 PUT: twofold {}, budget nginx + seal + MD5 ({}) = {}",
        fmt_num(c["put_twofold_s_per_gb"].as_f64()),
        fmt_num(c["put_budget_s_per_gb"].as_f64()),
        fmt_num(c["put_md5_twofold_s_per_gb"].as_f64()),
        fmt_num(c["md5_s_per_gb"].as_f64()),
        fmt_num(c["put_md5_budget_s_per_gb"].as_f64()),
    );
    let sc = &r["scaling"];
    if sc.is_object() {
        let tp = |w: &str, t: &str| at(sc, &["results", w, t, "gb_per_s"]).as_f64();
        let _ = writeln!(
            s,
            "gateway scaling, {} cores (GB/s, one core -> all): PUT 64 MiB {} -> {} ({} per core), GET 64 MiB {} -> {} ({} per core)",
            sc["cores"],
            fmt_num(tp("put_large", "twofold_1core")),
            fmt_num(tp("put_large", "twofold")),
            fmt_num(sc["put_scaling"].as_f64()),
            fmt_num(tp("get_large", "twofold_1core")),
            fmt_num(tp("get_large", "twofold")),
            fmt_num(sc["get_scaling"].as_f64()),
        );
    }
    let k = &r["custodian"]["measured"];
    if k.is_object() {
        let _ = writeln!(
            s,
            "custodian ops: {} gateways (window {} s, epoch {} s), {} writes + {} random reads, {} errors: {} ops over {} requests; keysim on the same: {}",
            k["gateways"],
            k["window_secs"],
            k["epoch_secs"],
            fmt_num(k["objects_written"].as_f64()),
            fmt_num(k["reads"].as_f64()),
            fmt_num(k["errors"].as_f64()),
            fmt_num(k["custodian_ops"].as_f64()),
            fmt_num(k["requests"].as_f64()),
            fmt_num(k["ops_per_request_model"].as_f64()),
        );
    }
    let mem = &r["memory"];
    let _ = writeln!(
        s,
        "gateway RSS: start {} MiB, peak over the workloads {} MiB; streamed {} MiB PUT+GET: {} -> {} MiB; {} connections: peak {} MiB",
        fmt_num(mem["gateway_rss_start_mib"].as_f64()),
        fmt_num(mem["gateway_peak_rss_workloads_mib"].as_f64()),
        mem["stream_bytes"].as_u64().map_or(0, |b| b >> 20),
        fmt_num(mem["stream_rss_base_mib"].as_f64()),
        fmt_num(mem["stream_rss_peak_mib"].as_f64()),
        mem["connections"],
        fmt_num(mem["connections_rss_peak_mib"].as_f64()),
    );
    if let Some(b) = mem["backend_peak_rss_mib"].as_object() {
        let list: Vec<String> = b
            .iter()
            .map(|(n, v)| format!("{n} {} MiB", fmt_num(v.as_f64())))
            .collect();
        let _ = writeln!(s, "backend peak RSS: {}", list.join(", "));
    }
    let _ = writeln!(
        s,
        "\n{:<44} {:>9} {:>8}  verdict",
        "target", "value", "limit"
    );
    for (key, label, limit, below) in TARGETS {
        let v = r["ratios"][key].as_f64();
        let verdict = match v {
            None => "not measured",
            Some(x) if (*below && x <= *limit) || (!*below && x >= *limit) => "met",
            Some(_) => "MISSED",
        };
        let op = if *below { "<=" } else { ">=" };
        let _ = writeln!(
            s,
            "{label:<44} {:>9} {op}{:>6}  {verdict}",
            fmt_num(v),
            limit
        );
    }
    let peak = mem["connections_rss_peak_mib"].as_f64();
    // After the RSS target below.
    let mut others = String::new();
    for (key, label) in OTHER_RATIOS {
        let v = &r["ratios"][key];
        let shown = match v.as_f64() {
            Some(x) if x != 0.0 && x.abs() < 0.001 => format!("{x:.2e}"),
            Some(x) => fmt_num(Some(x)),
            None => "-".into(),
        };
        let _ = writeln!(others, "{label:<44} {shown:>9}");
    }
    let _ = writeln!(
        s,
        "{:<44} {:>9} <{:>7}  {}",
        format!("RSS with {} connections (MiB)", mem["connections"]),
        fmt_num(peak),
        512,
        match peak {
            Some(p) if p < 512.0 => "met",
            Some(_) => "MISSED",
            None => "not measured",
        }
    );
    let _ = write!(s, "\n{:<44} {:>9}\n{others}", "other ratios", "value");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_rows_and_ratios_are_shown() {
        let r = json!({
            "mode": "quick",
            "machine": {"cpus": 2},
            "backend": {"name": "in-memory"},
            "results": {"put_large_md5": {
                "direct": {"gb_per_s": 1.0},
                "nginx": {"gb_per_s": 0.8},
                "twofold": {"gb_per_s": 0.6},
            }},
            "ratios": {"put_cpu_vs_budget": 1.05, "custodian_ops_per_request_measured": 0.0004},
            "simd_bench": {},
            "cpu": {},
            "memory": {},
        });
        let t = table(&r);
        assert!(t.contains("PUT 64 MiB, Content-MD5"), "{t}");
        assert!(t.contains("0.750"), "{t}");
        assert!(t.contains("4.00e-4"), "{t}");
        assert!(
            t.lines()
                .any(|l| l.starts_with("large PUT CPU") && l.ends_with("met")),
            "{t}"
        );
        assert!(t.contains("simd-bench on all cores: not measured"), "{t}");
    }
}
