//! The window engine as a pure state machine: assign, dedupe, due, claim, sent, release.
//!
//! The in-memory store wraps it directly; the DynamoDB store applies the same transitions
//! with conditional writes. Time is passed in, never read.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, TimeDelta, Utc};

use super::{BatchEvent, BatchId, BatchKind, WindowConfig};
use crate::event::{AccountId, EventId};

/// What happened to an added event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Stored, in the batch `batch`; `late` when its window's digest was already sent.
    New { batch: BatchId, late: bool },
    /// Its event id was seen before: dropped exactly.
    Duplicate,
}

/// A batch taken for sending: nobody else can take it until it is sent or released.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: BatchId,
    pub kind: BatchKind,
    pub window_end: DateTime<Utc>,
    pub events: Vec<BatchEvent>,
}

type SlotKey = (AccountId, DateTime<Utc>);

#[derive(Debug, Default)]
struct Slot {
    pending: Vec<BatchEvent>,
    pending_due: Option<DateTime<Utc>>,
    in_flight: Option<Vec<BatchEvent>>,
    /// When the flusher's hold on `in_flight` ends (a crash after claim); `None`: never.
    lease_until: Option<DateTime<Utc>>,
    /// Batches of this window already sent (0: the digest is still to come).
    sent: u32,
}

/// Every window of every account, with the ids seen so far.
#[derive(Debug, Default)]
pub struct WindowBook {
    config: WindowConfig,
    seen: HashSet<EventId, foldhash::fast::RandomState>,
    slots: BTreeMap<SlotKey, Slot>,
    due: BTreeSet<(DateTime<Utc>, SlotKey)>,
    /// In-flight batches by the end of their lease.
    leases: BTreeSet<(DateTime<Utc>, SlotKey)>,
    /// How long a claim holds a batch; `None`: until it is sent or released.
    lease: Option<TimeDelta>,
}

impl WindowBook {
    pub fn new(config: WindowConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// A book whose claims expire after `lease`: a flusher that crashed after claiming
    /// leaves its batch due again once the lease ends (what the DynamoDB store does).
    pub fn with_lease(config: WindowConfig, lease: TimeDelta) -> Self {
        Self {
            config,
            lease: Some(lease),
            ..Self::default()
        }
    }

    pub fn config(&self) -> WindowConfig {
        self.config
    }

    /// Add a matched event at time `now`.
    pub fn add(&mut self, event: BatchEvent, now: DateTime<Utc>) -> Added {
        if !self.seen.insert(event.event.id.clone()) {
            return Added::Duplicate;
        }
        let start = self.config.start_of(event.event.time);
        let key = (event.event.account.clone(), start);
        let slot = self.slots.entry(key.clone()).or_default();
        let late = slot.sent > 0 || slot.in_flight.is_some();
        let seq = slot.sent + u32::from(slot.in_flight.is_some());
        slot.pending.push(event);
        if slot.pending_due.is_none() {
            let window_due = self.config.due_at(start);
            let due = if late {
                window_due.max(now.checked_add_signed(self.config.grace).unwrap_or(now))
            } else {
                window_due
            };
            slot.pending_due = Some(due);
            self.due.insert((due, key.clone()));
        }
        Added::New {
            batch: BatchId {
                account: key.0,
                window_start: start,
                seq,
                event: None,
                claim: None,
            },
            late,
        }
    }

    /// Batches due at `now`, in due order (then account, then window): pending ones whose
    /// due time has come, and in-flight ones whose lease ended.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<BatchId> {
        let pending = self
            .due
            .iter()
            .take_while(|(due, _)| *due <= now)
            .filter(|(_, key)| self.slots.get(key).is_some_and(|s| s.in_flight.is_none()));
        let expired = self.leases.iter().take_while(|(until, _)| *until <= now);
        let mut due: Vec<_> = pending.chain(expired).collect();
        due.sort();
        due.into_iter()
            .filter_map(|(_, key)| {
                let slot = self.slots.get(key)?;
                Some(BatchId {
                    account: key.0.clone(),
                    window_start: key.1,
                    seq: slot.sent,
                    event: None,
                    claim: None,
                })
            })
            .collect()
    }

