//! The percent-encoding of `comment` values (pve-common `encode_text` / `decode_text`).
//!
//! On disk a comment is UTF-8 with every control byte, every byte ≥ 0x7F, `%`
//! and `:` escaped as `%XX` (upper-case hex). Reading unescapes any `%XX`
//! (so a literal `:` written by hand reads fine) and decodes UTF-8.

/// What Proxmox reads from a stored comment.
pub(crate) fn decode(stored: &str) -> String {
    let bytes = stored.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(byte) = hex_pair(bytes[i + 1], bytes[i + 2]) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Valid UTF-8 (the usual case) keeps the buffer; only invalid bytes need a copy.
    String::from_utf8(out)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// What Proxmox writes for a comment.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if !(0x20..0x7F).contains(&byte) || byte == b'%' || byte == b':' {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(byte as char);
        }
    }
    out
}

fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(high)? * 16 + digit(low)?) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_documented_example() {
        assert_eq!(encode("Pihanga: über 100%"), "Pihanga%3A %C3%BCber 100%25");
        assert_eq!(decode("Pihanga%3A %C3%BCber 100%25"), "Pihanga: über 100%");
    }

    #[test]
    fn decoding_is_lenient() {
        assert_eq!(decode("a: b"), "a: b");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%c3%bc"), "ü");
        assert_eq!(decode("%FF"), "\u{FFFD}");
    }
}
