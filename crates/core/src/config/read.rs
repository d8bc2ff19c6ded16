//! Reading the config document by its declared shape (`shape.rs`): first
//! the top level is checked, then each route as it is read (unknown keys,
//! kinds of values, required keys, bounds, the rules between keys), every
//! error naming its place
//! (`routes[1].rules[0].split.weights[0].weight`) and, for what a JSON
//! reader sees, its line and column; then `compile` reads the values
//! through `Fields`, by the shape's typed fields, each with its default.

use std::marker::PhantomData;

use super::shape::{
    Field, Flag, Key, Kind, List, Num, Number, Nums, Obj, Object, Objs, OptFlag, OptNum, OptStr, Rule,
    Shaped, Str, Strs,
};
use crate::config::error::{self, ConfigError};
use crate::config::limits;
use crate::text::decimal;
use crate::text::json::{self, Json};

/// Where a value is, kept on the stack while the document is checked and
/// written out only for an error: a config at the limits has 275,000
/// values, whose places would otherwise each be formatted.
#[derive(Clone, Copy)]
pub enum At<'a> {
    Root,
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    /// `routes[1].rules[0].split` (empty for the document).
    pub fn render(&self) -> String {
        match self {
            At::Root => String::new(),
            At::Key(parent, key) => error::key(&parent.render(), key),
            At::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

/// `config` for the document itself.
fn place(at: &str) -> &str {
    if at.is_empty() {
        "config"
    } else {
        at
    }
}

fn wrong_kind(at: &At<'_>, want: &str, got: Json<'_>) -> ConfigError {
    ConfigError::new(
        place(&at.render()),
        format!("expected {want}, got {} at {}", got.kind().words(), got.at()),
    )
}

/// A key's value; `None` when absent or `null`.
fn get<'a>(object: Json<'a>, key: &str) -> Option<Json<'a>> {
    object.get(key).filter(|v| !v.is_null())
}

