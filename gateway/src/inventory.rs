//! What the backend holds, by key: every object of the chosen buckets (all that the
//! backend lists, by default) is listed and HEADed straight at the backend with the
//! gateway's own backend credential, and counted under the KEK pair its header names. The
//! counting and the listing documents are pure; the walk is [`scan`]. `twofold keys
//! report` prints it, and `twofold keys destroy --dry-run` counts from it what a
//! destruction would make unreadable.

use crate::config::{BackendTransport, ServeSettings};
use crate::envelope::objmeta;
use crate::keys::named::NamedKeys;
use crate::s3::xml;
use crate::serve::backend::{Backend, in_flight};
use std::collections::{BTreeMap, BTreeSet};

/// HEAD requests to the backend in flight at once during a scan.
pub const SCAN_HEADS_IN_FLIGHT: usize = 16;

/// The objects counted under one KEK pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Objects whose header names the pair.
    pub objects: u64,
    /// The buckets they are in.
    pub buckets: BTreeSet<String>,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Twofold objects by (inner KEK label, outer KEK label) of their headers.
    pub by_keks: BTreeMap<(String, String), Tally>,
    /// Objects without Twofold's header (written around the gateway).
    pub unencrypted: u64,
    /// Objects whose header does not parse, or whose HEAD failed.
    pub unreadable: u64,
}

impl Inventory {
    /// Counts one object of `bucket` whose Twofold header value is `header` (`None`: the
    /// object has none).
    pub fn count(&mut self, bucket: &str, header: Option<&str>) {
        match header.map(objmeta::decode) {
            None => self.unencrypted += 1,
            Some(Err(_)) => self.unreadable += 1,
            Some(Ok(h)) => {
                let t = self
                    .by_keks
                    .entry((h.inner.kek_id.clone(), h.outer.kek_id.clone()))
                    .or_default();
                t.objects += 1;
                t.buckets.insert(bucket.to_owned());
            }
        }
    }

    /// The objects under the key `key_id` (a configured key's own id; the default's
    /// includes its retired KEKs, a destroyed key's any object with either of its KEKs).
    pub fn under(&self, keys: &NamedKeys, key_id: &str) -> Tally {
        let mut out = Tally::default();
        for ((inner, outer), t) in &self.by_keks {
            let id = keys
                .id_of(inner, outer)
                .or_else(|| keys.destroyed_id_of(inner, outer));
            if id == Some(key_id) {
                out.objects += t.objects;
                out.buckets.extend(t.buckets.iter().cloned());
            }
        }
        out
    }

    /// The objects whose header names the KEK `inner` in the inner layer or `outer` in
    /// the outer one (a version about to be destroyed).
    pub fn naming(&self, inner: &str, outer: &str) -> Tally {
        let mut out = Tally::default();
        for ((i, o), t) in &self.by_keks {
            if i == inner || o == outer {
                out.objects += t.objects;
                out.buckets.extend(t.buckets.iter().cloned());
            }
        }
        out
    }

    /// The report's lines: one per KEK pair (the key id that names it, or `-`), then the
    /// objects without Twofold headers and those that could not be read.
    pub fn lines(&self, keys: &NamedKeys) -> Vec<String> {
        let mut out = vec![format!(
            "{:<32} {:<32} {:<32} {:>10} {:>8}",
            "KEY ID", "INNER KEK", "OUTER KEK", "OBJECTS", "BUCKETS"
        )];
        for ((inner, outer), t) in &self.by_keks {
            let id = keys
                .id_of(inner, outer)
                .map(str::to_owned)
                .or_else(|| {
                    keys.destroyed_id_of(inner, outer)
                        .map(|d| format!("{d} (destroyed)"))
                })
                .unwrap_or_else(|| "-".to_owned());
            out.push(format!(
                "{id:<32} {inner:<32} {outer:<32} {:>10} {:>8}",
                t.objects,
                t.buckets.len()
            ));
        }
        out.push(format!(
            "objects without Twofold headers: {}",
            self.unencrypted
        ));
        out.push(format!(
            "objects that could not be read: {}",
            self.unreadable
        ));
        out
    }
}

/// The bucket names of a ListBuckets result.
pub fn listed_buckets(document: &str) -> Vec<String> {
    xml::elements(document, "Bucket")
        .0
        .into_iter()
        .filter_map(|b| xml::value(b, "Name").map(xml::unescape))
        .collect()
}

/// The keys of a ListObjectsV2 page and the token of the next page, if any.
pub fn listed_keys(document: &str) -> (Vec<String>, Option<String>) {
    let keys = xml::elements(document, "Contents")
        .0
        .into_iter()
        .filter_map(|c| xml::value(c, "Key").map(xml::unescape))
        .collect();
    let truncated = xml::value(document, "IsTruncated").is_some_and(|v| v.trim() == "true");
    let next = xml::value(document, "NextContinuationToken")
        .map(xml::unescape)
        .filter(|t| truncated && !t.is_empty());
    (keys, next)
}

