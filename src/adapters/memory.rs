//! In-memory store and a notifier that keeps what it was given: replay and tests.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use crate::delivery::AuditLine;
use crate::event::AccountId;
use crate::incident::{Held, Incident, IncidentKey};
use crate::ports::{Checkpoints, Delivery, Notifier, Receipt, StateItem, StateKind, Store};
use crate::window::{Added, BatchEvent, BatchId, Claimed, WindowBook, WindowConfig};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The window engine held in memory, with the audit of sent batches.
#[derive(Debug)]
pub struct MemoryStore {
    book: Mutex<WindowBook>,
    audit: Mutex<Vec<AuditLine>>,
    failures: Mutex<BTreeMap<String, Vec<String>>>,
    checkpoints: Mutex<BTreeMap<(String, String), String>>,
    incidents: Mutex<BTreeMap<IncidentKey, Incident>>,
    held: Mutex<BTreeMap<AccountId, Held>>,
    states: Mutex<BTreeMap<(StateKind, String), StateItem>>,
    /// False: sent batches' audit lines are not kept (replay writes its audit from the
    /// deliveries, and keeping every line would grow with the input).
    keep_audit: bool,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(WindowConfig::default())
    }
}

impl MemoryStore {
    pub fn new(config: WindowConfig) -> Self {
        Self {
            book: Mutex::new(WindowBook::new(config)),
            audit: Mutex::new(Vec::new()),
            failures: Mutex::new(BTreeMap::new()),
            checkpoints: Mutex::new(BTreeMap::new()),
            incidents: Mutex::new(BTreeMap::new()),
            held: Mutex::new(BTreeMap::new()),
            states: Mutex::new(BTreeMap::new()),
            keep_audit: true,
        }
    }

    /// A store whose claims expire after `lease`, like the DynamoDB store's.
    pub fn with_lease(config: WindowConfig, lease: chrono::TimeDelta) -> Self {
        Self {
            book: Mutex::new(WindowBook::with_lease(config, lease)),
            audit: Mutex::new(Vec::new()),
            failures: Mutex::new(BTreeMap::new()),
            checkpoints: Mutex::new(BTreeMap::new()),
            incidents: Mutex::new(BTreeMap::new()),
            held: Mutex::new(BTreeMap::new()),
            states: Mutex::new(BTreeMap::new()),
            keep_audit: true,
        }
    }

    /// A store that keeps no audit lines ([`MemoryStore::audit`] stays empty): its memory does
    /// not grow with the batches sent.
    pub fn without_audit(config: WindowConfig) -> Self {
        Self {
            keep_audit: false,
            ..Self::new(config)
        }
    }

    /// Every incident stored, by key.
    pub fn all_incidents(&self) -> Vec<Incident> {
        lock(&self.incidents).values().cloned().collect()
    }

    /// Why each released batch (by `BatchId::key`) could not be sent, oldest first.
    pub fn failures(&self) -> BTreeMap<String, Vec<String>> {
        lock(&self.failures).clone()
    }

    /// Audit lines of sent batches, in send order.
    pub fn audit(&self) -> Vec<AuditLine> {
        lock(&self.audit).clone()
    }

    /// Events stored but not yet in a sent batch.
    pub fn unsent(&self) -> usize {
        lock(&self.book).unsent()
    }

    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        lock(&self.book).next_due()
    }
}

impl Store for MemoryStore {
    type Error = Infallible;

