//! PostObject: a browser-form upload (`POST /bucket`, `multipart/form-data`). The form's
//! fields before its file are read first (at most [`POST_FORM_OVERHEAD_BYTES_MAX`]) and
//! parsed (`s3::post_form`); its signature is checked (`sigv4::post`), the credential
//! authorised as for a PutObject, and the policy checked (`s3::post_policy`), all before
//! the file is read, so an unauthenticated form costs no more than that much memory. Then
//! the file is sealed and stored with one backend PUT of known length. A form that fails
//! any check stores nothing.
//!
//! A form of at most [`POST_FORM_IN_MEMORY_BYTES_MAX`] is read whole and parsed, so it may
//! have any shape S3 takes (fields after the file included); its file is sealed in memory.
//! A larger one is streamed: the backend PUT needs the sealed length before its first
//! byte, so the file's length is taken as the form's length less what precedes the file
//! and the closing delimiter that must end it ([`post_form::closing`], as every form
//! encoder sends it); the file is sealed segment by segment as it arrives, and its last
//! segment goes to the backend only after those closing bytes arrived as expected, so a
//! form that ends otherwise stores nothing (`400 MalformedPOSTRequest`).

use super::put::{PutSealing, SealSink, UploadHeaders, check_upload_headers};
use crate::envelope::ObjectName;
use crate::envelope::SegmentCipher;
use crate::envelope::layout::stored_len;
use crate::envelope::objmeta;
use crate::envelope::write_plan::write_segments;
use crate::http::{RequestHead, ResponseHead};
use crate::s3::post_answer::{self, Stored};
use crate::s3::post_form::{self, FormHead};
use crate::s3::post_policy::{self, Submitted};
use crate::s3::{Address, KEY_BYTES_MAX, Query, S3Code, S3Error, S3Op, Style};
use crate::serve::body::send_continue;
use crate::serve::io::Conn;
use crate::serve::respond::{forward_error, push_sse};
use crate::serve::{Core, Failure, Outcome, Request, backend_path, write_response};
use crate::sigv4::{self, AuthMethod, PayloadMode, PostAuth, Secret, Verified};

/// Largest file a form may upload (S3's limit for a POST: 5 GiB).
pub const POST_FILE_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Most bytes of a form besides its file (its fields, part heads and boundaries).
pub const POST_FORM_OVERHEAD_BYTES_MAX: u64 = 64 * 1024;
/// Largest request body of a form upload.
pub const POST_FORM_BYTES_MAX: u64 = POST_FILE_BYTES_MAX + POST_FORM_OVERHEAD_BYTES_MAX;
/// Largest form read whole and sealed in memory; larger ones are streamed (see the module
/// documentation).
pub const POST_FORM_IN_MEMORY_BYTES_MAX: u64 = 5 * 1024 * 1024 + POST_FORM_OVERHEAD_BYTES_MAX;
const _: () = assert!(POST_FORM_IN_MEMORY_BYTES_MAX <= usize::MAX as u64);

/// A request whose head names a form upload, before authentication.
pub(crate) struct PostRequest<'a> {
    core: &'a Core,
    head: &'a RequestHead,
    address: &'a Address,
    query: &'a Query,
    rid: &'a str,
}

impl<'a> PostRequest<'a> {
    /// The request of `head`, whose address and query were resolved.
    pub(crate) fn new(
        core: &'a Core,
        head: &'a RequestHead,
        address: &'a Address,
        query: &'a Query,
        rid: &'a str,
    ) -> Self {
        Self {
            core,
            head,
            address,
            query,
            rid,
        }
    }
}

fn too_large() -> S3Error {
    S3Error::entity_too_large().with_message(format!(
        "Form uploads are limited to {POST_FILE_BYTES_MAX} bytes of file; use a multipart \
         upload"
    ))
}

