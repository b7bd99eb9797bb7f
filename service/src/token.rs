//! The bearer token: a secret in a root-only file, one line.
//!
//! The server keeps only the token's SHA-256 and compares digests in constant
//! time, so neither the token's bytes nor its length leak through timing. A
//! [`Secret`] never prints itself: `Debug` shows `<hidden>`.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// A token as a client sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Reads the token from the first line of `path`. A file that other users
    /// may read is used, with a warning saying how to fix it.
    pub fn load(path: &Path) -> Result<Secret> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Token {
            path: path.to_path_buf(),
            message: format!(
                "cannot read the token file: {source}; create it with one line holding the token \
                 (e.g. `umask 077; head -c 32 /dev/urandom | base64 > {}`)",
                path.display()
            ),
        })?;
        warn_if_shared(path);
        let line = text.lines().next().unwrap_or("").trim();
        Secret::new(line).map_err(|message| Error::Token {
            path: path.to_path_buf(),
            message,
        })
    }

    /// A token from its text: not empty, no whitespace or control characters
    /// (it travels in an HTTP header).
    pub fn new(text: &str) -> Result<Secret, String> {
        if text.is_empty() {
            return Err("the token is empty; write the token on the file's first line".into());
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the token contains whitespace or a control character".into());
        }
        Ok(Secret(text.to_owned()))
    }

    /// The token's text, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// The token a server accepts: only its digest is kept.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl Token {
    /// The token in `path` (see [`Secret::load`]).
    pub fn load(path: &Path) -> Result<Token> {
        Ok(Token::new(&Secret::load(path)?))
    }

    /// The token `secret`.
    pub fn new(secret: &Secret) -> Token {
        Token {
            digest: digest(secret.expose()),
        }
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(self.digest.ct_eq(&digest(presented)))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn warn_if_shared(path: &Path) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "The token file can be read by other users; run `chmod 600` on it."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_matches_only_itself() {
        let secret = Secret::new("s3cret-token").expect("valid");
        let token = Token::new(&secret);
        assert!(token.matches("s3cret-token"));
        assert!(!token.matches("s3cret-tokem"));
        assert!(!token.matches("s3cret-token "));
        assert!(!token.matches(""));
    }

    #[test]
    fn the_first_line_of_the_file_is_the_token() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("agent.token");
        std::fs::write(&path, "abc123\nignored\n").expect("write");
        assert_eq!(Secret::load(&path).expect("loaded").expose(), "abc123");
    }

    #[test]
    fn an_empty_or_missing_token_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("agent.token");
        let missing = Secret::load(&path).expect_err("missing");
        assert!(missing.to_string().contains("agent.token"), "{missing}");
        std::fs::write(&path, "\n").expect("write");
        let empty = Secret::load(&path).expect_err("empty");
        assert!(empty.to_string().contains("empty"), "{empty}");
    }

    #[test]
    fn secrets_never_print_themselves() {
        let secret = Secret::new("do-not-log-me").expect("valid");
        assert!(!format!("{secret:?}").contains("do-not-log-me"));
        assert!(!format!("{:?}", Token::new(&secret)).contains("do-not-log-me"));
    }
}
