//! Asking Prometheus: the request a rollback check or the fleet latch
//! sends (`GET /api/v1/query`), and what its answer means. Pure: the glue
//! dispatches the call and hands the answer here.

use crate::text::json::{self, Json};

/// What one query said.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    /// Its series' values: the smallest and the largest (one series: both
    /// the same), so that every series is held to a check's bounds.
    Value(Span),
    /// An empty result or NaN: nothing to judge (no traffic, say).
    NoData,
    /// No usable answer: the call failed or timed out, Prometheus answered
    /// an error, or the body was not a query result.
    Error(String),
}

/// The smallest and largest value of a query's series (NaN left out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub low: f64,
    pub high: f64,
}

impl Span {
    /// One value: one series, or a scalar.
    pub fn one(value: f64) -> Span {
        Span { low: value, high: value }
    }
}

/// The default fleet latch: did any proxy report this split rolled back
/// within the lookback? It reads the gauge every proxy exports, with the
/// `split` label this project's stats tags (Envoy) and extraStatTags
/// (Istio) give it.
pub const DEFAULT_LATCH_QUERY: &str =
    "max(max_over_time(canary_router_rolled_back{split=\"{{split}}\"}[{{lookback}}]))";

/// The step latch of a gated ramp: the furthest progress any proxy of the
/// fleet reported for this split within the lookback, read from the gauge
/// that holds the step and its clock together (`gate::FleetProgress`).
pub const STEP_LATCH_QUERY: &str =
    "max(max_over_time(canary_router_ramp_progress{split=\"{{split}}\"}[{{lookback}}]))";

/// The default fleet view: does Prometheus hold this proxy's own series
/// of this split? Each proxy exports a random beacon per split; a view
/// without it is blind (no stats tags, no scrape, other labels).
pub const DEFAULT_VIEW_QUERY: &str = "count(canary_router_proxy_beacon{split=\"{{split}}\"} == {{beacon}})";

/// The most a beacon is: below 2^52, so that Prometheus's floats hold it
/// exactly.
pub const BEACON_SPAN: u64 = (1 << 52) - 1;

/// A proxy's beacon from a random number: in `1..=BEACON_SPAN`.
pub fn beacon(random: u64) -> u64 {
    1 + random % BEACON_SPAN
}

/// The placeholders a query may hold.
pub const PLACEHOLDERS: [&str; 6] = ["target", "baseline", "route", "split", "lookback", "beacon"];

/// What a query's placeholders stand for.
pub struct Fill<'a> {
    pub target: &'a str,
    /// The target's baseline (several joined by `|`).
    pub baseline: &'a str,
    pub route: &'a str,
    /// The split's identity, in hex.
    pub split: &'a str,
    pub lookback: &'a str,
    /// This proxy's beacon.
    pub beacon: u64,
}

/// A duration as a PromQL range: whole seconds when it is, else ms.
pub fn range(ms: u64) -> String {
    if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

/// A query with its placeholders filled: `{{target}}`, `{{baseline}}`,
/// `{{route}}`, `{{split}}`, `{{lookback}}` and `{{beacon}}`.
pub fn expand(template: &str, fill: &Fill<'_>) -> String {
    template
        .replace("{{target}}", fill.target)
        .replace("{{baseline}}", fill.baseline)
        .replace("{{route}}", fill.route)
        .replace("{{split}}", fill.split)
        .replace("{{lookback}}", fill.lookback)
        .replace("{{beacon}}", &fill.beacon.to_string())
}

/// The `:path` of an instant query, under the API's `prefix` (`""` or
/// `/prometheus`, no trailing `/`).
pub fn query_path(prefix: &str, query: &str) -> String {
    let mut path = format!("{prefix}/api/v1/query?query=");
    for byte in query.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            path.push(byte as char);
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path
}

/// The request headers of a query to the Prometheus at `authority`, with
/// the configured `extra` headers (a tenant, a token).
pub fn request_headers(authority: &str, path: &str, extra: &[(String, String)]) -> Vec<u8> {
    let mut pairs: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"GET"),
        (b":path", path.as_bytes()),
        (b":authority", authority.as_bytes()),
        (b"accept", b"application/json"),
    ];
    pairs.extend(extra.iter().map(|(name, value)| (name.as_bytes(), value.as_bytes())));
    crate::request::header_map::serialize(&pairs)
}

