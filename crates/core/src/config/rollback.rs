//! A split's `rollback`, checked and compiled: the local error window, the
//! Prometheus checks, or both (docs/progressive-delivery.md, "Rollback").

use super::read::Fields;
use super::shape::{
    check, compare, compare_latency, header, latency, prometheus, rollback, split, Field, Str,
};
use crate::config::error::ConfigError;
use crate::rollout::prometheus::{self as queries, DEFAULT_LATCH_QUERY, DEFAULT_VIEW_QUERY};
use crate::rollout::settings::{
    Check, Compare, CompareLatency, Latency, LocalWindow, PrometheusChecks, Relation, Rollback,
};
use crate::text::decimal;
use crate::text::time;

/// `weighted` are the split's targets and weights, already checked.
pub fn compile(
    rollback: &Fields<'_, rollback::Of>,
    split: &Fields<'_, split::Of>,
    weighted: &[(String, f64)],
) -> Result<Rollback, ConfigError> {
    let target = rollback.get(rollback::TARGET);
    if !weighted.iter().any(|(t, _)| t == target) {
        return Err(ConfigError::new(
            rollback.at(rollback::TARGET),
            format!("`{target}` is not one of the split's targets"),
        ));
    }
    if !weighted.iter().any(|(t, w)| t != target && *w > 0.0) {
        return Err(ConfigError::new(
            split.at(split::WEIGHTS),
            format!("the targets other than `{target}` need weight to take the traffic back"),
        ));
    }
    let window = local_window(rollback, weighted)?;
    let baseline = window
        .as_ref()
        .and_then(|w| w.compare.as_ref())
        .map(|c| c.baseline.clone())
        .unwrap_or_else(|| weighted.iter().map(|(t, _)| t.clone()).filter(|t| t != target).collect());
    let prometheus = rollback
        .get(rollback::PROMETHEUS)
        .map(|p| compile_prometheus(&p, baseline.join("|")).map(Box::new))
        .transpose()?;
    Ok(Rollback { target: target.to_string(), window, prometheus })
}

/// `minRequests` and `window` with what they judge by (`read` made sure
/// they come together and judge by something).
fn local_window(
    rollback: &Fields<'_, rollback::Of>,
    weighted: &[(String, f64)],
) -> Result<Option<LocalWindow>, ConfigError> {
    let (Some(min), Some(window)) = (rollback.get(rollback::MIN_REQUESTS), rollback.get(rollback::WINDOW))
    else {
        return Ok(None);
    };
    let max_error_rate = rollback.get(rollback::MAX_ERROR_RATE);
    if max_error_rate.is_none()
        && rollback.get(rollback::LATENCY).is_none()
        && rollback.get(rollback::COMPARE).is_none()
    {
        return Err(ConfigError::new(
            rollback.at.clone(),
            "`minRequests` and `window` judge nothing without `maxErrorRate`, `latency` or `compare`",
        ));
    }
    let window_ms =
        time::parse_duration(window).map_err(|m| ConfigError::new(rollback.at(rollback::WINDOW), m))?;
    if window_ms < 1_000 {
        return Err(ConfigError::new(rollback.at(rollback::WINDOW), "must be at least 1s"));
    }
    let latency = rollback.get(rollback::LATENCY).map(|latency| Latency {
        percentile: latency.get(latency::PERCENTILE),
        max_ms: latency.get(latency::MAX_MS) as u64,
    });
    let abandoned_after_ms = rollback.get(rollback::ABANDONED_AFTER_MS) as u64;
    let compare = rollback
        .get(rollback::COMPARE)
        .map(|c| compile_compare(&c, rollback, weighted).map(Box::new))
        .transpose()?;
    Ok(Some(LocalWindow {
        max_error_rate,
        min_requests: min as u64,
        window_ms,
        latency,
        abandoned_after_ms,
        compare,
    }))
}

/// `compare`: its baseline is a target of the split other than the
/// watched one, by default all of them.
fn compile_compare(
    compare: &Fields<'_, compare::Of>,
    rollback: &Fields<'_, rollback::Of>,
    weighted: &[(String, f64)],
) -> Result<Compare, ConfigError> {
    let target = rollback.get(rollback::TARGET);
    let others: Vec<String> = weighted.iter().map(|(t, _)| t.clone()).filter(|t| t != target).collect();
    let baseline = match compare.get(compare::BASELINE) {
        Some(name) if name == target => {
            return Err(ConfigError::new(
                compare.at(compare::BASELINE),
                format!("`{name}` is the target being judged: compare it with another target of the split"),
            ))
        }
        Some(name) if !others.iter().any(|t| t == name) => {
            return Err(ConfigError::new(
                compare.at(compare::BASELINE),
                format!("`{name}` is not one of the split's targets ({})", others.join(", ")),
            ))
        }
        Some(name) => vec![name.to_string()],
        None => others,
    };
    let latency = compare.get(compare::LATENCY).map(|latency| CompareLatency {
        percentile: latency.get(compare_latency::PERCENTILE),
        max_ratio: latency.get(compare_latency::MAX_RATIO),
        min_increase_ms: latency.get(compare_latency::MIN_INCREASE_MS) as u64,
    });
    Ok(Compare {
        baseline,
        max_error_rate_increase: compare.get(compare::MAX_ERROR_RATE_INCREASE),
        latency,
        confidence: compare.get(compare::CONFIDENCE),
    })
}

