//! Size limits on everything a tenant writes, and the bounding of everything the operator and
//! the agents report back.
//!
//! The per-field limits are in the CRD schema (`maxItems`/`maxLength`), so the API server
//! enforces them even while the operator is down; the few that a schema cannot express (the
//! total number of names in a profile) are checked by the profile webhook and again by every
//! node agent before it installs anything.
//!
//! The limits fit every real profile in the corpus with wide margins: the largest (Moby's
//! default in the old one-rule-per-syscall format) has 311 rules, 370 names in one rule, 479
//! names in all, 2 argument conditions per rule and 28-character names.

/// Rules (`syscalls`) per profile.
pub const MAX_RULES: usize = 1024;
/// Names per rule.
pub const MAX_NAMES_PER_RULE: usize = 1024;
/// Names over all rules of one profile (not expressible in a schema: checked by the
/// profile webhook and by the node agents).
pub const MAX_TOTAL_NAMES: usize = 4096;
/// Characters of one syscall name (the longest real one has about 30).
pub const MAX_NAME_LEN: usize = 64;
/// Argument conditions per rule (six arguments, one comparison each).
pub const MAX_ARGS: usize = 6;
/// Entries of `architectures` (there are 23 architectures).
pub const MAX_ARCHITECTURES: usize = 32;
/// Entries of `flags` (there are 4 flags).
pub const MAX_FLAGS: usize = 8;
/// Characters of `listenerPath` (a Unix socket path: `sun_path` holds 108 bytes).
pub const MAX_LISTENER_PATH_LEN: usize = 107;
/// Characters of `listenerMetadata`.
pub const MAX_LISTENER_METADATA_LEN: usize = 4096;
/// Characters of `baseProfileName`: `builtin:` and an object name (261), or an `oci://`
/// reference (a registry, a repository of up to 255 characters, a tag and a digest).
pub const MAX_BASE_NAME_LEN: usize = 1024;
/// Bytes of a profile artifact's layer (KEP-6061's limit): what the operator and `seccompctl`
/// fetch from a registry at most.
pub const MAX_ARTIFACT_BYTES: usize = 1 << 20;
/// Characters of a Kubernetes object or label value a spec names (container names, images).
pub const MAX_REF_LEN: usize = 253;
/// Container names a recording or binding lists.
pub const MAX_CONTAINER_NAMES: usize = 64;
/// Characters of an image reference a binding matches.
pub const MAX_IMAGE_LEN: usize = 4096;

/// Bytes of one file (or standard input) the CLI reads profiles from: room for a `kubectl get
/// -o yaml` dump of [`MAX_DOCUMENTS`] large profiles, and a bound on what a parser is handed.
pub const MAX_INPUT_BYTES: usize = 32 << 20;
/// Objects one input may hold: YAML documents, and the items of `List`s, counted together.
pub const MAX_DOCUMENTS: usize = 1000;

/// Bytes of one message the operator or an agent writes into a status (a node's per-profile
/// error, a condition's message).
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Field errors listed for one object; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 10;

/// `s` cut to at most `max` bytes on a character boundary, with what was cut said at the end.
/// Shorter strings come back unchanged.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    // The note's length with the largest possible count: the real one is never longer.
    let note_len = format!(" … ({} more bytes)", s.len()).len();
    let boundary = |mut end: usize| {
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        end
    };
    if max <= note_len {
        return s[..boundary(max)].to_owned();
    }
    let end = boundary(max - note_len);
    format!("{} … ({} more bytes)", &s[..end], s.len() - end)
}

/// A list of problems for one object, joined with `; `: at most [`MAX_LISTED_ERRORS`] listed,
/// as many as fit in [`MAX_MESSAGE_BYTES`], the rest counted (the count always fits).
pub fn summarize<I, S>(problems: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    // Room kept for "; and N more".
    const TAIL: usize = 32;
    let mut out = String::new();
    let mut listed = 0usize;
    let mut more = 0usize;
    for p in problems {
        let item = truncate(p.as_ref(), MAX_MESSAGE_BYTES / 4);
        let sep = if listed == 0 { 0 } else { 2 };
        if more == 0
            && listed < MAX_LISTED_ERRORS
            && out.len() + sep + item.len() + TAIL <= MAX_MESSAGE_BYTES
        {
            if sep > 0 {
                out.push_str("; ");
            }
            out.push_str(&item);
            listed += 1;
        } else {
            more += 1;
        }
    }
    if more > 0 {
        out.push_str(&format!("; and {more} more"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_unchanged() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn long_strings_are_cut_within_the_limit_and_say_so() {
        let s = "x".repeat(5000);
        let t = truncate(&s, 100);
        assert!(t.len() <= 100, "{} bytes", t.len());
        assert!(t.ends_with("more bytes)"), "{t}");
        assert!(t.starts_with("xxx"));
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let s = "é".repeat(1000);
        for max in 20..60 {
            let t = truncate(&s, max);
            assert!(t.len() <= max);
        }
    }

    #[test]
    fn summaries_list_some_and_count_the_rest() {
        let problems: Vec<String> = (0..100_000).map(|i| format!("names[{i}]: bad")).collect();
        let s = summarize(&problems);
        assert!(s.len() <= MAX_MESSAGE_BYTES);
        assert!(s.contains("names[0]: bad"));
        assert!(s.contains("names[9]: bad"));
        assert!(!s.contains("names[10]: bad"));
        assert!(s.ends_with("and 99990 more"), "{s}");
    }

    #[test]
    fn long_problems_are_listed_as_far_as_they_fit_and_the_count_survives() {
        let problems: Vec<String> = (0..50)
            .map(|i| format!("{i}: {}", "y".repeat(200)))
            .collect();
        let s = summarize(&problems);
        assert!(s.len() <= MAX_MESSAGE_BYTES, "{}", s.len());
        let listed = s.matches(": yyyy").count();
        assert!((3..=5).contains(&listed), "{listed} listed: {s}");
        assert!(s.ends_with(&format!("and {} more", 50 - listed)), "{s}");
    }
}
