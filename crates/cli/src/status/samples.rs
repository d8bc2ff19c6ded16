//! What `status` reads, as one kind of sample whatever the source: an
//! Envoy admin `/stats` dump (labels still in the metric names, Istio's
//! convention, so no stats tags are needed) or a Prometheus query answer
//! (labels as Prometheus has them, `instance` naming the proxy).

use std::collections::BTreeMap;

/// One value of one metric on one proxy. A name starting with `rate:` is a
/// per-second rate of the counter after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }
}

/// The admin path `status` reads: this filter's metrics and Envoy's
/// per-cluster request counts (for a target's 5xx share when the filter
/// does not count responses).
pub const ADMIN_PATH: &str =
    "/stats?filter=canary_router%7C%5Ecluster%5C..*%5C.upstream_rq_(5xx%7Ccompleted)%24";

/// Parses `/stats` text (`name: value` per line).
pub fn from_admin(text: &str) -> Vec<Sample> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(": ")?;
            let value: f64 = value.trim().parse().ok()?;
            if let Some(rest) = name.strip_prefix("cluster.") {
                for counter in ["upstream_rq_5xx", "upstream_rq_completed"] {
                    if let Some(cluster) = rest.strip_suffix(&format!(".{counter}")) {
                        let labels = BTreeMap::from([("cluster".to_string(), cluster.to_string())]);
                        return Some(Sample { name: format!("cluster.{counter}"), labels, value });
                    }
                }
                return None;
            }
            let name = name.strip_prefix("wasmcustom.").unwrap_or(name);
            let mut labels = BTreeMap::new();
            let mut parts = name.split(";.;").peekable();
            let mut metric = "";
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    metric = part;
                } else {
                    let (key, value) = part.split_once("=.=")?;
                    labels.insert(key.to_string(), value.to_string());
                }
            }
            metric.starts_with("canary_router_").then(|| Sample { name: metric.to_string(), labels, value })
        })
        .collect()
}

/// The admin path of the dynamic module's series: its `/stats` names join
/// label values with dots (a value with a dot reads two ways), so they are
/// read in Prometheus's form, where each label stands apart.
pub const MODULE_ADMIN_PATH: &str = "/stats/prometheus?filter=%5Edynamicmodulescustom%5C.canary_router_";

/// Whether `/stats` text has the dynamic module's series (`MODULE_ADMIN_PATH`
/// reads them).
pub fn has_module_series(text: &str) -> bool {
    text.contains("dynamicmodulescustom.canary_router_")
}

/// Parses the dynamic module's series from `/stats/prometheus` text
/// (`name{label="value",...} value` per line; Envoy names them
/// `envoy_dynamicmodulescustom_canary_router_*`).
pub fn from_module_prometheus(text: &str) -> Vec<Sample> {
    text.lines()
        .filter_map(|line| {
            let line = line.strip_prefix("envoy_dynamicmodulescustom_")?;
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, exposition_labels(labels.strip_suffix('}')?)?),
                None => (series, BTreeMap::new()),
            };
            name.starts_with("canary_router_").then(|| Sample { name: name.to_string(), labels, value })
        })
        .collect()
}

/// `key="value",...` as the exposition format writes labels (a value's
/// `\\`, `\"` and `\n` escaped).
fn exposition_labels(mut text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    while !text.is_empty() {
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_string(), value);
        text = rest[end + 1..].strip_prefix(',').unwrap_or(&rest[end + 1..]);
    }
    Some(labels)
}

/// Per-second rates of the counters between two reads `seconds` apart. A
/// counter the first read did not have counts from 0: the filter defines
/// one at its first count.
pub fn rates(before: &[Sample], after: &[Sample], seconds: f64) -> Vec<Sample> {
    after
        .iter()
        .filter(|s| s.name.ends_with("_total") || s.name.starts_with("cluster."))
        .map(|s| {
            let previous = before.iter().find(|b| b.name == s.name && b.labels == s.labels);
            let delta = (s.value - previous.map_or(0.0, |p| p.value)).max(0.0);
            Sample { name: format!("rate:{}", s.name), labels: s.labels.clone(), value: delta / seconds }
        })
        .collect()
}

