//! The backend side of one core: a pool of keep-alive connections to the S3 endpoint, and
//! requests re-signed with the gateway's own backend credentials.

use super::io::{Conn, HeadError, Stream};
use crate::config::ServeSettings;
use crate::http::{BodyKind, ChunkedDecoder, RequestHead, ResponseHead, Step as ChunkedStep};
use crate::sigv4::{self, PayloadMode, Query, Secret, SigningInput};
use std::cell::RefCell;
use std::io;

/// Why a backend exchange failed: always the backend's (or the network's) fault.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Could not connect, or the connection broke.
    #[error("backend connection: {0}")]
    Io(#[from] io::Error),
    /// The TLS handshake with the backend failed (its certificate is not trusted, not for
    /// its name, or the handshake broke).
    #[error("backend TLS: {0}")]
    Tls(String),
    /// The backend answered with something that is not acceptable HTTP.
    #[error("backend sent an invalid response: {0}")]
    Protocol(String),
    /// Signing failed (a bad path or header).
    #[error("signing the backend request: {0}")]
    Sign(String),
}

impl From<HeadError> for BackendError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::Io(e) => BackendError::Io(e),
            HeadError::Http(e) => BackendError::Protocol(e.to_string()),
        }
    }
}

/// One core's backend: where it is, how to sign for it, and idle connections.
#[derive(Debug)]
pub struct Backend {
    addr: String,
    host: String,
    region: String,
    access_key_id: String,
    secret: Secret,
    idle: RefCell<Vec<Conn>>,
    idle_max: usize,
    meter: crate::telemetry::Meter,
    /// For an `https://` backend: this core's connector and the name its certificate
    /// must carry.
    tls: Option<BackendTls>,
    /// How long each wait on a backend connection may last.
    deadlines: crate::limits::Deadlines,
    /// How long connecting (TLS handshake included) may take.
    connect_timeout: std::time::Duration,
}

/// TLS towards the backend, for one core.
struct BackendTls {
    connector: compio::tls::TlsConnector,
    server_name: String,
}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// A request on its way to the backend: the connection it was sent on.
#[derive(Debug)]
pub struct Exchange {
    /// The connection; the request head has been written, the body (if any) not yet.
    pub conn: Conn,
}

/// Largest error document read from a backend that answered before the request's body
/// was all sent ([`Exchange::answer_after_write_error`]).
pub const EARLY_ANSWER_BYTES_MAX: usize = 1024 * 1024;

impl Exchange {
    /// The backend's answer to a request whose body could not all be written: the error it
    /// sent before it stopped reading the body ([`ResponseHead::answers_unsent_body`]; S3
    /// checks a write's conditions before it reads the body, refuses, and closes), with
    /// its error document; else `write_error` itself. A write that ran out of time is not
    /// waited on again. The connection is not reused.
    pub async fn answer_after_write_error(
        mut self,
        write_error: io::Error,
    ) -> Result<(ResponseHead, Vec<u8>), BackendError> {
        if write_error.kind() == io::ErrorKind::TimedOut {
            return Err(write_error.into());
        }
        let head = match self.conn.read_response_head().await {
            Ok(head) if head.answers_unsent_body() => head,
            _ => return Err(write_error.into()),
        };
        let (body, _) =
            read_small_body(&mut self.conn, &head, false, EARLY_ANSWER_BYTES_MAX).await?;
        Ok((head, body))
    }
}

impl Backend {
    /// A backend from the validated settings; `tls` is this core's client configuration
    /// when the backend is reached over HTTPS.
    pub fn new(
        settings: &ServeSettings,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Self {
        let tls = match (&settings.backend_transport, tls) {
            (crate::config::BackendTransport::Tls { server_name, .. }, Some(config)) => {
                Some(BackendTls {
                    connector: compio::tls::TlsConnector::from(config),
                    server_name: server_name.clone(),
                })
            }
            _ => None,
        };
        Self {
            addr: settings.backend_addr.clone(),
            host: settings.backend_host.clone(),
            region: settings.backend_region.clone(),
            access_key_id: settings.backend_access_key_id.clone(),
            secret: Secret::new(settings.backend_secret.0.as_str()),
            idle: RefCell::new(Vec::new()),
            idle_max: settings.pool_connections_per_core,
            meter: crate::telemetry::Meter::backend(),
            tls,
            deadlines: settings.limits.backend,
            connect_timeout: settings.limits.backend_connect,
        }
    }

    /// A connection from the pool, or a new one.
    async fn connect(&self) -> Result<(Conn, bool), BackendError> {
        let pooled = self.idle.borrow_mut().pop();
        if let Some(c) = pooled {
            return Ok((c, true));
        }
        Ok((self.open().await?, false))
    }

    /// A new connection, with its TLS handshake done (certificate and name checked) for an
    /// `https://` backend, within the connect deadline. A late backend is an
    /// `Io(TimedOut)`, as a read or write past its deadline is.
    async fn open(&self) -> Result<Conn, BackendError> {
        let conn = compio::time::timeout(self.connect_timeout, self.open_now())
            .await
            .map_err(|_| BackendError::Io(io::ErrorKind::TimedOut.into()))??;
        Ok(conn.with_deadlines(self.deadlines))
    }

    async fn open_now(&self) -> Result<Conn, BackendError> {
        let stream = compio::net::TcpStream::connect(self.addr.as_str()).await?;
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => Ok(Conn::new(stream).with_meter(self.meter.clone())),
            Some(tls) => {
                let stream = tls
                    .connector
                    .connect(&tls.server_name, stream)
                    .await
                    .map_err(|e| BackendError::Tls(e.to_string()))?;
                Ok(Conn::from_stream(Stream::Tls(Box::new(stream))).with_meter(self.meter.clone()))
            }
        }
    }