/// Walks `buckets` (every bucket the backend lists when empty) and counts their objects'
/// KEK pairs. Runs its own single-threaded runtime; reaches the backend as the gateway
/// does, with its own backend credential.
pub fn scan(settings: &ServeSettings, buckets: &[String]) -> Result<Inventory, String> {
    let (rt, tls) = backend_runtime(settings)?;
    rt.block_on(async {
        let backend = Backend::new(settings, tls);
        let buckets = match buckets.is_empty() {
            false => buckets.to_vec(),
            true => listed_buckets(&get(&backend, "/", None).await?),
        };
        let mut inventory = Inventory::default();
        for bucket in &buckets {
            scan_bucket(&backend, bucket, &mut inventory).await?;
        }
        Ok(inventory)
    })
}

/// A runtime of its own for a command that reaches the backend as the gateway does, and
/// the TLS connector for an `https://` backend.
pub(crate) fn backend_runtime(
    settings: &ServeSettings,
) -> Result<
    (
        compio::runtime::Runtime,
        Option<std::sync::Arc<rustls::ClientConfig>>,
    ),
    String,
> {
    let tls = match &settings.backend_transport {
        BackendTransport::Tls { ca_bundle, .. } => {
            let shared =
                crate::tls::client_config(ca_bundle.as_deref()).map_err(|e| e.to_string())?;
            Some(crate::tls::core_client_config(&shared))
        }
        BackendTransport::PlainHttp => None,
    };
    let rt = compio::runtime::RuntimeBuilder::new()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    Ok((rt, tls))
}

/// Lists `bucket` page by page and counts every object's header.
async fn scan_bucket(
    backend: &Backend,
    bucket: &str,
    inventory: &mut Inventory,
) -> Result<(), String> {
    let path = crate::serve::backend_path(Some(bucket), None);
    let mut token: Option<String> = None;
    loop {
        let mut query = "list-type=2".to_owned();
        if let Some(t) = &token {
            query.push_str(&format!(
                "&continuation-token={}",
                crate::serve::encode(t, false)
            ));
        }
        let (keys, next) = listed_keys(&get(backend, &path, Some(&query)).await?);
        let heads = keys.iter().map(|key| async move {
            let path = crate::serve::backend_path(Some(bucket), Some(key));
            match backend
                .simple("HEAD", &path, None, Vec::new(), Vec::new())
                .await
            {
                Ok((h, _)) if h.status == 200 => {
                    Ok(h.header_str(objmeta::HTTP_HEADER).map(str::to_owned))
                }
                _ => Err(()),
            }
        });
        for head in in_flight(heads.collect(), SCAN_HEADS_IN_FLIGHT).await {
            match head {
                Ok(header) => inventory.count(bucket, header.as_deref()),
                Err(()) => inventory.unreadable += 1,
            }
        }
        match next {
            Some(t) => token = Some(t),
            None => return Ok(()),
        }
    }
}

/// A backend GET's body, or what went wrong.
async fn get(backend: &Backend, path: &str, query: Option<&str>) -> Result<String, String> {
    let (resp, body) = backend
        .simple("GET", path, query, Vec::new(), Vec::new())
        .await
        .map_err(|e| format!("the backend: {e}"))?;
    if resp.status != 200 {
        return Err(format!(
            "the backend answered {} to GET {path}: {}",
            resp.status,
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::header::test_header;
    use crate::keys::named::{DEFAULT_KEY_ID, NamedKey};

    #[test]
    fn listings_give_keys_buckets_and_the_next_page() {
        let page = "<ListBucketResult><IsTruncated>true</IsTruncated>\
            <Contents><Key>a&amp;b</Key><Size>3</Size></Contents>\
            <Contents><Key>c</Key></Contents>\
            <NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
        assert_eq!(
            listed_keys(page),
            (
                vec!["a&b".to_owned(), "c".to_owned()],
                Some("t1".to_owned())
            )
        );
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(listed_keys(last), (Vec::new(), None));
        let buckets = "<ListAllMyBucketsResult><Buckets><Bucket><Name>x</Name></Bucket>\
            <Bucket><Name>y</Name></Bucket></Buckets></ListAllMyBucketsResult>";
        assert_eq!(listed_buckets(buckets), ["x", "y"]);
    }

    #[test]
    fn objects_are_counted_under_their_keys() {
        let h = test_header(1);
        let (inner, outer) = (h.inner.kek_id.clone(), h.outer.kek_id.clone());
        let mut keys = NamedKeys::only_default("other-i", "other-o");
        keys.keys.push(NamedKey {
            id: "alias/k".into(),
            aliases: Vec::new(),
            inner_kek: inner.clone(),
            outer_kek: outer.clone(),
            destroyed: false,
        });
        let mut inv = Inventory::default();
        let value = objmeta::encode(&h);
        inv.count("b1", Some(&value));
        inv.count("b2", Some(&value));
        inv.count("b2", None);
        inv.count("b2", Some("not a header"));
        assert_eq!(inv.unencrypted, 1);
        assert_eq!(inv.unreadable, 1);
        let t = inv.under(&keys, "alias/k");
        assert_eq!((t.objects, t.buckets.len()), (2, 2));
        assert_eq!(inv.under(&keys, DEFAULT_KEY_ID).objects, 0);
        keys.keys[0].destroyed = true;
        assert_eq!(inv.under(&keys, "alias/k").objects, 2);
        let lines = inv.lines(&keys);
        assert!(lines[1].starts_with("alias/k (destroyed)"), "{lines:?}");
    }
}
