//! The body of a browser-form upload (POST Object): `multipart/form-data` (RFC 7578) with
//! the boundary of its `Content-Type`. Sans-IO and whole-buffer: the caller holds the body
//! (at most `serve::object::post::POST_BODY_BYTES_MAX`), this module finds its fields.
//!
//! ```text
//! [preamble CRLF]
//! --<boundary> CRLF
//! Content-Disposition: form-data; name="<field>"[; filename="<name>"] CRLF
//! [Content-Type: <type> CRLF]
//! CRLF
//! <value> CRLF --<boundary> ...     ("--<boundary>--" after the last part)
//! ```
//!
//! Field names are case-insensitive (kept lower-case here). The `file` field must be the
//! last that counts: S3 ignores every field after it, and so does this parser, which stops
//! at the delimiter that ends the file's bytes. A form without a `file` field, a field
//! repeated, a part without a name, or a field value that is not UTF-8 is refused.

/// Longest boundary (RFC 2046 §5.1.1).
pub const FORM_BOUNDARY_BYTES_MAX: usize = 70;
/// Most fields before `file` (S3 knows about twenty; a form needs fewer).
pub const FORM_FIELDS_MAX: usize = 64;
/// Longest value of a field other than `file` (the policy is the longest: S3 limits the
/// form's fields to 20 KiB all together).
pub const FORM_FIELD_BYTES_MAX: usize = 20 * 1024;
/// Longest header section of one part.
pub const FORM_PART_HEAD_BYTES_MAX: usize = 4 * 1024;

/// The form field that carries the object's bytes.
pub const FILE_FIELD: &str = "file";

/// A parsed form: its fields before `file`, then the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form<'a> {
    /// `(lower-case name, value)` in the order sent.
    pub fields: Vec<(String, String)>,
    /// The `file` field.
    pub file: FormFile<'a>,
}

impl Form<'_> {
    /// The value of a field, by its lower-case name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The `file` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormFile<'a> {
    /// Its `filename` parameter (empty when not sent).
    pub filename: String,
    /// Its part's `Content-Type`, when sent.
    pub content_type: Option<String>,
    /// Its bytes.
    pub data: &'a [u8],
}

/// Why a form body was refused. Every variant is the client's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// The Content-Type is not `multipart/form-data` with a usable boundary.
    #[error("the Content-Type must be multipart/form-data with a boundary of 1 to 70 characters")]
    Boundary,
    /// The body does not follow the multipart framing.
    #[error("the multipart/form-data body is malformed: {0}")]
    Malformed(&'static str),
    /// No `file` field.
    #[error("POST requires exactly one file upload per request")]
    NoFile,
    /// A field came twice.
    #[error("the form field '{0}' is given more than once")]
    Repeated(String),
    /// More fields, or a longer field or part head, than the limits allow.
    #[error("the form has too many fields, or a field or part head that is too long")]
    TooLarge,
}

/// The boundary of a `multipart/form-data` Content-Type value.
pub fn boundary(content_type: &str) -> Result<String, FormError> {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return Err(FormError::Boundary);
    }
    let b = parts
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| unquote(v.trim()))
        .ok_or(FormError::Boundary)?;
    if b.is_empty() || b.len() > FORM_BOUNDARY_BYTES_MAX || b.contains(['\r', '\n']) {
        return Err(FormError::Boundary);
    }
    Ok(b.to_owned())
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The fields before `file` and the file's part head: what a form says before its file's
/// bytes, read from the beginning of its body (`prefix`), which need not hold the file's
/// bytes nor its end. Lets the form be authenticated before its file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormHead {
    /// `(lower-case name, value)` in the order sent.
    pub fields: Vec<(String, String)>,
    /// The file's `filename` parameter (empty when not sent).
    pub filename: String,
    /// The file's part `Content-Type`, when sent.
    pub content_type: Option<String>,
}

