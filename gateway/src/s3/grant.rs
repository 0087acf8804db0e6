//! What a credential may do beyond object data: the access class of every operation and the
//! one decision, from a credential's grants, whether a request may go on
//! (`docs/configuration.md`, "Grants").
//!
//! Every request the gateway passes on is re-signed with its own backend identity, which can
//! administer every bucket. A grant of a bucket is therefore limited here to what the bucket's
//! data needs; configuration is a grant of its own:
//!
//! | class        | operations                                                        | grant         |
//! |--------------|-------------------------------------------------------------------|---------------|
//! | `Data`       | objects, listings, multipart, object tagging, Create/Delete/HeadBucket, ListBuckets, GetBucketLocation, CORS preflight | the bucket |
//! | `ReadConfig` | every other `Get*`/`List*` of bucket or object configuration      | `read_config` |
//! | `Admin`      | every `Put*`/`Delete*` of configuration, PutObjectAcl/Retention/LegalHold, CreateSession, RestoreObject | `admin` |
//!
//! Some headers make a data request an administrative one, and need `admin` on any request:
//! `x-amz-grant-*`, an `x-amz-acl` other than [`PRIVATE_CANNED_ACLS`],
//! `x-amz-bypass-governance-retention`, the `x-amz-object-lock-*` of an upload, a CreateBucket's
//! `x-amz-bucket-object-lock-enabled: true`, and an `x-amz-object-ownership` other than
//! `BucketOwnerEnforced` (which would turn ACLs on).

use super::{S3Error, S3Op};

/// How far an operation reaches beyond object data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Object data, listings and the bucket's existence.
    Data,
    /// Reading bucket or object configuration.
    ReadConfig,
    /// Changing configuration, or anything that could open the bucket to principals that do
    /// not go through the gateway.
    Admin,
}

/// What a credential is granted beyond the data of its buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants {
    /// May read configuration ([`Access::ReadConfig`]).
    pub read_config: bool,
    /// May change configuration ([`Access::Admin`]); implies `read_config`.
    pub admin: bool,
}

impl Grants {
    /// Every grant.
    pub const ADMIN: Grants = Grants {
        read_config: true,
        admin: true,
    };

    /// Whether these grants cover `access`.
    pub fn allows(self, access: Access) -> bool {
        match access {
            Access::Data => true,
            Access::ReadConfig => self.read_config || self.admin,
            Access::Admin => self.admin,
        }
    }
}

/// `x-amz-acl` values that give nobody but the bucket owner anything.
pub const PRIVATE_CANNED_ACLS: &[&str] =
    &["private", "bucket-owner-read", "bucket-owner-full-control"];

/// `Other` operations that are data access although their names begin with `Put`/`Delete`,
/// or that read no configuration although they begin with `Get`.
const DATA_OTHER: &[&str] = &[
    "GetBucketLocation",
    "OptionsPreflight",
    "GetObjectTagging",
    "PutObjectTagging",
    "DeleteObjectTagging",
    // Refused by the serving layer (they would expose ciphertext); data reads all the same.
    "SelectObjectContent",
    "GetObjectTorrent",
];

/// Why a request was refused. Every reason is answered with the same AccessDenied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The credential is not granted the bucket.
    #[error("the credential may not use this bucket")]
    Bucket,
    /// The operation (or a header of it) needs a grant the credential lacks.
    #[error("the request needs the {0:?} grant")]
    Needs(Access),
}

impl From<Denied> for S3Error {
    fn from(_: Denied) -> Self {
        S3Error::access_denied()
    }
}

impl S3Op {
    /// The access class of the operation alone (headers aside; see [`required_access`]).
    /// [`S3Op::Unknown`] is `Admin`: what is not recognised is not granted.
    pub fn access(&self) -> Access {
        match self {
            S3Op::Other { name } if DATA_OTHER.contains(name) => Access::Data,
            S3Op::Other { name } if name.starts_with("Get") || name.starts_with("List") => {
                Access::ReadConfig
            }
            S3Op::Other { .. } | S3Op::Unknown => Access::Admin,
            _ => Access::Data,
        }
    }
}

/// The access a request needs: its operation's, raised to `Admin` by a header that grants,
/// opens, locks or bypasses (see the module documentation). `headers` have lower-case names.
pub fn required_access(op: S3Op, headers: &[(String, Vec<u8>)]) -> Access {
    let raises = headers
        .iter()
        .any(|(name, value)| header_needs_admin(name, value));
    if raises { Access::Admin } else { op.access() }
}

