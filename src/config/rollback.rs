//! A split's `rollback`, checked and compiled: the local error window, the
//! Prometheus checks, or both (docs/progressive-delivery.md, "Rollback").

use super::{whole, RawCheck, RawPrometheus, RawRollback};
use crate::decimal;
use crate::error::ConfigError;
use crate::limits;
use crate::prometheus::{self, DEFAULT_LATCH_QUERY};
use crate::split::{Check, LocalWindow, PrometheusChecks, Rollback};
use crate::time;

pub const DEFAULT_EVERY_MS: u64 = 10_000;
pub const DEFAULT_TIMEOUT_MS: u32 = 1_000;
pub const DEFAULT_THRESHOLD: u32 = 2;
pub const DEFAULT_LOOKBACK_MS: u64 = 3_600_000;

/// `weighted` are the split's targets and weights, already checked.
pub fn compile(raw: RawRollback, at: &str, weighted: &[(String, f64)]) -> Result<Rollback, ConfigError> {
    let here = crate::error::key(at, "rollback");
    if !weighted.iter().any(|(t, _)| *t == raw.target) {
        return Err(ConfigError::new(
            crate::error::key(&here, "target"),
            format!("`{}` is not one of the split's targets", raw.target),
        ));
    }
    if !weighted.iter().any(|(t, w)| *t != raw.target && *w > 0.0) {
        return Err(ConfigError::new(
            crate::error::key(at, "weights"),
            format!("the targets other than `{}` need weight to take the traffic back", raw.target),
        ));
    }
    let window = local_window(&raw, &here)?;
    let prometheus =
        raw.prometheus.map(|p| compile_prometheus(p, &crate::error::key(&here, "prometheus"))).transpose()?;
    if window.is_none() && prometheus.is_none() {
        return Err(ConfigError::new(
            here,
            "needs a local window (`maxErrorRate`, `minRequests` and `window`), `prometheus`, or both",
        ));
    }
    Ok(Rollback { target: raw.target, window, prometheus })
}

/// `maxErrorRate`, `minRequests` and `window`: all three or none.
fn local_window(raw: &RawRollback, here: &str) -> Result<Option<LocalWindow>, ConfigError> {
    let (rate, min, window) = match (raw.max_error_rate, raw.min_requests, &raw.window) {
        (None, None, None) => return Ok(None),
        (Some(rate), Some(min), Some(window)) => (rate, min, window),
        (rate, min, window) => {
            let missing: Vec<&str> = [
                (rate.is_none(), "`maxErrorRate`"),
                (min.is_none(), "`minRequests`"),
                (window.is_none(), "`window`"),
            ]
            .iter()
            .filter(|(absent, _)| *absent)
            .map(|(_, key)| *key)
            .collect();
            return Err(ConfigError::new(
                here,
                format!(
                    "a local window needs `maxErrorRate`, `minRequests` and `window` together; missing {}",
                    missing.join(" and ")
                ),
            ));
        }
    };
    if !(rate > 0.0 && rate < 1.0) {
        return Err(ConfigError::new(
            crate::error::key(here, "maxErrorRate"),
            format!("must be a fraction between 0 and 1 (0.05 is 5%), got {}", decimal::format(rate)),
        ));
    }
    let min_requests =
        whole(Some(min), 1.0, 1e12, &crate::error::key(here, "minRequests"))?.unwrap_or(1.0) as u64;
    let window_ms =
        time::parse_duration(window).map_err(|m| ConfigError::new(crate::error::key(here, "window"), m))?;
    if window_ms < 1_000 {
        return Err(ConfigError::new(crate::error::key(here, "window"), "must be at least 1s"));
    }
    Ok(Some(LocalWindow { max_error_rate: rate, min_requests, window_ms }))
}

