//! The S3 layer over HTTP: which bucket, key and operation a request names, its `Range`, and
//! the error documents S3 clients expect back. Sans-IO like `crate::http`.

mod addressing;
mod error;
mod op;
mod query;
mod range;
pub mod xml;

pub use addressing::{
    Address, AddressError, BUCKET_NAME_BYTES_MAX, BUCKET_NAME_BYTES_MIN, KEY_BYTES_MAX, Style,
    percent_decode, resolve, validate_bucket_name,
};
pub use error::{
    BAD_GATEWAY_MESSAGE, GATEWAY_TIMEOUT_MESSAGE, INTERNAL_ERROR_MESSAGE, S3Error,
    SERVICE_UNAVAILABLE_MESSAGE,
};
pub use op::{S3Op, SUBRESOURCES};
pub use query::{QUERY_PARAMS_MAX_DEFAULT, Query};
pub use range::{ByteRange, RangeRequest, ResolvedRange, Unsatisfiable, parse_range};
