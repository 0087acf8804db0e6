//! The signature of a browser-form upload (POST Object, "Authenticating requests in
//! browser-based uploads using POST (AWS Signature Version 4)"): the form carries its own
//! credentials instead of an `Authorization` header.
//!
//! ```text
//! x-amz-algorithm   AWS4-HMAC-SHA256
//! x-amz-credential  <access key id>/<YYYYMMDD>/<region>/s3/aws4_request
//! x-amz-date        YYYYMMDDTHHMMSSZ, on the credential's date
//! policy            base64 of the policy document (JSON)
//! x-amz-signature   lower-case hex of HMAC-SHA256(signing key, <policy as sent, base64>)
//! ```
//!
//! The signing key is the SigV4 key of the credential's date and region for `s3`. The time
//! is not held against the gateway's clock: the policy's `expiration` bounds the form's
//! life (`s3::post_policy`). Signatures are compared in constant time.

use super::key::{SigningKey, ct_eq, hex_string, parse_hex32};
use super::{AuthError, SERVICE, Secret};
use std::borrow::Cow;

/// The only algorithm a form may name.
pub const POST_ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The authentication fields of a form, as sent.
#[derive(Debug, Clone, Copy)]
pub struct PostAuth<'a> {
    /// `x-amz-algorithm`.
    pub algorithm: &'a str,
    /// `x-amz-credential`.
    pub credential: &'a str,
    /// `x-amz-date`.
    pub date: &'a str,
    /// `x-amz-signature`.
    pub signature: &'a str,
    /// `policy`, base64 as sent (what is signed).
    pub policy: &'a str,
}

fn invalid(message: &'static str) -> AuthError {
    AuthError::InvalidArgument(Cow::Borrowed(message))
}

/// Checks a form's signature; returns the access key id that signed it. `regions`: those
/// the gateway serves; `lookup`: the secret of an access key id it knows.
pub fn verify_post(
    auth: &PostAuth<'_>,
    regions: &[&str],
    lookup: &dyn Fn(&str) -> Option<Secret>,
) -> Result<String, AuthError> {
    if auth.algorithm != POST_ALGORITHM {
        return Err(invalid(
            "x-amz-algorithm must be AWS4-HMAC-SHA256 (the only POST signature supported)",
        ));
    }
    let parts: Vec<&str> = auth.credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(invalid(
            "x-amz-credential must be <key>/<YYYYMMDD>/<region>/s3/aws4_request",
        ));
    };
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("x-amz-credential has no valid date"));
    }
    if service != SERVICE || terminator != "aws4_request" {
        return Err(invalid("x-amz-credential must be for s3/aws4_request"));
    }
    if !regions.contains(&region) {
        return Err(AuthError::InvalidArgument(Cow::Owned(format!(
            "x-amz-credential is for the region '{region}', which this gateway does not serve"
        ))));
    }
    if super::time::parse_amz_date(auth.date.as_bytes()).is_none() || !auth.date.starts_with(date) {
        return Err(invalid(
            "x-amz-date must be YYYYMMDDTHHMMSSZ on the date of x-amz-credential",
        ));
    }
    let secret = lookup(access_key_id).ok_or(AuthError::InvalidAccessKeyId)?;
    let Some(given) = parse_hex32(auth.signature.as_bytes()) else {
        return Err(AuthError::signature_mismatch());
    };
    let expected =
        SigningKey::derive(&secret, date, region, SERVICE).tag(&[auth.policy.as_bytes()]);
    if ct_eq(&expected, &given) {
        Ok(access_key_id.to_owned())
    } else {
        Err(AuthError::signature_mismatch())
    }
}

/// The `x-amz-signature` of a base64 policy, for clients and tests.
pub fn sign_post_policy(secret: &Secret, date: &str, region: &str, policy_b64: &str) -> String {
    hex_string(&SigningKey::derive(secret, date, region, SERVICE).tag(&[policy_b64.as_bytes()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const POLICY: &str = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";

    fn auth<'a>(credential: &'a str, signature: &'a str) -> PostAuth<'a> {
        PostAuth {
            algorithm: POST_ALGORITHM,
            credential,
            date: "20151229T000000Z",
            signature,
            policy: POLICY,
        }
    }

    fn lookup(ak: &str) -> Option<Secret> {
        (ak == "AKIAIOSFODNN7EXAMPLE").then(|| Secret::new(SECRET))
    }

    /// The AWS documentation's example ("Example: Browser-based upload using HTTP POST
    /// (using AWS Signature Version 4)"): its policy and signature, byte for byte.
    #[test]
    fn the_aws_documentation_example_verifies() {
        let cred = "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request";
        let sig = "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e";
        assert_eq!(
            sign_post_policy(&Secret::new(SECRET), "20151229", "us-east-1", POLICY),
            sig
        );
        assert_eq!(
            verify_post(&auth(cred, sig), &["us-east-1"], &lookup).as_deref(),
            Ok("AKIAIOSFODNN7EXAMPLE")
        );
    }

    #[test]
    fn each_broken_field_is_refused() {
        let cred = "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request";
        let sig = "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e";
        let wrong = "9afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e";
        let code =
            |a: PostAuth<'_>| verify_post(&a, &["us-east-1"], &lookup).map_err(|e| e.s3_code());
        use crate::s3::S3Code as C;
        assert_eq!(code(auth(cred, wrong)), Err(C::SignatureDoesNotMatch));
        assert_eq!(code(auth(cred, "nothex")), Err(C::SignatureDoesNotMatch));
        let unknown = "AKIDUNKNOWN/20151229/us-east-1/s3/aws4_request";
        assert_eq!(code(auth(unknown, sig)), Err(C::InvalidAccessKeyId));
        let region = "AKIAIOSFODNN7EXAMPLE/20151229/eu-west-1/s3/aws4_request";
        assert_eq!(code(auth(region, sig)), Err(C::InvalidArgument));
        let other_day = "AKIAIOSFODNN7EXAMPLE/20151230/us-east-1/s3/aws4_request";
        assert_eq!(code(auth(other_day, sig)), Err(C::InvalidArgument));
        assert_eq!(
            code(auth("AKIAIOSFODNN7EXAMPLE", sig)),
            Err(C::InvalidArgument)
        );
        let service = "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/ec2/aws4_request";
        assert_eq!(code(auth(service, sig)), Err(C::InvalidArgument));
        let mut a = auth(cred, sig);
        a.algorithm = "AWS4-ECDSA-P256-SHA256";
        assert_eq!(code(a), Err(C::InvalidArgument));
        let mut a = auth(cred, sig);
        a.policy = "e30=";
        assert_eq!(code(a), Err(C::SignatureDoesNotMatch));
    }
}
