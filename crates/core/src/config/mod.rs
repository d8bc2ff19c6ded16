//! The JSON config (docs/config.md): parsed strictly, validated
//! completely, and compiled into a [`Router`] once.
//!
//! Two passes give every error a path: `read::check` holds the document to
//! its declared shape (`shape.rs`: syntax, unknown keys, wrong kinds of
//! values, missing keys, bounds, the rules between keys), then [`compile`]
//! checks meaning and builds the matchers, reading each value through the
//! shape's typed fields (`route.get(route::NAME)`), defaults included.

pub mod error;
pub mod limits;
mod read;
mod rollback;
pub mod shape;

use error::ConfigError;

use crate::hashing::hash::{name_hash, ByNameHash};
use crate::request::Source;
use crate::rollout::settings::{Gate, OnMaxWait, Ramp, Rollback};
use crate::routing::matcher::{Condition, Test};
use crate::routing::mirror::{Mirror, MirrorBudget};
use crate::routing::route::{Action, Route, Rule};
use crate::routing::router::Router;
use crate::routing::split::{AssignCookie, Split, SplitId};
use crate::text::decimal;
use crate::text::host_pattern::HostPattern;
use crate::text::json;
use crate::text::json_scan;
use crate::text::literal_regex;
use crate::text::regex_cost;
use crate::text::time;
use read::Fields;
use shape::{
    assign_cookie, condition, config, gate, mirror, mirror_budget, ramp, route, rule, split, sticky_by,
    weight, Field, OptStr, Shaped,
};

/// regex-lite's own cap on a compiled pattern; `regex_cost::MAX_STATES`
/// is the limit that binds (the same on every platform).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Headers the filter must never overwrite: they carry the request itself.
const RESERVED_HEADERS: &[&str] =
    &["host", "cookie", "content-length", "content-type", "transfer-encoding", "connection", "te", "upgrade"];

/// Parses, validates and compiles a config document.
pub fn parse(json: &[u8]) -> Result<Router, ConfigError> {
    parse_in_parts(json.len(), |start, length| {
        json.get(start..start.saturating_add(length)).map(<[u8]>::to_vec)
    })
}

/// How much of a config a first reading asks for at a time.
const PIECE_BYTES: usize = 64 * 1024;

/// Parses, validates and compiles a config of `size` bytes that `part`
/// gives (`part(start, length)`: those bytes, fewer at the end, `None` if
/// it cannot), for a VM whose memory never shrinks: it is read in pieces
/// to find its routes (`json_scan`), then route by route, each compiled on
/// its own. The VM never holds the whole text, nor all of its values (they
/// took half the JSON's size again), and the compiled routes take the
/// memory the pieces had. A config that is not valid JSON is read whole
/// once more, for the exact error.
pub fn parse_in_parts(
    size: usize,
    mut part: impl FnMut(usize, usize) -> Option<Vec<u8>>,
) -> Result<Router, ConfigError> {
    limits::check(size, limits::CONFIG_BYTES, "bytes").map_err(|m| ConfigError::new("config", m))?;
    let top = match outline_in_pieces(size, &mut part) {
        Some(top) => top,
        None => whole_outline(size, &mut part)?,
    };
    let mut tally = Tally::default();
    let mut routes: Vec<Route> = Vec::with_capacity(top.routes.len());
    // Names seen, by hash: comparing each with every earlier one took
    // 2 million comparisons at the limits, slow in wasm.
    let mut names = ByNameHash::default();
    for (i, place) in top.routes.iter().enumerate() {
        let text = part(place.start, place.length).filter(|text| text.len() == place.length);
        // Items of the routes list are two deep.
        let document = text.as_deref().and_then(|text| json::parse_part(text, place.origin, 2).ok());
        let Some(document) = document else {
            // Not the bytes of a JSON value: the whole document's error.
            let at = format!("{}[{i}]", config::ROUTES.key.name);
            return Err(whole_outline(size, &mut part)
                .err()
                .unwrap_or_else(|| ConfigError::new(at, "could not be read a second time from the proxy")));
        };
        routes.push(read_route(&document, i, &routes, &mut names, &mut tally)?);
    }
    let mut router = Router::new(top.target_header, routes, top.mirror_budget, top.count_responses);
    router.clear_route_cache = top.clear_route_cache;
    Ok(router)
}

