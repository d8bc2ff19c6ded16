//! The config's shape, declared once: every object, its keys, what kind of
//! value each takes, which are required, their bounds and defaults, a
//! one-line meaning, and how `compile` reads it. Each object has a module
//! of typed fields (`ramp::HOLD`) and lists them as its keys (`RAMP`). From
//! this the reader refuses unknown keys, wrong kinds, missing keys and
//! out-of-bound values (`read.rs`), `compile` reads values and defaults
//! through the fields only, the CLI derives the JSON Schema, and a test
//! checks that the reference's table for each object lists exactly these
//! keys. Adding a key: CONTRIBUTING.md, "Adding a config key".
//!
//! The meanings are for people (the schema's descriptions); the `.wasm`
//! does not carry them.

use std::marker::PhantomData;

use crate::config::limits;
use crate::routing::mirror as shadow;

/// One JSON object of the config.
pub struct Object {
    /// Its name in the JSON Schema's `$defs`.
    pub name: &'static str,
    /// Where its table is in the reference: the page and a line just above
    /// it. `None` for an object documented inside another's table.
    pub doc: Option<(&'static str, &'static str)>,
    pub keys: &'static [Key],
    pub rules: &'static [Rule],
}

/// A rule between an object's keys.
pub enum Rule {
    /// Exactly one of these keys: `what` names it in the error.
    ExactlyOne { keys: &'static [&'static str], what: &'static str },
    /// All of these keys or none: `what` names them in the error.
    Together { keys: &'static [&'static str], what: &'static str },
    /// At least one of these groups complete, or `message`.
    AnyOf { groups: &'static [&'static [&'static str]], message: &'static str },
    /// `key` only with all of `keys`; `why` says what it needs them for.
    Requires { key: &'static str, keys: &'static [&'static str], why: &'static str },
    /// `key` never with any of `keys`; `why` says why not.
    Excludes { key: &'static str, keys: &'static [&'static str], why: &'static str },
}

#[derive(Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// A string key's value when it is absent.
    pub default_text: Option<&'static str>,
    /// One line for people (empty in the `.wasm`).
    pub about: &'static str,
}

#[derive(Clone, Copy)]
pub enum Kind {
    Text(Text),
    Number(Number),
    /// A boolean and its value when absent.
    Bool(Option<bool>),
    Object(&'static Object),
    List(&'static List),
}

/// An object's marker type (`ramp::Of`) knows its object, so `compile`
/// reads a `Fields<ramp::Of>` only through `ramp::`'s fields.
pub trait Shaped {
    const OBJECT: &'static Object;
}

/// One key of the object `O`, declared once: its name, kind, bounds and
/// default (`key`), and what `compile` reads it as (`V`: `Str` for a string
/// that is always there, because required or defaulted, `OptStr` for one
/// that may be absent, and so on). `Field::new` refuses, while the crate
/// compiles, a reading its declaration cannot give: a defaulted read of a
/// key without a default, an object read of a number.
pub struct Field<O, V> {
    pub key: Key,
    of: PhantomData<fn() -> (O, V)>,
}

impl<O, V> Clone for Field<O, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<O, V> Copy for Field<O, V> {}

/// How `compile` reads a key (`read::Fields::get` gives each its value).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// A string, an `Option` unless `Always`.
    Text(Presence),
    /// A number, an `Option` unless `Always`.
    Number(Presence),
    /// A boolean, an `Option` unless `Always`.
    Flag(Presence),
    /// An object of this name, an `Option`.
    Object(&'static str),
    /// A list of objects of this name (empty when absent).
    Objects(&'static str),
    /// A list of strings (empty when absent).
    Texts,
    /// A list of numbers (empty when absent).
    Numbers,
}

/// Whether a key always has a value once the document is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Required, or declared with a default.
    Always,
    /// Optional without a default: absent reads as `None`.
    Maybe,
}

/// What a field reads as; the readings are in `read.rs`.
pub trait Value {
    const READS: Reads;
}

/// A string that is always there (required or defaulted).
pub struct Str;
/// A string that may be absent.
pub struct OptStr;
/// A number that is always there (required or defaulted).
pub struct Num;
/// A number that may be absent.
pub struct OptNum;
/// A boolean with a default.
pub struct Flag;
/// A boolean that may be absent.
pub struct OptFlag;
/// An object of `P`'s shape, if given.
pub struct Obj<P>(PhantomData<P>);
/// A list of objects of `P`'s shape.
pub struct Objs<P>(PhantomData<P>);
/// A list of strings.
pub struct Strs;
/// A list of numbers.
pub struct Nums;

impl Value for Str {
    const READS: Reads = Reads::Text(Presence::Always);
}
impl Value for OptStr {
    const READS: Reads = Reads::Text(Presence::Maybe);
}
impl Value for Num {
    const READS: Reads = Reads::Number(Presence::Always);
}
impl Value for OptNum {
    const READS: Reads = Reads::Number(Presence::Maybe);
}
impl Value for Flag {
    const READS: Reads = Reads::Flag(Presence::Always);
}
impl Value for OptFlag {
    const READS: Reads = Reads::Flag(Presence::Maybe);
}
impl<P: Shaped> Value for Obj<P> {
    const READS: Reads = Reads::Object(P::OBJECT.name);
}
impl<P: Shaped> Value for Objs<P> {
    const READS: Reads = Reads::Objects(P::OBJECT.name);
}
impl Value for Strs {
    const READS: Reads = Reads::Texts;
}
impl Value for Nums {
    const READS: Reads = Reads::Numbers;
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether a key that is required or has a default is read as always
/// there, and any other as maybe absent.
const fn present(key: &Key, has_default: bool, reads: Presence) -> bool {
    matches!((key.required || has_default, reads), (true, Presence::Always) | (false, Presence::Maybe))
}

/// Whether a key declared as `key` can be read as `reads`.
const fn readable(key: &Key, reads: Reads) -> bool {
    match (key.kind, reads) {
        (Kind::Text(_), Reads::Text(p)) => present(key, key.default_text.is_some(), p),
        (Kind::Number(n), Reads::Number(p)) => present(key, n.default.is_some(), p),
        (Kind::Bool(d), Reads::Flag(p)) => present(key, d.is_some(), p),
        (Kind::Object(object), Reads::Object(name)) => same(object.name, name),
        (Kind::List(List { item: Kind::Object(object), .. }), Reads::Objects(name)) => {
            same(object.name, name)
        }
        (Kind::List(List { item: Kind::Text(_), .. }), Reads::Texts) => true,
        (Kind::List(List { item: Kind::Number(_), .. }), Reads::Numbers) => true,
        _ => false,
    }
}

impl<O, V: Value> Field<O, V> {
    pub const fn new(key: Key) -> Self {
        assert!(readable(&key, V::READS), "a field reads its key as its declaration cannot give");
        Field { key, of: PhantomData }
    }
}

/// What a string holds, for the schema (`compile` checks it in words).
#[derive(Clone, Copy)]
pub enum Text {
    Any,
    NonEmpty,
    /// A JSON Schema pattern.
    Pattern(&'static str),
    /// A target: a cluster or subset name.
    Target,
    /// A duration such as `30s` or `1h30m`.
    Duration,
    /// An RFC 3339 time.
    Time,
}

/// A number's bounds (inclusive unless `exclusive`), whether it must be
/// whole, its default, and how an error states the bounds (`None`: from
/// the bounds).
#[derive(Clone, Copy)]
pub struct Number {
    pub min: f64,
    pub max: f64,
    pub exclusive: bool,
    pub whole: bool,
    pub default: Option<f64>,
    pub words: Option<&'static str>,
}

pub struct List {
    pub item: Kind,
    /// Fewest items, and the error below it.
    pub min: usize,
    pub too_few: &'static str,
    /// Most items (`limits`), and what the error counts.
    pub max: Option<usize>,
    pub noun: &'static str,
}

const fn key(name: &'static str, kind: Kind) -> Key {
    Key { name, kind, required: false, default_text: None, about: "" }
}

impl Key {
    const fn required(mut self) -> Key {
        self.required = true;
        self
    }

    const fn default_text(mut self, value: &'static str) -> Key {
        self.default_text = Some(value);
        self
    }

    #[allow(unused_mut, unused_variables)]
    const fn about(mut self, text: &'static str) -> Key {
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.about = text;
        }
        self
    }
}

const fn text(kind: Text) -> Kind {
    Kind::Text(kind)
}

const fn number(min: f64, max: f64) -> Number {
    Number { min, max, exclusive: false, whole: false, default: None, words: None }
}

const fn whole(min: f64, max: f64, default: Option<f64>) -> Kind {
    Kind::Number(Number { whole: true, default, ..number(min, max) })
}

const fn list(item: Kind, max: usize, noun: &'static str) -> List {
    List { item, min: 0, too_few: "", max: Some(max), noun }
}

/// An RFC 9110 token, lower case: a header name the filter writes.
const HEADER_NAME: &str = "^[a-z0-9!#$%&'*+.^_`|~-]+$";
/// An RFC 9110 token in any case: a cookie's name, a query header's name.
const TOKEN: &str = "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$";
/// A host, optionally with a port: what `:authority` may hold.
pub const AUTHORITY: &str = "^[A-Za-z0-9.-]+(:[0-9]+)?$";
/// Visible ASCII without spaces: a cluster name.
const CLUSTER: &str = "^[!-~]+$";
const SOURCES: &[&str] = &["header", "cookie", "query"];

/// The keys of `CONFIG`, each with what `compile` reads it as.
pub mod config {
    use super::*;

    /// Marks the fields of `CONFIG`.
    pub struct Of;

    pub const TARGET_HEADER: Field<Of, Str> = Field::new(
        key("targetHeader", text(Text::Pattern(super::HEADER_NAME)))
            .default_text("x-route-target")
            .about("The request header the filter writes the target into (lower case)."),
    );
    pub const ROUTES: Field<Of, Objs<route::Of>> = Field::new(
        key("routes", Kind::List(&super::ROUTES))
            .required()
            .about("Where the filter applies and what it decides."),
    );
    pub const MIRROR_BUDGET: Field<Of, Obj<mirror_budget::Of>> = Field::new(
        key("mirrorBudget", Kind::Object(&super::MIRROR_BUDGET))
            .about("What each VM may hold for shadow copies at once."),
    );
    pub const COUNT_RESPONSES: Field<Of, Flag> = Field::new(
        key("countResponses", Kind::Bool(Some(false)))
            .about("Count responses per route, target and status class."),
    );
    pub const CLEAR_ROUTE_CACHE: Field<Of, Flag> = Field::new(
        key("clearRouteCache", Kind::Bool(Some(true)))
            .about("Ask the host to select the route again after the target header changed."),
    );
}

pub const CONFIG: Object = Object {
    name: "config",
    doc: Some(("docs/config.md", "## Top level")),
    keys: &[
        config::TARGET_HEADER.key,
        config::ROUTES.key,
        config::MIRROR_BUDGET.key,
        config::COUNT_RESPONSES.key,
        config::CLEAR_ROUTE_CACHE.key,
    ],
    rules: &[],
};

const ROUTES: List = List {
    min: 1,
    too_few: "must list at least one route",
    ..list(Kind::Object(&ROUTE), limits::ROUTES, "routes")
};

/// The keys of `ROUTE`, each with what `compile` reads it as.
pub mod route {
    use super::*;

    /// Marks the fields of `ROUTE`.
    pub struct Of;

    pub const NAME: Field<Of, Str> = Field::new(
        key("name", text(Text::NonEmpty)).required().about("Unique route name; default salt of its splits."),
    );
    pub const HOSTS: Field<Of, Strs> = Field::new(
        key("hosts", Kind::List(&super::HOSTS))
            .about("Hosts without port: exact, *.suffix or *. Omit for any host."),
    );
    pub const PATH: Field<Of, OptStr> = Field::new(
        key("path", text(Text::Pattern("^/")))
            .about("Matched against :path before `?`, exactly (Kubernetes' pathType: Exact)."),
    );
    pub const PATH_PREFIX: Field<Of, OptStr> =
        Field::new(key("pathPrefix", text(Text::Pattern("^/"))).about("Matched against :path before `?`."));
    pub const PATH_ELEMENTS: Field<Of, Flag> = Field::new(
        key("pathElements", Kind::Bool(Some(false)))
            .about("pathPrefix matches whole path elements: /api takes /api and /api/x, not /apiary."),
    );
    pub const DEFAULT: Field<Of, Str> =
        Field::new(key("default", text(Text::Target)).required().about("The target when no rule matches."));
    pub const RULES: Field<Of, Objs<rule::Of>> = Field::new(
        key("rules", Kind::List(&super::RULES))
            .about("Tried in order; the first whose conditions all hold decides."),
    );
    pub const MIRROR: Field<Of, Obj<mirror::Of>> = Field::new(
        key("mirror", Kind::Object(&super::MIRROR))
            .about("Copy a share of the route's requests to another cluster."),
    );
}

pub const ROUTE: Object = Object {
    name: "route",
    doc: Some(("docs/config.md", "## Route (`routes[i]`)")),
    keys: &[
        route::NAME.key,
        route::HOSTS.key,
        route::PATH.key,
        route::PATH_PREFIX.key,
        route::PATH_ELEMENTS.key,
        route::DEFAULT.key,
        route::RULES.key,
        route::MIRROR.key,
    ],
    rules: &[
        Rule::Requires { key: "pathElements", keys: &["pathPrefix"], why: "it says how pathPrefix matches" },
        Rule::Excludes {
            key: "path",
            keys: &["pathPrefix"],
            why: "a route matches its path exactly or by prefix, not both",
        },
    ],
};

const HOSTS: List = List {
    min: 1,
    too_few: "must not be empty (omit `hosts` to match any host)",
    ..list(text(Text::Pattern("^[^: ]+$|^\\[.*\\]$")), limits::HOSTS_PER_ROUTE, "hosts")
};

const RULES: List = list(Kind::Object(&RULE), limits::RULES_PER_ROUTE, "rules in this route");

/// The keys of `MIRROR`, each with what `compile` reads it as.
pub mod mirror {
    use super::*;

    /// Marks the fields of `MIRROR`.
    pub struct Of;

    pub const CLUSTER: Field<Of, Str> = Field::new(
        key("cluster", text(Text::Pattern(super::CLUSTER)))
            .required()
            .about("Cluster the copies go to; in Istio outbound|PORT||HOST."),
    );
    pub const PERCENT: Field<Of, Num> = Field::new(
        key("percent", Kind::Number(number(0.0, 100.0))).required().about("Share of requests copied."),
    );
    pub const TIMEOUT_MS: Field<Of, Num> = Field::new(
        key("timeoutMs", whole(1.0, 3_600_000.0, Some(shadow::DEFAULT_TIMEOUT_MS as f64)))
            .about("How long a copy may take before it counts as failed."),
    );
    pub const MAX_BODY_BYTES: Field<Of, Num> = Field::new(
        key(
            "maxBodyBytes",
            whole(0.0, shadow::MAX_BODY_BYTES as f64, Some(shadow::DEFAULT_MAX_BODY_BYTES as f64)),
        )
        .about("Requests with a bigger body are not copied."),
    );
}

pub const MIRROR: Object = Object {
    name: "mirror",
    doc: Some(("docs/config.md", "## Mirror (`routes[i].mirror`)")),
    keys: &[mirror::CLUSTER.key, mirror::PERCENT.key, mirror::TIMEOUT_MS.key, mirror::MAX_BODY_BYTES.key],
    rules: &[],
};

/// The keys of `MIRROR_BUDGET`, each with what `compile` reads it as.
pub mod mirror_budget {
    use super::*;

    /// Marks the fields of `MIRROR_BUDGET`.
    pub struct Of;

    pub const MAX_BYTES: Field<Of, Num> = Field::new(
        key("maxBytes", whole(0.0, 268_435_456.0, Some(shadow::DEFAULT_BUDGET_BYTES as f64)))
            .about("Bytes all shadow copies of a VM may hold at once."),
    );
    pub const MAX_IN_FLIGHT: Field<Of, Num> = Field::new(
        key("maxInFlight", whole(0.0, 4096.0, Some(shadow::DEFAULT_BUDGET_IN_FLIGHT as f64)))
            .about("Copies of a VM waiting to be sent or not answered yet."),
    );
}

pub const MIRROR_BUDGET: Object = Object {
    name: "mirrorBudget",
    doc: Some(("docs/config.md", "**The mirror budget**")),
    keys: &[mirror_budget::MAX_BYTES.key, mirror_budget::MAX_IN_FLIGHT.key],
    rules: &[],
};

/// The keys of `RULE`, each with what `compile` reads it as.
pub mod rule {
    use super::*;

    /// Marks the fields of `RULE`.
    pub struct Of;

    pub const NAME: Field<Of, OptStr> =
        Field::new(key("name", text(Text::NonEmpty)).about("Shown in logs; defaults to rules[i]."));
    pub const MATCH: Field<Of, Objs<condition::Of>> = Field::new(
        key("match", Kind::List(&super::CONDITIONS))
            .about("Conditions that must all hold; omitted or empty: always."),
    );
    pub const TARGET: Field<Of, OptStr> =
        Field::new(key("target", text(Text::Target)).about("The target to route to."));
    pub const SPLIT: Field<Of, Obj<split::Of>> =
        Field::new(key("split", Kind::Object(&super::SPLIT)).about("A weighted choice between targets."));
}

pub const RULE: Object = Object {
    name: "rule",
    doc: Some(("docs/config.md", "## Rule (`routes[i].rules[j]`)")),
    keys: &[rule::NAME.key, rule::MATCH.key, rule::TARGET.key, rule::SPLIT.key],
    rules: &[Rule::ExactlyOne { keys: &["target", "split"], what: "an action" }],
};

const CONDITIONS: List = list(Kind::Object(&CONDITION), limits::CONDITIONS_PER_RULE, "conditions");

/// The keys of `CONDITION`, each with what `compile` reads it as.
pub mod condition {
    use super::*;

    /// Marks the fields of `CONDITION`.
    pub struct Of;

    pub const HEADER: Field<Of, OptStr> =
        Field::new(key("header", text(Text::NonEmpty)).about("Source: a request header (case-insensitive)."));
    pub const COOKIE: Field<Of, OptStr> =
        Field::new(key("cookie", text(Text::NonEmpty)).about("Source: a cookie (case-sensitive)."));
    pub const QUERY: Field<Of, OptStr> = Field::new(
        key("query", text(Text::NonEmpty)).about("Source: a query parameter (case-sensitive, decoded)."),
    );
    pub const EXACT: Field<Of, OptStr> =
        Field::new(key("exact", text(Text::Any)).about("Test: the value equals this."));
    pub const PREFIX: Field<Of, OptStr> =
        Field::new(key("prefix", text(Text::Any)).about("Test: the value starts with this."));
    pub const REGEX: Field<Of, OptStr> = Field::new(
        key("regex", text(Text::Any))
            .about("Test: regex-lite syntax, unanchored; at most 256 automaton states."),
    );
    pub const ONE_OF: Field<Of, Strs> =
        Field::new(key("oneOf", Kind::List(&super::ONE_OF)).about("Test: the value equals one of these."));
    pub const PRESENT: Field<Of, OptFlag> =
        Field::new(key("present", Kind::Bool(None)).about("Test: whether the key occurs."));
    pub const NOT: Field<Of, Flag> =
        Field::new(key("not", Kind::Bool(Some(false))).about("Inverts the condition."));
}

pub const CONDITION: Object = Object {
    name: "condition",
    doc: Some(("docs/config.md", "## Condition (`match[k]`)")),
    keys: &[
        condition::HEADER.key,
        condition::COOKIE.key,
        condition::QUERY.key,
        condition::EXACT.key,
        condition::PREFIX.key,
        condition::REGEX.key,
        condition::ONE_OF.key,
        condition::PRESENT.key,
        condition::NOT.key,
    ],
    rules: &[
        Rule::ExactlyOne { keys: SOURCES, what: "a source" },
        Rule::ExactlyOne { keys: &["exact", "prefix", "regex", "oneOf", "present"], what: "a test" },
    ],
};

const ONE_OF: List = List {
    min: 1,
    too_few: "must list at least one value",
    ..list(text(Text::Any), limits::ONE_OF_VALUES, "values")
};

/// The keys of `SPLIT`, each with what `compile` reads it as.
pub mod split {
    use super::*;

    /// Marks the fields of `SPLIT`.
    pub struct Of;

    pub const WEIGHTS: Field<Of, Objs<weight::Of>> = Field::new(
        key("weights", Kind::List(&super::WEIGHTS))
            .required()
            .about("The targets and their relative weights."),
    );
    pub const STICKY_BY: Field<Of, Obj<sticky_by::Of>> =
        Field::new(key("stickyBy", Kind::Object(&super::STICKY_BY)).about("Where the sticky key is read."));
    pub const SALT: Field<Of, OptStr> = Field::new(
        key("salt", text(Text::Any)).about("Mixed into the sticky hash; defaults to the route name."),
    );
    pub const RAMP: Field<Of, Obj<ramp::Of>> =
        Field::new(key("ramp", Kind::Object(&super::RAMP)).about("The first target's percentage, in steps."));
    pub const ASSIGN_COOKIE: Field<Of, Obj<assign_cookie::Of>> = Field::new(
        key("assignCookie", Kind::Object(&super::ASSIGN_COOKIE))
            .about("Remember each user's target in a cookie."),
    );
    pub const ROLLBACK: Field<Of, Obj<rollback::Of>> = Field::new(
        key("rollback", Kind::Object(&super::ROLLBACK))
            .about("Take all traffic off a target that misbehaves."),
    );
}

pub const SPLIT: Object = Object {
    name: "split",
    doc: Some(("docs/config.md", "## Split (`rules[j].split`)")),
    keys: &[
        split::WEIGHTS.key,
        split::STICKY_BY.key,
        split::SALT.key,
        split::RAMP.key,
        split::ASSIGN_COOKIE.key,
        split::ROLLBACK.key,
    ],
    rules: &[],
};

const WEIGHTS: List = List {
    min: 1,
    too_few: "must list at least one target",
    ..list(Kind::Object(&WEIGHT), limits::TARGETS_PER_SPLIT, "targets")
};

/// The keys of `WEIGHT`, each with what `compile` reads it as.
pub mod weight {
    use super::*;

    /// Marks the fields of `WEIGHT`.
    pub struct Of;

    pub const TARGET: Field<Of, Str> =
        Field::new(key("target", text(Text::Target)).required().about("A target, at most once per split."));
    pub const WEIGHT: Field<Of, Num> = Field::new(
        key(
            "weight",
            Kind::Number(Number { words: Some("a non-negative number"), ..number(0.0, f64::INFINITY) }),
        )
        .required()
        .about("Relative to the sum of the split's weights."),
    );
}

pub const WEIGHT: Object = Object {
    name: "weight",
    doc: Some(("docs/config.md", "Each weight (`split.weights[w]`)")),
    keys: &[weight::TARGET.key, weight::WEIGHT.key],
    rules: &[],
};

/// The keys of `STICKY_BY`, each with what `compile` reads it as.
pub mod sticky_by {
    use super::*;

    /// Marks the fields of `STICKY_BY`.
    pub struct Of;

    pub const HEADER: Field<Of, OptStr> =
        Field::new(key("header", text(Text::NonEmpty)).about("Sticky key: a request header."));
    pub const COOKIE: Field<Of, OptStr> =
        Field::new(key("cookie", text(Text::NonEmpty)).about("Sticky key: a cookie."));
    pub const QUERY: Field<Of, OptStr> =
        Field::new(key("query", text(Text::NonEmpty)).about("Sticky key: a query parameter."));
}

/// Documented in the split's table (`{"cookie": name}`).
pub const STICKY_BY: Object = Object {
    name: "stickyBy",
    doc: None,
    keys: &[sticky_by::HEADER.key, sticky_by::COOKIE.key, sticky_by::QUERY.key],
    rules: &[Rule::ExactlyOne { keys: SOURCES, what: "a source" }],
};

/// The keys of `RAMP`, each with what `compile` reads it as.
pub mod ramp {
    use super::*;

    /// Marks the fields of `RAMP`.
    pub struct Of;

    pub const TARGET: Field<Of, Str> = Field::new(
        key("target", text(Text::Target)).required().about("The ramped target: the split's first."),
    );
    pub const START: Field<Of, Str> = Field::new(
        key("start", text(Text::Time)).required().about("RFC 3339 time, e.g. 2026-11-24T10:00:00Z."),
    );
    pub const EVERY: Field<Of, Str> =
        Field::new(key("every", text(Text::Duration)).required().about("Time per step."));
    pub const STEPS: Field<Of, Nums> = Field::new(
        key("steps", Kind::List(&super::STEPS)).required().about("The target's percentage at each step."),
    );
    pub const GATE: Field<Of, Obj<gate::Of>> = Field::new(
        key("gate", Kind::Object(&super::GATE))
            .about("Take each step only once the canary was judged healthy at the one before."),
    );
    pub const HOLD: Field<Of, Flag> = Field::new(
        key("hold", Kind::Bool(Some(false))).about("Freeze the ramp at its current step (a manual pause)."),
    );
}

pub const RAMP: Object = Object {
    name: "ramp",
    doc: Some(("docs/progressive-delivery.md", "## Ramp (`split.ramp`)")),
    keys: &[
        ramp::TARGET.key,
        ramp::START.key,
        ramp::EVERY.key,
        ramp::STEPS.key,
        ramp::GATE.key,
        ramp::HOLD.key,
    ],
    rules: &[],
};

/// The keys of `GATE`, each with what `compile` reads it as.
pub mod gate {
    use super::*;

    /// Marks the fields of `GATE`.
    pub struct Of;

    pub const MIN_REQUESTS: Field<Of, OptNum> = Field::new(
        key("minRequests", whole(1.0, 1e12, None))
            .about("Responses from the target since the step began that the local window needs to judge it."),
    );
    pub const MAX_WAIT: Field<Of, OptStr> = Field::new(
        key("maxWait", text(Text::Duration))
            .about("How long a step may wait for a verdict before onMaxWait."),
    );
    pub const ON_MAX_WAIT: Field<Of, Str> = Field::new(
        key("onMaxWait", text(Text::Pattern("^(hold|rollback)$")))
            .default_text("hold")
            .about("After maxWait without a verdict: hold (stay, and say so) or rollback."),
    );
}

pub const GATE: Object = Object {
    name: "gate",
    doc: Some(("docs/progressive-delivery.md", "### Gated steps (`ramp.gate`)")),
    keys: &[gate::MIN_REQUESTS.key, gate::MAX_WAIT.key, gate::ON_MAX_WAIT.key],
    rules: &[],
};

const STEPS: List = List {
    min: 1,
    too_few: "must list at least one step",
    ..list(
        Kind::Number(Number { words: Some("a percentage from 0 to 100"), ..number(0.0, 100.0) }),
        limits::RAMP_STEPS,
        "steps",
    )
};

/// The keys of `ASSIGN_COOKIE`, each with what `compile` reads it as.
pub mod assign_cookie {
    use super::*;

    /// Marks the fields of `ASSIGN_COOKIE`.
    pub struct Of;

    pub const NAME: Field<Of, Str> =
        Field::new(key("name", text(Text::Pattern(super::TOKEN))).required().about("The cookie's name."));
    pub const MAX_AGE: Field<Of, OptNum> = Field::new(
        key("maxAge", whole(0.0, 1e12, None)).about("Max-Age in seconds; omitted: a session cookie."),
    );
    pub const PATH: Field<Of, OptStr> =
        Field::new(key("path", text(Text::Pattern("^/[!-:<-~]*$"))).about("The cookie's Path."));
    pub const SECURE: Field<Of, Flag> =
        Field::new(key("secure", Kind::Bool(Some(false))).about("Adds Secure."));
    pub const HTTP_ONLY: Field<Of, Flag> =
        Field::new(key("httpOnly", Kind::Bool(Some(false))).about("Adds HttpOnly."));
    pub const SAME_SITE: Field<Of, OptStr> = Field::new(
        key("sameSite", text(Text::Pattern("^(Strict|Lax|None)$")))
            .about("Adds SameSite: Strict, Lax or None (None needs secure)."),
    );
}

pub const ASSIGN_COOKIE: Object = Object {
    name: "assignCookie",
    doc: Some(("docs/progressive-delivery.md", "## Assignment cookie (`split.assignCookie`)")),
    keys: &[
        assign_cookie::NAME.key,
        assign_cookie::MAX_AGE.key,
        assign_cookie::PATH.key,
        assign_cookie::SECURE.key,
        assign_cookie::HTTP_ONLY.key,
        assign_cookie::SAME_SITE.key,
    ],
    rules: &[],
};

const LOCAL_WINDOW: &[&str] = &["minRequests", "window"];

/// The keys of `ROLLBACK`, each with what `compile` reads it as.
pub mod rollback {
    use super::*;

    /// Marks the fields of `ROLLBACK`.
    pub struct Of;

    pub const TARGET: Field<Of, Str> =
        Field::new(key("target", text(Text::Target)).required().about("The target watched and rolled back."));
    pub const MAX_ERROR_RATE: Field<Of, OptNum> = Field::new(
        key(
            "maxErrorRate",
            Kind::Number(Number {
                exclusive: true,
                words: Some("a fraction between 0 and 1 (0.05 is 5%)"),
                ..number(0.0, 1.0)
            }),
        )
        .about("Local window: the error share above which to roll back (optional with `compare`)."),
    );
    pub const MIN_REQUESTS: Field<Of, OptNum> = Field::new(
        key("minRequests", whole(1.0, 1e12, None)).about("Local window: responses needed before judging."),
    );
    pub const WINDOW: Field<Of, OptStr> =
        Field::new(key("window", text(Text::Duration)).about("Local window: how far back to count."));
    pub const LATENCY: Field<Of, Obj<latency::Of>> = Field::new(
        key("latency", Kind::Object(&super::LATENCY))
            .about("Local window: the latency the target must keep."),
    );
    pub const ABANDONED_AFTER_MS: Field<Of, Num> = Field::new(key("abandonedAfterMs", whole(1.0, 3_600_000.0, Some(500.0))).about(
            "Local window: a request to the target that ends without an answer after waiting this long counts as a failure.",
        ));
    pub const COMPARE: Field<Of, Obj<compare::Of>> = Field::new(
        key("compare", Kind::Object(&super::COMPARE))
            .about("Local window: the target against its baseline, with a stated confidence."),
    );
    pub const PROMETHEUS: Field<Of, Obj<prometheus::Of>> = Field::new(
        key("prometheus", Kind::Object(&super::PROMETHEUS))
            .about("Checks over the fleet's metrics and the fleet latch."),
    );
}

pub const ROLLBACK: Object = Object {
    name: "rollback",
    doc: Some(("docs/progressive-delivery.md", "## Rollback (`split.rollback`)")),
    keys: &[
        rollback::TARGET.key,
        rollback::MAX_ERROR_RATE.key,
        rollback::MIN_REQUESTS.key,
        rollback::WINDOW.key,
        rollback::LATENCY.key,
        rollback::ABANDONED_AFTER_MS.key,
        rollback::COMPARE.key,
        rollback::PROMETHEUS.key,
    ],
    rules: &[
        Rule::Together { keys: LOCAL_WINDOW, what: "a local window" },
        Rule::Requires {
            key: "maxErrorRate",
            keys: LOCAL_WINDOW,
            why: "the error rate is judged over the local window",
        },
        Rule::Requires { key: "latency", keys: LOCAL_WINDOW, why: "latency is judged over the local window" },
        Rule::Requires {
            key: "compare",
            keys: LOCAL_WINDOW,
            why: "both arms are counted by the local window, and judged once each has minRequests",
        },
        Rule::Requires {
            key: "abandonedAfterMs",
            keys: LOCAL_WINDOW,
            why: "abandoned requests are counted in the local window",
        },
        Rule::AnyOf {
            groups: &[&["maxErrorRate"], &["latency"], &["compare"], &["prometheus"]],
            message: "needs something to judge by: `maxErrorRate`, `latency` or `compare` (each with \
                      `minRequests` and `window`), `prometheus`, or several",
        },
    ],
};

/// The keys of `COMPARE`, each with what `compile` reads it as.
pub mod compare {
    use super::*;

    /// Marks the fields of `COMPARE`.
    pub struct Of;

    pub const BASELINE: Field<Of, OptStr> = Field::new(
        key("baseline", text(Text::Target))
            .about("The target the canary is compared with; default: the split's other targets."),
    );
    pub const MAX_ERROR_RATE_INCREASE: Field<Of, OptNum> = Field::new(
        key(
            "maxErrorRateIncrease",
            Kind::Number(Number {
                words: Some("a fraction from 0 to 0.5 (0.01 is one percentage point)"),
                ..number(0.0, 0.5)
            }),
        )
        .about("How far the canary's error rate may be above the baseline's."),
    );
    pub const LATENCY: Field<Of, Obj<compare_latency::Of>> = Field::new(
        key("latency", Kind::Object(&super::COMPARE_LATENCY))
            .about("How much slower the canary's latency percentile may be than the baseline's."),
    );
    pub const CONFIDENCE: Field<Of, Num> = Field::new(
        key(
            "confidence",
            Kind::Number(Number {
                exclusive: true,
                default: Some(0.95),
                words: Some("a probability between 0.5 and 0.9999"),
                ..number(0.5, 0.9999)
            }),
        )
        .about("How sure the judge must be, over the whole ramp, before it acts."),
    );
}

pub const COMPARE: Object = Object {
    name: "compare",
    doc: Some(("docs/progressive-delivery.md", "### Against the baseline (`rollback.compare`)")),
    keys: &[
        compare::BASELINE.key,
        compare::MAX_ERROR_RATE_INCREASE.key,
        compare::LATENCY.key,
        compare::CONFIDENCE.key,
    ],
    rules: &[Rule::AnyOf {
        groups: &[&["maxErrorRateIncrease"], &["latency"]],
        message: "needs `maxErrorRateIncrease`, `latency` or both: what to compare",
    }],
};

/// The percentiles a latency judge reads from its histogram, compared or not.
const PERCENTILE: Kind =
    Kind::Number(Number { words: Some("a percentile from 50 to 99.9"), ..number(50.0, 99.9) });

/// The keys of `COMPARE_LATENCY`, each with what `compile` reads it as.
pub mod compare_latency {
    use super::*;

    /// Marks the fields of `COMPARE_LATENCY`.
    pub struct Of;

    pub const PERCENTILE: Field<Of, Num> = Field::new(
        key("percentile", super::PERCENTILE)
            .required()
            .about("Which percentile of each arm's response time is compared, e.g. 99."),
    );
    pub const MAX_RATIO: Field<Of, Num> = Field::new(
        key("maxRatio", Kind::Number(Number { words: Some("a ratio from 1 to 100"), ..number(1.0, 100.0) }))
            .required()
            .about("The canary's percentile may be at most the baseline's times this."),
    );
    pub const MIN_INCREASE_MS: Field<Of, Num> = Field::new(
        key("minIncreaseMs", whole(0.0, 3_600_000.0, Some(5.0)))
            .about("An increase smaller than this many ms is never a regression."),
    );
}

pub const COMPARE_LATENCY: Object = Object {
    name: "compareLatency",
    doc: Some(("docs/progressive-delivery.md", "Compared latency (`compare.latency`)")),
    keys: &[
        compare_latency::PERCENTILE.key,
        compare_latency::MAX_RATIO.key,
        compare_latency::MIN_INCREASE_MS.key,
    ],
    rules: &[],
};

/// The keys of `LATENCY`, each with what `compile` reads it as.
pub mod latency {
    use super::*;

    /// Marks the fields of `LATENCY`.
    pub struct Of;

    pub const PERCENTILE: Field<Of, Num> = Field::new(
        key("percentile", super::PERCENTILE)
            .required()
            .about("Which percentile of the target's response time is judged, e.g. 99."),
    );
    pub const MAX_MS: Field<Of, Num> = Field::new(
        key("maxMs", whole(1.0, 3_600_000.0, None))
            .required()
            .about("The most that percentile may be, in ms."),
    );
}

pub const LATENCY: Object = Object {
    name: "latency",
    doc: Some(("docs/progressive-delivery.md", "Latency (`rollback.latency`)")),
    keys: &[latency::PERCENTILE.key, latency::MAX_MS.key],
    rules: &[],
};

/// The keys of `PROMETHEUS`, each with what `compile` reads it as.
pub mod prometheus {
    use super::*;

    /// Marks the fields of `PROMETHEUS`.
    pub struct Of;

    pub const CLUSTER: Field<Of, Str> = Field::new(
        key("cluster", text(Text::Pattern(super::CLUSTER)))
            .required()
            .about("The Envoy cluster that reaches Prometheus's HTTP API."),
    );
    pub const EVERY: Field<Of, Str> = Field::new(
        key("every", text(Text::Duration)).default_text("10s").about("Time between polls, per proxy."),
    );
    pub const TIMEOUT_MS: Field<Of, Num> =
        Field::new(key("timeoutMs", whole(1.0, 60_000.0, Some(1_000.0))).about("A query's timeout."));
    pub const THRESHOLD: Field<Of, Num> = Field::new(
        key("threshold", whole(1.0, 100.0, Some(2.0))).about("Failing polls in a row that roll back."),
    );
    pub const LOOKBACK: Field<Of, Str> = Field::new(
        key("lookback", text(Text::Duration)).default_text("1h").about("How far back the latch looks."),
    );
    pub const CHECKS: Field<Of, Objs<check::Of>> =
        Field::new(key("checks", Kind::List(&super::CHECKS)).about("What to judge."));
    pub const LATCH_QUERY: Field<Of, OptStr> = Field::new(
        key("latchQuery", text(Text::Pattern("\\{\\{split\\}\\}")))
            .about("The latch's PromQL; must use {{split}}."),
    );
    pub const VIEW_QUERY: Field<Of, OptStr> = Field::new(key("viewQuery", text(Text::Pattern("\\{\\{beacon\\}\\}")))
            .about("The fleet view's PromQL: at least 1 when Prometheus holds this proxy's series; must use {{split}} and {{beacon}}."));
    pub const BLIND_AFTER: Field<Of, Str> = Field::new(
        key("blindAfter", text(Text::Duration))
            .default_text("2m")
            .about("How long the fleet view may miss this proxy before it is reported blind."),
    );
    pub const PATH_PREFIX: Field<Of, OptStr> = Field::new(key("pathPrefix", text(Text::Pattern("^/")))
            .about("Where the HTTP API is served, e.g. /prometheus (Thanos, Mimir): queries go to PREFIX/api/v1/query."));
    pub const HEADERS: Field<Of, Objs<header::Of>> = Field::new(
        key("headers", Kind::List(&super::PROMETHEUS_HEADERS))
            .about("Request headers every query carries (a tenant, a token); values are never logged."),
    );
    pub const AUTHORITY: Field<Of, OptStr> = Field::new(key("authority", text(Text::Pattern(super::AUTHORITY))).about(
            "The queries' Host; default: the cluster's name if it is a host name, HOST:PORT of an Istio outbound|PORT||HOST cluster, else `prometheus`.",
        ));
}

pub const PROMETHEUS: Object = Object {
    name: "prometheus",
    doc: Some((
        "docs/progressive-delivery.md",
        "### Prometheus checks and the fleet latch (`rollback.prometheus`)",
    )),
    keys: &[
        prometheus::CLUSTER.key,
        prometheus::EVERY.key,
        prometheus::TIMEOUT_MS.key,
        prometheus::THRESHOLD.key,
        prometheus::LOOKBACK.key,
        prometheus::CHECKS.key,
        prometheus::LATCH_QUERY.key,
        prometheus::VIEW_QUERY.key,
        prometheus::BLIND_AFTER.key,
        prometheus::PATH_PREFIX.key,
        prometheus::HEADERS.key,
        prometheus::AUTHORITY.key,
    ],
    rules: &[],
};

const PROMETHEUS_HEADERS: List =
    list(Kind::Object(&HEADER), limits::PROMETHEUS_HEADERS, "headers of a Prometheus query");

/// The keys of `HEADER`, each with what `compile` reads it as.
pub mod header {
    use super::*;

    /// Marks the fields of `HEADER`.
    pub struct Of;

    pub const NAME: Field<Of, Str> = Field::new(
        key("name", text(Text::Pattern(super::TOKEN)))
            .required()
            .about("The header's name, e.g. X-Scope-OrgID; sent in lower case."),
    );
    pub const VALUE: Field<Of, Str> =
        Field::new(key("value", text(Text::Any)).required().about("Its value; never logged."));
}

pub const HEADER: Object = Object {
    name: "header",
    doc: Some(("docs/progressive-delivery.md", "A query header (`prometheus.headers[i]`)")),
    keys: &[header::NAME.key, header::VALUE.key],
    rules: &[],
};

const CHECKS: List = list(Kind::Object(&CHECK), limits::CHECKS_PER_ROLLBACK, "checks");

/// The keys of `CHECK`, each with what `compile` reads it as.
pub mod check {
    use super::*;

    /// Marks the fields of `CHECK`.
    pub struct Of;

    pub const NAME: Field<Of, Str> = Field::new(
        key("name", text(Text::Pattern("^[A-Za-z0-9_.-]+$"))).required().about("Names the check; unique."),
    );
    pub const QUERY: Field<Of, Str> =
        Field::new(key("query", text(Text::NonEmpty)).required().about("PromQL returning one number."));
    pub const MIN: Field<Of, OptNum> = Field::new(
        key("min", Kind::Number(number(f64::NEG_INFINITY, f64::INFINITY)))
            .about("The value must not be below it."),
    );
    pub const MAX: Field<Of, OptNum> = Field::new(
        key("max", Kind::Number(number(f64::NEG_INFINITY, f64::INFINITY)))
            .about("The value must not be above it."),
    );
    pub const COMPARE_TO: Field<Of, OptStr> =
        Field::new(key("compareTo", text(Text::Pattern("^baseline$"))).about(
            "`baseline`: run the query for the target and for its baseline, and judge the difference.",
        ));
    pub const MAX_INCREASE: Field<Of, OptNum> = Field::new(
        key("maxIncrease", Kind::Number(number(0.0, f64::INFINITY)))
            .about("With compareTo: the target's value may be at most the baseline's plus this."),
    );
    pub const MAX_RATIO: Field<Of, OptNum> = Field::new(
        key(
            "maxRatio",
            Kind::Number(Number { words: Some("a ratio of at least 1"), ..number(1.0, f64::INFINITY) }),
        )
        .about("With compareTo: the target's value may be at most the baseline's times this."),
    );
}

pub const CHECK: Object = Object {
    name: "check",
    doc: Some(("docs/progressive-delivery.md", "A check (`prometheus.checks[i]`)")),
    keys: &[check::NAME.key, check::QUERY.key, check::MIN.key, check::MAX.key, check::COMPARE_TO.key, check::MAX_INCREASE.key, check::MAX_RATIO.key],
    rules: &[
        Rule::Excludes { key: "compareTo", keys: &["min", "max"], why: "a comparison is bounded by `maxIncrease` or `maxRatio`" },
        Rule::Requires { key: "maxIncrease", keys: &["compareTo"], why: "it bounds the difference from the baseline" },
        Rule::Requires { key: "maxRatio", keys: &["compareTo"], why: "it bounds the ratio to the baseline" },
        Rule::Excludes { key: "maxIncrease", keys: &["maxRatio"], why: "a comparison has one bound" },
        Rule::AnyOf {
            groups: &[&["min"], &["max"], &["maxIncrease"], &["maxRatio"]],
            message: "needs `max`, `min` or both (the bounds its value must stay in), or `compareTo` with `maxIncrease` or `maxRatio`",
        },
    ],
};

/// Every object, the document first.
pub const OBJECTS: [&Object; 19] = [
    &CONFIG,
    &ROUTE,
    &MIRROR,
    &MIRROR_BUDGET,
    &RULE,
    &CONDITION,
    &SPLIT,
    &WEIGHT,
    &STICKY_BY,
    &RAMP,
    &GATE,
    &ASSIGN_COOKIE,
    &ROLLBACK,
    &LATENCY,
    &COMPARE,
    &COMPARE_LATENCY,
    &PROMETHEUS,
    &HEADER,
    &CHECK,
];

impl Shaped for config::Of {
    const OBJECT: &'static Object = &CONFIG;
}

impl Shaped for route::Of {
    const OBJECT: &'static Object = &ROUTE;
}

impl Shaped for mirror::Of {
    const OBJECT: &'static Object = &MIRROR;
}

impl Shaped for mirror_budget::Of {
    const OBJECT: &'static Object = &MIRROR_BUDGET;
}

impl Shaped for rule::Of {
    const OBJECT: &'static Object = &RULE;
}

impl Shaped for condition::Of {
    const OBJECT: &'static Object = &CONDITION;
}

impl Shaped for split::Of {
    const OBJECT: &'static Object = &SPLIT;
}

impl Shaped for weight::Of {
    const OBJECT: &'static Object = &WEIGHT;
}

impl Shaped for sticky_by::Of {
    const OBJECT: &'static Object = &STICKY_BY;
}

impl Shaped for ramp::Of {
    const OBJECT: &'static Object = &RAMP;
}

impl Shaped for gate::Of {
    const OBJECT: &'static Object = &GATE;
}

impl Shaped for assign_cookie::Of {
    const OBJECT: &'static Object = &ASSIGN_COOKIE;
}

impl Shaped for rollback::Of {
    const OBJECT: &'static Object = &ROLLBACK;
}

impl Shaped for compare::Of {
    const OBJECT: &'static Object = &COMPARE;
}

impl Shaped for compare_latency::Of {
    const OBJECT: &'static Object = &COMPARE_LATENCY;
}

impl Shaped for latency::Of {
    const OBJECT: &'static Object = &LATENCY;
}

impl Shaped for prometheus::Of {
    const OBJECT: &'static Object = &PROMETHEUS;
}

impl Shaped for header::Of {
    const OBJECT: &'static Object = &HEADER;
}

impl Shaped for check::Of {
    const OBJECT: &'static Object = &CHECK;
}
