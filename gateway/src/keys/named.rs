//! Named keys: the KMS key ids S3 clients name (`x-amz-server-side-encryption-aws-kms-key-id`:
//! an alias such as `alias/finance`, a key id, or an ARN of either), each mapped by the
//! configuration to a key-encryption key in both custodians (`docs/operations.md`, *Key
//! management*). Pure lookups, no I/O: which KEK pair a requested id names, and which id a
//! header's KEK pair shows in responses.

use super::versions;

/// Most named keys a configuration may hold.
pub const NAMED_KEYS_MAX: usize = 256;
/// Longest key id or alias, in characters (AWS KMS ARNs of aliases stay well below).
pub const KEY_ID_LEN_MAX: usize = 256;
/// The key id of the custodians' own KEK pair when the configuration names none.
pub const DEFAULT_KEY_ID: &str = "alias/twofold-default";

/// Whether `id` can be a configured key id or alias: 1 to [`KEY_ID_LEN_MAX`] printable
/// ASCII characters without spaces.
pub fn key_id_is_valid(id: &str) -> bool {
    (1..=KEY_ID_LEN_MAX).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A named key: the id clients name it by, other ids that mean it (an alias ARN, the key's
/// own id), and its KEK label in each custodian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKey {
    /// The id responses show.
    pub id: String,
    /// Other ids requests may name it by.
    pub aliases: Vec<String>,
    /// KEK label in the inner custodian.
    pub inner_kek: String,
    /// KEK label in the outer custodian.
    pub outer_kek: String,
    /// Destroyed (crypto-shredded): its KEKs are gone from the tokens, nothing is sealed
    /// under it, and its objects are refused as shredded.
    pub destroyed: bool,
}

impl NamedKey {
    fn answers_to(&self, requested: &str) -> bool {
        !self.destroyed && (self.id == requested || self.aliases.iter().any(|a| a == requested))
    }
}

/// The KEK pair an object is sealed under, and the key id that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyChoice<'a> {
    /// The key id responses show.
    pub id: &'a str,
    /// KEK label in the inner custodian.
    pub inner_kek: &'a str,
    /// KEK label in the outer custodian.
    pub outer_kek: &'a str,
}

/// Every key the gateway can seal under: the default (the custodians' current KEKs, with
/// their retired ones) and the named keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKeys {
    /// The default key: the custodians' current KEK labels, under its id.
    pub default: NamedKey,
    /// Retired KEK labels of the default key, per layer (inner, outer): objects under them
    /// still show the default's id.
    pub retired: (Vec<String>, Vec<String>),
    /// The named keys.
    pub keys: Vec<NamedKey>,
    /// Buckets whose objects are sealed under another key than the default when their
    /// requests name none: (bucket, that key's own id).
    pub bucket_defaults: Vec<(String, String)>,
}

impl NamedKeys {
    /// Only the default key, as the custodians hold it.
    pub fn only_default(inner_kek: &str, outer_kek: &str) -> Self {
        Self {
            default: NamedKey {
                id: DEFAULT_KEY_ID.to_owned(),
                aliases: Vec::new(),
                inner_kek: inner_kek.to_owned(),
                outer_kek: outer_kek.to_owned(),
                destroyed: false,
            },
            retired: (Vec::new(), Vec::new()),
            keys: Vec::new(),
            bucket_defaults: Vec::new(),
        }
    }

