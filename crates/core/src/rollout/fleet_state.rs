//! One rollback split's state as a proxy's workers share it (the proxy's
//! shared data holds the bytes), and how a Prometheus poll changes it:
//! whether and why the split is rolled back, whether the fleet latch has
//! answered since this proxy started, where its checks stand, and whether
//! Prometheus shows this proxy's own series (the fleet view). Every worker
//! reads it on its tick; the worker that polls writes it.

use crate::rollout::gate::{FleetProgress, GateState, HoldReason, Holding, PollSummary};
use crate::rollout::prometheus::Sample;
use crate::rollout::settings::PrometheusChecks;
use crate::text::le_bytes::{put_text, Reader};

/// Why and since when a split is rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// Milliseconds since the epoch.
    pub since_ms: u64,
    /// The `reason` label: `window`, `check:NAME` or `fleet`.
    pub reason: String,
    /// What a person reads: the numbers behind it.
    pub detail: String,
}

/// Whether Prometheus shows this proxy's own series: without them, the
/// latches' answers say nothing about this proxy, and may say nothing
/// about the fleet (no stats tags, no scrape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// The last answer of the view query found this proxy's beacon.
    pub seen: bool,
    /// Since when the answers have not (ms since the epoch); `None` while
    /// they do, and before the first answer.
    pub unseen_since_ms: Option<u64>,
}

impl View {
    /// Blind: not seen for at least `grace_ms` (a scrape interval or two).
    pub fn blind(&self, grace_ms: u64, now_ms: u64) -> bool {
        self.unseen_since_ms.is_some_and(|since| now_ms.saturating_sub(since) >= grace_ms)
    }
}

/// The shared state of one split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetState {
    pub rolled_back: Option<RolledBack>,
    /// The fleet latch answered, since this proxy started, that no proxy
    /// rolled this split back. Until it does, a split whose rollback asks
    /// Prometheus sends its watched target nothing.
    pub latch_clear: bool,
    /// Polls in a row in which a check failed.
    pub failures: u32,
    /// When the next poll is due (ms since the epoch).
    pub next_poll_ms: u64,
    /// Each check's last value (its worst series).
    pub values: Vec<Option<f64>>,
    /// Queries that got no usable answer, in all.
    pub errors: u64,
    /// A gated ramp's progress (`None` until it is first looked at).
    pub gate: Option<GateState>,
    /// What the last poll said, for a gated ramp.
    pub last_poll: Option<PollSummary>,
    /// The furthest step any proxy of the fleet reached and how long it
    /// was judged (the step latch); `None` until one did.
    pub fleet: Option<FleetProgress>,
    /// Whether the fleet view shows this proxy.
    pub view: View,
}

/// One finished poll: each check's answer (in the config's order), the
/// latch's, the view's and, for a gated ramp, the step latch's (the
/// furthest value of the fleet's progress gauge). `None` for a query never
/// answered.
pub struct Poll<'a> {
    pub checks: &'a [Option<Sample>],
    pub latch: Option<&'a Sample>,
    pub view: Option<&'a Sample>,
    pub step_latch: Option<Option<&'a Sample>>,
    pub now_ms: u64,
}

