//! Rotating a layer's KEK on its token: objects wrapped under the earlier KEK stay
//! readable while its label is in `retired_key_labels`, new objects are wrapped under the
//! current one, and once the earlier label is no longer listed its objects are refused
//! without a custodian call. A retired label that is not on the token stops the start.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold::envelope::ObjectName;
use twofold::envelope::aead::Layer;
use twofold::keys::{Custodian, CustodianSpec, KeyError, Keyring};
use twofold_tests::{
    Custody, init_custodian, open_custodian, open_object, random_bytes, seal_object, segment_4k,
    settings,
};

const NAME: ObjectName<'static> = ObjectName {
    bucket: "rotation",
    key: "object",
};

/// `spec` with its KEK label and retired labels replaced.
fn with_labels(spec: &CustodianSpec, current: &str, retired: &[&str]) -> CustodianSpec {
    let mut spec = spec.clone();
    if let CustodianSpec::Pkcs11 {
        key_label,
        retired_key_labels,
        ..
    } = &mut spec
    {
        *key_label = current.to_owned();
        *retired_key_labels = retired.iter().map(|l| (*l).to_owned()).collect();
    }
    spec
}

fn ring(custody: &Custody, outer: &CustodianSpec) -> Keyring {
    Keyring::new(
        open_custodian(Layer::Inner, &custody.inner),
        open_custodian(Layer::Outer, outer),
        settings(segment_4k()),
    )
}

#[test]
fn a_retired_kek_still_opens_its_objects_until_it_is_dropped() {
    let custody = Custody::new("rot");
    let old = with_labels(&custody.outer, "outer-2025", &[]);
    init_custodian(Layer::Outer, &old);
    let plain = random_bytes(10_000);
    let (old_header, old_stored) = seal_object(&ring(&custody, &old), NAME, &plain);
    assert_eq!(old_header.outer.kek_id, "outer-2025");

    // The new KEK, with the old one retired: old objects open, new ones use the new KEK.
    let new = with_labels(&custody.outer, "outer-2026", &["outer-2025"]);
    init_custodian(Layer::Outer, &new);
    let rotated = ring(&custody, &new);
    let opened = open_object(&rotated, &old_header, NAME, 0, &old_stored).unwrap();
    assert_eq!(opened.released, plain);
    opened.result.unwrap();
    let (new_header, new_stored) = seal_object(&rotated, NAME, &plain);
    assert_eq!(new_header.outer.kek_id, "outer-2026");
    assert_eq!(
        open_object(&rotated, &new_header, NAME, 0, &new_stored)
            .unwrap()
            .released,
        plain
    );

    // The old label no longer listed: refused before the token is asked, although the
    // token still holds that KEK.
    let dropped = ring(&custody, &with_labels(&custody.outer, "outer-2026", &[]));
    match open_object(&dropped, &old_header, NAME, 0, &old_stored) {
        Err(KeyError::UnknownKek { layer, kek_id }) => {
            assert_eq!((layer, kek_id.as_str()), (Layer::Outer, "outer-2025"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_retired_label_missing_from_the_token_stops_the_start() {
    let custody = Custody::new("rot-missing");
    let spec = with_labels(
        &custody.outer,
        &twofold_tests::kek_label(Layer::Outer),
        &["never-created"],
    );
    let e = Custodian::open(Layer::Outer, &spec).unwrap_err();
    assert!(e.to_string().contains("never-created"), "{e}");
}
