//! The config's JSON Schema (draft 2020-12), for editors and CI pipelines.
//! `schema/canary-router.schema.json` is this, kept current by a test; the
//! filter's own validation remains the authority (the schema cannot say,
//! for example, that route names are unique or that weights sum to > 0).

use canary_router::limits;
use canary_router::mirror::{MirrorBudget, DEFAULT_MAX_BODY_BYTES, MAX_BODY_BYTES};
use serde_json::{json, Value};

fn name_list(description: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "description": description })
}

/// Exactly one of these keys must be present.
fn exactly_one(keys: &[&str]) -> Value {
    Value::Array(keys.iter().map(|k| json!({ "required": [k] })).collect())
}

pub fn schema() -> Value {
    let target = json!({
        "type": "string",
        "pattern": "^[!-~]+$",
        "description": "A target: an Envoy cluster name or an Istio subset; visible ASCII, no spaces."
    });
    let budget = MirrorBudget::default();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/canary-router/canary-router/schema/canary-router.schema.json",
        "title": "canary-router config",
        "type": "object",
        "additionalProperties": false,
        "required": ["routes"],
        "properties": {
            "targetHeader": {
                "type": "string",
                "pattern": "^[a-z0-9!#$%&'*+.^_`|~-]+$",
                "default": "x-route-target",
                "description": "The request header the filter writes the target into (lower case)."
            },
            "routes": {
                "type": "array",
                "minItems": 1,
                "maxItems": limits::ROUTES,
                "items": { "$ref": "#/$defs/route" }
            },
            "countResponses": {
                "type": "boolean",
                "default": false,
                "description": "Count responses per route, target and status class."
            },
            "mirrorBudget": {
                "type": "object",
                "additionalProperties": false,
                "description": "What each VM may hold for shadow copies at once.",
                "properties": {
                    "maxBytes": { "type": "number", "minimum": 0, "maximum": 268435456, "default": budget.max_bytes },
                    "maxInFlight": { "type": "number", "minimum": 0, "maximum": 4096, "default": budget.max_in_flight }
                }
            }
        },
        "$defs": {
            "target": target,
            "route": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "default"],
                "properties": {
                    "name": name_list("Unique route name; default salt of its splits."),
                    "hosts": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": limits::HOSTS_PER_ROUTE,
                        "items": { "type": "string", "minLength": 1, "pattern": "^[^: ]+$|^\\[.*\\]$" },
                        "description": "Hosts without port: exact, *.suffix or *. Omit for any host."
                    },
                    "pathPrefix": { "type": "string", "pattern": "^/" },
                    "default": { "$ref": "#/$defs/target" },
                    "rules": {
                        "type": "array",
                        "maxItems": limits::RULES_PER_ROUTE,
                        "items": { "$ref": "#/$defs/rule" }
                    },
                    "mirror": { "$ref": "#/$defs/mirror" }
                }
            },
            "mirror": {
                "type": "object",
                "additionalProperties": false,
                "required": ["cluster", "percent"],
                "properties": {
                    "cluster": {
                        "type": "string",
                        "pattern": "^[!-~]+$",
                        "description": "Cluster the copies go to; in Istio outbound|PORT||HOST."
                    },
                    "percent": { "type": "number", "minimum": 0, "maximum": 100 },
                    "timeoutMs": { "type": "number", "minimum": 1, "maximum": 3600000, "default": 1000 },
                    "maxBodyBytes": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": MAX_BODY_BYTES,
                        "default": DEFAULT_MAX_BODY_BYTES
                    }
                }
            },
            "rule": {
                "type": "object",
                "additionalProperties": false,
                "oneOf": exactly_one(&["target", "split"]),
                "properties": {
                    "name": name_list("Shown in logs; defaults to rules[i]."),
                    "match": {
                        "type": "array",
                        "maxItems": limits::CONDITIONS_PER_RULE,
                        "items": { "$ref": "#/$defs/condition" }
                    },
                    "target": { "$ref": "#/$defs/target" },
                    "split": { "$ref": "#/$defs/split" }
                }
            },
            "condition": {
                "type": "object",
                "additionalProperties": false,
                "allOf": [
                    { "oneOf": exactly_one(&["header", "cookie", "query"]) },
                    { "oneOf": exactly_one(&["exact", "prefix", "regex", "oneOf", "present"]) }
                ],
                "properties": {
                    "header": name_list("A request header name (case-insensitive)."),
                    "cookie": name_list("A cookie name (case-sensitive)."),
                    "query": name_list("A query parameter name (case-sensitive, decoded)."),
                    "exact": { "type": "string" },
                    "prefix": { "type": "string" },
                    "regex": {
                        "type": "string",
                        "description": "regex-lite syntax, unanchored; at most 256 automaton states."
                    },
                    "oneOf": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": limits::ONE_OF_VALUES,
                        "items": { "type": "string" }
                    },
                    "present": { "type": "boolean" },
                    "not": { "type": "boolean" }
                }
            },
            "split": {
                "type": "object",
                "additionalProperties": false,
                "required": ["weights"],
                "properties": {
                    "weights": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": limits::TARGETS_PER_SPLIT,
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["target", "weight"],
                            "properties": {
                                "target": { "$ref": "#/$defs/target" },
                                "weight": { "type": "number", "minimum": 0 }
                            }
                        }
                    },
                    "stickyBy": {
                        "type": "object",
                        "additionalProperties": false,
                        "oneOf": exactly_one(&["header", "cookie", "query"]),
                        "properties": {
                            "header": name_list("Sticky key: a request header."),
                            "cookie": name_list("Sticky key: a cookie."),
                            "query": name_list("Sticky key: a query parameter.")
                        }
                    },
                    "salt": { "type": "string", "description": "Defaults to the route name." },
                    "ramp": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["target", "start", "every", "steps"],
                        "properties": {
                            "target": { "$ref": "#/$defs/target" },
                            "start": { "type": "string", "description": "RFC 3339 time, e.g. 2026-11-24T10:00:00Z." },
                            "every": { "$ref": "#/$defs/duration" },
                            "steps": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": limits::RAMP_STEPS,
                                "items": { "type": "number", "minimum": 0, "maximum": 100 }
                            }
                        }
                    },
                    "assignCookie": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["name"],
                        "properties": {
                            "name": { "type": "string", "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" },
                            "maxAge": { "type": "number", "minimum": 0 },
                            "path": { "type": "string", "pattern": "^/[!-:<-~]*$" },
                            "secure": { "type": "boolean" },
                            "httpOnly": { "type": "boolean" }
                        }
                    },
                    "rollback": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["target"],
                        "description": "Judged by a local window (maxErrorRate, minRequests, window), by prometheus, or both.",
                        "anyOf": [
                            { "required": ["maxErrorRate", "minRequests", "window"] },
                            { "required": ["prometheus"] }
                        ],
                        "dependentRequired": {
                            "maxErrorRate": ["minRequests", "window"],
                            "minRequests": ["maxErrorRate", "window"],
                            "window": ["maxErrorRate", "minRequests"]
                        },
                        "properties": {
                            "target": { "$ref": "#/$defs/target" },
                            "maxErrorRate": { "type": "number", "minimum": 0, "maximum": 1 },
                            "minRequests": { "type": "number", "minimum": 1 },
                            "window": { "$ref": "#/$defs/duration" },
                            "prometheus": { "$ref": "#/$defs/prometheus" }
                        }
                    }
                }
            },
            "prometheus": {
                "type": "object",
                "additionalProperties": false,
                "required": ["cluster"],
                "description": "Checks over the fleet's metrics and the fleet latch.",
                "properties": {
                    "cluster": { "type": "string", "pattern": "^[!-~]+$", "description": "The Envoy cluster that reaches Prometheus's HTTP API." },
                    "every": { "$ref": "#/$defs/duration", "default": "10s" },
                    "timeoutMs": { "type": "number", "minimum": 1, "maximum": 60000, "default": 1000 },
                    "threshold": { "type": "number", "minimum": 1, "maximum": 100, "default": 2 },
                    "lookback": { "$ref": "#/$defs/duration", "default": "1h" },
                    "checks": {
                        "type": "array",
                        "maxItems": limits::CHECKS_PER_ROLLBACK,
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["name", "query"],
                            "anyOf": [{ "required": ["min"] }, { "required": ["max"] }],
                            "properties": {
                                "name": { "type": "string", "pattern": "^[A-Za-z0-9_.-]+$" },
                                "query": { "type": "string", "minLength": 1 },
                                "min": { "type": "number" },
                                "max": { "type": "number" }
                            }
                        }
                    },
                    "latchQuery": { "type": "string", "pattern": "\\{\\{split\\}\\}" }
                }
            },
            "duration": {
                "type": "string",
                "pattern": "^([0-9]+(ms|s|m|h|d))+$",
                "description": "A duration such as 30s, 10m or 1h30m."
            }
        }
    })
}

pub fn pretty() -> String {
    serde_json::to_string_pretty(&schema()).unwrap_or_default()
}
