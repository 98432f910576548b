//! The operator crate's layering: a module imports only from its own layer or from layers
//! below it (the order of `lib.rs`), and no two files import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, lowest first (`lib.rs` declares the same modules; rustfmt sorts them there).
const LAYERS: &[&str] = &[
    "runtime",
    "nodes",
    "pods",
    "profile",
    "binding",
    "recording",
    "webhook",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src/` (`pods/index.rs` → `pods::index`).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let parts: Vec<_> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let parts: Vec<_> = parts.into_iter().filter(|p| p != "mod").collect();
    parts.join("::")
}

/// Every `crate::a::b…` path a file names, as written (through `use` and in code), with
/// `{…}` groups expanded one level.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // Comments name modules in prose and doc links; only code counts.
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let end = rest
            .find(|c: char| {
                !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{' || c == ',' || c == ' ')
            })
            .unwrap_or(rest.len());
        let path = &rest[..end];
        if let Some(open) = path.find('{') {
            let head = path[..open].trim_end_matches(':');
            for item in path[open + 1..].split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    out.insert(format!("{head}::{item}"));
                }
            }
        } else {
            out.insert(path.trim_end_matches([':', ',', ' ']).to_owned());
        }
    }
    out
}

fn layer(module: &str) -> Option<usize> {
    let top = module.split("::").next()?;
    LAYERS.iter().position(|l| *l == top)
}

#[test]
fn lib_declares_exactly_the_layers() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let layers: BTreeSet<&str> = LAYERS.iter().copied().collect();
    assert_eq!(
        declared, layers,
        "lib.rs's modules and this test's layers differ"
    );
}

#[test]
fn imports_run_downwards_and_files_form_no_cycle() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut upward = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    for file in &files {
        let me = module_of(file);
        let Some(my_layer) = layer(&me) else { continue };
        let text = std::fs::read_to_string(file).unwrap();
        for path in crate_paths(&text) {
            let Some(their_layer) = layer(&path) else {
                continue;
            };
            if their_layer > my_layer {
                upward.push(format!("{me} imports crate::{path}"));
            }
            // The longest module prefix of the path is the file it reaches.
            let segs: Vec<&str> = path.split("::").collect();
            if let Some(target) = (1..=segs.len())
                .rev()
                .map(|n| segs[..n].join("::"))
                .find(|m| modules.contains(m))
            {
                if target != me && !me.starts_with(&format!("{target}::")) {
                    edges.entry(me.clone()).or_default().insert(target);
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports above their own layer:\n{}",
        upward.join("\n")
    );
    let mut cycles = Vec::new();
    for (a, targets) in &edges {
        for b in targets {
            if a < b && edges.get(b).is_some_and(|t| t.contains(a)) {
                cycles.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files that import each other:\n{}",
        cycles.join("\n")
    );
}
