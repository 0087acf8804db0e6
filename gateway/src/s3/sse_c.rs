//! SSE-C request headers: a client's own AES-256 key, sent with every request about the
//! object (`x-amz-server-side-encryption-customer-algorithm`, `-customer-key`,
//! `-customer-key-MD5`; for the source of a copy the same names after
//! `x-amz-copy-source-`), checked as S3 checks them. Pure: the key is handed on in a
//! zeroising buffer and never printed.

use super::S3Error;
use base64::Engine;
use zeroize::Zeroizing;

/// Length of an SSE-C key (AES256).
pub const CUSTOMER_KEY_LEN_BYTES: usize = 32;

/// The only algorithm SSE-C has.
pub const SSE_C_ALGORITHM: &str = "AES256";
/// Response header naming the algorithm.
pub const ALGORITHM_HEADER: &str = "x-amz-server-side-encryption-customer-algorithm";
/// Response header echoing the key's MD5 (base64).
pub const KEY_MD5_HEADER: &str = "x-amz-server-side-encryption-customer-key-md5";

/// Which of a request's SSE-C header sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The object the request writes or reads.
    Object,
    /// The source of a copy (`x-amz-copy-source-server-side-encryption-customer-*`).
    CopySource,
}

impl Role {
    fn prefix(self) -> &'static str {
        match self {
            Role::Object => "x-amz-server-side-encryption-customer-",
            Role::CopySource => "x-amz-copy-source-server-side-encryption-customer-",
        }
    }
}

/// A checked SSE-C key and the MD5 the client sent for it (echoed in answers).
#[derive(Clone)]
pub struct SseC {
    /// The key.
    pub key: Zeroizing<[u8; CUSTOMER_KEY_LEN_BYTES]>,
    /// Its MD5, base64, as sent (and checked).
    pub key_md5: String,
}

impl std::fmt::Debug for SseC {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseC")
            .field("key_md5", &self.key_md5)
            .finish_non_exhaustive()
    }
}

/// The SSE-C key of `role` among `headers` (names in lower case): `None` when none of its
/// three headers is sent; 400 `InvalidArgument` when only some are, the algorithm is not
/// AES256, the key is not 32 bytes of base64, or its MD5 is not the one sent.
pub fn parse(headers: &[(String, Vec<u8>)], role: Role) -> Result<Option<SseC>, S3Error> {
    let get = |suffix: &str| {
        let name = format!("{}{suffix}", role.prefix());
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_owned())
    };
    let (algorithm, key, md5) = (get("algorithm"), get("key"), get("key-md5"));
    let (algorithm, key, md5) = match (algorithm, key, md5) {
        (None, None, None) => return Ok(None),
        (Some(a), Some(k), Some(m)) => (a, k, m),
        (None, ..) => {
            return Err(S3Error::invalid_argument(
                "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
            ));
        }
        (_, None, _) => {
            return Err(S3Error::invalid_argument(
                "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.",
            ));
        }
        (_, _, None) => {
            return Err(S3Error::invalid_argument(
                "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.",
            ));
        }
    };
    if algorithm != SSE_C_ALGORITHM {
        return Err(S3Error::invalid_argument(
            "The encryption algorithm specified is not valid: SSE-C takes AES256.",
        ));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = Zeroizing::new(b64.decode(key.as_bytes()).unwrap_or_default());
    let mut key = Zeroizing::new([0u8; CUSTOMER_KEY_LEN_BYTES]);
    if bytes.len() != CUSTOMER_KEY_LEN_BYTES {
        return Err(S3Error::invalid_argument(
            "The secret key was invalid for the specified algorithm.",
        ));
    }
    key.copy_from_slice(&bytes);
    let sent = b64.decode(md5.as_bytes()).unwrap_or_default();
    let computed = twofold_md5::digest(key.as_slice());
    if sent.as_slice() != computed.as_slice() {
        return Err(S3Error::invalid_argument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    Ok(Some(SseC {
        key,
        key_md5: b64.encode(computed),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(
        role: Role,
        alg: Option<&str>,
        key: Option<&[u8]>,
        md5: Option<&str>,
    ) -> Vec<(String, Vec<u8>)> {
        let p = role.prefix();
        let mut out = vec![("host".to_owned(), b"x".to_vec())];
        if let Some(a) = alg {
            out.push((format!("{p}algorithm"), a.as_bytes().to_vec()));
        }
        if let Some(k) = key {
            let b64 = base64::engine::general_purpose::STANDARD.encode(k);
            out.push((format!("{p}key"), b64.into_bytes()));
        }
        if let Some(m) = md5 {
            out.push((format!("{p}key-md5"), m.as_bytes().to_vec()));
        }
        out
    }

    fn md5_of(k: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(twofold_md5::digest(k))
    }

    #[test]
    fn a_whole_set_gives_the_key_and_its_md5() {
        let key = [7u8; 32];
        for role in [Role::Object, Role::CopySource] {
            let got = parse(
                &headers(role, Some("AES256"), Some(&key), Some(&md5_of(&key))),
                role,
            )
            .unwrap()
            .unwrap();
            assert_eq!(*got.key, key);
            assert_eq!(got.key_md5, md5_of(&key));
            // The other role's headers are not this role's.
            let other = match role {
                Role::Object => Role::CopySource,
                Role::CopySource => Role::Object,
            };
            assert!(
                parse(
                    &headers(role, Some("AES256"), Some(&key), Some(&md5_of(&key))),
                    other
                )
                .unwrap()
                .is_none()
            );
        }
        assert!(
            parse(&headers(Role::Object, None, None, None), Role::Object)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn every_broken_set_is_refused() {
        let key = [7u8; 32];
        let good = md5_of(&key);
        let cases = [
            headers(Role::Object, None, Some(&key), Some(&good)),
            headers(Role::Object, Some("AES256"), None, Some(&good)),
            headers(Role::Object, Some("AES256"), Some(&key), None),
            headers(Role::Object, Some("aws:kms"), Some(&key), Some(&good)),
            headers(
                Role::Object,
                Some("AES256"),
                Some(&[7u8; 16]),
                Some(&md5_of(&[7u8; 16])),
            ),
            headers(
                Role::Object,
                Some("AES256"),
                Some(&key),
                Some(&md5_of(&[8u8; 32])),
            ),
            headers(
                Role::Object,
                Some("AES256"),
                Some(&key),
                Some("not base64!"),
            ),
        ];
        for (i, h) in cases.iter().enumerate() {
            let e = parse(h, Role::Object).unwrap_err();
            assert_eq!(e.status, 400, "case {i}");
        }
        let mut not_b64 = headers(Role::Object, Some("AES256"), None, Some(&good));
        not_b64.push((
            "x-amz-server-side-encryption-customer-key".into(),
            b"%%%".to_vec(),
        ));
        assert!(parse(&not_b64, Role::Object).is_err());
    }
}
