//! What a regex condition may cost a request.
//!
//! regex-lite runs a Pike VM: matching a value costs about its length times
//! the number of states of the pattern's automaton (measured: 2 to 25 ns
//! per byte and state, native). Counted repetition multiplies states
//! (`[a-z0-9]{8,64}` alone is 64), so an unanchored pattern over a 90 KB
//! cookie could cost a worker hundreds of milliseconds. Two bounds keep
//! every request cheap, whatever a client sends:
//!
//! - at configure time a pattern's states are estimated from its text
//!   (the same on every platform, so the CLI and the filter agree) and a
//!   pattern above [`MAX_STATES`] is rejected;
//! - at request time every regex test spends `value length × states` from
//!   a per-request [`BUDGET`]; a test the budget cannot pay for does not
//!   match, and is counted.

/// The most states a pattern may have.
pub const MAX_STATES: u64 = 256;

/// What one request may spend on regex tests, in bytes × states: a
/// 3-state pattern such as `ba[rz]` may read 1,365 bytes of values per
/// request, a 84-state one 48, a 256-state one 16. At worst regex-lite
/// spends about 370 wasm instructions per unit (`make bench` measures the
/// heaviest pattern on the heaviest request: about 1.5 million), so this
/// bounds any request's regex work to about a millisecond. Patterns that are
/// only literals (`literal_regex`) cost a few instructions per unit.
pub const BUDGET: u64 = 4_096;

