//! The config document's shape: every object the config reference
//! describes, read from the JSON tree with its exact keys. A key the
//! reference does not list is an error (a typo must never be ignored), as
//! is a value of the wrong kind or a required key left out; each error names
//! its place (`routes[1].rules[0].split.weights[0].weight`) and its line and
//! column. Meaning (ranges, references, limits) is checked by `compile`.

use crate::error::{self, ConfigError};
use crate::json::{Position, Spanned, Value};

pub struct RawConfig {
    pub target_header: Option<String>,
    pub routes: Vec<RawRoute>,
    pub mirror_budget: Option<RawMirrorBudget>,
    pub count_responses: Option<bool>,
}

pub struct RawMirrorBudget {
    pub max_bytes: Option<f64>,
    pub max_in_flight: Option<f64>,
}

pub struct RawRoute {
    pub name: String,
    pub hosts: Option<Vec<String>>,
    pub path_prefix: Option<String>,
    pub default: String,
    pub rules: Option<Vec<RawRule>>,
    pub mirror: Option<RawMirror>,
}

pub struct RawMirror {
    pub cluster: String,
    pub percent: f64,
    /// Numbers are f64 throughout: Istio's pluginConfig delivers `1000.0`.
    pub timeout_ms: Option<f64>,
    pub max_body_bytes: Option<f64>,
}

pub struct RawRule {
    pub name: Option<String>,
    pub conditions: Option<Vec<RawCondition>>,
    pub target: Option<String>,
    pub split: Option<RawSplit>,
}

pub struct RawCondition {
    pub header: Option<String>,
    pub cookie: Option<String>,
    pub query: Option<String>,
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub regex: Option<String>,
    pub one_of: Option<Vec<String>>,
    pub present: Option<bool>,
    pub not: Option<bool>,
}

pub struct RawSplit {
    pub weights: Vec<RawWeight>,
    pub sticky_by: Option<RawSticky>,
    pub salt: Option<String>,
    pub ramp: Option<RawRamp>,
    pub assign_cookie: Option<RawAssignCookie>,
    pub rollback: Option<RawRollback>,
}

pub struct RawRamp {
    pub target: String,
    pub start: String,
    pub every: String,
    pub steps: Vec<f64>,
}

pub struct RawAssignCookie {
    pub name: String,
    pub max_age: Option<f64>,
    pub path: Option<String>,
    pub secure: Option<bool>,
    pub http_only: Option<bool>,
}

pub struct RawRollback {
    pub target: String,
    pub max_error_rate: Option<f64>,
    pub min_requests: Option<f64>,
    pub window: Option<String>,
    pub prometheus: Option<RawPrometheus>,
}

pub struct RawPrometheus {
    pub cluster: String,
    pub every: Option<String>,
    pub timeout_ms: Option<f64>,
    pub threshold: Option<f64>,
    pub lookback: Option<String>,
    pub checks: Option<Vec<RawCheck>>,
    pub latch_query: Option<String>,
}

pub struct RawCheck {
    pub name: String,
    pub query: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

pub struct RawWeight {
    pub target: String,
    pub weight: f64,
}

pub struct RawSticky {
    pub header: Option<String>,
    pub cookie: Option<String>,
    pub query: Option<String>,
}

/// `config` for the document itself.
fn place(at: &str) -> &str {
    if at.is_empty() {
        "config"
    } else {
        at
    }
}

fn wrong_kind(at: &str, want: &str, got: &Spanned) -> ConfigError {
    ConfigError::new(place(at), format!("expected {want}, got {} at {}", got.value.kind(), got.at))
}

/// A JSON object read as one of the config's objects.
struct Fields<'a> {
    entries: &'a [(Spanned<String>, Spanned)],
    at: &'a str,
    position: Position,
}

