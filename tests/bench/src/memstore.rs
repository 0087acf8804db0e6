//! The benchmark's backend: an S3 server on the `s3s` protocol stack (the same as s3s-fs,
//! SigV4 checked by s3s) that keeps objects in memory, so that the backend costs little next
//! to the proxies in front of it. It implements what the load and the gateway use: buckets,
//! PutObject, CopyObject, GetObject (with Range), HeadObject, DeleteObject and ListObjectsV2.
//!
//! Differences from S3 that keep it cheap, none of which the load depends on: the ETag is a
//! counter (not the MD5 of the body), no checksums are stored or returned, and multipart
//! uploads are not implemented.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Largest object a single PutObject may store (S3's limit).
pub const OBJECT_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Keys per ListObjectsV2 page when the client asks for none or for more.
pub const LIST_KEYS_MAX: usize = 1000;

/// One stored object.
#[derive(Debug)]
struct Object {
    data: Bytes,
    etag: String,
    modified: SystemTime,
    metadata: Option<Metadata>,
    content_type: Option<ContentType>,
}

type Bucket = BTreeMap<String, Arc<Object>>;

/// Buckets and their objects, in memory.
#[derive(Debug, Default)]
pub struct MemStore {
    buckets: RwLock<HashMap<String, Bucket>>,
    next_etag: AtomicU64,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn object(&self, bucket: &str, key: &str) -> S3Result<Arc<Object>> {
        let buckets = self
            .buckets
            .read()
            .map_err(|_| s3_error!(InternalError, "store lock poisoned"))?;
        let Some(b) = buckets.get(bucket) else {
            return Err(s3_error!(NoSuchBucket));
        };
        b.get(key).cloned().ok_or_else(|| s3_error!(NoSuchKey))
    }
}

fn lock_error<T>(_: T) -> s3s::S3Error {
    s3_error!(InternalError, "store lock poisoned")
}

fn to_usize(n: u64) -> S3Result<usize> {
    usize::try_from(n).map_err(|_| s3_error!(InternalError, "offset out of range"))
}

fn content_length(len: usize) -> S3Result<i64> {
    i64::try_from(len).map_err(|_| s3_error!(InternalError, "length out of range"))
}

