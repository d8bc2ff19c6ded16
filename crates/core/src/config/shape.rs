//! The config's shape, declared once: every object, its keys, what kind of
//! value each takes, which are required, their bounds and defaults, and a
//! one-line meaning. From this the reader refuses unknown keys, wrong
//! kinds, missing keys and out-of-bound values (`read.rs`), `compile`
//! reads values and defaults, the CLI derives the JSON Schema, and a test
//! checks that the reference's table for each object lists exactly these
//! keys. Adding a key is one line here and its meaning in `compile`.
//!
//! The meanings are for people (the schema's descriptions); the `.wasm`
//! does not carry them.

use crate::config::limits;
use crate::routing::mirror;

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

pub const CONFIG: Object = Object {
    name: "config",
    doc: Some(("docs/config.md", "## Top level")),
    keys: &[
        key("targetHeader", text(Text::Pattern(HEADER_NAME)))
            .default_text("x-route-target")
            .about("The request header the filter writes the target into (lower case)."),
        key("routes", Kind::List(&ROUTES)).required().about("Where the filter applies and what it decides."),
        key("mirrorBudget", Kind::Object(&MIRROR_BUDGET))
            .about("What each VM may hold for shadow copies at once."),
        key("countResponses", Kind::Bool(Some(false)))
            .about("Count responses per route, target and status class."),
        key("clearRouteCache", Kind::Bool(Some(true)))
            .about("Ask the host to select the route again after the target header changed."),
    ],
    rules: &[],
};

const ROUTES: List = List {
    min: 1,
    too_few: "must list at least one route",
    ..list(Kind::Object(&ROUTE), limits::ROUTES, "routes")
};