/// `` `a`, `b` or `c` `` (with `joiner` before the last).
fn listed(keys: &[&str], joiner: &str) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} {joiner} {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// Checks a value of the declared kind at `at`, and everything inside it;
/// a skimmed one (a route: `config::parse_in_parts`) when it is read on
/// its own.
pub fn check(value: Json<'_>, at: &At<'_>, kind: &Kind) -> Result<(), ConfigError> {
    if value.is_skimmed() {
        return Ok(());
    }
    match (kind, value.kind()) {
        (Kind::Text(_), json::Kind::String) => Ok(()),
        (Kind::Text(_), _) => Err(wrong_kind(at, "a string", value)),
        (Kind::Bool(_), json::Kind::Bool) => Ok(()),
        (Kind::Bool(_), _) => Err(wrong_kind(at, "true or false", value)),
        (Kind::Number(bounds), json::Kind::Number) => {
            check_number(value.number().unwrap_or(f64::NAN), bounds, at)
        }
        (Kind::Number(_), _) => Err(wrong_kind(at, "a number", value)),
        (Kind::List(list), json::Kind::Array) => check_list(value, list, at),
        (Kind::List(_), _) => Err(wrong_kind(at, "a list", value)),
        (Kind::Object(object), json::Kind::Object) => check_object(value, object, at),
        (Kind::Object(_), _) => Err(wrong_kind(at, "an object", value)),
    }
}

fn check_number(n: f64, bounds: &Number, at: &At<'_>) -> Result<(), ConfigError> {
    let within =
        if bounds.exclusive { n > bounds.min && n < bounds.max } else { n >= bounds.min && n <= bounds.max };
    if within && (!bounds.whole || n.fract() == 0.0) {
        return Ok(());
    }
    let (min, max) = (decimal::format(bounds.min), decimal::format(bounds.max));
    let words = match bounds.words {
        Some(words) => words.to_string(),
        None if bounds.whole => format!("a whole number from {min} to {max}"),
        None => format!("between {min} and {max}"),
    };
    Err(ConfigError::new(place(&at.render()), format!("must be {words}, got {}", decimal::format(n))))
}

fn check_list(items: Json<'_>, list: &List, at: &At<'_>) -> Result<(), ConfigError> {
    let count = items.items().count();
    if count < list.min {
        return Err(ConfigError::new(place(&at.render()), list.too_few));
    }
    if let Some(max) = list.max {
        limits::check(count, max, list.noun).map_err(|m| ConfigError::new(place(&at.render()), m))?;
    }
    for (i, item) in items.items().enumerate() {
        check(item, &At::Index(at, i), &list.item)?;
    }
    Ok(())
}

fn check_object(value: Json<'_>, object: &Object, at: &At<'_>) -> Result<(), ConfigError> {
    let unknown =
        value.entries().map(|(k, _)| k).find(|k| !object.keys.iter().any(|d| Some(d.name) == k.str()));
    if let Some(key) = unknown {
        let name = key.str().unwrap_or_default();
        let names: Vec<&str> = object.keys.iter().map(|k| k.name).collect();
        let expected = match names.as_slice() {
            [one] => format!("expected `{one}`"),
            [a, b] => format!("expected `{a}` or `{b}`"),
            many => {
                let quoted: Vec<String> = many.iter().map(|k| format!("`{k}`")).collect();
                format!("expected one of {}", quoted.join(", "))
            }
        };
        return Err(ConfigError::new(
            error::key(&at.render(), name),
            format!("unknown field `{name}`, {expected} at {}", key.at()),
        ));
    }
    for declared in object.keys {
        match get(value, declared.name) {
            Some(field) => check(field, &At::Key(at, declared.name), &declared.kind)?,
            None if declared.required => {
                return Err(ConfigError::new(
                    place(&at.render()),
                    format!("missing field `{}` at {}", declared.name, value.at()),
                ))
            }
            None => {}
        }
    }
    check_rules(value, object, at)
}

/// The object's rules between keys (`shape::Rule`).
fn check_rules(value: Json<'_>, object: &Object, at: &At<'_>) -> Result<(), ConfigError> {
    let given = |key: &&str| get(value, key).is_some();
    for rule in object.rules {
        let message = match rule {
            Rule::ExactlyOne { keys, what } => {
                let found: Vec<&str> = keys.iter().copied().filter(given).collect();
                match found.len() {
                    1 => continue,
                    0 => format!("needs {what}: one of {}", listed(keys, "or")),
                    _ => format!(
                        "takes exactly one of {}, found {}",
                        listed(keys, "or"),
                        listed(&found, "and")
                    ),
                }
            }
            Rule::Together { keys, what } => {
                let missing: Vec<&str> = keys.iter().copied().filter(|k| !given(k)).collect();
                if missing.is_empty() || missing.len() == keys.len() {
                    continue;
                }
                format!("{what} needs {} together; missing {}", listed(keys, "and"), listed(&missing, "and"))
            }
            Rule::AnyOf { groups, message } => {
                if groups.iter().any(|group| group.iter().all(&given)) {
                    continue;
                }
                message.to_string()
            }
            Rule::Requires { key, keys, why } => {
                if !given(key) || keys.iter().all(&given) {
                    continue;
                }
                format!("`{key}` needs {}: {why}", listed(keys, "and"))
            }
            Rule::Excludes { key, keys, why } => {
                let found: Vec<&str> = keys.iter().copied().filter(given).collect();
                if !given(key) || found.is_empty() {
                    continue;
                }
                format!("`{key}` cannot go with {}: {why}", listed(&found, "and"))
            }
        };
        return Err(ConfigError::new(place(&at.render()), message));
    }
    Ok(())
}

/// A checked object's values, as `compile` reads them: only through the
/// fields its shape declares (`shape::ramp::HOLD` for a `Fields<ramp::Of>`),
/// each as its declaration says (absent keys read as their default).
pub struct Fields<'a, O> {
    value: Json<'a>,
    /// Where the object is (`routes[0].mirror`; empty for the document).
    pub at: String,
    of: PhantomData<O>,
}

impl<'a, O: Shaped> Fields<'a, O> {
    /// A value already `check`ed as `O`'s object (anything else reads as
    /// empty).
    pub fn new(value: Json<'a>, at: String) -> Fields<'a, O> {
        Fields { value, at, of: PhantomData }
    }

    /// Where the object is in the source, if the document skimmed it
    /// (`json::Json::skimmed_place`).
    pub fn skimmed_place(&self) -> Option<(usize, usize)> {
        self.value.skimmed_place()
    }

    /// The place of one of its keys, for an error.
    pub fn at<V>(&self, field: Field<O, V>) -> String {
        error::key(&self.at, field.key.name)
    }

    /// A field's value, read as its declaration says.
    #[inline]
    pub fn get<V: Read<'a>>(&self, field: Field<O, V>) -> V::Out {
        V::read(get(self.value, field.key.name), &field.key, &self.at)
    }

