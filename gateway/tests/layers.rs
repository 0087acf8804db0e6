//! The layers of docs/architecture.md, checked against the source: a module may use
//! (`crate::name`) only modules of its own layer or of layers above it in the list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, top (imports nothing of the crate) first, as docs/architecture.md lists them.
const LAYERS: &[&[&str]] = &[
    &["hardening", "limits", "private_file", "notify"],
    &["http", "s3", "sigv4"],
    &["envelope"],
    &["telemetry"],
    &["keys"],
    &["config", "tls", "jobs"],
    &["serve"],
    &[
        "cli",
        "dev",
        "devbackend",
        "devbackend_absent",
        "inventory",
        "job_runner",
        "rewrap",
        "rotation",
    ],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer of docs/architecture.md"))
}

/// Every `crate::name` and `crate::{a, b}` in `text`.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(group.split(',').map(|s| ident(s.trim())));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

fn sources(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

#[test]
fn modules_import_only_their_layer_and_the_layers_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        seen.insert(name.clone());
        let own = layer_of(&name);
        let mut files = Vec::new();
        sources(&path, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in uses(&text) {
                if used != name && layer_of(&used) > own {
                    wrong.push(format!("{} uses crate::{used}", file.display()));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
    assert!(
        seen.contains("serve") && seen.contains("envelope"),
        "{seen:?}"
    );
}

/// The modules of `serve/`, in the order its module comment gives: each may use its own
/// level and the levels before it, never those after (no cycles inside `serve/`).
const SERVE_LEVELS: &[&[&str]] = &[
    &["io", "backend", "body"],
    &["error"],
    &["respond", "stored", "keepalive"],
    &["part_checksum"],
    &["unaligned"],
    &["passthrough", "bucket_encryption"],
    &["object"],
    &["multipart"],
    &["console"],
    &["admin"],
];

fn serve_level(module: &str) -> Option<usize> {
    SERVE_LEVELS.iter().position(|l| l.contains(&module))
}

/// The `serve` modules `text` names: `crate::serve::x`, `crate::serve::{x, y}`, and from a
/// file directly in `serve/` (`top_level`), `super::x` and `super::{x, y}`.
fn serve_uses(text: &str, top_level: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut prefixes = vec!["crate::serve::"];
    if top_level {
        prefixes.push("super::");
    }
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for prefix in prefixes {
        for (i, _) in text.match_indices(prefix) {
            let rest = &text[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                out.extend(group.split(',').map(ident));
            } else {
                out.insert(ident(rest));
            }
        }
    }
    out.retain(|m| serve_level(m).is_some());
    out
}

#[test]
fn serve_modules_import_only_downward() {
    let serve = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/serve");
    let mut wrong = Vec::new();
    let mut checked = BTreeSet::new();
    for entry in std::fs::read_dir(&serve).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if name == "mod" {
            continue;
        }
        let own = serve_level(&name)
            .unwrap_or_else(|| panic!("serve module `{name}` is in no level of serve/mod.rs"));
        checked.insert(name.clone());
        let mut files = Vec::new();
        sources(&path, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let top_level = file.parent() == Some(serve.as_path());
            for used in serve_uses(&text, top_level) {
                if used != name && serve_level(&used).unwrap() > own {
                    wrong.push(format!("{} uses serve::{used}", file.display()));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against serve/'s order:\n{}",
        wrong.join("\n")
    );
    assert!(
        checked.contains("object") && checked.contains("io"),
        "{checked:?}"
    );
}
