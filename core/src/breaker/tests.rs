//! The breaker against a naive model of resilience4j's state machine, scenarios, threads,
//! validation and export.

use super::*;
use crate::{Clock, Format, Registry};
use proptest::prelude::*;
use std::boxed::Box;
use std::string::String;
use std::vec::Vec;

const SLOW_MS: u64 = 100;

fn config(minimum_number_of_calls: u32) -> BreakerConfig {
    BreakerConfig {
        minimum_number_of_calls,
        slow_call_duration_threshold_ms: SLOW_MS,
        wait_duration_in_open_state_ms: 1_000,
        permitted_number_of_calls_in_half_open_state: 3,
        ..BreakerConfig::DEFAULT
    }
}

// ---------------------------------------------------------------------------------------
// Footprint, defaults, validation
// ---------------------------------------------------------------------------------------

/// The sizes the docs state.
#[cfg(target_pointer_width = "64")]
#[test]
fn footprints() {
    assert_eq!(CircuitBreaker::<100>::FOOTPRINT, 16 * 100 + 232);
    assert_eq!(CircuitBreaker::<1>::FOOTPRINT, 16 + 232);
    assert_eq!(BreakerExport::<1>::FOOTPRINT, 27_312 + 104);
    assert_eq!(BreakerExport::<16>::FOOTPRINT, 27_312 + 16 * 104);
}

