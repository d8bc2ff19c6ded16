//! A small, strict JSON reader (RFC 8259) for the config. serde and
//! serde_json cost the `.wasm` about 115 KB of its size budget (300 KiB then), for one
//! document read once per configure; this reader keeps what the config
//! needs: values with the line and column they start at, object keys in
//! document order (duplicates refused), numbers as written (so an error
//! can quote them), and syntax errors that name the place in the config.
//!
//! It accepts what serde_json accepts and reads every number to the same
//! f64 (`src/number.rs`, correctly rounded), checked on 100,000 mutated
//! configs by `tests/fuzz.rs`, with two differences on purpose: a key given
//! twice is refused (serde_json keeps the last, which would hide a typo's
//! twin), and nesting deeper than 64 levels is refused (serde_json: 128).

/// Where a value starts: 1-based line and byte column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    /// A document's first byte.
    const START: Position = Position { line: 1, column: 1 };

    /// This position, counted in a part of a document that starts at
    /// `origin`, as counted in the whole document.
    fn from(self, origin: Position) -> Position {
        if self.line == 1 {
            Position { line: origin.line, column: origin.column + self.column - 1 }
        } else {
            Position { line: origin.line + self.line - 1, column: self.column }
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} column {}", self.line, self.column)
    }
}

/// What a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    /// In the words of the config reference.
    pub fn words(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "a list",
            Kind::Object => "an object",
        }
    }
}

/// One value of the document, 8 bytes: where it starts in the source, what
/// it is, and its length (a scalar's in bytes; a container's in the nodes
/// of its subtree, so a reader skips it in one step). A 4 MiB config holds
/// about 275,000 values: 2 MiB of nodes, where a tree of owned strings and
/// vectors took five times the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    start: u32,
    /// The tag in the top 3 bits, the length below.
    meta: u32,
}

const LENGTH: u32 = (1 << 28) - 1;
/// A container read but not kept (`parse_skimming`): its length is in
/// bytes, for `parse_part` to read it again.
const SKIMMED: u32 = 1 << 28;
const NULL: u32 = 0;
const FALSE: u32 = 1;
const TRUE: u32 = 2;
const NUMBER: u32 = 3;
/// A string without escapes: its bytes are the source's.
const STRING: u32 = 4;
/// A string with escapes: decoded once, kept in `Document::decoded`.
const ESCAPED: u32 = 5;
const ARRAY: u32 = 6;
const OBJECT: u32 = 7;

impl Node {
    fn new(tag: u32, start: usize, length: usize) -> Node {
        let start = u32::try_from(start).unwrap_or(u32::MAX);
        let length = u32::try_from(length).unwrap_or(LENGTH).min(LENGTH);
        Node { start, meta: tag << 29 | length }
    }

    fn tag(self) -> u32 {
        self.meta >> 29
    }

    fn length(self) -> usize {
        (self.meta & LENGTH) as usize
    }

    fn skimmed(self) -> bool {
        self.meta & SKIMMED != 0
    }
}

/// A parsed document: the source it was read from and its values, in
/// document order. Values are read through `Json`.
#[derive(Debug)]
pub struct Document<'s> {
    /// Checked to be UTF-8 once; every token starts and ends at an ASCII
    /// byte, so its text is a slice of it.
    source: &'s str,
    nodes: Vec<Node>,
    /// The strings with escapes, by node index, decoded.
    decoded: Vec<(u32, String)>,
    /// Where the source starts in the whole document (`parse_part`).
    origin: Position,
}

impl<'s> Document<'s> {
    /// The document's value.
    pub fn root(&self) -> Json<'_> {
        Json { doc: self, index: 0 }
    }
}

/// A value of a `Document`.
#[derive(Debug, Clone, Copy)]
pub struct Json<'d> {
    doc: &'d Document<'d>,
    index: usize,
}

impl<'d> Json<'d> {
    fn node(self) -> Node {
        self.doc.nodes.get(self.index).copied().unwrap_or(Node { start: 0, meta: 0 })
    }

    pub fn kind(self) -> Kind {
        match self.node().tag() {
            NULL => Kind::Null,
            FALSE | TRUE => Kind::Bool,
            NUMBER => Kind::Number,
            STRING | ESCAPED => Kind::String,
            ARRAY => Kind::Array,
            _ => Kind::Object,
        }
    }

    pub fn is_null(self) -> bool {
        self.kind() == Kind::Null
    }