    /// When the next batch falls due, if any.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.due.first().map(|(due, _)| *due)
    }

    /// Take a due batch for sending. `None` when it is not pending (taken, sent, or stale id).
    /// A claim made this way never expires.
    pub fn claim(&mut self, id: &BatchId) -> Option<Claimed> {
        self.take(id, None)
    }

    /// Take a due batch at `now`, holding it for the book's lease. An in-flight batch whose
    /// lease ended is taken over, with whatever was added since.
    pub fn claim_at(&mut self, id: &BatchId, now: DateTime<Utc>) -> Option<Claimed> {
        self.take(id, Some(now))
    }

    fn take(&mut self, id: &BatchId, now: Option<DateTime<Utc>>) -> Option<Claimed> {
        let key = (id.account.clone(), id.window_start);
        let slot = self.slots.get_mut(&key)?;
        let expired = match (slot.lease_until, now) {
            (Some(until), Some(now)) => until <= now,
            _ => false,
        };
        if slot.sent != id.seq || (slot.in_flight.is_some() && !expired) {
            return None;
        }
        let mut events = slot.in_flight.take().unwrap_or_default();
        if events.is_empty() && slot.pending.is_empty() {
            return None;
        }
        // Taken with its buffer: a window's slot outlives its batches, and an emptied vector
        // would keep its capacity (memory that grew with the input).
        events.extend(std::mem::take(&mut slot.pending));
        if let Some(due) = slot.pending_due.take() {
            self.due.remove(&(due, key.clone()));
        }
        if let Some(until) = slot.lease_until.take() {
            self.leases.remove(&(until, key.clone()));
        }
        events.sort_by(|a, b| (a.event.time, &a.event.id).cmp(&(b.event.time, &b.event.id)));
        slot.in_flight = Some(events.clone());
        slot.lease_until = now
            .zip(self.lease)
            .map(|(now, lease)| now.checked_add_signed(lease).unwrap_or(now));
        if let Some(until) = slot.lease_until {
            self.leases.insert((until, key));
        }
        Some(Claimed {
            id: id.clone(),
            kind: if id.seq == 0 {
                BatchKind::Window
            } else {
                BatchKind::Late
            },
            window_end: self.config.end_of(id.window_start),
            events,
        })
    }

    /// The claimed batch went out.
    pub fn mark_sent(&mut self, id: &BatchId) -> bool {
        let key = (id.account.clone(), id.window_start);
        match self.slots.get_mut(&key) {
            Some(slot) if slot.in_flight.is_some() && slot.sent == id.seq => {
                slot.in_flight = None;
                slot.sent += 1;
                if let Some(until) = slot.lease_until.take() {
                    self.leases.remove(&(until, key));
                }
                true
            }
            _ => false,
        }
    }

    /// The immediate alert for `event` went out: its window's digest marks it as already
    /// alerted. False when the event is no longer held (its digest was sent meanwhile).
    pub fn mark_alerted(
        &mut self,
        account: &AccountId,
        window_start: DateTime<Utc>,
        event: &str,
    ) -> bool {
        let Some(slot) = self.slots.get_mut(&(account.clone(), window_start)) else {
            return false;
        };
        let held = slot
            .pending
            .iter_mut()
            .chain(slot.in_flight.iter_mut().flatten());
        for held in held {
            if held.event.id.as_str() == event {
                held.already_alerted = true;
                return true;
            }
        }
        false
    }

    /// The claimed batch could not be sent: its events are pending again, due at `retry_at`.
    pub fn release(&mut self, id: &BatchId, retry_at: DateTime<Utc>) -> bool {
        let key = (id.account.clone(), id.window_start);
        let Some(slot) = self.slots.get_mut(&key) else {
            return false;
        };
        if slot.sent != id.seq {
            return false;
        }
        let Some(mut events) = slot.in_flight.take() else {
            return false;
        };
        if let Some(until) = slot.lease_until.take() {
            self.leases.remove(&(until, key.clone()));
        }
        events.append(&mut slot.pending);
        slot.pending = events;
        if let Some(due) = slot.pending_due.take() {
            self.due.remove(&(due, key.clone()));
        }
        slot.pending_due = Some(retry_at);
        self.due.insert((retry_at, key));
        true
    }

    /// Events stored and not yet in a sent batch.
    pub fn unsent(&self) -> usize {
        self.slots
            .values()
            .map(|s| s.pending.len() + s.in_flight.as_ref().map_or(0, Vec::len))
            .sum()
    }
}
