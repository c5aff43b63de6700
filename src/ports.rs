//! The ports the engine talks through. Adapters in `src/adapters/` implement them.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::delivery::AuditLine;
pub use crate::delivery::{Delivery, Receipt};
use crate::event::AccountId;
use crate::incident::{Held, Incident, IncidentKey};
pub use crate::summary::Summarizer;
pub use crate::window::Clock;
use crate::window::{Added, BatchEvent, BatchId, Claimed};

/// Errors an adapter returns say whether trying again can help.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for std::convert::Infallible {
    fn is_retryable(&self) -> bool {
        match *self {}
    }
}

/// Port: where events, windows and the audit of sent batches live.
pub trait Store {
    type Error: std::error::Error + Retryable + Send + Sync + 'static;

    /// Store a matched event (exact dedupe by event id) into its window.
    fn add(
        &self,
        event: BatchEvent,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Added, Self::Error>> + Send;

    /// Store matched events, in order: one result per event, in the same order. A store
    /// that can write several events of a window at once does (one conditional write per
    /// window rather than per event); by default each event is added alone. On an error,
    /// events before it may be stored: a redelivery finds them as duplicates, and they go out
    /// with their windows.
    fn add_all(
        &self,
        events: Vec<BatchEvent>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Added>, Self::Error>> + Send
    where
        Self: Sync,
    {
        async move {
            let mut out = Vec::with_capacity(events.len());
            for event in events {
                out.push(self.add(event, now).await?);
            }
            Ok(out)
        }
    }

    /// Batches due at `now`, in due order. A batch another flusher holds may be listed (the
    /// DynamoDB index does not carry the lease, so that claiming writes no index entry):
    /// [`Store::claim`] is what keeps it from being taken twice.
    fn due(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<BatchId>, Self::Error>> + Send;

    /// Take a due batch; `None` when another flusher holds it or it is no longer pending.
    /// A store may hold the claim for a lease only: once it ends, the batch is due again
    /// (with whatever was added meanwhile) and another claim takes it over.
    fn claim(
        &self,
        id: &BatchId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Claimed>, Self::Error>> + Send;

    /// The batch went out at `now`: record it in the audit. For an immediate alert
    /// (`id.event` set), also mark that event in its window as already alerted, so the
    /// window's digest says so; a failed alert leaves it unmarked.
    fn mark_sent(
        &self,
        id: &BatchId,
        audit: &AuditLine,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The stored state of the incidents with these keys; keys without one are left out.
    fn incidents(
        &self,
        keys: &[IncidentKey],
    ) -> impl Future<Output = Result<Vec<Incident>, Self::Error>> + Send;

    /// Store `incident` as version `incident.version + 1`, if the stored version is still
    /// `incident.version` (none stored counts as 0). `Ok(false)`: another flusher wrote it
    /// meanwhile; read it again. `now` sets how long the store keeps it.
    fn save_incident(
        &self,
        incident: &Incident,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// What `account` holds for its next top-level post (destinations without threads; see
    /// [`crate::incident::held`]); `None` when nothing was ever held.
    fn held(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Option<Held>, Self::Error>> + Send;

    /// Store `held` as version `held.version + 1`, if the stored version is still
    /// `held.version` (none stored counts as 0). `Ok(false)`: another flusher wrote it
    /// meanwhile; read it again. `now` sets how long the store keeps it.
    fn save_held(
        &self,
        held: &Held,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Accounts whose held events are due (`due_at <= now`), earliest first.
    fn held_due(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<AccountId>, Self::Error>> + Send;

    /// The item of `kind` under `key`; `None` when none is stored.
    fn state(
        &self,
        kind: StateKind,
        key: &str,
    ) -> impl Future<Output = Result<Option<StateItem>, Self::Error>> + Send;

    /// Store `item` as version `item.version + 1`, if the stored version is still
    /// `item.version` (none stored counts as 0). `Ok(false)`: another writer moved it on;
    /// read it again. `now` sets how long the store keeps it (after `due_at`, if later).
    fn save_state(
        &self,
        item: &StateItem,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Every item of `kind` due at `now` (`due_at <= now`), earliest first.
    fn states_due(
        &self,
        kind: StateKind,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<StateItem>, Self::Error>> + Send;

    /// The batch could not go out: it stays due, from `retry_at`.
    fn release(
        &self,
        id: &BatchId,
        retry_at: DateTime<Utc>,
        reason: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// What a [`StateItem`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKind {
    /// Immediate alerts waiting for the next flush, per account (the Lambda's ingest posts
    /// nothing: see [`crate::engine::Engine::with_deferred_alerts`]).
    Alerts,
    /// The heartbeat of one account and region (key `account/region`; see
    /// [`crate::engine::heartbeat`]).
    Source,
}

impl StateKind {
    /// The kind as stored: part of the DynamoDB key and the `due` index partition.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alerts => "ALERTS",
            Self::Source => "SOURCE",
        }
    }
}

/// A small piece of engine state kept as versioned JSON under a kind and a key, due at a
/// time or not. Written only over the version read, like incidents and held events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateItem {
    pub kind: StateKind,
    pub key: String,
    /// The state, as JSON (the engine's own types).
    pub body: String,
    /// When the engine must look at it again (`None`: not until it changes).
    pub due_at: Option<DateTime<Utc>>,
    /// Bumped on every write (0: never stored).
    pub version: u64,
}

/// Port: posts deliveries (Slack, a file, memory). Each implementation renders the neutral
/// [`Delivery`] in its destination's own format.
pub trait Notifier {
    type Error: std::error::Error + Retryable + Send + Sync + 'static;

    fn deliver(
        &self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<Receipt, Self::Error>> + Send;

    /// False for a destination that cannot post into a thread (a Slack incoming webhook):
    /// the engine then holds replies for the account's next top-level post instead.
    fn threads(&self) -> bool {
        true
    }

    /// Replace the message a delivery already posted (`receipt` says where) with `delivery`'s,
    /// the same batch with a better summary: an immediate alert posted with the offline text,
    /// then explained by the model. A destination that cannot edit a message (a Slack incoming
    /// webhook, standard output) does nothing.
    fn update(
        &self,
        receipt: &Receipt,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = (receipt, delivery);
        std::future::ready(Ok(()))
    }
}

/// Port: how far `consume` got in each Kinesis shard (the last sequence number it processed).
/// The DynamoDB store keeps these in its table; the in-memory store for one run.
pub trait Checkpoints {
    type Error: std::error::Error + Retryable + Send + Sync + 'static;

    /// The last processed sequence number of `shard`, if any.
    fn checkpoint(
        &self,
        stream: &str,
        shard: &str,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// Record that everything up to and including `sequence` in `shard` was processed.
    fn set_checkpoint(
        &self,
        stream: &str,
        shard: &str,
        sequence: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Port: the organisation's account ids, from where they are kept (AWS Organizations).
pub trait Directory {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Every account id of the organisation, active or not (a suspended account is still
    /// the organisation's).
    fn accounts(&self) -> impl Future<Output = Result<Vec<String>, Self::Error>> + Send;
}
