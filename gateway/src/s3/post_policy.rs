//! The POST policy of a browser-form upload ("Creating a POST policy"): a base64 JSON
//! document the form's signature covers, whose conditions every form field must meet.
//!
//! ```text
//! { "expiration": "2030-01-01T12:00:00.000Z",
//!   "conditions": [
//!     {"bucket": "b"},                          exact match (names case-insensitive)
//!     ["eq", "$key", "uploads/a.txt"],          exact match
//!     ["starts-with", "$key", "uploads/"],      prefix ("" matches anything)
//!     ["content-length-range", 1, 1048576] ] }  the file's size, in bytes, both ends included
//! ```
//!
//! [`check`] refuses, as S3 does: a policy past its `expiration` (AccessDenied, "Invalid
//! according to Policy: Policy expired."), a condition a field does not meet (AccessDenied,
//! "Policy Condition failed"), a file outside `content-length-range` (EntityTooSmall /
//! EntityTooLarge), and a form field no condition names (AccessDenied, "Extra input fields"),
//! save those S3 exempts ([`EXEMPT_FIELDS`] and names starting with `x-ignore-`). A field a
//! condition names but the form lacks counts as empty.

use super::{S3Code, S3Error};
use base64::Engine;

/// Longest policy document, decoded (S3 bounds the form's fields to 20 KiB).
pub const POLICY_BYTES_MAX: usize = 20 * 1024;
/// Most conditions in one policy.
pub const POLICY_CONDITIONS_MAX: usize = 64;
/// Form fields no condition needs to name.
pub const EXEMPT_FIELDS: &[&str] = &["x-amz-signature", "file", "policy"];
/// Prefix of form fields no condition needs to name.
pub const EXEMPT_PREFIX: &str = "x-ignore-";

/// One condition of a policy. Field names are lower-case, without `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The field's value is exactly this.
    Eq {
        /// The field.
        field: String,
        /// Its value.
        value: String,
    },
    /// The field's value starts with this.
    StartsWith {
        /// The field.
        field: String,
        /// The prefix.
        prefix: String,
    },
    /// The file is `min..=max` bytes long.
    LengthRange {
        /// Fewest bytes.
        min: u64,
        /// Most bytes.
        max: u64,
    },
}

/// A decoded policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// When it expires, in seconds since the Unix epoch.
    pub expiration: u64,
    /// Its conditions, in order.
    pub conditions: Vec<Condition>,
}

/// Why a policy or a form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not base64, not JSON, or not a policy document.
    #[error("Invalid Policy: {0}")]
    Invalid(String),
    /// Past its expiration.
    #[error("Invalid according to Policy: Policy expired.")]
    Expired,
    /// A field does not meet a condition.
    #[error("Invalid according to Policy: Policy Condition failed: {0}")]
    Failed(String),
    /// A form field no condition names.
    #[error("Invalid according to Policy: Extra input fields: {0}")]
    Extra(String),
    /// The file is shorter than `content-length-range` allows.
    #[error("Your proposed upload is smaller than the minimum allowed size")]
    TooSmall,
    /// The file is longer than `content-length-range` allows.
    #[error("Your proposed upload exceeds the maximum allowed size")]
    TooLarge,
}

impl From<PolicyError> for S3Error {
    fn from(e: PolicyError) -> Self {
        let (status, code) = match e {
            PolicyError::Invalid(_) => (400, S3Code::InvalidPolicyDocument),
            PolicyError::Expired | PolicyError::Failed(_) | PolicyError::Extra(_) => {
                (403, S3Code::AccessDenied)
            }
            PolicyError::TooSmall => (400, S3Code::EntityTooSmall),
            PolicyError::TooLarge => (400, S3Code::EntityTooLarge),
        };
        S3Error::new(status, code, e.to_string())
    }
}

fn invalid(m: impl Into<String>) -> PolicyError {
    PolicyError::Invalid(m.into())
}

