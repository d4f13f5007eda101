//! The engine's modules form layers (docs/ARCHITECTURE.md, section 3): each
//! uses only modules of a lower layer, so there is no cycle and the list
//! never reaches for the network. This reads the sources and checks every
//! `crate::` path outside test code.

use std::collections::BTreeMap;
use std::path::Path;

/// Each top-level module of `conclave-core` and its layer.
const LAYERS: &[(&str, u8)] = &[
    ("clock", 0),
    ("hex", 0),
    ("text", 0),
    ("error", 0),
    ("events", 1),
    ("private", 1),
    ("store", 2),
    ("mime", 2),
    ("crypto", 2),
    ("net", 2),
    ("secrets", 2),
    ("list", 3),
    ("relay", 4),
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_only_use_lower_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/conclave-core/src");
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs");
        if top == "lib" {
            continue;
        }
        let own = *layer.get(top).unwrap_or_else(|| {
            panic!("module {top} has no layer: add it to LAYERS and docs/ARCHITECTURE.md")
        });
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let used: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if used == top {
                    continue;
                }
                match layer.get(used.as_str()) {
                    Some(l) if *l < own => {}
                    Some(_) => wrong.push(format!("{rel}:{}: {top} uses {used}", i + 1)),
                    // Items re-exported at the crate root (crate::Result…).
                    None => {}
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "upward or sideways imports:\n{}",
        wrong.join("\n")
    );
}
