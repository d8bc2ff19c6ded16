//! From samples to what `status` shows: each split as every proxy reports
//! it, the view most of them share, and whether the fleet is healthy,
//! progressing or rolled back.

use std::collections::BTreeMap;

use canary_router_core::rollout::metrics;
use canary_router_core::text::time::format_rfc3339;
use serde_json::{json, Value};

use super::samples::Sample;
use crate::http_get::Failed;

/// One proxy's answer: its samples, or why it has none.
pub struct Proxy {
    pub name: String,
    pub samples: Result<Vec<Sample>, Failed>,
}

/// Whether a split's watched target gets traffic on a proxy.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// No rollback configured.
    Plain,
    Live,
    Waiting,
    RolledBack {
        reason: String,
        since: u64,
    },
}

/// One split as one proxy reports it.
#[derive(Debug, Clone, PartialEq)]
struct Report {
    /// Target, configured ppm, live ppm, in display order.
    targets: Vec<(String, u64, u64)>,
    state: State,
    /// A rollback only this proxy's window judges: a restart forgets it.
    local_only: bool,
    ramp: Option<RampReport>,
    checks: Vec<(String, f64)>,
    /// Checks whose last answer was no data or an error.
    unanswered: Vec<String>,
    failures: u64,
    /// Prometheus has not shown this proxy's own series past `blindAfter`.
    blind: bool,
    compare: Option<CompareReport>,
}

/// The canary against its baseline since the step began (`compare`).
#[derive(Debug, Clone, PartialEq)]
struct CompareReport {
    /// Canary, then baseline.
    responses: [u64; 2],
    error_rates: [f64; 2],
    /// The upper bound of the canary's error rate minus the baseline's,
    /// if errors are compared and it is known.
    bound: Option<f64>,
    confidence: f64,
    /// The compared percentile and each arm's value in ms, if latency is.
    latency: Option<(f64, [f64; 2])>,
    within: bool,
}

/// A ramp as one proxy reports it.
#[derive(Debug, Clone, PartialEq)]
struct RampReport {
    /// 1-based; 0 before the start.
    step: u64,
    steps: u64,
    /// When the step began and when the next may come (seconds; 0: none).
    since: u64,
    next: u64,
    gate: Option<GateReport>,
    /// Holding, and why: `hold`, `maxWait` or `fleetView`.
    holding: Option<String>,
    /// Since when it holds (seconds; 0: not known).
    holding_since: u64,
}

/// What a gated step waits for.
#[derive(Debug, Clone, PartialEq)]
struct GateReport {
    responses: u64,
    needed: u64,
    error_rate: f64,
    /// The latency percentile (e.g. 99) and its value in ms, if judged.
    latency: Option<(f64, u64)>,
    passed: bool,
}

/// A split as the fleet reports it.
pub struct SplitView {
    pub route: String,
    pub rule: String,
    pub split: String,
    report: Report,
    /// Proxies that report the split, and those of them that report the
    /// view shown.
    pub reporting: usize,
    pub agreeing: usize,
    /// Proxies that disagree, with their state.
    others: Vec<(String, State)>,
    /// Per target: requests per second over the fleet, and the 5xx share.
    traffic: Vec<(f64, Option<f64>)>,
}

/// What the exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Healthy,
    Progressing,
    RolledBack,
    /// Nothing to judge: not one endpoint answered, each for a reason.
    NoAnswer,
    /// Not one answered, and one refused the credentials.
    Unauthorised,
    /// Not one answered, and one's certificate is not trusted.
    Untrusted,
}

impl Overall {
    pub fn label(self) -> &'static str {
        match self {
            Overall::Healthy => "healthy",
            Overall::Progressing => "progressing",
            Overall::RolledBack => "rolled back",
            Overall::NoAnswer => "no endpoint answered",
            Overall::Unauthorised => "no endpoint answered: credentials refused",
            Overall::Untrusted => "no endpoint answered: certificate not trusted",
        }
    }

    /// As `--json`'s `status` says it.
    pub fn json_label(self) -> &'static str {
        match self {
            Overall::Healthy => "healthy",
            Overall::Progressing => "progressing",
            Overall::RolledBack => "rolled_back",
            Overall::NoAnswer => "no_endpoint_answered",
            Overall::Unauthorised => "credentials_refused",
            Overall::Untrusted => "certificate_not_trusted",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Overall::Healthy => 0,
            Overall::Progressing => 3,
            Overall::RolledBack => 4,
            Overall::NoAnswer => 2,
            Overall::Unauthorised => 5,
            Overall::Untrusted => 6,
        }
    }
}

type Key = (String, String, String);

fn key(sample: &Sample) -> Key {
    (sample.label("route").to_string(), sample.label("rule").to_string(), sample.label("split").to_string())
}