/// PostObject: reads and checks the form, then seals and stores its file, and answers as
/// the form's `success_action_*` fields say.
pub(crate) async fn post(req: &PostRequest<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let bucket =
        req.address.bucket.as_deref().ok_or_else(|| {
            Failure::keep(S3Error::invalid_request("a form upload needs a bucket"))
        })?;
    let boundary = post_form::boundary(req.head.header_str("content-type").unwrap_or(""))
        .map_err(|e| Failure::keep(malformed(&e)))?;
    let len = form_length(req.head)?;
    send_continue(req.head, conn)
        .await
        .map_err(Failure::close)?;
    let prefix = read_body(conn, Vec::new(), len.min(POST_FORM_OVERHEAD_BYTES_MAX)).await?;
    let form_head = post_form::parse_head(&prefix, &boundary).map_err(|e| {
        Failure::keep(match e {
            post_form::FormError::Malformed(_) if (prefix.len() as u64) < len => fields_too_long(),
            e => malformed(&e),
        })
    })?;
    let verified = authenticate(req.core, &form_head)?;
    let key = form_key(&form_head)?;
    let checked = checked_policy(&form_head, bucket, &key)?;
    let address = Address {
        style: Style::Path,
        bucket: Some(bucket.to_owned()),
        key: Some(key),
    };
    let head = upload_head(req.head, &form_head.fields, &address);
    authorise(req.core, &verified, bucket, &head)?;
    let ctx = Request {
        core: req.core,
        head: &head,
        address: &address,
        query: req.query,
        verified: &verified,
        rid: req.rid,
    };
    if len > POST_FORM_IN_MEMORY_BYTES_MAX {
        let file = streamed_file(&prefix, &boundary, len)?;
        checked.check_file(file.len)?;
        let (resp, body, key_id) = store_streamed(&ctx, conn, &prefix, &file).await?;
        return answer(&ctx, conn, &form_head.fields, (resp, body, key_id)).await;
    }
    let body = read_body(conn, prefix, len).await?;
    let form = post_form::parse(&body, &boundary).map_err(|e| Failure::keep(malformed(&e)))?;
    checked.check_file(form.file.data.len() as u64)?;
    let stored = store(&ctx, form.file.data).await?;
    answer(&ctx, conn, &form.fields, stored).await
}

/// Where a streamed form's file is: its data's offset in the prefix read, its length, and
/// the bytes that must follow it.
struct StreamedFile {
    at: usize,
    len: u64,
    boundary: String,
    closing: Vec<u8>,
}

/// The file of a form of `len` bytes whose first bytes are `prefix`, taken to end with
/// [`post_form::closing`].
fn streamed_file(prefix: &[u8], boundary: &str, len: u64) -> Result<StreamedFile, Failure> {
    let (_, at) =
        post_form::parse_head_at(prefix, boundary).map_err(|e| Failure::keep(malformed(&e)))?;
    let closing = post_form::closing(boundary);
    let file_len = len
        .checked_sub((at + closing.len()) as u64)
        .filter(|l| *l >= (prefix.len() - at) as u64)
        .ok_or_else(|| {
            Failure::keep(malformed(&post_form::FormError::Malformed(
                "the form is shorter than its fields and closing boundary",
            )))
        })?;
    Ok(StreamedFile {
        at,
        len: file_len,
        boundary: boundary.to_owned(),
        closing,
    })
}

/// S3's answer to a form that is not multipart/form-data as it must be.
fn malformed(e: &post_form::FormError) -> S3Error {
    S3Error::new(400, S3Code::MalformedPOSTRequest, e.to_string())
}

/// The answer to a form whose fields before its file do not fit in
/// [`POST_FORM_OVERHEAD_BYTES_MAX`].
fn fields_too_long() -> S3Error {
    S3Error::new(
        400,
        S3Code::MalformedPOSTRequest,
        format!(
            "The form's fields before its file must fit in {POST_FORM_OVERHEAD_BYTES_MAX} bytes"
        ),
    )
}

/// The length of a form's body: it must have a Content-Length, at most
/// [`POST_FORM_BYTES_MAX`].
fn form_length(head: &RequestHead) -> Result<u64, Failure> {
    let len = match head.body_kind().map_err(|e| S3Error::from_http(&e))? {
        crate::http::BodyKind::ContentLength(n) => n,
        crate::http::BodyKind::None => 0,
        _ => return Err(Failure::keep(S3Error::missing_content_length())),
    };
    if len > POST_FORM_BYTES_MAX {
        return Err(Failure::keep(too_large()));
    }
    Ok(len)
}

