//! The JSON config (docs/config.md): parsed strictly, validated
//! completely, and compiled into a [`Router`] once.
//!
//! Two passes give every error a path: `raw` reads the document's shape
//! (syntax, unknown keys, wrong kinds of values, missing keys), then
//! [`compile`] checks meaning and builds the matchers.

mod raw;
mod rollback;

use crate::decimal;
use crate::error::ConfigError;
use crate::host_pattern::HostPattern;
use crate::json;
use crate::limits;
use crate::literal_regex;
use crate::matcher::{Condition, Test};
use crate::mirror::{Mirror, MirrorBudget, DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT_MS, MAX_BODY_BYTES};
use crate::regex_cost;
use crate::request::Source;
use crate::route::{Action, Route, Rule};
use crate::router::Router;
use crate::split::{AssignCookie, Split, SplitId};
use crate::time;
pub use raw::*;

pub const DEFAULT_TARGET_HEADER: &str = "x-route-target";

/// regex-lite's own cap on a compiled pattern; `regex_cost::MAX_STATES`
/// is the limit that binds (the same on every platform).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Headers the filter must never overwrite: they carry the request itself.
const RESERVED_HEADERS: &[&str] =
    &["host", "cookie", "content-length", "content-type", "transfer-encoding", "connection", "te", "upgrade"];

/// Parses, validates and compiles a config document.
pub fn parse(json: &[u8]) -> Result<Router, ConfigError> {
    limits::check(json.len(), limits::CONFIG_BYTES, "bytes").map_err(|m| ConfigError::new("config", m))?;
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::new(
            "config",
            "is empty; expected a JSON object with `routes` (see docs/config.md)",
        ));
    }
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ConfigError::new("config", "must be a JSON object with `routes`"));
    }
    let document = json::parse(json).map_err(|err| ConfigError::new(err.path, err.message))?;
    let raw = RawConfig::read(&document)?;
    compile(raw)
}

/// Validates a parsed config and builds the router.
pub fn compile(raw: RawConfig) -> Result<Router, ConfigError> {
    let target_header = match raw.target_header {
        Some(name) => {
            check_target_header(&name).map_err(|m| ConfigError::new("targetHeader", m))?;
            name
        }
        None => DEFAULT_TARGET_HEADER.to_string(),
    };
    if raw.routes.is_empty() {
        return Err(ConfigError::new("routes", "must list at least one route"));
    }
    limits::check(raw.routes.len(), limits::ROUTES, "routes").map_err(|m| ConfigError::new("routes", m))?;
    let mirror_budget = match raw.mirror_budget {
        None => MirrorBudget::default(),
        Some(budget) => compile_mirror_budget(budget)?,
    };
    let mut tally = Tally::default();
    let mut routes: Vec<Route> = Vec::with_capacity(raw.routes.len());
    for (i, route) in raw.routes.into_iter().enumerate() {
        let at = format!("routes[{i}]");
        // At most 2,000 routes: comparing with each earlier one is cheap,
        // and keeps a hash set's code out of the .wasm.
        if routes.iter().any(|earlier| earlier.name == route.name) {
            return Err(ConfigError::new(
                crate::error::key(&at, "name"),
                format!("duplicate route name `{}`", route.name),
            ));
        }
        routes.push(compile_route(route, &at, &mut tally)?);
    }
    Ok(Router::new(target_header, routes, mirror_budget, raw.count_responses.unwrap_or(false)))
}

/// What the whole config holds so far, against the config-wide limits.
#[derive(Default)]
struct Tally {
    splits: usize,
    rules: usize,
    regexes: usize,
}

fn compile_mirror_budget(raw: RawMirrorBudget) -> Result<MirrorBudget, ConfigError> {
    let defaults = MirrorBudget::default();
    let max_bytes = whole(raw.max_bytes, 0.0, 256.0 * 1024.0 * 1024.0, "mirrorBudget.maxBytes")?
        .map_or(defaults.max_bytes, |v| v as usize);
    let max_in_flight = whole(raw.max_in_flight, 0.0, 4096.0, "mirrorBudget.maxInFlight")?
        .map_or(defaults.max_in_flight, |v| v as usize);
    Ok(MirrorBudget { max_bytes, max_in_flight })
}

