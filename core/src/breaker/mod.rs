//! Circuit breakers after resilience4j's model, in fixed memory.
//!
//! A [`CircuitBreaker`] stands between a caller and one dependency (a database, a remote
//! service). It records the outcome and duration of each call in a sliding window, and once
//! the failure rate or the slow-call rate over the window reaches its threshold it *opens*:
//! calls are refused at once, sparing the dependency and the caller's threads, until a wait
//! has passed and a few trial calls show whether the dependency has recovered. The state
//! machine, the windows, the thresholds and their defaults are resilience4j's
//! ([`CircuitBreaker`] has the details and the few documented differences);
//! [`BreakerExport`] exports any number of breakers (up to [`MAX_BREAKERS`]) as metric
//! families.
//!
//! Use it where a failing dependency should be cut off quickly and probed gently. It does
//! not time calls (the caller passes each call's duration), does not retry, and enforces no
//! timeouts; to limit request rates, see [`ratelimit`](crate::ratelimit); to judge a
//! service against an objective over days, see [`Slo`](crate::Slo).

use crate::atomic::{AtomicU8, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use core::cell::RefCell;
use core::fmt;
use critical_section::Mutex;

mod export;
#[cfg(test)]
mod tests;
mod window;

pub use export::{BreakerExport, MAX_BREAKER_NAME_LEN, MAX_BREAKERS};
use window::{Calls, Mode, Outcome};

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// How the window of a closed breaker is bounded (resilience4j's `slidingWindowType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SlidingWindowType {
    /// The last `W` calls.
    CountBased,
    /// The calls of the last `W` seconds: the current second of `now_ms / 1000` and the
    /// `W - 1` before it.
    TimeBased,
}

/// A breaker's thresholds and timings. The window size is the breaker's `W`.
///
/// Percentages are in `(0, 100]`, as in resilience4j; durations are milliseconds. Build one
/// in `const` context from [`DEFAULT`](Self::DEFAULT):
///
/// ```
/// use plimsoll_core::breaker::{BreakerConfig, SlidingWindowType};
/// const CONFIG: BreakerConfig = BreakerConfig {
///     sliding_window_type: SlidingWindowType::TimeBased,
///     minimum_number_of_calls: 20,
///     slow_call_duration_threshold_ms: 2_000,
///     ..BreakerConfig::DEFAULT
/// };
/// # assert!(CONFIG.failure_rate_threshold == 50.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BreakerConfig {
    /// Opens the breaker when the failure rate, in percent, is at least this.
    pub failure_rate_threshold: f64,
    /// Opens the breaker when the share of slow calls, in percent, is at least this.
    pub slow_call_rate_threshold: f64,
    /// A call that takes longer than this is slow.
    pub slow_call_duration_threshold_ms: u64,
    /// Whether the window counts calls or seconds.
    pub sliding_window_type: SlidingWindowType,
    /// No rate is computed, and the breaker does not open, before the window holds this many
    /// calls (capped at `W` for a count-based window).
    pub minimum_number_of_calls: u32,
    /// How long an open breaker refuses calls before it lets trial calls through.
    pub wait_duration_in_open_state_ms: u64,
    /// The number of trial calls a half-open breaker lets through.
    pub permitted_number_of_calls_in_half_open_state: u32,
}

impl BreakerConfig {
    /// resilience4j's defaults (see [`CircuitBreaker`], "Defaults").
    pub const DEFAULT: Self = Self {
        failure_rate_threshold: 50.0,
        slow_call_rate_threshold: 100.0,
        slow_call_duration_threshold_ms: 60_000,
        sliding_window_type: SlidingWindowType::CountBased,
        minimum_number_of_calls: 100,
        wait_duration_in_open_state_ms: 60_000,
        permitted_number_of_calls_in_half_open_state: 10,
    };

