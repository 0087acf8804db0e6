//! Reading counters from a Prometheus text exposition (the gateway's `/metrics`).

/// The sum of every sample of metric `name` whose labels include all of `labels`
/// (`("layer", "inner")`, ...). `None` when no sample of `name` is there at all.
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = false;
    let mut total = 0.0;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (label_text, value) = if let Some(inner) = rest.strip_prefix('{') {
            let Some(end) = inner.find('}') else { continue };
            (&inner[..end], inner[end + 1..].trim())
        } else if rest.starts_with(' ') {
            ("", rest.trim())
        } else {
            continue; // another metric whose name starts with `name`
        };
        let Some(value) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        let has = |k: &str, v: &str| {
            label_text
                .split(',')
                .any(|kv| kv.trim() == format!("{k}=\"{v}\""))
        };
        if labels.iter().all(|(k, v)| has(k, v)) {
            found = true;
            total += value;
        }
    }
    found.then_some(total)
}

/// The sums of the samples of metric `name` by the value of its label `label` (samples
/// without that label are left out).
pub fn by_label(text: &str, name: &str, label: &str) -> std::collections::BTreeMap<String, f64> {
    let mut values = std::collections::BTreeSet::new();
    let prefix = format!("{label}=\"");
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix(name) else {
            continue;
        };
        let Some(inner) = rest.strip_prefix('{') else {
            continue;
        };
        let Some(end) = inner.find('}') else { continue };
        for kv in inner[..end].split(',') {
            if let Some(v) = kv
                .trim()
                .strip_prefix(&prefix)
                .and_then(|v| v.strip_suffix('"'))
            {
                values.insert(v.to_owned());
            }
        }
    }
    values
        .into_iter()
        .filter_map(|v| {
            let total = sum(text, name, &[(label, &v)])?;
            Some((v, total))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP twofold_hsm_operations_total HSM calls\n\
        # TYPE twofold_hsm_operations_total counter\n\
        twofold_hsm_operations_total{layer=\"inner\",kind=\"wrap\"} 3\n\
        twofold_hsm_operations_total{layer=\"outer\",kind=\"wrap\"} 3\n\
        twofold_hsm_operations_total{layer=\"inner\",kind=\"unwrap\"} 1\n\
        twofold_hsm_operations_total_extra 99\n\
        twofold_requests_total{operation=\"PutObject\",code=\"200\"} 1000\n\
        twofold_requests_total{operation=\"GetObject\",code=\"200\"} 500 1700000000\n\
        up 1\n";

    #[test]
    fn sums_matching_samples() {
        assert_eq!(sum(TEXT, "twofold_hsm_operations_total", &[]), Some(7.0));
        assert_eq!(
            sum(TEXT, "twofold_hsm_operations_total", &[("kind", "wrap")]),
            Some(6.0)
        );
        assert_eq!(sum(TEXT, "twofold_requests_total", &[]), Some(1500.0));
        assert_eq!(sum(TEXT, "up", &[]), Some(1.0));
        assert_eq!(sum(TEXT, "missing_total", &[]), None);
        assert_eq!(
            sum(TEXT, "twofold_requests_total", &[("code", "503")]),
            None
        );
    }

    #[test]
    fn sums_by_label() {
        let kinds = by_label(TEXT, "twofold_hsm_operations_total", "kind");
        assert_eq!(kinds.len(), 2);
        assert_eq!(kinds.get("wrap"), Some(&6.0));
        assert_eq!(kinds.get("unwrap"), Some(&1.0));
        assert!(by_label(TEXT, "up", "kind").is_empty());
    }
}