    /// Whether the document gives the field (defaults aside).
    pub fn has<V>(&self, field: Field<O, V>) -> bool {
        get(self.value, field.key.name).is_some()
    }
}

/// How a field's value is read (`shape::Value` says which reading a field
/// takes): `value` is the key's JSON value if given, `key` its
/// declaration, `at` where its object is.
pub trait Read<'a> {
    type Out;
    fn read(value: Option<Json<'a>>, key: &Key, at: &str) -> Self::Out;
}

/// A required key's value is there once the document is checked; a
/// defaulted one's default is declared with it.
impl<'a> Read<'a> for Str {
    type Out = &'a str;
    #[inline(never)]
    fn read(value: Option<Json<'a>>, key: &Key, _: &str) -> &'a str {
        value.and_then(Json::str).or(key.default_text).unwrap_or_default()
    }
}

impl<'a> Read<'a> for OptStr {
    type Out = Option<&'a str>;
    #[inline(never)]
    fn read(value: Option<Json<'a>>, _: &Key, _: &str) -> Option<&'a str> {
        value.and_then(Json::str)
    }
}

fn default_number(key: &Key) -> Option<f64> {
    match key.kind {
        Kind::Number(bounds) => bounds.default,
        _ => None,
    }
}

impl<'a> Read<'a> for Num {
    type Out = f64;
    #[inline(never)]
    fn read(value: Option<Json<'a>>, key: &Key, _: &str) -> f64 {
        value.and_then(Json::number).or_else(|| default_number(key)).unwrap_or_default()
    }
}

impl<'a> Read<'a> for OptNum {
    type Out = Option<f64>;
    #[inline(never)]
    fn read(value: Option<Json<'a>>, _: &Key, _: &str) -> Option<f64> {
        value.and_then(Json::number)
    }
}

impl<'a> Read<'a> for Flag {
    type Out = bool;
    #[inline(never)]
    fn read(value: Option<Json<'a>>, key: &Key, _: &str) -> bool {
        let default = match key.kind {
            Kind::Bool(default) => default,
            _ => None,
        };
        value.and_then(Json::bool).or(default).unwrap_or_default()
    }
}

impl<'a> Read<'a> for OptFlag {
    type Out = Option<bool>;
    #[inline(never)]
    fn read(value: Option<Json<'a>>, _: &Key, _: &str) -> Option<bool> {
        value.and_then(Json::bool)
    }
}

impl<'a, P: Shaped> Read<'a> for Obj<P> {
    type Out = Option<Fields<'a, P>>;
    fn read(value: Option<Json<'a>>, key: &Key, at: &str) -> Option<Fields<'a, P>> {
        value.map(|value| Fields::new(value, error::key(at, key.name)))
    }
}

/// A list's items (none when absent or not a list).
fn items<'a>(value: Option<Json<'a>>) -> impl Iterator<Item = Json<'a>> {
    value.filter(|v| v.kind() == json::Kind::Array).into_iter().flat_map(Json::items)
}

/// A list of objects' values and places, the same for every shape: what
/// `Objs` reads, outside the code each shape gets.
fn object_items<'a>(value: Option<Json<'a>>, key: &Key, at: &str) -> Vec<(Json<'a>, String)> {
    let at = error::key(at, key.name);
    items(value).enumerate().map(|(i, item)| (item, format!("{at}[{i}]"))).collect()
}

impl<'a, P: Shaped> Read<'a> for Objs<P> {
    type Out = Vec<Fields<'a, P>>;
    fn read(value: Option<Json<'a>>, key: &Key, at: &str) -> Vec<Fields<'a, P>> {
        object_items(value, key, at).into_iter().map(|(item, at)| Fields::new(item, at)).collect()
    }
}

impl<'a> Read<'a> for Strs {
    type Out = Vec<&'a str>;
    #[inline(never)]
    fn read(value: Option<Json<'a>>, _: &Key, _: &str) -> Vec<&'a str> {
        items(value).filter_map(Json::str).collect()
    }
}

impl<'a> Read<'a> for Nums {
    type Out = Vec<f64>;
    #[inline(never)]
    fn read(value: Option<Json<'a>>, _: &Key, _: &str) -> Vec<f64> {
        items(value).filter_map(Json::number).collect()
    }
}
