//! The config's JSON Schema (draft 2020-12), for editors and CI pipelines,
//! derived from the filter's own declaration of the config's shape
//! (`config::shape`), so the two cannot drift. `schema/canary-router.schema.json`
//! is this, kept current by a test; the filter's own validation remains the
//! authority (the schema cannot say, for example, that route names are
//! unique or that weights sum to > 0).

use canary_router_core::config::shape::{self, Kind, Object, Rule, Text};
use serde_json::{json, Map, Value};

pub fn schema() -> Value {
    let mut defs = Map::new();
    defs.insert(
        "target".into(),
        json!({
            "type": "string",
            "pattern": "^[!-~]+$",
            "description": "A target: an Envoy cluster name or an Istio subset; visible ASCII, no spaces."
        }),
    );
    defs.insert(
        "duration".into(),
        json!({
            "type": "string",
            "pattern": "^([0-9]+(ms|s|m|h|d))+$",
            "description": "A duration such as 30s, 10m or 1h30m."
        }),
    );
    for object in shape::OBJECTS.iter().filter(|o| !std::ptr::eq(**o, &shape::CONFIG)) {
        defs.insert(object.name.into(), object_schema(object));
    }
    let mut root = Map::new();
    root.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    root.insert(
        "$id".into(),
        json!("https://github.com/canary-router/canary-router/schema/canary-router.schema.json"),
    );
    root.insert("title".into(), json!("canary-router config"));
    if let Value::Object(config) = object_schema(&shape::CONFIG) {
        root.extend(config);
    }
    root.insert("$defs".into(), Value::Object(defs));
    Value::Object(root)
}

fn object_schema(object: &Object) -> Value {
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("additionalProperties".into(), json!(false));
    let required: Vec<&str> = object.keys.iter().filter(|k| k.required).map(|k| k.name).collect();
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    let mut all_of = Vec::new();
    for rule in object.rules {
        match rule {
            Rule::ExactlyOne { keys, .. } => all_of.push(
                json!({ "oneOf": keys.iter().map(|k| json!({ "required": [k] })).collect::<Vec<_>>() }),
            ),
            Rule::Together { keys, .. } => {
                let needs: Map<String, Value> = keys
                    .iter()
                    .map(|k| (k.to_string(), json!(keys.iter().filter(|o| *o != k).collect::<Vec<_>>())))
                    .collect();
                if let Value::Object(all) = schema.entry("dependentRequired").or_insert_with(|| json!({})) {
                    all.extend(needs);
                }
            }
            Rule::Requires { key, keys, .. } => {
                let needs = schema.entry("dependentRequired").or_insert_with(|| json!({}));
                if let Value::Object(needs) = needs {
                    needs.insert(key.to_string(), json!(keys));
                }
            }
            Rule::Excludes { key, keys, .. } => {
                all_of.extend(keys.iter().map(|k| json!({ "not": { "required": [key, k] } })));
            }
            Rule::AnyOf { groups, .. } => {
                let any: Vec<Value> = groups.iter().map(|g| json!({ "required": g })).collect();
                schema.insert("anyOf".into(), json!(any));
            }
        }
    }
    match all_of.len() {
        0 => {}
        1 => {
            if let Some(Value::Object(one)) = all_of.pop() {
                schema.extend(one);
            }
        }
        _ => {
            schema.insert("allOf".into(), json!(all_of));
        }
    }
    let properties: Map<String, Value> = object
        .keys
        .iter()
        .map(|key| {
            let mut property = kind_schema(&key.kind);
            if let Value::Object(p) = &mut property {
                if let Some(default) = key.default_text {
                    p.insert("default".into(), json!(default));
                }
                if !key.about.is_empty() {
                    p.insert("description".into(), json!(key.about));
                }
            }
            (key.name.to_string(), property)
        })
        .collect();
    schema.insert("properties".into(), Value::Object(properties));
    Value::Object(schema)
}

fn kind_schema(kind: &Kind) -> Value {
    match kind {
        Kind::Text(Text::Any) => json!({ "type": "string" }),
        Kind::Text(Text::NonEmpty) => json!({ "type": "string", "minLength": 1 }),
        Kind::Text(Text::Pattern(pattern)) => json!({ "type": "string", "pattern": pattern }),
        Kind::Text(Text::Target) => json!({ "$ref": "#/$defs/target" }),
        Kind::Text(Text::Duration) => json!({ "$ref": "#/$defs/duration" }),
        Kind::Text(Text::Time) => json!({ "type": "string", "format": "date-time" }),
        Kind::Bool(default) => match default {
            Some(default) => json!({ "type": "boolean", "default": default }),
            None => json!({ "type": "boolean" }),
        },
        Kind::Number(bounds) => {
            let mut number = Map::new();
            number.insert("type".into(), json!(if bounds.whole { "integer" } else { "number" }));
            if bounds.min.is_finite() {
                let keyword = if bounds.exclusive { "exclusiveMinimum" } else { "minimum" };
                number.insert(keyword.into(), plain(bounds.min));
            }
            if bounds.max.is_finite() {
                let keyword = if bounds.exclusive { "exclusiveMaximum" } else { "maximum" };
                number.insert(keyword.into(), plain(bounds.max));
            }
            if let Some(default) = bounds.default {
                number.insert("default".into(), plain(default));
            }
            Value::Object(number)
        }
        Kind::Object(object) => json!({ "$ref": format!("#/$defs/{}", object.name) }),
        Kind::List(list) => {
            let mut array = Map::new();
            array.insert("type".into(), json!("array"));
            if list.min > 0 {
                array.insert("minItems".into(), json!(list.min));
            }
            if let Some(max) = list.max {
                array.insert("maxItems".into(), json!(max));
            }
            array.insert("items".into(), kind_schema(&list.item));
            Value::Object(array)
        }
    }
}

/// A bound as a person writes it: `1000`, not `1000.0`.
fn plain(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

pub fn pretty() -> String {
    serde_json::to_string_pretty(&schema()).unwrap_or_default()
}