/// A duration key (its default, if absent) of at least `min_ms`.
fn duration(
    fields: &Fields<'_, prometheus::Of>,
    key: Field<prometheus::Of, Str>,
    min_ms: u64,
    too_short: &str,
) -> Result<u64, ConfigError> {
    let ms = time::parse_duration(fields.get(key)).map_err(|m| ConfigError::new(fields.at(key), m))?;
    if ms < min_ms {
        return Err(ConfigError::new(fields.at(key), too_short));
    }
    Ok(ms)
}

fn compile_prometheus(
    config: &Fields<'_, prometheus::Of>,
    baseline: String,
) -> Result<PrometheusChecks, ConfigError> {
    let cluster = config.get(prometheus::CLUSTER);
    super::check_cluster(cluster, "(Istio: outbound|9090||prometheus.istio-system.svc.cluster.local)")
        .map_err(|m| ConfigError::new(config.at(prometheus::CLUSTER), m))?;
    let every_ms = duration(config, prometheus::EVERY, 1_000, "must be at least 1s")?;
    let timeout_ms = config.get(prometheus::TIMEOUT_MS) as u32;
    if u64::from(timeout_ms) > every_ms {
        return Err(ConfigError::new(
            config.at(prometheus::TIMEOUT_MS),
            format!("{timeout_ms} is longer than `every` ({every_ms} ms): a poll must end before the next"),
        ));
    }
    let lookback_ms = duration(
        config,
        prometheus::LOOKBACK,
        every_ms,
        &format!("must be at least `every` ({every_ms} ms), or a rollback could fall between two polls"),
    )?;
    let mut checks: Vec<Check> = Vec::new();
    for check in config.get(prometheus::CHECKS) {
        let check = compile_check(&check)?;
        if checks.iter().any(|c| c.name == check.name) {
            return Err(ConfigError::new(
                format!("{}[{}].name", config.at(prometheus::CHECKS), checks.len()),
                format!("`{}` is used twice; each check needs its own name", check.name),
            ));
        }
        checks.push(check);
    }
    let latch_query = config.get(prometheus::LATCH_QUERY).unwrap_or(DEFAULT_LATCH_QUERY);
    placeholders(latch_query, &config.at(prometheus::LATCH_QUERY))?;
    if !latch_query.contains("{{split}}") {
        return Err(ConfigError::new(
            config.at(prometheus::LATCH_QUERY),
            "must select the split with {{split}}, or every split would share one latch",
        ));
    }
    let view_query = config.get(prometheus::VIEW_QUERY).unwrap_or(DEFAULT_VIEW_QUERY);
    placeholders(view_query, &config.at(prometheus::VIEW_QUERY))?;
    if !view_query.contains("{{split}}") || !view_query.contains("{{beacon}}") {
        return Err(ConfigError::new(
            config.at(prometheus::VIEW_QUERY),
            "must use {{split}} and {{beacon}}: it asks whether Prometheus holds this proxy's own series of the split",
        ));
    }
    let blind_after_ms = duration(config, prometheus::BLIND_AFTER, 1_000, "must be at least 1s")?;
    let headers = compile_query_headers(config)?;
    let path_prefix = compile_path_prefix(config)?;
    let authority = compile_authority(config, cluster)?;
    Ok(PrometheusChecks {
        path_prefix,
        headers,
        authority,
        cluster: cluster.to_string(),
        every_ms,
        timeout_ms,
        threshold: config.get(prometheus::THRESHOLD) as u32,
        lookback: queries::range(lookback_ms),
        baseline,
        checks,
        latch_query: latch_query.to_string(),
        view_query: view_query.to_string(),
        blind_after_ms,
    })
}

