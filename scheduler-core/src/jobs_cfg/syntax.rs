//! The line grammar of Proxmox's section-config parser, as byte-level functions.
//!
//! Each function is the Perl regular expression of `PVE::SectionConfig`
//! written out by hand (no regex engine: the patterns are small and the
//! parser must stay fast). Perl's `\s` on these byte strings is ASCII
//! whitespace only: space, `\t`, `\n`, `\x0B`, `\x0C`, `\r`; every other byte,
//! UTF-8 included, is `\S`.

use std::ops::Range;

/// Perl's `\s` on a byte string.
pub(crate) fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// Removes Perl `\s` from both ends (PVE's `trim`).
pub(crate) fn trim(text: &str) -> &str {
    trim_end(trim_start(text))
}

/// Removes Perl `\s` from the start.
pub(crate) fn trim_start(text: &str) -> &str {
    let skip = text.bytes().take_while(|b| is_space(*b)).count();
    &text[skip..]
}

/// Removes Perl `\s` from the end.
pub(crate) fn trim_end(text: &str) -> &str {
    let keep = text.len() - text.bytes().rev().take_while(|b| is_space(*b)).count();
    &text[..keep]
}

/// Perl truthiness of a line: `""` and `"0"` are false. A false line ends a section.
pub(crate) fn is_false(line: &str) -> bool {
    line.is_empty() || line == "0"
}

/// `^\s*#`: a comment line, skipped everywhere.
pub(crate) fn is_comment(line: &str) -> bool {
    trim_start(line).starts_with('#')
}

/// A section header `^(\S+):\s*(\S+)\s*$`: byte ranges of type and id in `line`.
///
/// The type is greedy, so it takes the longest run that still leaves a `:` and
/// an id: `a:b: c` has type `a:b`; `vzdump:x:4` has type `vzdump:x` and id `4`.
pub(crate) fn parse_header(line: &str) -> Option<(Range<usize>, Range<usize>)> {
    let bytes = line.as_bytes();
    let runs = word_runs(bytes);
    match runs.as_slice() {
        // `type:` then whitespace then the id.
        [first, second] => {
            let colon = first.end - 1;
            (bytes[colon] == b':' && colon > first.start)
                .then(|| (first.start..colon, second.clone()))
        }
        // `type:id` in one run: split at the last `:` that leaves an id.
        [only] if only.start == 0 => {
            let word = &bytes[only.clone()];
            let colon = (1..word.len().saturating_sub(1))
                .rev()
                .find(|&i| word[i] == b':')?;
            Some((0..colon, colon + 1..word.len()))
        }
        _ => None,
    }
    .filter(|(kind, _)| kind.start == 0)
}

/// A property line `^\s+(\S+)(\s+(.*\S))?\s*$`: byte ranges of key and value.
///
/// At least one leading whitespace byte; the value runs from the first
/// non-blank byte after the key to the last non-blank byte of the line, inner
/// whitespace kept. A key alone has no value.
pub(crate) fn parse_property(line: &str) -> Option<(Range<usize>, Option<Range<usize>>)> {
    let bytes = line.as_bytes();
    if bytes.first().is_none_or(|b| !is_space(*b)) {
        return None;
    }
    let key_start = bytes.iter().position(|b| !is_space(*b))?;
    let key_end = key_start
        + bytes[key_start..]
            .iter()
            .position(|b| is_space(*b))
            .unwrap_or(bytes.len() - key_start);
    let value_end = bytes.len() - bytes.iter().rev().take_while(|b| is_space(**b)).count();
    if value_end <= key_end {
        return Some((key_start..key_end, None));
    }
    let value_start = key_end
        + bytes[key_end..]
            .iter()
            .take_while(|b| is_space(**b))
            .count();
    // `.` does not match `\n`; lines never hold one (the file is split on it).
    Some((key_start..key_end, Some(value_start..value_end)))
}

/// Byte ranges of the maximal runs of non-whitespace bytes.
fn word_runs(bytes: &[u8]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, byte) in bytes.iter().enumerate() {
        match (is_space(*byte), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                runs.push(s..i);
                start = None;
                if runs.len() > 2 {
                    return runs;
                }
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(s..bytes.len());
    }
    runs
}