impl<'a> Fields<'a> {
    /// The object at `at`, refusing any key not in `known`.
    fn of(value: &'a Spanned, at: &'a str, known: &[&str]) -> Result<Self, ConfigError> {
        let Value::Object(entries) = &value.value else { return Err(wrong_kind(at, "an object", value)) };
        if let Some((key, _)) = entries.iter().find(|(key, _)| !known.contains(&key.value.as_str())) {
            let expected = match known {
                [] => "there are no fields".to_string(),
                [one] => format!("expected `{one}`"),
                [a, b] => format!("expected `{a}` or `{b}`"),
                many => format!(
                    "expected one of {}",
                    many.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ),
            };
            return Err(ConfigError::new(
                error::key(at, &key.value),
                format!("unknown field `{}`, {expected} at {}", key.value, key.at),
            ));
        }
        Ok(Fields { entries, at, position: value.at })
    }

    /// A key's value, `None` when absent or `null`.
    fn get(&self, key: &str) -> Option<&'a Spanned> {
        self.entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v).filter(|v| v.value != Value::Null)
    }

    fn required<T>(&self, key: &str, value: Option<T>) -> Result<T, ConfigError> {
        value.ok_or_else(|| {
            ConfigError::new(place(self.at), format!("missing field `{key}` at {}", self.position))
        })
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        self.get(key).map(|v| string(v, &error::key(self.at, key))).transpose()
    }

    fn number(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        self.get(key).map(|v| number(v, &error::key(self.at, key))).transpose()
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.get(key)
            .map(|v| match v.value {
                Value::Bool(b) => Ok(b),
                _ => Err(wrong_kind(&error::key(self.at, key), "true or false", v)),
            })
            .transpose()
    }

    /// A list, each item read by `item` with its own path (`key[i]`).
    fn list<T>(
        &self,
        key: &str,
        item: impl Fn(&Spanned, &str) -> Result<T, ConfigError>,
    ) -> Result<Option<Vec<T>>, ConfigError> {
        let Some(value) = self.get(key) else { return Ok(None) };
        let at = error::key(self.at, key);
        let Value::Array(items) = &value.value else { return Err(wrong_kind(&at, "a list", value)) };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| item(v, &format!("{at}[{i}]")))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// A nested object, read by `read` with its own path.
    fn object<T>(
        &self,
        key: &str,
        read: impl Fn(&Spanned, &str) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        self.get(key).map(|v| read(v, &error::key(self.at, key))).transpose()
    }
}

fn string(value: &Spanned, at: &str) -> Result<String, ConfigError> {
    match &value.value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(wrong_kind(at, "a string", value)),
    }
}

fn number(value: &Spanned, at: &str) -> Result<f64, ConfigError> {
    match value.value {
        Value::Number(_, n) => Ok(n),
        _ => Err(wrong_kind(at, "a number", value)),
    }
}

impl RawConfig {
    pub fn read(value: &Spanned) -> Result<RawConfig, ConfigError> {
        let f = Fields::of(value, "", &["targetHeader", "routes", "mirrorBudget", "countResponses"])?;
        Ok(RawConfig {
            target_header: f.string("targetHeader")?,
            routes: f.required("routes", f.list("routes", RawRoute::read)?)?,
            mirror_budget: f.object("mirrorBudget", RawMirrorBudget::read)?,
            count_responses: f.boolean("countResponses")?,
        })
    }
}

impl RawMirrorBudget {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["maxBytes", "maxInFlight"])?;
        Ok(RawMirrorBudget { max_bytes: f.number("maxBytes")?, max_in_flight: f.number("maxInFlight")? })
    }
}

impl RawRoute {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["name", "hosts", "pathPrefix", "default", "rules", "mirror"])?;
        Ok(RawRoute {
            name: f.required("name", f.string("name")?)?,
            hosts: f.list("hosts", string)?,
            path_prefix: f.string("pathPrefix")?,
            default: f.required("default", f.string("default")?)?,
            rules: f.list("rules", RawRule::read)?,
            mirror: f.object("mirror", RawMirror::read)?,
        })
    }
}

impl RawMirror {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["cluster", "percent", "timeoutMs", "maxBodyBytes"])?;
        Ok(RawMirror {
            cluster: f.required("cluster", f.string("cluster")?)?,
            percent: f.required("percent", f.number("percent")?)?,
            timeout_ms: f.number("timeoutMs")?,
            max_body_bytes: f.number("maxBodyBytes")?,
        })
    }
}

