//! The profile [`Policy`] as command-line flags (and environment variables): one definition
//! for the operator, which validates profiles against it, and the node agents, which install
//! them under it. The two must agree; sharing the flags keeps their names, defaults and
//! parsing equal, and the deployment sets the same values on both.

use crate::{Flag, Policy};
use std::collections::BTreeSet;

/// The policy's flags, for `#[command(flatten)]`.
#[derive(Clone, Debug, clap::Args)]
pub struct PolicyArgs {
    /// Allow profiles with `listenerPath`/`SCMP_ACT_NOTIFY` (an admin decision: the runtime
    /// connects, as root, to the socket the profile names).
    #[arg(long, env = "ALLOW_LISTENER_PATH", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_listener_path: bool,
    /// The filter flags profiles may set, comma-separated.
    #[arg(long, env = "ALLOWED_FLAGS", default_value = "SECCOMP_FILTER_FLAG_TSYNC,SECCOMP_FILTER_FLAG_LOG", value_parser = Policy::parse_flags)]
    pub allowed_flags: BTreeSet<Flag>,
    /// Install profiles that set no flags with `SECCOMP_FILTER_FLAG_LOG`, so that their
    /// refusals, not only their kills, are audited and reported. On by default (runc 1.2+ and
    /// crun apply `flags`; runc before 1.2 refused every container whose profile had any).
    /// Kills are audited, and reported, either way.
    #[arg(long, env = "REPORT_DENIALS", default_value_t = true, action = clap::ArgAction::Set)]
    pub report_denials: bool,
}

impl PolicyArgs {
    /// The policy these flags say.
    pub fn policy(&self) -> Policy {
        Policy {
            allow_listener: self.allow_listener_path,
            allowed_flags: self.allowed_flags.clone(),
            report_denials: self.report_denials,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        policy: PolicyArgs,
    }

    #[test]
    fn defaults_and_overrides() {
        let p = Cli::try_parse_from(["x"]).unwrap().policy.policy();
        assert!(!p.allow_listener && p.report_denials);
        assert_eq!(p.allowed_flags.len(), 2);
        let p = Cli::try_parse_from([
            "x",
            "--allow-listener-path=true",
            "--report-denials=false",
            "--allowed-flags=SECCOMP_FILTER_FLAG_LOG",
        ])
        .unwrap()
        .policy
        .policy();
        assert!(p.allow_listener && !p.report_denials);
        assert_eq!(p.allowed_flags.len(), 1);
        assert!(Cli::try_parse_from(["x", "--allowed-flags=NOPE"]).is_err());
    }
}