/// Decodes a form's `policy` field (base64 of the JSON document).
pub fn decode(policy_b64: &str) -> Result<Policy, PolicyError> {
    let json = base64::engine::general_purpose::STANDARD
        .decode(policy_b64.trim())
        .map_err(|_| invalid("the policy is not base64"))?;
    if json.len() > POLICY_BYTES_MAX {
        return Err(invalid("the policy document is too large"));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&json).map_err(|_| invalid("the policy is not JSON"))?;
    let expiration = doc
        .get("expiration")
        .ok_or_else(|| invalid("Policy missing expiration."))?
        .as_str()
        .and_then(parse_expiration)
        .ok_or_else(|| invalid("Invalid 'expiration' value."))?;
    let list = doc
        .get("conditions")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| invalid("Policy missing conditions."))?;
    if list.len() > POLICY_CONDITIONS_MAX {
        return Err(invalid("the policy has too many conditions"));
    }
    let conditions = list.iter().map(condition).collect::<Result<_, _>>()?;
    Ok(Policy {
        expiration,
        conditions,
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`, in seconds since the epoch.
fn parse_expiration(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let s = s.split_once('.').map_or(s, |(whole, frac)| {
        if frac.bytes().all(|b| b.is_ascii_digit()) {
            whole
        } else {
            ""
        }
    });
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let compact: String = s.chars().filter(|c| *c != '-' && *c != ':').collect();
    crate::sigv4::parse_amz_date_secs(&format!("{compact}Z"))
}

fn field_name(v: &serde_json::Value) -> Result<String, PolicyError> {
    v.as_str()
        .and_then(|s| s.strip_prefix('$'))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| invalid("a condition names no $field"))
}

fn text(v: &serde_json::Value) -> Result<String, PolicyError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid("a condition's value is not a string"))
}

fn number(v: &serde_json::Value) -> Result<u64, PolicyError> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| invalid("content-length-range needs two non-negative integers"))
}

fn condition(v: &serde_json::Value) -> Result<Condition, PolicyError> {
    if let Some(obj) = v.as_object() {
        let mut it = obj.iter();
        let (Some((name, value)), None) = (it.next(), it.next()) else {
            return Err(invalid("an exact-match condition must name one field"));
        };
        return Ok(Condition::Eq {
            field: name.to_ascii_lowercase(),
            value: text(value)?,
        });
    }
    let arr = v
        .as_array()
        .ok_or_else(|| invalid("a condition is neither an object nor an array"))?;
    let [op, a, b] = arr.as_slice() else {
        return Err(invalid("a condition array must have three elements"));
    };
    match op.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("eq") => Ok(Condition::Eq {
            field: field_name(a)?,
            value: text(b)?,
        }),
        Some("starts-with") => Ok(Condition::StartsWith {
            field: field_name(a)?,
            prefix: text(b)?,
        }),
        Some("content-length-range") => {
            let (min, max) = (number(a)?, number(b)?);
            if min > max {
                return Err(invalid(
                    "content-length-range has its minimum over its maximum",
                ));
            }
            Ok(Condition::LengthRange { min, max })
        }
        _ => Err(invalid("unknown condition operator")),
    }
}

/// What a form is checked against its policy with.
#[derive(Debug, Clone, Copy)]
pub struct Submitted<'a> {
    /// The form's fields before `file`: lower-case names, values as sent, except `key`,
    /// whose `${filename}` is already replaced.
    pub fields: &'a [(String, String)],
    /// The bucket the form was posted to.
    pub bucket: &'a str,
    /// The file's length in bytes; `None` before the file is read, which leaves
    /// `content-length-range` unchecked (the form's signature and other conditions can be
    /// checked before its file is read).
    pub file_len: Option<u64>,
    /// Now, in seconds since the epoch.
    pub now: u64,
}

/// Checks a form against its policy (see the module documentation).
pub fn check(policy: &Policy, form: &Submitted<'_>) -> Result<(), PolicyError> {
    if form.now >= policy.expiration {
        return Err(PolicyError::Expired);
    }
    let value = |field: &str| -> &str {
        if field == "bucket" {
            return form.bucket;
        }
        form.fields
            .iter()
            .find(|(n, _)| n == field)
            .map_or("", |(_, v)| v.as_str())
    };
    for c in &policy.conditions {
        match c {
            Condition::Eq { field, value: want } if value(field) != want => {
                return Err(PolicyError::Failed(format!(
                    "[\"eq\", \"${field}\", \"{want}\"]"
                )));
            }
            Condition::StartsWith { field, prefix }
                if !value(field).starts_with(prefix.as_str()) =>
            {
                return Err(PolicyError::Failed(format!(
                    "[\"starts-with\", \"${field}\", \"{prefix}\"]"
                )));
            }
            Condition::LengthRange { min, .. } if form.file_len.is_some_and(|n| n < *min) => {
                return Err(PolicyError::TooSmall);
            }
            Condition::LengthRange { max, .. } if form.file_len.is_some_and(|n| n > *max) => {
                return Err(PolicyError::TooLarge);
            }
            _ => {}
        }
    }
    let named = |f: &str| {
        policy.conditions.iter().any(|c| match c {
            Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => field == f,
            Condition::LengthRange { .. } => false,
        })
    };
    let extra: Vec<&str> = form
        .fields
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !EXEMPT_FIELDS.contains(n) && !n.starts_with(EXEMPT_PREFIX) && !named(n))
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(PolicyError::Extra(extra.join(", ")))
    }
}

/// Encodes a policy document for a form, for tests: base64 of the JSON.
pub fn encode(json: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn policy(conditions: &str) -> Policy {
        decode(&encode(&format!(
            r#"{{"expiration": "2030-01-01T00:00:00.000Z", "conditions": [{conditions}]}}"#
        )))
        .unwrap()
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn run(p: &Policy, f: &[(String, String)], len: u64) -> Result<(), PolicyError> {
        check(
            p,
            &Submitted {
                fields: f,
                bucket: "b",
                file_len: Some(len),
                now: NOW,
            },
        )
    }

    #[test]
    fn a_form_that_meets_every_condition_passes() {
        let p = policy(
            r#"{"bucket": "b"}, ["starts-with", "$key", "up/"], {"Content-Type": "text/plain"},
               ["eq", "$x-amz-meta-a", "1"], ["content-length-range", 1, 10],
               ["starts-with", "$x-amz-meta-any", ""]"#,
        );
        let f = fields(&[
            ("key", "up/a"),
            ("content-type", "text/plain"),
            ("x-amz-meta-a", "1"),
            ("x-amz-meta-any", "whatever"),
            ("policy", "…"),
            ("x-amz-signature", "…"),
            ("x-ignore-me", "…"),
        ]);
        assert_eq!(run(&p, &f, 1), Ok(()));
        assert_eq!(run(&p, &f, 10), Ok(()));
    }

    #[test]
    fn each_broken_condition_is_refused_with_s3s_error() {
        let p = policy(
            r#"{"bucket": "b"}, ["starts-with", "$key", "up/"], ["eq", "$acl", "private"],
               ["content-length-range", 2, 5]"#,
        );
        let ok = fields(&[("key", "up/a"), ("acl", "private")]);
        assert_eq!(run(&p, &ok, 3), Ok(()));
        // Before the file is read, its length is not checked; everything else is.
        let before = |f: &[(String, String)]| {
            check(
                &p,
                &Submitted {
                    fields: f,
                    bucket: "b",
                    file_len: None,
                    now: NOW,
                },
            )
        };
        assert_eq!(before(&ok), Ok(()));
        assert!(before(&fields(&[("key", "down/a"), ("acl", "private")])).is_err());
        let code = |r: Result<(), PolicyError>| S3Error::from(r.unwrap_err()).code;
        assert_eq!(
            code(run(
                &p,
                &fields(&[("key", "down/a"), ("acl", "private")]),
                3
            )),
            S3Code::AccessDenied
        );
        assert_eq!(
            code(run(
                &p,
                &fields(&[("key", "up/a"), ("acl", "public-read")]),
                3
            )),
            S3Code::AccessDenied
        );
        assert_eq!(
            code(run(&p, &fields(&[("key", "up/a")]), 3)),
            S3Code::AccessDenied
        );
        assert_eq!(code(run(&p, &ok, 1)), S3Code::EntityTooSmall);
        assert_eq!(code(run(&p, &ok, 6)), S3Code::EntityTooLarge);
        let extra = fields(&[
            ("key", "up/a"),
            ("acl", "private"),
            ("x-amz-meta-sneaky", "1"),
        ]);
        assert_eq!(
            run(&p, &extra, 3),
            Err(PolicyError::Extra("x-amz-meta-sneaky".into()))
        );
        let wrong_bucket = check(
            &p,
            &Submitted {
                fields: &ok,
                bucket: "other",
                file_len: Some(3),
                now: NOW,
            },
        );
        assert!(matches!(wrong_bucket, Err(PolicyError::Failed(_))));
        let later = 1_893_456_000; // 2030-01-01T00:00:00Z
        let expired = check(
            &p,
            &Submitted {
                fields: &ok,
                bucket: "b",
                file_len: Some(3),
                now: later,
            },
        );
        assert_eq!(expired, Err(PolicyError::Expired));
        assert_eq!(S3Error::from(PolicyError::Expired).status, 403);
    }

    #[test]
    fn malformed_policies_are_invalid_documents() {
        for json in [
            r#"{"conditions": []}"#,
            r#"{"expiration": "tomorrow", "conditions": []}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z"}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["eq", "key", "a"]]}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["gt", "$key", "a"]]}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [{"a": "1", "b": "2"}]}"#,
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 5, 1]]}"#,
            "not json",
        ] {
            let e = decode(&encode(json)).unwrap_err();
            assert_eq!(
                S3Error::from(e).code,
                S3Code::InvalidPolicyDocument,
                "{json}"
            );
        }
        assert!(decode("!!!").is_err());
        // boto3's form of the expiration (no fraction) and numbers as strings.
        let p = decode(&encode(
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", "1", "2"]]}"#,
        ))
        .unwrap();
        assert_eq!(p.expiration, 1_893_456_000);
        assert_eq!(
            p.conditions,
            vec![Condition::LengthRange { min: 1, max: 2 }]
        );
    }

    proptest! {
        #[test]
        fn starts_with_holds_exactly_for_values_with_the_prefix(prefix in "[a-z/]{0,6}", value in "[a-z/]{0,8}") {
            let p = policy(&format!(r#"["starts-with", "$key", "{prefix}"]"#));
            let r = run(&p, &fields(&[("key", &value)]), 0);
            prop_assert_eq!(r.is_ok(), value.starts_with(&prefix));
        }

        #[test]
        fn length_range_holds_exactly_inside_its_bounds(min in 0u64..100, span in 0u64..100, len in 0u64..300) {
            let p = policy(&format!(r#"["content-length-range", {min}, {}]"#, min + span));
            prop_assert_eq!(run(&p, &[], len).is_ok(), (min..=min + span).contains(&len));
        }
    }
}
