//! The join token: a random secret (128 bits, 32 hex digits) in the data
//! directory (`web-token`, mode 0600) that the address lantalk shows
//! carries (`http://ADDR:7342/#t=TOKEN`). A browser presenting it joins at
//! once; `rotate` makes a new one, and every address shown before stops
//! working.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::files;

/// The token's file in the data directory.
pub const TOKEN_FILE: &str = "web-token";

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 16;

/// The data directory's token, made on first use.
pub fn load_or_create(dir: &Path) -> Result<String> {
    let path = dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if is_token(text.trim()) => Ok(text.trim().to_owned()),
        Ok(_) => rotate(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => rotate(dir),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A new token, replacing the old one.
pub fn rotate(dir: &Path) -> Result<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    files::write_private_atomically(dir, TOKEN_FILE, format!("{token}\n").as_bytes())
        .with_context(|| format!("cannot write {}", dir.join(TOKEN_FILE).display()))?;
    Ok(token)
}

/// Whether `given` is the token `expected`, in time that does not depend
/// on where they differ.
pub fn matches(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn is_token(text: &str) -> bool {
    text.len() == TOKEN_BYTES * 2 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_kept_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert!(is_token(&first), "{first}");
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        let second = rotate(dir.path()).unwrap();
        assert_ne!(second, first);
        assert_eq!(load_or_create(dir.path()).unwrap(), second);
        assert!(matches(&second, &second));
        assert!(!matches(&second, &first));
        assert!(!matches(&second, &second[1..]));
    }
}