/// Reads the request body on from `buf.len()` until `buf` holds its first `until` bytes
/// (at most [`POST_FORM_BYTES_MAX`], checked by [`form_length`]). A failure closes the
/// connection: the body was cut short.
async fn read_body(conn: &mut Conn, mut buf: Vec<u8>, until: u64) -> Result<Vec<u8>, Failure> {
    let from = buf.len();
    // In range: at most POST_FORM_BYTES_MAX, checked at compile time to fit a usize.
    let until = until as usize;
    buf.resize(until.max(from), 0);
    let (res, buf) = conn.read_exact_into(buf, from..until.max(from)).await;
    res.map_err(|e| {
        Failure::close(if e.kind() == std::io::ErrorKind::TimedOut {
            S3Error::request_timeout()
        } else {
            S3Error::incomplete_body()
        })
    })?;
    Ok(buf)
}

/// A field the form must have.
fn required<'f>(form: &'f FormHead, name: &str) -> Result<&'f str, Failure> {
    form.get(name).ok_or_else(|| {
        Failure::keep(S3Error::invalid_argument(format!(
            "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
        )))
    })
}

/// Checks the form's signature (`sigv4::post`); the credential it names, as the rest of
/// the request sees it.
fn authenticate(core: &Core, form: &FormHead) -> Result<Verified, Failure> {
    let Some(policy) = form.get("policy") else {
        return Err(Failure::keep(S3Error::access_denied().with_message(
            "Anonymous form uploads are not accepted: the form needs a signed policy",
        )));
    };
    let auth = PostAuth {
        algorithm: required(form, "x-amz-algorithm")?,
        credential: required(form, "x-amz-credential")?,
        date: required(form, "x-amz-date")?,
        signature: required(form, "x-amz-signature")?,
        policy,
    };
    let creds = &core.settings.credentials;
    let lookup = |ak: &str| {
        creds
            .iter()
            .find(|c| c.access_key_id == ak)
            .map(|c| Secret::new(c.secret.0.as_str()))
    };
    let access_key_id = sigv4::verify_post(&auth, &[core.settings.region.as_str()], &lookup)
        .map_err(|e| Failure::keep(S3Error::new(e.http_status(), e.s3_code(), e.to_string())))?;
    Ok(Verified {
        access_key_id,
        method: AuthMethod::PostPolicy,
        region: core.settings.region.clone(),
        request_time: std::time::SystemTime::now(),
        signed_headers: Vec::new(),
        payload: PayloadMode::Unsigned,
        decoded_content_length: None,
        chunk_signer: None,
    })
}

/// The form's `key`, with `${filename}` replaced by the file's name, checked as a key in a
/// path is.
fn form_key(form: &FormHead) -> Result<String, Failure> {
    let key = required(form, "key")?.replace("${filename}", &form.filename);
    if key.is_empty() {
        return Err(Failure::keep(S3Error::invalid_argument(
            "User key must have a length greater than 0.",
        )));
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(Failure::keep(S3Error::key_too_long()));
    }
    // As for a key in a path: no leading separator, no `.` or `..` segment.
    crate::s3::check_key(&key).map_err(|e| Failure::keep(e.into()))?;
    Ok(key)
}

/// A form whose policy verified, but for the file's length.
struct CheckedPolicy {
    policy: post_policy::Policy,
    /// The form's fields, `key` with `${filename}` replaced.
    fields: Vec<(String, String)>,
    bucket: String,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks the form's fields against its signed policy (`content-length-range` waits for
/// the file: [`CheckedPolicy::check_file`]).
fn checked_policy(form: &FormHead, bucket: &str, key: &str) -> Result<CheckedPolicy, Failure> {
    let policy = post_policy::decode(form.get("policy").unwrap_or(""))
        .map_err(|e| Failure::keep(e.into()))?;
    let mut fields = form.fields.clone();
    if let Some((_, v)) = fields.iter_mut().find(|(n, _)| n == "key") {
        key.clone_into(v);
    }
    let checked = CheckedPolicy {
        policy,
        fields,
        bucket: bucket.to_owned(),
    };
    checked.check(None)?;
    Ok(checked)
}

impl CheckedPolicy {
    fn check(&self, file_len: Option<u64>) -> Result<(), Failure> {
        let submitted = Submitted {
            fields: &self.fields,
            bucket: &self.bucket,
            file_len,
            now: now_secs(),
        };
        post_policy::check(&self.policy, &submitted).map_err(|e| Failure::keep(e.into()))
    }