impl FleetState {
    /// Judges a poll. A check fails when its value crosses a bound; the
    /// poll fails when any check fails, passes when none fails and one had
    /// a value, and otherwise (only errors, timeouts, empty results or
    /// NaN) changes nothing: Prometheus being down neither rolls a split
    /// back nor clears its failures. `threshold` failing polls in a row,
    /// or a latch above 0, roll the split back; a latch of 0 or no data
    /// clears the wait of a proxy that just started.
    pub fn record_poll(&mut self, config: &PrometheusChecks, poll: &Poll<'_>) {
        if self.values.len() != config.checks.len() {
            self.values = vec![None; config.checks.len()];
        }
        let mut failed = None;
        let mut passed = false;
        for ((check, sample), slot) in config.checks.iter().zip(poll.checks).zip(&mut self.values) {
            match sample {
                Some(Sample::Value(span)) => {
                    *slot = Some(check.worst(*span));
                    if check.fails(*span) {
                        failed = failed.or_else(|| Some((check.name.clone(), check.describe(*span))));
                    } else {
                        passed = true;
                    }
                }
                Some(Sample::NoData) => *slot = None,
                Some(Sample::Error(_)) | None => {}
            }
        }
        let unanswered = |s: Option<&Sample>| matches!(s, Some(Sample::Error(_)) | None);
        let errors = poll.checks.iter().filter(|s| unanswered(s.as_ref())).count()
            + usize::from(unanswered(poll.latch))
            + usize::from(unanswered(poll.view))
            + poll.step_latch.map_or(0, |s| usize::from(unanswered(s)));
        self.errors += errors as u64;
        self.last_poll = Some(summary(config, poll));
        if failed.is_some() {
            self.failures = self.failures.saturating_add(1);
        } else if passed {
            self.failures = 0;
        }
        match poll.latch {
            Some(Sample::Value(value)) if value.high > 0.0 && self.rolled_back.is_none() => {
                self.rolled_back = Some(RolledBack {
                    since_ms: poll.now_ms,
                    reason: "fleet".into(),
                    detail: format!("a proxy of the fleet rolled this split back within {}", config.lookback),
                });
            }
            Some(Sample::Value(value)) if value.high > 0.0 => {}
            // A gated ramp also waits for the step latch: a started proxy
            // must resume at the fleet's step, never at the first.
            Some(Sample::Value(_) | Sample::NoData) => {
                self.latch_clear |=
                    poll.step_latch.is_none_or(|s| matches!(s, Some(Sample::Value(_) | Sample::NoData)))
            }
            _ => {}
        }
        match poll.view {
            Some(Sample::Value(count)) if count.high >= 1.0 => {
                self.view = View { seen: true, unseen_since_ms: None }
            }
            Some(Sample::Value(_) | Sample::NoData) => {
                self.view =
                    View { seen: false, unseen_since_ms: self.view.unseen_since_ms.or(Some(poll.now_ms)) }
            }
            _ => {}
        }
        if let Some(Some(Sample::Value(value))) = poll.step_latch {
            if let Some(furthest) = FleetProgress::read(value.high) {
                let ahead =
                    self.fleet.is_none_or(|f| (furthest.step, furthest.clock_ms) > (f.step, f.clock_ms));
                if ahead {
                    self.fleet = Some(furthest);
                }
            }
        }
        if let (None, Some((name, detail))) = (&self.rolled_back, failed) {
            if self.failures >= config.threshold {
                self.rolled_back = Some(RolledBack {
                    since_ms: poll.now_ms,
                    reason: format!("check:{name}"),
                    detail: format!("{detail}, {} polls in a row", self.failures),
                });
            }
        }
    }