    /// Where it starts: line and column, counted from the source (only
    /// errors ask).
    pub fn at(self) -> Position {
        position_of(self.doc.source.as_bytes(), self.node().start as usize).from(self.doc.origin)
    }

    pub fn bool(self) -> Option<bool> {
        match self.node().tag() {
            TRUE => Some(true),
            FALSE => Some(false),
            _ => None,
        }
    }

    /// A number as written.
    pub fn number_text(self) -> Option<&'d str> {
        let node = self.node();
        (node.tag() == NUMBER).then(|| self.source_str(node.start as usize, node.length()))
    }

    /// A number's value (read once more: the reader checked it is finite).
    pub fn number(self) -> Option<f64> {
        self.number_text().and_then(crate::text::number::parse)
    }

    pub fn str(self) -> Option<&'d str> {
        let node = self.node();
        match node.tag() {
            STRING => Some(self.source_str(node.start as usize + 1, node.length())),
            ESCAPED => {
                let at = self.doc.decoded.binary_search_by_key(&(self.index as u32), |(i, _)| *i).ok()?;
                self.doc.decoded.get(at).map(|(_, s)| s.as_str())
            }
            _ => None,
        }
    }

    fn source_str(self, start: usize, length: usize) -> &'d str {
        self.doc.source.get(start..start + length).unwrap_or("")
    }

    /// The index after this value and everything inside it.
    fn next(self) -> usize {
        let node = self.node();
        match node.tag() {
            ARRAY | OBJECT if !node.skimmed() => self.index + 1 + node.length(),
            _ => self.index + 1,
        }
    }

    /// Whether this is a container `parse_skimming` read but did not keep:
    /// it shows no items or entries (`parse_part` reads it on its own).
    pub fn is_skimmed(self) -> bool {
        self.node().skimmed()
    }

    /// Where a skimmed container is in the source: its first byte and its
    /// length in bytes (`parse_part` reads it); `None` for any other value.
    pub fn skimmed_place(self) -> Option<(usize, usize)> {
        let node = self.node();
        node.skimmed().then_some((node.start as usize, node.length()))
    }

    /// An array's items (none for anything else).
    pub fn items(self) -> impl Iterator<Item = Json<'d>> {
        let (doc, end) = (self.doc, self.next());
        let mut at = if self.node().tag() == ARRAY { self.index + 1 } else { end };
        std::iter::from_fn(move || {
            (at < end).then(|| {
                let item = Json { doc, index: at };
                at = item.next();
                item
            })
        })
    }

    /// An object's keys and values, in document order (none for anything
    /// else).
    pub fn entries(self) -> impl Iterator<Item = (Json<'d>, Json<'d>)> {
        let (doc, end) = (self.doc, self.next());
        let mut at = if self.node().tag() == OBJECT { self.index + 1 } else { end };
        std::iter::from_fn(move || {
            (at < end).then(|| {
                let key = Json { doc, index: at };
                let value = Json { doc, index: at + 1 };
                at = value.next();
                (key, value)
            })
        })
    }

    /// An object's value for `key`.
    pub fn get(self, key: &str) -> Option<Json<'d>> {
        self.entries().find(|(k, _)| k.is_str(key)).map(|(_, v)| v)
    }

    /// Whether this is the string `s`: by length first, then bytes (a
    /// config reads every key of every object this way, many times).
    fn is_str(self, s: &str) -> bool {
        let node = self.node();
        match node.tag() {
            STRING => {
                let start = node.start as usize + 1;
                node.length() == s.len()
                    && self.doc.source.as_bytes().get(start..start + node.length()) == Some(s.as_bytes())
            }
            ESCAPED => self.str() == Some(s),
            _ => false,
        }
    }
}

/// 1-based line and byte column of a byte offset.
fn position_of(source: &[u8], offset: usize) -> Position {
    Lines::new(source).position(offset)
}

/// The positions of offsets taken in increasing order, each counted from
/// the last: the places of 2,000 routes in one pass over the document.
pub struct Lines<'s> {
    source: &'s [u8],
    at: usize,
    line: u32,
    line_start: usize,
}

