//! Key custody and the bucket-key cache: the layer between the envelope (which needs keys in
//! the clear) and the custodians (which hold the KEKs).
//!
//! Like S3 Bucket Keys, custodian calls are amortised: for each bucket, layer and time
//! window a [`Keyring`] makes one random bucket key, has the custodian wrap it once, and
//! wraps every object's data key under it locally. The wrapped bucket key travels in each
//! object's header, so any gateway can read any object; a reader unwraps each distinct
//! wrapped bucket key once and caches it. The caches are bounded and their keys are
//! zeroised when evicted or dropped. A `Keyring` is per core: it is not shared.

pub mod custodian;

use crate::envelope::aead::Layer;
use crate::envelope::header::{Header, UPLOAD_ID_LEN_BYTES};
use crate::envelope::layout::SegmentSize;
use crate::envelope::{self, BucketKey, DataKeys, ObjectName, SealParams};
use crate::hardening::LockedKey;
pub use custodian::{Custodian, CustodianSpec, PinSource};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Why keys could not be had. Says which layer, and whose fault.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The layer's custodian (a PKCS#11 token) failed or refused.
    #[error("{layer} layer custodian: {source}")]
    Custody {
        /// Which layer.
        layer: Layer,
        /// What the token said.
        #[source]
        source: hsm_bridge::Error,
    },
    /// The custodian refused to unwrap the bucket key recorded in the header: the header
    /// was altered, or this is not the custodian (token or key file) that wrapped it.
    #[error(
        "{layer} layer: the custodian cannot unwrap this object's bucket key (wrong token or key, or the object's key metadata was altered)"
    )]
    BucketKeyRejected {
        /// Which layer.
        layer: Layer,
    },
    /// The header names a KEK this custodian does not have.
    #[error(
        "{layer} layer: the object was wrapped under key {kek_id:?}, which this custodian does not hold"
    )]
    UnknownKek {
        /// Which layer.
        layer: Layer,
        /// KEK id from the header.
        kek_id: String,
    },
    /// A local KEK file is missing, unreadable, badly formed or too widely readable.
    #[error("{layer} layer key file {}: {reason}", path.display())]
    KeyFile {
        /// Which layer.
        layer: Layer,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The envelope refused (wrong name, commitment mismatch, malformed header...).
    #[error(transparent)]
    Envelope(#[from] envelope::Error),
    /// A primitive failed where it cannot by construction.
    #[error("internal key-handling failure: {0}")]
    Internal(&'static str),
}

impl KeyError {
    /// True when the failure is the custodian being unreachable (answer 503, retry later)
    /// rather than something wrong with the request or the object.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, KeyError::Custody { source, .. } if source.is_unavailable())
    }
}

/// Settings of a keyring.
#[derive(Debug, Clone, Copy)]
pub struct KeyringSettings {
    /// Segment size of new objects.
    pub segment_size: SegmentSize,
    /// Length of a bucket-key window in seconds: a new bucket key per bucket and layer
    /// each window.
    pub window_secs: u64,
    /// Most unwrapped bucket keys kept for reading (per layer).
    pub cache_entries: usize,
}

/// Counters the gateway exports as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bucket keys found in the cache.
    pub hits: u64,
    /// Bucket keys that needed a custodian call.
    pub misses: u64,
    /// Custodian wrap calls made.
    pub custodian_wraps: u64,
    /// Custodian unwrap calls made.
    pub custodian_unwraps: u64,
}

struct SealEntry {
    window: u64,
    key: Arc<BucketKey>,
}

/// Bounded map from (KEK id, wrapped bucket key) to the key in the clear, evicting the
/// oldest entry first.
struct OpenCache {
    map: HashMap<(String, Vec<u8>), LockedKey>,
    order: VecDeque<(String, Vec<u8>)>,
    capacity: usize,
}

impl OpenCache {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn get(&self, kek_id: &str, wrapped: &[u8]) -> Option<&LockedKey> {
        // Allocation-free lookup would need a borrowed key type; the key is ~50 bytes and
        // this runs once per object header, so the clone is accepted.
        self.map.get(&(kek_id.to_owned(), wrapped.to_vec()))
    }