fn compile_route(raw: RawRoute, at: &str, tally: &mut Tally) -> Result<Route, ConfigError> {
    if raw.name.trim().is_empty() {
        return Err(ConfigError::new(crate::error::key(at, "name"), "must not be empty"));
    }
    let hosts = match raw.hosts {
        None => Vec::new(),
        Some(hosts) if hosts.is_empty() => {
            return Err(ConfigError::new(
                crate::error::key(at, "hosts"),
                "must not be empty (omit `hosts` to match any host)",
            ))
        }
        Some(hosts) => {
            limits::check(hosts.len(), limits::HOSTS_PER_ROUTE, "hosts")
                .map_err(|m| ConfigError::new(crate::error::key(at, "hosts"), m))?;
            hosts
                .iter()
                .enumerate()
                .map(|(h, host)| {
                    HostPattern::parse(host).map_err(|m| ConfigError::new(format!("{at}.hosts[{h}]"), m))
                })
                .collect::<Result<_, _>>()?
        }
    };
    let path_prefix = match raw.path_prefix {
        None => None,
        Some(prefix) if prefix.starts_with('/') => Some(prefix.into_bytes()),
        Some(prefix) => {
            return Err(ConfigError::new(
                crate::error::key(at, "pathPrefix"),
                format!("`{prefix}` must start with `/`"),
            ))
        }
    };
    check_target(&raw.default).map_err(|m| ConfigError::new(crate::error::key(at, "default"), m))?;
    let raw_rules = raw.rules.unwrap_or_default();
    limits::check(raw_rules.len(), limits::RULES_PER_ROUTE, "rules in this route")
        .map_err(|m| ConfigError::new(crate::error::key(at, "rules"), m))?;
    tally.rules += raw_rules.len();
    limits::check(tally.rules, limits::RULES, "rules in all routes up to this one")
        .map_err(|m| ConfigError::new(crate::error::key(at, "rules"), m))?;
    let rules = raw_rules
        .into_iter()
        .enumerate()
        .map(|(r, rule)| compile_rule(rule, &format!("{at}.rules[{r}]"), r, &raw.name, tally))
        .collect::<Result<_, _>>()?;
    let mirror = raw.mirror.map(|m| compile_mirror(m, &crate::error::key(at, "mirror"))).transpose()?;
    Ok(Route { name: raw.name, hosts, path_prefix, default: raw.default, rules, mirror })
}

fn compile_mirror(raw: RawMirror, at: &str) -> Result<Mirror, ConfigError> {
    if raw.cluster.is_empty() || !raw.cluster.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            crate::error::key(at, "cluster"),
            "must be a cluster name: visible ASCII without spaces (Istio: outbound|PORT||HOST)",
        ));
    }
    if !(0.0..=100.0).contains(&raw.percent) {
        return Err(ConfigError::new(
            crate::error::key(at, "percent"),
            format!("must be between 0 and 100, got {}", decimal::format(raw.percent)),
        ));
    }
    let timeout_ms = whole(raw.timeout_ms, 1.0, 3_600_000.0, &crate::error::key(at, "timeoutMs"))?
        .map_or(DEFAULT_TIMEOUT_MS, |ms| ms as u32);
    let max_body_bytes =
        whole(raw.max_body_bytes, 0.0, MAX_BODY_BYTES as f64, &crate::error::key(at, "maxBodyBytes"))?
            .map_or(DEFAULT_MAX_BODY_BYTES, |bytes| bytes as usize);
    Ok(Mirror::new(raw.cluster, raw.percent, timeout_ms, max_body_bytes))
}

/// An optional whole number within bounds (given as f64, as Istio sends it).
fn whole(value: Option<f64>, min: f64, max: f64, at: &str) -> Result<Option<f64>, ConfigError> {
    match value {
        Some(v) if v.fract() != 0.0 || v < min || v > max => Err(ConfigError::new(
            at,
            format!(
                "must be a whole number from {} to {}, got {}",
                decimal::format(min),
                decimal::format(max),
                decimal::format(v)
            ),
        )),
        other => Ok(other),
    }
}

