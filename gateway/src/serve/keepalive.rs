//! An answer kept alive while long work runs: CompleteMultipartUpload while the backend
//! copies the object for its layout record (docs/gateway.md, *The rewrite at Complete*),
//! and CopyObject while a format version 1 source is sealed again as version 2
//! (docs/gateway.md, *Copies of version 1 objects*). If the work has not finished after
//! `limits.complete_keepalive_after_secs`, the answer is committed to `200 OK` (chunked),
//! its body opened with the XML declaration, and a space follows every
//! [`COMPLETE_KEEPALIVE_EVERY`] until the result, which then ends the body: the result
//! document, or an S3 error document. That is how S3 answers a long Complete or copy, and
//! SDKs look for an error in the 200 body of both for that reason.

use super::io::Conn;
use super::{Failure, Outcome, Request};
use crate::http::ResponseHead;
use crate::limits::COMPLETE_KEEPALIVE_EVERY;

/// The XML declaration that opens a kept-alive body; the result's own is left out.
const XML_DECLARATION: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// How the work ended, and whether its answer's head went out already.
pub(crate) enum Answer<T> {
    /// Finished in time: nothing was written to the client.
    Now(T),
    /// The `200 OK` head and the XML declaration went out: the result must end the body
    /// ([`conclude`]).
    Committed(T),
}

/// One chunk of a chunked body.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Runs `work`, keeping the client's connection alive once it takes longer than the
/// configured time (a 200 naming DSSE and `key_id`, the object's key, goes out first). If the client goes away meanwhile the work still runs to its end, so
/// that it is never cut short by a lost connection.
pub(crate) async fn keep_alive<F: std::future::Future>(
    ctx: &Request<'_>,
    (conn, key_id): (&mut Conn, Option<&str>),
    work: F,
) -> Answer<F::Output> {
    let mut work = std::pin::pin!(work);
    let after = ctx.core.settings.limits.complete_keepalive_after;
    if !after.is_zero()
        && let Ok(out) = compio::time::timeout(after, work.as_mut()).await
    {
        return Answer::Now(out);
    }
    let mut head = ResponseHead::new(200);
    head.push_header("content-type", b"application/xml".to_vec());
    super::respond::push_sse_for(ctx, &mut head, key_id);
    head.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
    head.push_header("transfer-encoding", b"chunked".to_vec());
    let mut open = Vec::with_capacity(512);
    let mut writing = head.write(&mut open).is_ok();
    open.extend_from_slice(&chunk(XML_DECLARATION));
    writing = writing && conn.write_all(open).await.0.is_ok();
    loop {
        match compio::time::timeout(COMPLETE_KEEPALIVE_EVERY, work.as_mut()).await {
            Ok(out) => return Answer::Committed(out),
            Err(_) if writing => writing = conn.write_all(chunk(b" ")).await.0.is_ok(),
            Err(_) => {}
        }
    }
}

/// `document` without the XML declaration it opens with, if any (with or without the line
/// break after it): the kept-alive body has its own.
fn without_declaration(document: &[u8]) -> &[u8] {
    if !document.starts_with(b"<?xml") {
        return document;
    }
    match document.windows(2).position(|w| w == b"?>") {
        Some(end) => document[end + 2..].trim_ascii_start(),
        None => document,
    }
}

/// Ends a committed answer ([`Answer::Committed`]) of `operation` with the result: the
/// result document (its ETags in the client's form), or the error as an S3 error
/// document, then the end of the chunked body.
pub(crate) async fn conclude(
    ctx: &Request<'_>,
    conn: &mut Conn,
    operation: &'static str,
    result: Result<(ResponseHead, Vec<u8>), Failure>,
) -> Outcome {
    let document = match result {
        Ok((_, body)) => crate::s3::etag::rewrite_xml(&body).into_owned(),
        Err(f) => {
            let err = f.error.with_request_id(ctx.rid.to_owned());
            tracing::warn!(
                operation,
                status = err.status,
                code = err.code.as_str(),
                detail = err.detail().unwrap_or(""),
                "the request failed after its 200 head was sent: the error document is its body"
            );
            err.to_xml()
        }
    };
    let mut out = chunk(without_declaration(&document));
    out.extend_from_slice(b"0\r\n\r\n");
    match conn.write_all(out).await.0 {
        Ok(()) => Outcome::KeepAlive,
        Err(_) => Outcome::Close,
    }
}

#[cfg(test)]
mod tests {
    use super::{chunk, without_declaration};

    #[test]
    fn a_result_loses_its_own_declaration_only() {
        let with = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A>x</A>";
        assert_eq!(without_declaration(with), b"<A>x</A>");
        let tight = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><A>x</A>";
        assert_eq!(without_declaration(tight), b"<A>x</A>");
        assert_eq!(without_declaration(b"<A>x</A>"), b"<A>x</A>");
        assert_eq!(without_declaration(b"<?xml broken"), b"<?xml broken");
        assert_eq!(chunk(b" "), b"1\r\n \r\n");
        assert_eq!(chunk(&[b'a'; 26]).len(), 4 + 26 + 2);
    }
}
