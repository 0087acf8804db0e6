//! PutObject, GetObject and HeadObject on encrypted objects: the body is sealed segment by
//! segment on its way to the backend and opened segment by segment on its way back, and
//! every size the client sees is a plaintext size; CopyObject and GetObjectAttributes.
//!
//! One module per operation family, importing only downward: `put` (PutObject, and the
//! sealing the multipart operations share), `read` (opening a stored object's header, keys,
//! checksum record and part sizes), `stream` (the one streaming read of a read plan), `get`
//! (GetObject, HeadObject), `recut` (plaintext cut into a new body's segments, pure),
//! `copy_request` (what a CopyObject asks for, and its answer), `convert` (a format version
//! 1 object copied with REPLACE, sealed again as version 2), then `copy`, `attributes` and `post`
//! (PostObject, a browser-form upload sealed as a PutObject).

use crate::envelope::layout::SEGMENT_OVERHEAD_BYTES;

mod attributes;
mod convert;
mod copy;
mod copy_request;
mod described;
mod get;
mod post;
mod put;
mod read;
mod recut;
mod stream;

pub(crate) use attributes::attributes;
pub(crate) use copy::copy;
pub(crate) use described::sealed_entry;
pub(crate) use get::{SeenObject, get};
pub(crate) use post::{PostRequest, post};
pub(crate) use put::{
    CHECKSUM_METADATA, PUT_OBJECT_BYTES_MAX, SealSink, check_upload_headers, forget_version, put,
    seal_upload,
};
pub(crate) use stream::{Fetched, PlainSink, StreamError, fetch_plan, stream_plan};

/// The bytes a sealed segment adds to its plaintext.
const OVERHEAD: usize = SEGMENT_OVERHEAD_BYTES as usize;
