//! Waiting between calls, for every adapter that calls out (Slack, Bedrock, Kinesis): the
//! [`Sleeper`] all waits go through, the one exponential [`Backoff`] with jitter, the [`Waiter`]
//! that draws and sleeps it, and the per-key [`Pacer`].
//!
//! Vector's `sinks/util/retries.rs` is the model. Whether a failure is worth another try is the
//! adapter's error's to say ([`Retryable`](crate::ports::Retryable)); each adapter keeps its own
//! loop, because what ends it differs (Slack's `Retry-After`, Bedrock's deadline per batch,
//! Kinesis's records refused one by one). What they share is here, so a test hands any of them
//! a [`ManualSleeper`] and asserts the waits instead of measuring wall time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Where waiting happens: a real timer in production ([`TokioSleeper`]), a manual one in tests
/// ([`ManualSleeper`]).
pub trait Sleeper: Send + Sync {
    /// Monotonic time since some fixed start (the sleeper's creation).
    fn elapsed(&self) -> Duration;

    /// Returns once `wait` has passed.
    fn sleep(&self, wait: Duration) -> impl Future<Output = ()> + Send;
}

/// Sleeps on tokio's timer; its time is wall time since it was made.
#[derive(Debug, Clone, Copy)]
pub struct TokioSleeper {
    start: Instant,
}

impl Default for TokioSleeper {
    fn default() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Sleeper for TokioSleeper {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    async fn sleep(&self, wait: Duration) {
        tokio::time::sleep(wait).await;
    }
}

/// A sleeper for tests: sleeping returns at once, advances its time by the wait and records
/// the wait. Its time starts at zero and moves only by sleeps and [`advance`](Self::advance).
#[derive(Debug, Default)]
pub struct ManualSleeper {
    state: Mutex<ManualTime>,
}

#[derive(Debug, Default)]
struct ManualTime {
    now: Duration,
    waits: Vec<Duration>,
}

impl ManualSleeper {
    /// Every wait asked for, in order.
    pub fn waits(&self) -> Vec<Duration> {
        lock(&self.state).waits.clone()
    }

    /// Lets time pass without a recorded wait (work happening between calls).
    pub fn advance(&self, by: Duration) {
        lock(&self.state).now += by;
    }
}

impl Sleeper for ManualSleeper {
    fn elapsed(&self) -> Duration {
        lock(&self.state).now
    }

    async fn sleep(&self, wait: Duration) {
        let mut state = lock(&self.state);
        state.now += wait;
        state.waits.push(wait);
    }
}

/// Shared with the test that reads the waits while the adapter owns the sleeper.
impl<S: Sleeper> Sleeper for Arc<S> {
    fn elapsed(&self) -> Duration {
        (**self).elapsed()
    }

