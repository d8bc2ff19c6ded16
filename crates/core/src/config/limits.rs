//! Hard limits on a config. Every proxy worker compiles and holds its own
//! copy, so an unbounded config multiplies into memory and start-up time on
//! every VM; these bounds keep the largest accepted config routing at full
//! speed (routes are looked up by host, not scanned) while a typo such as a
//! generated config with 10,000 routes is refused with the place named.

/// The config document itself (JSON bytes).
pub const CONFIG_BYTES: usize = 4 * 1024 * 1024;
/// Routes in a config.
pub const ROUTES: usize = 2_000;
/// `hosts` entries of one route.
pub const HOSTS_PER_ROUTE: usize = 100;
/// Rules of one route: a request may try them all.
pub const RULES_PER_ROUTE: usize = 100;
/// Rules in all routes together.
pub const RULES: usize = 10_000;
/// Conditions of one rule's `match`.
pub const CONDITIONS_PER_RULE: usize = 16;
/// Targets of one split.
pub const TARGETS_PER_SPLIT: usize = 32;
/// Values of one `oneOf`.
pub const ONE_OF_VALUES: usize = 1_000;
/// Regex conditions in the whole config (each compiles an automaton per VM).
pub const REGEXES: usize = 1_000;
/// Ramp steps of one split.
pub const RAMP_STEPS: usize = 1_000;
/// Prometheus checks of one rollback: each is a query every `every`.
pub const CHECKS_PER_ROLLBACK: usize = 10;
/// Extra request headers of a rollback's Prometheus queries.
pub const PROMETHEUS_HEADERS: usize = 16;

/// A count against its limit, as an error message when it is over.
pub fn check(count: usize, limit: usize, what: &str) -> Result<(), String> {
    if count > limit {
        Err(format!("{count} {what}; at most {limit} are allowed (config reference, \"Limits\")"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_over_its_limit_says_both() {
        assert_eq!(check(2, 2, "routes"), Ok(()));
        assert_eq!(
            check(3, 2, "routes").unwrap_err(),
            "3 routes; at most 2 are allowed (config reference, \"Limits\")"
        );
    }
}