impl<'s> Lines<'s> {
    pub fn new(source: &'s [u8]) -> Lines<'s> {
        Lines { source, at: 0, line: 1, line_start: 0 }
    }

    /// The position of `offset` (not before the last one asked).
    pub fn position(&mut self, offset: usize) -> Position {
        let offset = offset.min(self.source.len()).max(self.at);
        for (i, &b) in self.source.get(self.at..offset).unwrap_or_default().iter().enumerate() {
            if b == b'\n' {
                self.line = self.line.saturating_add(1);
                self.line_start = self.at + i + 1;
            }
        }
        self.at = offset;
        Position { line: self.line, column: u32::try_from(offset - self.line_start + 1).unwrap_or(u32::MAX) }
    }
}

/// A syntax error: where in the config (`routes[0].rules`), what, and the
/// line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub path: String,
    pub message: String,
}

/// Containers deeper than this are refused (configs nest about 7 deep);
/// keeps a hostile document from exhausting the stack.
const MAX_DEPTH: usize = 64;

/// Reads one JSON document; anything but whitespace after it is an error.
pub fn parse(bytes: &[u8]) -> Result<Document<'_>, SyntaxError> {
    read(Reader::new(bytes, most_values(bytes), None, Position::START), 0)
}

/// Reads one value that is a part of a larger document, starting at
/// `origin` in it and nested `depth` deep: places and depth are counted as
/// in the whole.
pub fn parse_part(bytes: &[u8], origin: Position, depth: usize) -> Result<Document<'_>, SyntaxError> {
    read(Reader::new(bytes, most_values(bytes), None, origin), depth)
}

/// Reads one JSON document as `parse` does, checking all of it, but keeps
/// of each item of the root object's list `key` only its place
/// (`skimmed_place`), to be read with `parse_part` when wanted. A
/// document's values take half its size again; read this way, only one
/// item's need be alive at once.
pub fn parse_skimming<'s>(bytes: &'s [u8], key: &'static str) -> Result<Document<'s>, SyntaxError> {
    // Room grows as needed: most of the document is not kept.
    read(Reader::new(bytes, 0, Some(key), Position::START), 0)
}

