//! PostObject: a browser-form upload (`POST /bucket`, `multipart/form-data`). The form's
//! fields before its file are read first (at most [`POST_FORM_OVERHEAD_BYTES_MAX`]) and
//! parsed (`s3::post_form`); its signature is checked (`sigv4::post`), the credential
//! authorised as for a PutObject, and the policy checked (`s3::post_policy`), all before
//! the file is read, so an unauthenticated form costs no more than that much memory. Then
//! the rest of the body is read (the whole form at most [`POST_FORM_BYTES_MAX`]), the
//! file's length checked against the policy, and the file sealed, in memory, and stored
//! with one backend PUT of known length. A form that fails any check stores nothing.
//!
//! Why in memory: the file's length is known only once its closing boundary is found, and
//! the backend PUT needs the sealed length before its first byte. Forms are small (browser
//! forms carry images and documents); larger uploads use PutObject or multipart uploads.
//! The limit is documented in docs/operations.md (*Clients*).

use super::put::{PutSealing, UploadHeaders, check_upload_headers};
use crate::envelope::ObjectName;
use crate::envelope::SegmentCipher;
use crate::envelope::layout::stored_len;
use crate::envelope::objmeta;
use crate::envelope::write_plan::write_segments;
use crate::http::{RequestHead, ResponseHead};
use crate::s3::post_answer::{self, Stored};
use crate::s3::post_form::{self, Form, FormHead};
use crate::s3::post_policy::{self, Submitted};
use crate::s3::{Address, KEY_BYTES_MAX, Query, S3Code, S3Error, S3Op, Style};
use crate::serve::body::send_continue;
use crate::serve::io::Conn;
use crate::serve::respond::{forward_error, push_sse};
use crate::serve::{Core, Failure, Outcome, Request, backend_path, write_response};
use crate::sigv4::{self, AuthMethod, PayloadMode, PostAuth, Secret, Verified};

/// Largest file a form may upload: the file is sealed in memory (see the module
/// documentation).
pub const POST_FILE_BYTES_MAX: u64 = 5 * 1024 * 1024;
/// Most bytes of a form besides its file (its fields, part heads and boundaries).
pub const POST_FORM_OVERHEAD_BYTES_MAX: u64 = 64 * 1024;
/// Largest request body of a form upload.
pub const POST_FORM_BYTES_MAX: u64 = POST_FILE_BYTES_MAX + POST_FORM_OVERHEAD_BYTES_MAX;
const _: () = assert!(POST_FORM_BYTES_MAX <= usize::MAX as u64);

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
        "Form uploads through Twofold are limited to {POST_FILE_BYTES_MAX} bytes of file \
         ({POST_FORM_BYTES_MAX} bytes of form); use PutObject or a multipart upload"
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
    let body = read_body(conn, prefix, len).await?;
    let form = post_form::parse(&body, &boundary).map_err(|e| Failure::keep(malformed(&e)))?;
    checked.check_file(form.file.data.len() as u64)?;
    let ctx = Request {
        core: req.core,
        head: &head,
        address: &address,
        query: req.query,
        verified: &verified,
        rid: req.rid,
    };
    store(&ctx, conn, &form).await
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

/// Seals the form's file with fresh keys, stores it with one backend PUT, and answers.
async fn store(ctx: &Request<'_>, conn: &mut Conn, form: &Form<'_>) -> Result<Outcome, Failure> {
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
    let sealed = seal_in_memory(&sealing.cipher, form.file.data)?;
    let path = backend_path(Some(bucket), Some(key));
    let (resp, resp_body) = ctx
        .core
        .backend
        .simple("PUT", &path, None, headers, sealed)
        .await?;
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
    let answer = post_answer::answer(&form.fields, &stored);
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

/// Seals a whole file (at most [`POST_FILE_BYTES_MAX`]) segment by segment into one buffer
/// of its stored length.
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
