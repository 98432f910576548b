//! The profile installer core: puts every SeccompProfile of a snapshot on this node as a
//! Localhost profile file.
//!
//! [`Installer`] takes a complete snapshot of the cluster's profiles (desired set), plans
//! the file operations ([`plan`]) and carries them out atomically ([`fsops`]) under the
//! seccomp directory ([`paths`]); [`FailureReport`] is what the node reports of the profiles
//! it could not install. No API client: the node agent feeds it from a watch and
//! reports what it returns; `seccompctl install` feeds it from files.

#![forbid(unsafe_code)]

pub mod compact;
pub mod desired;
mod failure_report;
pub mod fsops;
pub mod hash;
pub mod paths;
pub mod plan;

use crds::NodeProfileState;
use desired::{CompileCache, Desired};
use fsops::{Faults, NoFaults};
use hash::ContentHash;
use paths::{ProfileKey, ProfileRoot};
use plan::Op;
use seccomp_profile::Policy;
use seccomp_profile::ProfileSpec;
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::Arc;

pub use failure_report::FailureReport;

/// Profiles rendered per part of a sync before their files are written (see
/// [`desired::Snapshot`]): 256 documents of a few KiB at most, against all of them at once.
const WRITE_BATCH: usize = 256;

/// State of one profile on this node, as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// Installed, Error or Removing.
    pub state: NodeProfileState,
    /// Hash of the file on disk, if any.
    pub hash: Option<ContentHash>,
    /// Why, for Error and Removing.
    pub message: Option<String>,
}

/// What one sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Files written.
    pub written: usize,
    /// Files removed.
    pub removed: usize,
    /// Writes or removals that failed (retried on the next sync).
    pub failed: usize,
    /// Profiles that cannot be installed (invalid, unresolvable, refused by libseccomp).
    pub invalid: usize,
}

/// What one sync covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope<'a> {
    /// Every file: the set is complete, and files it does not name are removed.
    All,
    /// The files of these namespaces: the set is complete for each of them.
    Namespaces(&'a HashSet<&'a str>),
    /// The files the set names, nothing else (nothing is removed).
    Only,
}

impl Scope<'_> {
    /// Whether the sync decides `key`'s file and status.
    fn covers(&self, key: &ProfileKey) -> bool {
        match self {
            Scope::All | Scope::Only => true,
            Scope::Namespaces(ns) => ns.contains(&*key.namespace),
        }
    }
}

/// Makes the files under `<kubelet-root>/seccomp/operator` match a set of profiles.
pub struct Installer {
    root: ProfileRoot,
    faults: Arc<dyn Faults>,
    actual: BTreeMap<ProfileKey, ContentHash>,
    /// The stamp of each file in `actual` when its hash was taken (see [`Installer::check_drift`]).
    stamps: BTreeMap<ProfileKey, fsops::FileStamp>,
    status: BTreeMap<ProfileKey, KeyStatus>,
    cache: CompileCache,
    policy: Policy,
}

impl Installer {
    /// An installer for `root`, knowing what is on disk already. Leftover temp files of an
    /// interrupted write are removed now; files no profile backs wait for the first sync.
    pub fn new(root: ProfileRoot) -> io::Result<Self> {
        Self::with_faults(root, Arc::new(NoFaults))
    }

    /// Like [`Installer::new`], with injected write failures (for tests).
    pub fn with_faults(root: ProfileRoot, faults: Arc<dyn Faults>) -> io::Result<Self> {
        let disk = fsops::scan(&root)?;
        fsops::remove_temps(&disk.temps);
        for f in &disk.foreign {
            tracing::warn!(path = %f.display(), "not a profile file; left alone");
        }
        let stamps = disk
            .files
            .keys()
            .filter_map(|k| Some((k.clone(), fsops::stamp(&root, k).ok()??)))
            .collect();
        Ok(Installer {
            root,
            faults,
            stamps,
            actual: disk.files,
            status: BTreeMap::new(),
            cache: CompileCache::default(),
            policy: Policy::default(),
        })
    }

    /// Hold profiles to this policy (the default allows no listener and only harmless flags).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// The root directory.
    pub fn root(&self) -> &ProfileRoot {
        &self.root
    }

    /// Make the files match `profiles` (namespace, name, spec): the complete set of
    /// profiles in the cluster, from a successful list. Never call it with a partial set:
    /// files of profiles not in it are removed.
    pub fn sync(&mut self, profiles: &[(String, String, ProfileSpec)]) -> SyncReport {
        self.sync_refusing(profiles, &Default::default())
    }