fn compile_prometheus(raw: RawPrometheus, here: &str) -> Result<PrometheusChecks, ConfigError> {
    if raw.cluster.is_empty() || !raw.cluster.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            crate::error::key(here, "cluster"),
            "must be a cluster name: visible ASCII without spaces (Istio: outbound|9090||prometheus.istio-system.svc.cluster.local)",
        ));
    }
    let every_ms = match &raw.every {
        None => DEFAULT_EVERY_MS,
        Some(every) => {
            let ms = time::parse_duration(every)
                .map_err(|m| ConfigError::new(crate::error::key(here, "every"), m))?;
            if ms < 1_000 {
                return Err(ConfigError::new(crate::error::key(here, "every"), "must be at least 1s"));
            }
            ms
        }
    };
    let timeout_ms = whole(raw.timeout_ms, 1.0, 60_000.0, &crate::error::key(here, "timeoutMs"))?
        .map_or(DEFAULT_TIMEOUT_MS, |ms| ms as u32);
    if u64::from(timeout_ms) > every_ms {
        return Err(ConfigError::new(
            crate::error::key(here, "timeoutMs"),
            format!("{timeout_ms} is longer than `every` ({every_ms} ms): a poll must end before the next"),
        ));
    }
    let threshold = whole(raw.threshold, 1.0, 100.0, &crate::error::key(here, "threshold"))?
        .map_or(DEFAULT_THRESHOLD, |t| t as u32);
    let lookback_ms = match &raw.lookback {
        None => DEFAULT_LOOKBACK_MS,
        Some(lookback) => time::parse_duration(lookback)
            .map_err(|m| ConfigError::new(crate::error::key(here, "lookback"), m))?,
    };
    if lookback_ms < every_ms {
        return Err(ConfigError::new(
            crate::error::key(here, "lookback"),
            format!("must be at least `every` ({every_ms} ms), or a rollback could fall between two polls"),
        ));
    }
    let raw_checks = raw.checks.unwrap_or_default();
    limits::check(raw_checks.len(), limits::CHECKS_PER_ROLLBACK, "checks")
        .map_err(|m| ConfigError::new(crate::error::key(here, "checks"), m))?;
    let mut checks: Vec<Check> = Vec::with_capacity(raw_checks.len());
    for (i, raw_check) in raw_checks.into_iter().enumerate() {
        let check = compile_check(raw_check, &format!("{here}.checks[{i}]"))?;
        if checks.iter().any(|c| c.name == check.name) {
            return Err(ConfigError::new(
                format!("{here}.checks[{i}].name"),
                format!("`{}` is used twice; each check needs its own name", check.name),
            ));
        }
        checks.push(check);
    }
    let latch_query = raw.latch_query.unwrap_or_else(|| DEFAULT_LATCH_QUERY.to_string());
    placeholders(&latch_query, &crate::error::key(here, "latchQuery"))?;
    if !latch_query.contains("{{split}}") {
        return Err(ConfigError::new(
            crate::error::key(here, "latchQuery"),
            "must select the split with {{split}}, or every split would share one latch",
        ));
    }
    Ok(PrometheusChecks {
        cluster: raw.cluster,
        every_ms,
        timeout_ms,
        threshold,
        lookback: prometheus::range(lookback_ms),
        checks,
        latch_query,
    })
}

fn compile_check(raw: RawCheck, here: &str) -> Result<Check, ConfigError> {
    if raw.name.is_empty() || !raw.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(ConfigError::new(
            crate::error::key(here, "name"),
            format!("`{}` must be letters, digits, `-`, `_` or `.` (it becomes a metric label)", raw.name),
        ));
    }
    if raw.query.trim().is_empty() {
        return Err(ConfigError::new(crate::error::key(here, "query"), "must be a PromQL query"));
    }
    placeholders(&raw.query, &crate::error::key(here, "query"))?;
    for (key, bound) in [("min", raw.min), ("max", raw.max)] {
        if bound.is_some_and(|b| !b.is_finite()) {
            return Err(ConfigError::new(format!("{here}.{key}"), "must be a finite number"));
        }
    }
    match (raw.min, raw.max) {
        (None, None) => {
            return Err(ConfigError::new(
                here,
                "needs `max`, `min` or both: the bounds its value must stay in",
            ))
        }
        (Some(min), Some(max)) if min > max => {
            return Err(ConfigError::new(
                crate::error::key(here, "min"),
                format!("{} is above `max` ({})", decimal::format(min), decimal::format(max)),
            ))
        }
        _ => {}
    }
    Ok(Check { name: raw.name, query: raw.query, min: raw.min, max: raw.max })
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
        if !prometheus::PLACEHOLDERS.contains(&name) {
            return Err(ConfigError::new(
                at,
                format!("`{{{{{name}}}}}` is not a placeholder; use {{{{target}}}}, {{{{route}}}}, {{{{split}}}} or {{{{lookback}}}}"),
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}