#[async_trait::async_trait]
impl S3 for MemStore {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let mut buckets = self.buckets.write().map_err(lock_error)?;
        if buckets.contains_key(&req.input.bucket) {
            return Err(s3_error!(BucketAlreadyOwnedByYou));
        }
        buckets.insert(req.input.bucket, Bucket::new());
        Ok(S3Response::new(CreateBucketOutput::default()))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let buckets = self.buckets.read().map_err(lock_error)?;
        if !buckets.contains_key(&req.input.bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let mut buckets = self.buckets.write().map_err(lock_error)?;
        match buckets.get(&req.input.bucket) {
            None => return Err(s3_error!(NoSuchBucket)),
            Some(b) if !b.is_empty() => return Err(s3_error!(BucketNotEmpty)),
            Some(_) => {}
        }
        buckets.remove(&req.input.bucket);
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        {
            let buckets = self.buckets.read().map_err(lock_error)?;
            if !buckets.contains_key(&input.bucket) {
                return Err(s3_error!(NoSuchBucket));
            }
        }
        let Some(mut body) = input.body else {
            return Err(s3_error!(IncompleteBody));
        };
        let declared = match input.content_length {
            Some(n) => Some(u64::try_from(n).map_err(|_| s3_error!(InvalidArgument))?),
            None => None,
        };
        if declared.is_some_and(|n| n > OBJECT_BYTES_MAX) {
            return Err(s3_error!(EntityTooLarge));
        }
        // One buffer of the declared size: the body is copied once, out of the socket's
        // buffers, and served from here without further copies.
        let capacity = declared.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        let mut data = BytesMut::with_capacity(capacity);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| s3_error!(IncompleteBody, "{e}"))?;
            if (data.len() + chunk.len()) as u64 > OBJECT_BYTES_MAX {
                return Err(s3_error!(EntityTooLarge));
            }
            data.extend_from_slice(&chunk);
        }
        if declared.is_some_and(|n| n != data.len() as u64) {
            return Err(s3_error!(IncompleteBody));
        }
        let etag = format!("{:032x}", self.next_etag.fetch_add(1, Ordering::Relaxed));
        let object = Object {
            data: data.freeze(),
            etag: etag.clone(),
            modified: SystemTime::now(),
            metadata: input.metadata,
            content_type: input.content_type,
        };
        let mut buckets = self.buckets.write().map_err(lock_error)?;
        let Some(b) = buckets.get_mut(&input.bucket) else {
            return Err(s3_error!(NoSuchBucket));
        };
        b.insert(input.key, Arc::new(object));
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        }))
    }

    /// CopyObject within the store, for the checksum the gateway records after a PUT with a
    /// trailer (a copy of the object onto itself with new metadata). The copy shares the
    /// source's bytes (`Bytes` is reference-counted): a real backend copies them, so this
    /// backend bills less for a copy than any real one. `x-amz-copy-source-if-match` is
    /// honoured; the other copy conditions are not.
    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let CopySource::Bucket { bucket, key, .. } = &input.copy_source else {
            return Err(s3_error!(NotImplemented, "access point copy sources"));
        };
        let source = self.object(bucket, key)?;
        if let Some(ETagCondition::ETag(want)) = &input.copy_source_if_match
            && want.value() != source.etag
        {
            return Err(s3_error!(PreconditionFailed));
        }
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let (metadata, content_type) = if replace {
            (input.metadata, input.content_type)
        } else {
            (source.metadata.clone(), source.content_type.clone())
        };
        let etag = format!("{:032x}", self.next_etag.fetch_add(1, Ordering::Relaxed));
        let modified = SystemTime::now();
        let object = Object {
            data: source.data.clone(),
            etag: etag.clone(),
            modified,
            metadata,
            content_type,
        };
        let mut buckets = self.buckets.write().map_err(lock_error)?;
        let Some(b) = buckets.get_mut(&input.bucket) else {
            return Err(s3_error!(NoSuchBucket));
        };
        b.insert(input.key, Arc::new(object));
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(etag)),
                last_modified: Some(Timestamp::from(modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let object = self.object(&input.bucket, &input.key)?;
        let full = object.data.len() as u64;
        let (body, content_range) = match input.range {
            None => (object.data.clone(), None),
            Some(range) => {
                let r = range.check(full)?;
                let (start, end) = (to_usize(r.start)?, to_usize(r.end)?);
                (
                    object.data.slice(start..end),
                    Some(format!("bytes {}-{}/{full}", r.start, r.end - 1)),
                )
            }
        };
        let output = GetObjectOutput {
            content_length: Some(content_length(body.len())?),
            body: Some(StreamingBlob::from(s3s::Body::from(body))),
            content_range,
            accept_ranges: Some("bytes".into()),
            last_modified: Some(Timestamp::from(object.modified)),
            metadata: object.metadata.clone(),
            content_type: object.content_type.clone(),
            e_tag: Some(ETag::Strong(object.etag.clone())),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let object = self.object(&input.bucket, &input.key)?;
        let output = HeadObjectOutput {
            content_length: Some(content_length(object.data.len())?),
            accept_ranges: Some("bytes".into()),
            last_modified: Some(Timestamp::from(object.modified)),
            metadata: object.metadata.clone(),
            content_type: object.content_type.clone(),
            e_tag: Some(ETag::Strong(object.etag.clone())),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let mut buckets = self.buckets.write().map_err(lock_error)?;
        let Some(b) = buckets.get_mut(&req.input.bucket) else {
            return Err(s3_error!(NoSuchBucket));
        };
        b.remove(&req.input.key);
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let buckets = self.buckets.read().map_err(lock_error)?;
        let Some(b) = buckets.get(&input.bucket) else {
            return Err(s3_error!(NoSuchBucket));
        };
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = input
            .max_keys
            .and_then(|m| usize::try_from(m).ok())
            .map_or(LIST_KEYS_MAX, |m| m.min(LIST_KEYS_MAX));
        // The continuation token is the last key of the previous page.
        let after = input
            .continuation_token
            .clone()
            .or(input.start_after.clone())
            .unwrap_or_default();
        let mut contents = Vec::new();
        let mut truncated = false;
        for (key, o) in b.range(after.clone()..) {
            if *key == after || !key.starts_with(&prefix) {
                continue;
            }
            if contents.len() == max {
                truncated = true;
                break;
            }
            contents.push(s3s::dto::Object {
                key: Some(key.clone()),
                size: Some(content_length(o.data.len())?),
                last_modified: Some(Timestamp::from(o.modified)),
                e_tag: Some(ETag::Strong(o.etag.clone())),
                ..Default::default()
            });
        }
        let next = if truncated {
            contents.last().and_then(|o| o.key.clone())
        } else {
            None
        };
        let output = ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            max_keys: Some(i32::try_from(max).unwrap_or(i32::MAX)),
            key_count: Some(i32::try_from(contents.len()).unwrap_or(i32::MAX)),
            continuation_token: input.continuation_token,
            is_truncated: Some(truncated),
            next_continuation_token: next,
            contents: Some(contents),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}
