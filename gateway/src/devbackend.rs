//! An S3 server on a local folder, in this process: `s3s-fs` (which checks SigV4) served by
//! hyper on a tokio runtime of its own thread. It is the backend of `twofold serve --dev`
//! and of the integration tests; production points the gateway at a real S3 endpoint.
//!
//! One gap of s3s-fs is filled here ([`DevS3`]): its listings carry no ETags, which some
//! clients need (s3cmd's `sync` fails without them).

use s3s::auth::SimpleAuth;
use s3s::dto;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
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
        let mut builder = S3ServiceBuilder::new(DevS3 { inner: fs });
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

/// s3s-fs with ETags in its listings (taken from a HEAD of each listed object: a local file
/// read, in this process). Every other operation is s3s-fs's own.
#[derive(Debug)]
struct DevS3 {
    inner: s3s_fs::FileSystem,
}

impl DevS3 {
    /// Fills in the ETag of each listed object of `bucket` that has none.
    async fn fill_etags<T>(&self, req: &S3Request<T>, bucket: &str, objects: &mut [dto::Object]) {
        for o in objects.iter_mut().filter(|o| o.e_tag.is_none()) {
            let Some(key) = o.key.clone() else { continue };
            let Ok(input) = dto::HeadObjectInput::builder()
                .bucket(bucket.to_owned())
                .key(key)
                .build()
            else {
                continue;
            };
            if let Ok(resp) = self.inner.head_object(probe(req, input)).await {
                o.e_tag = resp.output.e_tag;
            }
        }
    }
}

// Every other operation is passed on to s3s-fs as it is.
#[async_trait::async_trait]
impl S3 for DevS3 {
    async fn list_objects(
        &self,
        req: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        let bucket = req.input.bucket.clone();
        let template = probe(&req, ());
        let mut resp = self.inner.list_objects(req).await?;
        if let Some(list) = resp.output.contents.as_mut() {
            self.fill_etags(&template, &bucket, list).await;
        }
        Ok(resp)
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        let bucket = req.input.bucket.clone();
        let template = probe(&req, ());
        let mut resp = self.inner.list_objects_v2(req).await?;
        if let Some(list) = resp.output.contents.as_mut() {
            self.fill_etags(&template, &bucket, list).await;
        }
        Ok(resp)
    }

    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        self.inner.create_bucket(req).await
    }
    async fn copy_object(
        &self,
        req: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        self.inner.copy_object(req).await
    }
    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        self.inner.delete_bucket(req).await
    }
    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        self.inner.delete_object(req).await
    }
    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        self.inner.delete_objects(req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        self.inner.get_bucket_location(req).await
    }
    async fn get_object(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        self.inner.get_object(req).await
    }
    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }
    async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        self.inner.head_object(req).await
    }
    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        self.inner.list_buckets(req).await
    }
    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        self.inner.put_object(req).await
    }
    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        self.inner.create_multipart_upload(req).await
    }
    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        self.inner.upload_part(req).await
    }
    async fn upload_part_copy(
        &self,
        req: S3Request<dto::UploadPartCopyInput>,
    ) -> S3Result<S3Response<dto::UploadPartCopyOutput>> {
        self.inner.upload_part_copy(req).await
    }
    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        self.inner.list_parts(req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        self.inner.complete_multipart_upload(req).await
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        self.inner.abort_multipart_upload(req).await
    }
}

/// A request made on behalf of `req` (a HEAD for a listing), with `input`.
fn probe<T, U>(req: &S3Request<T>, input: U) -> S3Request<U> {
    S3Request {
        input,
        method: req.method.clone(),
        uri: req.uri.clone(),
        headers: req.headers.clone(),
        extensions: Default::default(),
        credentials: req.credentials.clone(),
        region: req.region.clone(),
        service: req.service.clone(),
        trailing_headers: None,
    }
}
