//! `twofold-bench`: the end-to-end benchmark's driver. On loopback it starts the in-memory
//! S3 backend, nginx as a plain reverse proxy in front of it and the Twofold gateway in
//! front of it, runs the same workloads with the same load generator against the three
//! paths, reads CPU time and peak RSS of each server process, runs simd-bench for the
//! crypto ceiling, and prints a table (and JSON with `--json FILE`). The realistic case,
//! s3s-fs on a RAM folder, is measured beside it. With `--backend ceph --ceph-env FILE`
//! the three paths lead to a running Ceph RGW instead (the env file of
//! tests/backends/ceph.sh, which `tests/bench/bench --backend ceph` starts and stops).
//! `tests/bench/bench` builds and runs it; docs/benchmarks.md explains the figures.
#![forbid(unsafe_code)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use twofold_bench::{procstat, prom};

const USAGE: &str = "usage: twofold-bench [--quick] [--json FILE] [--skip-fs] \
                     [--backend mem|ceph] [--ceph-env FILE] [--native-simd-bench PATH]";
const MIB: u64 = 1 << 20;
/// How long a server may take to accept connections after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Runs of each simd-bench build (shipped, native) when comparing them, alternated; the
/// best of each counts.
const NATIVE_ROUNDS: usize = 2;
/// Gateways sharing one backend bucket and the SoftHSM tokens in the custodian measurement.
const KEYS_GATEWAYS: u64 = 3;
/// Their bucket-key window: short, so that the writes span several windows.
const KEYS_WINDOW_SECS: u64 = 2;
/// Their epoch: the shortest the configuration accepts (a whole number of hours,
/// `EPOCH_UNIT_SECS` in gateway/src/envelope/hierarchy.rs).
const KEYS_EPOCH_SECS: u64 = 3600;
/// Seconds over which the writes of the custodian measurement are spread (four windows).
const KEYS_WRITE_SECS: u64 = 8;
/// Writes per second to each gateway in the custodian measurement.
const KEYS_WRITES_PER_SEC: u64 = 100;
/// Uniformly random reads through each gateway after the writes.
const KEYS_READS_PER_GATEWAY: u64 = 1500;
/// Size of each object of the custodian measurement.
const KEYS_OBJECT_BYTES: u64 = 4096;
/// Connections of each load generator in the custodian measurement.
const KEYS_CONCURRENCY: u64 = 4;
/// Longest a load generator of the custodian measurement may run (it stops at its count).
const KEYS_LOAD_LIMIT_SECS: u64 = 120;
/// The workload model for keysim: appliances of the cluster.
const KEYSIM_APPLIANCES: u64 = 10;
/// The workload model for keysim: cores of each appliance.
const KEYSIM_CORES: u64 = 64;
/// The workload model for keysim: days of writes before the reads.
const KEYSIM_DAYS: u64 = 365;
/// The bucket-key window the gateway runs with unless a measurement changes it.
const WINDOW_SECS_DEFAULT: u64 = 3600;

/// Sizes and durations of one run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seconds: f64,
    large_bytes: u64,
    large_keys: u64,
    large_concurrency: u64,
    small_bytes: u64,
    small_keys: u64,
    small_concurrency: u64,
    ttfb_count: u64,
    stream_bytes: u64,
    many_connections: u64,
    /// Most objects one large PUT workload writes (it stops at `seconds` otherwise).
    large_put_count: Option<u64>,
    /// Whether this is a `--quick` run.
    quick: bool,
}

const FULL: Plan = Plan {
    seconds: 10.0,
    large_bytes: 64 * MIB,
    large_keys: 4,
    large_concurrency: 4,
    small_bytes: 4096,
    small_keys: 512,
    small_concurrency: 16,
    ttfb_count: 1000,
    stream_bytes: 4096 * MIB,
    many_connections: 256,
    large_put_count: None,
    quick: false,
};

const QUICK: Plan = Plan {
    seconds: 3.0,
    ttfb_count: 200,
    stream_bytes: 512 * MIB,
    quick: true,
    ..FULL
};

/// In front of Ceph RGW, whose memstore OSD holds every object in RAM (about twice its
/// size) and every overwritten one until radosgw's garbage collection: shorter workloads,
/// at most 1.5 GiB per large PUT workload and a shorter stream, so that a full run stays
/// under five minutes and the OSD under a few GiB.
const CEPH_FULL: Plan = Plan {
    seconds: 8.0,
    stream_bytes: 1024 * MIB,
    large_put_count: Some(24),
    ..FULL
};

const CEPH_QUICK: Plan = Plan {
    stream_bytes: 256 * MIB,
    large_put_count: Some(12),
    ..QUICK
};

type Res<T> = Result<T, String>;

/// Gateway settings that a measurement changes.
#[derive(Debug, Clone, Copy)]
struct GatewayOpts {
    /// `[server] cores`: 0 for one per CPU.
    cores: usize,
    /// `[envelope] bucket_key_window_secs`.
    window_secs: u64,
    /// `[envelope] epoch_secs`; `None` leaves the gateway's default.
    epoch_secs: Option<u64>,
}

/// How the gateway runs in the main workloads.
const GATEWAY_DEFAULT: GatewayOpts = GatewayOpts {
    cores: 0,
    window_secs: WINDOW_SECS_DEFAULT,
    epoch_secs: None,
};

/// A Ceph RGW started by tests/backends/ceph.sh, as its env file describes it.
struct Ceph {
    addr: SocketAddr,
    access_key: String,
    secret: String,
    /// (daemon, pid): radosgw, the OSD and the monitor.
    daemons: Vec<(&'static str, u32)>,
    /// The cluster's ceph.conf, for `radosgw-admin`.
    conf: PathBuf,
}

impl Ceph {
    fn from_env_file(path: &Path) -> Res<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let vars: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let var = |k: &str| {
            vars.get(k)
                .map(|v| (*v).to_owned())
                .ok_or_else(|| format!("{}: no {k}", path.display()))
        };
        let endpoint = var("CEPH_S3_ENDPOINT")?;
        let addr = endpoint
            .strip_prefix("http://")
            .and_then(|a| a.trim_end_matches('/').parse().ok())
            .ok_or_else(|| format!("CEPH_S3_ENDPOINT {endpoint:?}: expected http://IP:PORT"))?;
        let mut daemons = Vec::new();
        for (name, k) in [
            ("radosgw", "CEPH_RGW_PID"),
            ("ceph-osd", "CEPH_OSD_PID"),
            ("ceph-mon", "CEPH_MON_PID"),
        ] {
            let pid = var(k)?
                .parse()
                .map_err(|_| format!("{}: {k} is no pid", path.display()))?;
            daemons.push((name, pid));
        }
        Ok(Ceph {
            addr,
            access_key: var("CEPH_S3_ACCESS_KEY")?,
            secret: var("CEPH_S3_SECRET_KEY")?,
            daemons,
            conf: PathBuf::from(var("CEPH_CONF")?),
        })
    }