    /// The first setting that resilience4j's builder would refuse, by name.
    fn invalid_setting(&self) -> Option<&'static str> {
        let percent = |x: f64| x > 0.0 && x <= 100.0;
        if !percent(self.failure_rate_threshold) {
            Some("failure_rate_threshold")
        } else if !percent(self.slow_call_rate_threshold) {
            Some("slow_call_rate_threshold")
        } else if self.slow_call_duration_threshold_ms == 0 {
            Some("slow_call_duration_threshold_ms")
        } else if self.minimum_number_of_calls == 0 {
            Some("minimum_number_of_calls")
        } else if self.wait_duration_in_open_state_ms == 0 {
            Some("wait_duration_in_open_state_ms")
        } else if self.permitted_number_of_calls_in_half_open_state == 0 {
            Some("permitted_number_of_calls_in_half_open_state")
        } else {
            None
        }
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

// ---------------------------------------------------------------------------------------
// States, outcomes, errors
// ---------------------------------------------------------------------------------------

/// The states of a breaker, resilience4j's six.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BreakerState {
    /// Calls pass; outcomes fill the sliding window.
    Closed,
    /// Calls are refused until the wait has passed.
    Open,
    /// A limited number of trial calls pass; their outcomes decide between closed and open.
    HalfOpen,
    /// Calls pass and nothing is recorded in the window (set by hand).
    Disabled,
    /// Calls are refused until the breaker is moved by hand (set by hand).
    ForcedOpen,
    /// Calls pass, outcomes fill the window and rates are computed, but the breaker never
    /// opens (set by hand).
    MetricsOnly,
}

impl BreakerState {
    /// Every state, in the order of [`as_index`](Self::as_index).
    pub const ALL: [Self; 6] =
        [Self::Closed, Self::Open, Self::HalfOpen, Self::Disabled, Self::ForcedOpen, Self::MetricsOnly];

    /// The `state` label value: resilience4j's state name in lower case (`half_open`).
    pub const fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::Disabled => "disabled",
            Self::ForcedOpen => "forced_open",
            Self::MetricsOnly => "metrics_only",
        }
    }

    /// The position in [`ALL`](Self::ALL).
    pub const fn as_index(self) -> usize {
        self as usize
    }

    const fn from_index(index: u8) -> Self {
        match index {
            0 => Self::Closed,
            1 => Self::Open,
            2 => Self::HalfOpen,
            3 => Self::Disabled,
            4 => Self::ForcedOpen,
            // Only `as_index` values are ever stored.
            _ => Self::MetricsOnly,
        }
    }
}

/// The kinds of call a breaker counts since its creation ([`CircuitBreaker::calls`]). The
/// kinds are disjoint: every call reported or refused is counted in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallKind {
    /// Succeeded within the slow-call duration.
    Successful,
    /// Failed within the slow-call duration.
    Failed,
    /// Succeeded, but slower than the slow-call duration.
    SlowSuccessful,
    /// Failed, and slower than the slow-call duration.
    SlowFailed,
    /// Refused by [`CircuitBreaker::try_acquire`].
    NotPermitted,
}

impl CallKind {
    /// Every kind, in the order of [`as_index`](Self::as_index).
    pub const ALL: [Self; 5] =
        [Self::Successful, Self::Failed, Self::SlowSuccessful, Self::SlowFailed, Self::NotPermitted];

    /// The `kind` label value.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Successful => "successful",
            Self::Failed => "failed",
            Self::SlowSuccessful => "slow_successful",
            Self::SlowFailed => "slow_failed",
            Self::NotPermitted => "not_permitted",
        }
    }

    /// The position in [`ALL`](Self::ALL).
    pub const fn as_index(self) -> usize {
        self as usize
    }

    const fn of(failed: bool, slow: bool) -> Self {
        match (failed, slow) {
            (false, false) => Self::Successful,
            (true, false) => Self::Failed,
            (false, true) => Self::SlowSuccessful,
            (true, true) => Self::SlowFailed,
        }
    }
}

/// A call the breaker let through. Report its outcome with
/// [`on_success`](CircuitBreaker::on_success) or [`on_error`](CircuitBreaker::on_error), or
/// give it back with [`release_permission`](CircuitBreaker::release_permission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "a permitted call's outcome must be reported to the breaker"]
pub struct Permit {
    state: BreakerState,
}