/// resilience4j's `CircuitBreakerConfig` constants, as the docs' table states them.
#[test]
fn defaults_are_resilience4j_defaults() {
    let d = BreakerConfig::default();
    assert_eq!(d.failure_rate_threshold, 50.0);
    assert_eq!(d.slow_call_rate_threshold, 100.0);
    assert_eq!(d.slow_call_duration_threshold_ms, 60_000);
    assert_eq!(d.sliding_window_type, SlidingWindowType::CountBased);
    assert_eq!(d.minimum_number_of_calls, 100);
    assert_eq!(d.wait_duration_in_open_state_ms, 60_000);
    assert_eq!(d.permitted_number_of_calls_in_half_open_state, 10);
    let breaker: CircuitBreaker = CircuitBreaker::new("d", d);
    assert_eq!(breaker.validate(), Ok(()));
    // The default window is 100 calls: 99 failures do not open it, the 100th does.
    for _ in 0..99 {
        breaker.on_error(1, 0);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    breaker.on_error(1, 0);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[test]
fn validation_refuses_what_resilience4j_refuses() {
    let check = |name: &'static str, config: BreakerConfig| CircuitBreaker::<4>::new(name, config).validate();
    let d = BreakerConfig::DEFAULT;
    assert_eq!(check("ok", d), Ok(()));
    for name in ["", "\n", OVERFLOW_NAME, "a-name-that-is-longer-than-32-byte"] {
        assert_eq!(check(name, d), Err(BreakerError::InvalidName(name)));
    }
    assert_eq!(check("x".repeat(32).leak(), d), Ok(()));
    let invalid = |setting: &'static str| Err(BreakerError::InvalidConfig { breaker: "b", setting });
    for bad in [0.0, -1.0, 100.5, f64::NAN, f64::INFINITY] {
        assert_eq!(check("b", BreakerConfig { failure_rate_threshold: bad, ..d }), invalid("failure_rate_threshold"));
        assert_eq!(
            check("b", BreakerConfig { slow_call_rate_threshold: bad, ..d }),
            invalid("slow_call_rate_threshold")
        );
    }
    assert_eq!(check("b", BreakerConfig { failure_rate_threshold: 100.0, ..d }), Ok(()));
    assert_eq!(
        check("b", BreakerConfig { slow_call_duration_threshold_ms: 0, ..d }),
        invalid("slow_call_duration_threshold_ms")
    );
    assert_eq!(check("b", BreakerConfig { minimum_number_of_calls: 0, ..d }), invalid("minimum_number_of_calls"));
    assert_eq!(
        check("b", BreakerConfig { wait_duration_in_open_state_ms: 0, ..d }),
        invalid("wait_duration_in_open_state_ms")
    );
    assert_eq!(
        check("b", BreakerConfig { permitted_number_of_calls_in_half_open_state: 0, ..d }),
        invalid("permitted_number_of_calls_in_half_open_state")
    );
}

const OVERFLOW_NAME: &str = crate::OVERFLOW_LABEL_VALUE;

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

#[test]
fn count_window_opens_waits_and_recovers_through_a_trial() {
    let b: CircuitBreaker<4> = CircuitBreaker::new("b", config(4));
    b.on_error(5, 0);
    b.on_error(5, 0);
    b.on_success(5, 0);
    let m = b.metrics(0);
    assert_eq!((m.buffered_calls, m.failure_rate), (3, None), "below the minimum number of calls");
    b.on_success(5, 0);
    assert_eq!(b.state(), BreakerState::Open, "2 of 4 failed: 50 % reaches the threshold");
    assert_eq!(b.metrics(0).failure_rate, Some(50.0));
    assert_eq!(b.transitions_into(BreakerState::Open), 1);

    let refused = b.try_acquire(400).unwrap_err();
    assert_eq!((refused.state, refused.retry_after_ms), (BreakerState::Open, Some(601)));
    assert_eq!(b.try_acquire(1_000).unwrap_err().retry_after_ms, Some(1), "strictly after the wait");
    b.on_success(5, 1_000); // a late outcome is recorded and changes nothing
    assert_eq!((b.state(), b.metrics(1_000).buffered_calls), (BreakerState::Open, 4));

    let trial: Vec<_> = (0..4).map(|_| b.try_acquire(1_001)).collect();
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(trial[..3].iter().all(|p| p.is_ok_and(|p| p.state() == BreakerState::HalfOpen)));
    assert_eq!(trial[3].unwrap_err().retry_after_ms, None, "3 trial calls only");
    assert_eq!(b.metrics(1_001).buffered_calls, 0, "the trial starts empty");
    b.on_success(5, 1_002);
    b.on_success(5, 1_002);
    assert_eq!(b.state(), BreakerState::HalfOpen, "below the trial's minimum of 3 calls");
    b.on_error(5, 1_003);
    assert_eq!(b.state(), BreakerState::Closed, "1 of 3 failed: 33 % < 50 %");
    assert_eq!(b.metrics(1_003).buffered_calls, 0, "closed with an empty window");
    assert_eq!(b.calls(CallKind::NotPermitted), 3);
    assert_eq!(b.calls(CallKind::Successful), 5);
    assert_eq!(b.calls(CallKind::Failed), 3);
}

#[test]
fn a_failed_trial_opens_again_and_restarts_the_wait() {
    let b: CircuitBreaker<2> = CircuitBreaker::new("b", config(2));
    b.on_error(5, 0);
    b.on_error(5, 0);
    assert!(b.try_acquire(1_001).is_ok());
    b.on_error(5, 1_050);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    b.on_success(5, 1_060);
    assert_eq!(b.state(), BreakerState::Open, "50 % of the trial failed");
    assert_eq!(b.try_acquire(2_000).unwrap_err().retry_after_ms, Some(61));
    assert!(b.try_acquire(2_061).is_ok());
    assert_eq!(b.transitions_into(BreakerState::Open), 2);
    assert_eq!(b.transitions_into(BreakerState::HalfOpen), 2);
}

#[test]
fn slow_calls_open_the_breaker_at_their_own_threshold() {
    let b: CircuitBreaker<10> = CircuitBreaker::new("b", BreakerConfig { slow_call_rate_threshold: 60.0, ..config(5) });
    for duration in [SLOW_MS, SLOW_MS + 1, 5_000, 1, SLOW_MS + 1] {
        b.on_success(duration, 0);
    }
    let m = b.metrics(0);
    assert_eq!((m.slow_calls, m.slow_successful_calls(), m.slow_call_rate), (3, 3, Some(60.0)));
    assert_eq!(b.state(), BreakerState::Open, "exactly the slow-call duration is not slow");
    assert_eq!(b.calls(CallKind::SlowSuccessful), 3);
    assert_eq!(m.failure_rate, Some(0.0));
}

#[test]
fn time_window_drops_old_seconds_and_counts_late_calls_in_the_newest() {
    let b: CircuitBreaker<3> = CircuitBreaker::new(
        "b",
        BreakerConfig {
            sliding_window_type: SlidingWindowType::TimeBased,
            failure_rate_threshold: 100.0,
            ..config(50)
        },
    );
    b.on_error(5, 10_500); // second 10
    b.on_success(5, 11_000); // second 11
    b.on_success(5, 12_999); // second 12
    assert_eq!(b.metrics(12_999).buffered_calls, 3);
    assert_eq!(b.metrics(13_000).buffered_calls, 2, "second 10 left the 3-second window");
    b.on_error(5, 9_000); // the clock went backwards: counted in second 13
    let m = b.metrics(13_000);
    assert_eq!((m.buffered_calls, m.failed_calls), (3, 1));
    assert_eq!(b.metrics(15_999).buffered_calls, 1, "only second 13 is left");
    assert_eq!(b.metrics(1_000_000).buffered_calls, 0, "a long gap empties the window");
    // A minimum of 50 calls is not capped by a time-based window.
    assert_eq!(b.metrics(1_000_000).failure_rate, None);
}

#[test]
fn a_clock_that_goes_backwards_restarts_the_wait_once() {
    let b: CircuitBreaker<1> = CircuitBreaker::new("b", config(1));
    b.on_error(5, 50_000);
    assert_eq!(b.state(), BreakerState::Open);
    let refused = b.try_acquire(10_000).unwrap_err();
    assert_eq!(refused.retry_after_ms, Some(1_001), "waits from the earlier reading");
    assert!(b.try_acquire(11_000).is_err());
    assert!(b.try_acquire(11_001).is_ok(), "open at most one more wait");
}

#[test]
fn hand_set_states() {
    let b: CircuitBreaker<4> = CircuitBreaker::new("b", config(2));
    b.on_error(5, 0);
    b.transition_to_forced_open();
    assert_eq!(b.metrics(0).buffered_calls, 0, "forced open starts with an empty window");
    let refused = b.try_acquire(u64::MAX).unwrap_err();
    assert_eq!((refused.state, refused.retry_after_ms), (BreakerState::ForcedOpen, None));
    b.on_error(5, 0);
    assert_eq!((b.state(), b.metrics(0).buffered_calls), (BreakerState::ForcedOpen, 0), "records nothing");

    b.transition_to_disabled();
    for _ in 0..10 {
        assert_eq!(b.try_acquire(0).unwrap().state(), BreakerState::Disabled);
        b.on_error(5, 0);
    }
    assert_eq!((b.state(), b.metrics(0).buffered_calls), (BreakerState::Disabled, 0));
    assert_eq!(b.calls(CallKind::Failed), 12, "every outcome is counted, in every state");

    b.transition_to_metrics_only();
    for _ in 0..10 {
        assert!(b.try_acquire(0).is_ok());
        b.on_error(5, 0);
    }
    let m = b.metrics(0);
    assert_eq!((m.state, m.buffered_calls, m.failure_rate), (BreakerState::MetricsOnly, 4, Some(100.0)));

    b.transition_to_open(100);
    assert_eq!(b.metrics(0).buffered_calls, 4, "opening by hand keeps the window");
    assert_eq!(b.try_acquire(1_100).unwrap_err().retry_after_ms, Some(1));
    b.transition_to_open(2_000);
    assert_eq!(b.transitions_into(BreakerState::Open), 1, "open to open is not a transition");
    assert!(b.try_acquire(2_500).is_err(), "but restarts the wait");
    b.transition_to_closed();
    assert_eq!((b.state(), b.metrics(0).buffered_calls), (BreakerState::Closed, 0));
}

#[test]
fn released_permits_let_another_trial_call_through() {
    let b: CircuitBreaker<2> =
        CircuitBreaker::new("b", BreakerConfig { permitted_number_of_calls_in_half_open_state: 1, ..config(1) });
    b.release_permission(); // closed: nothing to give back
    b.on_error(5, 0);
    assert!(b.try_acquire(1_001).is_ok());
    assert!(b.try_acquire(1_001).is_err());
    b.release_permission();
    b.release_permission(); // never above the permitted number
    assert!(b.try_acquire(1_001).is_ok());
    assert!(b.try_acquire(1_001).is_err());
}

#[test]
fn displays() {
    let refused = CallNotPermitted { breaker: "db", state: BreakerState::Open, retry_after_ms: Some(5) };
    assert_eq!(std::format!("{refused}"), "circuit breaker \"db\" is open and does not permit calls for 5 ms");
    let refused = CallNotPermitted { retry_after_ms: None, state: BreakerState::HalfOpen, ..refused };
    assert_eq!(std::format!("{refused}"), "circuit breaker \"db\" is half_open and does not permit calls");
    let error = BreakerError::InvalidConfig { breaker: "db", setting: "minimum_number_of_calls" };
    assert_eq!(std::format!("{error}"), "setting minimum_number_of_calls of circuit breaker \"db\" is out of range");
}

// ---------------------------------------------------------------------------------------
// The naive model
// ---------------------------------------------------------------------------------------

/// resilience4j's state machine over a plain list of calls: every call since the window was
/// last emptied, with the second it was counted in; the window is a filter over the list.
struct Model {
    w: usize,
    config: BreakerConfig,
    state: BreakerState,
    opened_at: u64,
    mode: Mode,
    calls: Vec<(u64, bool, bool)>,
    newest_second: u64,
    permits: u32,
    kinds: [u64; 5],
    entered: [u64; 6],
}

impl Model {
    fn new(w: usize, config: BreakerConfig) -> Self {
        Self {
            w,
            config,
            state: BreakerState::Closed,
            opened_at: 0,
            mode: Mode::Sliding,
            calls: Vec::new(),
            newest_second: 0,
            permits: 0,
            kinds: [0; 5],
            entered: [0; 6],
        }
    }

    fn time_based(&self) -> bool {
        self.mode == Mode::Sliding && self.config.sliding_window_type == SlidingWindowType::TimeBased
    }

    fn window(&self) -> Vec<(bool, bool)> {
        let all = self.calls.iter().map(|&(_, failed, slow)| (failed, slow));
        match self.mode {
            Mode::Off => Vec::new(),
            Mode::Trial => all.collect(),
            _ if self.time_based() => self
                .calls
                .iter()
                .filter(|&&(second, ..)| second + self.w as u64 > self.newest_second)
                .map(|&(_, failed, slow)| (failed, slow))
                .collect(),
            _ => all.skip(self.calls.len().saturating_sub(self.w)).collect(),
        }
    }

    fn rates(&self) -> Option<(f64, f64)> {
        let window = self.window();
        let minimum = match self.mode {
            Mode::Trial => {
                self.config.minimum_number_of_calls.min(self.config.permitted_number_of_calls_in_half_open_state)
            }
            _ if self.time_based() => self.config.minimum_number_of_calls,
            _ => self.config.minimum_number_of_calls.min(self.w as u32),
        };
        if window.is_empty() || window.len() < minimum as usize {
            return None;
        }
        let n = window.len() as f64;
        let failed = window.iter().filter(|c| c.0).count() as f64;
        let slow = window.iter().filter(|c| c.1).count() as f64;
        Some((failed * 100.0 / n, slow * 100.0 / n))
    }

    fn enter(&mut self, to: BreakerState, now: u64) {
        let empty = |model: &mut Self, mode| {
            model.calls.clear();
            model.newest_second = 0;
            model.mode = mode;
        };
        match to {
            BreakerState::Closed | BreakerState::MetricsOnly => empty(self, Mode::Sliding),
            BreakerState::HalfOpen => {
                empty(self, Mode::Trial);
                self.permits = self.config.permitted_number_of_calls_in_half_open_state;
            }
            BreakerState::Open => self.opened_at = now,
            BreakerState::Disabled | BreakerState::ForcedOpen => empty(self, Mode::Off),
        }
        if self.state != to {
            self.entered[to as usize] += 1;
        }
        self.state = to;
    }

    fn acquire(&mut self, now: u64) -> Result<BreakerState, (BreakerState, Option<u64>)> {
        let wait = self.config.wait_duration_in_open_state_ms;
        match self.state {
            BreakerState::Open if now < self.opened_at => {
                self.opened_at = now;
                self.kinds[4] += 1;
                Err((BreakerState::Open, Some(wait + 1)))
            }
            BreakerState::Open if now <= self.opened_at + wait => {
                self.kinds[4] += 1;
                Err((BreakerState::Open, Some(self.opened_at + wait - now + 1)))
            }
            BreakerState::Open => {
                self.enter(BreakerState::HalfOpen, now);
                self.acquire(now)
            }
            BreakerState::HalfOpen if self.permits > 0 => {
                self.permits -= 1;
                Ok(BreakerState::HalfOpen)
            }
            s @ (BreakerState::HalfOpen | BreakerState::ForcedOpen) => {
                self.kinds[4] += 1;
                Err((s, None))
            }
            s => Ok(s),
        }
    }

    fn record(&mut self, failed: bool, duration: u64, now: u64) {
        let slow = duration > self.config.slow_call_duration_threshold_ms;
        self.kinds[CallKind::of(failed, slow) as usize] += 1;
        if matches!(self.state, BreakerState::Disabled | BreakerState::ForcedOpen) {
            return;
        }
        self.read_at(now);
        self.calls.push((self.newest_second, failed, slow));
        let reached =
            |(f, s): (f64, f64)| f >= self.config.failure_rate_threshold || s >= self.config.slow_call_rate_threshold;
        match (self.state, self.rates()) {
            (BreakerState::Closed | BreakerState::HalfOpen, Some(r)) if reached(r) => {
                self.enter(BreakerState::Open, now)
            }
            (BreakerState::HalfOpen, Some(_)) => self.enter(BreakerState::Closed, now),
            _ => {}
        }
    }

    /// A time-based window's end moves to the newest second seen.
    fn read_at(&mut self, now: u64) {
        if self.time_based() {
            self.newest_second = self.newest_second.max(now / 1_000);
        }
    }

    fn release(&mut self) {
        if self.state == BreakerState::HalfOpen {
            self.permits = (self.permits + 1).min(self.config.permitted_number_of_calls_in_half_open_state);
        }
    }
}

const MODEL_W: usize = 5;

fn check_against_model(config: BreakerConfig, steps: &[(u8, u64)]) -> Result<(), TestCaseError> {
    let breaker: Box<CircuitBreaker<MODEL_W>> = Box::new(CircuitBreaker::new("m", config));
    let mut model = Model::new(MODEL_W, config);
    let mut now = 0u64;
    for (i, &(op, x)) in steps.iter().enumerate() {
        match op {
            0 => now += x % 8_000,
            1 | 2 => now += x % 1_500,
            3 => now = now.saturating_sub(x % 4_000),
            4..=7 => {
                let got = breaker.try_acquire(now).map(|p| p.state()).map_err(|e| (e.state, e.retry_after_ms));
                prop_assert_eq!(got, model.acquire(now), "step {}: acquire at {}", i, now);
            }
            8..=10 => {
                breaker.on_success(x % 200, now);
                model.record(false, x % 200, now);
            }
            11..=13 => {
                breaker.on_error(x % 200, now);
                model.record(true, x % 200, now);
            }
            14 | 15 => {
                breaker.release_permission();
                model.release();
            }
            16 | 17 => {
                let m = breaker.metrics(now);
                model.read_at(now);
                let window = model.window();
                prop_assert_eq!(m.buffered_calls, window.len() as u64, "step {}", i);
                prop_assert_eq!(m.failed_calls, window.iter().filter(|c| c.0).count() as u64);
                prop_assert_eq!(m.slow_failed_calls, window.iter().filter(|c| c.0 && c.1).count() as u64);
                let rates = model.rates();
                prop_assert_eq!(m.failure_rate, rates.map(|r| r.0), "step {}", i);
                prop_assert_eq!(m.slow_call_rate, rates.map(|r| r.1), "step {}", i);
            }
            _ => {
                let to = BreakerState::ALL[(x % 6) as usize];
                match to {
                    BreakerState::Closed => breaker.transition_to_closed(),
                    BreakerState::Open => breaker.transition_to_open(now),
                    BreakerState::ForcedOpen => breaker.transition_to_forced_open(),
                    BreakerState::Disabled => breaker.transition_to_disabled(),
                    BreakerState::MetricsOnly => breaker.transition_to_metrics_only(),
                    // Not a hand-set state: the model steps a hand-set breaker back to closed.
                    BreakerState::HalfOpen => breaker.transition_to_closed(),
                }
                model.enter(if to == BreakerState::HalfOpen { BreakerState::Closed } else { to }, now);
            }
        }
        prop_assert_eq!(breaker.state(), model.state, "step {}: op {} at {}", i, op, now);
    }
    for kind in CallKind::ALL {
        prop_assert_eq!(breaker.calls(kind), model.kinds[kind as usize], "{:?}", kind);
    }
    for state in BreakerState::ALL {
        prop_assert_eq!(breaker.transitions_into(state), model.entered[state as usize], "{:?}", state);
    }
    Ok(())
}

fn configs() -> impl Strategy<Value = BreakerConfig> {
    (
        prop_oneof![Just(SlidingWindowType::CountBased), Just(SlidingWindowType::TimeBased)],
        prop_oneof![Just(20.0), Just(50.0), Just(100.0)],
        prop_oneof![Just(40.0), Just(100.0)],
        1u32..8,
        1u32..5,
        1u64..3_000,
    )
        .prop_map(|(sliding_window_type, failure, slow, minimum, permitted, wait)| BreakerConfig {
            failure_rate_threshold: failure,
            slow_call_rate_threshold: slow,
            slow_call_duration_threshold_ms: SLOW_MS,
            sliding_window_type,
            minimum_number_of_calls: minimum,
            wait_duration_in_open_state_ms: wait,
            permitted_number_of_calls_in_half_open_state: permitted,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// States, permissions, refusals, window contents, rates and counters match the model
    /// after every step, for both window types, hand-set states and a clock that goes back.
    #[test]
    fn matches_the_naive_model(
        config in configs(),
        steps in proptest::collection::vec((0u8..19, any::<u64>()), 1..300),
    ) {
        check_against_model(config, &steps)?;
    }
}

// ---------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------

/// Threads acquiring and reporting against one breaker that trips and recovers again and
/// again: no call is lost from the counters, the transitions form a valid path, and no
/// half-open period lets more than its permitted calls through.
#[test]
fn racing_calls_conserve_counts_and_keep_the_state_machine_consistent() {
    static B: CircuitBreaker<20> = CircuitBreaker::new(
        "race",
        BreakerConfig {
            minimum_number_of_calls: 10,
            wait_duration_in_open_state_ms: 3,
            permitted_number_of_calls_in_half_open_state: 4,
            slow_call_duration_threshold_ms: SLOW_MS,
            ..BreakerConfig::DEFAULT
        },
    );
    static CLOCK: crate::ManualClock = crate::ManualClock::new(0);
    const THREADS: usize = 4;
    const ROUNDS: u64 = 5_000;
    let totals: Vec<[u64; 4]> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                s.spawn(move || {
                    // [reported, refused, trial permits, failures]
                    let mut totals = [0u64; 4];
                    let mut seed = t + 1;
                    for _ in 0..ROUNDS {
                        CLOCK.advance(1);
                        let now = CLOCK.now_ms();
                        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                        match B.try_acquire(now) {
                            Ok(permit) => {
                                totals[0] += 1;
                                totals[2] += u64::from(permit.state() == BreakerState::HalfOpen);
                                if seed >> 63 == 1 {
                                    totals[3] += 1;
                                    B.on_error(seed % 150, now);
                                } else {
                                    B.on_success(seed % 150, now);
                                }
                            }
                            Err(_) => totals[1] += 1,
                        }
                    }
                    totals
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let sum = |i: usize| totals.iter().map(|t| t[i]).sum::<u64>();
    let reported: u64 = [CallKind::Successful, CallKind::Failed, CallKind::SlowSuccessful, CallKind::SlowFailed]
        .into_iter()
        .map(|k| B.calls(k))
        .sum();
    assert_eq!(reported + B.calls(CallKind::NotPermitted), THREADS as u64 * ROUNDS);
    assert_eq!(reported, sum(0));
    assert_eq!(B.calls(CallKind::NotPermitted), sum(1));
    assert_eq!(B.calls(CallKind::Failed) + B.calls(CallKind::SlowFailed), sum(3));

    let entered = |s| B.transitions_into(s);
    let (open, half_open, closed) =
        (entered(BreakerState::Open), entered(BreakerState::HalfOpen), entered(BreakerState::Closed));
    let state = B.state();
    assert!(open > 10 && closed > 0, "the breaker tripped and recovered: {open} {closed}");
    assert_eq!(half_open + u64::from(state == BreakerState::Open), open, "every half-open came from an open");
    assert!(closed <= half_open, "every close came from a trial");
    assert!(sum(2) <= half_open * 4, "at most 4 trial calls per half-open period");
    assert!(B.metrics(CLOCK.now_ms()).buffered_calls <= 20);
}

// ---------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------

fn render(registry: &Registry<8>, format: Format) -> String {
    let mut renderer = registry.renderer(format);
    let mut buf = std::vec![0u8; registry.max_line_len()];
    let mut out = Vec::new();
    while !renderer.is_done() {
        let n = renderer.render(&mut buf).unwrap();
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).unwrap()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

/// Runs `promtool check metrics` on `text` when promtool is installed (CI installs it).
fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut promtool = Command::new("promtool");
    promtool.args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let Ok(mut child) = promtool.spawn() else {
        std::eprintln!("promtool not found; skipping its check");
        return;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && report.trim().is_empty(), "promtool:\n{report}\n--- input ---\n{text}");
}

#[test]
fn export_renders_states_calls_rates_and_transitions() {
    static DB: CircuitBreaker<4> = CircuitBreaker::new(
        "db",
        BreakerConfig {
            minimum_number_of_calls: 4,
            slow_call_duration_threshold_ms: SLOW_MS,
            ..BreakerConfig::DEFAULT
        },
    );
    static SEARCH: CircuitBreaker = CircuitBreaker::new("search \"v2\"", BreakerConfig::DEFAULT);
    static BREAKERS: BreakerExport<2> = BreakerExport::new();
    static REGISTRY: Registry<8> = Registry::new();
    BREAKERS.add(&DB).unwrap();
    BREAKERS.add(&SEARCH).unwrap();
    assert_eq!(BREAKERS.add(&DB), Err(BreakerError::DuplicateName("db")));
    static THIRD: CircuitBreaker<1> = CircuitBreaker::new("third", BreakerConfig::DEFAULT);
    assert_eq!(BREAKERS.add(&THIRD), Err(BreakerError::ExportFull("third")));
    static BAD: CircuitBreaker<1> =
        CircuitBreaker::new("bad", BreakerConfig { minimum_number_of_calls: 0, ..BreakerConfig::DEFAULT });
    assert!(matches!(BREAKERS.add(&BAD), Err(BreakerError::InvalidConfig { .. })));
    BREAKERS.register(&REGISTRY).unwrap();
    assert_eq!(BREAKERS.register(&REGISTRY), Err(crate::RegisterError::RegistryFull("plimsoll_circuit_breaker_state")));
    let breakers = CircuitBreaker::<4>::FOOTPRINT + CircuitBreaker::<100>::FOOTPRINT;
    assert_eq!(BREAKERS.footprint(), BreakerExport::<2>::FOOTPRINT + breakers);

    DB.on_success(5, 0);
    DB.on_success(500, 0);
    BREAKERS.update(0);
    let text = render(&REGISTRY, Format::Prometheus);
    assert!(has_line(&text, r#"plimsoll_circuit_breaker_state{name="db",state="closed"} 1"#), "{text}");
    assert!(has_line(&text, r#"plimsoll_circuit_breaker_state{name="db",state="open"} 0"#));
    assert!(has_line(&text, r#"plimsoll_circuit_breaker_state{name="search \"v2\"",state="closed"} 1"#));
    assert!(!text.contains("plimsoll_circuit_breaker_failure_ratio{"), "absent below the minimum: {text}");
    assert!(has_line(&text, r#"plimsoll_circuit_breaker_buffered_calls{name="db"} 2"#));

    DB.on_error(5, 0);
    DB.on_error(200, 0);
    assert!(DB.try_acquire(10).is_err());
    BREAKERS.update(10);
    BREAKERS.update(10); // counters advance once
    let text = render(&REGISTRY, Format::Prometheus);
    for line in [
        r#"plimsoll_circuit_breaker_state{name="db",state="open"} 1"#,
        r#"plimsoll_circuit_breaker_state{name="db",state="closed"} 0"#,
        r#"plimsoll_circuit_breaker_calls_total{name="db",kind="successful"} 1"#,
        r#"plimsoll_circuit_breaker_calls_total{name="db",kind="slow_successful"} 1"#,
        r#"plimsoll_circuit_breaker_calls_total{name="db",kind="failed"} 1"#,
        r#"plimsoll_circuit_breaker_calls_total{name="db",kind="slow_failed"} 1"#,
        r#"plimsoll_circuit_breaker_calls_total{name="db",kind="not_permitted"} 1"#,
        r#"plimsoll_circuit_breaker_failure_ratio{name="db"} 0.5"#,
        r#"plimsoll_circuit_breaker_slow_call_ratio{name="db"} 0.5"#,
        r#"plimsoll_circuit_breaker_transitions_total{name="db",to="open"} 1"#,
        r#"plimsoll_circuit_breaker_transitions_total{name="db",to="closed"} 0"#,
        r#"plimsoll_circuit_breaker_calls_total{name="search \"v2\"",kind="failed"} 0"#,
    ] {
        assert!(has_line(&text, line), "missing {line}:\n{text}");
    }
    promtool_check(&text);
    let open_metrics = render(&REGISTRY, Format::OpenMetrics);
    assert!(has_line(&open_metrics, "# UNIT plimsoll_circuit_breaker_failure_ratio ratio"));
    assert!(has_line(&open_metrics, r#"plimsoll_circuit_breaker_calls_total{name="db",kind="failed"} 1"#));
}