impl RawRule {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["name", "match", "target", "split"])?;
        Ok(RawRule {
            name: f.string("name")?,
            conditions: f.list("match", RawCondition::read)?,
            target: f.string("target")?,
            split: f.object("split", RawSplit::read)?,
        })
    }
}

impl RawCondition {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(
            value,
            at,
            &["header", "cookie", "query", "exact", "prefix", "regex", "oneOf", "present", "not"],
        )?;
        Ok(RawCondition {
            header: f.string("header")?,
            cookie: f.string("cookie")?,
            query: f.string("query")?,
            exact: f.string("exact")?,
            prefix: f.string("prefix")?,
            regex: f.string("regex")?,
            one_of: f.list("oneOf", string)?,
            present: f.boolean("present")?,
            not: f.boolean("not")?,
        })
    }
}

impl RawSplit {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["weights", "stickyBy", "salt", "ramp", "assignCookie", "rollback"])?;
        Ok(RawSplit {
            weights: f.required("weights", f.list("weights", RawWeight::read)?)?,
            sticky_by: f.object("stickyBy", RawSticky::read)?,
            salt: f.string("salt")?,
            ramp: f.object("ramp", RawRamp::read)?,
            assign_cookie: f.object("assignCookie", RawAssignCookie::read)?,
            rollback: f.object("rollback", RawRollback::read)?,
        })
    }
}

impl RawRamp {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["target", "start", "every", "steps"])?;
        Ok(RawRamp {
            target: f.required("target", f.string("target")?)?,
            start: f.required("start", f.string("start")?)?,
            every: f.required("every", f.string("every")?)?,
            steps: f.required("steps", f.list("steps", number)?)?,
        })
    }
}

impl RawAssignCookie {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["name", "maxAge", "path", "secure", "httpOnly"])?;
        Ok(RawAssignCookie {
            name: f.required("name", f.string("name")?)?,
            max_age: f.number("maxAge")?,
            path: f.string("path")?,
            secure: f.boolean("secure")?,
            http_only: f.boolean("httpOnly")?,
        })
    }
}

impl RawRollback {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["target", "maxErrorRate", "minRequests", "window", "prometheus"])?;
        Ok(RawRollback {
            target: f.required("target", f.string("target")?)?,
            max_error_rate: f.number("maxErrorRate")?,
            min_requests: f.number("minRequests")?,
            window: f.string("window")?,
            prometheus: f.object("prometheus", RawPrometheus::read)?,
        })
    }
}

impl RawPrometheus {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(
            value,
            at,
            &["cluster", "every", "timeoutMs", "threshold", "lookback", "checks", "latchQuery"],
        )?;
        Ok(RawPrometheus {
            cluster: f.required("cluster", f.string("cluster")?)?,
            every: f.string("every")?,
            timeout_ms: f.number("timeoutMs")?,
            threshold: f.number("threshold")?,
            lookback: f.string("lookback")?,
            checks: f.list("checks", RawCheck::read)?,
            latch_query: f.string("latchQuery")?,
        })
    }
}

impl RawCheck {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["name", "query", "min", "max"])?;
        Ok(RawCheck {
            name: f.required("name", f.string("name")?)?,
            query: f.required("query", f.string("query")?)?,
            min: f.number("min")?,
            max: f.number("max")?,
        })
    }
}

impl RawWeight {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["target", "weight"])?;
        Ok(RawWeight {
            target: f.required("target", f.string("target")?)?,
            weight: f.required("weight", f.number("weight")?)?,
        })
    }
}

impl RawSticky {
    fn read(value: &Spanned, at: &str) -> Result<Self, ConfigError> {
        let f = Fields::of(value, at, &["header", "cookie", "query"])?;
        Ok(RawSticky { header: f.string("header")?, cookie: f.string("cookie")?, query: f.string("query")? })
    }
}
