//! A profile file's content hash as the installer holds it: the 32 bytes of its SHA-256,
//! shown (in the node's status, in logs) as the `sha256:<hex>` text of
//! [`seccomp_profile::content_hash`]. The installer holds several per profile (of the file on
//! disk, in its status, remembered per version): as bytes each costs 32 bytes in place,
//! where the text cost a 71-byte allocation and its handle.

use std::fmt;

/// The text's prefix.
const PREFIX: &str = "sha256:";

/// The SHA-256 of a file's content (see the module documentation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// The hash of `bytes` ([`seccomp_profile::content_digest`]).
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(seccomp_profile::content_digest(bytes))
    }

    /// The hash written as text, `sha256:` and 64 lower-case hex digits (what [`fmt::Display`]
    /// writes); None for any other text, so that the text of a hash is always the same.
    pub fn from_text(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(PREFIX)?;
        // `hex` reads upper case too: only the one spelling is a hash.
        if hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut out = [0; 32];
        hex::decode_to_slice(hex, &mut out).ok()?;
        Some(ContentHash(out))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_reads_back_as_the_text_the_profile_crate_writes() {
        for bytes in [&b""[..], b"{}", &[0xff; 1000]] {
            let text = seccomp_profile::content_hash(bytes);
            let hash = ContentHash::of(bytes);
            assert_eq!(hash.to_string(), text);
            assert_eq!(format!("{hash:?}"), text);
            assert_eq!(ContentHash::from_text(&text), Some(hash));
        }
        assert_ne!(ContentHash::of(b"a"), ContentHash::of(b"b"));
    }

    #[test]
    fn only_the_one_spelling_of_a_hash_is_read() {
        let text = seccomp_profile::content_hash(b"x");
        for other in [
            text.to_uppercase(),
            format!("sha256:{}", text[7..].to_uppercase()),
            text.replace("sha256:", "sha512:"),
            text.replace("sha256:", ""),
            text[..text.len() - 1].to_string(),
            format!("{text}0"),
            format!("sha256:+{}", &text[8..]),
            format!("sha256:{}g", &text[7..text.len() - 1]),
        ] {
            assert_eq!(ContentHash::from_text(&other), None, "{other}");
        }
    }
}
