//! The one streaming read of a stored object: the stored bytes of a read plan
//! ([`ReadPlan`]) come from a backend response body, each segment is opened and verified
//! by [`PlanOpener`], and only then its kept plaintext goes to a [`PlainSink`]: a client's
//! response (GetObject) or a part being sealed again (UploadPartCopy).

use super::OVERHEAD;
use crate::envelope::plan::{ReadPlan, StoredRange};
use crate::envelope::read::PlanOpener;
use crate::envelope::{DataKeys, header::Header};
use crate::http::ResponseHead;
use crate::s3::S3Error;
use crate::serve::backend::{BackendError, read_small_body};
use crate::serve::error::integrity_failure;
use crate::serve::io::Conn;
use crate::serve::respond::forward_error;
use crate::serve::{Failure, Outcome, Request};
use std::ops::Range;

/// Bytes kept free before the plaintext in the output buffer, so that a response head and
/// the first plaintext go out in one write (one segment later for the client otherwise: a
/// separate small write, and a separate read and wake-up on its side). A head that does not
/// fit (user metadata near S3's 2 KiB limit fits easily) is written on its own.
pub(crate) const HEAD_ROOM: usize = 8 * 1024;

/// Where verified plaintext goes.
pub(crate) trait PlainSink {
    /// Takes the verified plaintext `buf[range]` (never empty; `range.start` is at least
    /// [`HEAD_ROOM`]); gives the buffer back.
    async fn put(&mut self, buf: Vec<u8>, range: Range<usize>) -> (Result<(), Failure>, Vec<u8>);
}

/// Why a streamed read stopped.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// A segment did not verify: nothing of it went anywhere.
    Integrity(crate::envelope::Error),
    /// The backend's body ended or failed, or the sink failed.
    Failed(Failure),
}

impl StreamError {
    /// The request's failure: an integrity failure is counted and logged here, and
    /// answered with `what` (for example "The stored object") in its detail.
    pub(crate) fn into_failure(self, ctx: &Request<'_>, what: &str) -> Failure {
        if let StreamError::Integrity(e) = &self {
            integrity_failure(ctx, e);
        }
        self.into_unreported_failure(what)
    }

    /// [`StreamError::into_failure`] without counting or logging an integrity failure: for
    /// a read that is tried again another way.
    pub(crate) fn into_unreported_failure(self, what: &str) -> Failure {
        match self {
            StreamError::Integrity(e) => Failure::integrity(format!(
                "{what} failed its integrity check and was not returned: {e}"
            ))
            .closing(),
            StreamError::Failed(f) => f,
        }
    }
}

/// Reads every segment of `plan` from `input`: the bytes fetched apart before the body
/// (`lead`, a salted part's salt; see [`fetch_plan`]), then the body, positioned at the
/// start of the plan's last fetch range. Each is opened under `keys`, and its kept
/// plaintext handed to `sink`. Reads nothing after the plan's last segment.
pub(crate) async fn stream_plan(
    ctx: &Request<'_>,
    input: (&[u8], &mut Conn),
    plan: &ReadPlan,
    source: (&Header, &DataKeys),
    sink: &mut impl PlainSink,
) -> Result<(), StreamError> {
    let (lead, body) = input;
    let (header, keys) = source;
    let mut opener = PlanOpener::new(plan, header, keys);
    let seg = header.segment_size.bytes_usize() + OVERHEAD;
    let mut buf = ctx.core.buffers.take(seg);
    let mut out = ctx.core.buffers.take(HEAD_ROOM + seg);
    let mut lead_at = 0;
    let internal = |what| StreamError::Integrity(crate::envelope::Error::Internal(what));
    while let Some(stored) = opener.next_stored_len() {
        let opened = if lead_at < lead.len() {
            let bytes = lead
                .get(lead_at..lead_at + stored)
                .ok_or(internal("a step across the fetched ranges"))?;
            lead_at += stored;
            opener.open(bytes, &mut out[HEAD_ROOM..])
        } else {
            let (res, b) = body.read_exact_into(buf, 0..stored).await;
            buf = b;
            res.map_err(|e| StreamError::Failed(BackendError::from(e).into()))?;
            let bytes = buf
                .get(..stored)
                .ok_or(internal("segment longer than the segment size"))?;
            opener.open(bytes, &mut out[HEAD_ROOM..])
        }
        .map_err(StreamError::Integrity)?;
        if opened.kept.is_empty() {
            continue;
        }
        let range = HEAD_ROOM + opened.kept.start..HEAD_ROOM + opened.kept.end;
        let (res, b) = sink.put(out, range).await;
        out = b;
        res.map_err(StreamError::Failed)?;
    }
    ctx.core.buffers.give(buf);
    ctx.core.buffers.give(out);
    Ok(())
}

/// A plan's stored bytes, fetched: the bytes of its ranges before the last (a salted
/// part's salt, for a read that begins inside that part; otherwise none), then the body of
/// the backend's answer for the last range, with its response head.
pub(crate) struct Fetched {
    pub(crate) lead: Vec<u8>,
    pub(crate) body: Conn,
    pub(crate) head: ResponseHead,
}

