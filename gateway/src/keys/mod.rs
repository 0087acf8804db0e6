//! Key custody and the key caches: the layer between the envelope (which needs keys in the
//! clear) and the custodians (which hold the KEKs).
//!
//! Custodian calls are amortised (format v2, `envelope::hierarchy`): for each bucket, layer
//! and epoch (default 30 days) the custodian computes one epoch key, the same on every core
//! of every gateway; for each bucket, layer and window (default one hour) a [`Keyring`]
//! derives a bucket key from it with a random salt, locally, and wraps every object's data
//! key under that. The header records the KEK id, the epoch and the salt, so any gateway
//! can read any object, and a reader needs one custodian call per bucket, layer and epoch
//! (cached), not per bucket key. Format v1 headers carry a bucket key wrapped by the
//! custodian instead; they are still opened (one unwrap per distinct wrapped key, cached),
//! and their copies are still re-wrapped that way, because the segments bind the format
//! version. The caches are bounded and their keys are zeroised when evicted or dropped. A
//! `Keyring` is per core: it is not shared.

pub mod bucket_encryption;
pub mod custodian;
pub mod named;
pub mod versions;

use crate::envelope::aead::Layer;
use crate::envelope::customer::{self, CustomerKey};
use crate::envelope::header::{
    BucketKeyRef, FORMAT_VERSION, Header, LayerBlock, UPLOAD_ID_LEN_BYTES,
};
use crate::envelope::hierarchy;
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
    /// The header names a version of a configured KEK that the custodian's token no
    /// longer holds (retired with `twofold keys destroy --version`, or never made).
    #[error(
        "{layer} layer: the key-encryption key {kek_id:?} that protected this object is no longer held by the custodian"
    )]
    KekGone {
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
    /// The object is under a named key that was destroyed (crypto-shredded): it can never
    /// be read again.
    #[error("the key {key_id:?} that protected this object was destroyed")]
    Shredded {
        /// The destroyed key's id.
        key_id: String,
    },
    /// A key command asked for something the custodian's keys must not undergo (the newest
    /// KEK version destroyed, a key file rotated...); nothing was done.
    #[error("refused: {0}")]
    Refused(&'static str),
    /// The object is bound to a customer-provided key (SSE-C) and the request gave none.
    #[error("the object is encrypted with a customer-provided key, and none was given")]
    CustomerKeyRequired,
    /// The request gave a customer-provided key for an object that has none.
    #[error("a customer-provided key was given for an object that is not encrypted with one")]
    CustomerKeyNotApplicable,
    /// The customer-provided key given does not open the object (a wrong key, or its
    /// header was altered: the two cannot be told apart).
    #[error("the customer-provided key does not open the object")]
    CustomerKeyWrong,
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
    /// Length of an epoch in seconds: a new epoch key per bucket and layer each epoch.
    pub epoch_secs: u64,
    /// Most bucket keys, and most epoch keys, kept in the clear for reading (per layer).
    pub cache_entries: usize,
    /// How often, in seconds, each core asks a custodian for the newest version of a KEK
    /// it seals under (`twofold keys rotate`; [`versions`]).
    pub kek_version_check_secs: u64,
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
    /// Custodian epoch-key derivations made.
    pub custodian_derives: u64,
}

struct SealEntry {
    window: u64,
    key: Arc<BucketKey>,
}

/// Bounded map from (KEK id, reference bytes) to a key in the clear, evicting the oldest
/// entry first. For bucket keys the reference is the header's (wrapped key, or bucket,
/// epoch and salt); for epoch keys, the bucket and epoch.
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

/// One core's key caches.
struct Caches {
    seal: HashMap<(Layer, u8, String, String), SealEntry>,
    open: [OpenCache; 2],
    epoch: [OpenCache; 2],
    stats: CacheStats,
    upload_id_key: Option<UploadIdKey>,
    /// Per layer, the newest version's label of each base label sealed under, and when it
    /// was asked for (seconds).
    current: [HashMap<String, (String, u64)>; 2],
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
    named: std::sync::Arc<named::NamedKeys>,
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
        let named = named::NamedKeys::only_default(inner.kek_id(), outer.kek_id());
        Self {
            named: std::sync::Arc::new(named),
            inner,
            outer,
            caches: RefCell::new(Caches {
                seal: HashMap::new(),
                open: [
                    OpenCache::new(settings.cache_entries),
                    OpenCache::new(settings.cache_entries),
                ],
                epoch: [
                    OpenCache::new(settings.cache_entries),
                    OpenCache::new(settings.cache_entries),
                ],
                stats: CacheStats::default(),
                upload_id_key: None,
                current: [HashMap::new(), HashMap::new()],
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
        let mut forked = Self::new(self.inner.clone(), self.outer.clone(), self.settings);
        forked.named = self.named.clone();
        forked
    }

    /// The same keyring with these keys (the default and the named ones, whose KEKs the
    /// custodians were opened with).
    pub fn with_named_keys(mut self, named: named::NamedKeys) -> Self {
        self.named = std::sync::Arc::new(named);
        self
    }

    /// The default key and the named keys.
    pub fn named_keys(&self) -> &named::NamedKeys {
        &self.named
    }

    /// The settings it was made with.
    pub fn settings(&self) -> KeyringSettings {
        self.settings
    }

    /// Cache counters so far.
    pub fn stats(&self) -> CacheStats {
        self.caches.borrow().stats
    }

    /// Bucket and epoch keys held in the clear, for sealing and for reading, both layers
    /// together.
    pub fn cached_keys(&self) -> usize {
        let c = self.caches.borrow();
        c.open
            .iter()
            .chain(&c.epoch)
            .map(OpenCache::len)
            .sum::<usize>()
            + c.seal.len()
    }

    fn custodian(&self, layer: Layer) -> &Custodian {
        match layer {
            Layer::Inner => &self.inner,
            Layer::Outer => &self.outer,
        }
    }

    /// The label of the newest version of the KEK whose base label is `base` (see
    /// [`versions`]): asked of the custodian at most once per
    /// [`KeyringSettings::kek_version_check_secs`] per core. When the custodian cannot
    /// answer, the version known so far is kept (and asked for again at the next check).
    async fn current_kek(&self, layer: Layer, base: &str) -> Result<String, KeyError> {
        let now = now_secs();
        let known = {
            let c = self.caches.borrow();
            match c.current[layer_index(layer)].get(base) {
                Some((label, asked))
                    if now.saturating_sub(*asked) < self.settings.kek_version_check_secs.max(1) =>
                {
                    return Ok(label.clone());
                }
                other => other.map(|(label, _)| label.clone()),
            }
        };
        let label = match (self.custodian(layer).versions(base).await, known) {
            (Ok(found), _) => versions::label(base, found.last().copied().unwrap_or(1)),
            (Err(e), Some(label)) => {
                tracing::warn!(layer = %layer, kek = base, error = %e, "the custodian did not list its KEK versions; sealing under the version known so far");
                label
            }
            (Err(e), None) => return Err(e),
        };
        self.caches.borrow_mut().current[layer_index(layer)]
            .insert(base.to_owned(), (label.clone(), now));
        Ok(label)
    }

    /// The KEK labels (inner, outer) that new objects, and copies, under `key` are sealed
    /// with in format `version`: the newest versions in format 2; in format 1, whose
    /// bucket keys are wrapped under the custodian's own KEK, the base labels.
    async fn sealing_keks(
        &self,
        version: u8,
        key: named::KeyChoice<'_>,
    ) -> Result<(String, String), KeyError> {
        if version < FORMAT_VERSION {
            return Ok((key.inner_kek.to_owned(), key.outer_kek.to_owned()));
        }
        Ok((
            self.current_kek(Layer::Inner, key.inner_kek).await?,
            self.current_kek(Layer::Outer, key.outer_kek).await?,
        ))
    }

    /// Whether the object whose header is `header` is sealed under the newest KEK versions
    /// of its key (`None`: no configured key has its KEK pair). `twofold rewrap` moves
    /// those that are not.
    pub async fn is_current(&self, header: &Header) -> Result<Option<bool>, KeyError> {
        let named = self.named.clone();
        let Some(id) = named.id_of(&header.inner.kek_id, &header.outer.kek_id) else {
            return Ok(None);
        };
        let key = configured(&named, id)?;
        let (inner, outer) = self.sealing_keks(header.version(), key).await?;
        Ok(Some(
            header.inner.kek_id == inner && header.outer.kek_id == outer,
        ))
    }

    /// The current bucket key of `bucket` for `layer` in format `version`: made on first
    /// use in each window (version 2: derived from the epoch key with a fresh salt;
    /// version 1: random and wrapped by the custodian).
    async fn sealing_key(
        &self,
        layer: Layer,
        bucket: &str,
        version: u8,
        kek_id: &str,
    ) -> Result<Arc<BucketKey>, KeyError> {
        let now = now_secs();
        let window = now / self.settings.window_secs.max(1);
        let slot = (layer, version, bucket.to_owned(), kek_id.to_owned());
        {
            let mut c = self.caches.borrow_mut();
            let hit = c
                .seal
                .get(&slot)
                .filter(|e| e.window == window)
                .map(|e| e.key.clone());
            crate::telemetry::key_cache("seal", hit.is_some());
            if let Some(key) = hit {
                c.stats.hits += 1;
                return Ok(key);
            }
            c.stats.misses += 1;
        }
        let custodian = self.custodian(layer);
        let kek_id = kek_id.to_owned();
        let (key, reference) = if version == FORMAT_VERSION {
            let epoch = hierarchy::epoch_of(now, self.settings.epoch_secs);
            let ek = self.epoch_key(layer, &kek_id, bucket, epoch).await?;
            let salt = envelope::random_bytes(layer)?;
            let bk =
                hierarchy::bucket_key(layer, &ek, &salt).map_err(|_| KeyError::Internal("HKDF"))?;
            (LockedKey::new(&bk), BucketKeyRef::Derived { epoch, salt })
        } else {
            // Version 1 bucket keys are wrapped under the current KEK only.
            if kek_id != custodian.kek_id() {
                return Err(KeyError::Internal("a named key for a version 1 object"));
            }
            let key = LockedKey::new(&Zeroizing::new(envelope::random_bytes::<32>(layer)?));
            let wrapped = custodian.wrap(&key).await?;
            self.caches.borrow_mut().stats.custodian_wraps += 1;
            (key, BucketKeyRef::Wrapped(wrapped))
        };
        let bk = Arc::new(BucketKey {
            layer,
            kek_id,
            key,
            reference,
        });
        let mut c = self.caches.borrow_mut();
        let before = c.seal.len();
        if c.seal.len() >= self.settings.cache_entries.max(1) {
            c.seal.retain(|_, e| e.window == window);
        }
        c.seal.insert(
            slot,
            SealEntry {
                window,
                key: bk.clone(),
            },
        );
        crate::telemetry::key_cache_entries("seal", before, c.seal.len());
        drop(c);
        // The same key will be met again when reading objects written in this window.
        self.remember_opening_key(
            layer,
            &bk.kek_id,
            &open_cache_ref(&bk.reference, bucket),
            &bk.key,
        );
        Ok(bk)
    }

    /// Puts a bucket key in the core's cache for reading (the same reference always names
    /// the same key, so an entry already there is simply replaced by its equal).
    fn remember_opening_key(&self, layer: Layer, kek_id: &str, reference: &[u8], key: &LockedKey) {
        let mut c = self.caches.borrow_mut();
        let slot = &mut c.open[layer_index(layer)];
        let before = slot.len();
        slot.insert(kek_id, reference, key.clone());
        crate::telemetry::key_cache_entries("open", before, slot.len());
    }

    /// The epoch key of (`bucket`, `epoch`) under the KEK `kek_id`, from the cache or the
    /// custodian.
    async fn epoch_key(
        &self,
        layer: Layer,
        kek_id: &str,
        bucket: &str,
        epoch: u32,
    ) -> Result<LockedKey, KeyError> {
        let mut id = Vec::with_capacity(bucket.len() + 4);
        id.extend_from_slice(bucket.as_bytes());
        id.extend_from_slice(&epoch.to_be_bytes());
        {
            let c = self.caches.borrow();
            let hit = c.epoch[layer_index(layer)].get(kek_id, &id).cloned();
            crate::telemetry::key_cache("epoch", hit.is_some());
            if let Some(k) = hit {
                return Ok(k);
            }
        }
        let input = hierarchy::epoch_input(layer, bucket, epoch);
        let prf = self
            .custodian(layer)
            .derive_epoch_secret(kek_id, &input)
            .await?;
        let ek = hierarchy::epoch_key(layer, &prf).map_err(|_| KeyError::Internal("HKDF"))?;
        let key = LockedKey::new(&ek);
        let mut c = self.caches.borrow_mut();
        c.stats.custodian_derives += 1;
        let before = c.epoch[layer_index(layer)].len();
        c.epoch[layer_index(layer)].insert(kek_id, &id, key.clone());
        crate::telemetry::key_cache_entries("epoch", before, c.epoch[layer_index(layer)].len());
        Ok(key)
    }

    /// The bucket key a header's layer block names, in the clear, for an object in `bucket`.
    async fn opening_key(&self, block: &LayerBlock, bucket: &str) -> Result<LockedKey, KeyError> {
        let layer = block.layer;
        let reference = open_cache_ref(&block.bucket_key, bucket);
        {
            let mut c = self.caches.borrow_mut();
            let hit = c.open[layer_index(layer)]
                .get(&block.kek_id, &reference)
                .cloned();
            crate::telemetry::key_cache("open", hit.is_some());
            if let Some(k) = hit {
                c.stats.hits += 1;
                return Ok(k);
            }
            c.stats.misses += 1;
        }
        let key = match &block.bucket_key {
            BucketKeyRef::Derived { epoch, .. }
                if !hierarchy::epoch_has_begun(*epoch, now_secs()) =>
            {
                // No gateway has sealed under a future epoch: an altered header, refused
                // before it can cost a custodian call.
                return Err(KeyError::BucketKeyRejected { layer });
            }
            BucketKeyRef::Derived { epoch, salt } => {
                let ek = self.epoch_key(layer, &block.kek_id, bucket, *epoch).await?;
                let bk = hierarchy::bucket_key(layer, &ek, salt)
                    .map_err(|_| KeyError::Internal("HKDF"))?;
                LockedKey::new(&bk)
            }
            BucketKeyRef::Wrapped(wrapped) => {
                let key = self.custodian(layer).unwrap(&block.kek_id, wrapped).await?;
                self.caches.borrow_mut().stats.custodian_unwraps += 1;
                LockedKey::new(&key)
            }
        };
        self.remember_opening_key(layer, &block.kek_id, &reference, &key);
        Ok(key)
    }

    /// Keys and header for a new object (or multipart upload, with `upload_id`), in the
    /// format this build writes.
    pub async fn seal_new(
        &self,
        name: ObjectName<'_>,
        upload_id: Option<[u8; UPLOAD_ID_LEN_BYTES]>,
    ) -> Result<(Header, DataKeys), KeyError> {
        self.seal_new_in(name, upload_id, FORMAT_VERSION).await
    }

    /// [`Keyring::seal_new`] in a given format version: `FORMAT_VERSION_WRAPPED` makes the
    /// format-v1 objects that compatibility tests and migration tools need.
    pub async fn seal_new_in(
        &self,
        name: ObjectName<'_>,
        upload_id: Option<[u8; UPLOAD_ID_LEN_BYTES]>,
        version: u8,
    ) -> Result<(Header, DataKeys), KeyError> {
        let named = self.named.clone();
        self.seal_with(name, upload_id, version, named.default_choice(), None)
            .await
    }

    /// [`Keyring::seal_new`] under the key whose own id is `key_id` (the default's, or a
    /// named key's: as [`named::requested`] gave it).
    /// `customer`: the request's customer-provided key (SSE-C), bound into both data-key
    /// wraps.
    pub async fn seal_new_for(
        &self,
        name: ObjectName<'_>,
        upload_id: Option<[u8; UPLOAD_ID_LEN_BYTES]>,
        key_id: &str,
        customer: Option<&CustomerKey>,
    ) -> Result<(Header, DataKeys), KeyError> {
        let named = self.named.clone();
        let key = configured(&named, key_id)?;
        self.seal_with(name, upload_id, FORMAT_VERSION, key, customer)
            .await
    }

    async fn seal_with(
        &self,
        name: ObjectName<'_>,
        upload_id: Option<[u8; UPLOAD_ID_LEN_BYTES]>,
        version: u8,
        key: named::KeyChoice<'_>,
        customer: Option<&CustomerKey>,
    ) -> Result<(Header, DataKeys), KeyError> {
        let (inner_kek, outer_kek) = self.sealing_keks(version, key).await?;
        let inner = self
            .sealing_key(Layer::Inner, name.bucket, version, &inner_kek)
            .await?;
        let outer = self
            .sealing_key(Layer::Outer, name.bucket, version, &outer_kek)
            .await?;
        let (inner, outer) = (bound(inner, customer)?, bound(outer, customer)?);
        let keys = DataKeys::generate()?;
        let params = SealParams {
            segment_size: self.settings.segment_size,
            upload_id,
            customer_key: customer.is_some(),
        };
        let header = envelope::seal_header(params, &keys, &inner, &outer, name)?;
        tracing::info!(
            target: "twofold::audit",
            action = "data_keys_new",
            bucket = name.bucket,
            key = name.key,
            multipart = upload_id.is_some(),
            inner_kek = %inner.kek_id,
            inner_bucket_key = %crate::telemetry::bucket_key_fingerprint(&inner.reference),
            outer_kek = %outer.kek_id,
            outer_bucket_key = %crate::telemetry::bucket_key_fingerprint(&outer.reference),
            "new data keys sealed for an object"
        );
        Ok((header, keys))
    }

    /// The data keys of an object stored under `name` with `header`, which must not be
    /// bound to a customer-provided key.
    pub async fn open(&self, header: &Header, name: ObjectName<'_>) -> Result<DataKeys, KeyError> {
        self.open_with(header, name, None).await
    }

    /// The data keys of an object stored under `name` with `header`, with the request's
    /// customer-provided key (SSE-C), which an object bound to one needs and any other
    /// refuses.
    pub async fn open_with(
        &self,
        header: &Header,
        name: ObjectName<'_>,
        customer: Option<&CustomerKey>,
    ) -> Result<DataKeys, KeyError> {
        // A destroyed key's KEKs are gone: refused here, without a custodian call.
        if let Some(key_id) = self
            .named
            .destroyed_id_of(&header.inner.kek_id, &header.outer.kek_id)
        {
            return Err(KeyError::Shredded {
                key_id: key_id.to_owned(),
            });
        }
        match (header.customer_key(), customer) {
            (true, None) => return Err(KeyError::CustomerKeyRequired),
            (false, Some(_)) => return Err(KeyError::CustomerKeyNotApplicable),
            _ => {}
        }
        let outer = self.opening_key(&header.outer, name.bucket).await?;
        let inner = self.opening_key(&header.inner, name.bucket).await?;
        let result = match customer {
            None => envelope::open_header(header, &inner, &outer, name),
            Some(c) => envelope::open_header(
                header,
                &*customer::wrap_key(Layer::Inner, &inner, c)?,
                &*customer::wrap_key(Layer::Outer, &outer, c)?,
                name,
            ),
        };
        tracing::info!(
            target: "twofold::audit",
            action = "data_keys_open",
            bucket = name.bucket,
            key = name.key,
            inner_kek = %header.inner.kek_id,
            inner_bucket_key = %crate::telemetry::bucket_key_fingerprint(&header.inner.bucket_key),
            outer_kek = %header.outer.kek_id,
            outer_bucket_key = %crate::telemetry::bucket_key_fingerprint(&header.outer.bucket_key),
            ok = result.is_ok(),
            customer_key = customer.is_some(),
            "data keys of an object opened"
        );
        match result {
            Err(envelope::Error::DataKeyRejected { .. }) if customer.is_some() => {
                Err(KeyError::CustomerKeyWrong)
            }
            r => Ok(r?),
        }
    }

    /// The header of a copy of an object: its data keys re-wrapped for `to` under the
    /// destination bucket's current bucket keys of the header's format version (the
    /// segments bind it), and the data keys. The stored segments are unchanged.
    pub async fn rewrap(
        &self,
        header: &Header,
        from: ObjectName<'_>,
        to: ObjectName<'_>,
    ) -> Result<(Header, DataKeys), KeyError> {
        let named = self.named.clone();
        self.rewrap_under(header, (from, None), (to, None), named.default_choice())
            .await
    }

    /// [`Keyring::rewrap`] under the key whose own id is `key_id` (a version 1 object: the
    /// default only), each name with its customer-provided key (SSE-C): the source's
    /// opens it, the copy is bound to the destination's.
    pub async fn rewrap_for(
        &self,
        header: &Header,
        from: (ObjectName<'_>, Option<&CustomerKey>),
        to: (ObjectName<'_>, Option<&CustomerKey>),
        key_id: &str,
    ) -> Result<(Header, DataKeys), KeyError> {
        let named = self.named.clone();
        let key = configured(&named, key_id)?;
        self.rewrap_under(header, from, to, key).await
    }

    async fn rewrap_under(
        &self,
        header: &Header,
        (from, from_customer): (ObjectName<'_>, Option<&CustomerKey>),
        (to, to_customer): (ObjectName<'_>, Option<&CustomerKey>),
        key: named::KeyChoice<'_>,
    ) -> Result<(Header, DataKeys), KeyError> {
        let keys = self.open_with(header, from, from_customer).await?;
        let version = header.version();
        let (inner_kek, outer_kek) = self.sealing_keks(version, key).await?;
        let inner = self
            .sealing_key(Layer::Inner, to.bucket, version, &inner_kek)
            .await?;
        let outer = self
            .sealing_key(Layer::Outer, to.bucket, version, &outer_kek)
            .await?;
        let (inner, outer) = (bound(inner, to_customer)?, bound(outer, to_customer)?);
        let mut out = header.clone();
        out.inner.customer_key = to_customer.is_some();
        out.outer.customer_key = to_customer.is_some();
        envelope::rewrap_header(&mut out, &keys, &inner, &outer, to)?;
        tracing::info!(
            target: "twofold::audit",
            action = "data_keys_rewrap",
            from_bucket = from.bucket,
            from_key = from.key,
            bucket = to.bucket,
            key = to.key,
            inner_kek = %inner.kek_id,
            inner_bucket_key = %crate::telemetry::bucket_key_fingerprint(&inner.reference),
            outer_kek = %outer.kek_id,
            outer_bucket_key = %crate::telemetry::bucket_key_fingerprint(&outer.reference),
            "data keys re-wrapped for a copy"
        );
        Ok((out, keys))
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let c = self.caches.get_mut();
        crate::telemetry::key_cache_entries("seal", c.seal.len(), 0);
        let open = c.open.iter().map(OpenCache::len).sum::<usize>();
        crate::telemetry::key_cache_entries("open", open, 0);
        let epoch = c.epoch.iter().map(OpenCache::len).sum::<usize>();
        crate::telemetry::key_cache_entries("epoch", epoch, 0);
    }
}

/// The key that wraps data keys under `bk` for an object bound to `customer` (SSE-C): a
/// customer wrap key with the bucket key's KEK and reference; `bk` itself without one.
fn bound(bk: Arc<BucketKey>, customer: Option<&CustomerKey>) -> Result<Arc<BucketKey>, KeyError> {
    let Some(c) = customer else {
        return Ok(bk);
    };
    if bk.reference.version() < FORMAT_VERSION {
        return Err(KeyError::Internal("a customer key for a version 1 object"));
    }
    Ok(Arc::new(BucketKey {
        layer: bk.layer,
        kek_id: bk.kek_id.clone(),
        key: LockedKey::new(&*customer::wrap_key(bk.layer, &bk.key, c)?),
        reference: bk.reference.clone(),
    }))
}

/// The key whose own id is `key_id`; the serving layer resolved it from the request, so
/// another is an internal error.
fn configured<'k>(
    named: &'k named::NamedKeys,
    key_id: &str,
) -> Result<named::KeyChoice<'k>, KeyError> {
    named
        .resolve(key_id)
        .ok_or(KeyError::Internal("a key id no configured key answers to"))
}

/// The open-cache key of a bucket key: a v1 wrapped key as it is; a v2 reference with the
/// bucket, since its epoch key is the bucket's.
fn open_cache_ref(reference: &BucketKeyRef, bucket: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + bucket.len());
    reference.write(&mut out);
    if let BucketKeyRef::Derived { .. } = reference {
        out.extend_from_slice(bucket.as_bytes());
    }
    out
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
