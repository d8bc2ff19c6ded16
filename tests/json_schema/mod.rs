//! A small JSON Schema (draft 2020-12) validator for the keywords our
//! schema uses, so the test can prove configs validate without pulling a
//! full validator: type, properties, required, additionalProperties,
//! items, minItems, maxItems, minLength, minimum, exclusiveMinimum, maximum, pattern (via
//! regex-lite), format (annotation only, as draft 2020-12 has it), default, description,
//! $ref to #/$defs, allOf, anyOf, oneOf and dependentRequired. An unknown keyword fails loudly
//! instead of being ignored.

use serde_json::Value;

pub fn validate(schema: &Value, instance: &Value) -> Result<(), String> {
    check(schema, schema, instance, "config")
}

fn check(root: &Value, schema: &Value, instance: &Value, at: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else { return Err(format!("schema at {at} is not an object")) };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$schema" | "$id" | "title" | "description" | "default" | "$defs" | "format" => {}
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .ok_or(format!("bad $ref {rule}"))?;
                check(root, &root["$defs"][name], instance, at)?;
            }
            "type" => {
                let ok = match rule.as_str().unwrap_or_default() {
                    "object" => instance.is_object(),
                    "array" => instance.is_array(),
                    "string" => instance.is_string(),
                    "number" => instance.is_number(),
                    // Draft 2020-12: a number with no fractional part, `20.0` included.
                    "integer" => instance.as_f64().is_some_and(|n| n.fract() == 0.0),
                    "boolean" => instance.is_boolean(),
                    other => return Err(format!("unsupported type {other}")),
                };
                if !ok {
                    return Err(format!("{at}: expected {rule}, got {instance}"));
                }
            }
            "properties" => {
                for (key, sub) in rule.as_object().into_iter().flatten() {
                    if let Some(value) = instance.get(key) {
                        check(root, sub, value, &format!("{at}.{key}"))?;
                    }
                }
            }
            "additionalProperties" => {
                if rule == &Value::Bool(false) {
                    let known = schema.get("properties").and_then(Value::as_object);
                    for key in instance.as_object().into_iter().flatten().map(|(k, _)| k) {
                        if !known.is_some_and(|p| p.contains_key(key)) {
                            return Err(format!("{at}: unknown key `{key}`"));
                        }
                    }
                }
            }
            "required" => {
                for key in rule.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if instance.is_object() && instance.get(key).is_none() {
                        return Err(format!("{at}: missing `{key}`"));
                    }
                }
            }
            "items" => {
                for (i, item) in instance.as_array().into_iter().flatten().enumerate() {
                    check(root, rule, item, &format!("{at}[{i}]"))?;
                }
            }
            "minItems" => {
                if instance.as_array().is_some_and(|a| (a.len() as u64) < rule.as_u64().unwrap_or(0)) {
                    return Err(format!("{at}: fewer than {rule} items"));
                }
            }
            "maxItems" => {
                if instance.as_array().is_some_and(|a| (a.len() as u64) > rule.as_u64().unwrap_or(u64::MAX)) {
                    return Err(format!("{at}: more than {rule} items"));
                }
            }
            "minLength" => {
                if instance.as_str().is_some_and(|s| (s.chars().count() as u64) < rule.as_u64().unwrap_or(0))
                {
                    return Err(format!("{at}: shorter than {rule}"));
                }
            }
            "minimum" => {
                if instance.as_f64().is_some_and(|n| n < rule.as_f64().unwrap_or(0.0)) {
                    return Err(format!("{at}: below {rule}"));
                }
            }
            "exclusiveMinimum" => {
                if instance.as_f64().is_some_and(|n| n <= rule.as_f64().unwrap_or(0.0)) {
                    return Err(format!("{at}: not above {rule}"));
                }
            }
            "exclusiveMaximum" => {
                if instance.as_f64().is_some_and(|n| n >= rule.as_f64().unwrap_or(0.0)) {
                    return Err(format!("{at}: not below {rule}"));
                }
            }
            "maximum" => {
                if instance.as_f64().is_some_and(|n| n > rule.as_f64().unwrap_or(0.0)) {
                    return Err(format!("{at}: above {rule}"));
                }
            }
            "pattern" => {
                let re =
                    regex_lite::Regex::new(rule.as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
                if instance.as_str().is_some_and(|s| !re.is_match(s)) {
                    return Err(format!("{at}: {instance} does not match {rule}"));
                }
            }
            "allOf" => {
                for sub in rule.as_array().into_iter().flatten() {
                    check(root, sub, instance, at)?;
                }
            }
            "oneOf" => {
                let passing = rule
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|sub| check(root, sub, instance, at).is_ok())
                    .count();
                if passing != 1 {
                    return Err(format!(
                        "{at}: matches {passing} of the oneOf alternatives, not exactly one"
                    ));
                }
            }
            "not" => {
                if check(root, rule, instance, at).is_ok() {
                    return Err(format!("{at}: matches what `not` refuses: {rule}"));
                }
            }
            "anyOf" => {
                let alternatives = rule.as_array().map(Vec::as_slice).unwrap_or_default();
                if !alternatives.iter().any(|sub| check(root, sub, instance, at).is_ok()) {
                    return Err(format!("{at}: matches none of the anyOf alternatives"));
                }
            }
            "dependentRequired" => {
                for (key, needs) in rule.as_object().into_iter().flatten() {
                    if instance.get(key).is_none() {
                        continue;
                    }
                    for need in needs.as_array().into_iter().flatten().filter_map(Value::as_str) {
                        if instance.get(need).is_none() {
                            return Err(format!("{at}: `{key}` needs `{need}`"));
                        }
                    }
                }
            }
            other => return Err(format!("the validator does not know the keyword `{other}`")),
        }
    }
    Ok(())
}