/// Each split one proxy reports (those a config replaced read 0 weight
/// everywhere and are left out).
fn reports(samples: &[Sample]) -> BTreeMap<Key, Report> {
    let mut by_split: BTreeMap<Key, Vec<&Sample>> = BTreeMap::new();
    for sample in samples.iter().filter(|s| !s.label("split").is_empty() && !s.name.starts_with("rate:")) {
        by_split.entry(key(sample)).or_default().push(sample);
    }
    by_split
        .into_iter()
        .filter_map(|(key, samples)| {
            let value = |name: &str| samples.iter().find(|s| s.name == name).map(|s| s.value);
            let mut targets: Vec<(String, u64, u64)> = samples
                .iter()
                .filter(|s| s.name == metrics::CONFIGURED_WEIGHT)
                .map(|s| {
                    let live = samples
                        .iter()
                        .find(|l| l.name == metrics::LIVE_WEIGHT && l.label("target") == s.label("target"))
                        .map_or(0.0, |l| l.value);
                    (s.label("target").to_string(), s.value as u64, live as u64)
                })
                .collect();
            if targets.iter().all(|(_, configured, _)| *configured == 0) {
                return None;
            }
            // The watched target first (the canary), then by name.
            let watched = samples.iter().find(|s| s.name == metrics::ROLLED_BACK).map(|s| s.label("target"));
            targets.sort_by_key(|(t, _, _)| (Some(t.as_str()) != watched, t.clone()));
            let state = match (value(metrics::ROLLED_BACK), value(metrics::WAITING)) {
                (None, _) => State::Plain,
                (Some(r), _) if r > 0.0 => State::RolledBack {
                    reason: samples
                        .iter()
                        .find(|s| s.name == metrics::ROLLBACK_REASON && s.value > 0.0)
                        .map_or("-", |s| s.label("reason"))
                        .to_string(),
                    since: value(metrics::ROLLED_BACK_SINCE).unwrap_or(0.0) as u64,
                },
                (_, Some(w)) if w > 0.0 => State::Waiting,
                _ => State::Live,
            };
            let ramp = value(metrics::RAMP_STEPS)
                .filter(|steps| *steps > 0.0)
                .map(|steps| ramp_report(&samples, steps as u64));
            let mut checks: Vec<(String, f64)> = samples
                .iter()
                .filter(|s| s.name == metrics::CHECK_VALUE)
                .map(|s| (s.label("check").to_string(), s.value / 1e6))
                .collect();
            checks.sort_by(|a, b| a.0.cmp(&b.0));
            let mut unanswered: Vec<String> = samples
                .iter()
                .filter(|s| s.name == metrics::CHECK_UNANSWERED && s.value > 0.0)
                .map(|s| s.label("check").to_string())
                .collect();
            unanswered.sort();
            let failures = value(metrics::CHECK_FAILURES).unwrap_or(0.0) as u64;
            let local_only = state != State::Plain && value(metrics::ROLLBACK_FLEET) == Some(0.0);
            let blind = value(metrics::FLEET_BLIND).is_some_and(|b| b > 0.0);
            let compare = compare_report(&samples);
            Some((
                key,
                Report { targets, state, local_only, ramp, checks, unanswered, failures, blind, compare },
            ))
        })
        .collect()
}

/// A split's comparison with its baseline from its gauges, if it has one.
fn compare_report(samples: &[&Sample]) -> Option<CompareReport> {
    let value = |name: &str| samples.iter().find(|s| s.name == name).map(|s| s.value);
    let confidence = value(metrics::COMPARE_CONFIDENCE)? / 1e6;
    let arms = |name: &str| {
        ["canary", "baseline"].map(|arm| {
            samples.iter().find(|s| s.name == name && s.label("arm") == arm).map_or(0.0, |s| s.value)
        })
    };
    let [canary, baseline] = arms(metrics::COMPARE_RESPONSES);
    let rates = arms(metrics::COMPARE_ERROR_RATE);
    let latency = value(metrics::COMPARE_PERCENTILE).map(|tenths| {
        let [c, b] = arms(metrics::COMPARE_LATENCY);
        (tenths / 10.0, [c / 1e3, b / 1e3])
    });
    Some(CompareReport {
        responses: [canary as u64, baseline as u64],
        error_rates: rates.map(|r| r / 1e6),
        // 1,000,000: no bound yet.
        bound: value(metrics::COMPARE_ERROR_BOUND).filter(|b| *b < 1e6).map(|b| b / 1e6),
        confidence,
        latency,
        within: value(metrics::COMPARE_WITHIN).is_some_and(|w| w > 0.0),
    })
}

/// `errors canary 0.8% vs baseline 0.7% (+0.1 pt, bound +0.6 pt at 95%)`,
/// and the latency and what it says.
fn compare_text(c: &CompareReport) -> String {
    let decimal = |v: f64, places| canary_router_core::text::decimal::fixed(v, places);
    // An arm without responses has no rate and no latency to show.
    let seen = |arm: usize, text: String| if c.responses[arm] == 0 { "-".to_string() } else { text };
    let pt = |v: f64| format!("{}{} pt", if v >= 0.0 { "+" } else { "" }, decimal(v * 100.0, 1));
    let confidence = canary_router_core::text::decimal::format(c.confidence * 100.0);
    let [canary, baseline] = c.error_rates;
    let difference = match (c.responses, c.bound) {
        ([0, _] | [_, 0], _) => "no bound yet".to_string(),
        (_, None) => format!("{}, no bound yet", pt(canary - baseline)),
        (_, Some(b)) => format!("{}, bound {} at {confidence}%", pt(canary - baseline), pt(b)),
    };
    let mut out = format!(
        "  compare: errors canary {} vs baseline {} ({difference})",
        seen(0, format!("{}%", decimal(canary * 100.0, 1))),
        seen(1, format!("{}%", decimal(baseline * 100.0, 1))),
    );
    if let Some((percentile, [canary_ms, baseline_ms])) = c.latency {
        let ms = |v: f64| format!("{} ms", canary_router_core::text::decimal::format(v.round()));
        out += &format!(
            "; p{} canary {} vs baseline {}",
            canary_router_core::text::decimal::format(percentile),
            seen(0, ms(canary_ms)),
            seen(1, ms(baseline_ms))
        );
    }
    let verdict = if c.within {
        format!("within its allowances at {confidence}%")
    } else {
        "not shown within its allowances yet".to_string()
    };
    out + &format!("; {} and {} responses since the step began; {verdict}\n", c.responses[0], c.responses[1])
}