impl Permit {
    /// The state that let the call through: [`BreakerState::HalfOpen`] for a trial call.
    pub const fn state(&self) -> BreakerState {
        self.state
    }
}

/// A call refused by an open, forced-open or half-open breaker (resilience4j's
/// `CallNotPermittedException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct CallNotPermitted {
    /// The breaker's name.
    pub breaker: &'static str,
    /// The state that refused the call.
    pub state: BreakerState,
    /// For an open breaker, how long until it lets a trial call through (for a
    /// `Retry-After`); `None` when that depends on other calls or on a person.
    pub retry_after_ms: Option<u64>,
}

impl fmt::Display for CallNotPermitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker {:?} is {} and does not permit calls", self.breaker, self.state.label())?;
        match self.retry_after_ms {
            Some(ms) => write!(f, " for {ms} ms"),
            None => Ok(()),
        }
    }
}

impl core::error::Error for CallNotPermitted {}

/// Why a breaker was refused by a [`BreakerExport`] (or by [`CircuitBreaker::validate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BreakerError {
    /// The name is empty, longer than [`MAX_BREAKER_NAME_LEN`] bytes, holds a control
    /// character, or is the overflow label value `"__overflow__"`.
    InvalidName(&'static str),
    /// A setting is outside the range resilience4j accepts: a percentage outside
    /// `(0, 100]`, or a duration or number of calls of zero.
    InvalidConfig {
        /// The breaker.
        breaker: &'static str,
        /// The field of [`BreakerConfig`].
        setting: &'static str,
    },
    /// A breaker of this name is already in the export set.
    DuplicateName(&'static str),
    /// The export set is full; this breaker was not added.
    ExportFull(&'static str),
}

impl fmt::Display for BreakerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(name) => write!(f, "circuit breaker name {name:?} is not a valid label value"),
            Self::InvalidConfig { breaker, setting } => {
                write!(f, "setting {setting} of circuit breaker {breaker:?} is out of range")
            }
            Self::DuplicateName(name) => write!(f, "a circuit breaker named {name:?} is already exported"),
            Self::ExportFull(name) => write!(f, "circuit breaker export set is full; cannot add {name:?}"),
        }
    }
}

impl core::error::Error for BreakerError {}

/// A breaker's figures at one instant ([`CircuitBreaker::metrics`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct BreakerMetrics {
    /// The state.
    pub state: BreakerState,
    /// Failed calls in the window, in percent; `None` below the minimum number of calls.
    pub failure_rate: Option<f64>,
    /// Slow calls in the window, in percent; `None` below the minimum number of calls.
    pub slow_call_rate: Option<f64>,
    /// Calls in the window.
    pub buffered_calls: u64,
    /// Failed calls in the window, slow or not.
    pub failed_calls: u64,
    /// Slow calls in the window, failed or not.
    pub slow_calls: u64,
    /// Calls in the window both slow and failed.
    pub slow_failed_calls: u64,
    /// Calls refused since the breaker was created (resilience4j counts them per state).
    pub not_permitted_calls: u64,
}

impl BreakerMetrics {
    /// Successful calls in the window, slow or not.
    pub const fn successful_calls(&self) -> u64 {
        self.buffered_calls.saturating_sub(self.failed_calls)
    }

    /// Calls in the window both slow and successful.
    pub const fn slow_successful_calls(&self) -> u64 {
        self.slow_calls.saturating_sub(self.slow_failed_calls)
    }
}

// ---------------------------------------------------------------------------------------
// The breaker
// ---------------------------------------------------------------------------------------

