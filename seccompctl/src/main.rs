//! `seccompctl`: record, enforce, validate, convert, merge and diff seccomp profiles on the
//! local machine, with no cluster, and push and pull them as OCI artifacts. This file parses
//! the command line and dispatches; each subcommand is a module of [`commands`].

mod commands;

use clap::{Parser, Subcommand};
use commands::{compare, convert, diff, install, merge, pull, push, record, run, validate};
use std::process::ExitCode;

/// Record seccomp profiles from real programs and containers, and enforce them.
#[derive(Parser, Debug)]
#[command(version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a command (or a runc or crun container) and learn the syscalls it makes.
    ///
    /// The command runs in a fresh mount namespace, recorded with eBPF from its first syscall
    /// until it exits, children included. Its stdin, stdout and stderr pass through, and
    /// seccompctl exits with its exit status. The profile (default SCMP_ACT_ERRNO, the syscalls
    /// seen, explicit architectures) goes to -o FILE, or to stdout after the command ends.
    /// Needs root.
    Record(record::Args),
    /// Run a command under a profile, as a container runtime would apply it.
    ///
    /// Sets NoNewPrivileges, installs the profile with libseccomp and execs the command, which
    /// keeps seccompctl's stdin, stdout, stderr and PID (so its exit status is the command's).
    /// With --complain the command runs as a child under the profile's complain rendering,
    /// and seccompctl reports what enforcement would have denied, then exits with the
    /// command's status.
    Run(run::Args),
    /// Check profiles: syntax, every field, syscall names (libseccomp), and that libseccomp
    /// compiles them. Exits 1 if any is invalid, 2 if any cannot be read.
    Validate(validate::Args),
    /// Convert profiles (SeccompProfile, SPO, OCI, Docker, containers-common) to OCI JSON or
    /// SeccompProfile resources, and SPO's ProfileBindings and ProfileRecordings to
    /// seccomp-operator's. Docker conditions are evaluated for this machine; syscall names this
    /// machine's libseccomp does not know are kept, with a warning; what of an SPO object has
    /// no equivalent is named in a warning. Multi-document YAML and `List`s give a
    /// multi-document YAML, in input order; nothing is written if any object fails (exit 1).
    Convert(convert::Args),
    /// The union of profiles (same default action required).
    Merge(merge::Args),
    /// Install profiles as the node agent does, without a cluster: every given profile is
    /// written atomically to <kubelet-root>/seccomp/operator/<namespace>/<name>.json. Files of
    /// other profiles stay, unless --prune makes the directory hold exactly these. Nothing is
    /// written when any given profile is invalid or its name cannot be a file name (exit 1).
    Install(install::Args),
    /// What a profile lets run that the runtime's default profile does not (exit 0 if
    /// nothing, 1 if something): every syscall it denies, and every argument class it
    /// restricts (namespaces in clone, socket families, personas) that the profile allows.
    Compare(compare::Args),
    /// What differs between two profiles (exit 0 if equivalent, 1 if not).
    Diff(diff::Args),
    /// Push a profile to an OCI registry as a KEP-6061 profile artifact, and print its digest.
    ///
    /// The profile (any format `convert` reads; one profile, with no base or a `builtin:` one)
    /// is validated as `validate` does and pushed as the plain OCI linux.seccomp JSON a node
    /// installs. The same profile always pushes to the same digest, printed alone on stdout;
    /// stderr names the pinned reference (oci://REGISTRY/REPOSITORY@sha256:…) for
    /// spec.baseProfileName. Exit 1 if the profile is invalid (nothing is pushed).
    Push(push::Args),
    /// Pull a profile artifact from an OCI registry, check it and write its profile.
    ///
    /// The manifest must be a KEP-6061 seccomp profile artifact, its digest the one REF pins
    /// (if it pins one), its one layer at most 1 MiB and of the digest the manifest names; the
    /// profile must validate as `validate` checks it. The profile's bytes, exactly as pulled,
    /// go to -o FILE (atomically; the digest to stdout) or to stdout (the digest to stderr).
    /// Exit 1 if the profile is invalid (nothing is written).
    Pull(pull::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("seccompctl: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Record(args) => record::run(args),
        Cmd::Run(args) => run::run(args),
        Cmd::Validate(args) => validate::run(args),
        Cmd::Convert(args) => convert::run(args),
        Cmd::Merge(args) => merge::run(args),
        Cmd::Install(args) => install::run(args),
        Cmd::Compare(args) => compare::run(args),
        Cmd::Diff(args) => diff::run(args),
        Cmd::Push(args) => push::run(args),
        Cmd::Pull(args) => pull::run(args),
    }
}
