//! `twofold rewrap`: moves existing objects to the newest versions of their keys' KEKs
//! (after `twofold keys rotate`) without any object body passing through: for each object
//! whose header names an older KEK version, the two data keys are re-wrapped under the
//! current bucket keys and the backend copies the object onto itself with the new header
//! (a metadata-only CopyObject, conditional on the ETag that was read, so a concurrent
//! overwrite is never undone). The metadata of the object is kept; a sealed metadata
//! record is sealed again for the new header (it binds it); checksum and layout records
//! are sealed under the data keys, which do not change, and are kept as they are.
//!
//! The walk lists the bucket page by page, at most [`Plan::in_flight`] objects at once,
//! and after each page writes the page's last key to a state file, so that an interrupted
//! run resumes after the last page it finished; objects already current are skipped with
//! one HEAD each, so repeating a run is always safe. The per-object decision and the copy
//! request are pure ([`decide`], [`copy_headers`]).

use crate::config::ServeSettings;
use crate::envelope::header::{FORMAT_VERSION, Header};
use crate::envelope::{DataKeys, ObjectName, meta_record, objmeta};
use crate::http::ResponseHead;
use crate::keys::{KeyError, Keyring};
use crate::s3::headers::DESCRIBING;
use crate::serve::backend::{Backend, in_flight};
use std::cell::RefCell;
use std::path::PathBuf;

/// Most objects rewrapped at once (`--parallel`, 8 by default).
pub const REWRAP_IN_FLIGHT_MAX: usize = 64;
/// Most objects listed per page (`--page-size`, the default; each page ends with a
/// checkpoint in the state file).
pub const REWRAP_PAGE_MAX: usize = 1000;
/// Largest object one backend CopyObject copies (S3's limit, the default of
/// [`Plan::copy_object_max`]); a larger one is copied onto itself with a multipart copy,
/// in parts of at most that size.
pub const COPY_OBJECT_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest [`Plan::copy_object_max`]: S3's smallest part.
pub const COPY_OBJECT_BYTES_MIN: u64 = 5 * 1024 * 1024;
/// Failures kept, with their reasons, for the summary (all are counted).
const FAILURES_KEPT: usize = 50;
use meta_record::HTTP_HEADER as META_RECORD_METADATA;

/// What to rewrap, and how.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The bucket.
    pub bucket: String,
    /// Only keys with this prefix.
    pub prefix: Option<String>,
    /// Only objects under this key (its own id, as the configuration gives it).
    pub key_id: Option<String>,
    /// Count what would be rewrapped; change nothing.
    pub dry_run: bool,
    /// Objects rewrapped at once.
    pub in_flight: usize,
    /// Objects listed per page.
    pub page: usize,
    /// Where the checkpoint is kept (`None`: nowhere, the run starts from the beginning).
    pub state: Option<PathBuf>,
    /// Largest object moved with one CopyObject; larger ones are moved with a multipart
    /// copy in parts of at most this size ([`COPY_OBJECT_BYTES_MAX`] by default).
    pub copy_object_max: u64,
}

/// What a run did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects looked at.
    pub seen: u64,
    /// Moved to the newest KEK versions (with `--dry-run`: to be moved).
    pub rewrapped: u64,
    /// Already under the newest versions.
    pub current: u64,
    /// Left out: under another key than `--key-id`, or a KEK pair no configured key has.
    pub other_key: u64,
    /// Left out: not written through Twofold.
    pub not_twofold: u64,
    /// Left out: overwritten or deleted while the run was at it (its new version is
    /// current).
    pub changed: u64,
    /// Left out: bound to a customer-provided key (SSE-C), which only its client has.
    pub customer_key: u64,
    /// Failed (a few kept with their reasons).
    pub failed: u64,
    /// (key, reason) of the first failures.
    pub failures: Vec<(String, String)>,
}