/// A circuit breaker with a sliding window of `W` calls or `W` seconds (resilience4j's
/// `slidingWindowSize`, default 100), following resilience4j's `CircuitBreakerStateMachine`.
///
/// ```
/// use plimsoll_core::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
/// static PAYMENTS: CircuitBreaker<10> = CircuitBreaker::new("payments", BreakerConfig {
///     minimum_number_of_calls: 4,
///     wait_duration_in_open_state_ms: 5_000,
///     ..BreakerConfig::DEFAULT
/// });
///
/// let now_ms = 1_000;
/// for failed in [false, true, true, false] {
///     let _permit = PAYMENTS.try_acquire(now_ms).unwrap();
///     // ... make the call, time it ...
///     if failed { PAYMENTS.on_error(120, now_ms) } else { PAYMENTS.on_success(80, now_ms) }
/// }
/// // 2 failures in 4 calls: 50 %, the default threshold.
/// assert_eq!(PAYMENTS.state(), BreakerState::Open);
/// let refused = PAYMENTS.try_acquire(now_ms + 1_000).unwrap_err();
/// assert_eq!(refused.retry_after_ms, Some(4_001));
/// // After the wait, the next permission check turns the breaker half-open.
/// assert!(PAYMENTS.try_acquire(now_ms + 5_001).is_ok());
/// assert_eq!(PAYMENTS.state(), BreakerState::HalfOpen);
/// ```
///
/// # The state machine
///
/// - **Closed**: every call is permitted. Each outcome reported with
///   [`on_success`](Self::on_success) or [`on_error`](Self::on_error) goes into the window;
///   a call is *slow* if its duration exceeds `slow_call_duration_threshold_ms`. Once the
///   window holds at least `minimum_number_of_calls` (capped at `W` when count-based), the
///   failure rate `100 × failed / calls` and the slow-call rate `100 × slow / calls` are
///   checked after each outcome: if either is at or above its threshold, the breaker opens.
/// - **Open**: calls are refused ([`CallNotPermitted`], with the time left to wait) and
///   counted as not permitted. The first permission check *strictly after*
///   `wait_duration_in_open_state_ms` has passed turns the breaker half-open and is judged
///   as a half-open check (resilience4j's default, without a scheduler). Outcomes of calls
///   permitted before the breaker opened are still recorded, and change nothing.
/// - **Half-open**: a fresh trial lets `permitted_number_of_calls_in_half_open_state`
///   calls through and refuses the rest. Once the trial holds the minimum number of calls
///   (capped at the permitted number), it closes the breaker (with an empty window) if both
///   rates are below their thresholds, and opens it again otherwise.
/// - **Disabled**, **forced open**, **metrics only** are entered only by hand
///   ([`transition_to_disabled`](Self::transition_to_disabled) and the like): always
///   permit and record nothing; always refuse; always permit, record and compute rates, and
///   never open. Each starts with an empty window, as does
///   [`transition_to_closed`](Self::transition_to_closed); a breaker leaves them only by
///   hand. [`transition_to_open`](Self::transition_to_open) keeps the window, as
///   resilience4j does.
///
/// # Defaults
///
/// [`BreakerConfig::DEFAULT`] and `W = 100` are resilience4j's defaults, as documented at
/// <https://resilience4j.readme.io/docs/circuitbreaker> ("Create and configure a
/// CircuitBreaker") and set by the constants of `CircuitBreakerConfig.java`:
///
/// | setting | default | `CircuitBreakerConfig` constant |
/// |---|---|---|
/// | `failure_rate_threshold` | 50 % | `DEFAULT_FAILURE_RATE_THRESHOLD = 50` |
/// | `slow_call_rate_threshold` | 100 % | `DEFAULT_SLOW_CALL_RATE_THRESHOLD = 100` |
/// | `slow_call_duration_threshold_ms` | 60 s | `DEFAULT_SLOW_CALL_DURATION_THRESHOLD = 60` (s) |
/// | `sliding_window_type` | count-based | `DEFAULT_SLIDING_WINDOW_TYPE = COUNT_BASED` |
/// | `W` (`slidingWindowSize`) | 100 | `DEFAULT_SLIDING_WINDOW_SIZE = 100` |
/// | `minimum_number_of_calls` | 100 | `DEFAULT_MINIMUM_NUMBER_OF_CALLS = 100` |
/// | `wait_duration_in_open_state_ms` | 60 s | `DEFAULT_WAIT_DURATION_IN_OPEN_STATE = 60` (s) |
/// | `permitted_number_of_calls_in_half_open_state` | 10 | `DEFAULT_PERMITTED_CALLS_IN_HALF_OPEN_STATE = 10` |
///
/// [`validate`](Self::validate) refuses what resilience4j's builder refuses: percentages
/// outside `(0, 100]`, zero durations and zero numbers of calls. A breaker is checked when
/// it joins a [`BreakerExport`]; an invalid configuration never panics, but its behaviour is
/// unspecified.
///
/// # Time
///
/// The breaker never reads a clock: each call takes the caller's `now_ms` (see
/// [`crate::time`]). A time-based window counts calls per second, `now_ms / 1000`; a call
/// older than the newest second seen goes into the newest second, as in resilience4j, so a
/// clock that goes backwards never corrupts the window or double counts. A fresh window
/// starts at the second of its first call. An open breaker asked at a time *before* it
/// opened (a clock that went backwards) restarts its wait from that earlier time: it stays
/// open at most one more wait, never indefinitely, and never closes early.
///
/// # Concurrency
///
/// The state is an atomic byte, read on every call. [`try_acquire`](Self::try_acquire) is
/// lock-free (one load, plus two loads and a relaxed increment when open) except in the
/// half-open state, at the moment an open breaker's wait ends, and when the clock went back. Reporting an outcome is a
/// relaxed increment plus a short critical section (`critical-section`) that records into
/// the window, checks the thresholds and makes any transition, so outcomes and transitions
/// are serialized exactly as resilience4j's synchronized windows serialize them. The
/// section is bounded: `O(1)` for a count-based window, `O(min(gap, W))` bucket resets for a
/// time-based one, `O(W)` to empty the window on a transition. Disabled and forced-open
/// breakers take no lock at all.
///
/// # Differences from resilience4j
///
/// - The half-open trial keeps every call since it began rather than a ring of the
///   permitted size: they differ only when an open breaker that came from a failed trial
///   receives more than `permitted_number_of_calls_in_half_open_state` late outcomes.
/// - [`BreakerMetrics::not_permitted_calls`] counts since creation (resilience4j restarts
///   it with each state), so it can be exported as a counter.
/// - Durations are whole milliseconds. Exception classification (record, ignore) is the
///   caller's: report a failure with [`on_error`](Self::on_error), and give an ignored
///   call's permit back with [`release_permission`](Self::release_permission).
/// - Not built: the open-state wait interval function (exponential backoff), the maximum
///   wait in half-open, a scheduler for automatic transitions, event consumers.
///
/// # Cost
///
/// `16 × W + 232` bytes on a 64-bit target ([`CircuitBreaker::FOOTPRINT`]; 1,832 for the
/// default `W = 100`): one 16-byte bucket per call or per second, the configuration and the
/// counters.
pub struct CircuitBreaker<const W: usize = 100> {
    name: &'static str,
    config: BreakerConfig,
    /// A `BreakerState` index, written only inside the critical section.
    state: AtomicU8,
    /// When the breaker last opened (or restarted its wait); written only inside the critical
    /// section, read lock-free while open.
    opened_at_ms: AtomicU64,
    inner: Mutex<RefCell<Inner<W>>>,
    /// Calls by `CallKind` since creation.
    calls: [AtomicU64; CallKind::ALL.len()],
    /// Transitions into each `BreakerState`.
    entered: [AtomicU64; BreakerState::ALL.len()],
}

