//! Object keys a backend could resolve outside their bucket, refused before anything reaches
//! it (`docs/adr/0003-key-addressing.md`).
//!
//! S3 treats every key as an opaque string, but file-backed servers (s3s-fs, and others) join
//! `bucket` and `key` as paths: `bucket-a/../bucket-b/k` is then an object of `bucket-b`, and
//! a key beginning with `/` replaces the bucket altogether (`Path::join` with an absolute path).
//! Keys are refused, after percent-decoding, when they:
//!
//! - begin with `/` or `\`;
//! - have a segment that is `.` or `..`, segments split at `/` and at `\` (a Windows server
//!   takes both as separators).
//!
//! Any other use of `/` and `\` stays allowed (`a//b`, `a/`, `dir\file`, `.hidden`, `...`).
//! Key *prefixes* of listings (`prefix`, `start-after`, `marker`, ...; [`LISTING_KEY_PARAMS`])
//! follow the same rule except that a last segment of `.` is allowed: it is the start of
//! `.hidden` and resolves to the same folder, never out of it.

use super::{AddressError, Query};

/// Query parameters of listings that name keys or the start of keys.
pub const LISTING_KEY_PARAMS: &[&str] = &[
    "prefix",
    "start-after",
    "marker",
    "key-marker",
    "continuation-token",
];

/// Refuses a key that begins with a separator or has a `.` or `..` segment.
pub fn check_key(key: &str) -> Result<(), AddressError> {
    if key.starts_with(['/', '\\']) || key.split(['/', '\\']).any(is_dot_segment) {
        return Err(AddressError::DotSegment);
    }
    Ok(())
}

/// Refuses a key prefix as [`check_key`] does, but allows a last segment of `.`.
pub fn check_key_prefix(prefix: &str) -> Result<(), AddressError> {
    if prefix.starts_with(['/', '\\']) {
        return Err(AddressError::DotSegment);
    }
    let mut segments = prefix.split(['/', '\\']).peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if segment == ".." || (segment == "." && !last) {
            return Err(AddressError::DotSegment);
        }
    }
    Ok(())
}

/// Refuses a query whose [`LISTING_KEY_PARAMS`] break [`check_key_prefix`].
pub fn check_listing_query(query: &Query) -> Result<(), AddressError> {
    query
        .params()
        .iter()
        .filter(|(name, _)| LISTING_KEY_PARAMS.contains(&name.as_str()))
        .try_for_each(|(_, value)| check_key_prefix(value))
}

fn is_dot_segment(segment: &str) -> bool {
    segment == "." || segment == ".."
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dot_segments_and_leading_separators_are_refused() {
        for key in [
            ".", "..", "../b/k", "a/../b", "a/./b", "a/..", "a/.", "./a", "/a", "/", "//a", "\\a",
            "..\\b\\k", "a\\..\\b", "a\\.", "a/..\\b",
        ] {
            assert_eq!(check_key(key), Err(AddressError::DotSegment), "{key:?}");
        }
    }

    #[test]
    fn other_keys_with_dots_and_separators_are_kept() {
        for key in [
            "k",
            ".hidden",
            "a/.hidden",
            "...",
            "a/.../b",
            "..a",
            "a..",
            "a/b.",
            "a//b",
            "a/",
            "a//",
            "dir\\file",
            "a b/ c",
            "%2E%2E",
        ] {
            assert_eq!(check_key(key), Ok(()), "{key:?}");
        }
    }

    #[test]
    fn prefixes_may_end_in_a_single_dot() {
        for prefix in ["", ".", "a/.", "a\\.", "a/", "a/.h", "..a"] {
            assert_eq!(check_key_prefix(prefix), Ok(()), "{prefix:?}");
        }
        for prefix in [
            "..", "a/..", "../", "./", "a/./", "/", "/a", "\\a", "a\\..\\",
        ] {
            assert_eq!(
                check_key_prefix(prefix),
                Err(AddressError::DotSegment),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn listing_parameters_are_checked_and_others_are_not() {
        let ok = Query::parse(Some("prefix=a/&delimiter=..&versionId=..&x=../"), 10).unwrap();
        assert_eq!(check_listing_query(&ok), Ok(()));
        for name in LISTING_KEY_PARAMS {
            let q = Query::parse(Some(&format!("{name}=%2E%2E/b")), 10).unwrap();
            assert_eq!(
                check_listing_query(&q),
                Err(AddressError::DotSegment),
                "{name}"
            );
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("...".to_owned()),
            Just(String::new()),
            "[a-z.]{1,4}",
        ]
    }

    proptest! {
        /// Whatever is refused is exactly what a path join could take out of the bucket.
        #[test]
        fn prop_a_kept_key_never_leaves_its_folder(
            segments in proptest::collection::vec(segment(), 1..6),
            seps in proptest::collection::vec(prop_oneof![Just('/'), Just('\\')], 6),
        ) {
            let mut key = String::new();
            for (i, s) in segments.iter().enumerate() {
                if i > 0 {
                    key.push(seps[i]);
                }
                key.push_str(s);
            }
            let escapes = key.starts_with(['/', '\\'])
                || key.split(['/', '\\']).any(|s| s == "." || s == "..");
            prop_assert_eq!(check_key(&key).is_err(), escapes);
            if check_key(&key).is_ok() {
                prop_assert!(check_key_prefix(&key).is_ok());
                // Joined under a folder, normalised: still under it.
                let mut depth = 1i32;
                for s in key.split(['/', '\\']) {
                    match s {
                        ".." => depth -= 1,
                        "." | "" => {}
                        _ => depth += 1,
                    }
                    prop_assert!(depth >= 1);
                }
            }
        }

        /// However a key is percent-encoded (any byte, either case of hex), path-style or
        /// virtual-hosted, the address layer refuses it exactly when [`check_key`] does.
        #[test]
        fn prop_percent_encoding_does_not_hide_dot_segments(
            key in "[a./\\\\]{1,10}",
            spell in proptest::collection::vec(0u8..3, 10),
        ) {
            let mut written = String::new();
            for (b, how) in key.bytes().zip(spell.iter().cycle()) {
                match how {
                    1 => written.push_str(&format!("%{b:02X}")),
                    2 => written.push_str(&format!("%{b:02x}")),
                    _ => written.push(char::from(b)),
                }
            }
            let expected = check_key(&key).is_err();
            let path = crate::s3::resolve(Some("x"), &format!("/bucket-a/{written}"), &["s3.test"]);
            prop_assert_eq!(path == Err(AddressError::DotSegment), expected);
            let vhost = crate::s3::resolve(Some("bucket-a.s3.test"), &format!("/{written}"), &["s3.test"]);
            prop_assert_eq!(vhost == Err(AddressError::DotSegment), expected);
        }

        #[test]
        fn prop_any_text_is_judged_without_panic(key in "\\PC{0,40}") {
            let _ = check_key(&key);
            let _ = check_key_prefix(&key);
        }
    }
}
