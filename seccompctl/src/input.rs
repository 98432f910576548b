//! What commands read: a file, or standard input (`-`), bounded in size and split into its
//! objects (multi-document YAML, `List`s). `FILE#NAME` keeps only the objects named NAME.

use anyhow::{anyhow, bail, Context};
use seccomp_profile::limits::{summarize, MAX_INPUT_BYTES};
use seccomp_profile::{split_documents, Item};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The argument that reads standard input.
pub const STDIN: &str = "-";

/// The kinds that are not profiles: converted or checked as objects of their own.
pub const OBJECT_KINDS: [&str; 2] = ["ProfileBinding", "ProfileRecording"];

/// One input, split.
#[derive(Debug)]
pub struct Input {
    /// How messages name it (the path, or `-`).
    pub shown: String,
    /// The file name without extension, for naming a profile that has no name.
    pub stem: Option<String>,
    /// Every object, in input order (also those `FILE#NAME` leaves out: a base profile may be
    /// among them).
    pub all: Vec<Item>,
    /// `NAME` of `FILE#NAME`.
    pub select: Option<String>,
    /// The input's profiles by name, as bases of the others (built when first needed).
    pub bases:
        std::cell::OnceCell<std::collections::BTreeMap<String, seccomp_profile::ProfileSpec>>,
}

impl Input {
    /// The objects a command works on: all, or those `FILE#NAME` names.
    pub fn chosen(&self) -> impl Iterator<Item = &Item> {
        self.all
            .iter()
            .filter(|i| self.select.as_deref().is_none_or(|n| i.name() == Some(n)))
    }

    /// Whether messages must say which object they are about: more than one object, or one
    /// from a `List`.
    pub fn many(&self) -> bool {
        self.all.len() > 1 || self.all.iter().any(|i| i.list_item.is_some())
    }

    /// How a message names `item`: `FILE: document 2 (SeccompProfile a)`, or only `FILE`
    /// when the input holds that one object.
    pub fn place(&self, item: &Item) -> String {
        if self.many() {
            format!("{}: {}", self.shown, item.label())
        } else {
            self.shown.clone()
        }
    }

    /// The chosen objects that are profiles (any kind but [`OBJECT_KINDS`]).
    pub fn profiles(&self) -> Vec<&Item> {
        self.chosen().filter(|i| is_profile(i)).collect()
    }
}

/// Whether `item` is read as a profile: anything but a ProfileBinding or ProfileRecording
/// (what is not a profile after all is refused, with the reason, by the profile parser).
pub fn is_profile(item: &Item) -> bool {
    !item.kind().is_some_and(|k| OBJECT_KINDS.contains(&k))
}

/// `FILE#NAME` → (`FILE`, `NAME`), unless a file is called `FILE#NAME`.
pub fn split_selector(arg: &Path) -> (PathBuf, Option<String>) {
    let s = arg.to_string_lossy();
    if arg.exists() {
        return (arg.to_path_buf(), None);
    }
    match s.rsplit_once('#') {
        Some((file, name)) if !file.is_empty() && !name.is_empty() => {
            (PathBuf::from(file), Some(name.to_owned()))
        }
        _ => (arg.to_path_buf(), None),
    }
}

/// The text of `path` (`-`: standard input), at most [`MAX_INPUT_BYTES`]. Read failures keep
/// their `std::io::Error` (commands tell unreadable from invalid by it).
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    let shown = path.display().to_string();
    let mut bytes = Vec::new();
    let limit = MAX_INPUT_BYTES as u64 + 1;
    if path.as_os_str() == STDIN {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut bytes))
            .with_context(|| format!("reading {shown}"))?;
    }
    if bytes.len() > MAX_INPUT_BYTES {
        bail!("{shown}: over the limit of {MAX_INPUT_BYTES} bytes; split it into smaller files");
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{shown}: not UTF-8 text (byte {} is not part of a character)",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Read and split one argument (`FILE`, `-` or `FILE#NAME`). A `NAME` that no object has is an
/// error listing the names there are.
pub fn read_input(arg: &Path) -> anyhow::Result<Input> {
    let (path, select) = split_selector(arg);
    let text = read_text(&path)?;
    let stem = (path.as_os_str() != STDIN)
        .then(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .flatten();
    let mut input = from_text(path.display().to_string(), &text)?;
    input.stem = stem;
    input.select = select;
    if let Some(name) = &input.select {
        if input.chosen().next().is_none() {
            bail!(
                "{}: holds no object named `{name}`; it holds: {}",
                input.shown,
                listing(input.all.iter())
            );
        }
    }
    Ok(input)
}

/// Split `text` that came from somewhere other than a file (a pulled artifact), which messages
/// call `shown`.
pub fn from_text(shown: String, text: &str) -> anyhow::Result<Input> {
    let all = split_documents(text).map_err(|e| anyhow!("{shown}: {e}"))?;
    Ok(Input {
        shown,
        stem: None,
        all,
        select: None,
        bases: Default::default(),
    })
}

/// The labels of `items`, bounded.
pub fn listing<'a>(items: impl Iterator<Item = &'a Item>) -> String {
    let s = summarize(items.map(Item::label));
    if s.is_empty() {
        "nothing".to_owned()
    } else {
        s
    }
}
