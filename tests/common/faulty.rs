//! A store that fails where a test says: [`FaultyStore`] wraps any [`Store`], and at a named
//! step, on its nth call, fails before the step (throttling, a permanent error) or does the
//! step and then fails (a crash after the write: the caller never hears that it succeeded).
//! Every other call goes through, and the inner store's own errors come back as they are.
//!
//! It is also the race harness: [`FaultyStore::gated`] makes the first claim of a new
//! incident (a save of an incident not yet posted) wait at a barrier that every racing
//! flusher shares, so that all of them try the claim at once, and logs each claim's outcome
//! ([`FaultyStore::claims`]): exactly one must win.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use trailwatch::delivery::AuditLine;
use trailwatch::event::AccountId;
use trailwatch::incident::{Held, Incident, IncidentKey};
use trailwatch::ports::{Checkpoints, Retryable, StateItem, StateKind, Store};
use trailwatch::window::{Added, BatchEvent, BatchId, Claimed};

/// A step of the [`Store`] port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Add,
    Due,
    Claim,
    MarkSent,
    Release,
    Incidents,
    SaveIncident,
    Held,
    SaveHeld,
    HeldDue,
    State,
    SaveState,
    StatesDue,
    /// [`Checkpoints::checkpoint`].
    Checkpoint,
    /// [`Checkpoints::set_checkpoint`].
    SetCheckpoint,
}

/// What happens at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fail instead of the step: `retryable` for throttling or an unavailable table, not for
    /// a permanent refusal.
    Fail { retryable: bool },
    /// Do the step, then fail as a crash does: the write happened, the caller never knew.
    CrashAfter,
    /// As [`Fault::CrashAfter`], at the first call from the nth on that took effect (claimed a
    /// batch, saved an item).
    CrashAfterEffect,
}

/// Whether a step's answer means it took effect.
pub trait Effect {
    fn took_effect(&self) -> bool;
}

impl<T> Effect for Option<T> {
    fn took_effect(&self) -> bool {
        self.is_some()
    }
}

impl Effect for bool {
    fn took_effect(&self) -> bool {
        *self
    }
}

impl<T> Effect for Vec<T> {
    fn took_effect(&self) -> bool {
        true
    }
}

impl Effect for () {
    fn took_effect(&self) -> bool {
        true
    }
}

impl Effect for Added {
    fn took_effect(&self) -> bool {
        matches!(self, Added::New { .. })
    }
}

/// An injected failure, or the inner store's own error.
#[derive(Debug, thiserror::Error)]
pub enum Faulty<E: std::error::Error + 'static> {
    #[error("injected at {step:?} (retryable: {retryable})")]
    Injected { step: Step, retryable: bool },
    #[error(transparent)]
    Inner(E),
}

impl<E: std::error::Error + Retryable + 'static> Retryable for Faulty<E> {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Injected { retryable, .. } => *retryable,
            Self::Inner(err) => err.is_retryable(),
        }
    }
}

/// `inner`, failing at the steps planned with [`FaultyStore::at`].
pub struct FaultyStore<S> {
    pub inner: S,
    /// (step, nth call counting from 1, fault), each used once; nth 0: every call.
    plan: Mutex<Vec<(Step, u32, Fault)>>,
    calls: Mutex<HashMap<Step, u32>>,
    /// Taken by the first claim of a new incident, which waits there.
    gate: Mutex<Option<std::sync::Arc<tokio::sync::Barrier>>>,
    /// Outcomes of the claims of new incidents, in order (`false`: another flusher's won).
    claims: Mutex<Vec<bool>>,
}

impl<S> FaultyStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            plan: Mutex::new(Vec::new()),
            calls: Mutex::new(HashMap::new()),
            gate: Mutex::new(None),
            claims: Mutex::new(Vec::new()),
        }
    }

    /// No fault; the first claim of a new incident waits at `gate` (see the module's doc).
    pub fn gated(inner: S, gate: std::sync::Arc<tokio::sync::Barrier>) -> Self {
        let store = Self::new(inner);
        *store.gate.lock().unwrap_or_else(PoisonError::into_inner) = Some(gate);
        store
    }

    /// Outcomes of the claims of new incidents, in order (`false`: another flusher's won).
    pub fn claims(&self) -> Vec<bool> {
        self.claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// At the `nth` call of `step` (from 1), `fault`.
    #[must_use]
    pub fn at(self, step: Step, nth: u32, fault: Fault) -> Self {
        self.plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((step, nth, fault));
        self
    }

    /// At every call of `step`, `fault`.
    #[must_use]
    pub fn always(self, step: Step, fault: Fault) -> Self {
        self.at(step, 0, fault)
    }

    /// How many times `step` was called.
    pub fn calls(&self, step: Step) -> u32 {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&step)
            .copied()
            .unwrap_or(0)
    }

    /// Count a call of `step`; the fault planned for it, taken out of the plan.
    fn fault(&self, step: Step) -> Option<Fault> {
        let nth = {
            let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
            let n = calls.entry(step).or_insert(0);
            *n += 1;
            *n
        };
        let mut plan = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        let at = plan
            .iter()
            .position(|(s, n, _)| *s == step && (*n == nth || *n == 0))?;
        if plan[at].1 == 0 {
            // Every call: kept.
            return Some(plan[at].2);
        }
        Some(plan.remove(at).2)
    }
}

