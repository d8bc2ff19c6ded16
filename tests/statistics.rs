//! Statistical checks of the splits at 1,000,000 decisions: chi-square
//! goodness of fit for random and sticky choices, and bucket stability
//! across config reloads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use canary_router_core::config;
use canary_router_core::hashing::rng::Rng;
use canary_router_core::request::Request;
use canary_router_core::routing::router::Router;
use canary_router_core::routing::split::Moment;
use harness::Proxy;

/// Chi-square critical values at p = 0.001 by degrees of freedom: a fair
/// split exceeds them once in a thousand runs; the seeds are fixed, so the
/// tests are deterministic.
const CRITICAL_P001: [f64; 5] = [0.0, 10.83, 13.82, 16.27, 18.47];

fn split_router(weights: &[f64], sticky: bool) -> Router {
    let weights: Vec<String> =
        weights.iter().enumerate().map(|(i, w)| format!(r#"{{"target": "t{i}", "weight": {w}}}"#)).collect();
    let sticky = if sticky { r#", "stickyBy": {"header": "x-user"}"# } else { "" };
    let json = format!(
        r#"{{"routes": [{{"name": "r", "default": "t0", "rules": [{{"split": {{"weights": [{}]{sticky}}}}}]}}]}}"#,
        weights.join(", ")
    );
    config::parse(json.as_bytes()).unwrap()
}

fn chi_square(counts: &[u64], weights: &[f64]) -> f64 {
    let n: u64 = counts.iter().sum();
    let total: f64 = weights.iter().sum();
    counts
        .iter()
        .zip(weights)
        .map(|(&observed, w)| {
            let expected = n as f64 * w / total;
            (observed as f64 - expected).powi(2) / expected
        })
        .sum()
}

fn index(target: &str) -> usize {
    target[1..].parse().unwrap()
}

#[test]
fn random_choices_fit_the_weights_at_a_million_decisions() {
    for weights in [&[20.0, 80.0][..], &[50.0, 30.0, 15.0, 5.0], &[1.0, 1.0, 1.0, 1.0, 1.0], &[0.5, 99.5]] {
        let router = split_router(weights, false);
        let request = Request::new(vec![]);
        let mut rng = Rng::new(2026);
        let mut counts = vec![0u64; weights.len()];
        for _ in 0..1_000_000 {
            let decision = router.decide(&request, &Moment::roll(rng.roll())).unwrap();
            counts[index(decision.target)] += 1;
        }
        let chi2 = chi_square(&counts, weights);
        assert!(chi2 < CRITICAL_P001[weights.len() - 1], "{weights:?}: chi-square {chi2:.2} for {counts:?}");
    }
}

#[test]
fn sticky_choices_fit_the_weights_at_a_million_ids() {
    for weights in [&[20.0, 80.0][..], &[50.0, 30.0, 15.0, 5.0]] {
        let router = split_router(weights, true);
        let mut counts = vec![0u64; weights.len()];
        for id in 0..1_000_000u32 {
            let user = format!("user-{id}");
            let request = Request::new(vec![(b"x-user", user.as_bytes())]);
            counts[index(router.decide(&request, &Moment::roll(0)).unwrap().target)] += 1;
        }
        let chi2 = chi_square(&counts, weights);
        assert!(chi2 < CRITICAL_P001[weights.len() - 1], "{weights:?}: chi-square {chi2:.2} for {counts:?}");
    }
}

#[test]
fn sticky_buckets_survive_config_reloads_and_unrelated_edits() {
    let base = r#"{"routes": [{"name": "shop", "hosts": ["shop.test"], "default": "v1", "rules": [{"split": {
        "weights": [{"target": "v2", "weight": 30}, {"target": "v1", "weight": 70}], "stickyBy": {"cookie": "uid"}}}]}]}"#;
    // Another route added in front, rules renamed: the split's salt (its
    // route's name) and weights are unchanged, so nobody moves.
    let edited = r#"{"targetHeader": "x-version", "routes": [
        {"name": "other", "hosts": ["other.test"], "default": "x"},
        {"name": "shop", "hosts": ["shop.test"], "default": "v1", "rules": [
            {"name": "beta", "match": [{"header": "x-beta", "present": true}], "target": "v2"},
            {"name": "ab", "split": {"weights": [{"target": "v2", "weight": 30}, {"target": "v1", "weight": 70}], "stickyBy": {"cookie": "uid"}}}]}]}"#;
    let mut proxy = Proxy::configured(base);
    let ids: Vec<String> = (0..2_000).map(|i| format!("uid=u{i}")).collect();
    let assign = |proxy: &mut Proxy, header: &str| -> Vec<String> {
        ids.iter()
            .map(|c| {
                proxy
                    .send(&[(":authority", "shop.test"), (":path", "/"), ("cookie", c)])
                    .upstream
                    .get(header)
                    .unwrap()
            })
            .collect()
    };
    let before = assign(&mut proxy, "x-route-target");
    assert!(proxy.configure(base));
    assert_eq!(assign(&mut proxy, "x-route-target"), before, "a reload of the same config moved users");
    assert!(proxy.configure(edited));
    assert_eq!(assign(&mut proxy, "x-version"), before, "an unrelated edit moved users");
    let mut fresh = Proxy::start_with(harness::LogLevel::Info, 99);
    assert!(fresh.configure(edited));
    assert_eq!(assign(&mut fresh, "x-version"), before, "a new VM assigns differently");
}
