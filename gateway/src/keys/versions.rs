//! KEK versions: `twofold keys rotate` makes a new version of a KEK next to the old ones, on
//! the same token, and new objects are sealed under the newest. The configuration names a
//! KEK by its base label (`key_label`, `inner_key_label`, `outer_key_label`); version 1 is
//! the key with exactly that label, version N ≥ 2 the key labelled `<label>.v<N>`. Headers
//! record the full label of the version they were sealed under, so every version the
//! token still holds keeps opening its objects. Pure functions, no I/O.

/// Highest KEK version a rotation makes.
pub const KEK_VERSION_MAX: u32 = 9999;

/// Longest base label: its last version's label still fits a header's KEK id.
pub const BASE_LABEL_LEN_MAX: usize = crate::envelope::header::KEK_ID_LEN_MAX - ".v9999".len();

/// Why a configured base label is refused, for messages.
pub const BASE_LABEL_RULE: &str = "must be 1 to 58 printable ASCII characters without spaces, not ending in \".v<N>\" (the labels of rotated versions)";

/// Whether `label` may be configured as a KEK's base label ([`BASE_LABEL_RULE`]).
pub fn base_label_is_valid(label: &str) -> bool {
    crate::envelope::header::kek_id_is_valid(label)
        && label.len() <= BASE_LABEL_LEN_MAX
        && is_base_label(label)
}

/// The suffix that separates a base label from its version number.
const VERSION_SEPARATOR: &str = ".v";

/// The label of version `version` of the KEK whose base label is `base`.
pub fn label(base: &str, version: u32) -> String {
    match version {
        0 | 1 => base.to_owned(),
        n => format!("{base}{VERSION_SEPARATOR}{n}"),
    }
}

/// The base label and version of the KEK labelled `label`: `x.v7` is version 7 of `x`;
/// anything else (`x`, `x.v1`, `x.v07`, `x.v`) is version 1 of itself.
pub fn parse(label: &str) -> (&str, u32) {
    let Some((base, digits)) = label.rsplit_once(VERSION_SEPARATOR) else {
        return (label, 1);
    };
    let canonical = !base.is_empty()
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    match digits.parse::<u32>() {
        Ok(n) if canonical && (2..=KEK_VERSION_MAX).contains(&n) => (base, n),
        _ => (label, 1),
    }
}

/// Whether `label` names a version of the KEK whose base label is `base`.
pub fn is_version_of(label: &str, base: &str) -> bool {
    parse(label).0 == base
}

/// Whether `label` may be a configured base label: one that no other base label's version
/// is spelt like (it does not end in `.v<N>`).
pub fn is_base_label(label: &str) -> bool {
    parse(label).1 == 1
}

/// The versions of `base` among a token's key labels, in increasing order.
pub fn versions_of<'l>(base: &str, labels: impl IntoIterator<Item = &'l str>) -> Vec<u32> {
    let mut out: Vec<u32> = labels
        .into_iter()
        .filter_map(|l| {
            let (b, v) = parse(l);
            (b == base).then_some(v)
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels_and_versions_round_trip() {
        assert_eq!(label("kek", 1), "kek");
        assert_eq!(label("kek", 2), "kek.v2");
        assert_eq!(parse("kek.v2"), ("kek", 2));
        assert_eq!(parse("kek"), ("kek", 1));
        for odd in [
            "kek.v1",
            "kek.v0",
            "kek.v07",
            "kek.v",
            ".v2",
            "kek.vx",
            "kek.v99999",
        ] {
            assert_eq!(parse(odd), (odd, 1), "{odd}");
        }
        assert_eq!(parse("a.v2.v3"), ("a.v2", 3));
        assert!(is_version_of("kek.v3", "kek") && is_version_of("kek", "kek"));
        assert!(!is_version_of("kek2", "kek") && !is_version_of("kek.v2", "ke"));
        assert!(is_base_label("kek") && !is_base_label("kek.v2"));
        assert!(base_label_is_valid("kek") && !base_label_is_valid("kek.v2"));
        assert!(base_label_is_valid(&"k".repeat(58)) && !base_label_is_valid(&"k".repeat(59)));
        assert!(!base_label_is_valid("a b") && !base_label_is_valid(""));
    }

    #[test]
    fn versions_are_found_among_other_labels_with_gaps() {
        let labels = ["a", "kek.v3", "kek", "kek.v10", "kekx.v2", "kek.v07"];
        assert_eq!(versions_of("kek", labels), [1, 3, 10]);
        assert_eq!(versions_of("none", labels), Vec::<u32>::new());
    }

    proptest! {
        #[test]
        fn every_version_label_parses_back(base in "[a-z][a-z0-9.-]{0,20}", v in 1u32..=KEK_VERSION_MAX) {
            prop_assume!(is_base_label(&base));
            let made = label(&base, v);
            prop_assert_eq!(parse(&made), (base.as_str(), v));
        }
    }
}