    fn insert(&mut self, kek_id: &str, wrapped: &[u8], key: LockedKey) {
        let k = (kek_id.to_owned(), wrapped.to_vec());
        if self.map.insert(k.clone(), key).is_none() {
            self.order.push_back(k);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// One core's bucket-key caches.
struct Caches {
    seal: HashMap<(Layer, String), SealEntry>,
    open: [OpenCache; 2],
    stats: CacheStats,
    upload_id_key: Option<UploadIdKey>,
}

/// The key that authenticates the upload ids the gateways hand out: HKDF-SHA256 of both
/// custodians' shares ([`Custodian::upload_id_share`]), so that making or altering an
/// upload id needs both custodians, as opening an object does.
#[derive(Clone)]
pub struct UploadIdKey(Zeroizing<[u8; 32]>);

impl UploadIdKey {
    /// The key from the two shares.
    pub fn from_shares(outer: &[u8], inner: &[u8]) -> Result<Self, KeyError> {
        let mut ikm = Zeroizing::new(Vec::with_capacity(outer.len() + inner.len()));
        ikm.extend_from_slice(outer);
        ikm.extend_from_slice(inner);
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"twofold/v1"), &ikm);
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(b"twofold/v1 upload id", key.as_mut())
            .map_err(|_| KeyError::Internal("HKDF expand"))?;
        Ok(Self(key))
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for UploadIdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadIdKey(..)")
    }
}

/// The two custodians and one core's bucket-key caches.
///
/// Methods take `&self` and are `async`: the caches sit in a `RefCell` that is borrowed
/// only between awaits, so the many requests of one core can share one keyring (through
/// an `Rc`) while a custodian call of one of them is in flight.
pub struct Keyring {
    inner: Custodian,
    outer: Custodian,
    settings: KeyringSettings,
    caches: RefCell<Caches>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("inner", &self.inner.kek_id())
            .field("outer", &self.outer.kek_id())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn layer_index(layer: Layer) -> usize {
    match layer {
        Layer::Inner => 0,
        Layer::Outer => 1,
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Keyring {
    /// A keyring over two opened custodians.
    pub fn new(inner: Custodian, outer: Custodian, settings: KeyringSettings) -> Self {
        Self {
            inner,
            outer,
            caches: RefCell::new(Caches {
                seal: HashMap::new(),
                open: [
                    OpenCache::new(settings.cache_entries),
                    OpenCache::new(settings.cache_entries),
                ],
                stats: CacheStats::default(),
                upload_id_key: None,
            }),
            settings,
        }
    }

    /// The upload-id key ([`UploadIdKey`]): made from both custodians once per core, then
    /// kept. A custodian that is unavailable is [`KeyError::is_unavailable`] (503).
    pub async fn upload_id_key(&self) -> Result<UploadIdKey, KeyError> {
        if let Some(k) = &self.caches.borrow().upload_id_key {
            return Ok(k.clone());
        }
        let outer = self.outer.upload_id_share().await?;
        let inner = self.inner.upload_id_share().await?;
        let key = UploadIdKey::from_shares(&outer, &inner)?;
        self.caches.borrow_mut().upload_id_key = Some(key.clone());
        Ok(key)
    }

    /// Another keyring over the same custodians with empty caches (one per core).
    pub fn fork(&self) -> Self {
        Self::new(self.inner.clone(), self.outer.clone(), self.settings)
    }

    /// The settings it was made with.
    pub fn settings(&self) -> KeyringSettings {
        self.settings
    }

    /// Cache counters so far.
    pub fn stats(&self) -> CacheStats {
        self.caches.borrow().stats
    }

    /// Bucket keys held in the clear, for sealing and for reading, both layers together.
    pub fn cached_keys(&self) -> usize {
        let c = self.caches.borrow();
        c.open.iter().map(OpenCache::len).sum::<usize>() + c.seal.len()
    }

    fn custodian(&self, layer: Layer) -> &Custodian {
        match layer {
            Layer::Inner => &self.inner,
            Layer::Outer => &self.outer,
        }
    }

    /// The current bucket key of `bucket` for `layer`, made and wrapped on first use in
    /// each window.
    async fn sealing_key(&self, layer: Layer, bucket: &str) -> Result<Arc<BucketKey>, KeyError> {
        let window = now_secs() / self.settings.window_secs.max(1);
        {
            let mut c = self.caches.borrow_mut();
            let hit = c
                .seal
                .get(&(layer, bucket.to_owned()))
                .filter(|e| e.window == window)
                .map(|e| e.key.clone());
            crate::telemetry::key_cache("seal", hit.is_some());
            if let Some(key) = hit {
                c.stats.hits += 1;
                return Ok(key);
            }
            c.stats.misses += 1;
        }
        let key = LockedKey::new(&Zeroizing::new(envelope::random_bytes::<32>(layer)?));
        let custodian = self.custodian(layer);
        let wrapped = custodian.wrap(&key).await?;
        let bk = Arc::new(BucketKey {
            layer,
            kek_id: custodian.kek_id().to_owned(),
            key,
            wrapped,
        });
        let mut c = self.caches.borrow_mut();
        let before = (c.seal.len(), c.open[layer_index(layer)].len());
        c.stats.custodian_wraps += 1;
        if c.seal.len() >= self.settings.cache_entries.max(1) {
            c.seal.retain(|_, e| e.window == window);
        }
        c.seal.insert(
            (layer, bucket.to_owned()),
            SealEntry {
                window,
                key: bk.clone(),
            },
        );
        // The same key will be met again when reading objects written in this window.
        let slot = &mut c.open[layer_index(layer)];
        if slot.get(&bk.kek_id, &bk.wrapped).is_none() {
            slot.insert(&bk.kek_id, &bk.wrapped, bk.key.clone());
        }
        crate::telemetry::key_cache_entries("seal", before.0, c.seal.len());
        crate::telemetry::key_cache_entries("open", before.1, c.open[layer_index(layer)].len());
        Ok(bk)
    }

    /// The bucket key a header's layer block names, in the clear.
    async fn opening_key(
        &self,
        layer: Layer,
        kek_id: &str,
        wrapped: &[u8],
    ) -> Result<LockedKey, KeyError> {
        {
            let mut c = self.caches.borrow_mut();
            let hit = c.open[layer_index(layer)].get(kek_id, wrapped).cloned();
            crate::telemetry::key_cache("open", hit.is_some());
            if let Some(k) = hit {
                c.stats.hits += 1;
                return Ok(k);
            }
            c.stats.misses += 1;
        }
        let key = LockedKey::new(&*self.custodian(layer).unwrap(kek_id, wrapped).await?);
        let mut c = self.caches.borrow_mut();
        c.stats.custodian_unwraps += 1;
        let before = c.open[layer_index(layer)].len();
        c.open[layer_index(layer)].insert(kek_id, wrapped, key.clone());
        crate::telemetry::key_cache_entries("open", before, c.open[layer_index(layer)].len());
        Ok(key)
    }

    /// Keys and header for a new object (or multipart upload, with `upload_id`).
    pub async fn seal_new(
        &self,
        name: ObjectName<'_>,
        upload_id: Option<[u8; UPLOAD_ID_LEN_BYTES]>,
    ) -> Result<(Header, DataKeys), KeyError> {
        let inner = self.sealing_key(Layer::Inner, name.bucket).await?;
        let outer = self.sealing_key(Layer::Outer, name.bucket).await?;
        let keys = DataKeys::generate()?;
        let params = SealParams {
            segment_size: self.settings.segment_size,
            upload_id,
        };
        let header = envelope::seal_header(params, &keys, &inner, &outer, name)?;
        tracing::info!(
            target: "twofold::audit",
            action = "data_keys_new",
            bucket = name.bucket,
            key = name.key,
            multipart = upload_id.is_some(),
            inner_kek = %inner.kek_id,
            inner_bucket_key = %crate::telemetry::key_fingerprint(&inner.wrapped),
            outer_kek = %outer.kek_id,
            outer_bucket_key = %crate::telemetry::key_fingerprint(&outer.wrapped),
            "new data keys sealed for an object"
        );
        Ok((header, keys))
    }

    /// The data keys of an object stored under `name` with `header`.
    pub async fn open(&self, header: &Header, name: ObjectName<'_>) -> Result<DataKeys, KeyError> {
        let outer = self
            .opening_key(
                Layer::Outer,
                &header.outer.kek_id,
                &header.outer.wrapped_bucket_key,
            )
            .await?;
        let inner = self
            .opening_key(
                Layer::Inner,
                &header.inner.kek_id,
                &header.inner.wrapped_bucket_key,
            )
            .await?;
        let result = envelope::open_header(header, &inner, &outer, name);
        tracing::info!(
            target: "twofold::audit",
            action = "data_keys_open",
            bucket = name.bucket,
            key = name.key,
            inner_kek = %header.inner.kek_id,
            inner_bucket_key = %crate::telemetry::key_fingerprint(&header.inner.wrapped_bucket_key),
            outer_kek = %header.outer.kek_id,
            outer_bucket_key = %crate::telemetry::key_fingerprint(&header.outer.wrapped_bucket_key),
            ok = result.is_ok(),
            "data keys of an object opened"
        );
        Ok(result?)
    }

    /// The header of a copy of an object: its data keys re-wrapped for `to` under the
    /// destination bucket's current bucket keys. The stored segments are unchanged.
    pub async fn rewrap(
        &self,
        header: &Header,
        from: ObjectName<'_>,
        to: ObjectName<'_>,
    ) -> Result<Header, KeyError> {
        let keys = self.open(header, from).await?;
        let inner = self.sealing_key(Layer::Inner, to.bucket).await?;
        let outer = self.sealing_key(Layer::Outer, to.bucket).await?;
        let mut out = header.clone();
        envelope::rewrap_header(&mut out, &keys, &inner, &outer, to)?;
        tracing::info!(
            target: "twofold::audit",
            action = "data_keys_rewrap",
            from_bucket = from.bucket,
            from_key = from.key,
            bucket = to.bucket,
            key = to.key,
            inner_kek = %inner.kek_id,
            inner_bucket_key = %crate::telemetry::key_fingerprint(&inner.wrapped),
            outer_kek = %outer.kek_id,
            outer_bucket_key = %crate::telemetry::key_fingerprint(&outer.wrapped),
            "data keys re-wrapped for a copy"
        );
        Ok(out)
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let c = self.caches.get_mut();
        crate::telemetry::key_cache_entries("seal", c.seal.len(), 0);
        let open = c.open.iter().map(OpenCache::len).sum::<usize>();
        crate::telemetry::key_cache_entries("open", open, 0);
    }
}

/// Runs a future to completion on the calling thread, parking between polls. For the
/// command line and tests, where blocking is fine; never call it on an I/O loop.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