impl FormHead {
    /// The value of a field, by its lower-case name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the fields before `file` from the beginning of a form body (see [`FormHead`]).
pub fn parse_head(prefix: &[u8], boundary: &str) -> Result<FormHead, FormError> {
    walk(prefix, boundary).map(|(head, _)| head)
}

/// [`parse_head`], and the offset in `prefix` where the file's data begins.
pub fn parse_head_at(prefix: &[u8], boundary: &str) -> Result<(FormHead, usize), FormError> {
    walk(prefix, boundary)
}

/// Finds a form's delimiter (CRLF, `--`, the boundary) in a file that arrives in pieces: a
/// file may not hold it (RFC 2046), so a streamed file that does is a form with more parts
/// after it, which the stream cannot take.
#[derive(Debug)]
pub struct DelimiterScan {
    finder: memchr::memmem::Finder<'static>,
    /// The last bytes seen, one fewer than the delimiter, for a delimiter cut in two.
    carry: Vec<u8>,
}

impl DelimiterScan {
    /// A scan for the delimiter of `boundary`.
    pub fn new(boundary: &str) -> Self {
        let delimiter = format!("\r\n--{boundary}").into_bytes();
        Self {
            finder: memchr::memmem::Finder::new(&delimiter).into_owned(),
            carry: Vec::with_capacity(delimiter.len()),
        }
    }

    /// Whether the delimiter ends in `piece`, counting the pieces before it.
    pub fn found_in(&mut self, piece: &[u8]) -> bool {
        let keep = self.finder.needle().len() - 1;
        let mut joint = std::mem::take(&mut self.carry);
        joint.extend_from_slice(&piece[..piece.len().min(keep)]);
        if self.finder.find(&joint).is_some() || self.finder.find(piece).is_some() {
            return true;
        }
        if piece.len() >= keep {
            joint.clear();
            joint.extend_from_slice(&piece[piece.len() - keep..]);
        } else {
            let cut = joint.len().saturating_sub(keep);
            joint.drain(..cut);
        }
        self.carry = joint;
        false
    }
}

/// The bytes that end a form whose file is its last part, as browsers, curl and the SDKs'
/// form encoders send them: CRLF, the closing delimiter, CRLF.
pub fn closing(boundary: &str) -> Vec<u8> {
    format!("\r\n--{boundary}--\r\n").into_bytes()
}

/// Parses a whole form body: the fields up to and including `file`.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Form<'a>, FormError> {
    let (head, file_at) = walk(body, boundary)?;
    let delimiter = format!("\r\n--{boundary}");
    let len = find(&body[file_at..], delimiter.as_bytes())
        .ok_or(FormError::Malformed("a part does not end with a boundary"))?;
    let file = FormFile {
        filename: head.filename,
        content_type: head.content_type,
        data: &body[file_at..file_at + len],
    };
    Ok(Form {
        fields: head.fields,
        file,
    })
}

/// Walks a form body up to the file's bytes: the form's head, and where the file's bytes
/// begin.
fn walk(body: &[u8], boundary: &str) -> Result<(FormHead, usize), FormError> {
    // Every delimiter but the first is preceded by CRLF; so is the first after a preamble.
    let delimiter = format!("\r\n--{boundary}");
    let first = &delimiter.as_bytes()[2..];
    let mut at = if body.starts_with(first) {
        first.len()
    } else {
        find(body, delimiter.as_bytes())
            .map(|i| i + delimiter.len())
            .ok_or(FormError::Malformed("no opening boundary"))?
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Err(FormError::NoFile);
        }
        let rest = rest
            .strip_prefix(b"\r\n")
            .ok_or(FormError::Malformed("a boundary is not followed by CRLF"))?;
        let part_at = body.len() - rest.len();
        let head_end = find(
            &rest[..rest.len().min(FORM_PART_HEAD_BYTES_MAX + 4)],
            b"\r\n\r\n",
        )
        .ok_or(FormError::Malformed("a part's header section does not end"))?;
        let head = PartHead::parse(&rest[..head_end])?;
        let value_at = part_at + head_end + 4;
        if head.name == FILE_FIELD {
            let form = FormHead {
                fields,
                filename: head.filename.unwrap_or_default(),
                content_type: head.content_type,
            };
            return Ok((form, value_at));
        }
        let value_len = find(&body[value_at..], delimiter.as_bytes())
            .ok_or(FormError::Malformed("a part does not end with a boundary"))?;
        push_field(
            &mut fields,
            head.name,
            &body[value_at..value_at + value_len],
        )?;
        at = value_at + value_len + delimiter.len();
    }
}

