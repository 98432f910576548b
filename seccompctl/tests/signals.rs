//! Kernel tests (root): `seccompctl record` passes SIGTERM, SIGHUP and SIGINT on to the
//! recorded command, waits for it, and still writes the profile; nothing is left running.

mod common;
use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The PIDs of the children of `parent`.
fn children(parent: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn record_forwards_termination_signals_and_still_writes_the_profile() {
    skip_unless!(can_record(), "needs root and a BTF kernel");
    let tmp = tempfile::tempdir().unwrap();
    for (sig, name) in [
        (libc::SIGTERM, "TERM"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGINT, "INT"),
    ] {
        let out = tmp.path().join(format!("{name}.json"));
        let mut rec = seccompctl()
            .args(["record", "--format", "oci", "-o"])
            .arg(&out)
            .args(["--", "sleep", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the command runs (it is seccompctl's child, execed as `sleep`).
        let deadline = Instant::now() + Duration::from_secs(20);
        let sleeper = loop {
            if let Some(p) = children(rec.id()).into_iter().find(|p| comm(*p) == "sleep") {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "the recorded command never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(rec.id() as i32, sig) }, 0);
        let status = rec.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(rec.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(
            status.code(),
            Some(128 + sig),
            "SIG{name}: seccompctl should exit as the command did: {err}"
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).unwrap_or_default())
                .unwrap_or_else(|e| panic!("SIG{name}: no profile written ({e}): {err}"));
        let text = doc.to_string();
        assert!(text.contains("nanosleep"), "SIG{name}: {text}");
        assert!(
            !std::path::Path::new(&format!("/proc/{sleeper}")).exists() || comm(sleeper) != "sleep",
            "SIG{name}: the recorded command is still running"
        );
    }
}