/// A split's ramp from its gauges.
fn ramp_report(samples: &[&Sample], steps: u64) -> RampReport {
    let value = |name: &str| samples.iter().find(|s| s.name == name).map_or(0.0, |s| s.value);
    let gated = value(metrics::RAMP_GATED) > 0.0;
    let percentile = value(metrics::GATE_LATENCY_PERCENTILE) / 10.0;
    let latency_ms = value(metrics::GATE_LATENCY) as u64;
    let holding = samples
        .iter()
        .find(|s| s.name == metrics::RAMP_HOLDING && s.value > 0.0)
        .map(|s| s.label("reason").to_string());
    RampReport {
        step: value(metrics::RAMP_STEP) as u64,
        steps,
        since: value(metrics::RAMP_STEP_SINCE) as u64,
        next: value(metrics::RAMP_NEXT_STEP) as u64,
        holding_since: value(metrics::RAMP_HOLDING_SINCE) as u64,
        gate: gated.then(|| GateReport {
            responses: value(metrics::GATE_RESPONSES) as u64,
            needed: value(metrics::GATE_NEEDED) as u64,
            error_rate: value(metrics::GATE_ERROR_RATE) / 1e6,
            latency: (percentile > 0.0).then_some((percentile, latency_ms)),
            passed: value(metrics::GATE_PASSED) > 0.0,
        }),
        holding,
    }
}

/// A target's fleet-wide request rate and 5xx share, from the rates the
/// proxies' samples hold: the filter's response counts if it keeps them,
/// else Envoy's per-cluster counts for a cluster named like the target.
fn traffic(proxies: &[&[Sample]], route: &str, target: &str) -> (f64, Option<f64>) {
    let sum = |name: &str, matches: &dyn Fn(&Sample) -> bool| -> Option<f64> {
        let values: Vec<f64> = proxies
            .iter()
            .flat_map(|s| s.iter())
            .filter(|s| s.name == name && matches(s))
            .map(|s| s.value)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    };
    let ours = |s: &Sample| s.label("route") == route && s.label("target") == target;
    // The filter defines a request counter at its first count: a target
    // without one has had no requests.
    let requests = sum("rate:canary_router_requests_total", &ours).unwrap_or(0.0);
    let responses = sum("rate:canary_router_responses_total", &ours);
    let errors = sum("rate:canary_router_responses_total", &|s| ours(s) && s.label("status_class") == "5xx");
    // A 5xx series appears with the first 5xx: responses without one
    // are a share of 0, not a share unknown.
    let share = match (responses, errors) {
        (Some(all), errors) if all > 0.0 => Some(errors.unwrap_or(0.0) / all),
        _ => {
            let cluster = |s: &Sample| s.label("cluster") == target;
            match (
                sum("rate:cluster.upstream_rq_completed", &cluster),
                sum("rate:cluster.upstream_rq_5xx", &cluster),
            ) {
                (Some(all), errors) if all > 0.0 => Some(errors.unwrap_or(0.0) / all),
                _ => None,
            }
        }
    };
    (requests, share)
}

/// Every split any proxy reports, as the fleet sees it.
pub fn splits(proxies: &[Proxy]) -> Vec<SplitView> {
    let answered: Vec<(&str, &[Sample])> = proxies
        .iter()
        .filter_map(|p| p.samples.as_ref().ok().map(|s| (p.name.as_str(), s.as_slice())))
        .collect();
    let per_proxy: Vec<(&str, BTreeMap<Key, Report>)> =
        answered.iter().map(|(name, samples)| (*name, reports(samples))).collect();
    let mut keys: Vec<&Key> = per_proxy.iter().flat_map(|(_, r)| r.keys()).collect();
    keys.sort();
    keys.dedup();
    let all_samples: Vec<&[Sample]> = answered.iter().map(|(_, s)| *s).collect();
    keys.into_iter()
        .map(|key| {
            let reporting: Vec<(&str, &Report)> =
                per_proxy.iter().filter_map(|(name, reports)| reports.get(key).map(|r| (*name, r))).collect();
            // The view most proxies share; ties go to the first listed.
            let mut majority = reporting[0].1;
            let mut most = 0;
            for (_, candidate) in &reporting {
                let count = reporting.iter().filter(|(_, r)| same_view(r, candidate)).count();
                if count > most {
                    (majority, most) = (candidate, count);
                }
            }
            let others = reporting
                .iter()
                .filter(|(_, r)| !same_view(r, majority))
                .map(|(name, r)| (name.to_string(), r.state.clone()))
                .collect();
            let traffic = majority.targets.iter().map(|(t, _, _)| traffic(&all_samples, &key.0, t)).collect();
            SplitView {
                route: key.0.clone(),
                rule: key.1.clone(),
                split: key.2.clone(),
                report: majority.clone(),
                reporting: reporting.len(),
                agreeing: most,
                others,
                traffic,
            }
        })
        .collect()
}

/// Two proxies agree when they route the split alike: the same state
/// (reason and time aside) and live weights.
fn same_view(a: &Report, b: &Report) -> bool {
    let state = |r: &Report| std::mem::discriminant(&r.state);
    let live = |r: &Report| r.targets.iter().map(|(t, _, l)| (t.clone(), *l)).collect::<Vec<_>>();
    state(a) == state(b) && live(a) == live(b)
}