fn read(mut reader: Reader<'_>, depth: usize) -> Result<Document<'_>, SyntaxError> {
    let bytes = reader.bytes;
    let source = match std::str::from_utf8(bytes) {
        Ok(source) => source,
        Err(invalid) => {
            reader.at = invalid.valid_up_to();
            return Err(reader.error("the document is not valid UTF-8"));
        }
    };
    reader.value(depth)?;
    reader.whitespace();
    if reader.at < bytes.len() {
        return Err(reader.error("unexpected data after the config object"));
    }
    // The estimate's spare room is kept: a document is read, used and
    // dropped, and a shrink would move it and leave one more hole.
    let Reader { nodes, decoded, origin, .. } = reader;
    Ok(Document { source, nodes, decoded, origin })
}

/// At most how many values (keys included) a document holds: each entry
/// of an object has one `:` (a key and a value), each item of a list
/// follows its `[` or a `,`. Reserved up front, the nodes never grow by
/// doubling, which would hold the old and the new copy at once (for 4 MiB
/// of JSON, megabytes more of a memory wasm never gives back).
fn most_values(bytes: &[u8]) -> usize {
    1 + bytes
        .iter()
        .map(|b| match b {
            b':' => 2,
            b',' | b'[' => 1,
            _ => 0,
        })
        .sum::<usize>()
}

/// A step of the path to the value being read.
enum Segment {
    /// The key's node.
    Key(usize),
    Index(usize),
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    path: Vec<Segment>,
    nodes: Vec<Node>,
    decoded: Vec<(u32, String)>,
    /// The root's list whose items are skimmed (`parse_skimming`).
    skim: Option<&'static str>,
    /// Where `bytes` start in the whole document.
    origin: Position,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], room: usize, skim: Option<&'static str>, origin: Position) -> Reader<'a> {
        Reader {
            bytes,
            at: 0,
            path: Vec::new(),
            nodes: Vec::with_capacity(room),
            decoded: Vec::new(),
            skim,
            origin,
        }
    }

    /// Counted from the start only for an error: a reader that counted
    /// lines as it went paid for it on every byte.
    fn position(&self) -> Position {
        position_of(self.bytes, self.at).from(self.origin)
    }

    /// Whether the container about to be read is an item of the skimmed
    /// list: the path is that key, then an index.
    fn skims_next(&self) -> bool {
        match (self.skim, self.path.as_slice()) {
            (Some(key), [Segment::Key(k), Segment::Index(_)]) => self.key_bytes(*k) == key.as_bytes(),
            _ => false,
        }
    }

    /// Forgets what a skimmed container held, once it was read and checked:
    /// its node keeps its kind and its length in bytes.
    fn skim(&mut self, index: usize, decoded: usize) {
        self.nodes.truncate(index + 1);
        self.decoded.truncate(decoded);
        if let Some(node) = self.nodes.get_mut(index) {
            let length = u32::try_from(self.at - node.start as usize).unwrap_or(LENGTH).min(LENGTH);
            node.meta = node.tag() << 29 | SKIMMED | length;
        }
    }

    fn error(&self, message: &str) -> SyntaxError {
        let mut path = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&String::from_utf8_lossy(self.key_bytes(*key)));
                }
                Segment::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        if path.is_empty() {
            path.push_str("config");
        }
        SyntaxError { path, message: format!("{message} at {}", self.position()) }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Reads a value into `nodes`.
    fn value(&mut self, depth: usize) -> Result<(), SyntaxError> {
        self.whitespace();
        let start = self.at;
        match self.peek() {
            None => return Err(self.error("the document ends where a value should be")),
            Some(b'{' | b'[') if self.skims_next() => {
                let (index, decoded) = (self.nodes.len(), self.decoded.len());
                self.container(depth)?;
                self.skim(index, decoded);
            }
            Some(b'{' | b'[') => self.container(depth)?,
            Some(b'"') => self.string()?,
            Some(b't') => self.literal(b"true", TRUE)?,
            Some(b'f') => self.literal(b"false", FALSE)?,
            Some(b'n') => self.literal(b"null", NULL)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.error("expected a value")),
        }
        debug_assert!(self.nodes.last().is_some_and(|n| n.start as usize >= start));
        Ok(())
    }

    fn container(&mut self, depth: usize) -> Result<(), SyntaxError> {
        if self.peek() == Some(b'{') {
            self.object(depth)
        } else {
            self.array(depth)
        }
    }

    fn literal(&mut self, word: &[u8], tag: u32) -> Result<(), SyntaxError> {
        if self.bytes[self.at..].starts_with(word) {
            self.nodes.push(Node::new(tag, self.at, word.len()));
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn number(&mut self) -> Result<(), SyntaxError> {
        let start = self.at;
        let digits = |r: &mut Self| {
            let from = r.at;
            while let Some(b'0'..=b'9') = r.peek() {
                r.at += 1;
            }
            r.at > from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let leading_zero = self.peek() == Some(b'0');
        let int_start = self.at;
        let mut valid = digits(self) && !(leading_zero && self.at - int_start > 1);
        if valid && self.peek() == Some(b'.') {
            self.at += 1;
            valid = digits(self);
        }
        if valid && matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            valid = digits(self);
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or("");
        if !valid || matches!(self.peek(), Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')) {
            return Err(self.error(&format!("`{text}` is not a number")));
        }
        match crate::text::number::parse(text) {
            Some(n) if n.is_finite() => {
                self.nodes.push(Node::new(NUMBER, start, self.at - start));
                Ok(())
            }
            _ => Err(self.error(&format!("{text} is out of range"))),
        }
    }

    /// Reads a string into `nodes` (a key too): its bytes stay in the
    /// source unless it has escapes.
    fn string(&mut self) -> Result<(), SyntaxError> {
        self.at += 1; // the opening quote
        let start = self.at;
        let mut out: Option<Vec<u8>> = None;
        loop {
            let run = self.at;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            if let Some(out) = out.as_mut() {
                out.extend_from_slice(&self.bytes[run..self.at]);
            }
            match self.peek() {
                None => return Err(self.error("the document ends inside a string")),
                Some(b'"') => {
                    let length = self.at - start;
                    self.at += 1;
                    // A string starts at its opening quote, as a reader sees it.
                    match out {
                        None => self.nodes.push(Node::new(STRING, start - 1, length)),
                        Some(out) => {
                            let index = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
                            self.nodes.push(Node::new(ESCAPED, start - 1, length));
                            // Valid: the document is UTF-8 and escapes encode chars.
                            self.decoded.push((index, String::from_utf8_lossy(&out).into_owned()));
                        }
                    }
                    return Ok(());
                }
                Some(b'\\') => {
                    // The first escape: the plain bytes so far are the start.
                    let out = out.get_or_insert_with(|| self.bytes[start..self.at].to_vec());
                    let c = self.escape()?;
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                Some(_) => return Err(self.error("a control character must be escaped in a string")),
            }
        }
    }

    /// After a `\`: the character it stands for.
    fn escape(&mut self) -> Result<char, SyntaxError> {
        let c = match self.bytes.get(self.at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.at += 2;
                let high = self.hex4()?;
                if !(0xd800..0xdc00).contains(&high) {
                    return char::from_u32(high).ok_or_else(|| self.error("invalid escape"));
                }
                if !self.bytes[self.at..].starts_with(b"\\u") {
                    return Err(self.error("a lone surrogate is not a character"));
                }
                self.at += 2;
                let low = self.hex4()?;
                if !(0xdc00..0xe000).contains(&low) {
                    return Err(self.error("a lone surrogate is not a character"));
                }
                return char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00))
                    .ok_or_else(|| self.error("invalid escape"));
            }
            _ => return Err(self.error("invalid escape")),
        };
        self.at += 2;
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or_else(|| self.error("invalid escape"))?;
        let mut n = 0;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error("invalid escape")),
            };
            n = n * 16 + u32::from(v);
        }
        self.at += 4;
        Ok(n)
    }

    fn enter(&self, depth: usize) -> Result<usize, SyntaxError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(depth + 1)
    }

    /// A container's node, its length set once its subtree is read.
    fn open(&mut self, tag: u32) -> usize {
        self.nodes.push(Node::new(tag, self.at, 0));
        self.at += 1;
        self.nodes.len() - 1
    }

    fn close(&mut self, index: usize) {
        let length = self.nodes.len() - index - 1;
        if let Some(node) = self.nodes.get_mut(index) {
            *node = Node::new(node.tag(), node.start as usize, length);
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), SyntaxError> {
        let depth = self.enter(depth)?;
        let index = self.open(ARRAY);
        self.whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            self.close(index);
            return Ok(());
        }
        let mut items = 0;
        loop {
            self.path.push(Segment::Index(items));
            self.value(depth)?;
            items += 1;
            self.path.pop();
            if self.next_or_end(b']')? {
                self.close(index);
                return Ok(());
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), SyntaxError> {
        let depth = self.enter(depth)?;
        let index = self.open(OBJECT);
        // Where each key's node is, to refuse a repeated one.
        let mut keys: Vec<usize> = Vec::new();
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.close(index);
            return Ok(());
        }
        loop {
            self.whitespace();
            match self.peek() {
                Some(b'"') => {}
                None => return Err(self.error("the document ends inside an object")),
                Some(_) => return Err(self.error("expected a key in double quotes")),
            }
            self.string()?;
            let key = self.nodes.len() - 1;
            if keys.iter().any(|&k| self.key_bytes(k) == self.key_bytes(key)) {
                // Where the repeated key is, as serde names duplicates.
                let name = String::from_utf8_lossy(self.key_bytes(key)).into_owned();
                return Err(self.error(&format!("duplicate field `{name}`")));
            }
            self.path.push(Segment::Key(key));
            keys.push(key);
            self.whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:`"));
            }
            self.at += 1;
            self.value(depth)?;
            self.path.pop();
            if self.next_or_end(b'}')? {
                self.close(index);
                return Ok(());
            }
        }
    }

    /// The text of the key node at `index`, as bytes (no UTF-8 check: the
    /// document was checked whole).
    fn key_bytes(&self, index: usize) -> &[u8] {
        let Some(node) = self.nodes.get(index) else { return b"" };
        match node.tag() {
            STRING => {
                let start = node.start as usize + 1;
                self.bytes.get(start..start + node.length()).unwrap_or_default()
            }
            _ => self
                .decoded
                .binary_search_by_key(&(index as u32), |(i, _)| *i)
                .ok()
                .and_then(|at| self.decoded.get(at))
                .map_or(b"", |(_, s)| s.as_bytes()),
        }
    }

    /// After a list item (`close` is `]`) or an object entry (`}`): true at
    /// `close` (the end), false after a `,` that another item follows.
    fn next_or_end(&mut self, close: u8) -> Result<bool, SyntaxError> {
        // Whole messages, not formatted ones: `format!` costs the `.wasm`.
        let (trailing_comma, unfinished, expected) = if close == b']' {
            ("a list cannot end with a comma", "the document ends inside a list", "expected `,` or `]`")
        } else {
            ("an object cannot end with a comma", "the document ends inside an object", "expected `,` or `}`")
        };
        self.whitespace();
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                self.whitespace();
                if self.peek() == Some(close) {
                    return Err(self.error(trailing_comma));
                }
                Ok(false)
            }
            Some(c) if c == close => {
                self.at += 1;
                Ok(true)
            }
            None => Err(self.error(unfinished)),
            Some(_) => Err(self.error(expected)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value written back compactly, strings quoted, numbers as written.
    fn show(value: Json<'_>) -> String {
        match value.kind() {
            Kind::Null => "null".into(),
            Kind::Bool => value.bool().unwrap_or_default().to_string(),
            Kind::Number => {
                format!("{}={}", value.number_text().unwrap_or(""), value.number().unwrap_or(f64::NAN))
            }
            Kind::String => format!("{:?}", value.str().unwrap_or("")),
            Kind::Array => format!("[{}]", value.items().map(show).collect::<Vec<_>>().join(",")),
            Kind::Object => format!(
                "{{{}}}",
                value
                    .entries()
                    .map(|(k, v)| format!("{}:{}", show(k), show(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    fn value(json: &str) -> String {
        show(parse(json.as_bytes()).unwrap().root())
    }

    fn error(json: &str) -> String {
        let e = parse(json.as_bytes()).unwrap_err();
        format!("{}: {}", e.path, e.message)
    }

    #[test]
    fn reads_every_kind_of_value() {
        assert_eq!(value("null"), "null");
        assert_eq!(value(" true "), "true");
        assert_eq!(value("-2.5e1"), "-2.5e1=-25");
        assert_eq!(
            value(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#),
            format!("{:?}", "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1f600}")
        );
        assert_eq!(value("[1, [], {\"a\": [true, null]}]"), r#"[1=1,[],{"a":[true,null]}]"#);
        let text = "{\n  \"a\": {},\n  \"b\": \"x\",\n  \"c\\u0021\": 2\n}";
        let document = parse(text.as_bytes()).unwrap();
        let (b_key, b) = document.root().entries().nth(1).unwrap();
        assert_eq!((b_key.str(), b_key.at()), (Some("b"), Position { line: 3, column: 3 }));
        assert_eq!(b.at(), Position { line: 3, column: 8 });
        assert_eq!(document.root().get("c!").and_then(Json::number), Some(2.0), "an escaped key");
        assert_eq!(document.root().get("a").map(|a| a.entries().count()), Some(0));
        assert_eq!(document.root().get("zz").map(show), None);
        assert!(document.root().items().next().is_none(), "an object has no items");
    }

    #[test]
    fn syntax_errors_name_the_place_line_and_column() {
        assert_eq!(
            error(r#"{"routes": ["#),
            "routes[0]: the document ends where a value should be at line 1 column 13"
        );
        assert_eq!(
            error(r#"{"routes": [{"name": "r"} {"#),
            "routes: expected `,` or `]` at line 1 column 27"
        );
        assert_eq!(error(r#"{"a": {"b" 1}}"#), "a.b: expected `:` at line 1 column 12");
        assert_eq!(error(r#"{"a": [1, 2,]}"#), "a: a list cannot end with a comma at line 1 column 13");
        assert_eq!(error(r#"{"a": 1,}"#), "config: an object cannot end with a comma at line 1 column 9");
        assert_eq!(error(r#"{"a": 1, "a": 2}"#), "config: duplicate field `a` at line 1 column 13");
        assert_eq!(error(r#"{"a": [0, 01]}"#), "a[1]: `01` is not a number at line 1 column 13");
        assert_eq!(error(r#"{"a": 1e309}"#), "a: 1e309 is out of range at line 1 column 12");
        assert_eq!(error(r#"{"a": "\x"}"#), "a: invalid escape at line 1 column 8");
        assert_eq!(
            error("{\"a\": \"\n\"}"),
            "a: a control character must be escaped in a string at line 1 column 8"
        );
        assert_eq!(error(r#"{"a": tru}"#), "a: expected a value at line 1 column 7");
        assert_eq!(error(r#"{a: 1}"#), "config: expected a key in double quotes at line 1 column 2");
        assert_eq!(error(r#"{} x"#), "config: unexpected data after the config object at line 1 column 4");
        assert_eq!(
            error(&format!("{}1{}", "[".repeat(65), "]".repeat(65))),
            format!("{}: nested deeper than 64 levels at line 1 column 65", "[0]".repeat(64))
        );
        let bad_utf8 = parse(b"{\"a\": \"\xff\"}").unwrap_err();
        assert_eq!(bad_utf8.message, "the document is not valid UTF-8 at line 1 column 8");
    }
}