/// What a compared check's two answers mean together: the target's value
/// minus (or over) its baseline's, every series of each held against
/// every series of the other; no data or an error in either is that.
pub fn compared(target: &Sample, baseline: &Sample, relation: crate::rollout::settings::Relation) -> Sample {
    match (target, baseline) {
        (Sample::Error(why), _) => Sample::Error(why.clone()),
        (_, Sample::Error(why)) => Sample::Error(format!("the baseline's query: {why}")),
        (Sample::Value(t), Sample::Value(b)) => Sample::Value(match relation {
            crate::rollout::settings::Relation::Increase => {
                Span { low: t.low - b.high, high: t.high - b.low }
            }
            crate::rollout::settings::Relation::Ratio => {
                Span { low: ratio(t.low, b.high), high: ratio(t.high, b.low) }
            }
        }),
        _ => Sample::NoData,
    }
}

/// `target / baseline`, where 0 / 0 is alike (1) and more than nothing
/// over nothing is as large as it gets.
fn ratio(target: f64, baseline: f64) -> f64 {
    match (target, baseline) {
        (t, b) if b > 0.0 => t / b,
        (t, _) if t <= 0.0 => 1.0,
        _ => f64::INFINITY,
    }
}

/// What a query's answer means: `status` is the HTTP status (none when the
/// call failed), `body` the response body.
pub fn sample(status: Option<u16>, body: &[u8]) -> Sample {
    let Some(status) = status else { return Sample::Error("no answer (unreachable or timed out)".into()) };
    let Ok(document) = json::parse(body) else {
        return Sample::Error(format!("HTTP {status}, not a query result"));
    };
    let root = document.root();
    if root.get("status").and_then(Json::str) != Some("success") {
        let error =
            root.get("error").and_then(Json::str).map_or_else(|| format!("HTTP {status}"), str::to_string);
        return Sample::Error(error);
    }
    let Some(data) = root.get("data") else { return Sample::Error("no data field".into()) };
    // A `[time, "value"]` pair's value; an unreadable one spoils the answer.
    let number = |pair: Json<'_>| -> Result<f64, String> {
        let text = pair.items().nth(1).and_then(Json::str).ok_or("a sample without a value")?;
        parse_number(text).ok_or_else(|| format!("the sample value `{text}` is not a number"))
    };
    let values: Result<Vec<f64>, String> =
        match (data.get("resultType").and_then(Json::str), data.get("result")) {
            (Some("scalar"), Some(result)) => number(result).map(|v| vec![v]),
            (Some("vector"), Some(series)) if series.kind() == json::Kind::Array => {
                series.items().filter_map(|s| s.get("value")).map(number).collect()
            }
            _ => return Sample::Error("not an instant vector or scalar".into()),
        };
    let values = match values {
        Ok(values) => values,
        Err(why) => return Sample::Error(why),
    };
    let span = values.into_iter().filter(|v| !v.is_nan()).fold(None, |span: Option<Span>, v| match span {
        None => Some(Span::one(v)),
        Some(s) => Some(Span { low: s.low.min(v), high: s.high.max(v) }),
    });
    match span {
        Some(span) => Sample::Value(span),
        None => Sample::NoData,
    }
}

