//! `canary-router simulate --rollout CONFIG --traffic TRAFFIC.json`: a
//! rollout rehearsed offline by the judge the proxies run
//! (`canary_router_core::rehearsal`), as a timeline or JSON.

use std::path::Path;

use canary_router_core::rehearsal::{self, ArmChange, ArmTraffic, Change, Happened, Rehearsal, Traffic};
use canary_router_core::text::decimal;
use canary_router_core::text::time::{format_span, parse_duration};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::input;
use crate::Failure;

/// The traffic file, as users write it (docs/cli.md, "simulate --rollout").
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TrafficFile {
    duration: String,
    rate: f64,
    canary: ArmFile,
    baseline: ArmFile,
    #[serde(default)]
    events: Vec<EventFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ArmFile {
    error_rate: f64,
    latency: LatencyFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LatencyFile {
    median: Option<f64>,
    p99: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EventFile {
    at: String,
    says: Option<String>,
    rate: Option<f64>,
    canary: Option<ArmChangeFile>,
    baseline: Option<ArmChangeFile>,
    /// The same change to both arms: a failure they share.
    both: Option<ArmChangeFile>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ArmChangeFile {
    error_rate: Option<f64>,
    #[serde(default)]
    latency: Option<LatencyChangeFile>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LatencyChangeFile {
    median: Option<f64>,
    p99: Option<f64>,
}

pub fn run(config: &Path, traffic: &Path, seed: u64, json_out: bool) -> Result<(), Failure> {
    let (origin, router) = input::router(config)?;
    let traffic = read_traffic(traffic)?;
    let rehearsal = rehearsal::rehearse(&router, &traffic, seed)
        .map_err(|e| Failure::Invalid(format!("{origin}: {e}")))?;
    if json_out {
        println!("{}", to_json(&rehearsal, &traffic, seed));
    } else {
        print!("{}", render(&rehearsal, &traffic, seed));
    }
    Ok(())
}

fn read_traffic(path: &Path) -> Result<Traffic, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("{shown}: {e}")))?;
    let file: TrafficFile =
        serde_json::from_str(&text).map_err(|e| Failure::Invalid(format!("{shown}: {e}")))?;
    let bad = |key: &str, why: &str| Failure::Invalid(format!("{shown}: {key}: {why}"));
    let duration = |key: &str, text: &str| parse_duration(text).map_err(|e| bad(key, &e));
    let share = |key: &str, value: f64| {
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(bad(key, &format!("must be a fraction from 0 to 1, got {value}")))
        }
    };
    if !(file.rate > 0.0 && file.rate <= 100_000.0) {
        return Err(bad(
            "rate",
            &format!("must be requests per second, above 0 and at most 100000, got {}", file.rate),
        ));
    }
    let arm = |key: &str, arm: &ArmFile| -> Result<ArmTraffic, Failure> {
        let median =
            arm.latency.median.ok_or_else(|| bad(&format!("{key}.latency"), "missing field `median`"))?;
        let p99 = arm.latency.p99.unwrap_or(median);
        if !(median > 0.0 && p99 >= median) {
            return Err(bad(&format!("{key}.latency"), "needs 0 < median <= p99 (ms)"));
        }
        Ok(ArmTraffic {
            error_rate: share(&format!("{key}.errorRate"), arm.error_rate)?,
            median_ms: median,
            p99_ms: p99,
        })
    };
    let mut changes = Vec::new();
    for (i, event) in file.events.iter().enumerate() {
        let key = format!("events[{i}]");
        let change = |name: &str, c: Option<ArmChangeFile>| -> Result<ArmChange, Failure> {
            let c = c.or(event.both).unwrap_or_default();
            let latency = c.latency.unwrap_or_default();
            Ok(ArmChange {
                error_rate: c.error_rate.map(|r| share(&format!("{key}.{name}.errorRate"), r)).transpose()?,
                median_ms: latency.median,
                p99_ms: latency.p99,
            })
        };
        let (canary, baseline) = (change("canary", event.canary)?, change("baseline", event.baseline)?);
        changes.push(Change {
            at_ms: duration(&format!("{key}.at"), &event.at)?,
            rate: event.rate,
            says: event.says.clone().unwrap_or_else(|| describe(&canary, &baseline, event.rate)),
            canary,
            baseline,
        });
    }
    if changes.windows(2).any(|w| w[1].at_ms < w[0].at_ms) {
        return Err(bad("events", "must be listed in time order"));
    }
    Ok(Traffic {
        duration_ms: duration("duration", &file.duration)?,
        rate: file.rate,
        canary: arm("canary", &file.canary)?,
        baseline: arm("baseline", &file.baseline)?,
        changes,
    })
}

/// A change in words, when the file gives none.
fn describe(canary: &ArmChange, baseline: &ArmChange, rate: Option<f64>) -> String {
    let mut parts = Vec::new();
    for (name, arm) in [("canary", canary), ("baseline", baseline)] {
        if let Some(rate) = arm.error_rate {
            parts.push(format!("{name} errors {}%", decimal::format(rate * 100.0)));
        }
        if let Some(ms) = arm.median_ms {
            parts.push(format!("{name} median {} ms", decimal::format(ms)));
        }
        if let Some(ms) = arm.p99_ms {
            parts.push(format!("{name} p99 {} ms", decimal::format(ms)));
        }
    }
    if let Some(rate) = rate {
        parts.push(format!("{} requests/s", decimal::format(rate)));
    }
    parts.join(", ")
}

fn at(ms: u64) -> String {
    format_span(ms / 1_000)
}

fn render(r: &Rehearsal, traffic: &Traffic, seed: u64) -> String {
    let mut out = format!(
        "rehearsal of route {} (seed {seed}): {} of traffic at {} requests/s\n",
        r.route,
        at(traffic.duration_ms),
        decimal::format(traffic.rate)
    );
    for event in &r.events {
        let what = match &event.what {
            Happened::Step { step, percent } => {
                format!("step {}: the canary at {}%", step + 1, decimal::format(*percent))
            }
            Happened::Holding => "HOLDING: the step could not be judged within maxWait".to_string(),
            Happened::RolledBack { reason, detail } => format!("ROLLED BACK ({reason}): {detail}"),
            Happened::Changed(says) => format!("traffic: {says}"),
        };
        out += &format!("  {:>7}  {what}\n", at(event.at_ms));
    }
    let share =
        if r.canary_requests == 0 { 0.0 } else { r.canary_errors as f64 * 100.0 / r.canary_requests as f64 };
    out += &format!(
        "canary served {} of {} requests, {} errors ({}%)\n",
        r.canary_requests,
        r.requests,
        r.canary_errors,
        decimal::fixed(share, 2)
    );
    out += &match (r.rolled_back_at_ms, r.last_step_at_ms) {
        (Some(ms), _) => format!("rolled back at {}\n", at(ms)),
        (None, Some(ms)) => format!("reached its last step at {}\n", at(ms)),
        (None, None) => "neither finished nor rolled back within the traffic's duration\n".to_string(),
    };
    for left in &r.left_out {
        out += &format!("not rehearsed: {left}\n");
    }
    out
}

fn to_json(r: &Rehearsal, traffic: &Traffic, seed: u64) -> Value {
    let seconds = |ms: u64| ms as f64 / 1_000.0;
    let events: Vec<Value> = r
        .events
        .iter()
        .map(|e| match &e.what {
            Happened::Step { step, percent } => {
                json!({"at_seconds": seconds(e.at_ms), "kind": "step", "step": step + 1, "percent": percent})
            }
            Happened::Holding => json!({"at_seconds": seconds(e.at_ms), "kind": "holding"}),
            Happened::RolledBack { reason, detail } => {
                json!({"at_seconds": seconds(e.at_ms), "kind": "rolled_back", "reason": reason, "detail": detail})
            }
            Happened::Changed(says) => json!({"at_seconds": seconds(e.at_ms), "kind": "traffic", "says": says}),
        })
        .collect();
    json!({
        "route": r.route,
        "seed": seed,
        "duration_seconds": seconds(traffic.duration_ms),
        "events": events,
        "requests": r.requests,
        "canary_requests": r.canary_requests,
        "canary_errors": r.canary_errors,
        "last_step_at_seconds": r.last_step_at_ms.map(seconds),
        "rolled_back_at_seconds": r.rolled_back_at_ms.map(seconds),
        "left_out": r.left_out,
    })
}