/// `prometheus.headers`: names in lower case; the proxy's own headers and
/// line breaks refused. A value is never repeated in an error.
fn compile_query_headers(config: &Fields<'_, prometheus::Of>) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    for (i, header) in config.get(prometheus::HEADERS).iter().enumerate() {
        let name = header.get(header::NAME).to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(super::is_token_byte) {
            return Err(ConfigError::new(
                format!("{}[{i}].name", config.at(prometheus::HEADERS)),
                format!("`{name}` is not an HTTP header name (letters, digits and !#$%&'*+.^_`|~-)"),
            ));
        }
        if ["host", "content-length", "transfer-encoding", "connection"].contains(&name.as_str()) {
            return Err(ConfigError::new(
                format!("{}[{i}].name", config.at(prometheus::HEADERS)),
                format!("`{name}` is the proxy's to set: name another header"),
            ));
        }
        let value = header.get(header::VALUE);
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            // The value itself is not repeated: it may be a secret.
            return Err(ConfigError::new(
                format!("{}[{i}].value", config.at(prometheus::HEADERS)),
                "must not contain a line break or NUL",
            ));
        }
        headers.push((name, value.to_string()));
    }
    Ok(headers)
}

/// The queries' Host when `authority` is not given: the cluster's name when
/// it is a host name; `HOST:PORT` for Istio's `outbound|PORT|SUBSET|HOST`;
/// else `prometheus` (Prometheus itself ignores the Host).
pub fn default_authority(cluster: &str) -> String {
    if is_authority(cluster) {
        return cluster.to_string();
    }
    match cluster.split('|').collect::<Vec<_>>()[..] {
        ["outbound", port, _, host] if is_authority(&format!("{host}:{port}")) => format!("{host}:{port}"),
        _ => "prometheus".to_string(),
    }
}

/// A host name (letters, digits, `-`, `.`), with `:PORT` if any.
fn is_authority(text: &str) -> bool {
    let (host, port) = text.rsplit_once(':').unwrap_or((text, "0"));
    let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
    host_ok && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
}

/// `prometheus.authority`: a host, and a port if any.
fn compile_authority(config: &Fields<'_, prometheus::Of>, cluster: &str) -> Result<String, ConfigError> {
    let Some(authority) = config.get(prometheus::AUTHORITY) else { return Ok(default_authority(cluster)) };
    if !is_authority(authority) {
        return Err(ConfigError::new(
            config.at(prometheus::AUTHORITY),
            format!("`{authority}` must be a host name, with `:PORT` if any"),
        ));
    }
    Ok(authority.to_string())
}

/// `prometheus.pathPrefix`, without its trailing `/` (`""`: the root).
fn compile_path_prefix(config: &Fields<'_, prometheus::Of>) -> Result<String, ConfigError> {
    let path_prefix = config.get(prometheus::PATH_PREFIX).unwrap_or("");
    if !path_prefix.is_empty()
        && (!path_prefix.starts_with('/') || path_prefix.bytes().any(|b| b <= b' ' || b"?#%".contains(&b)))
    {
        return Err(ConfigError::new(
            config.at(prometheus::PATH_PREFIX),
            format!("`{path_prefix}` must be a path starting with `/`, without spaces, `?`, `#` or `%`"),
        ));
    }
    Ok(path_prefix.trim_end_matches('/').to_string())
}

fn compile_check(check: &Fields<'_, check::Of>) -> Result<Check, ConfigError> {
    let name = check.get(check::NAME);
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(ConfigError::new(
            check.at(check::NAME),
            format!("`{name}` must be letters, digits, `-`, `_` or `.` (it becomes a metric label)"),
        ));
    }
    let query = check.get(check::QUERY);
    if query.trim().is_empty() {
        return Err(ConfigError::new(check.at(check::QUERY), "must be a PromQL query"));
    }
    placeholders(query, &check.at(check::QUERY))?;
    let (min, max) = (check.get(check::MIN), check.get(check::MAX));
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(ConfigError::new(
                check.at(check::MIN),
                format!("{} is above `max` ({})", decimal::format(min), decimal::format(max)),
            ));
        }
    }
    // `read` made sure a comparison has its one bound.
    let compare_to = check.get(check::COMPARE_TO).map(|_| {
        if check.get(check::MAX_RATIO).is_some() {
            Relation::Ratio
        } else {
            Relation::Increase
        }
    });
    if compare_to.is_some() && !query.contains("{{target}}") {
        return Err(ConfigError::new(
            check.at(check::QUERY),
            "must select the target with {{target}}: it is run once for the target and once for its baseline",
        ));
    }
    let max = max.or(check.get(check::MAX_INCREASE)).or(check.get(check::MAX_RATIO));
    Ok(Check { name: name.to_string(), query: query.to_string(), min, max, compare_to })
}

/// Every `{{...}}` in a query is one this filter fills (a typo would
/// otherwise reach Prometheus as a parse error on every poll).
fn placeholders(query: &str, at: &str) -> Result<(), ConfigError> {
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(ConfigError::new(at, "has `{{` without `}}`"));
        };
        let name = &after[..end];
        if !queries::PLACEHOLDERS.contains(&name) {
            return Err(ConfigError::new(
                at,
                format!("`{{{{{name}}}}}` is not a placeholder; use {{{{target}}}}, {{{{route}}}}, {{{{split}}}}, {{{{lookback}}}} or {{{{beacon}}}}"),
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}