fn compile_rule(
    raw: RawRule,
    at: &str,
    index: usize,
    route_name: &str,
    tally: &mut Tally,
) -> Result<Rule, ConfigError> {
    let label = match raw.name {
        Some(name) if name.trim().is_empty() => {
            return Err(ConfigError::new(
                crate::error::key(at, "name"),
                "must not be empty (omit it instead)",
            ))
        }
        Some(name) => name,
        None => format!("rules[{index}]"),
    };
    let raw_conditions = raw.conditions.unwrap_or_default();
    limits::check(raw_conditions.len(), limits::CONDITIONS_PER_RULE, "conditions")
        .map_err(|m| ConfigError::new(crate::error::key(at, "match"), m))?;
    let conditions = raw_conditions
        .into_iter()
        .enumerate()
        .map(|(c, cond)| compile_condition(cond, &format!("{at}.match[{c}]"), tally))
        .collect::<Result<_, _>>()?;
    let action = match (raw.target, raw.split) {
        (Some(target), None) => {
            check_target(&target).map_err(|m| ConfigError::new(crate::error::key(at, "target"), m))?;
            Action::Target(target)
        }
        (None, Some(split)) => {
            let mut split = compile_split(split, &crate::error::key(at, "split"), route_name)?
                .with_identity(route_name, index);
            split.id = SplitId(u32::try_from(tally.splits).unwrap_or(u32::MAX));
            tally.splits += 1;
            Action::Split(Box::new(split))
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(at, "has both `target` and `split`; a rule needs exactly one"))
        }
        (None, None) => return Err(ConfigError::new(at, "needs exactly one of `target` or `split`")),
    };
    Ok(Rule { label, conditions, action })
}

fn compile_condition(raw: RawCondition, at: &str, tally: &mut Tally) -> Result<Condition, ConfigError> {
    let source = one_source(raw.header, raw.cookie, raw.query, at)?;

    let mut tests: Vec<(&str, Test)> = Vec::new();
    if let Some(v) = raw.exact {
        tests.push(("exact", Test::Exact(v.into_bytes())));
    }
    if let Some(v) = raw.prefix {
        tests.push(("prefix", Test::Prefix(v.into_bytes())));
    }
    if let Some(pattern) = raw.regex {
        let regex =
            regex_lite::RegexBuilder::new(&pattern).size_limit(REGEX_SIZE_LIMIT).build().map_err(|err| {
                let reason = err.to_string().replace('\n', " ");
                ConfigError::new(
                    crate::error::key(at, "regex"),
                    format!("invalid regex `{pattern}`: {reason}"),
                )
            })?;
        let states = regex_cost::states(&pattern);
        if states > regex_cost::MAX_STATES {
            return Err(ConfigError::new(
                crate::error::key(at, "regex"),
                format!(
                    "`{pattern}` is too complex: about {states} automaton states, at most {} \
                     (counted repetition such as {{8,64}} multiplies them; config reference, \"Limits\")",
                    regex_cost::MAX_STATES
                ),
            ));
        }
        tally.regexes += 1;
        limits::check(tally.regexes, limits::REGEXES, "regex conditions in the config up to this one")
            .map_err(|m| ConfigError::new(crate::error::key(at, "regex"), m))?;
        let test = match literal_regex::literals(&pattern) {
            Some(literals) => Test::Literals { literals, pattern },
            None => Test::Regex { regex, states: states as u32 },
        };
        tests.push(("regex", test));
    }
    if let Some(options) = raw.one_of {
        if options.is_empty() {
            return Err(ConfigError::new(crate::error::key(at, "oneOf"), "must list at least one value"));
        }
        limits::check(options.len(), limits::ONE_OF_VALUES, "values")
            .map_err(|m| ConfigError::new(crate::error::key(at, "oneOf"), m))?;
        tests.push(("oneOf", Test::OneOf(options.into_iter().map(String::into_bytes).collect())));
    }
    if let Some(present) = raw.present {
        tests.push(("present", Test::Present(present)));
    }
    let (_, test) = exactly_one(tests, at, "a test", "`exact`, `prefix`, `regex`, `oneOf` or `present`")?;
    Ok(Condition { source, test, negate: raw.not.unwrap_or(false) })
}