fn header_needs_admin(name: &str, value: &[u8]) -> bool {
    let value = std::str::from_utf8(value).unwrap_or("").trim();
    match name {
        "x-amz-acl" => !PRIVATE_CANNED_ACLS
            .iter()
            .any(|acl| value.eq_ignore_ascii_case(acl)),
        "x-amz-bypass-governance-retention"
        | "x-amz-object-lock-mode"
        | "x-amz-object-lock-retain-until-date"
        | "x-amz-object-lock-legal-hold" => true,
        "x-amz-bucket-object-lock-enabled" => !value.eq_ignore_ascii_case("false"),
        "x-amz-object-ownership" => !value.eq_ignore_ascii_case("BucketOwnerEnforced"),
        _ => name.starts_with("x-amz-grant-"),
    }
}

/// The decision: may a credential granted `bucket_allowed` (whether it may use the bucket
/// the request names, `true` when it names none) and `grants` make this request?
pub fn authorise(
    grants: Grants,
    bucket_allowed: bool,
    op: S3Op,
    headers: &[(String, Vec<u8>)],
) -> Result<(), Denied> {
    if !bucket_allowed {
        return Err(Denied::Bucket);
    }
    let needed = required_access(op, headers);
    if grants.allows(needed) {
        Ok(())
    } else {
        Err(Denied::Needs(needed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::{Address, Query, SUBRESOURCES, Style};

    const READ_CONFIG: &[&str] = &[
        "GetBucketAccelerateConfiguration",
        "GetBucketAcl",
        "GetBucketAnalyticsConfiguration",
        "GetBucketCors",
        "GetBucketEncryption",
        "GetBucketIntelligentTieringConfiguration",
        "GetBucketInventoryConfiguration",
        "GetBucketLifecycleConfiguration",
        "GetBucketLogging",
        "GetBucketMetadataTableConfiguration",
        "GetBucketMetricsConfiguration",
        "GetBucketNotificationConfiguration",
        "GetObjectLockConfiguration",
        "GetBucketOwnershipControls",
        "GetBucketPolicy",
        "GetBucketPolicyStatus",
        "GetPublicAccessBlock",
        "GetBucketReplication",
        "GetBucketRequestPayment",
        "GetBucketTagging",
        "GetBucketVersioning",
        "GetBucketWebsite",
        "ListBucketAnalyticsConfigurations",
        "ListBucketIntelligentTieringConfigurations",
        "ListBucketInventoryConfigurations",
        "ListBucketMetricsConfigurations",
        "GetObjectAcl",
        "GetObjectLegalHold",
        "GetObjectRetention",
    ];

    const ADMIN: &[&str] = &[
        "CreateSession",
        "PutBucketAccelerateConfiguration",
        "PutBucketAcl",
        "PutBucketAnalyticsConfiguration",
        "PutBucketCors",
        "PutBucketEncryption",
        "PutBucketIntelligentTieringConfiguration",
        "PutBucketInventoryConfiguration",
        "PutBucketLifecycleConfiguration",
        "PutBucketLogging",
        "PutBucketMetricsConfiguration",
        "PutBucketNotificationConfiguration",
        "PutObjectLockConfiguration",
        "PutBucketOwnershipControls",
        "PutBucketPolicy",
        "PutPublicAccessBlock",
        "PutBucketReplication",
        "PutBucketRequestPayment",
        "PutBucketTagging",
        "PutBucketVersioning",
        "PutBucketWebsite",
        "DeleteBucketAnalyticsConfiguration",
        "DeleteBucketCors",
        "DeleteBucketEncryption",
        "DeleteBucketIntelligentTieringConfiguration",
        "DeleteBucketInventoryConfiguration",
        "DeleteBucketLifecycle",
        "DeleteBucketMetadataTableConfiguration",
        "DeleteBucketMetricsConfiguration",
        "DeleteBucketOwnershipControls",
        "DeleteBucketPolicy",
        "DeletePublicAccessBlock",
        "DeleteBucketReplication",
        "DeleteBucketTagging",
        "DeleteBucketWebsite",
        "CreateBucketMetadataTableConfiguration",
        "PutObjectAcl",
        "PutObjectLegalHold",
        "PutObjectRetention",
        "RestoreObject",
    ];

    /// Every operation the classifier can produce, from every method and subresource on a
    /// bucket and on an object.
    fn every_operation() -> Vec<S3Op> {
        let mut out = Vec::new();
        let methods = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"];
        for key in [None, Some("k".to_owned())] {
            let address = Address {
                style: Style::Path,
                bucket: Some("b".to_owned()),
                key,
            };
            for sub in std::iter::once("").chain(SUBRESOURCES.iter().copied()) {
                for extra in ["", "&partNumber=1", "&id=x", "&list-type=2"] {
                    let raw = format!("{sub}{extra}");
                    let query = Query::parse(Some(&raw), 10).unwrap();
                    for method in methods {
                        for copy in [false, true] {
                            out.push(S3Op::classify(method, &address, &query, copy));
                        }
                    }
                }
            }
        }
        out.push(S3Op::ListBuckets);
        out
    }

    #[test]
    fn every_operation_has_the_documented_class() {
        for op in every_operation() {
            let expected = match op {
                S3Op::Other { name } if READ_CONFIG.contains(&name) => Access::ReadConfig,
                S3Op::Other { name } if ADMIN.contains(&name) => Access::Admin,
                S3Op::Other { name } => {
                    assert!(DATA_OTHER.contains(&name), "{name} is in no list");
                    Access::Data
                }
                S3Op::Unknown => Access::Admin,
                _ => Access::Data,
            };
            assert_eq!(op.access(), expected, "{}", op.name());
        }
    }

    #[test]
    fn the_lists_name_only_real_operations() {
        let all: Vec<&str> = every_operation().iter().map(S3Op::name).collect();
        for name in READ_CONFIG.iter().chain(ADMIN).chain(DATA_OTHER) {
            assert!(all.contains(name), "{name} is never classified");
        }
    }

    #[test]
    fn grants_cover_their_classes() {
        let none = Grants::default();
        let read = Grants {
            read_config: true,
            admin: false,
        };
        let admin_only = Grants {
            read_config: false,
            admin: true,
        };
        let table = [
            (none, [true, false, false]),
            (read, [true, true, false]),
            (admin_only, [true, true, true]),
            (Grants::ADMIN, [true, true, true]),
        ];
        for (grants, allowed) in table {
            for (access, ok) in [Access::Data, Access::ReadConfig, Access::Admin]
                .into_iter()
                .zip(allowed)
            {
                assert_eq!(grants.allows(access), ok, "{grants:?} {access:?}");
            }
        }
    }

    fn h(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn headers_that_open_lock_or_bypass_need_admin() {
        for headers in [
            [(
                "x-amz-grant-read",
                "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
            )],
            [("x-amz-grant-full-control", "id=x")],
            [("x-amz-acl", "public-read")],
            [("x-amz-acl", "public-read-write")],
            [("x-amz-acl", "authenticated-read")],
            [("x-amz-acl", "")],
            [("x-amz-bypass-governance-retention", "true")],
            [("x-amz-bypass-governance-retention", "false")],
            [("x-amz-object-lock-mode", "COMPLIANCE")],
            [(
                "x-amz-object-lock-retain-until-date",
                "2099-01-01T00:00:00Z",
            )],
            [("x-amz-object-lock-legal-hold", "ON")],
            [("x-amz-bucket-object-lock-enabled", "true")],
            [("x-amz-object-ownership", "ObjectWriter")],
        ] {
            let headers = h(&headers);
            for op in [S3Op::PutObject, S3Op::CreateBucket, S3Op::DeleteObject] {
                assert_eq!(required_access(op, &headers), Access::Admin, "{headers:?}");
                assert_eq!(
                    authorise(Grants::default(), true, op, &headers),
                    Err(Denied::Needs(Access::Admin))
                );
                assert_eq!(authorise(Grants::ADMIN, true, op, &headers), Ok(()));
            }
        }
    }

    #[test]
    fn private_acls_and_ordinary_headers_stay_data() {
        for headers in [
            [("x-amz-acl", "private")],
            [("x-amz-acl", "Bucket-Owner-Full-Control")],
            [("x-amz-acl", "bucket-owner-read")],
            [("x-amz-bucket-object-lock-enabled", "false")],
            [("x-amz-object-ownership", "BucketOwnerEnforced")],
            [("x-amz-meta-grant", "x")],
            [("content-type", "text/plain")],
        ] {
            let headers = h(&headers);
            assert_eq!(required_access(S3Op::PutObject, &headers), Access::Data);
            assert_eq!(
                authorise(Grants::default(), true, S3Op::CreateBucket, &headers),
                Ok(())
            );
        }
    }

    #[test]
    fn the_decision_for_each_class() {
        let policy = S3Op::Other {
            name: "PutBucketPolicy",
        };
        let get_acl = S3Op::Other {
            name: "GetBucketAcl",
        };
        let read = Grants {
            read_config: true,
            admin: false,
        };
        let none = Grants::default();
        assert_eq!(authorise(none, true, S3Op::GetObject, &[]), Ok(()));
        assert_eq!(
            authorise(none, false, S3Op::GetObject, &[]),
            Err(Denied::Bucket)
        );
        assert_eq!(
            authorise(Grants::ADMIN, false, policy, &[]),
            Err(Denied::Bucket)
        );
        assert_eq!(
            authorise(none, true, get_acl, &[]),
            Err(Denied::Needs(Access::ReadConfig))
        );
        assert_eq!(authorise(read, true, get_acl, &[]), Ok(()));
        assert_eq!(
            authorise(read, true, policy, &[]),
            Err(Denied::Needs(Access::Admin))
        );
        assert_eq!(authorise(Grants::ADMIN, true, policy, &[]), Ok(()));
        let e = S3Error::from(Denied::Needs(Access::Admin));
        assert_eq!(
            (e.status, e.code.as_str(), e.message.as_str()),
            (403, "AccessDenied", "Access Denied")
        );
    }
}
