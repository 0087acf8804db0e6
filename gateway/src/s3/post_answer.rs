//! What a browser-form upload's fields become: the object headers of the PUT it is
//! sealed as ([`upload_headers`]), and the answer S3 gives once it is stored
//! ([`answer`]): a `303` to `success_action_redirect` with `bucket`, `key` and `etag` in
//! its query; else `success_action_status` `200`, `201` (with a `PostResponse` document)
//! or `204`; `204` by default and for any other value.

use super::xml;

/// Form fields passed on as the object headers of the same name.
pub const POST_HEADER_FIELDS: &[&str] = &[
    "cache-control",
    "content-type",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-storage-class",
    "x-amz-website-redirect-location",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
];

/// The object headers a form's fields ask for (names lower-case): [`POST_HEADER_FIELDS`],
/// user metadata (`x-amz-meta-*`), grants (`x-amz-grant-*`) and `acl` as `x-amz-acl`.
/// Other fields (the signature's, `key`, `success_action_*`, `x-ignore-*`) are not headers.
pub fn upload_headers(fields: &[(String, String)]) -> Vec<(String, Vec<u8>)> {
    fields
        .iter()
        .filter_map(|(n, v)| {
            let name = if n == "acl" {
                "x-amz-acl"
            } else if POST_HEADER_FIELDS.contains(&n.as_str())
                || n.starts_with("x-amz-meta-")
                || n.starts_with("x-amz-grant-")
            {
                n.as_str()
            } else {
                return None;
            };
            Some((name.to_owned(), v.as_bytes().to_vec()))
        })
        .collect()
}

/// The object a form stored, as its answer names it.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    /// The object's URL (`Location`).
    pub location: &'a str,
    /// Its bucket.
    pub bucket: &'a str,
    /// Its key.
    pub key: &'a str,
    /// Its ETag as the client sees it, quotes included.
    pub etag: &'a str,
}

/// The answer to a stored form: status, `Location` header (for a redirect), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `303`, `200`, `201` or `204`.
    pub status: u16,
    /// Where a `303` sends the browser.
    pub location: Option<String>,
    /// The `PostResponse` document of a `201`; empty otherwise.
    pub body: Vec<u8>,
}

/// The answer S3 gives a stored form whose fields are `fields` (see the module
/// documentation). A `success_action_redirect` that is no http(s) URL is ignored, as S3
/// ignores one it cannot use.
pub fn answer(fields: &[(String, String)], stored: &Stored<'_>) -> Answer {
    let field = |n: &str| fields.iter().find(|(f, _)| f == n).map(|(_, v)| v.as_str());
    let redirect = field("success_action_redirect")
        .or_else(|| field("redirect"))
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"));
    if let Some(url) = redirect {
        let sep = if url.contains('?') { '&' } else { '?' };
        let location = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            query_encode(stored.bucket),
            query_encode(stored.key),
            query_encode(stored.etag)
        );
        return Answer {
            status: 303,
            location: Some(location),
            body: Vec::new(),
        };
    }
    let status = match field("success_action_status") {
        Some("200") => 200,
        Some("201") => 201,
        _ => 204,
    };
    let body = if status == 201 {
        post_response(stored)
    } else {
        Vec::new()
    };
    Answer {
        status,
        location: None,
        body,
    }
}

/// The `PostResponse` document of a `201`.
fn post_response(stored: &Stored<'_>) -> Vec<u8> {
    let mut out = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse>".to_vec();
    for (tag, text) in [
        ("Location", stored.location),
        ("Bucket", stored.bucket),
        ("Key", stored.key),
        ("ETag", stored.etag),
    ] {
        out.extend_from_slice(format!("<{tag}>").as_bytes());
        xml::escape_into(text, &mut out);
        out.extend_from_slice(format!("</{tag}>").as_bytes());
    }
    out.extend_from_slice(b"</PostResponse>");
    out
}

/// Percent-encodes all but the unreserved characters, for a query value.
fn query_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    const STORED: Stored<'static> = Stored {
        location: "http://gw/b/a%20b",
        bucket: "b",
        key: "a b&c",
        etag: "\"e\"",
    };

    #[test]
    fn fields_become_headers_and_the_rest_is_left_out() {
        let h = upload_headers(&f(&[
            ("key", "k"),
            ("acl", "private"),
            ("content-type", "text/plain"),
            ("x-amz-meta-a", "1"),
            ("policy", "p"),
            ("success_action_status", "201"),
            ("x-ignore-z", "z"),
        ]));
        let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-amz-acl", "content-type", "x-amz-meta-a"]);
    }

    #[test]
    fn the_answer_follows_the_success_fields() {
        assert_eq!(answer(&[], &STORED).status, 204);
        assert_eq!(
            answer(&f(&[("success_action_status", "200")]), &STORED).status,
            200
        );
        assert_eq!(
            answer(&f(&[("success_action_status", "404")]), &STORED).status,
            204
        );
        let created = answer(&f(&[("success_action_status", "201")]), &STORED);
        assert_eq!(created.status, 201);
        let xml = String::from_utf8(created.body).unwrap();
        assert!(xml.contains("<Key>a b&amp;c</Key>"), "{xml}");
        assert!(xml.contains("<ETag>&quot;e&quot;</ETag>"), "{xml}");
        assert!(
            xml.contains("<Location>http://gw/b/a%20b</Location>"),
            "{xml}"
        );
        let redirect = answer(
            &f(&[
                ("success_action_redirect", "https://app/done?x=1"),
                ("success_action_status", "201"),
            ]),
            &STORED,
        );
        assert_eq!(redirect.status, 303);
        assert_eq!(
            redirect.location.as_deref(),
            Some("https://app/done?x=1&bucket=b&key=a%20b%26c&etag=%22e%22")
        );
        assert_eq!(
            answer(&f(&[("success_action_redirect", "javascript:x")]), &STORED).status,
            204
        );
    }
}
