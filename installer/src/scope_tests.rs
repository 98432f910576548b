//! A sync of the changed namespaces against a full sync: the same files and statuses, over
//! random changes (new, changed, recreated, disabled, invalid and deleted profiles, and bases
//! within a namespace).

use super::tests::{p, ALLOW_READ};
use super::*;
use std::collections::{BTreeSet, HashMap};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// One profile of the model: its uid, generation and spec.
type Held = (String, i64, ProfileSpec);

const NAMESPACES: [&str; 3] = ["a", "b", "c"];

fn spec(rng: &mut Rng) -> ProfileSpec {
    let base = format!("p{}", rng.below(6));
    let json = match rng.below(7) {
        0 => ALLOW_READ.to_owned(),
        1 => r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#.to_owned(),
        2 | 3 => format!(r#"{{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"{base}","syscalls":[{{"names":["close"],"action":"SCMP_ACT_ALLOW"}}]}}"#),
        4 => format!(r#"{{"defaultAction":"SCMP_ACT_ERRNO","baseProfileName":"{base}"}}"#),
        5 => r#"{"defaultAction":"SCMP_ACT_ERRNO","disabled":true}"#.to_owned(),
        // Refused by the default policy (no listener).
        _ => r#"{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/run/x.sock"}"#.to_owned(),
    };
    p("x", "y", &json).2
}

/// Every file under `root`, by path.
fn files(root: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn inputs<'a>(
    model: &'a BTreeMap<(String, String), Held>,
    only: Option<&HashSet<&str>>,
) -> Vec<desired::Input<'a>> {
    model
        .iter()
        .filter(|((ns, _), _)| only.is_none_or(|o| o.contains(ns.as_str())))
        .map(|((ns, name), (uid, generation, spec))| desired::Input {
            namespace: ns,
            name,
            spec: spec.into(),
            version: Some((uid.as_str(), *generation)),
        })
        .collect()
}

#[test]
fn syncing_the_changed_namespaces_gives_what_a_full_sync_gives() {
    for seed in 1..=12u64 {
        let (full_dir, scoped_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut full = Installer::new(ProfileRoot::new(full_dir.path())).unwrap();
        let mut scoped = Installer::new(ProfileRoot::new(scoped_dir.path())).unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut model: BTreeMap<(String, String), Held> = BTreeMap::new();
        let mut uids: HashMap<(String, String), u32> = HashMap::new();
        // Both start from the same complete set.
        for ns in NAMESPACES {
            for i in 0..4 {
                let key = (ns.to_owned(), format!("p{i}"));
                model.insert(key.clone(), (format!("{ns}/p{i}/0"), 1, spec(&mut rng)));
                uids.insert(key, 0);
            }
        }
        let all = inputs(&model, None);
        assert_eq!(
            full.sync_inputs(&all, &Default::default()),
            scoped.sync_inputs(&all, &Default::default())
        );
        drop(all);
        for step in 0..60 {
            let mut touched: BTreeSet<&str> = BTreeSet::new();
            for _ in 0..1 + rng.below(3) {
                let ns = NAMESPACES[rng.below(NAMESPACES.len())];
                let key = (ns.to_owned(), format!("p{}", rng.below(6)));
                touched.insert(ns);
                match rng.below(4) {
                    0 => {
                        model.remove(&key);
                    }
                    // The same object, a new spec.
                    1 | 2 if model.contains_key(&key) => {
                        let held = model.get_mut(&key).unwrap();
                        held.1 += 1;
                        held.2 = spec(&mut rng);
                    }
                    // New, or deleted and created again (a new uid).
                    _ => {
                        let n = uids.entry(key.clone()).or_default();
                        *n += 1;
                        let uid = format!("{}/{}/{n}", key.0, key.1);
                        model.insert(key, (uid, 1, spec(&mut rng)));
                    }
                }
            }
            let all = inputs(&model, None);
            let r_full = full.sync_inputs(&all, &Default::default());
            let only: HashSet<&str> = touched.iter().copied().collect();
            let some = inputs(&model, Some(&only));
            let r_scoped = scoped.sync_namespaces(&some, &Default::default(), &only);
            let at = format!("seed {seed}, step {step}, namespaces {touched:?}");
            assert_eq!(files(full_dir.path()), files(scoped_dir.path()), "{at}");
            assert_eq!(full.status(), scoped.status(), "{at}");
            assert_eq!(full.failure_report(), scoped.failure_report(), "{at}");
            assert_eq!(full.installed_count(), scoped.installed_count(), "{at}");
            assert_eq!(
                (r_full.written, r_full.removed, r_full.failed),
                (r_scoped.written, r_scoped.removed, r_scoped.failed),
                "{at}"
            );
        }
    }
}

/// Every file write fails.
struct FailWrites;

impl fsops::Faults for FailWrites {
    fn at(&self, step: fsops::Step) -> io::Result<()> {
        match step {
            fsops::Step::Write => Err(io::Error::other("injected: disk full")),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_failed_write_is_reported_alike_by_a_namespace_sync_and_a_full_sync() {
    let set = [p("a", "web", ALLOW_READ), p("b", "db", ALLOW_READ)];
    let (full_dir, scoped_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut full =
        Installer::with_faults(ProfileRoot::new(full_dir.path()), Arc::new(FailWrites)).unwrap();
    let mut scoped =
        Installer::with_faults(ProfileRoot::new(scoped_dir.path()), Arc::new(FailWrites)).unwrap();
    assert_eq!(full.sync(&set).failed, 2);
    assert_eq!(scoped.sync(&set).failed, 2);
    // A sync of namespace `a` alone: its write fails again, and says why, as a full sync does.
    let inputs = desired::unversioned(&set[..1]);
    let only: HashSet<&str> = ["a"].into();
    assert_eq!(
        scoped
            .sync_namespaces(&inputs, &Default::default(), &only)
            .failed,
        1
    );
    assert_eq!(full.sync(&set).failed, 2);
    // The same, but for each installer's own root in the message.
    let seen = |inst: &Installer, dir: &std::path::Path| -> Vec<String> {
        let root = dir.display().to_string();
        inst.status()
            .iter()
            .map(|(k, s)| {
                let why = s
                    .message
                    .as_deref()
                    .unwrap_or_default()
                    .replace(&root, "ROOT");
                format!("{k} {:?} {why}", s.state)
            })
            .collect()
    };
    assert_eq!(
        seen(&full, full_dir.path()),
        seen(&scoped, scoped_dir.path())
    );
    assert!(
        seen(&scoped, scoped_dir.path())[0]
            .ends_with("writing ROOT/seccomp/operator/a/web.json: injected: disk full"),
        "{:?}",
        scoped.status()
    );
}