pub const ROUTE: Object = Object {
    name: "route",
    doc: Some(("docs/config.md", "## Route (`routes[i]`)")),
    keys: &[
        key("name", text(Text::NonEmpty)).required().about("Unique route name; default salt of its splits."),
        key("hosts", Kind::List(&HOSTS))
            .about("Hosts without port: exact, *.suffix or *. Omit for any host."),
        key("path", text(Text::Pattern("^/")))
            .about("Matched against :path before `?`, exactly (Kubernetes' pathType: Exact)."),
        key("pathPrefix", text(Text::Pattern("^/"))).about("Matched against :path before `?`."),
        key("pathElements", Kind::Bool(Some(false)))
            .about("pathPrefix matches whole path elements: /api takes /api and /api/x, not /apiary."),
        key("default", text(Text::Target)).required().about("The target when no rule matches."),
        key("rules", Kind::List(&RULES))
            .about("Tried in order; the first whose conditions all hold decides."),
        key("mirror", Kind::Object(&MIRROR))
            .about("Copy a share of the route's requests to another cluster."),
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

pub const MIRROR: Object = Object {
    name: "mirror",
    doc: Some(("docs/config.md", "## Mirror (`routes[i].mirror`)")),
    keys: &[
        key("cluster", text(Text::Pattern(CLUSTER)))
            .required()
            .about("Cluster the copies go to; in Istio outbound|PORT||HOST."),
        key("percent", Kind::Number(number(0.0, 100.0))).required().about("Share of requests copied."),
        key("timeoutMs", whole(1.0, 3_600_000.0, Some(mirror::DEFAULT_TIMEOUT_MS as f64)))
            .about("How long a copy may take before it counts as failed."),
        key(
            "maxBodyBytes",
            whole(0.0, mirror::MAX_BODY_BYTES as f64, Some(mirror::DEFAULT_MAX_BODY_BYTES as f64)),
        )
        .about("Requests with a bigger body are not copied."),
    ],
    rules: &[],
};

pub const MIRROR_BUDGET: Object = Object {
    name: "mirrorBudget",
    doc: Some(("docs/config.md", "**The mirror budget**")),
    keys: &[
        key("maxBytes", whole(0.0, 268_435_456.0, Some(mirror::DEFAULT_BUDGET_BYTES as f64)))
            .about("Bytes all shadow copies of a VM may hold at once."),
        key("maxInFlight", whole(0.0, 4096.0, Some(mirror::DEFAULT_BUDGET_IN_FLIGHT as f64)))
            .about("Copies of a VM waiting to be sent or not answered yet."),
    ],
    rules: &[],
};

pub const RULE: Object = Object {
    name: "rule",
    doc: Some(("docs/config.md", "## Rule (`routes[i].rules[j]`)")),
    keys: &[
        key("name", text(Text::NonEmpty)).about("Shown in logs; defaults to rules[i]."),
        key("match", Kind::List(&CONDITIONS))
            .about("Conditions that must all hold; omitted or empty: always."),
        key("target", text(Text::Target)).about("The target to route to."),
        key("split", Kind::Object(&SPLIT)).about("A weighted choice between targets."),
    ],
    rules: &[Rule::ExactlyOne { keys: &["target", "split"], what: "an action" }],
};

const CONDITIONS: List = list(Kind::Object(&CONDITION), limits::CONDITIONS_PER_RULE, "conditions");

pub const CONDITION: Object = Object {
    name: "condition",
    doc: Some(("docs/config.md", "## Condition (`match[k]`)")),
    keys: &[
        key("header", text(Text::NonEmpty)).about("Source: a request header (case-insensitive)."),
        key("cookie", text(Text::NonEmpty)).about("Source: a cookie (case-sensitive)."),
        key("query", text(Text::NonEmpty)).about("Source: a query parameter (case-sensitive, decoded)."),
        key("exact", text(Text::Any)).about("Test: the value equals this."),
        key("prefix", text(Text::Any)).about("Test: the value starts with this."),
        key("regex", text(Text::Any))
            .about("Test: regex-lite syntax, unanchored; at most 256 automaton states."),
        key("oneOf", Kind::List(&ONE_OF)).about("Test: the value equals one of these."),
        key("present", Kind::Bool(None)).about("Test: whether the key occurs."),
        key("not", Kind::Bool(Some(false))).about("Inverts the condition."),
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

pub const SPLIT: Object = Object {
    name: "split",
    doc: Some(("docs/config.md", "## Split (`rules[j].split`)")),
    keys: &[
        key("weights", Kind::List(&WEIGHTS)).required().about("The targets and their relative weights."),
        key("stickyBy", Kind::Object(&STICKY_BY)).about("Where the sticky key is read."),
        key("salt", text(Text::Any)).about("Mixed into the sticky hash; defaults to the route name."),
        key("ramp", Kind::Object(&RAMP)).about("The first target's percentage, in steps."),
        key("assignCookie", Kind::Object(&ASSIGN_COOKIE)).about("Remember each user's target in a cookie."),
        key("rollback", Kind::Object(&ROLLBACK)).about("Take all traffic off a target that misbehaves."),
    ],
    rules: &[],
};

const WEIGHTS: List = List {
    min: 1,
    too_few: "must list at least one target",
    ..list(Kind::Object(&WEIGHT), limits::TARGETS_PER_SPLIT, "targets")
};

pub const WEIGHT: Object = Object {
    name: "weight",
    doc: Some(("docs/config.md", "Each weight (`split.weights[w]`)")),
    keys: &[
        key("target", text(Text::Target)).required().about("A target, at most once per split."),
        key(
            "weight",
            Kind::Number(Number { words: Some("a non-negative number"), ..number(0.0, f64::INFINITY) }),
        )
        .required()
        .about("Relative to the sum of the split's weights."),
    ],
    rules: &[],
};

/// Documented in the split's table (`{"cookie": name}`).
pub const STICKY_BY: Object = Object {
    name: "stickyBy",
    doc: None,
    keys: &[
        key("header", text(Text::NonEmpty)).about("Sticky key: a request header."),
        key("cookie", text(Text::NonEmpty)).about("Sticky key: a cookie."),
        key("query", text(Text::NonEmpty)).about("Sticky key: a query parameter."),
    ],
    rules: &[Rule::ExactlyOne { keys: SOURCES, what: "a source" }],
};

pub const RAMP: Object = Object {
    name: "ramp",
    doc: Some(("docs/progressive-delivery.md", "## Ramp (`split.ramp`)")),
    keys: &[
        key("target", text(Text::Target)).required().about("The ramped target: the split's first."),
        key("start", text(Text::Time)).required().about("RFC 3339 time, e.g. 2026-11-24T10:00:00Z."),
        key("every", text(Text::Duration)).required().about("Time per step."),
        key("steps", Kind::List(&STEPS)).required().about("The target's percentage at each step."),
        key("gate", Kind::Object(&GATE))
            .about("Take each step only once the canary was judged healthy at the one before."),
        key("hold", Kind::Bool(Some(false))).about("Freeze the ramp at its current step (a manual pause)."),
    ],
    rules: &[],
};

pub const GATE: Object = Object {
    name: "gate",
    doc: Some(("docs/progressive-delivery.md", "### Gated steps (`ramp.gate`)")),
    keys: &[
        key("minRequests", whole(1.0, 1e12, None))
            .about("Responses from the target since the step began that the local window needs to judge it."),
        key("maxWait", text(Text::Duration))
            .about("How long a step may wait for a verdict before onMaxWait."),
        key("onMaxWait", text(Text::Pattern("^(hold|rollback)$")))
            .default_text("hold")
            .about("After maxWait without a verdict: hold (stay, and say so) or rollback."),
    ],
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

pub const ASSIGN_COOKIE: Object = Object {
    name: "assignCookie",
    doc: Some(("docs/progressive-delivery.md", "## Assignment cookie (`split.assignCookie`)")),
    keys: &[
        key("name", text(Text::Pattern(TOKEN))).required().about("The cookie's name."),
        key("maxAge", whole(0.0, 1e12, None)).about("Max-Age in seconds; omitted: a session cookie."),
        key("path", text(Text::Pattern("^/[!-:<-~]*$"))).about("The cookie's Path."),
        key("secure", Kind::Bool(Some(false))).about("Adds Secure."),
        key("httpOnly", Kind::Bool(Some(false))).about("Adds HttpOnly."),
    ],
    rules: &[],
};

const LOCAL_WINDOW: &[&str] = &["minRequests", "window"];

pub const ROLLBACK: Object = Object {
    name: "rollback",
    doc: Some(("docs/progressive-delivery.md", "## Rollback (`split.rollback`)")),
    keys: &[
        key("target", text(Text::Target)).required().about("The target watched and rolled back."),
        key(
            "maxErrorRate",
            Kind::Number(Number {
                exclusive: true,
                words: Some("a fraction between 0 and 1 (0.05 is 5%)"),
                ..number(0.0, 1.0)
            }),
        )
        .about("Local window: the error share above which to roll back (optional with `compare`)."),
        key("minRequests", whole(1.0, 1e12, None)).about("Local window: responses needed before judging."),
        key("window", text(Text::Duration)).about("Local window: how far back to count."),
        key("latency", Kind::Object(&LATENCY)).about("Local window: the latency the target must keep."),
        key("abandonedAfterMs", whole(1.0, 3_600_000.0, Some(500.0))).about(
            "Local window: a request to the target that ends without an answer after waiting this long counts as a failure.",
        ),
        key("compare", Kind::Object(&COMPARE))
            .about("Local window: the target against its baseline, with a stated confidence."),
        key("prometheus", Kind::Object(&PROMETHEUS))
            .about("Checks over the fleet's metrics and the fleet latch."),
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

pub const COMPARE: Object = Object {
    name: "compare",
    doc: Some(("docs/progressive-delivery.md", "### Against the baseline (`rollback.compare`)")),
    keys: &[
        key("baseline", text(Text::Target))
            .about("The target the canary is compared with; default: the split's other targets."),
        key(
            "maxErrorRateIncrease",
            Kind::Number(Number {
                words: Some("a fraction from 0 to 0.5 (0.01 is one percentage point)"),
                ..number(0.0, 0.5)
            }),
        )
        .about("How far the canary's error rate may be above the baseline's."),
        key("latency", Kind::Object(&COMPARE_LATENCY))
            .about("How much slower the canary's latency percentile may be than the baseline's."),
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
    ],
    rules: &[Rule::AnyOf {
        groups: &[&["maxErrorRateIncrease"], &["latency"]],
        message: "needs `maxErrorRateIncrease`, `latency` or both: what to compare",
    }],
};

/// The percentiles a latency judge reads from its histogram, compared or not.
const PERCENTILE: Kind =
    Kind::Number(Number { words: Some("a percentile from 50 to 99.9"), ..number(50.0, 99.9) });

pub const COMPARE_LATENCY: Object = Object {
    name: "compareLatency",
    doc: Some(("docs/progressive-delivery.md", "Compared latency (`compare.latency`)")),
    keys: &[
        key("percentile", PERCENTILE)
            .required()
            .about("Which percentile of each arm's response time is compared, e.g. 99."),
        key("maxRatio", Kind::Number(Number { words: Some("a ratio from 1 to 100"), ..number(1.0, 100.0) }))
            .required()
            .about("The canary's percentile may be at most the baseline's times this."),
        key("minIncreaseMs", whole(0.0, 3_600_000.0, Some(5.0)))
            .about("An increase smaller than this many ms is never a regression."),
    ],
    rules: &[],
};

pub const LATENCY: Object = Object {
    name: "latency",
    doc: Some(("docs/progressive-delivery.md", "Latency (`rollback.latency`)")),
    keys: &[
        key("percentile", PERCENTILE)
            .required()
            .about("Which percentile of the target's response time is judged, e.g. 99."),
        key("maxMs", whole(1.0, 3_600_000.0, None))
            .required()
            .about("The most that percentile may be, in ms."),
    ],
    rules: &[],
};

pub const PROMETHEUS: Object = Object {
    name: "prometheus",
    doc: Some((
        "docs/progressive-delivery.md",
        "### Prometheus checks and the fleet latch (`rollback.prometheus`)",
    )),
    keys: &[
        key("cluster", text(Text::Pattern(CLUSTER)))
            .required()
            .about("The Envoy cluster that reaches Prometheus's HTTP API."),
        key("every", text(Text::Duration)).default_text("10s").about("Time between polls, per proxy."),
        key("timeoutMs", whole(1.0, 60_000.0, Some(1_000.0))).about("A query's timeout."),
        key("threshold", whole(1.0, 100.0, Some(2.0))).about("Failing polls in a row that roll back."),
        key("lookback", text(Text::Duration)).default_text("1h").about("How far back the latch looks."),
        key("checks", Kind::List(&CHECKS)).about("What to judge."),
        key("latchQuery", text(Text::Pattern("\\{\\{split\\}\\}")))
            .about("The latch's PromQL; must use {{split}}."),
        key("viewQuery", text(Text::Pattern("\\{\\{beacon\\}\\}")))
            .about("The fleet view's PromQL: at least 1 when Prometheus holds this proxy's series; must use {{split}} and {{beacon}}."),
        key("blindAfter", text(Text::Duration))
            .default_text("2m")
            .about("How long the fleet view may miss this proxy before it is reported blind."),
        key("pathPrefix", text(Text::Pattern("^/")))
            .about("Where the HTTP API is served, e.g. /prometheus (Thanos, Mimir): queries go to PREFIX/api/v1/query."),
        key("headers", Kind::List(&PROMETHEUS_HEADERS))
            .about("Request headers every query carries (a tenant, a token); values are never logged."),
        key("authority", text(Text::Pattern(AUTHORITY))).about(
            "The queries' Host; default: the cluster's name if it is a host name, HOST:PORT of an Istio outbound|PORT||HOST cluster, else `prometheus`.",
        ),
    ],
    rules: &[],
};

const PROMETHEUS_HEADERS: List =
    list(Kind::Object(&HEADER), limits::PROMETHEUS_HEADERS, "headers of a Prometheus query");

pub const HEADER: Object = Object {
    name: "header",
    doc: Some(("docs/progressive-delivery.md", "A query header (`prometheus.headers[i]`)")),
    keys: &[
        key("name", text(Text::Pattern(TOKEN)))
            .required()
            .about("The header's name, e.g. X-Scope-OrgID; sent in lower case."),
        key("value", text(Text::Any)).required().about("Its value; never logged."),
    ],
    rules: &[],
};

const CHECKS: List = list(Kind::Object(&CHECK), limits::CHECKS_PER_ROLLBACK, "checks");

pub const CHECK: Object = Object {
    name: "check",
    doc: Some(("docs/progressive-delivery.md", "A check (`prometheus.checks[i]`)")),
    keys: &[
        key("name", text(Text::Pattern("^[A-Za-z0-9_.-]+$"))).required().about("Names the check; unique."),
        key("query", text(Text::NonEmpty)).required().about("PromQL returning one number."),
        key("min", Kind::Number(number(f64::NEG_INFINITY, f64::INFINITY)))
            .about("The value must not be below it."),
        key("max", Kind::Number(number(f64::NEG_INFINITY, f64::INFINITY)))
            .about("The value must not be above it."),
        key("compareTo", text(Text::Pattern("^baseline$")))
            .about("`baseline`: run the query for the target and for its baseline, and judge the difference."),
        key("maxIncrease", Kind::Number(number(0.0, f64::INFINITY)))
            .about("With compareTo: the target's value may be at most the baseline's plus this."),
        key("maxRatio", Kind::Number(Number { words: Some("a ratio of at least 1"), ..number(1.0, f64::INFINITY) }))
            .about("With compareTo: the target's value may be at most the baseline's times this."),
    ],
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
