//! `seccompctl validate`.

use super::Report;
use anyhow::anyhow;
use seccomp_filter::{self as seccomp, Libseccomp};
use seccomp_profile::{self as model, Item};
use seccompctl::input::{self, Input};
use seccompctl::local::load::{self, Names};
use seccompctl::migrate;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output: text, or JSON (one object per profile or object: a file of several gives
    /// several, each with its `document`) for CI.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Report,
    /// Profile files (`-`: standard input; FILE#NAME: only the objects named NAME). A file
    /// may hold several YAML documents and `List`s; each object is checked on its own.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args { output, files } = args;
    let (mut bad, mut unreadable) = (0, 0);
    let mut results = Vec::new();
    for f in &files {
        let file = f.display().to_string();
        let input = match input::read_input(f) {
            Ok(i) => i,
            Err(e) if e.root_cause().is::<std::io::Error>() => {
                unreadable += 1;
                results.push(serde_json::json!({"file": file, "result": "unreadable", "errors": [format!("{e:#}")]}));
                continue;
            }
            Err(e) => {
                bad += 1;
                results.push(invalid(&file, None, &e));
                continue;
            }
        };
        let chosen: Vec<&Item> = input.chosen().collect();
        if chosen.is_empty() {
            bad += 1;
            results.push(serde_json::json!({"file": file, "result": "invalid", "errors": ["holds no document (it is empty, or only comments and `---`)"]}));
        }
        for item in chosen {
            let document = input.many().then(|| item.label());
            let result = match check(&input, item) {
                Ok(mut r) => {
                    r["file"] = file.clone().into();
                    if let Some(d) = &document {
                        r["document"] = d.clone().into();
                    }
                    r
                }
                Err(e) => {
                    bad += 1;
                    invalid(&file, document.as_deref(), &e)
                }
            };
            results.push(result);
        }
    }
    match output {
        Report::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        Report::Text => results.iter().for_each(print_validation),
    }
    Ok(if unreadable > 0 {
        ExitCode::from(2)
    } else if bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// An `invalid` result: the error's parts, each a line.
fn invalid(file: &str, document: Option<&str>, e: &anyhow::Error) -> serde_json::Value {
    let errors: Vec<String> = format!("{e:#}").split("; ").map(str::to_owned).collect();
    let mut r = serde_json::json!({"file": file, "result": "invalid", "errors": errors});
    if let Some(d) = document {
        r["document"] = d.into();
    }
    r
}

/// Check one object: a profile (parsed, validated, compiled), or a binding or recording
/// (this project's checked, SPO's converted).
fn check(input: &Input, item: &Item) -> anyhow::Result<serde_json::Value> {
    if let Some(converted) = migrate::convert_object(item) {
        let c = converted.map_err(|e| anyhow!("{e}"))?;
        let mut warnings = c.warnings;
        if c.format.starts_with("Security Profiles Operator") {
            warnings.insert(
                0,
                "to use it with seccomp-operator, convert it: seccompctl convert --to cr".into(),
            );
        }
        return Ok(
            serde_json::json!({"result": "valid", "format": c.format, "warnings": warnings}),
        );
    }
    let l = load::load_item(input, item, Names::Known).map_err(|e| {
        // The place is said by the result; keep the reason.
        let place = input.place(item);
        let msg = format!("{e:#}");
        let msg = msg
            .strip_prefix(&format!("{place}: "))
            .unwrap_or(&msg)
            .to_owned();
        anyhow!(
            "{}",
            if input.many() {
                msg
            } else {
                format!("{place}: {msg}")
            }
        )
    })?;
    let filter = seccomp::compile(&l.doc)?;
    let warnings: Vec<String> = l
        .parsed
        .warnings
        .iter()
        .chain(&l.doc.startup_problems())
        .cloned()
        .collect();
    Ok(serde_json::json!({
        "result": "valid", "format": l.parsed.format.to_string(),
        "rules": l.doc.syscalls.len(),
        "names": l.doc.syscalls.iter().map(|r| r.names.len()).sum::<usize>(),
        "instructions": filter.instructions(),
        "warnings": warnings, "skipped": filter.skipped,
    }))
}

/// One `validate` result (as built in `run`), for people.
fn print_validation(r: &serde_json::Value) {
    let file = match r["document"].as_str() {
        Some(d) => format!("{}: {d}", r["file"].as_str().unwrap_or_default()),
        None => r["file"].as_str().unwrap_or_default().to_owned(),
    };
    let list = |key: &str| -> Vec<String> {
        r[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    match r["result"].as_str() {
        Some("valid") if r["instructions"].is_null() => {
            println!("{file}: ok ({})", r["format"].as_str().unwrap_or_default());
            for w in list("warnings") {
                println!("  warning: {w}");
            }
        }
        Some("valid") => {
            println!(
                "{file}: ok ({}, {} syscall names in {} rules, {} BPF instructions)",
                r["format"].as_str().unwrap_or_default(),
                r["names"],
                r["rules"],
                r["instructions"]
            );
            for w in list("warnings") {
                println!("  warning: {w}");
            }
            let skipped = list("skipped");
            if !skipped.is_empty() {
                println!(
                    "  note: unknown to {}, skipped as runc would: {}",
                    model::SyscallTable::describe(&Libseccomp),
                    skipped.join(", ")
                );
            }
        }
        Some("unreadable") => println!("{file}: UNREADABLE: {}", list("errors").join("; ")),
        _ => {
            println!("{file}: INVALID");
            for line in list("errors") {
                println!("  {line}");
            }
        }
    }
}
