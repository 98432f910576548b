//! `seccompctl pull`: a KEP-6061 profile artifact, checked (digests, size, type), its profile
//! validated, written exactly as pulled.

use super::remote::{self, RegistryArgs};
use anyhow::{anyhow, Context};
use seccompctl::input;
use seccompctl::local::load::{self, Names};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to pull: REGISTRY/REPOSITORY@sha256:DIGEST (checked against what arrives) or
    /// REGISTRY/REPOSITORY:TAG, with or without oci://.
    #[arg(value_name = "REF")]
    reference: String,
    /// Write the profile to FILE (atomically; the digest goes to stdout) instead of stdout
    /// (the digest then goes to stderr).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        reference,
        output,
        registry,
    } = args;
    let reference = remote::parse_reference(&reference)?;
    let credentials = remote::credentials(&registry, &reference)?;
    let client = remote::registry(&registry)?;
    let pulled = remote::block_on(client.pull(&reference, &credentials))?
        .map_err(|e| remote::explain(e, &credentials, &registry))?;
    if let Err(e) = check(&reference.to_string(), &pulled.profile) {
        eprintln!("seccompctl: {e:#}");
        eprintln!("seccompctl: nothing written");
        return Ok(ExitCode::from(1));
    }
    let pinned = reference.pinned(&pulled.digest);
    match &output {
        Some(path) => {
            write_atomic(path, &pulled.profile)?;
            println!("{}", pulled.digest);
            eprintln!("seccompctl: pulled {pinned} -> {}", path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&pulled.profile)?;
            out.flush()?;
            eprintln!("seccompctl: pulled {pinned}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The pulled layer holds one profile that `validate` accepts (every field, syscall names,
/// compiled); messages name it by `reference`.
fn check(reference: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{reference}: the profile is not UTF-8 text (byte {} is not part of a character)",
            e.valid_up_to()
        )
    })?;
    let input = input::from_text(reference.to_owned(), text)?;
    let item = load::single_profile(&input)?;
    let loaded = load::load_item(&input, item, Names::Known)?;
    seccomp_filter::compile(&loaded.doc)
        .with_context(|| format!("{reference}: invalid profile"))?;
    Ok(())
}

/// Write `bytes` to `path` through a temp file in the same directory, renamed over it: a reader
/// sees the old file or the new one, never a part.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let shown = path.display();
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("-o {shown}: names no file"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.seccompctl-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {shown}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["p.json"]);
        let e = write_atomic(&dir.path().join("no/such/dir/p.json"), b"x").unwrap_err();
        assert!(format!("{e:#}").starts_with("writing "), "{e:#}");
    }

    #[test]
    fn a_pulled_profile_must_be_one_valid_profile() {
        let r = "oci://r.io/p:v1";
        check(r, br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#).unwrap();
        for (bytes, says) in [
            (&br#"{"defaultAction": "SCMP_ACT_NOPE"}"#[..], "SCMP_ACT_NOPE"),
            (b"\xff", "not UTF-8"),
            (b"[1, 2", "oci://r.io/p:v1"),
            (
                br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
                "oci://r.io/p:v1",
            ),
        ] {
            let e = format!("{:#}", check(r, bytes).unwrap_err());
            assert!(e.contains(says) && e.starts_with(r), "{e}");
        }
    }
}
