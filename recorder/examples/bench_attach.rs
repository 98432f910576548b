//! Benchmark helper for hack/bench-recorder.sh: attaches a program to sys_enter and holds it
//! until stdin closes or the process is killed.
//!
//!   bench_attach empty            the empty program (the floor)
//!   bench_attach recorder         the recorder, attached, recording nothing
//!   bench_attach recorder-other   the recorder recording another namespace (a sleeping
//!                                 process's), not the caller's
//!   bench_attach recorder-armed   the recorder armed; every new namespace is marked ignored
//!                                 as soon as userspace sees it (a busy node during a recording)

use std::io::Write;
use syscall_recorder::{load_empty_program, Recorder};

fn main() -> anyhow::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let mut _empty = None;
    let mut rec = None;
    match mode.as_str() {
        "empty" => _empty = Some(load_empty_program()?),
        "recorder" => rec = Some(Recorder::load()?),
        "recorder-other" => {
            use std::os::unix::process::CommandExt;
            let mut cmd = std::process::Command::new("unshare");
            cmd.args(["-m", "sleep", "3600"]);
            // SAFETY: prctl in the child before exec; no allocation.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = cmd.spawn()?;
            std::thread::sleep(std::time::Duration::from_millis(200));
            let mut r = Recorder::load()?;
            r.watch(syscall_recorder::mntns_of(&child.id().to_string())?)?;
            eprintln!("watched-pid {}", child.id());
            rec = Some(r);
        }
        "recorder-armed" => {
            let mut r = Recorder::load()?;
            r.arm(true)?;
            rec = Some(r);
        }
        _ => anyhow::bail!("usage: bench_attach empty|recorder|recorder-other|recorder-armed"),
    }
    println!("ready");
    std::io::stdout().flush()?;
    loop {
        if let Some(r) = rec.as_mut().filter(|_| mode == "recorder-armed") {
            for ns in r.pending_namespaces() {
                r.ignore(ns)?;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