/// Route `i`, read on its own (`document`), checked and compiled
/// (`earlier`: the routes before it, `names` their names by hash). Not
/// inlined: V8 runs a function's first calls unoptimized and optimizes it
/// once it is hot, and the loop that calls this runs once per push.
#[inline(never)]
fn read_route(
    document: &json::Document<'_>,
    i: usize,
    earlier: &[Route],
    names: &mut ByNameHash,
    tally: &mut Tally,
) -> Result<Route, ConfigError> {
    let at = format!("{}[{i}]", config::ROUTES.key.name);
    let kind = shape::Kind::Object(&shape::ROUTE);
    read::check(document.root(), &read::At::Key(&read::At::Root, &at), &kind)?;
    let route = Fields::new(document.root(), at);
    let name = route.get(route::NAME);
    let same_hash = names.entry(name_hash(name.as_bytes())).or_default();
    if same_hash.iter().any(|&e| earlier.get(e as usize).is_some_and(|route| route.name == name)) {
        return Err(ConfigError::new(route.at(route::NAME), format!("duplicate route name `{name}`")));
    }
    same_hash.push(u32::try_from(earlier.len()).unwrap_or(u32::MAX));
    compile_route(&route, tally)
}

/// What the first reading of a config keeps: its top level compiled, and
/// where each route's bytes are (`json_scan::Item`: where they start, how
/// many, and the line and column they start at).
struct Outline {
    target_header: String,
    mirror_budget: MirrorBudget,
    count_responses: bool,
    clear_route_cache: bool,
    routes: Vec<json_scan::Item>,
}

/// The outline of the document read whole: what a config gets when its
/// pieces could not be followed, and the error of one that is not JSON.
fn whole_outline(
    size: usize,
    part: &mut impl FnMut(usize, usize) -> Option<Vec<u8>>,
) -> Result<Outline, ConfigError> {
    outline(&part(0, size).unwrap_or_default())
}

/// The outline from the document read in pieces: its routes found by
/// `json_scan`, the rest read as the skeleton the scan kept. `None` when
/// anything is amiss (the whole document then names the error).
fn outline_in_pieces(size: usize, part: &mut impl FnMut(usize, usize) -> Option<Vec<u8>>) -> Option<Outline> {
    let mut scanner = json_scan::Scanner::new(config::ROUTES.key.name);
    let mut start = 0;
    while start < size {
        let piece = part(start, PIECE_BYTES.min(size - start)).filter(|p| !p.is_empty())?;
        scanner.feed(&piece);
        start += piece.len();
    }
    let scan = scanner.finish()?;
    let mut outline = outline(&scan.skeleton).ok()?;
    if outline.routes.len() != scan.items.len() {
        return None;
    }
    outline.routes = scan.items;
    Some(outline)
}

/// Reads a whole document (or a skeleton): its syntax, its top level, its
/// routes' places. (`parse_in_parts` checked its size.)
fn outline(json: &[u8]) -> Result<Outline, ConfigError> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::new(
            "config",
            "is empty; expected a JSON object with `routes` (see docs/config.md)",
        ));
    }
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ConfigError::new("config", "must be a JSON object with `routes`"));
    }
    let document = json::parse_skimming(json, config::ROUTES.key.name)
        .map_err(|err| ConfigError::new(err.path, err.message))?;
    read::check(document.root(), &read::At::Root, &shape::Kind::Object(&shape::CONFIG))?;
    let config = Fields::<config::Of>::new(document.root(), String::new());
    let target_header = config.get(config::TARGET_HEADER);
    check_target_header(target_header).map_err(|m| ConfigError::new("targetHeader", m))?;
    let mirror_budget = match config.get(config::MIRROR_BUDGET) {
        None => MirrorBudget::default(),
        Some(budget) => MirrorBudget {
            max_bytes: budget.get(mirror_budget::MAX_BYTES) as usize,
            max_in_flight: budget.get(mirror_budget::MAX_IN_FLIGHT) as usize,
        },
    };
    let mut lines = json::Lines::new(json);
    let routes = config
        .get(config::ROUTES)
        .iter()
        .map(|route| {
            // `check` refused a route that is not a container.
            let (start, length) = route.skimmed_place().unwrap_or((0, 0));
            json_scan::Item { start, length, origin: lines.position(start) }
        })
        .collect();
    Ok(Outline {
        target_header: target_header.to_string(),
        mirror_budget,
        count_responses: config.get(config::COUNT_RESPONSES),
        clear_route_cache: config.get(config::CLEAR_ROUTE_CACHE),
        routes,
    })
}