    /// A compact binary form: the shared data holds bytes, every worker
    /// reads it every second, and only this filter reads it.
    pub fn encode(&self) -> Vec<u8> {
        let flags = u8::from(self.rolled_back.is_some())
            | u8::from(self.latch_clear) << 1
            | u8::from(self.gate.is_some()) << 2
            | u8::from(self.last_poll.is_some()) << 3
            | u8::from(self.fleet.is_some()) << 4
            | u8::from(self.view.seen) << 5
            | u8::from(self.view.unseen_since_ms.is_some()) << 6;
        let mut out = vec![FORMAT, flags];
        out.extend_from_slice(&self.failures.to_le_bytes());
        out.extend_from_slice(&self.next_poll_ms.to_le_bytes());
        out.extend_from_slice(&self.errors.to_le_bytes());
        out.push(u8::try_from(self.values.len()).unwrap_or(u8::MAX));
        for value in self.values.iter().take(usize::from(u8::MAX)) {
            // None as a NaN: a check's value is never NaN (that is no data).
            out.extend_from_slice(&value.unwrap_or(f64::NAN).to_bits().to_le_bytes());
        }
        if let Some(r) = &self.rolled_back {
            out.extend_from_slice(&r.since_ms.to_le_bytes());
            put_text(&mut out, &r.reason);
            put_text(&mut out, &r.detail);
        }
        if let Some(g) = &self.gate {
            out.extend_from_slice(&g.step.to_le_bytes());
            for ms in [g.since_ms, g.clock_ms, g.looked_ms] {
                out.extend_from_slice(&ms.to_le_bytes());
            }
            let reason = g.holding.map_or(0, |h| match h.reason {
                HoldReason::Hold => 1,
                HoldReason::MaxWait => 2,
                HoldReason::FleetView => 3,
            });
            out.push(reason);
            out.extend_from_slice(&g.holding.map_or(0, |h| h.since_ms).to_le_bytes());
        }
        if let Some(p) = &self.last_poll {
            out.extend_from_slice(&p.at_ms.to_le_bytes());
            for names in [&p.unanswered, &p.failed] {
                out.push(u8::try_from(names.len()).unwrap_or(u8::MAX));
                for name in names.iter().take(usize::from(u8::MAX)) {
                    put_text(&mut out, name);
                }
            }
        }
        if let Some(fleet) = self.fleet {
            out.extend_from_slice(&fleet.step.to_le_bytes());
            out.extend_from_slice(&fleet.clock_ms.to_le_bytes());
        }
        if let Some(since) = self.view.unseen_since_ms {
            out.extend_from_slice(&since.to_le_bytes());
        }
        out
    }

    /// What the bytes hold; anything unreadable reads as the default (a
    /// split that starts over is safe: it waits for the latch again).
    pub fn decode(bytes: &[u8]) -> FleetState {
        Self::read(&mut Reader(bytes)).unwrap_or_default()
    }

    fn read(r: &mut Reader<'_>) -> Option<FleetState> {
        if r.u8()? != FORMAT {
            return None;
        }
        let flags = r.u8()?;
        let failures = r.u32()?;
        let next_poll_ms = r.u64()?;
        let errors = r.u64()?;
        let count = r.u8()?;
        let values = (0..count)
            .map(|_| r.u64().map(f64::from_bits).map(|v| (!v.is_nan()).then_some(v)))
            .collect::<Option<_>>()?;
        let rolled_back = if flags & 1 == 1 {
            let since_ms = r.u64()?;
            let reason = r.text()?;
            let detail = r.text()?;
            Some(RolledBack { since_ms, reason, detail })
        } else {
            None
        };
        let gate = if flags & 4 == 4 {
            let (step, since_ms, clock_ms, looked_ms) = (r.u32()?, r.u64()?, r.u64()?, r.u64()?);
            let (reason, held_since) = (r.u8()?, r.u64()?);
            let reason = match reason {
                0 => None,
                1 => Some(HoldReason::Hold),
                2 => Some(HoldReason::MaxWait),
                3 => Some(HoldReason::FleetView),
                _ => return None,
            };
            let holding = reason.map(|reason| Holding { reason, since_ms: held_since });
            Some(GateState { step, since_ms, clock_ms, looked_ms, holding })
        } else {
            None
        };
        let last_poll = if flags & 8 == 8 {
            let at_ms = r.u64()?;
            let mut names = || -> Option<Vec<String>> { (0..r.u8()?).map(|_| r.text()).collect() };
            let unanswered = names()?;
            Some(PollSummary { at_ms, unanswered, failed: names()? })
        } else {
            None
        };
        let fleet =
            if flags & 16 == 16 { Some(FleetProgress { step: r.u32()?, clock_ms: r.u64()? }) } else { None };
        let unseen_since_ms = if flags & 64 == 64 { Some(r.u64()?) } else { None };
        Some(FleetState {
            rolled_back,
            latch_clear: flags & 2 == 2,
            failures,
            next_poll_ms,
            values,
            errors,
            gate,
            last_poll,
            fleet,
            view: View { seen: flags & 32 == 32, unseen_since_ms },
        })
    }
}

