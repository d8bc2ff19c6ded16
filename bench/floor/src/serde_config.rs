//! canary-router's config shape as serde structs (every object and key of
//! `src/config/shape.rs`, unknown keys refused), read in `on_configure`:
//! what reading the config with serde and serde_json would cost the
//! `.wasm` in bytes. Only `--features serde` builds it.
#![allow(dead_code)]

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    target_header: Option<String>,
    routes: Vec<Route>,
    mirror_budget: Option<MirrorBudget>,
    count_responses: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MirrorBudget {
    max_bytes: Option<f64>,
    max_in_flight: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Route {
    name: String,
    hosts: Option<Vec<String>>,
    path_prefix: Option<String>,
    default: String,
    rules: Option<Vec<Rule>>,
    mirror: Option<Mirror>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Mirror {
    cluster: String,
    percent: f64,
    timeout_ms: Option<f64>,
    max_body_bytes: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Rule {
    name: Option<String>,
    r#match: Option<Vec<Condition>>,
    target: Option<String>,
    split: Option<Split>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Condition {
    header: Option<String>,
    cookie: Option<String>,
    query: Option<String>,
    exact: Option<String>,
    prefix: Option<String>,
    regex: Option<String>,
    one_of: Option<Vec<String>>,
    present: Option<bool>,
    not: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Split {
    weights: Vec<Weight>,
    sticky_by: Option<Sticky>,
    salt: Option<String>,
    ramp: Option<Ramp>,
    assign_cookie: Option<AssignCookie>,
    rollback: Option<Rollback>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Weight {
    target: String,
    weight: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sticky {
    header: Option<String>,
    cookie: Option<String>,
    query: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Ramp {
    target: String,
    start: String,
    every: String,
    steps: Vec<f64>,
    gate: Option<Gate>,
    hold: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Gate {
    min_requests: Option<f64>,
    max_wait: Option<String>,
    on_max_wait: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AssignCookie {
    name: String,
    max_age: Option<f64>,
    path: Option<String>,
    secure: Option<bool>,
    http_only: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Rollback {
    target: String,
    max_error_rate: Option<f64>,
    min_requests: Option<f64>,
    window: Option<String>,
    latency: Option<Latency>,
    prometheus: Option<Prometheus>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Latency {
    percentile: f64,
    max_ms: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Prometheus {
    cluster: String,
    every: Option<String>,
    timeout_ms: Option<f64>,
    threshold: Option<f64>,
    lookback: Option<String>,
    checks: Option<Vec<Check>>,
    latch_query: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Check {
    name: String,
    query: String,
    min: Option<f64>,
    max: Option<f64>,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_buffer_bytes(kind: u32, start: usize, max: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_log(level: u32, message: *const u8, size: usize) -> u32;
}

/// Reads and checks the plugin configuration; its error, if any, is logged.
#[no_mangle]
pub extern "C" fn proxy_on_configure(_root_id: u32, size: usize) -> u32 {
    let mut data = std::ptr::null_mut();
    let mut len = 0;
    // SAFETY: the host writes a buffer it allocated through
    // proxy_on_memory_allocate, owned here from then on.
    let config = unsafe {
        if proxy_get_buffer_bytes(7, 0, size, &mut data, &mut len) != 0 || data.is_null() {
            return 0;
        }
        Vec::from_raw_parts(data, len, len.max(1))
    };
    match serde_json::from_slice::<Config>(&config) {
        Ok(_) => 1,
        Err(err) => {
            let message = err.to_string();
            // SAFETY: the slice outlives the call.
            unsafe { proxy_log(4, message.as_ptr(), message.len()) };
            0
        }
    }
}