/// Compiles each item into a vector of exactly their number. Collecting
/// `Result`s cannot know how many will succeed, so it grows the vector by
/// doubling: a rule of one condition kept room for four, about 1 MiB of
/// spare capacity in every VM at the limits.
fn compile_all<I: ExactSizeIterator, T>(
    items: I,
    mut compile: impl FnMut(I::Item) -> Result<T, ConfigError>,
) -> Result<Vec<T>, ConfigError> {
    let mut compiled = Vec::with_capacity(items.len());
    for item in items {
        compiled.push(compile(item)?);
    }
    Ok(compiled)
}

/// What the whole config holds so far, against the config-wide limits.
#[derive(Default)]
struct Tally {
    splits: usize,
    rules: usize,
    regexes: usize,
}

fn compile_route(route: &Fields<'_, route::Of>, tally: &mut Tally) -> Result<Route, ConfigError> {
    let name = route.get(route::NAME);
    if name.trim().is_empty() {
        return Err(ConfigError::new(route.at(route::NAME), "must not be empty"));
    }
    // None listed: any host (`read` refuses an empty list).
    let hosts = compile_all(route.get(route::HOSTS).iter().enumerate(), |(h, host)| {
        HostPattern::parse(host).map_err(|m| ConfigError::new(format!("{}[{h}]", route.at(route::HOSTS)), m))
    })?;
    let path_exact = route.has(route::PATH);
    let path_key = if path_exact { route::PATH } else { route::PATH_PREFIX };
    let path = route.get(path_key);
    let path_prefix = match path {
        None => None,
        Some(prefix) if prefix.starts_with('/') => Some(prefix.as_bytes().to_vec()),
        Some(prefix) => {
            return Err(ConfigError::new(route.at(path_key), format!("`{prefix}` must start with `/`")))
        }
    };
    let path_elements = route.get(route::PATH_ELEMENTS);
    // As Kubernetes reads `/foo/`: the elements `foo`, so `/foo` too.
    let path_prefix = match path_prefix {
        Some(mut p) if path_elements && p.len() > 1 && p.ends_with(b"/") => {
            while p.len() > 1 && p.ends_with(b"/") {
                p.pop();
            }
            Some(p)
        }
        other => other,
    };
    let default = route.get(route::DEFAULT);
    check_target(default).map_err(|m| ConfigError::new(route.at(route::DEFAULT), m))?;
    let raw_rules = route.get(route::RULES);
    tally.rules += raw_rules.len();
    limits::check(tally.rules, limits::RULES, "rules in all routes up to this one")
        .map_err(|m| ConfigError::new(route.at(route::RULES), m))?;
    let rules = compile_all(raw_rules.iter().enumerate(), |(r, rule)| compile_rule(rule, r, name, tally))?;
    let mirror = route.get(route::MIRROR).map(|m| compile_mirror(&m).map(Box::new)).transpose()?;
    Ok(Route {
        name: name.to_string(),
        hosts,
        path_prefix,
        path_elements,
        path_exact,
        default: default.to_string(),
        rules,
        mirror,
    })
}

