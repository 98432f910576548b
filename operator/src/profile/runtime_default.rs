//! The runtime's default profile as a reference for recorded profiles: the `RuntimeDefault`
//! condition says whether a recorded profile lets anything run that the default denies
//! (syscalls, or argument classes such as new namespaces and socket families). Pure apart from
//! reading the file once at start.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use seccomp_profile::limits::{truncate, MAX_MESSAGE_BYTES};
use seccomp_profile::{looser_than, Arch, EvalContext, SeccompDocument};
use std::path::Path;

/// The condition's type.
pub const CONDITION: &str = "RuntimeDefault";
/// Items named in the condition's message; the rest are counted.
pub const MAX_LISTED: usize = 10;

/// The reference profile.
#[derive(Clone, Debug)]
pub struct RuntimeDefault {
    /// Where it came from (for messages).
    pub source: String,
    /// The document, evaluated for a container with the runtime's default capabilities.
    pub document: SeccompDocument,
}

/// Why the reference could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file exists but cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a profile.
    #[error("{path} is not a seccomp profile: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The parse error.
        #[source]
        source: seccomp_profile::ProfileError,
    },
}

/// Read the reference from `path`; `None` when there is no such file (the check is off).
pub fn load(path: &Path) -> Result<Option<RuntimeDefault>, LoadError> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LoadError::Read {
                path: shown,
                source,
            })
        }
    };
    let parsed = seccomp_profile::parse_profile(&text, &EvalContext::host()).map_err(|source| {
        LoadError::Parse {
            path: shown.clone(),
            source,
        }
    })?;
    Ok(Some(RuntimeDefault {
        source: shown,
        document: parsed.spec.document.canonical(Arch::native()),
    }))
}

/// The `RuntimeDefault` condition of a recorded profile whose resolved document is `doc`.
pub fn condition(doc: &SeccompDocument, reference: &RuntimeDefault) -> Condition {
    let looser = looser_than(doc, &reference.document, Arch::native());
    let (status, reason, message) = if looser.is_empty() {
        (
            "True",
            "WithinRuntimeDefault",
            format!(
                "allows nothing the runtime default ({}) denies",
                reference.source
            ),
        )
    } else {
        let mut listed: Vec<String> = looser
            .iter()
            .take(MAX_LISTED)
            .map(ToString::to_string)
            .collect();
        if looser.len() > MAX_LISTED {
            listed.push(format!("and {} more", looser.len() - MAX_LISTED));
        }
        (
            "False",
            "LooserThanRuntimeDefault",
            format!(
                "allows {} thing(s) the runtime default ({}) denies (recorded: the workload used them): {}",
                looser.len(),
                reference.source,
                listed.join("; ")
            ),
        )
    };
    Condition {
        type_: CONDITION.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: truncate(&message, MAX_MESSAGE_BYTES),
        observed_generation: None,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccomp_profile::{recorded_document, ArgClasses, ArgKind};

    fn reference() -> RuntimeDefault {
        // A small stand-in for a runtime default: clone only without namespaces.
        let doc: SeccompDocument = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0x7E02_0000u64, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }))
        .unwrap();
        RuntimeDefault {
            source: "test".into(),
            document: doc,
        }
    }

    #[test]
    fn within_and_looser_than_the_default() {
        let mut c = ArgClasses::default();
        c.add(ArgKind::Clone, 0);
        let ok = condition(&recorded_document(["read", "clone"], &c), &reference());
        assert_eq!(
            (ok.status.as_str(), ok.reason.as_str()),
            ("True", "WithinRuntimeDefault")
        );

        let mut c = ArgClasses::default();
        c.add(ArgKind::Clone, 0x1000_0000);
        let names: Vec<String> = (0..30)
            .map(|i| format!("sys{i}"))
            .chain(["clone".into()])
            .collect();
        let bad = condition(&recorded_document(names, &c), &reference());
        assert_eq!(
            (bad.status.as_str(), bad.reason.as_str()),
            ("False", "LooserThanRuntimeDefault")
        );
        assert!(
            bad.message.contains("allows 31 thing(s)"),
            "{}",
            bad.message
        );
        assert!(
            bad.message
                .contains("clone: SCMP_ACT_ALLOW [arg0 MASKED_EQ 0x7e020000 0x10000000]"),
            "{}",
            bad.message
        );
        assert!(bad.message.contains("and 21 more"), "{}", bad.message);
        assert!(bad.message.len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn a_missing_file_turns_the_check_off_and_a_bad_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("none.json")).unwrap().is_none());
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        let e = load(&bad).unwrap_err();
        assert!(e.to_string().contains("is not a seccomp profile"), "{e}");
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#).unwrap();
        assert!(load(&good).unwrap().is_some());
    }
}
