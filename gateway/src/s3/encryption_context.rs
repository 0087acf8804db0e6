//! `x-amz-server-side-encryption-context`: the KMS encryption context a client attaches to
//! an object (base64 of a JSON object whose values are strings), checked as S3 checks it.
//! The gateway seals it in the object's metadata record, which binds it to the object, and
//! answers it back. Pure.

use super::S3Error;
use base64::Engine;

/// The request and response header.
pub const HEADER: &str = "x-amz-server-side-encryption-context";
/// Longest context, in characters of its base64 form (it is sealed in the object's
/// metadata, which backends limit).
pub const ENCRYPTION_CONTEXT_LEN_MAX: usize = 1024;

/// Checks a context header's value: at most [`ENCRYPTION_CONTEXT_LEN_MAX`] characters of
/// base64 of a JSON object of string values; 400 `InvalidArgument` otherwise.
pub fn check(value: &[u8]) -> Result<(), S3Error> {
    let invalid = || {
        S3Error::invalid_argument(
            "The encryption context must be base64 of a JSON object whose values are strings, \
             at most 1024 characters",
        )
    };
    if value.is_empty() || value.len() > ENCRYPTION_CONTEXT_LEN_MAX {
        return Err(invalid());
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| invalid())?;
    let parsed: serde_json::Value = serde_json::from_slice(&json).map_err(|_| invalid())?;
    match parsed.as_object() {
        Some(map) if map.values().all(serde_json::Value::is_string) => Ok(()),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(s)
            .into_bytes()
    }

    #[test]
    fn only_base64_of_a_json_object_of_strings_passes() {
        assert!(check(&b64(r#"{"project":"apollo","team":"ops"}"#)).is_ok());
        assert!(check(&b64("{}")).is_ok());
        for bad in [
            b64(r#"{"n":1}"#),
            b64(r#"["a"]"#),
            b64("not json"),
            b"%%%".to_vec(),
            Vec::new(),
            b64(&format!(r#"{{"k":"{}"}}"#, "x".repeat(800))),
        ] {
            assert_eq!(check(&bad).unwrap_err().status, 400);
        }
    }
}