/// What the critical section guards.
#[derive(Debug)]
struct Inner<const W: usize> {
    window: Calls<W>,
    /// Trial calls a half-open breaker may still let through.
    trial_permits: u32,
}

/// What the thresholds say about a window.
enum Verdict {
    BelowMinimumCalls,
    BelowThresholds,
    ThresholdReached,
}

impl<const W: usize> fmt::Debug for CircuitBreaker<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("window", &W)
            .field("config", &self.config)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl<const W: usize> CircuitBreaker<W> {
    /// Size in bytes.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A closed breaker named `name` (the `name` label value). Checked by
    /// [`validate`](Self::validate) when exported.
    pub const fn new(name: &'static str, config: BreakerConfig) -> Self {
        const { assert!(W > 0, "a circuit breaker's window holds at least one call or second") };
        Self {
            name,
            config,
            state: AtomicU8::new(BreakerState::Closed as u8),
            opened_at_ms: AtomicU64::new(0),
            inner: Mutex::new(RefCell::new(Inner { window: Calls::new(), trial_permits: 0 })),
            calls: [const { AtomicU64::new(0) }; CallKind::ALL.len()],
            entered: [const { AtomicU64::new(0) }; BreakerState::ALL.len()],
        }
    }

    /// The name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The configuration.
    pub const fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Checks the name (a label value of at most [`MAX_BREAKER_NAME_LEN`] bytes) and the
    /// configuration (the ranges resilience4j's builder accepts).
    pub fn validate(&self) -> Result<(), BreakerError> {
        let name = self.name;
        let valid_name = !name.is_empty()
            && name.len() <= MAX_BREAKER_NAME_LEN
            && name != crate::OVERFLOW_LABEL_VALUE
            && !name.chars().any(char::is_control);
        if !valid_name {
            return Err(BreakerError::InvalidName(name));
        }
        match self.config.invalid_setting() {
            Some(setting) => Err(BreakerError::InvalidConfig { breaker: name, setting }),
            None => Ok(()),
        }
    }

    /// The current state: one atomic load.
    #[inline]
    pub fn state(&self) -> BreakerState {
        // Acquire pairs with the release store of a transition, so a reader that sees a new
        // state also sees the `opened_at_ms` written with it.
        BreakerState::from_index(self.state.load(Acquire))
    }

    /// Asks to make a call at `now_ms`. Closed, disabled and metrics-only breakers permit
    /// it; an open breaker refuses it until its wait has passed, then turns half-open and
    /// judges the call as a trial; a half-open breaker permits as many trial calls as
    /// configured; a forced-open breaker refuses. Refusals are counted
    /// ([`CallKind::NotPermitted`]).
    #[inline]
    pub fn try_acquire(&self, now_ms: u64) -> Result<Permit, CallNotPermitted> {
        let state = self.state();
        match state {
            BreakerState::Closed | BreakerState::Disabled | BreakerState::MetricsOnly => Ok(Permit { state }),
            BreakerState::ForcedOpen => Err(self.refuse(state, None)),
            BreakerState::Open => {
                let opened_at = self.opened_at_ms.load(Relaxed);
                match self.wait_left(opened_at, now_ms) {
                    Some(left) if now_ms >= opened_at => Err(self.refuse(state, Some(left))),
                    _ => self.acquire_locked(now_ms),
                }
            }
            BreakerState::HalfOpen => self.acquire_locked(now_ms),
        }
    }

    /// Gives back a permit whose call will report no outcome (a call cancelled, or a failure
    /// that should count neither way): a half-open breaker may then let another trial call
    /// through. Does nothing in other states.
    pub fn release_permission(&self) {
        if self.state() != BreakerState::HalfOpen {
            return;
        }
        critical_section::with(|cs| {
            let mut inner = self.inner.borrow_ref_mut(cs);
            if self.state() == BreakerState::HalfOpen {
                let permitted = self.config.permitted_number_of_calls_in_half_open_state;
                inner.trial_permits = (inner.trial_permits + 1).min(permitted);
            }
        });
    }

    /// Reports a call that succeeded after `duration_ms`, at `now_ms`.
    #[inline]
    pub fn on_success(&self, duration_ms: u64, now_ms: u64) {
        self.record(false, duration_ms, now_ms);
    }

    /// Reports a call that failed after `duration_ms`, at `now_ms`.
    #[inline]
    pub fn on_error(&self, duration_ms: u64, now_ms: u64) {
        self.record(true, duration_ms, now_ms);
    }

    /// Closes the breaker with an empty window.
    pub fn transition_to_closed(&self) {
        self.transition(BreakerState::Closed, 0);
    }

    /// Opens the breaker at `now_ms`, keeping its window; its wait starts at `now_ms`.
    pub fn transition_to_open(&self, now_ms: u64) {
        self.transition(BreakerState::Open, now_ms);
    }

    /// Refuses every call until the breaker is moved by hand.
    pub fn transition_to_forced_open(&self) {
        self.transition(BreakerState::ForcedOpen, 0);
    }

    /// Permits every call and records nothing until the breaker is moved by hand.
    pub fn transition_to_disabled(&self) {
        self.transition(BreakerState::Disabled, 0);
    }

    /// Permits every call and computes rates, but never opens, until moved by hand.
    pub fn transition_to_metrics_only(&self) {
        self.transition(BreakerState::MetricsOnly, 0);
    }

    /// The state and the window's figures at `now_ms` (a time-based window first drops the
    /// seconds that have left it). Takes the critical section.
    pub fn metrics(&self, now_ms: u64) -> BreakerMetrics {
        critical_section::with(|cs| {
            let mut inner = self.inner.borrow_ref_mut(cs);
            inner.window.advance(self.config.sliding_window_type, now_ms);
            let tally = inner.window.tally();
            let rates = self.rates(&inner.window);
            BreakerMetrics {
                state: self.state(),
                failure_rate: rates.map(|(failure, _)| failure),
                slow_call_rate: rates.map(|(_, slow)| slow),
                buffered_calls: tally.calls,
                failed_calls: tally.failed,
                slow_calls: tally.slow,
                slow_failed_calls: tally.slow_failed,
                not_permitted_calls: self.calls(CallKind::NotPermitted),
            }
        })
    }

    /// Calls of `kind` since creation, in every state (a disabled breaker's calls included).
    pub fn calls(&self, kind: CallKind) -> u64 {
        self.calls[kind.as_index()].load(Relaxed)
    }

    /// Transitions into `state` since creation. A transition to the state the breaker is
    /// already in is not counted, though it empties the window as any transition does.
    pub fn transitions_into(&self, state: BreakerState) -> u64 {
        self.entered[state.as_index()].load(Relaxed)
    }

    /// How long an open breaker that opened at `opened_at` still waits at `now_ms`, or
    /// `None` once the wait has passed. A wait so long that its end overflows never ends.
    fn wait_left(&self, opened_at: u64, now_ms: u64) -> Option<u64> {
        let end = opened_at.saturating_add(self.config.wait_duration_in_open_state_ms);
        // Calls are permitted strictly after the end, as resilience4j's `isAfter`.
        (now_ms <= end).then(|| (end - now_ms).saturating_add(1))
    }

    fn refuse(&self, state: BreakerState, retry_after_ms: Option<u64>) -> CallNotPermitted {
        self.calls[CallKind::NotPermitted.as_index()].fetch_add(1, Relaxed);
        CallNotPermitted { breaker: self.name, state, retry_after_ms }
    }

    #[cold]
    fn acquire_locked(&self, now_ms: u64) -> Result<Permit, CallNotPermitted> {
        critical_section::with(|cs| {
            let mut inner = self.inner.borrow_ref_mut(cs);
            let state = self.state();
            match state {
                BreakerState::Closed | BreakerState::Disabled | BreakerState::MetricsOnly => Ok(Permit { state }),
                BreakerState::ForcedOpen => Err(self.refuse(state, None)),
                BreakerState::Open => {
                    let mut opened_at = self.opened_at_ms.load(Relaxed);
                    if now_ms < opened_at {
                        // The clock went backwards: wait from the earlier reading, so that the
                        // breaker stays open at most one more wait.
                        self.opened_at_ms.store(now_ms, Relaxed);
                        opened_at = now_ms;
                    }
                    if let Some(left) = self.wait_left(opened_at, now_ms) {
                        return Err(self.refuse(state, Some(left)));
                    }
                    self.enter(&mut inner, BreakerState::HalfOpen, now_ms);
                    self.take_trial_permit(&mut inner)
                }
                BreakerState::HalfOpen => self.take_trial_permit(&mut inner),
            }
        })
    }

    fn take_trial_permit(&self, inner: &mut Inner<W>) -> Result<Permit, CallNotPermitted> {
        if inner.trial_permits == 0 {
            return Err(self.refuse(BreakerState::HalfOpen, None));
        }
        inner.trial_permits -= 1;
        Ok(Permit { state: BreakerState::HalfOpen })
    }

    fn record(&self, failed: bool, duration_ms: u64, now_ms: u64) {
        let slow = duration_ms > self.config.slow_call_duration_threshold_ms;
        self.calls[CallKind::of(failed, slow).as_index()].fetch_add(1, Relaxed);
        if matches!(self.state(), BreakerState::Disabled | BreakerState::ForcedOpen) {
            return;
        }
        critical_section::with(|cs| {
            let mut inner = self.inner.borrow_ref_mut(cs);
            inner.window.record(self.config.sliding_window_type, now_ms, Outcome { failed, slow });
            let next = match (self.state(), self.verdict(&inner.window)) {
                (BreakerState::Closed | BreakerState::HalfOpen, Verdict::ThresholdReached) => BreakerState::Open,
                (BreakerState::HalfOpen, Verdict::BelowThresholds) => BreakerState::Closed,
                _ => return,
            };
            self.enter(&mut inner, next, now_ms);
        });
    }

    fn transition(&self, to: BreakerState, now_ms: u64) {
        critical_section::with(|cs| self.enter(&mut self.inner.borrow_ref_mut(cs), to, now_ms));
    }

    /// Moves to `to`, inside the critical section.
    fn enter(&self, inner: &mut Inner<W>, to: BreakerState, now_ms: u64) {
        match to {
            BreakerState::Closed | BreakerState::MetricsOnly => inner.window.reset(Mode::Sliding),
            BreakerState::HalfOpen => {
                inner.window.reset(Mode::Trial);
                inner.trial_permits = self.config.permitted_number_of_calls_in_half_open_state;
            }
            // The open state keeps the window it was entered with, and records late outcomes.
            BreakerState::Open => self.opened_at_ms.store(now_ms, Relaxed),
            BreakerState::Disabled | BreakerState::ForcedOpen => inner.window.reset(Mode::Off),
        }
        // Release publishes `opened_at_ms` with the state; see `state`.
        let from = self.state.swap(to as u8, Release);
        if from != to as u8 {
            self.entered[to.as_index()].fetch_add(1, Relaxed);
        }
    }

    fn verdict(&self, window: &Calls<W>) -> Verdict {
        match self.rates(window) {
            None => Verdict::BelowMinimumCalls,
            Some((failure, slow))
                if failure >= self.config.failure_rate_threshold || slow >= self.config.slow_call_rate_threshold =>
            {
                Verdict::ThresholdReached
            }
            Some(_) => Verdict::BelowThresholds,
        }
    }

    /// The failure and slow-call rates in percent, `None` below the minimum number of calls.
    fn rates(&self, window: &Calls<W>) -> Option<(f64, f64)> {
        let tally = window.tally();
        let minimum = u64::from(self.config.minimum_number_of_calls);
        let minimum = match window.mode() {
            Mode::Sliding if self.config.sliding_window_type == SlidingWindowType::CountBased => minimum.min(W as u64),
            Mode::Sliding | Mode::Off => minimum,
            Mode::Trial => minimum.min(u64::from(self.config.permitted_number_of_calls_in_half_open_state)),
        };
        if tally.calls == 0 || tally.calls < minimum {
            return None;
        }
        let percent = |part: u64| part as f64 * 100.0 / tally.calls as f64;
        Some((percent(tally.failed), percent(tally.slow)))
    }
}