fn compile_mirror(mirror: &Fields<'_, mirror::Of>) -> Result<Mirror, ConfigError> {
    let cluster = mirror.get(mirror::CLUSTER);
    check_cluster(cluster, "(Istio: outbound|PORT||HOST)")
        .map_err(|m| ConfigError::new(mirror.at(mirror::CLUSTER), m))?;
    Ok(Mirror::new(
        cluster.to_string(),
        mirror.get(mirror::PERCENT),
        mirror.get(mirror::TIMEOUT_MS) as u32,
        mirror.get(mirror::MAX_BODY_BYTES) as usize,
    ))
}

/// A cluster name: visible ASCII without spaces (`example` shows Istio's).
fn check_cluster(cluster: &str, example: &str) -> Result<(), String> {
    if cluster.is_empty() || !cluster.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("must be a cluster name: visible ASCII without spaces {example}"));
    }
    Ok(())
}

fn compile_rule(
    rule: &Fields<'_, rule::Of>,
    index: usize,
    route_name: &str,
    tally: &mut Tally,
) -> Result<Rule, ConfigError> {
    let label = match rule.get(rule::NAME) {
        Some(name) if name.trim().is_empty() => {
            return Err(ConfigError::new(rule.at(rule::NAME), "must not be empty (omit it instead)"))
        }
        Some(name) => name.to_string(),
        None => format!("rules[{index}]"),
    };
    let conditions = compile_all(rule.get(rule::MATCH).iter(), |c| compile_condition(c, tally))?;
    let action = match (rule.get(rule::TARGET), rule.get(rule::SPLIT)) {
        (Some(target), _) => {
            check_target(target).map_err(|m| ConfigError::new(rule.at(rule::TARGET), m))?;
            Action::Target(target.to_string())
        }
        (None, Some(split)) => {
            let mut split = compile_split(&split, route_name)?.with_identity(route_name, index);
            split.id = SplitId(u32::try_from(tally.splits).unwrap_or(u32::MAX));
            tally.splits += 1;
            Action::Split(Box::new(split))
        }
        // `read` made sure a rule has exactly one.
        (None, None) => return Err(ConfigError::new(rule.at.as_str(), "needs a target or a split")),
    };
    Ok(Rule { label, conditions, action })
}

fn compile_condition(
    condition: &Fields<'_, condition::Of>,
    tally: &mut Tally,
) -> Result<Condition, ConfigError> {
    let source = one_source(condition, [condition::HEADER, condition::COOKIE, condition::QUERY])?;
    let test = if let Some(v) = condition.get(condition::EXACT) {
        Test::Exact(v.as_bytes().into())
    } else if let Some(v) = condition.get(condition::PREFIX) {
        Test::Prefix(v.as_bytes().into())
    } else if let Some(pattern) = condition.get(condition::REGEX) {
        compile_regex(pattern, &condition.at(condition::REGEX), tally)?
    } else if condition.has(condition::ONE_OF) {
        Test::OneOf(condition.get(condition::ONE_OF).iter().collect())
    } else {
        // `read` made sure a condition has exactly one test: this one.
        Test::Present(condition.get(condition::PRESENT) != Some(false))
    };
    Ok(Condition { source, test, negate: condition.get(condition::NOT) })
}

fn compile_regex(pattern: &str, at: &str, tally: &mut Tally) -> Result<Test, ConfigError> {
    let regex =
        regex_lite::RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build().map_err(|err| {
            let reason = err.to_string().replace('\n', " ");
            ConfigError::new(at, format!("invalid regex `{pattern}`: {reason}"))
        })?;
    let states = regex_cost::states(pattern);
    if states > regex_cost::MAX_STATES {
        return Err(ConfigError::new(
            at,
            format!(
                "`{pattern}` is too complex: about {states} automaton states, at most {} \
                 (counted repetition such as {{8,64}} multiplies them; config reference, \"Limits\")",
                regex_cost::MAX_STATES
            ),
        ));
    }
    tally.regexes += 1;
    limits::check(tally.regexes, limits::REGEXES, "regex conditions in the config up to this one")
        .map_err(|m| ConfigError::new(at, m))?;
    Ok(match literal_regex::literals(pattern) {
        Some(literals) => Test::Literals(Box::new((literals, pattern.to_string()))),
        None => Test::Regex(Box::new((regex, states as u32))),
    })
}