    fn sleep(&self, wait: Duration) -> impl Future<Output = ()> + Send {
        (**self).sleep(wait)
    }
}

/// Exponential backoff, capped, with "equal jitter".
///
/// The step before retry `n` (1 for the first retry) is `base * 2^(n-1)`, at most `max`; the
/// wait is drawn uniformly from `[step / 2, step]`, so callers that failed together spread out
/// while each still waits at least half the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The step before the first retry.
    pub base: Duration,
    /// The largest step.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The step before retry `retry` (1-based; 0 counts as 1), before jitter.
    pub fn step(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before retry `retry`: uniform in `[step / 2, step]`, drawn from `rng` (a seeded
    /// one makes it reproducible).
    pub fn jittered(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let step = self.step(retry);
        let half = step / 2;
        let spread = u64::try_from(step.saturating_sub(half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rng.u64(0..=spread))
    }
}

/// Waits between attempts: a [`Sleeper`] and the random source of the backoff's jitter.
#[derive(Debug)]
pub struct Waiter<S> {
    sleeper: S,
    rng: Mutex<fastrand::Rng>,
}

impl<S: Clone> Clone for Waiter<S> {
    /// The same sleeper, and a jitter source of its own (forked, so clones do not move
    /// in step).
    fn clone(&self) -> Self {
        Self {
            sleeper: self.sleeper.clone(),
            rng: Mutex::new(lock(&self.rng).fork()),
        }
    }
}

impl<S: Sleeper> Waiter<S> {
    /// Jitter seeded at random.
    pub fn new(sleeper: S) -> Self {
        Self::with_rng(sleeper, fastrand::Rng::new())
    }

    /// Jitter drawn from `rng` (`fastrand::Rng::with_seed` for reproducible waits).
    pub fn with_rng(sleeper: S, rng: fastrand::Rng) -> Self {
        Self {
            sleeper,
            rng: Mutex::new(rng),
        }
    }

    pub fn sleeper(&self) -> &S {
        &self.sleeper
    }

    /// The sleeper's time: see [`Sleeper::elapsed`].
    pub fn elapsed(&self) -> Duration {
        self.sleeper.elapsed()
    }

    /// Draws the wait before retry `retry` of `backoff` (see [`Backoff::jittered`]).
    pub fn backoff(&self, backoff: &Backoff, retry: u32) -> Duration {
        backoff.jittered(retry, &mut lock(&self.rng))
    }

    /// Waits `wait` on the sleeper.
    pub async fn sleep(&self, wait: Duration) {
        self.sleeper.sleep(wait).await;
    }
}

/// Spaces calls per key (a Slack channel): at least `pace` from the end of one call for a key
/// to the start of the next. Keys never called wait nothing.
#[derive(Debug)]
pub struct Pacer {
    pace: Duration,
    last: Mutex<HashMap<String, Duration>>,
}

impl Pacer {
    pub fn new(pace: Duration) -> Self {
        Self {
            pace,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Waits on `sleeper` until `pace` has passed since the last call for `key` went through.
    pub async fn wait_turn<S: Sleeper>(&self, sleeper: &S, key: &str) {
        let now = sleeper.elapsed();
        let wait = lock(&self.last)
            .get(key)
            .map(|last| (*last + self.pace).saturating_sub(now))
            .filter(|wait| !wait.is_zero());
        if let Some(wait) = wait {
            sleeper.sleep(wait).await;
        }
    }

    /// A call for `key` went through now (by `sleeper`'s time): the next one waits its turn.
    pub fn went_through<S: Sleeper>(&self, sleeper: &S, key: &str) {
        lock(&self.last).insert(key.to_owned(), sleeper.elapsed());
    }
}

/// A poisoned lock still holds plain data (times, waits, a random state): use it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn steps_double_from_base_and_stop_at_max() {
        let backoff = Backoff::new(100 * MS, 1000 * MS);
        let steps: Vec<Duration> = [0, 1, 2, 3, 4, 5, 40, u32::MAX]
            .map(|retry| backoff.step(retry))
            .to_vec();
        assert_eq!(
            steps,
            [100, 100, 200, 400, 800, 1000, 1000, 1000].map(|ms| ms * MS)
        );
    }

    #[test]
    fn jitter_stays_within_half_a_step_and_spreads() {
        let backoff = Backoff::new(MS, 4 * MS);
        let mut rng = fastrand::Rng::with_seed(13);
        for (retry, step) in [(1, MS), (2, 2 * MS), (3, 4 * MS), (4, 4 * MS), (9, 4 * MS)] {
            let waits: Vec<Duration> = (0..200)
                .map(|_| backoff.jittered(retry, &mut rng))
                .collect();
            assert!(
                waits.iter().all(|w| *w >= step / 2 && *w <= step),
                "{retry}: {waits:?}"
            );
            let (low, high) = (waits.iter().min(), waits.iter().max());
            assert!(low < high, "{retry}: no spread in {waits:?}");
            assert!(
                low < Some(&(step * 3 / 5)) && high > Some(&(step * 4 / 5)),
                "{retry}"
            );
        }
    }

    #[test]
    fn a_seeded_rng_draws_the_same_waits() {
        let backoff = Backoff::new(500 * MS, 8000 * MS);
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (1..=6)
                .map(|retry| backoff.jittered(retry, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn a_zero_step_waits_nothing() {
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(
            Backoff::new(Duration::ZERO, MS).jittered(3, &mut rng),
            Duration::ZERO
        );
    }

    #[tokio::test]
    async fn the_waiter_sleeps_on_its_sleeper() {
        let waiter = Waiter::with_rng(ManualSleeper::default(), fastrand::Rng::with_seed(3));
        let backoff = Backoff::new(10 * MS, 15 * MS);
        let first = waiter.backoff(&backoff, 1);
        let second = waiter.backoff(&backoff, 2);
        waiter.sleep(first).await;
        waiter.sleep(second).await;
        let mut rng = fastrand::Rng::with_seed(3);
        let expected = vec![backoff.jittered(1, &mut rng), backoff.jittered(2, &mut rng)];
        assert_eq!(waiter.sleeper().waits(), expected);
        assert_eq!(waiter.elapsed(), first + second);
    }

    #[tokio::test]
    async fn pacing_spaces_calls_per_key() {
        let sleeper = ManualSleeper::default();
        let pacer = Pacer::new(1000 * MS);
        for (key, advance) in [("A", 0), ("B", 0), ("A", 0), ("A", 300), ("A", 5000)] {
            sleeper.advance(advance * MS);
            pacer.wait_turn(&sleeper, key).await;
            pacer.went_through(&sleeper, key);
        }
        assert_eq!(sleeper.waits(), [1000 * MS, 700 * MS]);
    }
}