impl Summary {
    fn count(&mut self, key: &str, outcome: Outcome) {
        self.seen += 1;
        match outcome {
            Outcome::Rewrapped => self.rewrapped += 1,
            Outcome::Current => self.current += 1,
            Outcome::OtherKey => self.other_key += 1,
            Outcome::NotTwofold => self.not_twofold += 1,
            Outcome::Changed => self.changed += 1,
            Outcome::CustomerKey => self.customer_key += 1,
            Outcome::Failed(why) => {
                self.failed += 1;
                if self.failures.len() < FAILURES_KEPT {
                    self.failures.push((key.to_owned(), why));
                }
            }
        }
    }

    /// The counters by name, as a job record keeps them.
    pub fn counters(&self) -> [(&'static str, u64); 8] {
        [
            ("seen", self.seen),
            ("rewrapped", self.rewrapped),
            ("current", self.current),
            ("other_key", self.other_key),
            ("not_twofold", self.not_twofold),
            ("changed", self.changed),
            ("customer_key", self.customer_key),
            ("failed", self.failed),
        ]
    }

    /// One line of progress.
    pub fn progress_line(&self, dry_run: bool) -> String {
        format!(
            "{} object(s) seen: {} {}, {} current, {} left out, {} failed",
            self.seen,
            self.rewrapped,
            if dry_run { "to rewrap" } else { "rewrapped" },
            self.current,
            self.other_key + self.not_twofold + self.changed + self.customer_key,
            self.failed
        )
    }

    /// The closing summary, one line per count.
    pub fn lines(&self, dry_run: bool) -> Vec<String> {
        let mut out = vec![
            format!("objects seen: {}", self.seen),
            format!(
                "{}: {}",
                if dry_run {
                    "to rewrap (dry run)"
                } else {
                    "rewrapped"
                },
                self.rewrapped
            ),
            format!("already current: {}", self.current),
            format!(
                "under another key or a KEK pair no configured key has: {}",
                self.other_key
            ),
            format!("not written through Twofold: {}", self.not_twofold),
            format!("overwritten or deleted during the run: {}", self.changed),
            format!(
                "bound to a customer-provided key (SSE-C), which only its client can move \
                 (a CopyObject onto itself with the key): {}",
                self.customer_key
            ),
            format!("failed: {}", self.failed),
        ];
        out.extend(
            self.failures
                .iter()
                .map(|(k, why)| format!("  failed {k:?}: {why}")),
        );
        out
    }
}

/// What became of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Moved (or, dry, to be moved).
    Rewrapped,
    /// Already current.
    Current,
    /// Another key's, or no configured key's.
    OtherKey,
    /// No Twofold header.
    NotTwofold,
    /// Overwritten or deleted meanwhile.
    Changed,
    /// Bound to a customer-provided key (SSE-C) the tool does not have.
    CustomerKey,
    /// Failed, and why.
    Failed(String),
}

/// What to do with an object, from its header's state: `None` when it is to be
/// rewrapped. `current` is [`Keyring::is_current`]'s answer, `key_id` the id of the key
/// its KEKs belong to, `only` the key `--key-id` names.
pub fn decide(current: Option<bool>, key_id: Option<&str>, only: Option<&str>) -> Option<Outcome> {
    let Some(current) = current else {
        return Some(Outcome::OtherKey);
    };
    if only.is_some_and(|o| key_id != Some(o)) {
        return Some(Outcome::OtherKey);
    }
    current.then_some(Outcome::Current)
}

/// The headers of the backend CopyObject of `src` (the backend's HEAD of the object at
/// `copy_source`, already encoded) onto itself with the header `new`: every describing
/// header and user metadata entry the object has, its checksum and layout records as they
/// are, the new header, `record` (the metadata record sealed for it, format 2), and the
/// conditions that pin the copy to the version that was read.
pub fn copy_headers(
    src: &ResponseHead,
    copy_source: &str,
    new: &Header,
    record: Option<String>,
) -> Vec<(String, Vec<u8>)> {
    let sealed = record.is_some();
    let clear = |n: &str| !(sealed && meta_record::is_sealed(n));
    let mut out: Vec<(String, Vec<u8>)> = src
        .headers
        .iter()
        .filter(|(n, _)| {
            (DESCRIBING.contains(&n.as_str()) || n.starts_with("x-amz-meta-")) && clear(n)
        })
        .filter(|(n, _)| n != objmeta::HTTP_HEADER && n != META_RECORD_METADATA)
        .cloned()
        .collect();
    if let Some(class) = src.header("x-amz-storage-class") {
        out.push(("x-amz-storage-class".into(), class.to_vec()));
    }
    out.push((
        objmeta::HTTP_HEADER.into(),
        objmeta::encode(new).into_bytes(),
    ));
    if let Some(r) = record {
        out.push((META_RECORD_METADATA.into(), r.into_bytes()));
    }
    if let Some(etag) = src.header("etag") {
        out.push(("x-amz-copy-source-if-match".into(), etag.to_vec()));
    }
    out.push(("x-amz-copy-source".into(), copy_source.as_bytes().to_vec()));
    out.push(("x-amz-metadata-directive".into(), b"REPLACE".to_vec()));
    out
}

