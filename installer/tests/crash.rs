//! Crash safety: SIGKILL the installer at random moments while it rewrites hundreds of
//! profiles, many times; every file at a final path must always be one complete version, and
//! the next run must clean up and converge.
//!
//! The installer process is this test binary run again for [`installer_process`], which
//! installs a directory of profiles as `seccompctl install --prune` does.

use profile_installer::paths::ProfileRoot;
use profile_installer::Installer;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The kubelet root [`installer_process`] installs into; set only in that process.
const KUBELET_ROOT_ENV: &str = "SECCOMP_TEST_INSTALL_KUBELET_ROOT";
/// The directory of profile files it installs.
const PROFILES_ENV: &str = "SECCOMP_TEST_INSTALL_PROFILES";

/// The installer run the test kills: every `*.json` of a directory installed into namespace
/// `default` under their file names, with files of other profiles removed. Fails (the process
/// exits non-zero) when a profile is not installed.
/// Outside that process (neither variable set) it does nothing.
#[test]
fn installer_process() {
    let (Some(kubelet), Some(dir)) = (
        std::env::var_os(KUBELET_ROOT_ENV),
        std::env::var_os(PROFILES_ENV),
    ) else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let set: Vec<_> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let spec = seccomp_profile::parse_profile(&text, &seccomp_profile::EvalContext::host())
                .unwrap()
                .spec;
            let name = f.file_stem().unwrap().to_string_lossy().into_owned();
            ("default".to_owned(), name, spec)
        })
        .collect();
    let mut installer = Installer::new(ProfileRoot::new(Path::new(&kubelet))).unwrap();
    installer.sync(&set);
    let errors: Vec<String> = installer
        .status()
        .iter()
        .filter_map(|(key, st)| Some(format!("{key}: {:?}: {}", st.state, st.message.as_ref()?)))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// [`installer_process`] on the profiles in `profiles`, into `kubelet`.
fn installer(kubelet: &Path, profiles: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "installer_process", "--nocapture"])
        .env(KUBELET_ROOT_ENV, kubelet)
        .env(PROFILES_ENV, profiles);
    cmd
}

fn run(mut cmd: Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn profile(i: usize, version: usize) -> String {
    // Versions differ in size so a torn write would be visible.
    let extra: Vec<String> = (0..version * 40)
        .map(|_| "\"getpid\"".to_string())
        .collect();
    format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":["read","write","close"{}{}],"action":"SCMP_ACT_ALLOW"}},{{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":{}}}]}}"#,
        if extra.is_empty() { "" } else { "," },
        extra.join(","),
        i + 2
    )
}

#[test]
fn sigkill_during_writes_never_leaves_a_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let kubelet = tmp.path().join("kubelet");
    let n = 200;
    // A directory of profile files per version.
    let sets: Vec<PathBuf> = (0..2)
        .map(|v| {
            let d = tmp.path().join(format!("v{v}"));
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                std::fs::write(d.join(format!("p{i:03}.json")), profile(i, v)).unwrap();
            }
            d
        })
        .collect();
    // The exact bytes each version of each file's own profile renders to.
    let mut valid: BTreeMap<String, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for i in 0..n {
        for v in 0..2 {
            let spec = seccomp_profile::parse_profile(
                &profile(i, v),
                &seccomp_profile::EvalContext::host(),
            )
            .unwrap()
            .spec;
            valid
                .entry(format!("p{i:03}.json"))
                .or_default()
                .insert(spec.document.render(seccomp_profile::Arch::native()).json);
        }
    }

    let mut seed: u64 = 0x5eed;
    let mut kills = 0;
    for round in 0..60 {
        let set = &sets[round % 2];
        let mut child = installer(&kubelet, set)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_micros(2_000 + (seed >> 33) % 40_000));
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        for e in walk(&kubelet.join("seccomp/operator")) {
            let name = e.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // a temp file; never at a final path
            }
            let bytes = std::fs::read(&e).unwrap();
            assert!(
                valid.get(&name).is_some_and(|own| own.contains(&bytes)),
                "round {round}: {} is not a complete version of its own profile: {:?}",
                e.display(),
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    assert!(
        kills > 10,
        "only {kills} runs were killed mid-way; the test did not exercise crashes"
    );
    // A final run cleans temp files and converges.
    let out = run(installer(&kubelet, &sets[0]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files = walk(&kubelet.join("seccomp/operator"));
    assert_eq!(files.len(), n, "{files:?}");
    assert!(files
        .iter()
        .all(|f| !f.file_name().unwrap().to_string_lossy().starts_with('.')));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
