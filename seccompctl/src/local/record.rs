//! `seccompctl record`: run a command or a runc/crun container in its own mount namespace and
//! record its syscalls with the eBPF recorder, forwarding signals to it meanwhile.

use super::process::{exit_code, forward_signals_to, stop_forwarding, wait_for};
use super::{cstrings, find_program};
use anyhow::{bail, Context};
use nix::unistd::{fork, ForkResult, Pid};
use seccomp_profile::builtin::OciRuntime;
use seccomp_profile::{self as model, Arch, ArgClasses, ArgKind, SeccompDocument};
use std::collections::BTreeSet;
use std::ffi::{CString, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use syscall_recorder::{mntns_of, NsRecord, Phase, Recorder, RecorderError};

/// The result of a recording.
#[derive(Debug)]
pub struct Recording {
    /// How the recorded program ended, as a shell would report it (code, or 128 + signal).
    pub exit_code: i32,
    /// Everything the namespace called.
    pub record: NsRecord,
    /// The allowlist: what the program called from its exec on, plus what the runtime calls
    /// after the filter is installed.
    pub allowed: BTreeSet<String>,
    /// What was left out as runtime set-up before the program's exec.
    pub setup_only: BTreeSet<String>,
    /// The argument classes of the program's calls to the tracked syscalls.
    pub arguments: ArgClasses,
}

impl Recording {
    fn new(exit_code: i32, record: NsRecord, runtime_extra: &[&str]) -> Self {
        let mut allowed = record.all_names(Phase::AfterExec);
        allowed.extend(runtime_extra.iter().map(|s| s.to_string()));
        let setup_only = record
            .all_names(Phase::BeforeExec)
            .difference(&allowed)
            .cloned()
            .collect();
        let arguments = record.arguments();
        Recording {
            exit_code,
            record,
            allowed,
            setup_only,
            arguments,
        }
    }

    /// The learned profile: default `SCMP_ACT_ERRNO`, the allowlist with argument rules for
    /// the tracked syscalls (see `seccomp_profile::args`), explicit architectures.
    pub fn document(&self) -> SeccompDocument {
        model::recorded_document(self.allowed.iter().cloned(), &self.arguments)
            .canonical(Arch::native())
    }

    /// The profile without argument rules: every recorded syscall allowed with any arguments.
    pub fn names_only_document(&self) -> SeccompDocument {
        SeccompDocument::allowlist(self.allowed.iter().cloned()).canonical(Arch::native())
    }

    /// One line per tracked syscall the program called: the values it passed, and what the
    /// profile allows of it.
    pub fn argument_summary(&self) -> Vec<String> {
        let doc = self.document();
        let mut out = Vec::new();
        for kind in ArgKind::ALL {
            let name = kind.syscall();
            if !self.allowed.contains(name) {
                continue;
            }
            let seen = match self.arguments.values(kind) {
                Some(vs) => vs
                    .iter()
                    .map(|v| kind.describe(*v))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => "not captured (more values than kept, or a compat ABI)".into(),
            };
            let rules: Vec<&model::SyscallRule> = doc
                .syscalls
                .iter()
                .filter(|r| r.names.iter().any(|n| n == name))
                .collect();
            let effect = if rules.iter().any(|r| r.action == model::Action::Errno) {
                "answers ENOSYS (libc falls back to clone)".to_owned()
            } else if rules.iter().all(|r| !r.args.is_empty()) {
                format!("allowed with these arguments only ({} rules)", rules.len())
            } else {
                "allowed with any arguments".to_owned()
            };
            out.push(format!("{name}: {seen}: {effect}"));
        }
        out
    }
}

/// Run `argv` in a fresh mount namespace and record it and its children until it exits.
/// Standard input, output and error are the caller's.
pub fn record_command(rec: &mut Recorder, argv: &[OsString]) -> anyhow::Result<Recording> {
    let Some(cmd) = argv.first() else {
        bail!("no command given")
    };
    let Some(program) = find_program(Path::new(cmd)) else {
        bail!("command not found: {}", cmd.to_string_lossy())
    };
    let program = CString::new(program.as_os_str().as_bytes())?;
    let args = cstrings(argv)?;
    let (ready_r, ready_w) = nix::unistd::pipe()?;
    let (go_r, go_w) = nix::unistd::pipe()?;
    // SAFETY: seccompctl is single-threaded here; the child only calls async-signal-safe
    // functions (unshare, read, write, execv, _exit) before exec.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(ready_r);
            drop(go_w);
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).is_ok();
            let mut ready = std::fs::File::from(ready_w);
            let _ = ready.write_all(if ok { b"1" } else { b"0" });
            let mut go = std::fs::File::from(go_r);
            let mut b = [0u8; 1];
            if !ok || go.read_exact(&mut b).is_err() {
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(127) };
            }
            let _ = nix::unistd::execv(&program, &args);
            let _ = nix::unistd::write(std::io::stderr(), b"seccompctl: exec failed\n");
            // SAFETY: _exit is async-signal-safe (there is no safe wrapper).
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            drop(go_r);
            // SIGTERM, SIGHUP and SIGINT sent to seccompctl go to the command (systemd,
            // `timeout` and container stops send SIGTERM); seccompctl waits for it to end and
            // still writes the profile. The terminal's ^C reaches the command by itself.
            forward_signals_to(child);
            let mut b = [0u8; 1];
            std::fs::File::from(ready_r).read_exact(&mut b)?;
            if b[0] != b'1' {
                let _ = wait_for(child);
                bail!("could not create a mount namespace for the command (unshare failed)");
            }
            let mntns = mntns_of(&child.to_string())?;
            rec.watch(mntns)?;
            std::fs::File::from(go_w).write_all(b"1")?;
            let status = wait_for(child);
            stop_forwarding();
            let status = status?;
            let record = rec.take(mntns).unwrap_or_default();
            // execve runs after `seccompctl run` installs the filter.
            Ok(Recording::new(exit_code(status), record, &["execve"]))
        }
    }
}