/// The metadata record of the object read as `src`, sealed again for its new header
/// (format 2; `None` for format 1, which has none).
fn resealed_record(
    src: &ResponseHead,
    old: &Header,
    new: &Header,
    keys: &DataKeys,
) -> Result<Option<String>, String> {
    if new.version() < FORMAT_VERSION {
        return Ok(None);
    }
    let value = src
        .header_str(META_RECORD_METADATA)
        .ok_or("the metadata record is missing (integrity failure)")?;
    let entries = meta_record::open(old, keys, value)
        .map_err(|e| format!("the metadata record does not open (integrity failure): {e}"))?;
    match meta_record::seal(new, keys, &entries) {
        Ok(Ok(v)) => Ok(Some(v)),
        Ok(Err(e)) => Err(format!("sealing the metadata record: {e}")),
        Err(_) => Err("sealing the metadata record: a primitive failed".into()),
    }
}

/// The checkpoint: the bucket, the prefix and the last key of the last finished page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    bucket: String,
    prefix: String,
    after: String,
}

fn read_checkpoint(plan: &Plan) -> Result<Option<String>, String> {
    let Some(path) = &plan.state else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let c: Checkpoint = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a rewrap state file: {e}", path.display()))?;
    if c.bucket != plan.bucket || c.prefix != plan.prefix.clone().unwrap_or_default() {
        return Err(format!(
            "{} is the state of a run over bucket {:?} prefix {:?}; remove it or choose another --state",
            path.display(),
            c.bucket,
            c.prefix
        ));
    }
    Ok(Some(c.after))
}

fn write_checkpoint(plan: &Plan, after: &str) -> Result<(), String> {
    let Some(path) = &plan.state else {
        return Ok(());
    };
    let c = Checkpoint {
        bucket: plan.bucket.clone(),
        prefix: plan.prefix.clone().unwrap_or_default(),
        after: after.to_owned(),
    };
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string(&c).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// How often a paused run looks whether it may go on.
const PAUSE_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// What a run reports to, and asks, whoever started it.
pub struct Hooks<'a> {
    /// Called after every object.
    pub progress: &'a dyn Fn(&Summary),
    /// Asked before every object: while it says yes, the run waits (objects already
    /// started finish).
    pub paused: &'a dyn Fn() -> bool,
}

impl std::fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

/// Runs the rewrap of `plan` with `keyring` (its custodians opened), reaching the backend
/// as the gateway does. Returns the summary; the state file is removed once the whole
/// bucket has been walked.
pub fn run(
    settings: &ServeSettings,
    keyring: &Keyring,
    plan: &Plan,
    hooks: &Hooks<'_>,
) -> Result<Summary, String> {
    let (rt, tls) = crate::inventory::backend_runtime(settings)?;
    let mut after = read_checkpoint(plan)?;
    rt.block_on(async {
        let backend = Backend::new(settings, tls);
        let summary = RefCell::new(Summary::default());
        loop {
            let (keys, truncated) = list_page(&backend, plan, after.as_deref()).await?;
            let each = keys.iter().map(|key| {
                let (backend, summary) = (&backend, &summary);
                async move {
                    while (hooks.paused)() {
                        compio::time::sleep(PAUSE_POLL).await;
                    }
                    let outcome = one(backend, keyring, plan, key).await;
                    summary.borrow_mut().count(key, outcome);
                    (hooks.progress)(&summary.borrow());
                }
            });
            in_flight(
                each.collect(),
                plan.in_flight.clamp(1, REWRAP_IN_FLIGHT_MAX),
            )
            .await;
            match (keys.last(), truncated) {
                (Some(last), true) => {
                    write_checkpoint(plan, last)?;
                    after = Some(last.clone());
                }
                _ => break,
            }
        }
        if let Some(path) = &plan.state {
            let _ = std::fs::remove_file(path);
        }
        Ok(summary.into_inner())
    })
}