fn compile_split(split: &Fields<'_, split::Of>, route_name: &str) -> Result<Split, ConfigError> {
    let weighted = compile_weights(split)?;
    let sticky_by = split
        .get(split::STICKY_BY)
        .map(|sticky| one_source(&sticky, [sticky_by::HEADER, sticky_by::COOKIE, sticky_by::QUERY]))
        .transpose()?;
    let salt = split.get(split::SALT).unwrap_or(route_name).as_bytes().to_vec();
    let rollback = split.get(split::ROLLBACK).map(|r| rollback::compile(&r, split, &weighted)).transpose()?;
    let ramp = split
        .get(split::RAMP)
        .map(|ramp| compile_ramp(&ramp, split, &weighted, rollback.as_ref()))
        .transpose()?;
    let assign = split
        .get(split::ASSIGN_COOKIE)
        .map(|cookie| compile_assign_cookie(&cookie, split, &weighted))
        .transpose()?;
    let mut compiled = Split::new(weighted, sticky_by, salt);
    if let Some(ramp) = ramp {
        compiled = compiled.with_ramp(ramp);
    }
    if let Some(assign) = assign {
        compiled = compiled.with_assign_cookie(assign);
    }
    if let Some(rollback) = rollback {
        compiled = compiled.with_rollback(rollback);
    }
    Ok(compiled)
}

/// The split's targets and weights: each target once, the sum finite and > 0.
fn compile_weights(split: &Fields<'_, split::Of>) -> Result<Vec<(String, f64)>, ConfigError> {
    let weights = split.get(split::WEIGHTS);
    let mut weighted: Vec<(String, f64)> = Vec::with_capacity(weights.len());
    for weight in &weights {
        let target = weight.get(weight::TARGET);
        check_target(target).map_err(|m| ConfigError::new(weight.at(weight::TARGET), m))?;
        if weighted.iter().any(|(t, _)| t == target) {
            return Err(ConfigError::new(
                weight.at(weight::TARGET),
                format!("`{target}` is listed twice; give each target one weight"),
            ));
        }
        weighted.push((target.to_string(), weight.get(weight::WEIGHT)));
    }
    let sum = weighted.iter().map(|(_, w)| w).sum::<f64>();
    if sum <= 0.0 {
        return Err(ConfigError::new(split.at(split::WEIGHTS), "sum must be > 0"));
    }
    if !sum.is_finite() {
        return Err(ConfigError::new(split.at(split::WEIGHTS), "sum is too large to divide"));
    }
    Ok(weighted)
}

