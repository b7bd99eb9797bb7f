//! The digest Proxmox gives a config file: SHA-1 of its exact bytes, as 40 hex digits.

use std::fmt;
use std::str::FromStr;

use sha1::{Digest as _, Sha1};

/// SHA-1 of a jobs.cfg's bytes, the `digest` Proxmox reports and compares.
///
/// ```
/// use scheduler_core::jobs_cfg::Digest;
///
/// let digest = Digest::of(b"");
/// assert_eq!(digest.to_string(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
/// assert_eq!(digest.to_string().parse::<Digest>(), Ok(digest));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digest([u8; 20]);

impl Digest {
    /// The SHA-1 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha1::digest(bytes).into())
    }

    /// The 20 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Why a text is not a digest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest '{text}': expected 40 hexadecimal digits (the SHA-1 that `schedctl jobs-cfg show` prints)")]
pub struct DigestParseError {
    /// The text that was given.
    pub text: String,
}

impl FromStr for Digest {
    type Err = DigestParseError;

    /// Accepts 40 hex digits, upper or lower case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || DigestParseError {
            text: text.to_owned(),
        };
        if text.len() != 40 {
            return Err(error());
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| error())?;
        Ok(Digest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let digest = Digest::of(b"vzdump: a\n");
        let text = digest.to_string();
        assert_eq!(text.len(), 40);
        assert_eq!(text.parse::<Digest>(), Ok(digest));
        assert_eq!(text.to_uppercase().parse::<Digest>(), Ok(digest));
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert!("abc".parse::<Digest>().is_err());
        assert!("g".repeat(40).parse::<Digest>().is_err());
        assert!("a".repeat(41).parse::<Digest>().is_err());
    }
}