pub fn overall(proxies: &[Proxy], splits: &[SplitView]) -> Overall {
    if proxies.iter().all(|p| p.samples.is_err()) {
        let failed = |kind: &str| proxies.iter().any(|p| p.samples.as_ref().is_err_and(|f| f.kind() == kind));
        return if failed("unauthorised") {
            Overall::Unauthorised
        } else if failed("untrusted") {
            Overall::Untrusted
        } else {
            Overall::NoAnswer
        };
    }
    let rolled_back = |s: &SplitView| {
        matches!(s.report.state, State::RolledBack { .. })
            || s.others.iter().any(|(_, state)| matches!(state, State::RolledBack { .. }))
    };
    let progressing = |s: &SplitView| {
        s.report.state == State::Waiting
            || s.report.ramp.as_ref().is_some_and(|r| r.step < r.steps)
            || s.agreeing < s.reporting
    };
    if splits.iter().any(rolled_back) {
        Overall::RolledBack
    } else if splits.iter().any(progressing) {
        Overall::Progressing
    } else {
        Overall::Healthy
    }
}

fn percent(ppm: u64) -> String {
    let text = format!("{:.2}", ppm as f64 / 10_000.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// `in 4m10s` / `2m5s ago`.
fn relative(seconds: u64, now: u64) -> String {
    let span = canary_router_core::text::time::format_span;
    if seconds >= now {
        format!("in {}", span(seconds - now))
    } else {
        format!("{} ago", span(now - seconds))
    }
}

fn state_text(state: &State, now: u64) -> String {
    match state {
        State::Plain => "no rollback configured".into(),
        State::Live => "live: the canary gets its share".into(),
        State::Waiting => {
            "WAITING for the fleet latch: the canary gets nothing until Prometheus answers".into()
        }
        State::RolledBack { reason, since } => {
            format!(
                "ROLLED BACK since {} ({}), reason {reason}",
                format_rfc3339(*since),
                relative(*since, now)
            )
        }
    }
}

/// The text `status` prints.
pub fn render(proxies: &[Proxy], splits: &[SplitView], now: u64) -> String {
    // A Prometheus that failed stands in the list for the proxies it
    // would have named; it is not one of them.
    let (sources, proxies_listed): (Vec<&Proxy>, Vec<&Proxy>) =
        proxies.iter().partition(|p| p.samples.is_err() && p.name.starts_with("prometheus "));
    let answered = proxies_listed.iter().filter(|p| p.samples.is_ok()).count();
    let mut out = format!(
        "canary-router status at {}: {answered} of {} proxies answered{}\n",
        format_rfc3339(now),
        proxies_listed.len(),
        if sources.is_empty() { "" } else { "; Prometheus did not answer" }
    );
    for proxy in proxies {
        match &proxy.samples {
            Ok(_) => out += &format!("  {}  ok\n", proxy.name),
            Err(why) => out += &format!("  {}  {why}\n", proxy.name),
        }
    }
    if splits.is_empty() && answered > 0 {
        out += "\nno splits reported (no canary-router metrics: is the filter loaded, with a config that has a split?)\n";
    }
    for view in splits {
        let report = &view.report;
        out += &format!("\nroute {}  rule {}  split {}\n", view.route, view.rule, view.split);
        let local =
            if report.local_only { " (local only: a proxy that restarts forgets a rollback)" } else { "" };
        out += &format!(
            "  {}{local}; {} of {} proxies agree\n",
            state_text(&report.state, now),
            view.agreeing,
            view.reporting
        );
        for (name, state) in &view.others {
            out += &format!("    {name}: {}\n", state_text(state, now));
        }
        let width = report.targets.iter().map(|(t, _, _)| t.len()).max().unwrap_or(6).max(6);
        out += &format!(
            "  {:width$}  {:>10}  {:>8}  {:>8}  {:>6}\n",
            "target", "configured", "live", "req/s", "5xx"
        );
        for ((target, configured, live), (rate, share)) in report.targets.iter().zip(&view.traffic) {
            let share = share.map_or("-".to_string(), |s| format!("{:.1}%", s * 100.0));
            out += &format!(
                "  {target:width$}  {:>10}  {:>8}  {rate:>8.1}  {share:>6}\n",
                percent(*configured),
                percent(*live)
            );
        }
        if let Some(ramp) = &report.ramp {
            out += &ramp_text(ramp, now);
        }
        if let Some(compare) = &report.compare {
            out += &compare_text(compare);
        }
        if !report.checks.is_empty() {
            // A check without data has no value to show: its gauge keeps
            // its last one.
            let checks: Vec<String> = report
                .checks
                .iter()
                .map(|(n, v)| match report.unanswered.contains(n) {
                    true => format!("{n} no data"),
                    false => format!("{n} {}", canary_router_core::text::decimal::format(*v)),
                })
                .collect();
            out += &format!("  checks: {}; {} failing polls in a row\n", checks.join(", "), report.failures);
        }
        if !report.unanswered.is_empty() {
            out += &format!(
                "  NO DATA from checks {}: nothing judges the canary by them (a gated step waits)\n",
                report.unanswered.join(", ")
            );
        }
        if report.blind {
            out += "  BLIND: Prometheus does not hold this proxy's own series of the split (stats tags? scraped?): \
                    its gated steps hold, and a rollback by another proxy does not reach it\n";
        }
    }
    let overall = overall(proxies, splits);
    out += &format!("\noverall: {} (exit {})\n", overall.label(), overall.exit_code());
    out
}

/// A ramp's line: gated or by the clock, its step and since when, what a
/// gated step waits for, holding and why, when it may advance.
fn ramp_text(ramp: &RampReport, now: u64) -> String {
    if ramp.step == 0 {
        return format!(
            "  ramp: before its start, the listed weights; step 1 at {}\n",
            format_rfc3339(ramp.next)
        );
    }
    let kind = if ramp.gate.is_some() { "gated" } else { "by the clock" };
    let since = if ramp.since > 0 { format!(" since {}", relative(ramp.since, now)) } else { String::new() };
    let mut out = format!("  ramp: {kind}, step {} of {}{since}", ramp.step, ramp.steps);
    if let Some(holding) = &ramp.holding {
        out += &format!(", HOLDING ({holding})");
        if ramp.holding_since > 0 {
            out += &format!(
                " since {} ({})",
                format_rfc3339(ramp.holding_since),
                relative(ramp.holding_since, now)
            );
        }
    }
    if ramp.next == 0 {
        out += ", the last step";
    } else if let Some(gate) = ramp.gate.as_ref().filter(|g| !g.passed) {
        let waits = if gate.needed == 0 {
            // No local window: only a Prometheus poll during the step judges it.
            "a Prometheus poll that passes during the step".to_string()
        } else {
            let latency = gate.latency.map_or(String::new(), |(p, ms)| {
                format!(", p{} {ms} ms", canary_router_core::text::decimal::format(p))
            });
            format!(
                "{}/{} responses, {:.1}% errors{latency}",
                gate.responses,
                gate.needed,
                gate.error_rate * 100.0
            )
        };
        let when = match ramp.holding.as_deref() {
            Some("maxWait") => "advances as soon as it is judged healthy".to_string(),
            Some(_) => "no step is taken while it holds".to_string(),
            None => format!("may advance {} at the earliest", relative(ramp.next, now)),
        };
        out += &format!("; waits for {waits}; {when}");
    } else if ramp.holding.is_some() {
        out += "; no step is taken while it holds";
    } else {
        out += &format!("; next step at {} ({})", format_rfc3339(ramp.next), relative(ramp.next, now));
    }
    out + "\n"
}

fn state_json(state: &State) -> Value {
    match state {
        State::Plain => json!({"state": "no_rollback"}),
        State::Live => json!({"state": "live"}),
        State::Waiting => json!({"state": "waiting"}),
        State::RolledBack { reason, since } => {
            json!({"state": "rolled_back", "reason": reason, "since": format_rfc3339(*since)})
        }
    }
}

/// The same as JSON, for scripts.
pub fn to_json(proxies: &[Proxy], splits: &[SplitView], now: u64) -> Value {
    json!({
        "at": format_rfc3339(now),
        "status": overall(proxies, splits).json_label(),
        "proxies": proxies.iter().map(|p| match &p.samples {
            Ok(_) => json!({"endpoint": p.name, "ok": true}),
            Err(why) => json!({"endpoint": p.name, "ok": false, "error": why.to_string(), "error_kind": why.kind()}),
        }).collect::<Vec<_>>(),
        "splits": splits.iter().map(|v| {
            let r = &v.report;
            let mut state = state_json(&r.state);
            state["proxies"] = json!(v.reporting);
            state["agreeing"] = json!(v.agreeing);
            json!({
                "route": v.route,
                "rule": v.rule,
                "split": v.split,
                "rollback": state,
                "disagreeing": v.others.iter().map(|(name, s)| {
                    let mut s = state_json(s);
                    s["endpoint"] = json!(name);
                    s
                }).collect::<Vec<_>>(),
                "targets": r.targets.iter().zip(&v.traffic).map(|((t, configured, live), (rate, share))| json!({
                    "target": t,
                    "configured_percent": *configured as f64 / 10_000.0,
                    "live_percent": *live as f64 / 10_000.0,
                    "requests_per_second": rate,
                    "share_5xx": share,
                })).collect::<Vec<_>>(),
                "ramp": r.ramp.as_ref().map(|ramp| json!({
                    "gated": ramp.gate.is_some(),
                    "step": ramp.step,
                    "steps": ramp.steps,
                    "step_since": (ramp.since > 0).then(|| format_rfc3339(ramp.since)),
                    "next_step": (ramp.next > 0).then(|| format_rfc3339(ramp.next)),
                    "holding": ramp.holding,
                    "holding_since": (ramp.holding_since > 0).then(|| format_rfc3339(ramp.holding_since)),
                    "gate": ramp.gate.as_ref().map(|g| json!({
                        "responses": g.responses,
                        "min_responses": g.needed,
                        "error_rate": g.error_rate,
                        "latency": g.latency.map(|(p, ms)| json!({"percentile": p, "ms": ms})),
                        "passed": g.passed,
                    })),
                })),
                "local_only": r.local_only,
                "unanswered_checks": r.unanswered,
                "fleet_blind": r.blind,
                "compare": r.compare.as_ref().map(|c| json!({
                    "confidence": c.confidence,
                    "responses": {"canary": c.responses[0], "baseline": c.responses[1]},
                    "error_rate": {"canary": c.error_rates[0], "baseline": c.error_rates[1]},
                    "error_increase_bound": c.bound,
                    "latency": c.latency.map(|(p, [canary, baseline])| json!({"percentile": p, "canary_ms": canary, "baseline_ms": baseline})),
                    "within": c.within,
                })),
                "checks": r.checks.iter().map(|(n, value)| json!({"check": n, "value": value})).collect::<Vec<_>>(),
                "failing_polls": r.failures,
            })
        }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::samples::{from_admin, Sample};
    use super::*;

    fn proxy(name: &str, text: &str) -> Proxy {
        Proxy { name: name.into(), samples: Ok(from_admin(text)) }
    }

    const SPLIT: &str = "route=.=b;.;rule=.=rules[0];.;split=.=0d11;.;";

    fn stats(rolled_back: u32, live_canary: u32) -> String {
        format!(
            "{SPLIT}target=.=canary;.;canary_router_configured_weight_ppm: 200000\n\
             {SPLIT}target=.=stable;.;canary_router_configured_weight_ppm: 800000\n\
             {SPLIT}target=.=canary;.;canary_router_live_weight_ppm: {live_canary}\n\
             {SPLIT}target=.=stable;.;canary_router_live_weight_ppm: {}\n\
             {SPLIT}target=.=canary;.;canary_router_rolled_back: {rolled_back}\n\
             {SPLIT}canary_router_rolled_back_since_seconds: {}\n\
             {SPLIT}reason=.=check:error-rate;.;canary_router_rollback_reason: {rolled_back}\n\
             {SPLIT}canary_router_waiting_for_fleet: 0\n\
             {SPLIT}target=.=canary;.;canary_router_ramp_step: 2\n{SPLIT}canary_router_ramp_steps: 4\n\
             {SPLIT}canary_router_ramp_next_step_seconds: 1795695900\n\
             {SPLIT}check=.=error-rate;.;canary_router_check_value_millionths: 310000\n\
             {SPLIT}canary_router_check_failures: 2\n",
            1_000_000 - live_canary,
            if rolled_back > 0 { 1_795_695_660 } else { 0 }
        )
    }

    #[test]
    fn a_fleet_that_disagrees_shows_the_majority_and_names_the_rest() {
        let proxies = vec![
            proxy("a:1", &stats(1, 0)),
            proxy("b:1", &stats(1, 0)),
            proxy("c:1", &stats(0, 200_000)),
            Proxy { name: "d:1".into(), samples: Err(Failed::Unreachable("connection refused".into())) },
        ];
        let views = splits(&proxies);
        assert_eq!(views.len(), 1);
        assert_eq!((views[0].reporting, views[0].agreeing), (3, 2));
        assert_eq!(overall(&proxies, &views), Overall::RolledBack);
        let text = render(&proxies, &views, 1_795_695_700);
        for expected in [
            "3 of 4 proxies answered",
            "d:1  unreachable: connection refused",
            "route b  rule rules[0]  split 0d11",
            "ROLLED BACK since 2026-11-26T12:21:00Z (40s ago), reason check:error-rate; 2 of 3 proxies agree",
            "c:1: live: the canary gets its share",
            "  canary         20%        0%       0.0       -",
            "ramp: by the clock, step 2 of 4; next step at 2026-11-26T12:25:00Z (in 3m20s)",
            "checks: error-rate 0.31; 2 failing polls in a row",
            "overall: rolled back (exit 4)",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
        let json = to_json(&proxies, &views, 1_795_695_700);
        assert_eq!(json["status"], "rolled_back");
        assert_eq!(json["splits"][0]["rollback"]["reason"], "check:error-rate");
        assert_eq!(json["splits"][0]["targets"][0]["live_percent"], 0.0);
        assert_eq!(json["proxies"][3]["ok"], false);
    }

    #[test]
    fn a_gated_step_shows_what_it_waits_for_and_why_it_holds() {
        let gated = |passed: u32, holding: u32| {
            stats(0, 50_000)
                + &format!(
                    "{SPLIT}canary_router_ramp_gated: 1\n{SPLIT}canary_router_ramp_step_since_seconds: 1795695580\n\
                     {SPLIT}canary_router_gate_responses: 137\n{SPLIT}canary_router_gate_min_responses: 200\n\
                     {SPLIT}canary_router_gate_error_rate_millionths: 4000\n{SPLIT}canary_router_gate_latency_ms: 212\n\
                     {SPLIT}canary_router_gate_latency_percentile_tenths: 990\n{SPLIT}canary_router_gate_passed: {passed}\n\
                     {SPLIT}reason=.=maxWait;.;canary_router_ramp_holding: {holding}\n\
                     {SPLIT}reason=.=hold;.;canary_router_ramp_holding: 0\n\
                     {SPLIT}canary_router_rollback_fleet: 0\n\
                     {SPLIT}check=.=error-rate;.;canary_router_check_unanswered: 1\n"
                )
        };
        let proxies = vec![proxy("a:1", &gated(0, 1))];
        let views = splits(&proxies);
        let text = render(&proxies, &views, 1_795_695_700);
        for expected in [
            "live: the canary gets its share (local only: a proxy that restarts forgets a rollback)",
            "ramp: gated, step 2 of 4 since 2m0s ago, HOLDING (maxWait); waits for 137/200 responses, 0.4% errors, \
             p99 212 ms; advances as soon as it is judged healthy",
            "NO DATA from checks error-rate: nothing judges the canary by them (a gated step waits)",
            "overall: progressing (exit 3)",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
        let json = to_json(&proxies, &views, 1_795_695_700);
        let ramp = &json["splits"][0]["ramp"];
        assert_eq!((ramp["gated"].as_bool(), ramp["holding"].as_str()), (Some(true), Some("maxWait")));
        assert_eq!(ramp["gate"]["responses"], 137);
        assert_eq!(json["splits"][0]["unanswered_checks"][0], "error-rate");
        assert_eq!(json["splits"][0]["fleet_blind"], false);
    }

    #[test]
    fn a_blind_fleet_view_is_said_with_the_step_it_holds() {
        let blind = stats(0, 50_000)
            + &format!(
                "{SPLIT}canary_router_ramp_gated: 1\n{SPLIT}canary_router_gate_passed: 1\n\
                 {SPLIT}reason=.=fleetView;.;canary_router_ramp_holding: 1\n\
                 {SPLIT}canary_router_proxy_beacon: 123456\n{SPLIT}canary_router_fleet_blind: 1\n"
            );
        let proxies = vec![proxy("a:1", &blind)];
        let views = splits(&proxies);
        let text = render(&proxies, &views, 1_795_695_700);
        for expected in [
            "ramp: gated, step 2 of 4, HOLDING (fleetView)",
            "BLIND: Prometheus does not hold this proxy's own series of the split",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
        assert_eq!(to_json(&proxies, &views, 1_795_695_700)["splits"][0]["fleet_blind"], true);
    }

    #[test]
    fn rates_and_error_shares_come_from_the_filter_or_from_envoys_clusters() {
        let rate = |name: &str, labels: &[(&str, &str)], value: f64| Sample {
            name: format!("rate:{name}"),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            value,
        };
        let mut samples = from_admin(&stats(0, 200_000));
        samples.push(rate("canary_router_requests_total", &[("route", "b"), ("target", "canary")], 4.0));
        samples.push(rate("cluster.upstream_rq_completed", &[("cluster", "canary")], 4.0));
        samples.push(rate("cluster.upstream_rq_5xx", &[("cluster", "canary")], 1.0));
        // A healthy target: responses, and no 5xx series yet.
        samples.push(rate("cluster.upstream_rq_completed", &[("cluster", "healthy")], 2.0));
        samples.push(rate(
            "canary_router_responses_total",
            &[("route", "b"), ("target", "stable"), ("status_class", "2xx")],
            3.0,
        ));
        let proxies = vec![
            Proxy { name: "a:1".into(), samples: Ok(samples.clone()) },
            Proxy { name: "b:1".into(), samples: Ok(samples) },
        ];
        let views = splits(&proxies);
        assert_eq!(views[0].traffic[0], (8.0, Some(0.25)));
        assert_eq!(views[0].traffic[1], (0.0, Some(0.0)), "responses and no 5xx series: 0%, not unknown");
        assert_eq!(traffic(&[&proxies[0].samples.as_ref().unwrap()[..]], "b", "healthy"), (0.0, Some(0.0)));
        assert_eq!(
            traffic(&[&proxies[0].samples.as_ref().unwrap()[..]], "b", "nowhere"),
            (0.0, None),
            "no request counter: no requests yet"
        );
        assert_eq!(overall(&proxies, &views), Overall::Progressing, "a ramp at step 2 of 4");
    }

    #[test]
    fn a_finished_ramp_everywhere_alike_is_healthy_and_replaced_splits_are_left_out() {
        let done = stats(0, 200_000).replace("canary_router_ramp_step: 2", "canary_router_ramp_step: 4");
        let retired = "route=.=b;.;rule=.=rules[0];.;split=.=old;.;target=.=canary;.;canary_router_configured_weight_ppm: 0\n";
        let proxies = vec![proxy("a:1", &format!("{done}{retired}")), proxy("b:1", &done)];
        let views = splits(&proxies);
        assert_eq!(views.len(), 1);
        assert_eq!(overall(&proxies, &views), Overall::Healthy);
    }

    #[test]
    fn with_no_endpoint_answering_the_verdict_says_why_and_exits_by_it() {
        let unreachable =
            Proxy { name: "a:1".into(), samples: Err(Failed::Unreachable("connection refused".into())) };
        let proxies = vec![unreachable];
        let views = splits(&proxies);
        assert_eq!(overall(&proxies, &views), Overall::NoAnswer);
        let text = render(&proxies, &views, 1_795_695_600);
        assert!(text.contains("  a:1  unreachable: connection refused\n"), "{text}");
        assert!(!text.contains("no splits reported"), "no answer is not an answer without splits: {text}");
        assert!(text.ends_with("overall: no endpoint answered (exit 2)\n"), "{text}");
        let json = to_json(&proxies, &views, 1_795_695_600);
        assert_eq!(
            (json["status"].as_str(), json["proxies"][0]["error_kind"].as_str()),
            (Some("no_endpoint_answered"), Some("unreachable"))
        );
        for (failed, verdict, code) in [
            (Failed::Unauthorised("HTTP 401: unauthorized".into()), Overall::Unauthorised, 5),
            (Failed::Untrusted("invalid peer certificate: UnknownIssuer".into()), Overall::Untrusted, 6),
        ] {
            let kind = failed.kind();
            let proxies = vec![
                Proxy { name: "a:1".into(), samples: Err(Failed::Unreachable("timed out".into())) },
                Proxy { name: "b:1".into(), samples: Err(failed) },
            ];
            let views = splits(&proxies);
            assert_eq!(overall(&proxies, &views), verdict);
            assert_eq!(verdict.exit_code(), code);
            let text = render(&proxies, &views, 1_795_695_600);
            assert!(text.contains(&format!("  b:1  {kind}: ")), "{text}");
        }
        // A Prometheus that did not answer is not counted as a proxy.
        let proxies = vec![Proxy {
            name: "prometheus p:9090".into(),
            samples: Err(Failed::Untrusted("UnknownIssuer".into())),
        }];
        let text = render(&proxies, &splits(&proxies), 1_795_695_600);
        assert!(text.contains(": 0 of 0 proxies answered; Prometheus did not answer\n"), "{text}");
    }

    /// A split's `compare` gauges.
    fn compared() -> String {
        format!(
            "{SPLIT}canary_router_compare_confidence_millionths: 950000\n\
                 {SPLIT}arm=.=canary;.;canary_router_compare_responses: 1234\n\
                 {SPLIT}arm=.=baseline;.;canary_router_compare_responses: 23456\n\
                 {SPLIT}arm=.=canary;.;canary_router_compare_error_rate_millionths: 8000\n\
                 {SPLIT}arm=.=baseline;.;canary_router_compare_error_rate_millionths: 7000\n\
                 {SPLIT}canary_router_compare_error_increase_bound_millionths: 6000\n\
                 {SPLIT}canary_router_compare_latency_percentile_tenths: 990\n\
                 {SPLIT}arm=.=canary;.;canary_router_compare_latency_microseconds: 212400\n\
                 {SPLIT}arm=.=baseline;.;canary_router_compare_latency_microseconds: 198000\n\
                 {SPLIT}canary_router_compare_within: 1\n"
        )
    }

    #[test]
    fn the_comparison_with_the_baseline_is_shown_with_its_bound() {
        let proxies = vec![proxy("a:1", &(stats(0, 200_000) + &compared()))];
        let views = splits(&proxies);
        let text = render(&proxies, &views, 1_795_695_700);
        assert!(
            text.contains("  compare: errors canary 0.8% vs baseline 0.7% (+0.1 pt, bound +0.6 pt at 95%); p99 canary 212 ms vs baseline 198 ms; 1234 and 23456 responses since the step began; within its allowances at 95%\n"),
            "{text}"
        );
        let json = to_json(&proxies, &views, 1_795_695_700);
        let c = &json["splits"][0]["compare"];
        assert_eq!((c["within"].as_bool(), c["error_increase_bound"].as_f64()), (Some(true), Some(0.006)));
        assert_eq!(c["latency"]["canary_ms"].as_f64(), Some(212.4));
    }

    #[test]
    fn no_data_is_never_a_number_and_a_held_step_says_since_when() {
        // A Prometheus-only gate (no local window: no responses to count),
        // held past maxWait, its check without data.
        let held = stats(0, 50_000)
            + &format!(
                "{SPLIT}canary_router_ramp_gated: 1\n{SPLIT}canary_router_gate_min_responses: 0\n\
                 {SPLIT}canary_router_gate_passed: 0\n{SPLIT}reason=.=maxWait;.;canary_router_ramp_holding: 1\n\
                 {SPLIT}canary_router_ramp_holding_since_seconds: 1795695000\n\
                 {SPLIT}check=.=error-rate;.;canary_router_check_unanswered: 1\n"
            );
        let proxies = vec![proxy("a:1", &held)];
        let views = splits(&proxies);
        let text = render(&proxies, &views, 1_795_695_700);
        for expected in [
            "HOLDING (maxWait) since 2026-11-26T12:10:00Z (11m40s ago); waits for a Prometheus poll that passes during the step; advances as soon as it is judged healthy",
            "checks: error-rate no data; 2 failing polls in a row",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
        assert!(!text.contains("0/0 responses") && !text.contains("error-rate 0.31"), "{text}");
        let json = to_json(&proxies, &views, 1_795_695_700);
        assert_eq!(json["splits"][0]["ramp"]["holding_since"], "2026-11-26T12:10:00Z");
    }

    /// Every field `--json` writes is in docs/cli.md's table of them.
    #[test]
    fn every_json_field_is_documented() {
        let gated = stats(1, 0)
            + &format!(
                "{SPLIT}canary_router_ramp_gated: 1\n{SPLIT}canary_router_gate_passed: 0\n\
                 {SPLIT}canary_router_gate_latency_percentile_tenths: 990\n{SPLIT}canary_router_gate_latency_ms: 9\n\
                 {SPLIT}reason=.=hold;.;canary_router_ramp_holding: 1\n{SPLIT}canary_router_ramp_step_since_seconds: 1\n\
                 {SPLIT}canary_router_ramp_holding_since_seconds: 1\n{SPLIT}canary_router_rollback_fleet: 1\n"
            );
        let proxies = vec![
            proxy("a:1", &(gated + &compared())),
            proxy("b:1", &(stats(0, 200_000) + &compared())),
            Proxy { name: "c:1".into(), samples: Err(Failed::Unreachable("refused".into())) },
        ];
        let json = to_json(&proxies, &splits(&proxies), 1_795_695_700);
        fn keys(value: &Value, out: &mut std::collections::BTreeSet<String>) {
            match value {
                Value::Object(map) => {
                    for (key, value) in map {
                        out.insert(key.clone());
                        keys(value, out);
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
                _ => {}
            }
        }
        let mut all = std::collections::BTreeSet::new();
        keys(&json, &mut all);
        assert!(all.len() > 25, "{all:?}");
        let doc = std::fs::read_to_string(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/cli.md"
        )))
        .unwrap();
        let table = doc.split("| Field | Meaning |").nth(1).unwrap().split("\n\n").next().unwrap();
        for key in all {
            let named = [format!("`{key}`"), format!("`{key}[]`"), format!(".{key}`"), format!(".{key}[]`")];
            assert!(
                named.iter().any(|n| table.contains(n)),
                "--json's `{key}` is not in docs/cli.md's table"
            );
        }
    }
}