    /// [`Installer::sync`], with `refused` (namespace, name → why) already found invalid:
    /// they and the profiles built on them are errors (see [`compact`]).
    pub fn sync_refusing(
        &mut self,
        profiles: &[(String, String, ProfileSpec)],
        refused: &desired::Refused,
    ) -> SyncReport {
        self.apply(&desired::unversioned(profiles), refused, Scope::All)
    }

    /// [`Installer::sync_refusing`] for profiles borrowed from a watch's store, with their
    /// versions: a profile whose version (and its bases') is unchanged since the last sync
    /// and whose file is in place costs a lookup, not a rendering (see [`desired`]).
    pub fn sync_inputs(
        &mut self,
        profiles: &[desired::Input],
        refused: &desired::Refused,
    ) -> SyncReport {
        self.apply(profiles, refused, Scope::All)
    }

    /// [`Installer::sync_inputs`] for some namespaces only: `profiles` is every profile of
    /// `namespaces` (each a complete list of one namespace, which may now be empty), and the
    /// files and statuses of other namespaces are left as they are. A base profile is always
    /// of its profile's own namespace, so a change in one namespace changes no file of
    /// another: syncing the namespaces that changed since a full sync gives what a full sync
    /// would, at the cost of those namespaces alone.
    pub fn sync_namespaces(
        &mut self,
        profiles: &[desired::Input],
        refused: &desired::Refused,
        namespaces: &HashSet<&str>,
    ) -> SyncReport {
        debug_assert!(
            profiles.iter().all(|p| namespaces.contains(p.namespace)),
            "a profile outside the namespaces synced"
        );
        self.apply(profiles, refused, Scope::Namespaces(namespaces))
    }