    /// Gives a connection whose exchange ended cleanly back to the pool, unless the
    /// backend said it closes it (`Connection: close`, as moto's server does on every
    /// answer) or a deadline passed on it.
    pub fn release(&self, conn: Conn) {
        if !conn.reusable() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        if idle.len() < self.idle_max {
            idle.push(conn);
        }
    }

    /// Signs and writes a request head. `path` is the path-style path (`/bucket/key`) as
    /// it will be sent, `query` the raw query. `headers` are sent and signed as given;
    /// Host, Content-Length and the signature headers are added here.
    pub async fn send_head(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: Vec<(String, Vec<u8>)>,
        content_length: Option<u64>,
    ) -> Result<Exchange, BackendError> {
        let path = sigv4::canonical::normalize_path(path)
            .ok_or_else(|| BackendError::Sign("bad path encoding".into()))?;
        let input = SigningInput {
            method,
            host: &self.host,
            path: &path,
            query: query.map_or(Query::None, Query::Raw),
            headers: &headers,
            payload: PayloadMode::Unsigned,
        };
        let signed = sigv4::sign(
            &input,
            &self.access_key_id,
            &self.secret,
            &self.region,
            std::time::SystemTime::now(),
        )
        .map_err(|e| BackendError::Sign(e.to_string()))?;
        let target = match query {
            Some(q) if !q.is_empty() => format!("{path}?{q}"),
            _ => path.clone(),
        };
        let mut head = RequestHead::new(method, target);
        head.push_header("host", self.host.as_bytes().to_vec());
        for (n, v) in &headers {
            head.push_header(n, v.clone());
        }
        for (n, v) in signed.headers() {
            head.push_header(n, v.as_bytes().to_vec());
        }
        if let Some(len) = content_length {
            head.push_header("content-length", len.to_string().into_bytes());
        }
        let mut bytes = Vec::with_capacity(1024);
        head.write(&mut bytes)
            .map_err(|e| BackendError::Sign(e.to_string()))?;
        // A pooled connection may have been closed by the backend while idle: on a write
        // failure there, retry once on a fresh connection (nothing of the body was sent).
        let (mut conn, pooled) = self.connect().await?;
        let (res, bytes) = conn.write_all(bytes).await;
        match res {
            Ok(()) => Ok(Exchange { conn }),
            Err(_) if pooled => {
                let mut conn = self.open().await?;
                let (res, _) = conn.write_all(bytes).await;
                res?;
                Ok(Exchange { conn })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a GET and reads the response head; the body is left on the returned
    /// connection for the caller to stream.
    pub async fn get(
        &self,
        path: &str,
        query: Option<&str>,
        headers: Vec<(String, Vec<u8>)>,
    ) -> Result<(Conn, ResponseHead), BackendError> {
        let mut ex = self.send_head("GET", path, query, headers, None).await?;
        let head = ex.conn.read_response_head().await?;
        Ok((ex.conn, head))
    }

    /// A whole exchange with a small body (at most a few MiB): sends it, reads the response
    /// and its whole body. For listings, bucket operations and the like.
    pub async fn simple(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    ) -> Result<(ResponseHead, Vec<u8>), BackendError> {
        let len = if body.is_empty() && !matches!(method, "PUT" | "POST") {
            None
        } else {
            Some(body.len() as u64)
        };
        let mut ex = self.send_head(method, path, query, headers, len).await?;
        if !body.is_empty() {
            let (res, _) = ex.conn.write_all(body).await;
            if let Err(e) = res {
                return ex.answer_after_write_error(e).await;
            }
        }
        let head = ex.conn.read_response_head().await?;
        let (body, reusable) =
            read_small_body(&mut ex.conn, &head, method == "HEAD", SMALL_BODY_BYTES_MAX).await?;
        if reusable && head.keep_alive() {
            self.release(ex.conn);
        }
        Ok((head, body))
    }

    /// CompleteMultipartUpload of the backend's upload `upload_q` (`uploadId=...`) at
    /// `path`, with the request body `document`.
    pub async fn complete_multipart(
        &self,
        path: &str,
        upload_q: &str,
        document: String,
    ) -> Result<(ResponseHead, Vec<u8>), BackendError> {
        let xml = vec![("content-type".to_owned(), b"application/xml".to_vec())];
        self.simple("POST", path, Some(upload_q), xml, document.into_bytes())
            .await
    }
}

/// Largest response body [`Backend::simple`] reads into memory.
pub const SMALL_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Reads a whole (small) response body. Returns it and whether the connection can be reused.
pub async fn read_small_body(
    conn: &mut Conn,
    head: &ResponseHead,
    was_head: bool,
    max: usize,
) -> Result<(Vec<u8>, bool), BackendError> {
    let kind = head
        .body_kind(was_head)
        .map_err(|e| BackendError::Protocol(e.to_string()))?;
    let too_big = || BackendError::Protocol(format!("response body over {max} bytes"));
    match kind {
        BodyKind::None => Ok((Vec::new(), true)),
        BodyKind::ContentLength(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(too_big)?;
            let buf = vec![0u8; n];
            let (res, buf) = conn.read_exact_into(buf, 0..n).await;
            res?;
            Ok((buf, true))
        }
        BodyKind::Chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut out = Vec::new();
            loop {
                let (consumed, step) = dec
                    .decode(conn.buffered())
                    .map_err(|e| BackendError::Protocol(e.to_string()))?;
                match step {
                    ChunkedStep::Data(d) => {
                        if out.len() + d.len() > max {
                            return Err(too_big());
                        }
                        out.extend_from_slice(d);
                        conn.consume(consumed);
                    }
                    ChunkedStep::NeedMore => {
                        conn.consume(consumed);
                        if conn.fill().await? == 0 {
                            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                        }
                    }
                    ChunkedStep::Done => {
                        conn.consume(consumed);
                        return Ok((out, true));
                    }
                }
            }
        }
        BodyKind::CloseDelimited => {
            let mut out = conn.buffered().to_vec();
            let n = out.len();
            conn.consume(n);
            while conn.fill().await? > 0 {
                out.extend_from_slice(conn.buffered());
                let n = conn.buffered().len();
                conn.consume(n);
                if out.len() > max {
                    return Err(too_big());
                }
            }
            Ok((out, false))
        }
    }
}

/// Runs `requests` (futures of backend requests, which borrow the core and so cannot be
/// spawned) on this core's runtime with at most `limit` in flight at once, and returns
/// their outputs in the order given. Each in flight holds one backend connection.
pub async fn in_flight<F: std::future::Future>(requests: Vec<F>, limit: usize) -> Vec<F::Output> {
    let total = requests.len();
    let mut waiting = requests.into_iter();
    let mut running: Vec<(usize, std::pin::Pin<Box<F>>)> = Vec::new();
    let mut done: Vec<Option<F::Output>> = (0..total).map(|_| None).collect();
    let mut next = 0usize;
    std::future::poll_fn(|cx| {
        while running.len() < limit.max(1) {
            let Some(f) = waiting.next() else { break };
            running.push((next, Box::pin(f)));
            next += 1;
        }
        running.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(out) => {
                done[*i] = Some(out);
                false
            }
            std::task::Poll::Pending => true,
        });
        if running.is_empty() && next == total {
            std::task::Poll::Ready(())
        } else {
            if running.len() < limit.max(1) && next < total {
                // Room freed: fill it at once rather than waiting for another wake.
                cx.waker().wake_by_ref();
            }
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

#[cfg(test)]
mod in_flight_tests {
    use super::in_flight;
    use std::cell::Cell;

    /// Outputs come back in order, and never more than the limit run at once.
    #[compio::test]
    async fn bounded_and_in_order() {
        let running = Cell::new(0usize);
        let most = Cell::new(0usize);
        let jobs: Vec<_> = (0..20u64)
            .map(|i| {
                let (running, most) = (&running, &most);
                async move {
                    running.set(running.get() + 1);
                    most.set(most.get().max(running.get()));
                    compio::time::sleep(std::time::Duration::from_millis(20 - i)).await;
                    running.set(running.get() - 1);
                    i * 2
                }
            })
            .collect();
        let out = in_flight(jobs, 4).await;
        assert_eq!(out, (0..20u64).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(most.get(), 4);
        assert!(
            in_flight(Vec::<std::future::Ready<u8>>::new(), 4)
                .await
                .is_empty()
        );
    }
}