fn compile_split(raw: RawSplit, at: &str, route_name: &str) -> Result<Split, ConfigError> {
    if raw.weights.is_empty() {
        return Err(ConfigError::new(crate::error::key(at, "weights"), "must list at least one target"));
    }
    limits::check(raw.weights.len(), limits::TARGETS_PER_SPLIT, "targets")
        .map_err(|m| ConfigError::new(crate::error::key(at, "weights"), m))?;
    let mut weighted: Vec<(String, f64)> = Vec::with_capacity(raw.weights.len());
    for (w, weight) in raw.weights.into_iter().enumerate() {
        let here = format!("{at}.weights[{w}]");
        check_target(&weight.target).map_err(|m| ConfigError::new(crate::error::key(&here, "target"), m))?;
        if weighted.iter().any(|(target, _)| *target == weight.target) {
            return Err(ConfigError::new(
                crate::error::key(&here, "target"),
                format!("`{}` is listed twice; give each target one weight", weight.target),
            ));
        }
        if !weight.weight.is_finite() || weight.weight < 0.0 {
            return Err(ConfigError::new(
                crate::error::key(&here, "weight"),
                format!("must be a non-negative number, got {}", decimal::format(weight.weight)),
            ));
        }
        weighted.push((weight.target, weight.weight));
    }
    let sum = weighted.iter().map(|(_, w)| w).sum::<f64>();
    if sum <= 0.0 {
        return Err(ConfigError::new(crate::error::key(at, "weights"), "sum must be > 0"));
    }
    if !sum.is_finite() {
        return Err(ConfigError::new(crate::error::key(at, "weights"), "sum is too large to divide"));
    }
    let sticky_by = match raw.sticky_by {
        None => None,
        Some(sticky) => {
            Some(one_source(sticky.header, sticky.cookie, sticky.query, &crate::error::key(at, "stickyBy"))?)
        }
    };
    let salt = raw.salt.unwrap_or_else(|| route_name.to_string()).into_bytes();
    let others_weigh = |except: &str| weighted.iter().any(|(t, w)| t != except && *w > 0.0);
    let ramp = match raw.ramp {
        None => None,
        Some(ramp) => {
            let here = crate::error::key(at, "ramp");
            if weighted.first().map(|(t, _)| t.as_str()) != Some(ramp.target.as_str()) {
                return Err(ConfigError::new(
                    crate::error::key(&here, "target"),
                    format!(
                        "`{}` must be the split's first target, so that each step only moves users onto it",
                        ramp.target
                    ),
                ));
            }
            let start = time::parse_rfc3339(&ramp.start)
                .map_err(|m| ConfigError::new(crate::error::key(&here, "start"), m))?;
            let every = time::parse_duration(&ramp.every)
                .map_err(|m| ConfigError::new(crate::error::key(&here, "every"), m))?;
            if every == 0 {
                return Err(ConfigError::new(crate::error::key(&here, "every"), "must be longer than 0"));
            }
            if ramp.steps.is_empty() {
                return Err(ConfigError::new(
                    crate::error::key(&here, "steps"),
                    "must list at least one step",
                ));
            }
            limits::check(ramp.steps.len(), limits::RAMP_STEPS, "steps")
                .map_err(|m| ConfigError::new(crate::error::key(&here, "steps"), m))?;
            for (i, step) in ramp.steps.iter().enumerate() {
                if !(0.0..=100.0).contains(step) {
                    return Err(ConfigError::new(
                        format!("{here}.steps[{i}]"),
                        format!("must be a percentage from 0 to 100, got {}", decimal::format(*step)),
                    ));
                }
                if i > 0 && *step < ramp.steps[i - 1] {
                    return Err(ConfigError::new(
                        format!("{here}.steps[{i}]"),
                        format!(
                            "{} is below the step before it: a ramp only goes up (roll back with `rollback` or a config change)",
                            decimal::format(*step)
                        ),
                    ));
                }
            }
            if ramp.steps.iter().any(|s| *s < 100.0) && !others_weigh(&ramp.target) {
                return Err(ConfigError::new(
                    crate::error::key(at, "weights"),
                    "the targets after the ramped one need weight to share the rest of the traffic",
                ));
            }
            Some((start, every, ramp.steps))
        }
    };
    let assign = match raw.assign_cookie {
        None => None,
        Some(cookie) => {
            let here = crate::error::key(at, "assignCookie");
            if cookie.name.is_empty() || !cookie.name.bytes().all(is_token_byte) {
                return Err(ConfigError::new(
                    crate::error::key(&here, "name"),
                    format!("`{}` is not a valid cookie name", cookie.name),
                ));
            }
            let max_age =
                whole(cookie.max_age, 0.0, 1e12, &crate::error::key(&here, "maxAge"))?.map(|v| v as u64);
            if let Some(path) = &cookie.path {
                if !path.starts_with('/') || path.bytes().any(|b| b == b';' || !b.is_ascii_graphic()) {
                    return Err(ConfigError::new(
                        crate::error::key(&here, "path"),
                        format!("`{path}` must start with `/` and hold no `;` or spaces"),
                    ));
                }
            }
            if let Some((t, _)) =
                weighted.iter().find(|(t, _)| t.bytes().any(|b| matches!(b, b';' | b',' | b'"' | b'\\')))
            {
                return Err(ConfigError::new(
                    crate::error::key(at, "weights"),
                    format!("target `{t}` cannot be a cookie value (no `;`, `,`, `\"` or `\\`)"),
                ));
            }
            Some(AssignCookie {
                name: cookie.name,
                max_age,
                path: cookie.path,
                secure: cookie.secure.unwrap_or(false),
                http_only: cookie.http_only.unwrap_or(false),
            })
        }
    };
    let rollback = raw.rollback.map(|r| rollback::compile(r, at, &weighted)).transpose()?;
    let mut split = Split::new(weighted, sticky_by, salt);
    if let Some((start, every, steps)) = ramp {
        split = split.with_ramp(start, every, steps);
    }
    if let Some(assign) = assign {
        split = split.with_assign_cookie(assign);
    }
    if let Some(rollback) = rollback {
        split = split.with_rollback(rollback);
    }
    Ok(split)
}

