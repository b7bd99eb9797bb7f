//! The lossless layer: the file's bytes, kept as they are, with an index of its lines.
//!
//! Proxmox splits jobs.cfg on LF only, so a line here is everything between two
//! `\n` (a `\r` stays part of the line). The text itself is never rebuilt from
//! pieces: rendering returns the stored bytes, so a round trip is exact by
//! construction, whatever the file holds (comments, blank or whitespace-only
//! lines, `\r`, a missing final newline). Edits replace one byte range and
//! re-index.

use std::ops::Range;

/// The file's text and where each of its lines starts and ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Document {
    text: String,
    /// Byte range of every line, without its `\n`.
    lines: Vec<Range<usize>>,
}

impl Document {
    /// Keeps `text` and indexes its lines.
    pub(crate) fn new(text: String) -> Document {
        let lines = index_lines(&text);
        Document { text, lines }
    }

    /// The exact bytes.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Number of lines as Proxmox numbers them (a final `\n` does not start a line).
    pub(crate) fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// Line `index` (0-based) without its `\n`.
    pub(crate) fn line(&self, index: usize) -> &str {
        &self.text[self.lines[index].clone()]
    }

    /// Byte offset in the text where line `index` (0-based) starts.
    pub(crate) fn line_start(&self, index: usize) -> usize {
        self.lines[index].start
    }

    /// Byte offset in the text where line `index` (0-based) ends (before its `\n`).
    pub(crate) fn line_end(&self, index: usize) -> usize {
        self.lines[index].end
    }

    /// Replaces the bytes in `range` with `replacement` and re-indexes the lines.
    pub(crate) fn replace(&mut self, range: Range<usize>, replacement: &str) {
        self.text.replace_range(range, replacement);
        self.lines = index_lines(&self.text);
    }
}

/// Line ranges of `text`: split on `\n`; a trailing `\n` ends the last line
/// rather than starting an empty one.
fn index_lines(text: &str) -> Vec<Range<usize>> {
    let mut lines = Vec::with_capacity(text.len() / 24 + 1);
    let mut start = 0;
    for (offset, byte) in text.bytes().enumerate() {
        if byte == b'\n' {
            lines.push(start..offset);
            start = offset + 1;
        }
    }
    if start < text.len() {
        lines.push(start..text.len());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        let doc = Document::new(text.to_owned());
        (0..doc.line_count())
            .map(|i| doc.line(i).to_owned())
            .collect()
    }

    #[test]
    fn splits_on_lf_only_and_keeps_cr() {
        assert_eq!(lines("a\r\nb\n"), vec!["a\r", "b"]);
    }

    #[test]
    fn empty_lines_and_missing_final_newline_are_lines() {
        assert_eq!(lines("a\n\n\nb"), vec!["a", "", "", "b"]);
        assert!(lines("").is_empty());
        assert_eq!(lines("\n"), vec![""]);
    }

    #[test]
    fn replace_reindexes() {
        let mut doc = Document::new("a\nbc\nd".to_owned());
        doc.replace(3..4, "x\ny");
        assert_eq!(doc.text(), "a\nbx\ny\nd");
        assert_eq!(doc.line_count(), 4);
        assert_eq!(doc.line(2), "y");
    }
}
