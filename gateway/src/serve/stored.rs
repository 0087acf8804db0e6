//! A stored Twofold object being read: where the backend keeps it, its envelope header, and
//! the response head the backend gave for it. The parameters every read step shares.

use crate::envelope::header::Header;
use crate::http::ResponseHead;

/// A stored object being read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredObject<'a> {
    /// The object's path on the backend.
    pub(crate) path: &'a str,
    /// The backend query that names it (`versionId=...`), if any.
    pub(crate) query: Option<&'a str>,
    /// Its envelope header.
    pub(crate) header: &'a Header,
    /// The backend's response head for it (HEAD or GET): its metadata, ETag, length.
    pub(crate) meta: &'a ResponseHead,
}