    /// The file against the policy's `content-length-range` and the gateway's limit.
    fn check_file(&self, file_len: u64) -> Result<(), Failure> {
        self.check(Some(file_len))?;
        if file_len > POST_FILE_BYTES_MAX {
            return Err(Failure::keep(too_large()));
        }
        Ok(())
    }
}

/// The head of the PutObject a form is sealed as: the client's `host`, and the object
/// headers its fields ask for (`s3::post_answer::upload_headers`).
fn upload_head(
    client: &RequestHead,
    fields: &[(String, String)],
    address: &Address,
) -> RequestHead {
    let mut headers: Vec<(String, Vec<u8>)> = client
        .headers
        .iter()
        .filter(|(n, _)| n == "host")
        .cloned()
        .collect();
    headers.extend(post_answer::upload_headers(fields));
    RequestHead {
        method: "PUT".to_owned(),
        target: backend_path(address.bucket.as_deref(), address.key.as_deref()),
        version: client.version,
        headers,
    }
}

/// Authorises the credential as for a PutObject with the form's headers.
fn authorise(
    core: &Core,
    verified: &Verified,
    bucket: &str,
    head: &RequestHead,
) -> Result<(), Failure> {
    core.settings
        .credentials
        .iter()
        .find(|c| c.access_key_id == verified.access_key_id)
        .map_or(Err(crate::s3::Denied::Bucket), |c| {
            c.authorise(Some(bucket), S3Op::PutObject, &head.headers)
        })
        .map_err(|e| Failure::keep(S3Error::from(e).with_resource(format!("/{bucket}"))))
}

/// The backend's answer to the PUT of a form's file, and the key it was sealed under.
type StoredForm = (ResponseHead, Vec<u8>, String);

/// Fresh keys for the form's object, and the headers of its backend PUT.
async fn sealing_for(
    ctx: &Request<'_>,
) -> Result<(PutSealing, Vec<(String, Vec<u8>)>, String, String), Failure> {
    let UploadHeaders {
        key_id,
        forwarded: mut headers,
        described,
    } = check_upload_headers(ctx)?;
    let (bucket, key) = super::put::object_address(ctx, "PostObject needs a bucket and a key")?;
    let name = ObjectName { bucket, key };
    let sealing = PutSealing::new(ctx, name, &key_id, &described).await?;
    headers.push((objmeta::HTTP_HEADER.into(), sealing.metadata.clone()));
    headers.push(sealing.described.clone());
    Ok((
        sealing,
        headers,
        backend_path(Some(bucket), Some(key)),
        key_id,
    ))
}

/// Seals a form's file (read whole) with fresh keys and stores it with one backend PUT.
async fn store(ctx: &Request<'_>, file: &[u8]) -> Result<StoredForm, Failure> {
    let (sealing, headers, path, key_id) = sealing_for(ctx).await?;
    let sealed = seal_in_memory(&sealing.cipher, file)?;
    let (resp, resp_body) = ctx
        .core
        .backend
        .simple("PUT", &path, None, headers, sealed)
        .await?;
    Ok((resp, resp_body, key_id))
}

/// Seals a large form's file as it arrives (its first bytes in `prefix`) and streams it to
/// one backend PUT; the last segment goes out only once the form's closing bytes arrived
/// as expected. On any failure the backend PUT is cut mid-body: nothing is stored.
async fn store_streamed(
    ctx: &Request<'_>,
    conn: &mut Conn,
    prefix: &[u8],
    file: &StreamedFile,
) -> Result<StoredForm, Failure> {
    let (sealing, headers, path, key_id) = sealing_for(ctx).await?;
    let seg = sealing.cipher.segment_size();
    let stored = stored_len(file.len, seg);
    let ex = ctx
        .core
        .backend
        .send_head("PUT", &path, None, headers, Some(stored))
        .await?;
    let mut sink = SealSink(ex);
    let mut scan = post_form::DelimiterScan::new(&file.boundary);
    let mut early = prefix.get(file.at..).unwrap_or_default();
    let mut buf = ctx.core.buffers.take(seg.bytes_usize() + super::OVERHEAD);
    for s in write_segments(file.len, seg) {
        let len = s.plain_len as usize;
        let from_early = len.min(early.len());
        buf[..from_early].copy_from_slice(&early[..from_early]);
        early = &early[from_early..];
        if from_early < len {
            let (res, b) = conn.read_exact_into(buf, from_early..len).await;
            buf = b;
            res.map_err(|_| Failure::close(S3Error::incomplete_body()))?;
        }
        if scan.found_in(&buf[..len]) {
            return Err(Failure::close(not_last()));
        }
        if s.last {
            expect_closing(conn, &file.closing).await?;
        }
        let sealed = sealing
            .cipher
            .seal(s.index, s.last, &mut buf, len)
            .map_err(|_| Failure::close(S3Error::internal_error()))?;
        buf = sink.write(buf, sealed).await?;
    }
    ctx.core.buffers.give(buf);
    let (resp, resp_body) = sink.answer(ctx, 1 << 20).await?;
    Ok((resp, resp_body, key_id))
}

/// Reads the bytes that must end a streamed form; anything else is a malformed form.
async fn expect_closing(conn: &mut Conn, closing: &[u8]) -> Result<(), Failure> {
    let (res, got) = conn
        .read_exact_into(vec![0u8; closing.len()], 0..closing.len())
        .await;
    res.map_err(|_| Failure::close(S3Error::incomplete_body()))?;
    if got != closing {
        return Err(Failure::close(not_last()));
    }
    Ok(())
}

/// The answer to a streamed form whose file is not its last part, or that does not end
/// with the closing delimiter.
fn not_last() -> S3Error {
    malformed(&post_form::FormError::Malformed(
        "a form over 5 MiB must end with its file, then CRLF, the closing boundary and CRLF",
    ))
}

/// Answers a stored form as its `success_action_*` fields say (or relays the backend's
/// refusal).
async fn answer(
    ctx: &Request<'_>,
    conn: &mut Conn,
    fields: &[(String, String)],
    (resp, resp_body, key_id): StoredForm,
) -> Result<Outcome, Failure> {
    let (bucket, key) = super::put::object_address(ctx, "PostObject needs a bucket and a key")?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &resp_body, ctx.rid).await;
    }
    let etag = resp
        .header("etag")
        .map(crate::s3::etag::header_to_client)
        .unwrap_or_default();
    let etag = String::from_utf8_lossy(&etag);
    let location = object_location(ctx, bucket, key);
    let stored = Stored {
        location: &location,
        bucket,
        key,
        etag: &etag,
    };
    let answer = post_answer::answer(fields, &stored);
    let mut out = ResponseHead::new(answer.status);
    if let Some(l) = answer.location {
        out.push_header("location", l.into_bytes());
    }
    if !etag.is_empty() {
        out.push_header("etag", etag.as_bytes().to_vec());
    }
    if let Some(v) = resp.header("x-amz-version-id") {
        out.push_header("x-amz-version-id", v.to_vec());
    }
    push_sse(&mut out, Some(&key_id));
    out.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
    if answer.status == 201 {
        out.push_header("content-type", b"application/xml".to_vec());
    }
    out.push_header("content-length", answer.body.len().to_string().into_bytes());
    write_response(conn, &out, &answer.body)
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