/// The series of a Prometheus instant-query answer, by `instance`. A query
/// of `rate(COUNTER[...])` names `rate_of` (Prometheus drops the name), and
/// its samples are named `rate:COUNTER`. Envoy's cluster counters get the
/// names `from_admin` gives them.
pub fn from_prometheus(
    answer: &serde_json::Value,
    rate_of: Option<&str>,
) -> Result<Vec<(String, Sample)>, String> {
    if answer["status"] != "success" {
        return Err(answer["error"].as_str().unwrap_or("not a query answer").to_string());
    }
    let series = answer["data"]["result"].as_array().ok_or("not an instant vector")?;
    Ok(series
        .iter()
        .filter_map(|series| {
            let metric = series["metric"].as_object()?;
            let value: f64 = series["value"][1].as_str()?.parse().ok()?;
            let mut labels: BTreeMap<String, String> =
                metric.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect();
            let instance = labels.remove("instance").unwrap_or_default();
            labels.remove("job");
            let mut name = labels.remove("__name__").or(rate_of.map(str::to_string)).unwrap_or_default();
            if let Some(cluster) = labels.remove("envoy_cluster_name") {
                name = match labels.remove("envoy_response_code_class").as_deref() {
                    Some("5") => "cluster.upstream_rq_5xx".into(),
                    Some(_) => return None,
                    None => "cluster.upstream_rq_completed".into(),
                };
                labels = BTreeMap::from([("cluster".to_string(), cluster)]);
            }
            let prefix = if rate_of.is_some() { "rate:" } else { "" };
            Some((instance, Sample { name: format!("{prefix}{name}"), labels, value }))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_stats_carry_their_labels_in_their_names() {
        let text = "wasmcustom.canary_router_unrouted_total: 3\n\
            wasmcustom.route=.=b;.;rule=.=rules[0];.;split=.=0d11;.;target=.=c;.;canary_router_live_weight_ppm: 200000\n\
            cluster.broken-canary.upstream_rq_5xx: 12\n\
            cluster.outbound|80||b.ns.svc.upstream_rq_completed: 40\n\
            cluster.x.upstream_rq_time: P0(nan,0)\n\
            other_stat: 1\n";
        let samples = from_admin(text);
        assert_eq!(samples.len(), 4, "{samples:?}");
        assert_eq!(samples[0].name, "canary_router_unrouted_total");
        assert_eq!(samples[1].label("split"), "0d11");
        assert_eq!(samples[1].label("target"), "c");
        assert_eq!(samples[1].value, 200_000.0);
        assert_eq!(
            (samples[2].name.as_str(), samples[2].label("cluster")),
            ("cluster.upstream_rq_5xx", "broken-canary")
        );
        assert_eq!(samples[3].label("cluster"), "outbound|80||b.ns.svc");
    }

    #[test]
    fn the_module_s_series_are_read_with_their_labels_apart() {
        let text = "# TYPE envoy_dynamicmodulescustom_canary_router_unrouted_total counter\n\
            envoy_dynamicmodulescustom_canary_router_unrouted_total{} 3\n\
            envoy_dynamicmodulescustom_canary_router_requests_total{route=\"b.v2\",target=\"c \\\"q\\\" \\\\ \"} 7\n\
            envoy_dynamicmodulescustom_canary_router_compare_within{route=\"b\",rule=\"rules[0]\",split=\"0d11\"} 1\n\
            envoy_cluster_upstream_rq{envoy_cluster_name=\"c\"} 9\n";
        let samples = from_module_prometheus(text);
        assert_eq!(samples.len(), 3, "{samples:?}");
        assert_eq!((samples[0].name.as_str(), samples[0].value), ("canary_router_unrouted_total", 3.0));
        assert_eq!(samples[1].label("route"), "b.v2", "a dot in a value stays in it");
        assert_eq!(samples[1].label("target"), "c \"q\" \\ ");
        assert_eq!(samples[2].label("split"), "0d11");
        assert!(has_module_series("dynamicmodulescustom.canary_router_unrouted_total: 3\n"));
        assert!(!has_module_series("wasmcustom.canary_router_unrouted_total: 3\n"));
    }

    #[test]
    fn rates_come_from_two_reads() {
        let read =
            |n: f64| from_admin(&format!("route=.=b;.;target=.=c;.;canary_router_requests_total: {n}\n"));
        let rates = rates(&read(10.0), &read(30.0), 2.0);
        assert_eq!(rates.len(), 1);
        assert_eq!((rates[0].name.as_str(), rates[0].value), ("rate:canary_router_requests_total", 10.0));
        let first_count = super::rates(&[], &read(4.0), 2.0);
        assert_eq!(first_count[0].value, 2.0, "a counter defined between the reads counts from 0");
    }

    #[test]
    fn prometheus_series_are_named_by_instance() {
        let answer = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "canary_router_rolled_back", "instance": "127.0.0.1:9901", "job": "envoy",
                        "route": "b", "split": "0d11", "target": "c"}, "value": [1, "1"]},
            {"metric": {"instance": "127.0.0.1:9902", "envoy_cluster_name": "c", "envoy_response_code_class": "5"},
             "value": [1, "0.5"]}]}});
        let series = from_prometheus(&answer, None).unwrap();
        assert_eq!(series[0].0, "127.0.0.1:9901");
        assert_eq!(series[0].1.name, "canary_router_rolled_back");
        assert!(!series[0].1.labels.contains_key("job"));
        assert_eq!(
            (series[1].1.name.as_str(), series[1].1.label("cluster")),
            ("cluster.upstream_rq_5xx", "c")
        );
        let failed = serde_json::json!({"status": "error", "error": "parse error"});
        assert_eq!(from_prometheus(&failed, None).unwrap_err(), "parse error");
        let rates = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"instance": "a:1", "route": "b", "target": "c"}, "value": [1, "2.5"]}]}});
        let rates = from_prometheus(&rates, Some("canary_router_requests_total")).unwrap();
        assert_eq!((rates[0].1.name.as_str(), rates[0].1.value), ("rate:canary_router_requests_total", 2.5));
    }
}
