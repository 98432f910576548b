//! Where a recorder's maps and links are pinned in bpffs, and removing the pins of other
//! versions.

use aya::programs::links::PinnedLink;
use std::path::{Path, PathBuf};

/// Maps kept in bpffs across agent restarts.
pub(crate) const PINNED_MAPS: [&str; 6] =
    ["config", "slots", "recording", "pending", "stats", "notes"];

/// The attached programs (program name = tracepoint name).
pub(crate) const PROGRAMS: [&str; 2] = ["sys_enter", "sched_process_exec"];

/// The pin directory for this build of the recorder under `root` (e.g.
/// `/sys/fs/bpf/seccomp-operator`): named after the object's hash, so that an agent of
/// another version never reuses maps of another layout.
pub fn pin_dir(root: &Path) -> PathBuf {
    let hash = seccomp_profile::content_hash(crate::loader::OBJECT);
    let hex = hash.trim_start_matches("sha256:");
    root.join(format!("recorder-{}", &hex[..16]))
}

/// Remove pinned recorders of other versions under `root` (an upgraded agent cannot take over
/// maps of another layout): their programs are detached and their maps freed.
pub fn remove_stale_pins(root: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for dir in entries.filter_map(Result::ok).map(|e| e.path()) {
        let stale = dir != keep
            && dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("recorder-"));
        if !stale {
            continue;
        }
        for prog in PROGRAMS {
            if let Ok(l) = PinnedLink::from_pin(dir.join(format!("link-{prog}"))) {
                let _ = l.unpin();
            }
        }
        if let Ok(files) = std::fs::read_dir(&dir) {
            for f in files.filter_map(Result::ok) {
                let _ = std::fs::remove_file(f.path());
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
}