    /// Runs radosgw's garbage collection now, over everything queued: the objects the last
    /// PUTs replaced. Outside the measured window, so that no path pays for the collection
    /// of another's garbage (radosgw's own runs every 30 s) and the OSD's memory stays low.
    fn collect_garbage(&self) {
        let t0 = Instant::now();
        let st = Command::new("timeout")
            .args(["120", "radosgw-admin", "-c"])
            .arg(&self.conf)
            .args(["gc", "process", "--include-all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match st {
            Ok(s) if s.success() => {
                eprintln!("    (gc: {:.1} s)", t0.elapsed().as_secs_f64());
            }
            other => eprintln!("    radosgw-admin gc process failed: {other:?}"),
        }
    }
}

/// CPU seconds of processes (and of their children).
fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter()
        .flat_map(|&p| std::iter::once(p).chain(procstat::children(p)))
        .map(|p| procstat::cpu_seconds(p).unwrap_or(0.0))
        .sum()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twofold-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A server process we started; killed when dropped.
struct Server {
    name: &'static str,
    child: Child,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }
    /// CPU seconds of the process and its children (nginx's workers).
    fn cpu(&self) -> f64 {
        let pid = self.pid();
        let mut t = procstat::cpu_seconds(pid).unwrap_or(0.0);
        for c in procstat::children(pid) {
            t += procstat::cpu_seconds(c).unwrap_or(0.0);
        }
        t
    }
    /// Peak RSS in MiB, the largest of the process and its children.
    fn peak_rss_mib(&self) -> f64 {
        let pid = self.pid();
        std::iter::once(pid)
            .chain(procstat::children(pid))
            .filter_map(|p| procstat::status_kib(p, "VmHWM").ok())
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("{}: killed", self.name);
    }
}

fn free_port() -> Res<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("picking a port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn wait_for_port(addr: SocketAddr, server: &mut Server) -> Res<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("{} exited at start: {status}", server.name));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{} did not listen on {addr}", server.name))
}