    /// The default key.
    pub fn default_choice(&self) -> KeyChoice<'_> {
        choice(&self.default)
    }

    /// The key objects of `bucket` are sealed under when their requests name none: the
    /// bucket's configured default, else the default key.
    pub fn default_for(&self, bucket: &str) -> KeyChoice<'_> {
        self.bucket_defaults
            .iter()
            .find(|(b, _)| b == bucket)
            .and_then(|(_, id)| self.resolve(id))
            .unwrap_or_else(|| self.default_choice())
    }

    /// The key a request names (by its id or an alias, the default's included); `None` for
    /// an id no key answers to.
    pub fn resolve(&self, requested: &str) -> Option<KeyChoice<'_>> {
        std::iter::once(&self.default)
            .chain(&self.keys)
            .find(|k| k.answers_to(requested))
            .map(choice)
    }

    /// The id of the key whose KEKs are `inner` and `outer` (a header's), for responses:
    /// a named key's, or the default's (retired KEKs of the default included), whichever
    /// versions of them (see [`versions`]); `None` for a pair no key has.
    pub fn id_of(&self, inner: &str, outer: &str) -> Option<&str> {
        let (inner_base, outer_base) = (versions::parse(inner).0, versions::parse(outer).0);
        if let Some(k) = self
            .keys
            .iter()
            .find(|k| !k.destroyed && k.inner_kek == inner_base && k.outer_kek == outer_base)
        {
            return Some(&k.id);
        }
        let d = &self.default;
        let is_default = |kek: &str, current: &str, retired: &[String]| {
            versions::parse(kek).0 == current || retired.iter().any(|r| r == kek)
        };
        (is_default(inner, &d.inner_kek, &self.retired.0)
            && is_default(outer, &d.outer_kek, &self.retired.1))
        .then_some(d.id.as_str())
    }

    /// The id of the destroyed key whose KEKs (any version) are `inner` or `outer` (either
    /// is enough: a layer whose KEK is gone cannot be opened), if there is one.
    pub fn destroyed_id_of(&self, inner: &str, outer: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|k| {
                k.destroyed
                    && (versions::is_version_of(inner, &k.inner_kek)
                        || versions::is_version_of(outer, &k.outer_kek))
            })
            .map(|k| k.id.as_str())
    }

    /// The checks a configuration must pass: every id and alias valid and answering to one
    /// key only, no two keys with one KEK pair, at most [`NAMED_KEYS_MAX`] keys. The error
    /// says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.keys.len() > NAMED_KEYS_MAX {
            return Err(format!("at most {NAMED_KEYS_MAX} named keys"));
        }
        let all: Vec<&NamedKey> = std::iter::once(&self.default).chain(&self.keys).collect();
        let mut seen: Vec<&str> = Vec::new();
        for k in &all {
            for id in std::iter::once(&k.id).chain(&k.aliases) {
                if !key_id_is_valid(id) {
                    return Err(format!(
                        "key id {id:?}: 1 to {KEY_ID_LEN_MAX} printable ASCII characters without spaces"
                    ));
                }
                if seen.contains(&id.as_str()) {
                    return Err(format!("key id {id:?} names more than one key"));
                }
                seen.push(id);
            }
        }
        for (bucket, id) in &self.bucket_defaults {
            if self.resolve(id).is_none_or(|k| k.id != id) {
                return Err(format!(
                    "bucket {bucket:?}: {id:?} is no configured key's own id"
                ));
            }
            if self
                .bucket_defaults
                .iter()
                .filter(|(b, _)| b == bucket)
                .count()
                > 1
            {
                return Err(format!("bucket {bucket:?} has more than one default key"));
            }
        }
        for k in &all {
            for label in [&k.inner_kek, &k.outer_kek] {
                if !versions::is_base_label(label) {
                    return Err(format!(
                        "key {:?}: KEK label {label:?} ends like a version of another label \
                         (\".v<N>\", which `twofold keys rotate` makes)",
                        k.id
                    ));
                }
            }
        }
        for (i, a) in all.iter().enumerate() {
            if all[i + 1..]
                .iter()
                .any(|b| a.inner_kek == b.inner_kek && a.outer_kek == b.outer_kek)
            {
                return Err(format!(
                    "key {:?}: another key has the same two KEK labels",
                    a.id
                ));
            }
        }
        Ok(())
    }
}

/// Why a request's encryption headers name no key the gateway can seal under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRequestError {
    /// A key id without `x-amz-server-side-encryption: aws:kms` (or `aws:kms:dsse`).
    NeedsKms,
    /// An `x-amz-server-side-encryption` other than DSSE, SSE-KMS or SSE-S3.
    Unsupported(String),
    /// A key id no configured key answers to.
    Unknown(String),
}