/// What a poll said of each check, by name.
fn summary(config: &PrometheusChecks, poll: &Poll<'_>) -> PollSummary {
    let mut summary = PollSummary { at_ms: poll.now_ms, unanswered: Vec::new(), failed: Vec::new() };
    for (check, sample) in config.checks.iter().zip(poll.checks) {
        match sample {
            Some(Sample::Value(span)) if check.fails(*span) => summary.failed.push(check.name.clone()),
            Some(Sample::Value(_)) => {}
            _ => summary.unanswered.push(check.name.clone()),
        }
    }
    summary
}

/// The first byte of the encoding: another layout reads as a fresh start.
const FORMAT: u8 = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::prometheus::Span;
    use crate::rollout::settings::Check;

    fn config(threshold: u32) -> PrometheusChecks {
        let check =
            |name: &str, min, max| Check { name: name.into(), query: "q".into(), min, max, compare_to: None };
        PrometheusChecks {
            cluster: "prometheus".into(),
            every_ms: 5_000,
            timeout_ms: 1_000,
            threshold,
            lookback: "3600s".into(),
            baseline: "stable".into(),
            checks: vec![check("error-rate", None, Some(0.05)), check("throughput", Some(1.0), None)],
            latch_query: "latch {{split}}".into(),
            view_query: "view {{split}} {{beacon}}".into(),
            blind_after_ms: 60_000,
            path_prefix: String::new(),
            headers: Vec::new(),
            authority: "prometheus".into(),
        }
    }

    #[allow(non_snake_case)]
    fn Value(value: f64) -> Sample {
        Sample::Value(Span::one(value))
    }

    fn poll_at(
        state: &mut FleetState,
        config: &PrometheusChecks,
        checks: [Sample; 2],
        latch: Sample,
        now_ms: u64,
    ) {
        let checks = checks.map(Some);
        let view = Value(1.0);
        state.record_poll(
            config,
            &Poll { checks: &checks, latch: Some(&latch), view: Some(&view), step_latch: None, now_ms },
        );
    }

    fn poll(state: &mut FleetState, config: &PrometheusChecks, checks: [Sample; 2], latch: Sample) {
        poll_at(state, config, checks, latch, 42);
    }

    use Sample::{Error, NoData};

    #[test]
    fn threshold_failing_polls_in_a_row_roll_back() {
        let config = config(2);
        let mut state = FleetState::default();
        poll(&mut state, &config, [Value(0.31), Value(5.0)], Value(0.0));
        assert_eq!((state.failures, state.rolled_back.is_none(), state.latch_clear), (1, true, true));
        // A passing poll in between starts the count over.
        poll(&mut state, &config, [Value(0.01), Value(5.0)], Value(0.0));
        assert_eq!(state.failures, 0);
        poll(&mut state, &config, [Value(0.31), Value(5.0)], Value(0.0));
        poll(&mut state, &config, [Value(0.02), Value(0.5)], Value(0.0));
        let rolled = state.rolled_back.clone().expect("two failing polls in a row");
        assert_eq!(rolled.reason, "check:throughput");
        assert_eq!(rolled.detail, "throughput: 0.5 < 1, 2 polls in a row");
        assert_eq!(rolled.since_ms, 42);
        assert_eq!(state.values, vec![Some(0.02), Some(0.5)]);
    }

    #[test]
    fn every_series_must_pass_its_bound_the_worst_one_judges() {
        let config = config(1);
        let mut state = FleetState::default();
        // Two series of throughput, 0.5 and 2: `min: 1` fails on the 0.5.
        let throughput = Sample::Value(Span { low: 0.5, high: 2.0 });
        poll(&mut state, &config, [Value(0.01), throughput], Value(0.0));
        assert_eq!(state.values[1], Some(0.5), "the smallest series is the value a min check shows");
        assert_eq!(state.rolled_back.clone().map(|r| r.reason), Some("check:throughput".to_string()));
        // Two series of error rate, 0.01 and 0.2: `max: 0.05` fails on the 0.2.
        let mut state = FleetState::default();
        let errors = Sample::Value(Span { low: 0.01, high: 0.2 });
        poll(&mut state, &config, [errors, Value(5.0)], Value(0.0));
        assert_eq!(state.values[0], Some(0.2));
        assert_eq!(
            state.rolled_back.map(|r| r.detail),
            Some("error-rate: 0.2 > 0.05, 1 polls in a row".to_string())
        );
        // Every series within: the value shown is the nearest to failing.
        let mut state = FleetState::default();
        let within = Sample::Value(Span { low: 1.5, high: 9.0 });
        poll(&mut state, &config, [Sample::Value(Span { low: 0.0, high: 0.04 }), within], Value(0.0));
        assert_eq!((state.values.clone(), state.failures), (vec![Some(0.04), Some(1.5)], 0));
    }

    #[test]
    fn errors_and_missing_data_neither_fail_nor_pass_a_poll() {
        let config = config(2);
        let mut state = FleetState::default();
        poll(&mut state, &config, [Value(0.31), Value(5.0)], Value(0.0));
        poll(&mut state, &config, [Error("timeout".into()), NoData], Error("timeout".into()));
        assert_eq!(state.failures, 1, "kept, not reset or raised");
        assert_eq!(state.errors, 2);
        assert!(state.rolled_back.is_none());
        assert_eq!(state.values, vec![Some(0.31), None], "the last value stays; no data clears it");
        poll(&mut state, &config, [Value(0.5), NoData], NoData);
        assert_eq!(state.rolled_back.unwrap().reason, "check:error-rate");
    }

    #[test]
    fn the_latch_rolls_back_or_clears_the_wait_and_an_error_does_neither() {
        let config = config(3);
        let mut state = FleetState::default();
        poll(&mut state, &config, [NoData, NoData], Error("connection refused".into()));
        assert!(!state.latch_clear && state.rolled_back.is_none(), "a proxy waits while Prometheus is down");
        poll(&mut state, &config, [NoData, NoData], NoData);
        assert!(state.latch_clear, "no proxy ever reported the split: nothing to wait for");
        poll(&mut state, &config, [Value(0.0), Value(5.0)], Value(1.0));
        let rolled = state.rolled_back.clone().unwrap();
        assert_eq!(rolled.reason, "fleet");
        // Once rolled back it stays, with its first reason.
        poll(&mut state, &config, [Value(0.9), Value(0.0)], Value(1.0));
        assert_eq!(state.rolled_back, Some(rolled));
    }

    #[test]
    fn the_view_is_seen_or_unseen_since_a_time_and_blind_after_the_grace() {
        let config = config(2);
        let mut state = FleetState::default();
        let viewed = |state: &mut FleetState, view: Sample, now_ms| {
            let checks = [Some(NoData), Some(NoData)];
            let poll =
                Poll { checks: &checks, latch: Some(&NoData), view: Some(&view), step_latch: None, now_ms };
            state.record_poll(&config, &poll);
        };
        assert!(!state.view.seen && !state.view.blind(60_000, 0), "before any answer: unseen, not yet blind");
        viewed(&mut state, NoData, 1_000);
        viewed(&mut state, NoData, 30_000);
        assert_eq!(state.view, View { seen: false, unseen_since_ms: Some(1_000) }, "since the first answer");
        assert!(!state.view.blind(60_000, 60_999));
        assert!(state.view.blind(60_000, 61_000), "a grace later: blind");
        viewed(&mut state, Error("timeout".into()), 70_000);
        assert_eq!(state.view.unseen_since_ms, Some(1_000), "an error says nothing about the view");
        viewed(&mut state, Value(1.0), 80_000);
        assert_eq!(state.view, View { seen: true, unseen_since_ms: None });
        viewed(&mut state, NoData, 90_000);
        assert_eq!(
            state.view,
            View { seen: false, unseen_since_ms: Some(90_000) },
            "lost again: a new grace"
        );
    }

    #[test]
    fn round_trips_and_reads_junk_as_a_fresh_start() {
        let state = FleetState {
            rolled_back: Some(RolledBack {
                since_ms: 1_700_000_000_000,
                reason: "check:error-rate".into(),
                detail: "error-rate: 0.31 > 0.05, 2 polls in a row".into(),
            }),
            latch_clear: true,
            failures: 2,
            next_poll_ms: 1_700_000_005_000,
            values: vec![Some(0.31), None, Some(f64::INFINITY)],
            errors: 7,
            gate: Some(GateState {
                step: 3,
                since_ms: 1_700_000_001_000,
                clock_ms: 61_000,
                looked_ms: 1_700_000_001_900,
                holding: Some(Holding { reason: HoldReason::FleetView, since_ms: 1_700_000_002_000 }),
            }),
            last_poll: Some(PollSummary {
                at_ms: 1_700_000_003_000,
                unanswered: vec!["p99".into()],
                failed: vec!["error-rate".into(), "x".into()],
            }),
            fleet: Some(FleetProgress { step: 2, clock_ms: 9_000 }),
            view: View { seen: false, unseen_since_ms: Some(1_700_000_000_500) },
        };
        assert_eq!(FleetState::decode(&state.encode()), state);
        assert_eq!(FleetState::decode(&FleetState::default().encode()), FleetState::default());
        assert_eq!(FleetState::decode(b"\xff\x00garbage\nfailures=x\n"), FleetState::default());
        let mut truncated = state.encode();
        truncated.pop();
        assert_eq!(FleetState::decode(&truncated), FleetState::default());
    }

    #[test]
    fn a_gated_split_waits_for_the_step_latch_and_takes_the_fleets_furthest_progress() {
        let config = config(2);
        let mut state = FleetState::default();
        let checks = [Some(NoData), Some(Value(5.0))];
        let gated = |state: &mut FleetState, step_latch: Option<Sample>| {
            let poll = Poll {
                checks: &checks,
                latch: Some(&NoData),
                view: Some(&NoData),
                step_latch: Some(step_latch.as_ref()),
                now_ms: 9,
            };
            state.record_poll(&config, &poll);
        };
        gated(&mut state, Some(Error("timeout".into())));
        assert!(!state.latch_clear, "the rollback latch answered, the step latch did not");
        gated(&mut state, Some(Value(3_000_000_012.0)));
        assert!(state.latch_clear);
        assert_eq!(
            state.fleet,
            Some(FleetProgress { step: 2, clock_ms: 12_000 }),
            "step 3 of the gauge is index 2"
        );
        gated(&mut state, Some(Value(2_000_000_500.0)));
        assert_eq!(
            state.fleet,
            Some(FleetProgress { step: 2, clock_ms: 12_000 }),
            "the furthest, never back"
        );
        gated(&mut state, Some(Value(3_000_000_020.0)));
        assert_eq!(
            state.fleet,
            Some(FleetProgress { step: 2, clock_ms: 20_000 }),
            "the same step, judged longer"
        );
        let summary = state.last_poll.clone().unwrap();
        assert_eq!(
            (summary.at_ms, summary.unanswered, summary.failed),
            (9, vec!["error-rate".to_string()], vec![])
        );
        let mut fresh = FleetState::default();
        gated(&mut fresh, Some(NoData));
        assert!(fresh.latch_clear && fresh.fleet.is_none(), "no proxy has started: nothing to resume");
    }
}