/// Prometheus writes sample values as strings: numbers, `NaN`, `+Inf`, `-Inf`.
/// Anything else (`1.2.3`, `1-2`) is not a sample.
fn parse_number(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => crate::text::number::parse(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_the_query_encoded() {
        let fill = Fill {
            target: "cart-next",
            baseline: "cart",
            route: "cart",
            split: "ab12",
            lookback: "1h",
            beacon: 77,
        };
        let q = expand(r#"sum(rate(x{target="{{target}}",route="{{route}}"}[1m]))"#, &fill);
        assert_eq!(q, r#"sum(rate(x{target="cart-next",route="cart"}[1m]))"#);
        assert_eq!(query_path("", "a b{c=\"d\"}"), "/api/v1/query?query=a%20b%7Bc%3D%22d%22%7D");
        assert_eq!(query_path("/prometheus", "up"), "/prometheus/api/v1/query?query=up");
        assert_eq!(
            expand(DEFAULT_LATCH_QUERY, &fill),
            r#"max(max_over_time(canary_router_rolled_back{split="ab12"}[1h]))"#
        );
        assert_eq!(
            expand(DEFAULT_VIEW_QUERY, &fill),
            r#"count(canary_router_proxy_beacon{split="ab12"} == 77)"#
        );
    }

    #[test]
    fn an_answer_is_a_value_no_data_or_an_error() {
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1700000000.1,"0.25"]},{"metric":{"a":"2"},"value":[1700000000.1,"0.5"]}]}}"#;
        assert_eq!(
            sample(Some(200), vector),
            Sample::Value(Span { low: 0.25, high: 0.5 }),
            "every series, by its smallest and largest"
        );
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}"#;
        assert_eq!(sample(Some(200), scalar), Sample::Value(Span::one(3.0)));
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(sample(Some(200), empty), Sample::NoData);
        let nan = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(sample(Some(200), nan), Sample::NoData);
        let inf = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"+Inf"]}]}}"#;
        assert_eq!(sample(Some(200), inf), Sample::Value(Span::one(f64::INFINITY)));
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        assert_eq!(sample(Some(400), bad), Sample::Error("parse error at char 3".into()));
        assert!(matches!(sample(None, b""), Sample::Error(_)));
        assert!(matches!(sample(Some(503), b"upstream connect error"), Sample::Error(_)));
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(sample(Some(200), matrix), Sample::Error(_)));
        // Values that only look like numbers spoil the answer, never pass as one.
        for value in ["1.2.3", "1-2", "--1", "1e", ".5", "+1", "0x10", ""] {
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[
                {{"metric":{{}},"value":[1,"0.01"]}},{{"metric":{{}},"value":[1,"{value}"]}}]}}}}"#
            );
            assert_eq!(
                sample(Some(200), body.as_bytes()),
                Sample::Error(format!("the sample value `{value}` is not a number")),
                "{value}"
            );
        }
        let exponent = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1e-05"]}]}}"#;
        assert_eq!(sample(Some(200), exponent), Sample::Value(Span::one(1e-5)), "Go's exponent form");
    }

    #[test]
    fn a_compared_check_judges_the_target_against_its_baseline() {
        use crate::rollout::settings::Relation;
        let one = |v| Sample::Value(Span::one(v));
        assert_eq!(
            compared(&one(0.03), &one(0.01), Relation::Increase),
            Sample::Value(Span::one(0.03 - 0.01))
        );
        assert_eq!(compared(&one(0.3), &one(0.2), Relation::Ratio), Sample::Value(Span::one(0.3 / 0.2)));
        assert_eq!(
            compared(&one(0.0), &one(0.0), Relation::Ratio),
            Sample::Value(Span::one(1.0)),
            "0 / 0: alike"
        );
        assert_eq!(compared(&one(0.1), &one(0.0), Relation::Ratio), Sample::Value(Span::one(f64::INFINITY)));
        // Two series each: the worst pairing bounds the difference.
        let two = |low, high| Sample::Value(Span { low, high });
        assert_eq!(
            compared(&two(0.02, 0.05), &two(0.01, 0.03), Relation::Increase),
            two(0.02 - 0.03, 0.05 - 0.01)
        );
        assert_eq!(compared(&Sample::NoData, &one(0.1), Relation::Increase), Sample::NoData);
        assert!(
            matches!(compared(&one(0.1), &Sample::Error("x".into()), Relation::Increase), Sample::Error(e) if e.contains("baseline"))
        );
    }
}
