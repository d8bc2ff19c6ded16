//! The one error a rejected config produces: where, and what is wrong.

use std::fmt;

/// A config rejection. `path` names the place in the JSON
/// (`routes[1].rules[0].match[0]`), or `config` for the document itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

/// `at.key`: the place of a key under `at` (the key alone at the top). A
/// function rather than a `format!` at each of the config's hundred error
/// sites keeps the `.wasm` smaller.
pub fn key(at: &str, key: &str) -> String {
    let mut place = String::with_capacity(at.len() + 1 + key.len());
    place.push_str(at);
    if !at.is_empty() {
        place.push('.');
    }
    place.push_str(key);
    place
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}
