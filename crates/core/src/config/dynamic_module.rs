//! What the `.wasm` does that the dynamic module (crates/dynmod) does not
//! do yet: a config that asks for it is refused there, naming the key,
//! rather than routed without it (a fleet latch never asked would look
//! like it works). The CLI checks a config bound for the module the same way.

use crate::routing::router::Router;

/// The first key of `router` the module cannot honour, as a refusal.
pub fn refusal(router: &Router) -> Option<String> {
    for (r, route) in router.routes.iter().enumerate() {
        for (i, rule) in route.rules.iter().enumerate() {
            let Some(split) = rule.split() else { continue };
            let Some(rollback) = split.rollback() else { continue };
            let at = format!("routes[{r}].rules[{i}].split.rollback");
            if rollback.prometheus.is_some() {
                return Some(not_yet(&format!("{at}.prometheus"), "Prometheus checks and the fleet latch"));
            }
        }
    }
    None
}

fn not_yet(key: &str, what: &str) -> String {
    format!("{key}: the dynamic module does not do {what} yet; load the .wasm for this config (docs/envoy.md, \"A native home\")")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn refused(json: &str) -> Option<String> {
        refusal(&config::parse(json.as_bytes()).unwrap())
    }

    /// A route whose second rule splits `b`/`a` with `extra` in the split.
    fn split_with(extra: &str) -> String {
        format!(
            r#"{{"routes": [{{"name": "r", "default": "a", "rules": [
                {{"match": [{{"header": "foo", "exact": "bar"}}], "target": "b"}},
                {{"split": {{"weights": [{{"target": "b", "weight": 20}}, {{"target": "a", "weight": 80}}]{extra}}}}}]}}]}}"#
        )
    }

    #[test]
    fn routing_alone_is_accepted() {
        assert_eq!(refused(&split_with(r#", "assignCookie": {"name": "v"}"#)), None);
        assert_eq!(refused(include_str!("../../../../examples/config-30.json")), None);
    }

    #[test]
    fn clock_and_locally_gated_ramps_are_accepted() {
        let clock =
            r#""target": "b", "start": "2030-01-07T10:00:00Z", "every": "10m", "steps": [10, 50, 100]"#;
        assert_eq!(refused(&split_with(&format!(r#", "ramp": {{{clock}}}"#))), None);
        let window =
            r#""rollback": {"target": "b", "maxErrorRate": 0.05, "minRequests": 20, "window": "60s"}"#;
        let gated = format!(r#", "ramp": {{{clock}, "gate": {{"minRequests": 20}}}}, {window}"#);
        assert_eq!(refused(&split_with(&gated)), None);
    }

    #[test]
    fn a_local_or_compared_rollback_is_accepted_a_fleet_one_refused_by_its_key() {
        let local = r#""target": "b", "maxErrorRate": 0.05, "minRequests": 20, "window": "60s""#;
        assert_eq!(refused(&split_with(&format!(r#", "rollback": {{{local}}}"#))), None);
        let prometheus = r#""prometheus": {"cluster": "prometheus", "checks": [{"name": "e", "query": "vector(0)", "max": 1}]}"#;
        let refusal = refused(&split_with(&format!(r#", "rollback": {{{local}, {prometheus}}}"#))).unwrap();
        assert!(refusal.starts_with("routes[0].rules[1].split.rollback.prometheus: "), "{refusal}");
        let compare = r#""compare": {"maxErrorRateIncrease": 0.01}"#;
        assert_eq!(refused(&split_with(&format!(r#", "rollback": {{{local}, {compare}}}"#))), None);
    }

    #[test]
    fn a_mirror_is_accepted() {
        let json = r#"{"routes": [{"name": "r", "default": "a"},
            {"name": "s", "default": "a", "mirror": {"cluster": "shadow", "percent": 10}}]}"#;
        assert_eq!(refused(json), None);
    }
}