/// Fetches the stored bytes of `plan` from the object at `at` with `headers`
/// (conditions): a range fetched apart first (a salt; small, read whole), then the last.
/// Both answers must be of one object (the same ETag); `Ok(Err(outcome))` when the
/// backend's own answer went to the client.
pub(crate) async fn fetch_plan(
    ctx: &Request<'_>,
    conn: &mut Conn,
    at: (&str, Option<&str>),
    headers: Vec<(String, Vec<u8>)>,
    plan: &ReadPlan,
) -> Result<Result<Fetched, Outcome>, Failure> {
    let internal = || Failure::keep(S3Error::internal_error());
    let (apart, last) = match plan.fetch.as_slice() {
        [last] => (None, *last),
        [apart, last] if apart.len() <= SALT_FETCH_BYTES_MAX => (Some(*apart), *last),
        _ => return Err(internal()),
    };
    let mut lead = Vec::new();
    let mut lead_etag = None;
    if let Some(range) = apart {
        let (mut body, resp) = match fetch_range(ctx, conn, at, headers.clone(), range).await? {
            Ok(fetched) => fetched,
            Err(outcome) => return Ok(Err(outcome)),
        };
        let n = usize::try_from(range.len()).map_err(|_| internal())?;
        let (res, b) = body.read_exact_into(vec![0u8; n], 0..n).await;
        res.map_err(|e| Failure::from(BackendError::from(e)))?;
        if resp.content_length().ok().flatten() == Some(range.len()) {
            ctx.core.backend.release(body);
        }
        lead = b;
        lead_etag = Some(resp.header("etag").map(<[u8]>::to_vec));
    }
    let (body, head) = match fetch_range(ctx, conn, at, headers, last).await? {
        Ok(fetched) => fetched,
        Err(outcome) => return Ok(Err(outcome)),
    };
    if lead_etag.is_some_and(|e| e.as_deref() != head.header("etag")) {
        return Err(object_changed());
    }
    Ok(Ok(Fetched { lead, body, head }))
}

/// The failure of a read whose object changed between two of its backend requests.
pub(crate) fn object_changed() -> Failure {
    Failure::keep(
        S3Error::service_unavailable()
            .with_detail("The object changed while it was being read; retry the request"),
    )
}

/// Most bytes a plan fetches apart before its last range: a part's salt.
const SALT_FETCH_BYTES_MAX: u64 = crate::envelope::layout::PART_SALT_LEN_BYTES;

/// Largest backend error body relayed to the client, in bytes.
const ERROR_BODY_BYTES_MAX: usize = 1 << 20;

/// A backend GET of the stored bytes `range` of the object at `at` (path, query), with
/// `headers` (conditions): the body, positioned at the range's first byte, and the
/// response head; `Ok(Err(outcome))` when the backend's own answer (a failed condition, a
/// missing object) went to the client.
pub(crate) async fn fetch_range(
    ctx: &Request<'_>,
    conn: &mut Conn,
    at: (&str, Option<&str>),
    mut headers: Vec<(String, Vec<u8>)>,
    range: StoredRange,
) -> Result<Result<(Conn, ResponseHead), Outcome>, Failure> {
    headers.push((
        "range".into(),
        format!("bytes={}-{}", range.first, range.last).into_bytes(),
    ));
    let (mut body, resp) = ctx.core.backend.get(at.0, at.1, headers).await?;
    if resp.status != 206 && resp.status != 200 {
        let (text, _) = read_small_body(&mut body, &resp, false, ERROR_BODY_BYTES_MAX).await?;
        return forward_error(conn, &resp, &text, ctx.rid).await.map(Err);
    }
    // A whole object instead of the range is the range only where it starts at 0.
    if resp.status == 200 && range.first != 0 {
        return Err(BackendError::Protocol("the backend ignored the Range of a GET".into()).into());
    }
    Ok(Ok((body, resp)))
}

/// A client's response as a [`PlainSink`]: the response head goes out with the first
/// verified plaintext, so that nothing is sent before something has verified.
pub(crate) struct ClientBody<'c> {
    conn: &'c mut Conn,
    head: Option<Vec<u8>>,
}

impl<'c> ClientBody<'c> {
    /// A response with head `head`, not sent yet.
    pub(crate) fn new(conn: &'c mut Conn, head: &ResponseHead) -> Result<Self, Failure> {
        let mut bytes = Vec::with_capacity(1024);
        head.write(&mut bytes)
            .map_err(|_| Failure::close(S3Error::internal_error()))?;
        Ok(Self {
            conn,
            head: Some(bytes),
        })
    }

    /// Sends the head if no plaintext did (an empty body).
    pub(crate) async fn finish(mut self) -> Result<(), Failure> {
        if let Some(head) = self.head.take() {
            let (res, _) = self.conn.write_all(head).await;
            res.map_err(|_| Failure::close(S3Error::internal_error()))?;
        }
        Ok(())
    }
}

impl PlainSink for ClientBody<'_> {
    async fn put(
        &mut self,
        mut buf: Vec<u8>,
        range: Range<usize>,
    ) -> (Result<(), Failure>, Vec<u8>) {
        let mut from = range.start;
        if let Some(head) = self.head.take() {
            if head.len() <= from {
                from -= head.len();
                buf[from..range.start].copy_from_slice(&head);
            } else {
                let (res, _) = self.conn.write_all(head).await;
                if res.is_err() {
                    return (Err(Failure::close(S3Error::internal_error())), buf);
                }
            }
        }
        let (res, buf) = self.conn.write_range(buf, from..range.end).await;
        (
            res.map_err(|_| Failure::close(S3Error::internal_error())),
            buf,
        )
    }
}