    async fn add(&self, event: BatchEvent, now: DateTime<Utc>) -> Result<Added, Infallible> {
        Ok(lock(&self.book).add(event, now))
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<BatchId>, Infallible> {
        Ok(lock(&self.book).due(now))
    }

    async fn claim(&self, id: &BatchId, now: DateTime<Utc>) -> Result<Option<Claimed>, Infallible> {
        Ok(lock(&self.book).claim_at(id, now))
    }

    async fn mark_sent(
        &self,
        id: &BatchId,
        audit: &AuditLine,
        _now: DateTime<Utc>,
    ) -> Result<(), Infallible> {
        let recorded = match &id.event {
            Some(event) => {
                lock(&self.book).mark_alerted(&id.account, id.window_start, event);
                true
            }
            None => lock(&self.book).mark_sent(id),
        };
        if recorded && self.keep_audit {
            lock(&self.audit).push(audit.clone());
        }
        Ok(())
    }

    async fn incidents(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, Infallible> {
        let stored = lock(&self.incidents);
        Ok(keys.iter().filter_map(|k| stored.get(k).cloned()).collect())
    }

    async fn save_incident(
        &self,
        incident: &Incident,
        _now: DateTime<Utc>,
    ) -> Result<bool, Infallible> {
        let mut stored = lock(&self.incidents);
        let current = stored.get(&incident.key).map_or(0, |i| i.version);
        if current != incident.version {
            return Ok(false);
        }
        let mut next = incident.clone();
        next.version += 1;
        stored.insert(incident.key.clone(), next);
        Ok(true)
    }

    async fn held(&self, account: &AccountId) -> Result<Option<Held>, Infallible> {
        Ok(lock(&self.held).get(account).cloned())
    }

    async fn save_held(&self, held: &Held, _now: DateTime<Utc>) -> Result<bool, Infallible> {
        let mut stored = lock(&self.held);
        let current = stored.get(&held.account).map_or(0, |h| h.version);
        if current != held.version {
            return Ok(false);
        }
        let mut next = held.clone();
        next.version += 1;
        stored.insert(held.account.clone(), next);
        Ok(true)
    }

    async fn held_due(&self, now: DateTime<Utc>) -> Result<Vec<AccountId>, Infallible> {
        let stored = lock(&self.held);
        let mut due: Vec<(DateTime<Utc>, AccountId)> = stored
            .values()
            .filter_map(|h| {
                h.due_at
                    .filter(|at| *at <= now)
                    .map(|at| (at, h.account.clone()))
            })
            .collect();
        due.sort();
        Ok(due.into_iter().map(|(_, account)| account).collect())
    }

    async fn state(&self, kind: StateKind, key: &str) -> Result<Option<StateItem>, Infallible> {
        Ok(lock(&self.states).get(&(kind, key.to_owned())).cloned())
    }

    async fn save_state(&self, item: &StateItem, _now: DateTime<Utc>) -> Result<bool, Infallible> {
        let mut stored = lock(&self.states);
        let at = (item.kind, item.key.clone());
        if stored.get(&at).map_or(0, |s| s.version) != item.version {
            return Ok(false);
        }
        let mut next = item.clone();
        next.version += 1;
        stored.insert(at, next);
        Ok(true)
    }

    async fn states_due(
        &self,
        kind: StateKind,
        now: DateTime<Utc>,
    ) -> Result<Vec<StateItem>, Infallible> {
        let stored = lock(&self.states);
        let mut due: Vec<StateItem> = stored
            .values()
            .filter(|s| s.kind == kind && s.due_at.is_some_and(|at| at <= now))
            .cloned()
            .collect();
        due.sort_by_key(|s| s.due_at);
        Ok(due)
    }

    async fn release(
        &self,
        id: &BatchId,
        retry_at: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), Infallible> {
        if lock(&self.book).release(id, retry_at) {
            lock(&self.failures)
                .entry(id.key())
                .or_default()
                .push(reason.to_owned());
        }
        Ok(())
    }
}

impl Checkpoints for MemoryStore {
    type Error = Infallible;

    async fn checkpoint(&self, stream: &str, shard: &str) -> Result<Option<String>, Infallible> {
        Ok(lock(&self.checkpoints)
            .get(&(stream.to_owned(), shard.to_owned()))
            .cloned())
    }

    async fn set_checkpoint(
        &self,
        stream: &str,
        shard: &str,
        sequence: &str,
    ) -> Result<(), Infallible> {
        lock(&self.checkpoints).insert((stream.to_owned(), shard.to_owned()), sequence.to_owned());
        Ok(())
    }
}

/// Keeps every delivery: replay renders them afterwards in the chosen format. An update
/// replaces the delivery it updates (the same batch key), as the message is replaced.
#[derive(Debug, Default)]
pub struct CollectingNotifier {
    deliveries: Mutex<Vec<Delivery>>,
    no_threads: bool,
    updates: Mutex<Vec<String>>,
}

impl CollectingNotifier {
    /// One that says it cannot thread, as an incoming webhook: the engine holds replies.
    pub fn without_threads() -> Self {
        Self {
            no_threads: true,
            ..Self::default()
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.deliveries).clone()
    }

    pub fn take(&self) -> Vec<Delivery> {
        std::mem::take(&mut *lock(&self.deliveries))
    }

    /// The batch keys of the deliveries updated, in order.
    pub fn updates(&self) -> Vec<String> {
        lock(&self.updates).clone()
    }
}

impl Notifier for CollectingNotifier {
    type Error = Infallible;

    fn threads(&self) -> bool {
        !self.no_threads
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, Infallible> {
        lock(&self.deliveries).push(delivery.clone());
        Ok(Receipt::default())
    }

    async fn update(&self, _receipt: &Receipt, delivery: &Delivery) -> Result<(), Infallible> {
        let key = delivery.key();
        lock(&self.updates).push(key.clone());
        if let Some(kept) = lock(&self.deliveries).iter_mut().find(|d| d.key() == key) {
            *kept = delivery.clone();
        }
        Ok(())
    }
}