fn random_hex(bytes: usize) -> Res<String> {
    use std::io::Read;
    let mut b = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn write_private(path: &Path, text: &str) -> Res<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Everything the run shares.
struct Ctx {
    bin: PathBuf,
    work: PathBuf,
    plan: Plan,
    backend_key: String,
    backend_secret: String,
    client_key: String,
    client_secret: String,
    /// Arguments every run of the load generator gets before the workload's own.
    load_extra: Vec<String>,
}

/// One of the paths measured.
struct Target {
    name: &'static str,
    endpoint: String,
    bucket: String,
    access_key: String,
    secret: String,
}

impl Ctx {
    fn start_backend(&self, fs_root: Option<&Path>) -> Res<(Server, SocketAddr)> {
        let mut cmd = Command::new(self.bin.join("twofold-bench-s3"));
        cmd.args(["--listen", "127.0.0.1:0", "--access-key", &self.backend_key])
            .env("TWOFOLD_BENCH_BACKEND_SECRET", &self.backend_secret)
            .stdout(Stdio::piped());
        if let Some(root) = fs_root {
            cmd.arg("--fs").arg(root);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting twofold-bench-s3: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout of the backend")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| format!("reading the backend's address: {e}"))?;
        let server = Server {
            name: if fs_root.is_some() {
                "s3s-fs backend"
            } else {
                "in-memory backend"
            },
            child,
        };
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("backend said {line:?}"))?;
        Ok((server, addr))
    }

    fn start_nginx(&self, tag: &str, backend: SocketAddr) -> Res<(Server, SocketAddr)> {
        let dir = self.work.join(format!("nginx-{tag}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let d = dir.display();
        let conf = format!(
            "worker_processes auto;\ndaemon off;\nmaster_process on;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             upstream backend {{ server {backend}; keepalive 64; }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    client_max_body_size 0;\n\
             proxy_request_buffering off;\n    proxy_buffering off;\n    proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\";\n    proxy_set_header Host $http_host;\n\
             location / {{ proxy_pass http://backend; }}\n  }}\n}}\n"
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).map_err(|e| e.to_string())?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting nginx: {e}"))?;
        let mut server = Server {
            name: "nginx",
            child,
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_for_port(addr, &mut server)?;
        Ok((server, addr))
    }

    /// Creates the run's two SoftHSM2 tokens (once) and a gateway configuration in front of
    /// `backend`; starts `twofold serve` on it.
    fn start_twofold(
        &self,
        tag: &str,
        backend: SocketAddr,
        opts: GatewayOpts,
    ) -> Res<(Server, SocketAddr, Option<SocketAddr>)> {
        let hsm = self.work.join("hsm");
        let conf_path = hsm.join("softhsm2.conf");
        if !conf_path.exists() {
            std::fs::create_dir_all(hsm.join("tokens")).map_err(|e| e.to_string())?;
            std::fs::write(
                &conf_path,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    hsm.join("tokens").display()
                ),
            )
            .map_err(|e| e.to_string())?;
            for layer in ["inner", "outer"] {
                let pin = random_hex(12)?;
                write_private(&hsm.join(format!("{layer}.pin")), &format!("{pin}\n"))?;
                let so = random_hex(12)?;
                let st = Command::new("softhsm2-util")
                    .args(["--init-token", "--free", "--label"])
                    .arg(format!("twofold-bench-{layer}"))
                    .args(["--so-pin", &so, "--pin", &pin])
                    .env("SOFTHSM2_CONF", &conf_path)
                    .stdout(Stdio::null())
                    .status()
                    .map_err(|e| format!("softhsm2-util: {e}"))?;
                if !st.success() {
                    return Err(format!("softhsm2-util --init-token failed: {st}"));
                }
            }
            write_private(&hsm.join("backend.secret"), &self.backend_secret)?;
            write_private(&hsm.join("client.secret"), &self.client_secret)?;
        }
        let port = free_port()?;
        let module = "/usr/lib/softhsm/libsofthsm2.so";
        let custodian = |layer: &str| {
            format!(
                "[custodian.{layer}]\nkind = \"pkcs11\"\nmodule = \"{module}\"\n\
                 token_label = \"twofold-bench-{layer}\"\nkey_label = \"twofold-bench-{layer}-kek\"\n\
                 pin_file = \"{layer}.pin\"\nsofthsm2_conf = \"softhsm2.conf\"\n\n"
            )
        };
        let epoch = opts
            .epoch_secs
            .map(|e| format!("epoch_secs = {e}\n"))
            .unwrap_or_default();
        let config = format!(
            "[envelope]\nsegment_size_bytes = 65536\nbucket_key_window_secs = {}\n{epoch}key_cache_entries = 4096\n\n\
             {}{}[server]\nlisten = \"127.0.0.1:{port}\"\ncores = {}\nregion = \"us-east-1\"\nplain_http = true\n\
             drain_notice_secs = 0\n\n\
             [backend]\nendpoint = \"http://{backend}\"\nplain_http = true\naccess_key_id = \"{}\"\n\
             secret_access_key = {{ file = \"backend.secret\" }}\n\n\
             [[credential]]\naccess_key_id = \"{}\"\nsecret_access_key = {{ file = \"client.secret\" }}\n\
             buckets = [\"*\"]\n",
            opts.window_secs,
            custodian("outer"),
            custodian("inner"),
            opts.cores,
            self.backend_key,
            self.client_key,
        );
        let config_path = hsm.join(format!("twofold-{tag}.toml"));
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let twofold = self.bin.join("twofold");
        let out = Command::new(&twofold)
            .args(["keys", "init", "--config"])
            .arg(&config_path)
            .output()
            .map_err(|e| format!("twofold keys init: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "twofold keys init: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // The metrics endpoint, where this build of the gateway has it.
        let help = Command::new(&twofold)
            .args(["serve", "--help"])
            .output()
            .map_err(|e| format!("twofold serve --help: {e}"))?;
        let admin = if String::from_utf8_lossy(&help.stdout).contains("--admin-listen") {
            Some(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
        } else {
            None
        };
        let mut cmd = Command::new(&twofold);
        cmd.args(["serve", "--config"]).arg(&config_path);
        if let Some(a) = admin {
            cmd.arg("--admin-listen").arg(a.to_string());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting twofold serve: {e}"))?;
        let mut server = Server {
            name: "twofold",
            child,
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        wait_for_port(addr, &mut server)?;
        Ok((server, addr, admin))
    }

    fn target(&self, name: &'static str, addr: SocketAddr, through_gateway: bool) -> Target {
        let (access_key, secret) = if through_gateway {
            (self.client_key.clone(), self.client_secret.clone())
        } else {
            (self.backend_key.clone(), self.backend_secret.clone())
        };
        Target {
            name,
            endpoint: format!("http://{addr}"),
            bucket: format!("bench-{}", name.replace('_', "-")),
            access_key,
            secret,
        }
    }

    /// Runs the load generator once and returns its JSON.
    fn load(&self, t: &Target, args: &[String]) -> Res<Value> {
        let out = Command::new(self.bin.join("twofold-bench-load"))
            .args(["--endpoint", &t.endpoint, "--access-key", &t.access_key])
            .args(["--bucket", &t.bucket])
            .args(&self.load_extra)
            .args(args)
            .env("TWOFOLD_BENCH_SECRET", &t.secret)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("twofold-bench-load: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "twofold-bench-load against {}: {}",
                t.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("load output: {e}"))
    }
}

/// A workload: the load generator's arguments.
#[derive(Debug, Clone)]
struct Workload {
    name: &'static str,
    args: Vec<String>,
}

fn args(items: &[(&str, String)]) -> Vec<String> {
    items
        .iter()
        .flat_map(|(k, v)| [format!("--{k}"), v.clone()])
        .collect()
}

fn workloads(p: &Plan) -> Vec<Workload> {
    let s = p.seconds.to_string();
    let large = |op: &str, extra: &[(&str, String)]| {
        let mut a = args(&[
            ("op", op.into()),
            ("size", p.large_bytes.to_string()),
            ("keys", p.large_keys.to_string()),
            ("prefix", "large".into()),
            ("concurrency", p.large_concurrency.to_string()),
            ("seconds", s.clone()),
        ]);
        a.extend(args(extra));
        a
    };
    let small = |op: &str| {
        args(&[
            ("op", op.into()),
            ("size", p.small_bytes.to_string()),
            ("keys", p.small_keys.to_string()),
            ("prefix", "small".into()),
            ("concurrency", p.small_concurrency.to_string()),
            ("seconds", s.clone()),
        ])
    };
    let put_count: Vec<(&str, String)> = p
        .large_put_count
        .map(|n| ("count", n.to_string()))
        .into_iter()
        .collect();
    // What rclone and s3cmd send: a plain body with its Content-MD5, no CRC trailer.
    let mut md5_extra = put_count.clone();
    md5_extra.push(("checksum", "when-required".into()));
    let mut put_md5 = large("put", &md5_extra);
    put_md5.push("--content-md5".into());
    vec![
        Workload {
            name: "put_large",
            args: large("put", &put_count),
        },
        Workload {
            name: "put_large_md5",
            args: put_md5,
        },
        Workload {
            name: "get_large",
            args: large("get", &[]),
        },
        Workload {
            name: "range_1mib",
            args: large("range", &[("range-bytes", MIB.to_string())]),
        },
        Workload {
            name: "put_small",
            args: small("put"),
        },
        Workload {
            name: "get_small",
            args: small("get"),
        },
        Workload {
            name: "fill_1mib",
            args: args(&[
                ("op", "put".into()),
                ("size", MIB.to_string()),
                ("keys", "16".into()),
                ("count", "16".into()),
                ("prefix", "mid".into()),
                ("concurrency", "4".into()),
                ("seconds", "600".into()),
            ]),
        },
        Workload {
            name: "ttfb_1mib",
            args: args(&[
                ("op", "get".into()),
                ("size", MIB.to_string()),
                ("keys", "16".into()),
                ("count", p.ttfb_count.to_string()),
                ("prefix", "mid".into()),
                ("concurrency", "1".into()),
                ("seconds", "600".into()),
            ]),
        },
    ]
}

/// The workloads of `list` named in `names`, in the order of `list`.
fn pick(list: &[Workload], names: &[&str]) -> Vec<Workload> {
    list.iter()
        .filter(|w| names.contains(&w.name))
        .cloned()
        .collect()
}

fn metrics(admin: Option<SocketAddr>) -> Option<String> {
    use std::io::{Read, Write};
    let addr = admin?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// (HSM operations, requests) so far, from the gateway's metrics.
fn hsm_counters(admin: Option<SocketAddr>) -> Option<(f64, f64)> {
    let text = metrics(admin)?;
    Some((
        prom::sum(&text, "twofold_hsm_operations_total", &[])?,
        prom::sum(&text, "twofold_requests_total", &[])?,
    ))
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_f64()
}

/// Runs every workload against every target in turn (targets interleaved per workload,
/// so that drift of the machine hits all alike), with CPU time of each server.
fn run_workloads(
    ctx: &Ctx,
    targets: &[(&Target, Vec<&Server>)],
    backend: &[u32],
    list: &[Workload],
    ceph: Option<&Ceph>,
) -> Res<BTreeMap<String, BTreeMap<String, Value>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for w in list {
        for (t, servers) in targets {
            let before: Vec<f64> = servers.iter().map(|s| s.cpu()).collect();
            let backend_before = cpu_of(backend);
            let mut r = ctx.load(t, &w.args)?;
            let gb = num(&r, &["bytes"]).unwrap_or(0.0) / 1e9;
            let cpu: f64 = servers.iter().zip(&before).map(|(s, b)| s.cpu() - b).sum();
            let backend_cpu = cpu_of(backend) - backend_before;
            if let Some(o) = r.as_object_mut() {
                o.insert("proxy_cpu_s".into(), json!(cpu));
                o.insert("backend_cpu_s".into(), json!(backend_cpu));
                if gb > 0.0 {
                    o.insert("proxy_cpu_s_per_gb".into(), json!(cpu / gb));
                    o.insert("backend_cpu_s_per_gb".into(), json!(backend_cpu / gb));
                }
            }
            let errors = num(&r, &["errors"]).unwrap_or(0.0);
            eprintln!(
                "  {:<10} {:<8} {:>8.3} GB/s {:>9.0} ops/s  p99 {:>8.2} ms  errors {}",
                w.name,
                t.name,
                num(&r, &["gb_per_s"]).unwrap_or(0.0),
                num(&r, &["ops_per_s"]).unwrap_or(0.0),
                num(&r, &["latency_ms", "p99"]).unwrap_or(f64::NAN),
                errors
            );
            if errors > 0.0 {
                eprintln!("    first error: {}", r["first_error"]);
            }
            if let Some(c) = ceph
                && r["op"] == "put"
            {
                c.collect_garbage();
            }
            out.entry(w.name.to_owned())
                .or_default()
                .insert(t.name.to_owned(), r);
        }
    }
    Ok(out)
}

fn simd_bench(ctx: &Ctx) -> Res<Value> {
    simd_bench_run(ctx, &ctx.bin.join("simd-bench"), &[], "simd")
}

/// Runs the simd-bench at `exe` (with `--quick` in a quick run, and `extra` arguments) and
/// returns its JSON; `tag` names the report file in the work folder.
fn simd_bench_run(ctx: &Ctx, exe: &Path, extra: &[&str], tag: &str) -> Res<Value> {
    let path = ctx.work.join(format!("{tag}.json"));
    let mut cmd = Command::new(exe);
    if ctx.plan.quick {
        cmd.arg("--quick");
    }
    let st = cmd
        .args(extra)
        .arg("--json")
        .arg(&path)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    if !st.success() {
        return Err(format!("{} failed: {st}", exe.display()));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("{} JSON: {e}", exe.display()))
}

/// Whether the simd-bench at `exe` offers `flag` (its `--help` names it).
fn simd_bench_has(exe: &Path, flag: &str) -> bool {
    Command::new(exe)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).contains(flag)
                || String::from_utf8_lossy(&o.stderr).contains(flag)
        })
}

/// The shipped simd-bench (its first run is `first`) and the one built with
/// `-C target-cpu=native` at `native`, run alternately [`NATIVE_ROUNDS`] times each:
/// (best inner seal GB/s at 64 KiB of the shipped, of the native, the inner seal figures
/// of every run of each). A failed run is reported and leaves its figure out.
fn simd_native(ctx: &Ctx, first: &Value, native: &Path) -> (Option<f64>, Option<f64>, Value) {
    let inner = |v: &Value| simd_gbps(v, "single layer", "inner", "seal");
    let best = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut shipped = vec![inner(first)];
    let mut native_runs = Vec::new();
    for round in 0..NATIVE_ROUNDS {
        if round > 0 {
            match simd_bench_run(ctx, &ctx.bin.join("simd-bench"), &[], "simd-shipped") {
                Ok(v) => shipped.push(inner(&v)),
                Err(e) => eprintln!("  shipped simd-bench: {e}"),
            }
        }
        match simd_bench_run(ctx, native, &[], "simd-native") {
            Ok(v) => native_runs.push(inner(&v)),
            Err(e) => eprintln!("  native simd-bench: {e}"),
        }
    }
    let shipped_best = shipped.iter().copied().fold(None, best);
    let native_best = native_runs.iter().copied().fold(None, best);
    eprintln!("  inner seal 64 KiB, GB/s: shipped {shipped:?}, native {native_runs:?}");
    let runs = json!({
        "inner_seal_shipped_runs_gb_per_s": shipped,
        "inner_seal_native_runs_gb_per_s": native_runs,
    });
    (shipped_best, native_best, runs)
}

/// simd-bench's GB/s for `group`/`operation` at the gateway's segment size, by
/// implementation name prefix.
fn simd_gbps(simd: &Value, group: &str, implementation: &str, operation: &str) -> Option<f64> {
    simd["rows"].as_array()?.iter().find_map(|r| {
        (r["group"] == group
            && r["operation"] == operation
            && r["size_bytes"] == 65536
            && r["implementation"]
                .as_str()
                .is_some_and(|s| s.starts_with(implementation)))
        .then(|| r["gb_per_s"].as_f64())
        .flatten()
    })
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
fn loadavg() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Runs `twofold-keysim --json` with `args` and returns its report.
fn keysim(ctx: &Ctx, args: &[String]) -> Res<Value> {
    let out = Command::new(ctx.bin.join("twofold-keysim"))
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("twofold-keysim: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "twofold-keysim {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("twofold-keysim output: {e}"))
}

/// The cores a gateway with `cores = 0` runs on: one per CPU.
fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The large PUT and GET through Twofold again, on a second gateway with `cores = 1` and
/// on the main one (all cores), interleaved. Returns the results and
/// (GET scaling, PUT scaling): all-core throughput / one-core throughput / cores.
fn scaling(
    ctx: &Ctx,
    backend: SocketAddr,
    all: (&Target, &Server),
    backend_pids: &[u32],
    list: &[Workload],
    ceph: Option<&Ceph>,
) -> Res<(Value, Option<f64>, Option<f64>)> {
    let opts = GatewayOpts {
        cores: 1,
        ..GATEWAY_DEFAULT
    };
    let (one, one_addr, _) = ctx.start_twofold("one-core", backend, opts)?;
    let one_t = Target {
        name: "twofold_1core",
        endpoint: format!("http://{one_addr}"),
        bucket: all.0.bucket.clone(),
        access_key: all.0.access_key.clone(),
        secret: all.0.secret.clone(),
    };
    let r = run_workloads(
        ctx,
        &[(&one_t, vec![&one]), (all.0, vec![all.1])],
        backend_pids,
        &pick(list, &["put_large", "get_large"]),
        ceph,
    )?;
    drop(one);
    let cores = cpu_count();
    let factor = |w: &str| {
        let tp = |t: &str| {
            r.get(w)
                .and_then(|m| m.get(t))
                .and_then(|v| num(v, &["gb_per_s"]))
        };
        ratio(tp(all.0.name), tp(one_t.name)).map(|x| x / cores as f64)
    };
    let (get, put) = (factor("get_large"), factor("put_large"));
    let report = json!({
        "cores": cores,
        "get_scaling": get,
        "put_scaling": put,
        "results": r,
    });
    Ok((report, get, put))
}

/// Custodian operations per request on the real gateway: [`KEYS_GATEWAYS`] gateways in
/// front of one backend bucket with the same SoftHSM tokens and short windows; paced writes
/// of small objects spread over the gateways during several windows, then uniformly random
/// reads of them spread over the gateways. Counts the custodian operations from each
/// gateway's metrics, and runs keysim on the same small workload. Returns the report and
/// (measured, keysim's) operations per request.
fn custodian_measurement(ctx: &Ctx, backend: SocketAddr) -> Res<(Value, Option<f64>, Option<f64>)> {
    let opts = GatewayOpts {
        cores: 0,
        window_secs: KEYS_WINDOW_SECS,
        epoch_secs: Some(KEYS_EPOCH_SECS),
    };
    let mut gateways = Vec::new();
    for g in 0..KEYS_GATEWAYS {
        gateways.push(ctx.start_twofold(&format!("keys-{g}"), backend, opts)?);
    }
    let targets: Vec<Target> = gateways
        .iter()
        .map(|(_, addr, _)| Target {
            name: "keys",
            endpoint: format!("http://{addr}"),
            bucket: "bench-keys".into(),
            access_key: ctx.client_key.clone(),
            secret: ctx.client_secret.clone(),
        })
        .collect();
    ctx.load(&targets[0], &args(&[("op", "create-bucket".into())]))?;
    let snapshot = || -> Vec<Option<String>> {
        gateways
            .iter()
            .map(|(_, _, admin)| metrics(*admin))
            .collect()
    };
    let before = snapshot();
    let per_gateway = KEYS_WRITES_PER_SEC * KEYS_WRITE_SECS;
    let objects = per_gateway * KEYS_GATEWAYS;
    let common = |op: &str, count: u64| {
        args(&[
            ("op", op.into()),
            ("size", KEYS_OBJECT_BYTES.to_string()),
            ("prefix", "keys".into()),
            ("concurrency", KEYS_CONCURRENCY.to_string()),
            ("count", count.to_string()),
            ("seconds", KEYS_LOAD_LIMIT_SECS.to_string()),
        ])
    };
    // All gateways at once, one load generator each.
    let parallel = |each: &dyn Fn(u64) -> Vec<String>| -> Res<(Vec<Value>, f64)> {
        let t0 = Instant::now();
        let out: Vec<Res<Value>> = std::thread::scope(|sc| {
            let handles: Vec<_> = targets
                .iter()
                .zip(0u64..)
                .map(|(t, g)| {
                    let a = each(g);
                    sc.spawn(move || ctx.load(t, &a))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("load thread panicked".into()))
                })
                .collect()
        });
        let secs = t0.elapsed().as_secs_f64();
        Ok((out.into_iter().collect::<Res<Vec<_>>>()?, secs))
    };
    eprintln!(
        "  writes: {objects} objects of {KEYS_OBJECT_BYTES} B over {KEYS_WRITE_SECS} s, \
         {KEYS_GATEWAYS} gateways (window {KEYS_WINDOW_SECS} s, epoch {KEYS_EPOCH_SECS} s)"
    );
    let (writes, write_secs) = parallel(&|g| {
        let mut a = common("put", per_gateway);
        a.extend(args(&[
            ("keys", per_gateway.to_string()),
            ("key-offset", (g * per_gateway).to_string()),
            ("rate", KEYS_WRITES_PER_SEC.to_string()),
        ]));
        a
    })?;
    eprintln!(
        "  reads: {} uniformly random GETs through each gateway",
        KEYS_READS_PER_GATEWAY
    );
    let (reads, read_secs) = parallel(&|_| {
        let mut a = common("get", KEYS_READS_PER_GATEWAY);
        a.extend(args(&[
            ("keys", objects.to_string()),
            ("pick", "random".into()),
        ]));
        a
    })?;
    let after = snapshot();
    let sum_field = |v: &[Value], f: &str| v.iter().filter_map(|x| num(x, &[f])).sum::<f64>();
    let (w_ops, r_ops) = (sum_field(&writes, "ops"), sum_field(&reads, "ops"));
    let errors = sum_field(&writes, "errors") + sum_field(&reads, "errors");
    // Custodian operations and requests over all gateways, by kind of operation.
    let mut by_kind: BTreeMap<String, f64> = BTreeMap::new();
    let mut hsm = Some(0.0);
    let mut requests = Some(0.0);
    for (b, a) in before.iter().zip(&after) {
        let (Some(b), Some(a)) = (b, a) else {
            hsm = None;
            requests = None;
            continue;
        };
        // A counter not yet exposed has not counted anything.
        let delta = |name: &str| {
            prom::sum(a, name, &[]).unwrap_or(0.0) - prom::sum(b, name, &[]).unwrap_or(0.0)
        };
        hsm = hsm.map(|x| x + delta("twofold_hsm_operations_total"));
        requests = requests.map(|x| x + delta("twofold_requests_total"));
        let kb = prom::by_label(b, "twofold_hsm_operations_total", "kind");
        for (k, v) in prom::by_label(a, "twofold_hsm_operations_total", "kind") {
            let d = v - kb.get(&k).copied().unwrap_or(0.0);
            if d != 0.0 {
                *by_kind.entry(k).or_default() += d;
            }
        }
    }
    let measured = match (hsm, requests) {
        (Some(h), Some(r)) if r > 0.0 => Some(h / r),
        _ => None,
    };
    drop(gateways);
    // The same small workload in the model: the gateways as appliances, their cores, the
    // writes' span as the history, reads as many as measured, cold caches (no warm-up).
    let cores = cpu_count();
    let writes_per_sec = (KEYS_WRITES_PER_SEC * KEYS_GATEWAYS) as f64;
    let reads_per_sec = if w_ops > 0.0 {
        writes_per_sec * r_ops / w_ops
    } else {
        writes_per_sec
    };
    let model_args: Vec<String> = [
        "--scheme".to_string(),
        "v2".into(),
        "--appliances".into(),
        KEYS_GATEWAYS.to_string(),
        "--cores".into(),
        cores.to_string(),
        "--window-secs".into(),
        KEYS_WINDOW_SECS.to_string(),
        "--epoch-secs".into(),
        KEYS_EPOCH_SECS.to_string(),
        "--duration-secs".into(),
        KEYS_WRITE_SECS.to_string(),
        "--writes-per-sec".into(),
        writes_per_sec.to_string(),
        "--reads-per-sec".into(),
        reads_per_sec.to_string(),
        "--reads".into(),
        (r_ops.max(1.0) as u64).to_string(),
        "--warmup-reads".into(),
        "0".into(),
        "--sample-cores".into(),
        (KEYS_GATEWAYS as usize * cores).to_string(),
    ]
    .into();
    let model = match keysim(ctx, &model_args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("  {e}");
            Value::Null
        }
    };
    let model_per_request = num(&model, &["ops_per_request"]);
    eprintln!(
        "  custodian ops {} over {} requests ({} errors): {} per request; keysim on the same: {}",
        hsm.map_or("-".into(), |h| format!("{h:.0}")),
        requests.map_or("-".into(), |r| format!("{r:.0}")),
        errors,
        measured.map_or("-".into(), |m| format!("{m:.5}")),
        model_per_request.map_or("-".into(), |m| format!("{m:.5}")),
    );
    let report = json!({
        "gateways": KEYS_GATEWAYS,
        "cores_per_gateway": cores,
        "window_secs": KEYS_WINDOW_SECS,
        "epoch_secs": KEYS_EPOCH_SECS,
        "object_bytes": KEYS_OBJECT_BYTES,
        "objects_written": w_ops,
        "write_seconds": write_secs,
        "reads": r_ops,
        "read_seconds": read_secs,
        "errors": errors,
        "custodian_ops": hsm,
        "custodian_ops_by_kind": by_kind,
        "requests": requests,
        "ops_per_request_measured": measured,
        "ops_per_request_model": model_per_request,
        "keysim_args": model_args,
        "keysim": model,
        "writes": writes,
        "reads_load": reads,
    });
    Ok((report, measured, model_per_request))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

fn run() -> Res<()> {
    let mut quick = false;
    let mut json_path = None;
    let mut skip_fs = false;
    let mut backend_kind = String::from("mem");
    let mut ceph_env = None;
    let mut native_simd: Option<PathBuf> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--json" => json_path = Some(it.next().ok_or(USAGE)?),
            "--skip-fs" => skip_fs = true,
            "--backend" => backend_kind = it.next().ok_or(USAGE)?,
            "--ceph-env" => ceph_env = Some(PathBuf::from(it.next().ok_or(USAGE)?)),
            "--native-simd-bench" => native_simd = Some(PathBuf::from(it.next().ok_or(USAGE)?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    let ceph = match (backend_kind.as_str(), &ceph_env) {
        ("mem", None) => None,
        ("ceph", Some(env)) => Some(Ceph::from_env_file(env)?),
        ("ceph", None) => {
            return Err(format!(
                "--backend ceph needs --ceph-env FILE (tests/bench/bench --backend ceph starts \
                 Ceph and passes it)\n{USAGE}"
            ));
        }
        ("mem", Some(_)) => return Err(format!("--ceph-env goes with --backend ceph\n{USAGE}")),
        (other, _) => return Err(format!("unknown backend {other:?}\n{USAGE}")),
    };
    let plan = match (ceph.is_some(), quick) {
        (false, false) => FULL,
        (false, true) => QUICK,
        (true, false) => CEPH_FULL,
        (true, true) => CEPH_QUICK,
    };
    // s3s-fs is the in-memory run's realistic companion; a Ceph run is its own.
    let skip_fs = skip_fs || ceph.is_some();
    let bin = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .ok_or("no folder of the executable")?
        .to_path_buf();
    let tmp = tempfile::Builder::new()
        .prefix("twofold-bench-")
        .tempdir()
        .map_err(|e| format!("temporary folder: {e}"))?;
    let (backend_key, backend_secret) = match &ceph {
        Some(c) => (c.access_key.clone(), c.secret.clone()),
        None => ("bench-backend".into(), random_hex(20)?),
    };
    let ctx = Ctx {
        bin,
        work: tmp.path().to_path_buf(),
        plan,
        backend_key,
        backend_secret,
        client_key: "bench-client".into(),
        client_secret: random_hex(20)?,
        // radosgw 16 refuses aws-chunked bodies with a trailer: plain bodies on all paths.
        load_extra: if ceph.is_some() {
            vec!["--checksum".into(), "when-required".into()]
        } else {
            Vec::new()
        },
    };
    let started = Instant::now();
    let load_start = loadavg();

    eprintln!("== simd-bench (crypto ceiling, one core)");
    let simd = simd_bench(&ctx)?;
    let (inner_shipped, inner_native, native_runs) = match &native_simd {
        Some(native) => {
            eprintln!(
                "== simd-bench shipped against target-cpu=native ({}), alternated",
                native.display()
            );
            simd_native(&ctx, &simd, native)
        }
        None => (None, None, Value::Null),
    };
    let shipped_exe = ctx.bin.join("simd-bench");
    let simd_all_cores = if simd_bench_has(&shipped_exe, "--all-cores") {
        eprintln!("== simd-bench --all-cores");
        match simd_bench_run(&ctx, &shipped_exe, &["--all-cores"], "simd-all-cores") {
            Ok(v) => v["all_cores"].clone(),
            Err(e) => {
                eprintln!("  {e}");
                Value::Null
            }
        }
    } else {
        eprintln!("== simd-bench has no --all-cores: all-core figures left out");
        Value::Null
    };
    let simd_scaling = simd_all_cores["rows"].as_array().and_then(|rows| {
        rows.iter().find_map(|r| {
            (r["group"] == "dual layer" && r["operation"] == "seal" && r["size_bytes"] == 65536)
                .then(|| r["scaling"].as_f64())
                .flatten()
        })
    });
    eprintln!(
        "== twofold-keysim: scheme v2, {KEYSIM_APPLIANCES} appliances x {KEYSIM_CORES} cores, {KEYSIM_DAYS} days"
    );
    let keysim_year = keysim(
        &ctx,
        &args(&[
            ("scheme", "v2".into()),
            ("appliances", KEYSIM_APPLIANCES.to_string()),
            ("cores", KEYSIM_CORES.to_string()),
            ("days", KEYSIM_DAYS.to_string()),
            ("skew", "uniform".into()),
        ]),
    )
    .unwrap_or_else(|e| {
        eprintln!("  {e}");
        Value::Null
    });

    let (backend, backend_addr, backend_pids) = match &ceph {
        Some(c) => {
            eprintln!("== Ceph RGW backend at {}", c.addr);
            let pids = c.daemons.iter().map(|(_, p)| *p).collect();
            (None, c.addr, pids)
        }
        None => {
            eprintln!("== in-memory backend");
            let (server, addr) = ctx.start_backend(None)?;
            let pids = vec![server.pid()];
            (Some(server), addr, pids)
        }
    };
    let tag = if ceph.is_some() { "ceph" } else { "mem" };
    let (nginx, nginx_addr) = ctx.start_nginx(tag, backend_addr)?;
    let (gateway, gateway_addr, admin) = ctx.start_twofold(tag, backend_addr, GATEWAY_DEFAULT)?;
    let direct_t = ctx.target("direct", backend_addr, false);
    let nginx_t = ctx.target("nginx", nginx_addr, false);
    let twofold_t = ctx.target("twofold", gateway_addr, true);
    for t in [&direct_t, &nginx_t, &twofold_t] {
        ctx.load(t, &args(&[("op", "create-bucket".into())]))?;
    }
    let gateway_rss_start =
        procstat::status_kib(gateway.pid(), "VmRSS").unwrap_or(0) as f64 / 1024.0;
    let list = workloads(&plan);
    // Warm-up: one pass of each path (connections, bucket keys), not counted.
    for t in [&direct_t, &nginx_t, &twofold_t] {
        let mut a = list[0].args.clone();
        a.extend(args(&[("count", plan.large_keys.to_string())]));
        ctx.load(t, &a)?;
    }
    if let Some(c) = &ceph {
        c.collect_garbage();
    }
    let hsm_before = hsm_counters(admin);
    let mut results = run_workloads(
        &ctx,
        &[
            (&direct_t, vec![]),
            (&nginx_t, vec![&nginx]),
            (&twofold_t, vec![&gateway]),
        ],
        &backend_pids,
        &list,
        ceph.as_ref(),
    )?;
    if ceph.is_some() {
        // What an SDK sends by default (aws-chunked, CRC32 trailer): radosgw refuses it, so
        // only through the gateway, which stores the object with a plain PUT and then
        // records the verified checksum by a server-side copy onto itself.
        let mut a = list[0].args.clone();
        a.extend(args(&[("checksum", "when-supported".into())]));
        let w = Workload {
            name: "put_large_trailer",
            args: a,
        };
        results.extend(run_workloads(
            &ctx,
            &[(&twofold_t, vec![&gateway])],
            &backend_pids,
            &[w],
            ceph.as_ref(),
        )?);
    }
    let hsm_after = hsm_counters(admin);
    let gateway_peak_main = gateway.peak_rss_mib();
    let nginx_peak = nginx.peak_rss_mib();

    eprintln!(
        "== gateway memory: a {} MiB PUT then GET, one stream",
        plan.stream_bytes / MIB
    );
    procstat::reset_peak_rss(gateway.pid()).map_err(|e| format!("clear_refs: {e}"))?;
    let rss_base = procstat::status_kib(gateway.pid(), "VmRSS").unwrap_or(0) as f64 / 1024.0;
    let stream = |op: &str| {
        args(&[
            ("op", op.into()),
            ("size", plan.stream_bytes.to_string()),
            ("keys", "1".into()),
            ("count", "1".into()),
            ("prefix", "stream".into()),
            ("seconds", "3600".into()),
        ])
    };
    let stream_put = ctx.load(&twofold_t, &stream("put"))?;
    let stream_get = ctx.load(&twofold_t, &stream("get"))?;
    let rss_stream_peak = gateway.peak_rss_mib();
    eprintln!(
        "  base {rss_base:.1} MiB, peak {rss_stream_peak:.1} MiB (PUT {:.3} GB/s, GET {:.3} GB/s, errors {} {})",
        num(&stream_put, &["gb_per_s"]).unwrap_or(0.0),
        num(&stream_get, &["gb_per_s"]).unwrap_or(0.0),
        stream_put["errors"],
        stream_get["errors"]
    );

    eprintln!(
        "== gateway memory: {} concurrent connections, 1 MiB GETs",
        plan.many_connections
    );
    procstat::reset_peak_rss(gateway.pid()).map_err(|e| format!("clear_refs: {e}"))?;
    let many = ctx.load(
        &twofold_t,
        &args(&[
            ("op", "get".into()),
            ("size", MIB.to_string()),
            ("keys", "16".into()),
            ("prefix", "mid".into()),
            ("concurrency", plan.many_connections.to_string()),
            ("seconds", plan.seconds.to_string()),
        ]),
    )?;
    let rss_many_peak = gateway.peak_rss_mib();
    eprintln!(
        "  peak {rss_many_peak:.1} MiB ({:.0} ops/s, errors {})",
        num(&many, &["ops_per_s"]).unwrap_or(0.0),
        many["errors"]
    );
    eprintln!(
        "== scaling: large PUT and GET through Twofold with cores = 1 and with all {} cores",
        cpu_count()
    );
    let (scaling_report, scaling_get, scaling_put) = scaling(
        &ctx,
        backend_addr,
        (&twofold_t, &gateway),
        &backend_pids,
        &list,
        ceph.as_ref(),
    )?;
    eprintln!("== custodian operations: {KEYS_GATEWAYS} gateways, one bucket, short windows");
    let (keys_report, keys_measured, keys_model) = custodian_measurement(&ctx, backend_addr)?;
    let backend_rss: BTreeMap<&str, f64> = match &ceph {
        Some(c) => c
            .daemons
            .iter()
            .map(|(n, p)| {
                let kib = procstat::status_kib(*p, "VmHWM").unwrap_or(0);
                (*n, kib as f64 / 1024.0)
            })
            .collect(),
        None => backend
            .iter()
            .map(|b| ("twofold-bench-s3", b.peak_rss_mib()))
            .collect(),
    };
    drop(gateway);
    drop(nginx);
    drop(backend);

    let mut fs_results = Value::Null;
    if !skip_fs {
        eprintln!("== s3s-fs backend on a RAM folder (the realistic case)");
        let shm = Path::new("/dev/shm");
        let root_parent = if shm.is_dir() { shm } else { tmp.path() };
        let root = tempfile::Builder::new()
            .prefix("twofold-bench-fs-")
            .tempdir_in(root_parent)
            .map_err(|e| e.to_string())?;
        let (backend, backend_addr) = ctx.start_backend(Some(root.path()))?;
        let (nginx, nginx_addr) = ctx.start_nginx("fs", backend_addr)?;
        let (gateway, gateway_addr, _) = ctx.start_twofold("fs", backend_addr, GATEWAY_DEFAULT)?;
        let direct_t = ctx.target("direct", backend_addr, false);
        let nginx_t = ctx.target("nginx", nginx_addr, false);
        let twofold_t = ctx.target("twofold", gateway_addr, true);
        for t in [&direct_t, &nginx_t, &twofold_t] {
            ctx.load(t, &args(&[("op", "create-bucket".into())]))?;
        }
        let r = run_workloads(
            &ctx,
            &[
                (&direct_t, vec![]),
                (&nginx_t, vec![&nginx]),
                (&twofold_t, vec![&gateway]),
            ],
            &[backend.pid()],
            &pick(&list, &["put_large", "get_large"]),
            None,
        )?;
        fs_results = json!(r);
    }

    // Ratios and targets.
    let get = |w: &str, t: &str, path: &[&str]| {
        results
            .get(w)
            .and_then(|m| m.get(t))
            .and_then(|v| num(v, path))
    };
    let tp = |w: &str, t: &str| get(w, t, &["gb_per_s"]);
    let ops = |w: &str, t: &str| get(w, t, &["ops_per_s"]);
    let seal = simd_gbps(&simd, "dual layer", "", "seal");
    let open = simd_gbps(&simd, "dual layer", "", "open");
    let cpu_gb = |t: &str| -> Option<f64> {
        let cpu = get("put_large", t, &["proxy_cpu_s"])? + get("get_large", t, &["proxy_cpu_s"])?;
        let bytes = get("put_large", t, &["bytes"])? + get("get_large", t, &["bytes"])?;
        (bytes > 0.0).then(|| cpu / (bytes / 1e9))
    };
    // Crypto seconds per GB: sealing for the PUT bytes, opening for the GET bytes.
    let crypto_s_per_gb = (|| {
        let pb = get("put_large", "twofold", &["bytes"])? / 1e9;
        let gb = get("get_large", "twofold", &["bytes"])? / 1e9;
        Some((pb / seal? + gb / open?) / (pb + gb))
    })();
    let twofold_cpu = cpu_gb("twofold");
    let nginx_cpu = cpu_gb("nginx");
    let budget = match (nginx_cpu, crypto_s_per_gb) {
        (Some(n), Some(c)) => Some((n + c) * 1.25),
        _ => None,
    };
    let crypto_efficiency = match (twofold_cpu, nginx_cpu, crypto_s_per_gb) {
        (Some(t), Some(n), Some(c)) if t > n => Some(c / (t - n)),
        _ => None,
    };
    let ttfb_added = match (
        get("ttfb_1mib", "twofold", &["ttfb_ms", "p99"]),
        get("ttfb_1mib", "direct", &["ttfb_ms", "p99"]),
    ) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    // The PUT budget: nginx's CPU per GB on the same PUT plus the dual-layer seal (and, with
    // Content-MD5, the MD5) that simd-bench measures on one core.
    let md5_gbps = simd_gbps(&simd, "md5", "twofold-md5", "hash");
    let sha256_gbps = simd_gbps(&simd, "sha256", "aws-lc", "hash");
    let put_cpu = |w: &str, t: &str| get(w, t, &["proxy_cpu_s_per_gb"]);
    let put_budget = seal.and_then(|s| Some(put_cpu("put_large", "nginx")? + 1.0 / s));
    let put_md5_budget = seal
        .zip(md5_gbps)
        .and_then(|(s, m)| Some(put_cpu("put_large_md5", "nginx")? + 1.0 / s + 1.0 / m));
    // In the in-memory mode the large PUT is the SDK's default over plain HTTP: a signed
    // aws-chunked body, whose SHA-256 the gateway verifies (and nginx passes on unread).
    let put_signed_budget = match ceph {
        None => put_budget.zip(sha256_gbps).map(|(b, h)| b + 1.0 / h),
        Some(_) => None,
    };
    let ceph_ratio = |w: &str| {
        ceph.as_ref()
            .and_then(|_| ratio(tp(w, "twofold"), tp(w, "nginx")))
    };
    let hsm_per_request = match (hsm_before, hsm_after) {
        (Some((h0, r0)), Some((h1, r1))) if r1 > r0 => Some((h1 - h0) / (r1 - r0)),
        _ => None,
    };
    let ratios = json!({
        "put_large_vs_nginx": ratio(tp("put_large", "twofold"), tp("put_large", "nginx")),
        "get_large_vs_nginx": ratio(tp("get_large", "twofold"), tp("get_large", "nginx")),
        "put_small_vs_nginx": ratio(ops("put_small", "twofold"), ops("put_small", "nginx")),
        "get_small_vs_nginx": ratio(ops("get_small", "twofold"), ops("get_small", "nginx")),
        "ttfb_p99_added_ms": ttfb_added,
        "hsm_ops_per_request": hsm_per_request,
        "rss_growth_mib": rss_stream_peak - rss_base,
        "cpu_per_gb_vs_budget": ratio(twofold_cpu, budget),
        "put_cpu_vs_budget": ratio(put_cpu("put_large", "twofold"), put_budget),
        "put_md5_cpu_vs_budget": ratio(put_cpu("put_large_md5", "twofold"), put_md5_budget),
        "put_signed_cpu_vs_budget": ratio(put_cpu("put_large", "twofold"), put_signed_budget),
        "put_md5_vs_nginx": ratio(tp("put_large_md5", "twofold"), tp("put_large_md5", "nginx")),
        "range_vs_nginx": ratio(ops("range_1mib", "twofold"), ops("range_1mib", "nginx")),
        "inner_vs_native": ratio(inner_shipped, inner_native),
        "ceph_put_vs_nginx": ceph_ratio("put_large"),
        "ceph_get_vs_nginx": ceph_ratio("get_large"),
        "all_core_scaling": scaling_get,
        "all_core_scaling_put": scaling_put,
        "all_core_scaling_cores": cpu_count(),
        "simd_all_core_scaling": simd_scaling,
        "custodian_ops_per_request_simulated": num(&keysim_year, &["ops_per_request"]),
        "custodian_ops_per_request_measured": keys_measured,
        "custodian_ops_per_request_model_small": keys_model,
    });
    let vs_direct = json!({
        "put_large": ratio(tp("put_large", "twofold"), tp("put_large", "direct")),
        "put_large_md5": ratio(tp("put_large_md5", "twofold"), tp("put_large_md5", "direct")),
        "get_large": ratio(tp("get_large", "twofold"), tp("get_large", "direct")),
        "range_1mib": ratio(ops("range_1mib", "twofold"), ops("range_1mib", "direct")),
        "put_small": ratio(ops("put_small", "twofold"), ops("put_small", "direct")),
        "get_small": ratio(ops("get_small", "twofold"), ops("get_small", "direct")),
    });
    let machine = json!({
        "cpu_model": std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| t.lines().find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
        "nginx": Command::new("nginx").arg("-v").output().ok().map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned()),
        "load_average_start": load_start,
        "load_average_end": loadavg(),
    });
    let backend_info = match &ceph {
        Some(_) => json!({
            "kind": "ceph",
            "name": "Ceph RGW",
            "version": Command::new("radosgw").arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()),
            "client_checksum": "when-required (plain bodies)",
        }),
        None => json!({
            "kind": "mem",
            "name": "in-memory",
            "client_checksum": "when-supported (aws-chunked, CRC32 trailer)",
        }),
    };
    let report = json!({
        "tool": "twofold-bench",
        "mode": if plan.quick { "quick" } else { "full" },
        "seconds_per_workload": plan.seconds,
        "machine": machine,
        "backend": backend_info,
        "ratios": ratios,
        "twofold_vs_direct": vs_direct,
        "results": results,
        "s3s_fs": fs_results,
        "cpu": {
            "twofold_s_per_gb": twofold_cpu,
            "nginx_s_per_gb": nginx_cpu,
            "dual_layer_crypto_s_per_gb": crypto_s_per_gb,
            "budget_s_per_gb": budget,
            "gateway_crypto_vs_simd_estimate": crypto_efficiency,
            "put_twofold_s_per_gb": put_cpu("put_large", "twofold"),
            "put_nginx_s_per_gb": put_cpu("put_large", "nginx"),
            "put_budget_s_per_gb": put_budget,
            "put_md5_twofold_s_per_gb": put_cpu("put_large_md5", "twofold"),
            "put_md5_nginx_s_per_gb": put_cpu("put_large_md5", "nginx"),
            "md5_s_per_gb": md5_gbps.map(|m| 1.0 / m),
            "put_md5_budget_s_per_gb": put_md5_budget,
            "sha256_s_per_gb": sha256_gbps.map(|h| 1.0 / h),
            "put_signed_budget_s_per_gb": put_signed_budget,
        },
        "scaling": scaling_report,
        "custodian": {
            "simulated": keysim_year,
            "measured": keys_report,
        },
        "memory": {
            "gateway_rss_start_mib": gateway_rss_start,
            "gateway_peak_rss_workloads_mib": gateway_peak_main,
            "nginx_peak_rss_mib": nginx_peak,
            "backend_peak_rss_mib": backend_rss,
            "stream_bytes": plan.stream_bytes,
            "stream_rss_base_mib": rss_base,
            "stream_rss_peak_mib": rss_stream_peak,
            "stream_put": stream_put,
            "stream_get": stream_get,
            "connections": plan.many_connections,
            "connections_rss_peak_mib": rss_many_peak,
            "connections_load": many,
        },
        "hsm": {
            "metrics_endpoint": admin.map(|a| a.to_string()),
            "note": if admin.is_none() { Some("this gateway build has no --admin-listen: no metrics") } else { None },
            "before": hsm_before.map(|(h, r)| json!({"hsm_ops": h, "requests": r})),
            "after": hsm_after.map(|(h, r)| json!({"hsm_ops": h, "requests": r})),
        },
        "simd_bench": {
            "dual_seal_gb_per_s": seal,
            "dual_open_gb_per_s": open,
            "inner_seal_gb_per_s": simd_gbps(&simd, "single layer", "inner", "seal"),
            "inner_open_gb_per_s": simd_gbps(&simd, "single layer", "inner", "open"),
            "outer_seal_gb_per_s": simd_gbps(&simd, "single layer", "outer", "seal"),
            "outer_open_gb_per_s": simd_gbps(&simd, "single layer", "outer", "open"),
            "md5_gb_per_s": md5_gbps,
            "inner_seal_shipped_best_gb_per_s": inner_shipped,
            "inner_seal_native_gb_per_s": inner_native,
            "native_binary": native_simd.as_ref().map(|p| p.display().to_string()),
            "native_runs": native_runs,
            "all_cores": simd_all_cores,
            "report": simd,
        },
        "wall_seconds": started.elapsed().as_secs_f64(),
    });
    print!("{}", twofold_bench::report::table(&report));
    if let Some(p) = json_path {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(&p, text + "\n").map_err(|e| format!("{p}: {e}"))?;
    }
    Ok(())
}
