//! A CompleteMultipartUpload kept alive while the backend copies the object for its layout
//! record (docs/gateway.md, *The rewrite at Complete*): the answer of
//! [`crate::serve::keepalive`], which CopyObject shares, under Complete's name.

use crate::http::ResponseHead;
use crate::serve::io::Conn;
use crate::serve::{Failure, Outcome, Request};

pub(super) use crate::serve::keepalive::{Answer, keep_alive};

/// Ends a committed Complete with its result ([`crate::serve::keepalive::conclude`]).
pub(super) async fn conclude(
    ctx: &Request<'_>,
    conn: &mut Conn,
    result: Result<(ResponseHead, Vec<u8>), Failure>,
) -> Outcome {
    crate::serve::keepalive::conclude(ctx, conn, "CompleteMultipartUpload", result).await
}