    /// Look at the files again: a file edited, truncated or deleted by something else since
    /// this installer last wrote or read it is taken as it is now, so that the next sync
    /// restores it. Costs a stat per file; only a file whose stamp changed is read. Returns the
    /// profiles whose file no longer had the content last seen.
    pub fn check_drift(&mut self) -> Vec<ProfileKey> {
        let mut drifted = Vec::new();
        let keys: Vec<ProfileKey> = self.actual.keys().cloned().collect();
        for key in keys {
            let now = match fsops::stamp(&self.root, &key) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(profile = %key, error = %e, "checking the file failed");
                    continue;
                }
            };
            if now.is_some() && now.as_ref() == self.stamps.get(&key) {
                continue;
            }
            match fsops::hash_now(&self.root, &key) {
                Ok(Some(hash)) => {
                    if let Some(st) = now {
                        self.stamps.insert(key.clone(), st);
                    }
                    if self.actual.get(&key) != Some(&hash) {
                        tracing::warn!(profile = %key, "the file was changed on the node; restoring it");
                        self.actual.insert(key.clone(), hash);
                        drifted.push(key);
                    }
                }
                Ok(None) => {
                    tracing::warn!(profile = %key, "the file was removed on the node; restoring it");
                    self.actual.remove(&key);
                    self.stamps.remove(&key);
                    drifted.push(key);
                }
                Err(e) => tracing::warn!(profile = %key, error = %e, "reading the file failed"),
            }
        }
        drifted
    }

    /// Write `profiles` and leave every other file alone: for a partial set (the CLI's
    /// `install` without `--prune`). Files the set does not name are kept and not reported.
    pub fn install_only(&mut self, profiles: &[(String, String, ProfileSpec)]) -> SyncReport {
        self.apply(
            &desired::unversioned(profiles),
            &Default::default(),
            Scope::Only,
        )
    }

    fn apply(
        &mut self,
        profiles: &[desired::Input],
        refused: &desired::Refused,
        scope: Scope,
    ) -> SyncReport {
        // In parts: each part's documents are rendered, written and let go before the next
        // part is rendered, so a sync of many new profiles holds a part's worth of documents.
        let snapshot = desired::Snapshot::new(profiles);
        let mut desired = BTreeMap::new();
        let mut report = SyncReport::default();
        for part in profiles.chunks(WRITE_BATCH) {
            let part = desired::compute_part(
                &snapshot,
                part,
                &mut self.cache,
                &self.policy,
                refused,
                &self.actual,
            );
            for op in plan::writes(&part, &self.actual) {
                self.execute(op, &mut report);
            }
            desired.extend(part.into_iter().map(|(k, d)| (k, d.settled())));
        }
        self.cache
            .keep_only(|k| !scope.covers(k) || desired.contains_key(k));
        if scope != Scope::Only {
            for op in plan::removals(&desired, &self.actual, |k| scope.covers(k)) {
                self.execute(op, &mut report);
            }
        }
        // Status follows from desired + actual, and from what each profile had (a write's
        // error); what the sync does not cover stays as it is.
        let mut computed = Vec::with_capacity(desired.len());
        for (key, d) in &desired {
            let on_disk = self.actual.get(key).copied();
            let s = match d {
                Desired::Install { hash, .. } | Desired::Present { hash }
                    if on_disk.as_ref() == Some(hash) =>
                {
                    KeyStatus {
                        state: NodeProfileState::Installed,
                        hash: on_disk,
                        message: None,
                    }
                }
                Desired::Install { .. } | Desired::Present { .. } => {
                    self.status.get(key).cloned().unwrap_or(KeyStatus {
                        state: NodeProfileState::Error,
                        hash: on_disk,
                        message: Some("not written yet".into()),
                    })
                }
                Desired::Error(msg) => {
                    report.invalid += 1;
                    KeyStatus {
                        state: NodeProfileState::Error,
                        hash: on_disk,
                        message: Some(if on_disk.is_some() {
                            format!("{msg} (the last installed version stays on the node)")
                        } else {
                            msg.clone()
                        }),
                    }
                }
            };
            computed.push((key.clone(), s));
        }
        // A removal that failed is reported while its file is there, ahead of anything else.
        let actual = &self.actual;
        self.status.retain(|k, s| {
            !scope.covers(k) || (s.state == NodeProfileState::Removing && actual.contains_key(k))
        });
        for (key, s) in computed {
            self.status.entry(key).or_insert(s);
        }
        report
    }

    /// Carry out one file operation, recording its outcome.
    fn execute(&mut self, op: Op, report: &mut SyncReport) {
        match op {
            Op::Write { key, hash, json } => {
                match fsops::write_atomic(&self.root, &key, &json, self.faults.as_ref()) {
                    Ok(()) => {
                        tracing::info!(profile = %key, %hash, "installed");
                        match fsops::stamp(&self.root, &key) {
                            Ok(Some(st)) => {
                                self.stamps.insert(key.clone(), st);
                            }
                            _ => {
                                self.stamps.remove(&key);
                            }
                        }
                        self.actual.insert(key, hash);
                        report.written += 1;
                    }
                    Err(e) => {
                        tracing::error!(profile = %key, error = %e, "write failed");
                        self.set_error(
                            &key,
                            format!("writing {}: {e}", self.root.file(&key).display()),
                        );
                        report.failed += 1;
                    }
                }
            }
            Op::Remove { key } => match fsops::remove(&self.root, &key) {
                Ok(()) => {
                    tracing::info!(profile = %key, "removed");
                    self.actual.remove(&key);
                    self.stamps.remove(&key);
                    report.removed += 1;
                }
                Err(e) => {
                    tracing::error!(profile = %key, error = %e, "remove failed");
                    self.status.insert(
                        key.clone(),
                        KeyStatus {
                            state: NodeProfileState::Removing,
                            hash: self.actual.get(&key).copied(),
                            message: Some(format!("removing: {e}")),
                        },
                    );
                    report.failed += 1;
                }
            },
        }
    }

    fn set_error(&mut self, key: &ProfileKey, message: String) {
        self.status.insert(
            key.clone(),
            KeyStatus {
                state: NodeProfileState::Error,
                hash: self.actual.get(key).copied(),
                message: Some(message),
            },
        );
    }

    /// Number of profiles installed with their desired content.
    pub fn installed_count(&self) -> usize {
        self.status
            .values()
            .filter(|s| s.state == NodeProfileState::Installed)
            .count()
    }

    /// Per-profile status, sorted by namespace and name.
    pub fn status(&self) -> &BTreeMap<ProfileKey, KeyStatus> {
        &self.status
    }
}

