//! The command seccompctl runs as its child (`record`, `run --complain`): passing termination
//! signals on to it, waiting for it, and its exit status as a shell reports it.

use anyhow::Context;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The process [`forward`] sends signals to (0: none).
static FORWARD_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Signals seccompctl passes on to the command it runs.
const FORWARDED: [Signal; 3] = [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT];

/// `si_code` of a signal the kernel generated (a terminal's ^C or hang-up): those already
/// reach the command's process group, so they are not sent a second time.
const SI_KERNEL: libc::c_int = 0x80;

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let code = unsafe { info.as_ref() }.map_or(0, |i| i.si_code);
    let pid = FORWARD_TO.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 && code != SI_KERNEL {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Forward [`FORWARDED`] to `child` until [`stop_forwarding`] (SIGQUIT is ignored: the
/// terminal's reaches the command).
pub(crate) fn forward_signals_to(child: Pid) {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigSet};
    FORWARD_TO.store(child.as_raw(), std::sync::atomic::Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::SigAction(forward),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in FORWARDED {
        // SAFETY: the handler only reads an atomic and calls kill(2), both async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
    }
    // SAFETY: installing SIG_IGN has no preconditions.
    let _ = unsafe { signal(Signal::SIGQUIT, SigHandler::SigIgn) };
}

/// Stop passing signals on (the command is gone; its PID may be reused).
pub(crate) fn stop_forwarding() {
    FORWARD_TO.store(0, std::sync::atomic::Ordering::SeqCst);
}

/// How a process ended, as a shell reports it: its exit code, or 128 + the signal.
pub(crate) fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 1,
    }
}

/// Wait for `pid` to end, and reap it.
pub(crate) fn wait_for(pid: Pid) -> anyhow::Result<WaitStatus> {
    loop {
        match waitpid(pid, None) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return Ok(s),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waiting for the command"),
        }
    }
}

/// Wait for `pid` to end without reaping it: until [`wait_for`], it stays a zombie, so its PID
/// is not reused and `/proc/<pid>` still names its parent.
pub(crate) fn wait_exited(pid: Pid) -> anyhow::Result<WaitStatus> {
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return Ok(s),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waiting for the command"),
        }
    }
}
