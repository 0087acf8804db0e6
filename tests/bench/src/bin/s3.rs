//! `twofold-bench-s3`: the benchmark's S3 backend. By default objects live in memory
//! ([`twofold_bench::memstore`]); with `--fs DIR` it is s3s-fs on that folder, the realistic
//! case. Both check SigV4 through s3s. The secret access key comes from the environment
//! variable `TWOFOLD_BENCH_BACKEND_SECRET`. Prints `listening ADDR` once it accepts
//! connections, then serves until it is killed.
#![forbid(unsafe_code)]

use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "usage: twofold-bench-s3 --listen ADDR --access-key ID [--fs DIR]
  (secret access key in TWOFOLD_BENCH_BACKEND_SECRET)";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twofold-bench-s3: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut listen = None;
    let mut access_key = None;
    let mut fs_root = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--listen" => listen = Some(value()?),
            "--access-key" => access_key = Some(value()?),
            "--fs" => fs_root = Some(value()?),
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    let listen = listen.ok_or(USAGE)?;
    let access_key = access_key.ok_or(USAGE)?;
    let secret = std::env::var("TWOFOLD_BENCH_BACKEND_SECRET")
        .map_err(|_| format!("TWOFOLD_BENCH_BACKEND_SECRET is not set\n{USAGE}"))?;
    let mut builder = match &fs_root {
        Some(root) => {
            std::fs::create_dir_all(root).map_err(|e| format!("{root}: {e}"))?;
            let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("s3s-fs: {e:?}"))?;
            S3ServiceBuilder::new(fs)
        }
        None => S3ServiceBuilder::new(twofold_bench::memstore::MemStore::new()),
    };
    builder.set_auth(SimpleAuth::from_single(access_key, secret));
    let service = builder.build();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("listening on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let mut out = std::io::stdout();
        writeln!(out, "listening {addr}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())?;
        let http =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            // Without it, hyper's separate head and body writes meet delayed ACKs.
            let _ = socket.set_nodelay(true);
            let conn = http
                .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    })
}