/// Read `process.noNewPrivileges` from a bundle's config.json.
pub fn bundle_no_new_privileges(bundle: &Path) -> anyhow::Result<bool> {
    let path = bundle.join("config.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let cfg: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(cfg["process"]["noNewPrivileges"].as_bool().unwrap_or(false))
}

/// Run a runc container from `bundle` and record it from its first syscall. The profile gets
/// the container program's syscalls plus those runc's init makes after installing the filter
/// (which depend on NoNewPrivileges); runc's set-up before that (mount, pivot_root, ...) is
/// left out.
pub fn record_runc(
    rec: &mut Recorder,
    runc: &str,
    bundle: &Path,
    id: &str,
) -> anyhow::Result<Recording> {
    let nnp = bundle_no_new_privileges(bundle)?;
    let kind = oci_runtime_kind(runc)?;
    // The container's init is reparented to us when `runc create` exits, so we can wait for it.
    nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    rec.arm(true)?;
    let cleanup = |id: &str| {
        let _ = Command::new(runc).args(["delete", "--force", id]).status();
    };
    let created = Command::new(runc)
        .args(["create", "--bundle"])
        .arg(bundle)
        .arg(id)
        .status()
        .with_context(|| format!("running `{runc} create`"))?;
    if !created.success() {
        rec.arm(false)?;
        cleanup(id);
        bail!(
            "`{runc} create --bundle {} {id}` failed ({created})",
            bundle.display()
        );
    }
    let state = Command::new(runc).args(["state", id]).output()?;
    let state: serde_json::Value =
        serde_json::from_slice(&state.stdout).context("parsing `runc state`")?;
    let pid = state["pid"].as_i64().context("`runc state` has no pid")?;
    let mntns = mntns_of(&pid.to_string())?;
    rec.watch(mntns)?;
    for other in rec.pending_namespaces() {
        if other != mntns {
            let _ = rec.ignore(other);
        }
    }
    rec.arm(false)?;
    // Signals to seccompctl go to the container's init, as `runc kill` would send them.
    forward_signals_to(Pid::from_raw(pid as i32));
    let started = Command::new(runc).args(["start", id]).status()?;
    if !started.success() {
        stop_forwarding();
        cleanup(id);
        bail!("`{runc} start {id}` failed ({started})");
    }
    let status = wait_for(Pid::from_raw(pid as i32));
    stop_forwarding();
    let status = status?;
    let record = rec.take(mntns).unwrap_or_default();
    cleanup(id);
    Ok(Recording::new(
        exit_code(status),
        record,
        kind.init_syscalls(nnp),
    ))
}

/// Which runtime `runtime` is (runc or crun, from its `--version`), so the profile gets what
/// that runtime's init calls after installing the filter.
pub fn oci_runtime_kind(runtime: &str) -> anyhow::Result<OciRuntime> {
    let out = Command::new(runtime)
        .arg("--version")
        .output()
        .with_context(|| format!("running `{runtime} --version`"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    OciRuntime::from_version_output(&text).with_context(|| {
        format!(
            "`{runtime} --version` names neither runc nor crun ({:?}); only their init's post-filter syscalls are known",
            text.lines().next().unwrap_or_default()
        )
    })
}

/// Whether this process may load the recorder, as a plain message when not.
pub fn check_recorder() -> Result<(), RecorderError> {
    syscall_recorder::preflight()
}