/// Exactly one of `header`, `cookie` and `query` (a condition's or a
/// `stickyBy`'s), checked and compiled.
fn one_source(
    header: Option<String>,
    cookie: Option<String>,
    query: Option<String>,
    at: &str,
) -> Result<Source, ConfigError> {
    let sources: Vec<(&str, Source)> =
        [header.map(|n| ("header", n)), cookie.map(|n| ("cookie", n)), query.map(|n| ("query", n))]
            .into_iter()
            .flatten()
            .map(|(kind, name)| -> Result<_, ConfigError> { Ok((kind, source(kind, name, at)?)) })
            .collect::<Result<_, _>>()?;
    Ok(exactly_one(sources, at, "a source", "`header`, `cookie` or `query`")?.1)
}

/// Builds a source, checking its key. Header names are stored lower-case.
fn source(kind: &str, name: String, at: &str) -> Result<Source, ConfigError> {
    let here = format!("{at}.{kind}");
    if name.is_empty() {
        return Err(ConfigError::new(here, "must not be empty"));
    }
    match kind {
        "header" => {
            let token = name.strip_prefix(':').unwrap_or(&name);
            if token.is_empty() || !token.bytes().all(is_token_byte) {
                return Err(ConfigError::new(here, format!("`{name}` is not a valid header name")));
            }
            Ok(Source::Header(name.to_ascii_lowercase().into_bytes()))
        }
        "cookie" => Ok(Source::Cookie(name.into_bytes())),
        _ => Ok(Source::Query(name.into_bytes())),
    }
}

/// Exactly one of the named alternatives must be given.
fn exactly_one<T>(
    mut found: Vec<(&str, T)>,
    at: &str,
    what: &str,
    options: &str,
) -> Result<(String, T), ConfigError> {
    match found.len() {
        1 => {
            let (key, value) = found.remove(0);
            Ok((key.to_string(), value))
        }
        0 => Err(ConfigError::new(at, format!("needs {what}: one of {options}"))),
        _ => {
            let keys: Vec<String> = found.iter().map(|(k, _)| format!("`{k}`")).collect();
            Err(ConfigError::new(at, format!("takes exactly one of {options}, found {}", keys.join(" and "))))
        }
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