fn push_field(
    fields: &mut Vec<(String, String)>,
    name: String,
    value: &[u8],
) -> Result<(), FormError> {
    if fields.len() >= FORM_FIELDS_MAX || value.len() > FORM_FIELD_BYTES_MAX {
        return Err(FormError::TooLarge);
    }
    if fields.iter().any(|(n, _)| *n == name) {
        return Err(FormError::Repeated(name));
    }
    let value = std::str::from_utf8(value)
        .map_err(|_| FormError::Malformed("a field's value is not UTF-8"))?;
    fields.push((name, value.to_owned()));
    Ok(())
}

/// What a part's header section says.
struct PartHead {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
}

impl PartHead {
    fn parse(raw: &[u8]) -> Result<PartHead, FormError> {
        let text = std::str::from_utf8(raw)
            .map_err(|_| FormError::Malformed("a part head is not UTF-8"))?;
        let mut disposition = None;
        let mut content_type = None;
        for line in text.split("\r\n") {
            let (n, v) = line
                .split_once(':')
                .ok_or(FormError::Malformed("a part header has no colon"))?;
            if n.trim().eq_ignore_ascii_case("content-disposition") {
                disposition = Some(v.trim());
            } else if n.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_owned());
            }
        }
        let disposition =
            disposition.ok_or(FormError::Malformed("a part has no Content-Disposition"))?;
        let (kind, params) = disposition.split_once(';').unwrap_or((disposition, ""));
        if !kind.trim().eq_ignore_ascii_case("form-data") {
            return Err(FormError::Malformed("a part is not form-data"));
        }
        let name = param(params, "name")
            .ok_or(FormError::Malformed("a part has no name"))?
            .to_ascii_lowercase();
        Ok(PartHead {
            name,
            filename: param(params, "filename").map(str::to_owned),
            content_type,
        })
    }
}

/// A parameter of a Content-Disposition (`name="v"` or `name=v`); quoted values may hold `;`.
fn param<'a>(mut params: &'a str, wanted: &str) -> Option<&'a str> {
    loop {
        params = params.trim_start_matches([';', ' ', '\t']);
        if params.is_empty() {
            return None;
        }
        let (name, rest) = params.split_once('=')?;
        let (value, rest) = match rest.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"')?;
                (&q[..end], &q[end + 1..])
            }
            None => rest.split_once(';').unwrap_or((rest, "")),
        };
        if name.trim().eq_ignore_ascii_case(wanted) {
            return Some(value.trim_end());
        }
        params = rest;
    }
}