/// An upper estimate of the automaton states of a pattern regex-lite has
/// already accepted: literals and classes count one each (a multi-byte
/// literal its UTF-8 length), alternatives add up, and `{n,m}` multiplies
/// what it repeats by `m` (`{n,}` by `n + 1`).
pub fn states(pattern: &str) -> u64 {
    let chars: Vec<char> = pattern.chars().collect();
    let mut parser = Parser { chars: &chars, at: 0, verbose: false };
    parser.alternation().max(1)
}

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
    /// `(?x)`: whitespace and `#` comments are not part of the pattern.
    verbose: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    /// Branches separated by `|`, up to a `)` or the end.
    fn alternation(&mut self) -> u64 {
        let mut total = self.sequence();
        while self.peek() == Some('|') {
            self.at += 1;
            total = total.saturating_add(self.sequence());
        }
        total
    }

    /// Atoms, each with its repetition, up to `|`, `)` or the end.
    fn sequence(&mut self) -> u64 {
        let mut total: u64 = 0;
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom();
            let repeated = self.repetition(atom);
            total = total.saturating_add(repeated);
        }
        total
    }

    fn atom(&mut self) -> u64 {
        let Some(c) = self.peek() else { return 0 };
        self.at += 1;
        match c {
            '\\' => {
                self.escape();
                1
            }
            '[' => {
                self.class();
                1
            }
            '(' => self.group(),
            '^' | '$' => 0,
            c if self.verbose && c.is_whitespace() => 0,
            '#' if self.verbose => {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.at += 1;
                }
                0
            }
            c => c.len_utf8() as u64,
        }
    }

    /// After `\`: one escaped character, or `\x{..}`, `\u{..}`, `\p{..}`.
    fn escape(&mut self) {
        let Some(c) = self.peek() else { return };
        self.at += 1;
        if matches!(c, 'x' | 'u' | 'U' | 'p' | 'P') && self.peek() == Some('{') {
            while self.peek().is_some_and(|c| c != '}') {
                self.at += 1;
            }
            self.at += 1;
        } else if matches!(c, 'x') {
            self.at += 2;
        } else if matches!(c, 'u') {
            self.at += 4;
        } else if matches!(c, 'U') {
            self.at += 8;
        } else if matches!(c, 'p' | 'P') {
            self.at += 1;
        }
    }

    /// After `[`: up to the matching `]`, nested classes included.
    fn class(&mut self) {
        let mut depth = 1;
        if self.peek() == Some('^') {
            self.at += 1;
        }
        if self.peek() == Some(']') {
            self.at += 1;
        }
        while let Some(c) = self.peek() {
            self.at += 1;
            match c {
                '\\' => self.escape(),
                '[' => {
                    depth += 1;
                    if self.peek() == Some('^') {
                        self.at += 1;
                    }
                    if self.peek() == Some(']') {
                        self.at += 1;
                    }
                }
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// After `(`: flags alone (`(?i)`) cost nothing; a group costs its inside.
    fn group(&mut self) -> u64 {
        if self.peek() == Some('?') {
            let start = self.at + 1;
            let mut end = start;
            while self.chars.get(end).is_some_and(|c| c.is_ascii_alphabetic() || *c == '-') {
                end += 1;
            }
            let flags: String = self.chars[start.min(end)..end].iter().collect();
            match self.chars.get(end) {
                Some(')') => {
                    // `(?x)` turns verbose mode on for the rest; `(?-x)` off.
                    if let Some(on) = flags.split('-').next() {
                        if on.contains('x') {
                            self.verbose = true;
                        }
                    }
                    if flags.split('-').nth(1).is_some_and(|off| off.contains('x')) {
                        self.verbose = false;
                    }
                    self.at = end + 1;
                    return 0;
                }
                Some(':') => self.at = end + 1,
                _ => {
                    // `(?P<name>` or `(?<name>`.
                    while self.peek().is_some_and(|c| c != '>') {
                        self.at += 1;
                    }
                    self.at += 1;
                }
            }
        }
        let inside = self.alternation();
        if self.peek() == Some(')') {
            self.at += 1;
        }
        inside
    }

    /// A repetition after an atom: `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`,
    /// each possibly lazy (`?`). Returns the states of the repeated atom.
    fn repetition(&mut self, atom: u64) -> u64 {
        let mut total = atom;
        loop {
            match self.peek() {
                Some('*' | '+' | '?') => {
                    self.at += 1;
                    total = total.saturating_add(1);
                }
                Some('{') => {
                    let Some((times, end)) = self.counted(self.at + 1) else { return total };
                    self.at = end;
                    total = total.saturating_mul(times.max(1)).saturating_add(1);
                }
                _ => return total,
            }
            if self.peek() == Some('?') {
                self.at += 1;
            }
        }
    }

    /// `n}`, `n,}` or `n,m}` from `from`: how many copies the automaton
    /// holds, and where the repetition ends.
    fn counted(&self, from: usize) -> Option<(u64, usize)> {
        let number = |at: &mut usize| -> Option<u64> {
            let start = *at;
            let mut value: u64 = 0;
            while let Some(d) = self.chars.get(*at).and_then(|c| c.to_digit(10)) {
                value = value.saturating_mul(10).saturating_add(u64::from(d));
                *at += 1;
            }
            (*at > start).then_some(value)
        };
        let mut at = from;
        let low = number(&mut at)?;
        match self.chars.get(at)? {
            '}' => Some((low, at + 1)),
            ',' => {
                at += 1;
                match number(&mut at) {
                    Some(high) if self.chars.get(at) == Some(&'}') => Some((high.max(low), at + 1)),
                    None if self.chars.get(at) == Some(&'}') => Some((low.saturating_add(1), at + 1)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_patterns_count_their_literals_and_classes() {
        assert_eq!(states("^ba[rz]$"), 3);
        assert_eq!(states("foo|bar"), 6);
        assert_eq!(states("^(beta|canary)-[0-9]+$"), 13);
        assert_eq!(states(r"\d\w\.x"), 4);
        assert_eq!(states("(?i)mobile|android"), 13);
        assert_eq!(states(""), 1);
    }

    #[test]
    fn counted_repetition_multiplies() {
        assert_eq!(states("[a-z0-9]{8,64}"), 65);
        assert_eq!(states("[a-z0-9]{8,64}-[0-9]{1,16}x"), 65 + 1 + 17 + 1);
        assert_eq!(states("a{3}"), 4);
        assert_eq!(states("a{3,}"), 5);
        assert_eq!(states("((ab){10}){10}"), 211);
        assert!(states("(((a{100}){100}){100})") > MAX_STATES);
    }

    #[test]
    fn classes_escapes_and_groups_are_one_unit_each() {
        assert_eq!(states(r"[]a\]-]"), 1);
        assert_eq!(states("[[:alpha:][^x]]z"), 2);
        assert_eq!(states(r"\x{41}\u0041\p{Greek}\pL"), 4);
        assert_eq!(states("(?P<v>ab)(?<w>c)(?:d)"), 4);
        assert_eq!(states("(?x) a b # comment\n c"), 3);
        assert_eq!(states("é"), 2, "a literal costs its UTF-8 bytes");
    }

    #[test]
    fn stars_and_lazy_marks_add_one() {
        assert_eq!(states("a*b+?c??"), 6);
        assert_eq!(states(".*x"), 3);
    }
}