/// A ramp: its start, step length, steps and gate.
fn compile_ramp(
    ramp: &Fields<'_, ramp::Of>,
    split: &Fields<'_, split::Of>,
    weighted: &[(String, f64)],
    rollback: Option<&Rollback>,
) -> Result<Ramp, ConfigError> {
    let target = ramp.get(ramp::TARGET);
    if weighted.first().map(|(t, _)| t.as_str()) != Some(target) {
        return Err(ConfigError::new(
            ramp.at(ramp::TARGET),
            format!(
                "`{target}` must be the split's first target, so that each step only moves users onto it"
            ),
        ));
    }
    let start =
        time::parse_rfc3339(ramp.get(ramp::START)).map_err(|m| ConfigError::new(ramp.at(ramp::START), m))?;
    let every =
        time::parse_duration(ramp.get(ramp::EVERY)).map_err(|m| ConfigError::new(ramp.at(ramp::EVERY), m))?;
    if every == 0 {
        return Err(ConfigError::new(ramp.at(ramp::EVERY), "must be longer than 0"));
    }
    let steps = ramp.get(ramp::STEPS);
    for (i, pair) in steps.windows(2).enumerate() {
        if pair[1] < pair[0] {
            return Err(ConfigError::new(
                format!("{}[{}]", ramp.at(ramp::STEPS), i + 1),
                format!(
                    "{} is below the step before it: a ramp only goes up (roll back with `rollback` or a config change)",
                    decimal::format(pair[1])
                ),
            ));
        }
    }
    let others_weigh = weighted.iter().any(|(t, w)| t != target && *w > 0.0);
    if steps.iter().any(|s| *s < 100.0) && !others_weigh {
        return Err(ConfigError::new(
            split.at(split::WEIGHTS),
            "the targets after the ramped one need weight to share the rest of the traffic",
        ));
    }
    let gate = ramp.get(ramp::GATE).map(|gate| compile_gate(&gate, every, target, rollback)).transpose()?;
    let hold = ramp.get(ramp::HOLD);
    if hold && gate.is_none() {
        return Err(ConfigError::new(
            ramp.at(ramp::HOLD),
            "pauses a gated ramp; a ramp by the clock is wherever the clock puts it, with nothing to freeze \
             (gate it, or move `start`)",
        ));
    }
    if gate.is_some() {
        // Every step but the last is judged on the canary's responses.
        let judged = &steps[..steps.len().saturating_sub(1)];
        if let Some(i) = judged.iter().position(|s| *s <= 0.0) {
            return Err(ConfigError::new(
                format!("{}[{i}]", ramp.at(ramp::STEPS)),
                format!(
                    "a gated step at 0% can never be earned: {target} gets no requests there, so nothing judges it; \
                     start above 0 (or leave the ramp ungated)"
                ),
            ));
        }
    }
    Ok(Ramp { target: target.to_string(), start_ms: start, every_ms: every, steps, gate, hold })
}

/// A gate judges each step with the split's rollback: its local window
/// (responses since the step began, errors, latency) and its Prometheus
/// checks.
fn compile_gate(
    gate: &Fields<'_, gate::Of>,
    every_ms: u64,
    target: &str,
    rollback: Option<&Rollback>,
) -> Result<Gate, ConfigError> {
    let Some(rollback) = rollback.filter(|r| r.target == target) else {
        return Err(ConfigError::new(
            gate.at.as_str(),
            format!("needs the split's `rollback` of `{target}`: it is what judges each step"),
        ));
    };
    let min_requests = match (gate.get(gate::MIN_REQUESTS), &rollback.window) {
        (Some(n), Some(_)) => n as u64,
        (None, Some(window)) => window.min_requests,
        (Some(_), None) => return Err(ConfigError::new(
            gate.at(gate::MIN_REQUESTS),
            "counts the rollback's local window, and it has none (`maxErrorRate`, `minRequests`, `window`)",
        )),
        (None, None) => 0,
    };
    let max_wait_ms = match gate.get(gate::MAX_WAIT) {
        None => None,
        Some(text) => {
            let ms = time::parse_duration(text).map_err(|m| ConfigError::new(gate.at(gate::MAX_WAIT), m))?;
            if ms < every_ms {
                return Err(ConfigError::new(
                    gate.at(gate::MAX_WAIT),
                    format!("must be at least the ramp's `every` ({every_ms} ms): a step lasts that long at least"),
                ));
            }
            Some(ms)
        }
    };
    let on_max_wait = match gate.get(gate::ON_MAX_WAIT) {
        "hold" => OnMaxWait::Hold,
        "rollback" => OnMaxWait::Rollback,
        other => {
            return Err(ConfigError::new(
                gate.at(gate::ON_MAX_WAIT),
                format!("`{other}` is not `hold` or `rollback`"),
            ))
        }
    };
    Ok(Gate { min_requests, max_wait_ms, on_max_wait })
}