/// The object's URL as a `201` answer names it: path-style under the client's host.
fn object_location(ctx: &Request<'_>, bucket: &str, key: &str) -> String {
    let scheme = match ctx.core.settings.listener_tls {
        crate::config::ListenerTls::Tls { .. } => "https",
        crate::config::ListenerTls::PlainHttp => "http",
    };
    let host = ctx.head.header_str("host").unwrap_or("");
    format!("{scheme}://{host}{}", backend_path(Some(bucket), Some(key)))
}

/// Seals a whole file (at most [`POST_FORM_IN_MEMORY_BYTES_MAX`]) segment by segment into
/// one buffer of its stored length.
fn seal_in_memory(cipher: &SegmentCipher, data: &[u8]) -> Result<Vec<u8>, Failure> {
    let plain = data.len() as u64;
    let seg = cipher.segment_size();
    let stored = usize::try_from(stored_len(plain, seg))
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    let mut out = vec![0u8; stored];
    let (mut from, mut at) = (0usize, 0usize);
    for s in write_segments(plain, seg) {
        let len = s.plain_len as usize;
        let (src, dst) = (data.get(from..from + len), out.get_mut(at..));
        let (Some(src), Some(dst)) = (src, dst) else {
            return Err(Failure::keep(S3Error::internal_error()));
        };
        dst.get_mut(..len)
            .ok_or_else(|| Failure::keep(S3Error::internal_error()))?
            .copy_from_slice(src);
        at += cipher
            .seal(s.index, s.last, dst, len)
            .map_err(|_| Failure::keep(S3Error::internal_error()))?;
        from += len;
    }
    if at != out.len() {
        return Err(Failure::keep(S3Error::internal_error()));
    }
    Ok(out)
}