/// The key a request on `bucket` asks for with its `x-amz-server-side-encryption` (`sse`)
/// and `x-amz-server-side-encryption-aws-kms-key-id` (`key_id`) headers: the named key (by
/// its id or an alias), or the bucket's default when none is named. DSSE is what every
/// object gets: a request for SSE-KMS or SSE-S3 is honoured by doing more, as a bucket
/// that enforces DSSE does.
pub fn requested<'k>(
    keys: &'k NamedKeys,
    bucket: &str,
    sse: Option<&str>,
    key_id: Option<&str>,
) -> Result<KeyChoice<'k>, KeyRequestError> {
    let kms = match sse {
        None | Some("AES256") => false,
        Some("aws:kms:dsse" | "aws:kms") => true,
        Some(other) => return Err(KeyRequestError::Unsupported(other.to_owned())),
    };
    match key_id {
        None => Ok(keys.default_for(bucket)),
        Some(_) if !kms => Err(KeyRequestError::NeedsKms),
        Some(id) => keys
            .resolve(id)
            .ok_or_else(|| KeyRequestError::Unknown(id.to_owned())),
    }
}

fn choice(k: &NamedKey) -> KeyChoice<'_> {
    KeyChoice {
        id: &k.id,
        inner_kek: &k.inner_kek,
        outer_kek: &k.outer_kek,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> NamedKeys {
        let mut k = NamedKeys::only_default("inner-kek", "outer-kek");
        k.retired = (vec!["inner-2025".into()], vec!["outer-2025".into()]);
        k.keys.push(NamedKey {
            id: "alias/finance".into(),
            aliases: vec!["arn:aws:kms:eu-west-1:111122223333:alias/finance".into()],
            inner_kek: "finance-inner".into(),
            outer_kek: "finance-outer".into(),
            destroyed: false,
        });
        k
    }

    #[test]
    fn requests_name_a_key_by_its_id_or_an_alias() {
        let k = keys();
        let finance = k.resolve("alias/finance").unwrap();
        assert_eq!(
            (finance.inner_kek, finance.outer_kek),
            ("finance-inner", "finance-outer")
        );
        assert_eq!(
            k.resolve("arn:aws:kms:eu-west-1:111122223333:alias/finance"),
            Some(finance)
        );
        assert_eq!(k.resolve(DEFAULT_KEY_ID), Some(k.default_choice()));
        for unknown in ["alias/Finance", "alias/finance ", "", "finance-inner"] {
            assert_eq!(k.resolve(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn responses_name_the_key_of_a_headers_keks() {
        let k = keys();
        assert_eq!(
            k.id_of("finance-inner", "finance-outer"),
            Some("alias/finance")
        );
        assert_eq!(k.id_of("inner-kek", "outer-kek"), Some(DEFAULT_KEY_ID));
        // The default's retired KEKs are still the default key.
        assert_eq!(k.id_of("inner-2025", "outer-kek"), Some(DEFAULT_KEY_ID));
        assert_eq!(k.id_of("inner-2025", "outer-2025"), Some(DEFAULT_KEY_ID));
        // Half of one key and half of another is no key.
        assert_eq!(k.id_of("finance-inner", "outer-kek"), None);
        assert_eq!(k.id_of("x", "y"), None);
        // Every version of a key's KEKs is still the key, each layer rotated on its own.
        assert_eq!(
            k.id_of("finance-inner.v3", "finance-outer"),
            Some("alias/finance")
        );
        assert_eq!(
            k.id_of("inner-kek.v2", "outer-kek.v5"),
            Some(DEFAULT_KEY_ID)
        );
        assert_eq!(k.id_of("finance-inner.v3", "outer-kek.v2"), None);
        assert_eq!(k.id_of("finance-innerx", "finance-outer"), None);
    }

    #[test]
    fn a_destroyed_key_takes_every_version_and_labels_may_not_look_like_versions() {
        let mut k = keys();
        k.keys[0].destroyed = true;
        for (inner, outer) in [
            ("finance-inner", "x"),
            ("finance-inner.v4", "x"),
            ("x", "finance-outer.v2"),
        ] {
            assert_eq!(k.destroyed_id_of(inner, outer), Some("alias/finance"));
        }
        assert_eq!(k.destroyed_id_of("finance-inner2", "x"), None);
        assert!(keys().check().is_ok());
        let mut bad = keys();
        bad.keys[0].outer_kek = "finance-outer.v2".into();
        assert!(bad.check().unwrap_err().contains("version"));
    }

    #[test]
    fn the_encryption_headers_choose_the_key() {
        let k = keys();
        let finance = k.resolve("alias/finance");
        for sse in [None, Some("AES256"), Some("aws:kms"), Some("aws:kms:dsse")] {
            assert_eq!(
                requested(&k, "b", sse, None),
                Ok(k.default_choice()),
                "{sse:?}"
            );
        }
        for sse in ["aws:kms", "aws:kms:dsse"] {
            assert_eq!(
                requested(&k, "b", Some(sse), Some("alias/finance")).ok(),
                finance
            );
            assert_eq!(
                requested(&k, "b", Some(sse), Some("alias/nope")),
                Err(KeyRequestError::Unknown("alias/nope".into()))
            );
        }
        for sse in [None, Some("AES256")] {
            assert_eq!(
                requested(&k, "b", sse, Some("alias/finance")),
                Err(KeyRequestError::NeedsKms)
            );
        }
        assert_eq!(
            requested(&k, "b", Some("aws:fancy"), None),
            Err(KeyRequestError::Unsupported("aws:fancy".into()))
        );
    }

    #[test]
    fn a_bucket_default_applies_where_a_request_names_no_key() {
        let mut k = keys();
        k.bucket_defaults
            .push(("ledger".into(), "alias/finance".into()));
        let finance = k.resolve("alias/finance").unwrap();
        assert_eq!(k.default_for("ledger"), finance);
        assert_eq!(k.default_for("other"), k.default_choice());
        assert_eq!(requested(&k, "ledger", None, None), Ok(finance));
        assert_eq!(requested(&k, "ledger", Some("AES256"), None), Ok(finance));
        // A key the request names wins over the bucket's default.
        assert_eq!(
            requested(&k, "ledger", Some("aws:kms"), Some(DEFAULT_KEY_ID)),
            Ok(k.default_choice())
        );
        assert_eq!(k.check(), Ok(()));
        let mut by_alias = k.clone();
        by_alias.bucket_defaults[0].1 = "arn:aws:kms:eu-west-1:111122223333:alias/finance".into();
        assert!(
            by_alias.check().is_err(),
            "a default names a key by its own id"
        );
        let mut twice = k.clone();
        twice
            .bucket_defaults
            .push(("ledger".into(), DEFAULT_KEY_ID.into()));
        assert!(twice.check().is_err());
    }

    #[test]
    fn a_destroyed_key_seals_nothing_and_its_objects_are_shredded() {
        let mut k = keys();
        k.keys[0].destroyed = true;
        assert_eq!(k.resolve("alias/finance"), None);
        assert_eq!(
            requested(&k, "b", Some("aws:kms"), Some("alias/finance")),
            Err(KeyRequestError::Unknown("alias/finance".into()))
        );
        assert_eq!(k.id_of("finance-inner", "finance-outer"), None);
        assert_eq!(
            k.destroyed_id_of("finance-inner", "finance-outer"),
            Some("alias/finance")
        );
        assert_eq!(
            k.destroyed_id_of("finance-inner", "x"),
            Some("alias/finance")
        );
        assert_eq!(k.destroyed_id_of("inner-kek", "outer-kek"), None);
    }

    #[test]
    fn a_configuration_names_each_key_once() {
        assert_eq!(keys().check(), Ok(()));
        let mut twice = keys();
        twice.keys[0].aliases.push("alias/finance".into());
        assert!(twice.check().unwrap_err().contains("more than one key"));
        let mut clash = keys();
        clash.keys[0].id = DEFAULT_KEY_ID.into();
        assert!(clash.check().is_err());
        let mut same_keks = keys();
        same_keks.keys[0].inner_kek = "inner-kek".into();
        same_keks.keys[0].outer_kek = "outer-kek".into();
        assert!(
            same_keks
                .check()
                .unwrap_err()
                .contains("same two KEK labels")
        );
        let mut bad = keys();
        bad.keys[0].id = "alias/with space".into();
        assert!(bad.check().is_err());
        let mut long = keys();
        long.keys[0].id = "a".repeat(KEY_ID_LEN_MAX + 1);
        assert!(long.check().is_err());
    }
}