/// PVE's `split_list`: items separated by `,`, `;` or whitespace (or by NUL
/// bytes when the text holds one, trailing empty items dropped). Empty input gives no items.
pub(crate) fn split_list(text: &str) -> impl Iterator<Item = &str> {
    let nul = text.contains('\0');
    let kept = if nul {
        text.trim_end_matches('\0')
    } else {
        text
    };
    kept.split(move |c: char| {
        if nul {
            c == '\0'
        } else {
            c == ',' || c == ';' || (c.is_ascii() && is_space(c as u8))
        }
    })
    .filter(move |item| {
        if nul {
            !kept.is_empty()
        } else {
            !item.is_empty()
        }
    })
}

/// Perl's `split(/,/, $text)`: trailing empty fields are dropped.
pub(crate) fn split_commas(text: &str) -> impl Iterator<Item = &str> {
    let kept = text.trim_end_matches(',');
    kept.split(',').filter(move |_| !kept.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(line: &str) -> Option<(&str, &str)> {
        parse_header(line).map(|(t, i)| (&line[t], &line[i]))
    }

    fn property(line: &str) -> Option<(&str, Option<&str>)> {
        parse_property(line).map(|(k, v)| (&line[k], v.map(|v| &line[v])))
    }

    #[test]
    fn headers_as_perl_reads_them() {
        assert_eq!(header("vzdump: backup-a"), Some(("vzdump", "backup-a")));
        assert_eq!(header("vzdump:backup-a"), Some(("vzdump", "backup-a")));
        assert_eq!(header("vzdump:    b   \r"), Some(("vzdump", "b")));
        assert_eq!(header("a:b: c"), Some(("a:b", "c")));
        assert_eq!(header("vzdump:abc:4"), Some(("vzdump:abc", "4")));
        assert_eq!(header("vzdump: abc:4"), Some(("vzdump", "abc:4")));
        assert_eq!(header("a:b:"), Some(("a", "b:")));
        assert_eq!(header("vzdump::"), Some(("vzdump", ":")));
        assert_eq!(header("vzdump: x # note"), None);
        assert_eq!(header(" vzdump: x"), None);
        assert_eq!(header("vzdump:"), None);
        assert_eq!(header(":x"), None);
        assert_eq!(header(": x"), None);
        assert_eq!(header("storage local"), None);
    }

    #[test]
    fn properties_as_perl_reads_them() {
        assert_eq!(
            property("\tschedule 02:00"),
            Some(("schedule", Some("02:00")))
        );
        assert_eq!(
            property("    schedule   mon..fri 21:30   "),
            Some(("schedule", Some("mon..fri 21:30")))
        );
        assert_eq!(property("  all"), Some(("all", None)));
        assert_eq!(property("  all  \r"), Some(("all", None)));
        assert_eq!(property("\tn a  -  b"), Some(("n", Some("a  -  b"))));
        assert_eq!(property("\tk a\rb\r"), Some(("k", Some("a\rb"))));
        assert_eq!(property("storage local"), None);
        assert_eq!(property("   "), None);
        assert_eq!(property(""), None);
    }

    #[test]
    fn comments_and_false_lines() {
        assert!(is_comment("  # x"));
        assert!(is_comment("#"));
        assert!(!is_comment("x #"));
        assert!(is_false(""));
        assert!(is_false("0"));
        assert!(!is_false("00"));
        assert!(!is_false(" "));
    }

    #[test]
    fn lists_split_like_pve() {
        let list = |text| split_list(text).collect::<Vec<_>>();
        let commas = |text| split_commas(text).collect::<Vec<_>>();
        assert_eq!(list("100 101;102,,103"), vec!["100", "101", "102", "103"]);
        assert_eq!(list(""), Vec::<&str>::new());
        assert_eq!(list("a\0\0b\0"), vec!["a", "", "b"]);
        assert_eq!(list("\0\0"), Vec::<&str>::new());
        assert_eq!(list("\0a"), vec!["", "a"]);
        assert_eq!(commas("a,,b,,"), vec!["a", "", "b"]);
        assert_eq!(commas(",a"), vec!["", "a"]);
        assert_eq!(commas(",,"), Vec::<&str>::new());
        assert_eq!(commas(""), Vec::<&str>::new());
    }
}
