//! An S3 server on a local folder, in this process: `s3s-fs` (which checks SigV4) served by
//! hyper on a tokio runtime of its own thread. It is the backend of `twofold serve --dev`
//! and of the integration tests; production points the gateway at a real S3 endpoint.

use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A running in-process backend. Dropping it stops the server.
#[derive(Debug)]
pub struct DevBackend {
    addr: SocketAddr,
    root: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DevBackend {
    /// Starts s3s-fs on `listen` (port 0 picks a free one) over the folder `root`, accepting
    /// requests signed with `access_key`/`secret_key`.
    pub fn start(
        listen: SocketAddr,
        root: &Path,
        access_key: &str,
        secret_key: &str,
    ) -> std::io::Result<DevBackend> {
        std::fs::create_dir_all(root)?;
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
        let service = builder.build();
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("dev-backend".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let http = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    );
                    loop {
                        let accepted = tokio::select! {
                            r = listener.accept() => r,
                            _ = &mut stop_rx => break,
                        };
                        let Ok((socket, _)) = accepted else { continue };
                        // Without it, hyper's separate head and body writes meet delayed
                        // ACKs and every small response waits 40 ms.
                        let _ = socket.set_nodelay(true);
                        let conn = http
                            .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                            .into_owned();
                        tokio::spawn(async move {
                            let _ = conn.await;
                        });
                    }
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("dev backend thread ended before it started"))??;
        Ok(DevBackend {
            addr,
            root: root.to_path_buf(),
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The folder holding its buckets (one sub-folder each) and objects (one file each).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for DevBackend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
