//! Finding the items of a document's big list without holding the
//! document: fed in pieces, the scan follows only strings and brackets,
//! notes where each item of the root object's list `key` starts and ends,
//! and keeps everything else (the skeleton, each item replaced by an empty
//! one) for `json::parse_skimming`. A VM whose memory never shrinks then
//! never needs one contiguous block the size of the config.
//!
//! It checks nothing: the skeleton and each item are read by `json` on
//! their own, and together they are the document, so the document is valid
//! exactly when they all are. For anything it cannot follow (the document
//! ends inside a string or a bracket) it gives up, and the caller reads the
//! whole document for its exact error.

use crate::text::json::Position;

/// Where an item is: its bytes in the document and where they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub start: usize,
    pub length: usize,
    pub origin: Position,
}

/// What a scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The document with each item as `{}` (or `[]` for a list).
    pub skeleton: Vec<u8>,
    pub items: Vec<Item>,
}

/// Keys longer than this are never `key` (a config's are short).
const KEY_BYTES: usize = 32;

#[derive(Debug)]
pub struct Scanner {
    key: &'static [u8],
    scan: Scan,
    /// Bytes fed so far.
    at: usize,
    line: u32,
    line_start: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// In the root object, expecting a key (after `{` or `,`), then
    /// reading one, and the last key read.
    expecting_key: bool,
    reading_key: bool,
    last_key: Vec<u8>,
    /// Inside the list `key` names.
    in_list: bool,
    /// The item being passed over: where it starts, and its closing byte.
    item: Option<(Item, u8)>,
}

impl Scanner {
    pub fn new(key: &'static str) -> Scanner {
        Scanner {
            key: key.as_bytes(),
            scan: Scan::default(),
            at: 0,
            line: 1,
            line_start: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            expecting_key: false,
            reading_key: false,
            last_key: Vec::new(),
            in_list: false,
            item: None,
        }
    }

    /// The next piece of the document. Not inlined: V8 runs a function's
    /// first calls unoptimized and optimizes it once it is hot, so a loop
    /// over the whole config inlined into the one call that configures
    /// would never run optimized.
    #[inline(never)]
    pub fn feed(&mut self, piece: &[u8]) {
        let mut i = 0;
        while let Some(&b) = piece.get(i) {
            if self.in_string && !self.escaped && b != b'"' && b != b'\\' {
                // Most of a config is strings: to their end or an escape in
                // one step. (A raw line break in one is not JSON; the
                // reader of its part says so.)
                let rest = piece.get(i..).unwrap_or_default();
                let run = rest.iter().position(|&c| c == b'"' || c == b'\\').unwrap_or(rest.len());
                let text = rest.get(..run).unwrap_or_default();
                if self.item.is_none() {
                    self.scan.skeleton.extend_from_slice(text);
                }
                if self.reading_key {
                    let room = (KEY_BYTES + 1).saturating_sub(self.last_key.len());
                    self.last_key.extend_from_slice(text.get(..room).unwrap_or(text));
                }
                i += run;
                self.at += run;
                continue;
            }
            self.byte(b);
            self.at += 1;
            i += 1;
        }
    }

    /// The scan, if the document closed every string and bracket it opened.
    pub fn finish(self) -> Option<Scan> {
        (self.depth == 0 && !self.in_string && self.item.is_none()).then_some(self.scan)
    }

    /// One byte outside a string's plain run (`feed` passes those over).
    fn byte(&mut self, b: u8) {
        if b == b'\n' {
            self.line = self.line.saturating_add(1);
            self.line_start = self.at + 1;
        }
        let in_item = self.item.is_some();
        if !in_item {
            self.scan.skeleton.push(b);
        }
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                self.reading_key = false;
            }
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 && self.expecting_key {
                    self.expecting_key = false;
                    self.reading_key = true;
                    self.last_key.clear();
                }
            }
            b',' if self.depth == 1 => self.expecting_key = true,
            b'{' | b'[' => self.open(b, in_item),
            b'}' | b']' => self.close(),
            _ => {}
        }
    }

    fn open(&mut self, b: u8, in_item: bool) {
        if self.depth == 0 && b == b'{' {
            self.expecting_key = true;
        } else if self.depth == 1 && b == b'[' && self.last_key == self.key {
            self.in_list = true;
        } else if self.depth == 2 && self.in_list && !in_item {
            let origin = Position {
                line: self.line,
                column: u32::try_from(self.at - self.line_start + 1).unwrap_or(u32::MAX),
            };
            let close = if b == b'{' { b'}' } else { b']' };
            self.item = Some((Item { start: self.at, length: 0, origin }, close));
        }
        self.depth += 1;
    }

    fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        match self.depth {
            2 => {
                if let Some((mut item, close)) = self.item.take() {
                    item.length = self.at + 1 - item.start;
                    self.scan.items.push(item);
                    // The skeleton has the item's opening byte: its pair.
                    self.scan.skeleton.push(close);
                }
            }
            1 => self.in_list = false,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(document: &str, piece: usize) -> Option<Scan> {
        let mut scanner = Scanner::new("routes");
        for chunk in document.as_bytes().chunks(piece) {
            scanner.feed(chunk);
        }
        scanner.finish()
    }

    #[test]
    fn finds_each_item_of_the_list_and_keeps_the_rest_in_any_pieces() {
        let document = "{\"a\": [{\"x\": 1}],\n \"routes\": [{\"n\": \"}]\\\"{\"},\n  [1, {}], 7, {\"routes\": []}], \"z\": {}}";
        for piece in [1, 2, 3, 7, 1000] {
            let found = scan(document, piece).unwrap();
            assert_eq!(
                String::from_utf8(found.skeleton).unwrap(),
                "{\"a\": [{\"x\": 1}],\n \"routes\": [{},\n  [], 7, {}], \"z\": {}}"
            );
            let texts: Vec<&str> =
                found.items.iter().map(|i| &document[i.start..i.start + i.length]).collect();
            assert_eq!(texts, ["{\"n\": \"}]\\\"{\"}", "[1, {}]", "{\"routes\": []}"]);
            let origins: Vec<(u32, u32)> =
                found.items.iter().map(|i| (i.origin.line, i.origin.column)).collect();
            assert_eq!(origins, [(2, 13), (3, 3), (3, 15)]);
        }
    }

    #[test]
    fn a_key_named_like_the_list_below_the_root_or_as_a_value_is_not_it() {
        let found = scan(r#"{"x": {"routes": [{"a": 1}]}, "y": "routes", "z": [{"b": 2}]}"#, 5).unwrap();
        assert!(found.items.is_empty());
    }

    #[test]
    fn gives_up_on_a_document_that_leaves_a_string_or_a_bracket_open() {
        assert_eq!(scan(r#"{"routes": [{"a": "b}]}"#, 4), None);
        assert_eq!(scan(r#"{"routes": [{"a": 1}]"#, 4), None);
        assert!(scan(r#"{"routes": [{"a": 1}]}"#, 4).is_some());
    }
}