/// One page of the bucket's keys after `after`, and whether more follow.
async fn list_page(
    backend: &Backend,
    plan: &Plan,
    after: Option<&str>,
) -> Result<(Vec<String>, bool), String> {
    let path = crate::serve::backend_path(Some(&plan.bucket), None);
    let mut query = format!(
        "list-type=2&max-keys={}",
        plan.page.clamp(1, REWRAP_PAGE_MAX)
    );
    if let Some(p) = &plan.prefix {
        query.push_str(&format!("&prefix={}", crate::serve::encode(p, false)));
    }
    if let Some(a) = after {
        query.push_str(&format!("&start-after={}", crate::serve::encode(a, false)));
    }
    let (resp, body) = backend
        .simple("GET", &path, Some(&query), Vec::new(), Vec::new())
        .await
        .map_err(|e| format!("the backend: {e}"))?;
    if resp.status != 200 {
        return Err(format!(
            "the backend answered {} to the listing of {:?}: {}",
            resp.status,
            plan.bucket,
            String::from_utf8_lossy(&body)
        ));
    }
    let document = String::from_utf8_lossy(&body);
    let (keys, _) = crate::inventory::listed_keys(&document);
    let truncated =
        crate::s3::xml::value(&document, "IsTruncated").is_some_and(|v| v.trim() == "true");
    Ok((keys, truncated))
}