impl<S> FaultyStore<S> {
    async fn around<T: Effect, E: std::error::Error + 'static>(
        &self,
        step: Step,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Faulty<E>> {
        let fault = self.fault(step);
        if let Some(Fault::Fail { retryable }) = fault {
            return Err(Faulty::Injected { step, retryable });
        }
        // Boxed: every engine future holding a store call stays small.
        let out = Box::pin(call).await.map_err(Faulty::Inner)?;
        // A crash is not an error anyone retries: the process is gone.
        let crash = Faulty::Injected {
            step,
            retryable: false,
        };
        match fault {
            Some(Fault::CrashAfter) => Err(crash),
            Some(Fault::CrashAfterEffect) if out.took_effect() => Err(crash),
            Some(Fault::CrashAfterEffect) => {
                // Not yet: at the next call that takes effect.
                let next = self.calls(step) + 1;
                self.plan
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((step, next, Fault::CrashAfterEffect));
                Ok(out)
            }
            _ => Ok(out),
        }
    }
}

impl<S: Store + Sync> Store for FaultyStore<S> {
    type Error = Faulty<S::Error>;

    async fn add(&self, event: BatchEvent, now: DateTime<Utc>) -> Result<Added, Self::Error> {
        self.around(Step::Add, self.inner.add(event, now)).await
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<BatchId>, Self::Error> {
        self.around(Step::Due, self.inner.due(now)).await
    }

    async fn claim(
        &self,
        id: &BatchId,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, Self::Error> {
        self.around(Step::Claim, self.inner.claim(id, now)).await
    }

    async fn mark_sent(
        &self,
        id: &BatchId,
        audit: &AuditLine,
        now: DateTime<Utc>,
    ) -> Result<(), Self::Error> {
        self.around(Step::MarkSent, self.inner.mark_sent(id, audit, now))
            .await
    }

    async fn incidents(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, Self::Error> {
        self.around(Step::Incidents, self.inner.incidents(keys))
            .await
    }

    async fn save_incident(
        &self,
        incident: &Incident,
        now: DateTime<Utc>,
    ) -> Result<bool, Self::Error> {
        // A claim: the save of an incident not posted yet.
        let claim = !incident.posted;
        let gate = if claim {
            self.gate
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        } else {
            None
        };
        let saved = self
            .around(Step::SaveIncident, async {
                if let Some(gate) = gate {
                    gate.wait().await;
                }
                self.inner.save_incident(incident, now).await
            })
            .await?;
        if claim {
            self.claims
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(saved);
        }
        Ok(saved)
    }

    async fn held(&self, account: &AccountId) -> Result<Option<Held>, Self::Error> {
        self.around(Step::Held, self.inner.held(account)).await
    }

    async fn save_held(&self, held: &Held, now: DateTime<Utc>) -> Result<bool, Self::Error> {
        self.around(Step::SaveHeld, self.inner.save_held(held, now))
            .await
    }

    async fn held_due(&self, now: DateTime<Utc>) -> Result<Vec<AccountId>, Self::Error> {
        self.around(Step::HeldDue, self.inner.held_due(now)).await
    }

    async fn state(&self, kind: StateKind, key: &str) -> Result<Option<StateItem>, Self::Error> {
        self.around(Step::State, self.inner.state(kind, key)).await
    }

    async fn save_state(&self, item: &StateItem, now: DateTime<Utc>) -> Result<bool, Self::Error> {
        self.around(Step::SaveState, self.inner.save_state(item, now))
            .await
    }

    async fn states_due(
        &self,
        kind: StateKind,
        now: DateTime<Utc>,
    ) -> Result<Vec<StateItem>, Self::Error> {
        self.around(Step::StatesDue, self.inner.states_due(kind, now))
            .await
    }

    async fn release(
        &self,
        id: &BatchId,
        retry_at: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), Self::Error> {
        self.around(Step::Release, self.inner.release(id, retry_at, reason))
            .await
    }
}

impl<S: Checkpoints + Sync> Checkpoints for FaultyStore<S> {
    type Error = Faulty<<S as Checkpoints>::Error>;

    async fn checkpoint(&self, stream: &str, shard: &str) -> Result<Option<String>, Self::Error> {
        self.around(Step::Checkpoint, self.inner.checkpoint(stream, shard))
            .await
    }

    async fn set_checkpoint(
        &self,
        stream: &str,
        shard: &str,
        sequence: &str,
    ) -> Result<(), Self::Error> {
        self.around(
            Step::SetCheckpoint,
            self.inner.set_checkpoint(stream, shard, sequence),
        )
        .await
    }
}