/// Builds a form body the way a browser does, for tests: the fields, then `file` last.
pub fn encode(boundary: &str, fields: &[(&str, &str)], filename: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 256 * (fields.len() + 1));
    for (n, v) in fields {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(data);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delimiter_is_found_wherever_the_pieces_cut_it() {
        let file = b"abc\r\n--BOUNDARYxyz";
        for cut in 0..file.len() {
            let mut scan = DelimiterScan::new("BOUNDARY");
            let (a, b) = file.split_at(cut);
            assert!(scan.found_in(a) || scan.found_in(b), "cut at {cut}");
        }
        let mut byte_by_byte = DelimiterScan::new("BOUNDARY");
        assert!(file.iter().any(|b| byte_by_byte.found_in(&[*b])));
        let mut clean = DelimiterScan::new("BOUNDARY");
        for piece in [&b"abc\r\n--BOUND"[..], b"ARX", b"\r\n--", b"BOUNDAR", b""] {
            assert!(!clean.found_in(piece));
        }
    }
    use proptest::prelude::*;

    const B: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

    #[test]
    fn the_boundary_comes_from_the_content_type() {
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={B}")).as_deref(),
            Ok(B)
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=\"a b\"").as_deref(),
            Ok("a b")
        );
        assert_eq!(
            boundary("multipart/mixed; boundary=x"),
            Err(FormError::Boundary)
        );
        assert_eq!(boundary("multipart/form-data"), Err(FormError::Boundary));
        assert_eq!(
            boundary("multipart/form-data; boundary="),
            Err(FormError::Boundary)
        );
        let long = "x".repeat(FORM_BOUNDARY_BYTES_MAX + 1);
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={long}")),
            Err(FormError::Boundary)
        );
    }

    #[test]
    fn fields_before_the_file_are_read_and_later_ones_ignored() {
        let mut body = b"preamble\r\n".to_vec();
        body.extend(encode(
            B,
            &[("Key", "a/${filename}"), ("X-Amz-Meta-Colour", "blue")],
            "f.txt",
            b"hello\r\n--not-it",
        ));
        // A field after the file's closing delimiter is never looked at.
        let body = [
            &body[..body.len() - 4],
            b"\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\npublic\r\n--",
            B.as_bytes(),
            b"--\r\n",
        ]
        .concat();
        let form = parse(&body, B).unwrap();
        assert_eq!(form.get("key"), Some("a/${filename}"));
        assert_eq!(form.get("x-amz-meta-colour"), Some("blue"));
        assert_eq!(form.get("acl"), None);
        assert_eq!(form.file.filename, "f.txt");
        assert_eq!(
            form.file.content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(form.file.data, b"hello\r\n--not-it");
    }

    #[test]
    fn broken_forms_are_refused() {
        let no_file = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--{B}--\r\n"
        );
        assert_eq!(parse(no_file.as_bytes(), B), Err(FormError::NoFile));
        let twice = encode(B, &[("key", "a"), ("KEY", "b")], "f", b"x");
        assert_eq!(parse(&twice, B), Err(FormError::Repeated("key".into())));
        let cut = encode(B, &[("key", "a")], "f", b"x");
        assert!(matches!(
            parse(&cut[..cut.len() - 10], B),
            Err(FormError::Malformed(_))
        ));
        assert!(matches!(parse(b"nothing", B), Err(FormError::Malformed(_))));
        let unnamed = format!("--{B}\r\nContent-Disposition: form-data\r\n\r\nk\r\n--{B}--\r\n");
        assert!(matches!(
            parse(unnamed.as_bytes(), B),
            Err(FormError::Malformed(_))
        ));
        let big = "v".repeat(FORM_FIELD_BYTES_MAX + 1);
        assert_eq!(
            parse(&encode(B, &[("policy", &big)], "f", b""), B),
            Err(FormError::TooLarge)
        );
        let names: Vec<String> = (0..=FORM_FIELDS_MAX)
            .map(|i| format!("x-ignore-{i}"))
            .collect();
        let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        assert_eq!(
            parse(&encode(B, &many, "f", b""), B),
            Err(FormError::TooLarge)
        );
    }

    #[test]
    fn the_head_is_read_without_the_files_bytes() {
        let body = encode(
            B,
            &[("key", "k/${filename}"), ("policy", "p")],
            "a.png",
            &[7u8; 1000],
        );
        let cut = body.iter().position(|&b| b == 7).unwrap();
        let head = parse_head(&body[..cut], B).unwrap();
        assert_eq!(head.get("key"), Some("k/${filename}"));
        assert_eq!(head.filename, "a.png");
        assert_eq!(parse_head(&body, B), Ok(head));
        // A field cut short is not a head.
        let at_policy = body.windows(9).position(|w| w == b"name=\"pol").unwrap();
        assert!(parse_head(&body[..at_policy + 40], B).is_err());
    }

    proptest! {
        #[test]
        fn any_file_and_fields_come_back_as_encoded(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            value in "[ -~]{0,40}",
            filename in "[a-z0-9._-]{0,20}",
        ) {
            let body = encode(B, &[("key", "k"), ("x-amz-meta-v", &value)], &filename, &data);
            let form = parse(&body, B).unwrap();
            prop_assert_eq!(form.file.data, &data[..]);
            prop_assert_eq!(form.get("x-amz-meta-v"), Some(value.as_str()));
            prop_assert_eq!(form.file.filename, filename);
        }

        #[test]
        fn any_bytes_parse_or_are_refused_without_panic(
            body in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let _ = parse(&body, "b");
        }
    }
}
