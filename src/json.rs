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

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} column {}", self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number as written, and its value.
    Number(String, f64),
    String(String),
    Array(Vec<Spanned>),
    /// Keys in document order, each with where it starts.
    Object(Vec<(Spanned<String>, Spanned)>),
}

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T = Value> {
    pub value: T,
    pub at: Position,
}

impl Value {
    /// What a value is, in the words of the config reference.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(..) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        }
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
pub fn parse(bytes: &[u8]) -> Result<Spanned, SyntaxError> {
    let mut reader = Reader { bytes, at: 0, line: 1, line_start: 0, path: Vec::new() };
    if let Err(invalid) = std::str::from_utf8(bytes) {
        reader.move_to(invalid.valid_up_to());
        return Err(reader.error("the document is not valid UTF-8"));
    }
    let value = reader.value(0)?;
    reader.whitespace();
    if reader.at < bytes.len() {
        return Err(reader.error("unexpected data after the config object"));
    }
    Ok(value)
}

/// A step of the path to the value being read.
enum Segment {
    Key(String),
    Index(usize),
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    line: u32,
    line_start: usize,
    path: Vec<Segment>,
}

impl Reader<'_> {
    fn position(&self) -> Position {
        let column = u32::try_from(self.at - self.line_start + 1).unwrap_or(u32::MAX);
        Position { line: self.line, column }
    }

    /// Moves forward to `to`, counting lines.
    fn move_to(&mut self, to: usize) {
        while self.at < to {
            if self.bytes[self.at] == b'\n' {
                self.line += 1;
                self.line_start = self.at + 1;
            }
            self.at += 1;
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
                    path.push_str(key);
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
            self.move_to(self.at + 1);
        }
    }

    fn value(&mut self, depth: usize) -> Result<Spanned, SyntaxError> {
        self.whitespace();
        let at = self.position();
        let value = match self.peek() {
            None => return Err(self.error("the document ends where a value should be")),
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => self.literal(b"true", Value::Bool(true))?,
            Some(b'f') => self.literal(b"false", Value::Bool(false))?,
            Some(b'n') => self.literal(b"null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.error("expected a value")),
        };
        Ok(Spanned { value, at })
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, SyntaxError> {
        if self.bytes[self.at..].starts_with(word) {
            self.move_to(self.at + word.len());
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
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
        let text = String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned();
        if !valid || matches!(self.peek(), Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')) {
            return Err(self.error(&format!("`{text}` is not a number")));
        }
        match crate::number::parse(&text) {
            Some(n) if n.is_finite() => Ok(Value::Number(text, n)),
            _ => Err(self.error(&format!("{text} is out of range"))),
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.at += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let start = self.at;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            out.extend_from_slice(&self.bytes[start..self.at]);
            match self.peek() {
                None => return Err(self.error("the document ends inside a string")),
                Some(b'"') => {
                    self.at += 1;
                    // Valid: the document is UTF-8 and escapes encode chars.
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
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

    fn array(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        let depth = self.enter(depth)?;
        self.at += 1;
        let mut items = Vec::new();
        self.whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.path.push(Segment::Index(items.len()));
            items.push(self.value(depth)?);
            self.path.pop();
            if self.next_or_end(b']')? {
                return Ok(Value::Array(items));
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        let depth = self.enter(depth)?;
        self.at += 1;
        let mut entries: Vec<(Spanned<String>, Spanned)> = Vec::new();
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(entries));
        }
        loop {
            self.whitespace();
            let at = self.position();
            match self.peek() {
                Some(b'"') => {}
                None => return Err(self.error("the document ends inside an object")),
                Some(_) => return Err(self.error("expected a key in double quotes")),
            }
            let key = self.string()?;
            self.path.push(Segment::Key(key.clone()));
            if entries.iter().any(|(k, _)| k.value == key) {
                // Where the repeated key is, as serde names duplicates.
                self.path.pop();
                return Err(self.error(&format!("duplicate field `{key}`")));
            }
            self.whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:`"));
            }
            self.at += 1;
            let value = self.value(depth)?;
            self.path.pop();
            entries.push((Spanned { value: key, at }, value));
            if self.next_or_end(b'}')? {
                return Ok(Value::Object(entries));
            }
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

    fn value(json: &str) -> Value {
        parse(json.as_bytes()).unwrap().value
    }

    fn error(json: &str) -> String {
        let e = parse(json.as_bytes()).unwrap_err();
        format!("{}: {}", e.path, e.message)
    }

    #[test]
    fn reads_every_kind_of_value() {
        assert_eq!(value("null"), Value::Null);
        assert_eq!(value(" true "), Value::Bool(true));
        assert_eq!(value("-2.5e1"), Value::Number("-2.5e1".into(), -25.0));
        assert_eq!(
            value(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#),
            Value::String("a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1f600}".into())
        );
        assert_eq!(
            value("[1, []]"),
            Value::Array(vec![
                Spanned { value: Value::Number("1".into(), 1.0), at: Position { line: 1, column: 2 } },
                Spanned { value: Value::Array(vec![]), at: Position { line: 1, column: 5 } },
            ])
        );
        let Value::Object(entries) = value("{\n  \"a\": {},\n  \"b\": \"x\"\n}") else { panic!() };
        assert_eq!(entries[1].0, Spanned { value: "b".to_string(), at: Position { line: 3, column: 3 } });
        assert_eq!(entries[1].1.at, Position { line: 3, column: 8 });
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
