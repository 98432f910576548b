//! File operations of the installer: atomic writes, removals, and a scan of what is on disk.
//!
//! A write goes to a temp file in the same directory, is fsynced, renamed over the final path
//! and the directory fsynced: a reader (the kubelet, runc) sees the old file or the new one,
//! never a part. Fault points let tests fail each step.

use crate::hash::ContentHash;
use crate::paths::{ProfileKey, ProfileRoot, TMP_MARK};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The steps of an atomic write, for fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Creating the namespace directory.
    CreateDir,
    /// Creating the temp file.
    CreateTemp,
    /// Writing the content (fails after half is written).
    Write,
    /// fsync of the temp file.
    SyncFile,
    /// rename over the final path.
    Rename,
    /// fsync of the directory.
    SyncDir,
}

/// Decides whether a step fails; tests inject failures, production never fails on purpose.
pub trait Faults: Send + Sync {
    /// `Err` makes the step fail with that error.
    fn at(&self, step: Step) -> io::Result<()>;
}

/// No injected failures.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFaults;

impl Faults for NoFaults {
    fn at(&self, _: Step) -> io::Result<()> {
        Ok(())
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to the profile's file atomically, mode 0644, directories 0755.
pub fn write_atomic(
    root: &ProfileRoot,
    key: &ProfileKey,
    bytes: &[u8],
    faults: &dyn Faults,
) -> io::Result<()> {
    let dir = root.namespace_dir(key);
    faults.at(Step::CreateDir)?;
    create_dir_0755(root.dir())?;
    create_dir_0755(&dir)?;
    let tmp = dir.join(format!(
        ".{}.json{TMP_MARK}{}-{}",
        key.name,
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        faults.at(Step::CreateTemp)?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        // the umask may have narrowed the mode
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        if let Err(e) = faults.at(Step::Write) {
            f.write_all(&bytes[..bytes.len() / 2])?;
            return Err(e);
        }
        f.write_all(bytes)?;
        faults.at(Step::SyncFile)?;
        f.sync_all()?;
        drop(f);
        faults.at(Step::Rename)?;
        fs::rename(&tmp, root.file(key))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    faults.at(Step::SyncDir)?;
    sync_dir(&dir)
}

fn create_dir_0755(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match fs::create_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        }
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Remove a profile's file, and its namespace directory when that becomes empty.
pub fn remove(root: &ProfileRoot, key: &ProfileKey) -> io::Result<()> {
    match fs::remove_file(root.file(key)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let dir = root.namespace_dir(key);
    sync_dir(&dir).ok();
    remove_dir_if_empty(&dir);
    Ok(())
}

fn remove_dir_if_empty(dir: &Path) {
    // Fails harmlessly (ENOTEMPTY) when something is still there.
    let _ = fs::remove_dir(dir);
}

/// What identifies one version of a file without reading it: a write (ours is a rename of a
/// new inode), an edit, a truncation or a deletion changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

/// The stamp of a profile's file; `None` when there is no regular file there (never follows a
/// symlink).
pub fn stamp(root: &ProfileRoot, key: &ProfileKey) -> io::Result<Option<FileStamp>> {
    use std::os::unix::fs::MetadataExt;
    match fs::symlink_metadata(root.file(key)) {
        Ok(m) if m.is_file() => Ok(Some(FileStamp {
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The content hash of a profile's file as it is now (`None`: not a regular file).
pub fn hash_now(root: &ProfileRoot, key: &ProfileKey) -> io::Result<Option<ContentHash>> {
    if stamp(root, key)?.is_none() {
        return Ok(None);
    }
    match fs::read(root.file(key)) {
        Ok(bytes) => Ok(Some(ContentHash::of(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What is on disk under the root.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OnDisk {
    /// Profile files and their content hashes.
    pub files: BTreeMap<ProfileKey, ContentHash>,
    /// Leftover temp files of interrupted writes.
    pub temps: Vec<PathBuf>,
    /// Anything else (not ours to touch: reported, never removed).
    pub foreign: Vec<PathBuf>,
}

/// Scan the root. Symlinks are never followed.
pub fn scan(root: &ProfileRoot) -> io::Result<OnDisk> {
    let mut out = OnDisk::default();
    let top = match fs::read_dir(root.dir()) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for ns in top {
        let ns = ns?;
        if !ns.file_type()?.is_dir() {
            out.foreign.push(ns.path());
            continue;
        }
        for f in fs::read_dir(ns.path())? {
            let f = f?;
            let path = f.path();
            let fname = f.file_name().to_string_lossy().into_owned();
            if f.file_type()?.is_file() && fname.starts_with('.') && fname.contains(TMP_MARK) {
                out.temps.push(path);
            } else if let (true, Some(key)) = (f.file_type()?.is_file(), root.key_of(&path)) {
                let bytes = fs::read(&path)?;
                out.files.insert(key, ContentHash::of(&bytes));
            } else {
                out.foreign.push(path);
            }
        }
    }
    Ok(out)
}

/// Remove leftover temp files (and namespace directories that become empty).
pub fn remove_temps(temps: &[PathBuf]) {
    for t in temps {
        let _ = fs::remove_file(t);
        if let Some(dir) = t.parent() {
            remove_dir_if_empty(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    struct FailAt(Step);
    impl Faults for FailAt {
        fn at(&self, step: Step) -> io::Result<()> {
            if step == self.0 {
                Err(io::Error::other(format!("injected failure at {step:?}")))
            } else {
                Ok(())
            }
        }
    }

    fn setup() -> (tempfile::TempDir, ProfileRoot, ProfileKey) {
        let tmp = tempfile::tempdir().unwrap();
        let root = ProfileRoot::new(tmp.path());
        (tmp, root, ProfileKey::new("shop", "web").unwrap())
    }

    #[test]
    fn writes_atomically_with_modes() {
        let (_t, root, key) = setup();
        write_atomic(&root, &key, b"{\"a\":1}\n", &NoFaults).unwrap();
        let path = root.file(&key);
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        assert_eq!(
            fs::metadata(root.namespace_dir(&key)).unwrap().mode() & 0o777,
            0o755
        );
        let disk = scan(&root).unwrap();
        assert_eq!(disk.files.len(), 1);
        assert!(disk.temps.is_empty() && disk.foreign.is_empty());
    }

    #[test]
    fn injected_failures_never_expose_a_partial_file() {
        for step in [
            Step::CreateDir,
            Step::CreateTemp,
            Step::Write,
            Step::SyncFile,
            Step::Rename,
            Step::SyncDir,
        ] {
            let (_t, root, key) = setup();
            // an old version is in place
            write_atomic(&root, &key, b"old\n", &NoFaults).unwrap();
            let new = b"new content that is long enough to be cut in half\n";
            let r = write_atomic(&root, &key, new, &FailAt(step));
            assert!(r.is_err(), "{step:?} did not fail");
            let now = fs::read(root.file(&key)).unwrap();
            // before the rename the old file stays; a failed directory fsync comes after the
            // rename, so the new file is complete
            if step == Step::SyncDir {
                assert_eq!(now, new);
            } else {
                assert_eq!(now, b"old\n", "{step:?} exposed {now:?}");
            }
            let disk = scan(&root).unwrap();
            assert!(disk.temps.is_empty(), "{step:?} left {:?}", disk.temps);
        }
    }

    #[test]
    fn remove_deletes_file_and_empty_dir() {
        let (_t, root, key) = setup();
        let other = ProfileKey::new("shop", "db").unwrap();
        write_atomic(&root, &key, b"1", &NoFaults).unwrap();
        write_atomic(&root, &other, b"2", &NoFaults).unwrap();
        remove(&root, &key).unwrap();
        assert!(root.namespace_dir(&key).exists(), "still holds db.json");
        remove(&root, &other).unwrap();
        assert!(!root.namespace_dir(&key).exists());
        remove(&root, &other).unwrap(); // idempotent
    }

    #[test]
    fn scan_sorts_files_temps_and_foreign() {
        let (_t, root, key) = setup();
        write_atomic(&root, &key, b"1", &NoFaults).unwrap();
        let dir = root.namespace_dir(&key);
        fs::write(dir.join(".web.json.tmp-1-2"), b"par").unwrap();
        fs::write(dir.join("notes.txt"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("evil.json")).unwrap();
        let disk = scan(&root).unwrap();
        assert_eq!(disk.files.keys().cloned().collect::<Vec<_>>(), vec![key]);
        assert_eq!(disk.temps.len(), 1);
        assert_eq!(disk.foreign.len(), 2, "{:?}", disk.foreign);
        remove_temps(&disk.temps);
        assert!(scan(&root).unwrap().temps.is_empty());
    }
}