#[cfg(test)]
mod scope_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use seccomp_profile::{parse_profile, EvalContext};

    pub(crate) fn p(ns: &str, name: &str, json: &str) -> (String, String, ProfileSpec) {
        (
            ns.into(),
            name.into(),
            parse_profile(json, &EvalContext::host()).unwrap().spec,
        )
    }
    pub(crate) const ALLOW_READ: &str = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#;

    #[test]
    fn a_complain_profile_is_written_at_the_same_path_refusing_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = ProfileRoot::new(tmp.path());
        let mut inst = Installer::new(root.clone()).unwrap();
        let complain = r#"{"defaultAction":"SCMP_ACT_ERRNO","mode":"Complain","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["ptrace"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#;
        let mut set = vec![p("a", "web", complain)];
        assert_eq!(inst.sync(&set).written, 1);
        let file = tmp.path().join("seccomp/operator/a/web.json");
        let doc: seccomp_profile::SeccompDocument =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(doc.default_action, seccomp_profile::Action::Log);
        assert!(
            doc.syscalls
                .iter()
                .all(|r| r.action == seccomp_profile::Action::Allow),
            "the kill rule is the LOG default now: {:?}",
            doc.syscalls
        );
        set[0].2.mode = seccomp_profile::Mode::Enforce;
        assert_eq!(
            inst.sync(&set).written,
            1,
            "switching the mode rewrites the file"
        );
        let doc: seccomp_profile::SeccompDocument =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(doc.default_action, seccomp_profile::Action::Errno);
    }

    #[test]
    fn sync_writes_skips_rewrites_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = ProfileRoot::new(tmp.path());
        let mut inst = Installer::new(root.clone()).unwrap();
        let mut set = vec![p("a", "one", ALLOW_READ), p("b", "two", ALLOW_READ)];
        assert_eq!(inst.sync(&set).written, 2);
        assert_eq!(
            inst.sync(&set),
            SyncReport::default(),
            "nothing to do the second time"
        );
        assert_eq!(inst.installed_count(), 2);

        set[0].2.disabled = true;
        let r = inst.sync(&set);
        assert_eq!((r.written, r.removed), (0, 1));
        assert!(
            !tmp.path().join("seccomp/operator/a").exists(),
            "empty namespace dir removed"
        );

        set.pop();
        assert_eq!(inst.sync(&set).removed, 1);
        assert!(inst.status().is_empty());
    }

    #[test]
    fn the_maps_of_a_profile_share_one_copy_of_its_key() {
        let tmp = tempfile::tempdir().unwrap();
        let root = ProfileRoot::new(tmp.path());
        let set = vec![p("a", "one", ALLOW_READ)];
        let shared = |inst: &Installer| {
            let a = inst.actual.first_key_value().unwrap().0;
            let t = inst.stamps.first_key_value().unwrap().0;
            let s = inst.status.first_key_value().unwrap().0;
            [t, s]
                .iter()
                .all(|k| Arc::ptr_eq(&k.namespace, &a.namespace) && Arc::ptr_eq(&k.name, &a.name))
        };
        let mut inst = Installer::new(root.clone()).unwrap();
        assert_eq!(inst.sync(&set).written, 1);
        assert!(shared(&inst), "written");
        inst.sync(&set);
        assert!(shared(&inst), "unchanged");
        // Restarted: the keys are those of the files found.
        let mut later = Installer::new(root).unwrap();
        assert_eq!(later.sync(&set), SyncReport::default());
        assert!(shared(&later), "adopted");
    }

    #[test]
    fn a_sync_of_several_parts_resolves_bases_across_them_and_forgets_deleted_profiles() {
        let tmp = tempfile::tempdir().unwrap();
        let mut inst = Installer::new(ProfileRoot::new(tmp.path())).unwrap();
        let n = 3 * WRITE_BATCH;
        let base = format!("p{:04}", n - 10);
        let mut specs: Vec<(String, ProfileSpec, i64)> = (0..n)
            .map(|i| (format!("p{i:04}"), p("a", "x", ALLOW_READ).2, 1))
            .collect();
        // The first profile (first part) is built on one of the last part.
        specs[0].1 = p(
            "a",
            "x",
            &format!(r#"{{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"{base}"}}"#),
        )
        .2;
        specs[n - 10].1 = p("a", "x", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#).2;
        let uids: Vec<String> = (0..n).map(|i| format!("uid-{i}")).collect();
        let sync = |inst: &mut Installer, specs: &[(String, ProfileSpec, i64)]| {
            let inputs: Vec<desired::Input> = specs
                .iter()
                .zip(&uids)
                .map(|((name, spec, generation), uid)| desired::Input {
                    namespace: "a",
                    name,
                    spec: spec.into(),
                    version: Some((uid.as_str(), *generation)),
                })
                .collect();
            inst.sync_inputs(&inputs, &Default::default())
        };
        let first =
            || std::fs::read_to_string(tmp.path().join("seccomp/operator/a/p0000.json")).unwrap();
        assert_eq!(sync(&mut inst, &specs).written, n);
        assert!(first().contains("\"write\""), "{}", first());
        assert_eq!(sync(&mut inst, &specs), SyncReport::default());

        // The base changes: it and the profile built on it are rendered again.
        specs[n - 10].1 = p("a", "x", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["close"],"action":"SCMP_ACT_ALLOW"}]}"#).2;
        specs[n - 10].2 = 2;
        assert_eq!(sync(&mut inst, &specs).written, 2);
        assert!(first().contains("\"close\"") && !first().contains("\"write\""));
        assert_eq!(inst.cache.remembered(), n);

        specs.truncate(n - 1);
        assert_eq!(sync(&mut inst, &specs).removed, 1);
        assert_eq!(
            inst.cache.remembered(),
            n - 1,
            "the deleted profile is forgotten"
        );
        assert_eq!(inst.installed_count(), n - 1);
    }

    #[test]
    fn files_changed_or_removed_by_hand_are_found_and_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let root = ProfileRoot::new(tmp.path());
        let mut inst = Installer::new(root.clone()).unwrap();
        let set = vec![
            p("a", "one", ALLOW_READ),
            p("a", "two", ALLOW_READ),
            p("a", "three", ALLOW_READ),
        ];
        inst.sync(&set);
        let file = |n: &str| tmp.path().join(format!("seccomp/operator/a/{n}.json"));
        let good = std::fs::read(file("one")).unwrap();
        assert!(inst.check_drift().is_empty(), "nothing changed yet");
        std::fs::write(file("one"), b"{}").unwrap(); // edited
        std::fs::remove_file(file("two")).unwrap(); // removed
        let mut drifted: Vec<String> = inst
            .check_drift()
            .iter()
            .map(|k| k.name.to_string())
            .collect();
        drifted.sort();
        assert_eq!(drifted, ["one", "two"]);
        assert_eq!(inst.sync(&set).written, 2);
        assert_eq!(std::fs::read(file("one")).unwrap(), good);
        assert_eq!(std::fs::read(file("two")).unwrap(), good);
        assert!(inst.check_drift().is_empty());
        // An installer started later (the agent restarted) finds the same.
        let mut later = Installer::new(root).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(file("three"))
            .unwrap();
        assert_eq!(later.check_drift().len(), 1);
        assert_eq!(later.sync(&set).written, 1);
        assert_eq!(std::fs::read(file("three")).unwrap(), good);
    }

    #[test]
    fn restart_adopts_files_and_gc_removes_unbacked_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let root = ProfileRoot::new(tmp.path());
        let set = vec![p("a", "keep", ALLOW_READ), p("a", "drop", ALLOW_READ)];
        Installer::new(root.clone()).unwrap().sync(&set);
        std::fs::write(
            tmp.path().join("seccomp/operator/a/.keep.json.tmp-9-9"),
            b"{",
        )
        .unwrap();
        // a new process: the temp file goes at once, the unbacked file at the first sync,
        // the unchanged file is not rewritten.
        let mut inst = Installer::new(root.clone()).unwrap();
        assert!(!tmp
            .path()
            .join("seccomp/operator/a/.keep.json.tmp-9-9")
            .exists());
        let r = inst.sync(&set[..1]);
        assert_eq!((r.written, r.removed), (0, 1));
    }

    #[test]
    fn invalid_update_keeps_the_last_good_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut inst = Installer::new(ProfileRoot::new(tmp.path())).unwrap();
        let file = tmp.path().join("seccomp/operator/a/x.json");
        inst.sync(&[p("a", "x", ALLOW_READ)]);
        let good = std::fs::read(&file).unwrap();
        let r = inst.sync(&[p("a", "x", r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["raed"],"action":"SCMP_ACT_ALLOW"}]}"#)]);
        assert_eq!(r.invalid, 1);
        assert_eq!(std::fs::read(&file).unwrap(), good);
        let s = &inst.failure_report().not_installed[0];
        assert_eq!(s.state, NodeProfileState::Error);
        assert!(s
            .message
            .as_deref()
            .unwrap()
            .contains("last installed version stays"));
    }
}