/// Rewraps one object, or says why not.
async fn one(backend: &Backend, keyring: &Keyring, plan: &Plan, key: &str) -> Outcome {
    let path = crate::serve::backend_path(Some(&plan.bucket), Some(key));
    let src = match backend
        .simple("HEAD", &path, None, Vec::new(), Vec::new())
        .await
    {
        Ok((h, _)) if h.status == 200 => h,
        Ok((h, _)) if h.status == 404 => return Outcome::Changed,
        Ok((h, _)) => return Outcome::Failed(format!("the backend answered {} to HEAD", h.status)),
        Err(e) => return Outcome::Failed(format!("the backend: {e}")),
    };
    let Some(value) = src.header_str(objmeta::HTTP_HEADER) else {
        return Outcome::NotTwofold;
    };
    let header = match objmeta::decode(value) {
        Ok(h) => h,
        Err(e) => return Outcome::Failed(format!("its header does not parse: {e}")),
    };
    let current = match keyring.is_current(&header).await {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let named = keyring.named_keys();
    let key_id = named.id_of(&header.inner.kek_id, &header.outer.kek_id);
    if let Some(o) = decide(current, key_id, plan.key_id.as_deref()) {
        return o;
    }
    if header.customer_key() {
        return Outcome::CustomerKey;
    }
    if plan.dry_run {
        return Outcome::Rewrapped;
    }
    let Some(key_id) = key_id.map(str::to_owned) else {
        return Outcome::OtherKey;
    };
    match copy_onto_itself(backend, keyring, plan, key, &src, &header, &key_id).await {
        Ok(o) => o,
        Err(e) => Outcome::Failed(e),
    }
}

/// The re-wrap and the backend's copy of one object onto itself.
async fn copy_onto_itself(
    backend: &Backend,
    keyring: &Keyring,
    plan: &Plan,
    key: &str,
    src: &ResponseHead,
    header: &Header,
    key_id: &str,
) -> Result<Outcome, String> {
    let name = ObjectName {
        bucket: &plan.bucket,
        key,
    };
    let (new, keys) = keyring
        .rewrap_for(header, (name, None), (name, None), key_id)
        .await
        .map_err(|e: KeyError| e.to_string())?;
    let record = resealed_record(src, header, &new, &keys)?;
    let copy_source = format!(
        "{}/{}",
        crate::serve::encode(&plan.bucket, false),
        crate::serve::encode(key, true)
    );
    let headers = copy_headers(src, &copy_source, &new, record);
    let path = crate::serve::backend_path(Some(&plan.bucket), Some(key));
    let stored = src
        .header_str("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if stored > plan.copy_object_max.max(COPY_OBJECT_BYTES_MIN) {
        return multipart_copy(backend, &path, headers, stored, plan.copy_object_max).await;
    }
    let (resp, body) = backend
        .simple("PUT", &path, None, headers, Vec::new())
        .await
        .map_err(|e| format!("the backend: {e}"))?;
    copied(resp.status, &body, "the copy")
}

/// What a backend answer to one copy (CopyObject, UploadPartCopy) says: done, the source
/// changed meanwhile (412, 404), or a failure. A copy may fail with 200 and an error
/// document, as S3 documents.
fn copied(status: u16, body: &[u8], what: &str) -> Result<Outcome, String> {
    let text = String::from_utf8_lossy(body);
    match status {
        200 if !text.contains("<Error>") => Ok(Outcome::Rewrapped),
        412 | 404 => Ok(Outcome::Changed),
        status => Err(format!(
            "the backend answered {status} to {what}: {}",
            text.chars().take(200).collect::<String>()
        )),
    }
}

/// The copy of an object of `stored` bytes at `path` onto itself as a backend multipart
/// copy: the new metadata at its start, parts of at most `max` bytes copied from the
/// version that was read (each pinned to its ETag), then Complete; aborted on any failure.
async fn multipart_copy(
    backend: &Backend,
    path: &str,
    copy_headers: Vec<(String, Vec<u8>)>,
    stored: u64,
    max: u64,
) -> Result<Outcome, String> {
    let (pinned, start): (Vec<_>, Vec<_>) = copy_headers
        .into_iter()
        .filter(|(n, _)| n != "x-amz-metadata-directive")
        .partition(|(n, _)| n.starts_with("x-amz-copy-source"));
    let (resp, body) = backend
        .simple("POST", path, Some("uploads="), start, Vec::new())
        .await
        .map_err(|e| format!("the backend: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    let upload = match (resp.status, crate::s3::xml::value(&text, "UploadId")) {
        (200, Some(id)) => crate::s3::xml::unescape(id),
        (status, _) => {
            return Err(format!(
                "the backend answered {status} to the multipart copy's start"
            ));
        }
    };
    let id = crate::serve::encode(&upload, false);
    let result = copy_parts(backend, path, &id, &pinned, stored, max).await;
    let done = match result {
        Ok(Some(etags)) => complete(backend, path, &id, &etags).await,
        Ok(None) => Ok(Outcome::Changed),
        Err(e) => Err(e),
    };
    if !matches!(done, Ok(Outcome::Rewrapped)) {
        let query = format!("uploadId={id}");
        let _ = backend
            .simple("DELETE", path, Some(&query), Vec::new(), Vec::new())
            .await;
    }
    done
}

/// The parts of a multipart copy, one after another; their ETags, or `None` when the
/// source changed meanwhile.
async fn copy_parts(
    backend: &Backend,
    path: &str,
    id: &str,
    pinned: &[(String, Vec<u8>)],
    stored: u64,
    max: u64,
) -> Result<Option<Vec<String>>, String> {
    let mut etags = Vec::new();
    for (i, (first, last)) in crate::s3::part_copy::copy_ranges(stored, max)
        .into_iter()
        .enumerate()
    {
        let mut headers = pinned.to_vec();
        headers.push((
            "x-amz-copy-source-range".into(),
            format!("bytes={first}-{last}").into_bytes(),
        ));
        let query = format!("partNumber={}&uploadId={id}", i + 1);
        let (resp, body) = backend
            .simple("PUT", path, Some(&query), headers, Vec::new())
            .await
            .map_err(|e| format!("the backend: {e}"))?;
        if copied(resp.status, &body, "a part copy")? == Outcome::Changed {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&body);
        let etag = crate::s3::xml::value(&text, "ETag")
            .map(crate::s3::xml::unescape)
            .ok_or("the backend's part copy answer has no ETag")?;
        etags.push(etag);
    }
    Ok(Some(etags))
}

/// Completes a multipart copy with the parts' `etags`.
async fn complete(
    backend: &Backend,
    path: &str,
    id: &str,
    etags: &[String],
) -> Result<Outcome, String> {
    let doc = crate::s3::xml::complete_multipart_upload((1..).zip(etags));
    let query = format!("uploadId={id}");
    let (resp, body) = backend
        .complete_multipart(path, &query, doc)
        .await
        .map_err(|e| format!("the backend: {e}"))?;
    copied(resp.status, &body, "the multipart copy's completion")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::header::test_header;

    #[test]
    fn only_objects_under_an_older_version_of_the_chosen_key_are_copied() {
        assert_eq!(decide(None, None, None), Some(Outcome::OtherKey));
        assert_eq!(decide(Some(true), Some("k"), None), Some(Outcome::Current));
        assert_eq!(decide(Some(false), Some("k"), None), None);
        assert_eq!(decide(Some(false), Some("k"), Some("k")), None);
        assert_eq!(
            decide(Some(false), Some("k"), Some("other")),
            Some(Outcome::OtherKey)
        );
    }

    #[test]
    fn the_copy_keeps_the_metadata_and_replaces_only_the_twofold_entries() {
        let mut src = ResponseHead::new(200);
        for (n, v) in [
            ("etag", "\"abc\""),
            ("content-length", "99"),
            ("content-type", "binary/octet-stream"),
            ("x-amz-meta-twofold", "old"),
            ("x-amz-meta-twofold-meta", "old-record"),
            ("x-amz-meta-twofold-checksum", "sum"),
            ("x-amz-meta-mtime", "1700000000"),
            ("x-amz-storage-class", "STANDARD_IA"),
            ("last-modified", "x"),
        ] {
            src.push_header(n, v.as_bytes().to_vec());
        }
        let new = test_header(3);
        let h = copy_headers(&src, "b/k%20x", &new, Some("new-record".into()));
        let get = |n: &str| {
            h.iter()
                .filter(|(m, _)| m == n)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("x-amz-meta-twofold"), [objmeta::encode(&new)]);
        assert_eq!(get("x-amz-meta-twofold-meta"), ["new-record"]);
        assert_eq!(get("x-amz-meta-twofold-checksum"), ["sum"]);
        assert_eq!(get("x-amz-storage-class"), ["STANDARD_IA"]);
        assert_eq!(get("x-amz-copy-source-if-match"), ["\"abc\""]);
        assert_eq!(get("x-amz-copy-source"), ["b/k%20x"]);
        assert_eq!(get("x-amz-metadata-directive"), ["REPLACE"]);
        // A sealed object's describing headers and user metadata are in its record, not in
        // the clear.
        assert!(get("content-type").is_empty() && get("x-amz-meta-mtime").is_empty());
        assert!(get("content-length").is_empty() && get("last-modified").is_empty());
        let v1 = copy_headers(&src, "b/k", &new, None);
        assert!(v1.iter().any(|(n, _)| n == "content-type"));
        assert!(
            v1.iter()
                .any(|(n, v)| n == "x-amz-meta-mtime" && v == b"1700000000")
        );
        assert!(!v1.iter().any(|(n, _)| n == META_RECORD_METADATA));
    }

    #[test]
    fn the_summary_counts_and_keeps_the_first_failures() {
        let mut s = Summary::default();
        s.count("a", Outcome::Rewrapped);
        s.count("b", Outcome::Current);
        for i in 0..(FAILURES_KEPT + 5) {
            s.count(&i.to_string(), Outcome::Failed("x".into()));
        }
        assert_eq!(
            (s.seen, s.rewrapped, s.current),
            (FAILURES_KEPT as u64 + 7, 1, 1)
        );
        assert_eq!(s.failed, FAILURES_KEPT as u64 + 5);
        assert_eq!(s.failures.len(), FAILURES_KEPT);
        assert!(s.lines(true)[1].contains("dry run"));
    }
}
