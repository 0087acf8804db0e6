//! The S3 layer over HTTP: which bucket, key and operation a request names, its `Range`, and
//! the error documents S3 clients expect back. Sans-IO like `crate::http`.

mod addressing;
pub mod checksum;
mod delete_objects;
pub mod encryption_context;
mod error;
pub mod etag;
mod grant;
pub mod headers;
mod op;
pub mod part_copy;
pub mod post_answer;
pub mod post_form;
pub mod post_policy;
mod query;
mod range;
mod segments;
pub mod sse_c;
pub mod xml;

pub use addressing::{
    Address, AddressError, BUCKET_NAME_BYTES_MAX, BUCKET_NAME_BYTES_MIN, CopySource, KEY_BYTES_MAX,
    Style, parse_copy_source, percent_decode, resolve, validate_bucket_name,
};
pub use delete_objects::check_delete_objects;
pub use error::{
    BAD_GATEWAY_MESSAGE, GATEWAY_TIMEOUT_MESSAGE, INTERNAL_ERROR_MESSAGE, S3Code, S3Error,
    SERVICE_UNAVAILABLE_MESSAGE,
};
pub use grant::{Access, Denied, Grants, PRIVATE_CANNED_ACLS, authorise, required_access};
pub use op::{S3Op, SUBRESOURCES};
pub use query::{QUERY_PARAMS_MAX_DEFAULT, Query};
pub use range::{
    ByteRange, CopyRangeError, RangeRequest, ResolvedRange, Unsatisfiable, copy_source_range,
    parse_range,
};
pub use segments::{LISTING_KEY_PARAMS, check_key, check_key_prefix, check_listing_query};