fn compile_assign_cookie(
    cookie: &Fields<'_, assign_cookie::Of>,
    split: &Fields<'_, split::Of>,
    weighted: &[(String, f64)],
) -> Result<AssignCookie, ConfigError> {
    let name = cookie.get(assign_cookie::NAME);
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(ConfigError::new(
            cookie.at(assign_cookie::NAME),
            format!("`{name}` is not a valid cookie name"),
        ));
    }
    let path = cookie.get(assign_cookie::PATH);
    if let Some(path) = path {
        if !path.starts_with('/') || path.bytes().any(|b| b == b';' || !b.is_ascii_graphic()) {
            return Err(ConfigError::new(
                cookie.at(assign_cookie::PATH),
                format!("`{path}` must start with `/` and hold no `;` or spaces"),
            ));
        }
    }
    if let Some((t, _)) =
        weighted.iter().find(|(t, _)| t.bytes().any(|b| matches!(b, b';' | b',' | b'"' | b'\\')))
    {
        return Err(ConfigError::new(
            split.at(split::WEIGHTS),
            format!("target `{t}` cannot be a cookie value (no `;`, `,`, `\"` or `\\`)"),
        ));
    }
    let secure = cookie.get(assign_cookie::SECURE);
    let same_site = match cookie.get(assign_cookie::SAME_SITE) {
        None => None,
        Some("Strict") => Some("Strict"),
        Some("Lax") => Some("Lax"),
        Some("None") if secure => Some("None"),
        Some("None") => {
            return Err(ConfigError::new(
                cookie.at(assign_cookie::SAME_SITE),
                "`None` needs `secure: true`: browsers drop a SameSite=None cookie that is not Secure",
            ))
        }
        Some(other) => {
            return Err(ConfigError::new(
                cookie.at(assign_cookie::SAME_SITE),
                format!("`{other}` is not `Strict`, `Lax` or `None`"),
            ))
        }
    };
    Ok(AssignCookie {
        name: name.to_string(),
        max_age: cookie.get(assign_cookie::MAX_AGE).map(|v| v as u64),
        path: path.map(str::to_string),
        secure,
        http_only: cookie.get(assign_cookie::HTTP_ONLY),
        same_site,
    })
}

/// The one source of a condition or a `stickyBy`: its `header`, `cookie`
/// and `query` fields, in that order (`read` made sure exactly one is
/// given).
fn one_source<O: Shaped>(fields: &Fields<'_, O>, keys: [Field<O, OptStr>; 3]) -> Result<Source, ConfigError> {
    source_of(keys.map(|key| (fields.get(key), key.key.name)), &fields.at)
}

/// The source given, its key checked: each of `header`, `cookie` and
/// `query` with its key's name, and where the object is. Header names are
/// stored lower-case.
fn source_of(given: [(Option<&str>, &str); 3], at: &str) -> Result<Source, ConfigError> {
    let (name, kind) =
        given.into_iter().find_map(|(name, kind)| Some((name?, kind))).unwrap_or(("", "header"));
    let at = error::key(at, kind);
    if name.is_empty() {
        return Err(ConfigError::new(at, "must not be empty"));
    }
    match kind {
        "header" => {
            let token = name.strip_prefix(':').unwrap_or(name);
            if token.is_empty() || !token.bytes().all(is_token_byte) {
                return Err(ConfigError::new(at, format!("`{name}` is not a valid header name")));
            }
            Ok(Source::Header(name.to_ascii_lowercase().into_bytes()))
        }
        "cookie" => Ok(Source::Cookie(name.as_bytes().to_vec())),
        _ => Ok(Source::Query(name.as_bytes().to_vec())),
    }
}

/// A target goes into a header value and names an Envoy cluster or an Istio
/// subset: visible ASCII, no spaces.
fn check_target(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("must not be empty".into());
    }
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "`{target}` must be visible ASCII without spaces (it is sent as a header value)"
        ));
    }
    Ok(())
}

fn check_target_header(name: &str) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(format!("`{name}` is not a valid header name"));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("`{name}` must be lower-case (HTTP/2 and Envoy header names are)"));
    }
    if RESERVED_HEADERS.contains(&name) {
        return Err(format!("`{name}` carries the request itself and cannot be the target header"));
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
