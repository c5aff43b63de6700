//! Deferred immediate alerts: the Lambda's ingest stores an immediate rule's event as a
//! pending alert of its account ([`StateKind::Alerts`], due at once) instead of posting it,
//! so that ingest never waits on Slack or Bedrock. The next flush (the scheduler's tick,
//! every minute) posts them first, before any window, exactly as an inline alert would post.
//!
//! A flusher takes an account's pending alerts by writing them away (over the version it
//! read) before posting: of two flushers, one posts. One that dies between the two loses the
//! alert's immediacy, not its event: the event is in its window, whose digest lists it (as
//! for any alert that fails to post).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, store_error};
use crate::incident::IncidentKey;
use crate::ports::{Notifier, StateItem, StateKind, Store};
use crate::summary::Summarizer;
use crate::window::{BatchEvent, Clock};

/// Incidents an account may have alerts pending for; past it, an event goes out with its
/// window only (counted in `immediate_in_thread`).
const PENDING_KEPT: usize = 50;

/// Writes of one account's pending alerts retried when another writer moved them on.
const WRITE_RACES: usize = 8;

/// An account's alerts waiting for the next flush, one per incident, oldest first.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Pending {
    events: Vec<BatchEvent>,
}

fn parse(item: &StateItem) -> Result<Pending, EngineError> {
    serde_json::from_str(&item.body).map_err(|err| EngineError::Store {
        retryable: false,
        source: format!("pending alerts of {}: {err}", item.key).into(),
    })
}

fn body(pending: &Pending) -> String {
    // A `BatchEvent` always serialises (strings, numbers, an enum, a map of strings).
    serde_json::to_string(pending).unwrap_or_default()
}

impl<S, M, N, C> Engine<S, M, N, C>
where
    S: Store + Sync,
    M: Summarizer + Sync,
    N: Notifier,
    C: Clock,
{
    /// Store `event` as a pending alert of its account, due now. An alert already pending
    /// for the same incident (or for this event) takes it in: the event goes in the
    /// incident's thread with its window.
    pub(super) async fn queue_alert(&mut self, event: BatchEvent) -> Result<(), EngineError> {
        let key = event.event.account.to_string();
        let incident = IncidentKey::of(&event);
        let now = self.clock.now();
        for _ in 0..WRITE_RACES {
            let read = self
                .store
                .state(StateKind::Alerts, &key)
                .await
                .map_err(store_error)?;
            let (mut pending, version) = match &read {
                Some(item) => (parse(item)?, item.version),
                None => (Pending::default(), 0),
            };
            if pending.events.iter().any(|e| e.event.id == event.event.id) {
                return Ok(());
            }
            if pending.events.len() >= PENDING_KEPT
                || pending
                    .events
                    .iter()
                    .any(|e| IncidentKey::of(e) == incident)
            {
                self.stats.immediate_in_thread += 1;
                return Ok(());
            }
            pending.events.push(event.clone());
            let due_at = read
                .as_ref()
                .and_then(|item| item.due_at)
                .map_or(now, |at| at.min(now));
            let item = StateItem {
                kind: StateKind::Alerts,
                key: key.clone(),
                body: body(&pending),
                due_at: Some(due_at),
                version,
            };
            if self
                .store
                .save_state(&item, now)
                .await
                .map_err(store_error)?
            {
                self.stats.queued_alerts += 1;
                return Ok(());
            }
        }
        Err(EngineError::Store {
            retryable: true,
            source: format!("the pending alerts of account {key} kept changing").into(),
        })
    }

    /// Post every account's pending alerts (see the module's docs). Returns how many were
    /// posted (an alert whose incident is open goes in its thread with its window instead);
    /// stops taking accounts once the flush's time is up (theirs stay pending).
    pub(super) async fn post_alerts(&mut self, now: DateTime<Utc>) -> Result<usize, EngineError> {
        let due = self
            .store
            .states_due(StateKind::Alerts, now)
            .await
            .map_err(store_error)?;
        let mut handled = 0;
        for item in due {
            if self.out_of_time() {
                self.stats.deferred += 1;
                continue;
            }
            let pending = parse(&item)?;
            // Taken first: written away over the version read, so of two flushers one posts.
            let taken = StateItem {
                body: body(&Pending::default()),
                due_at: None,
                ..item.clone()
            };
            if !self
                .store
                .save_state(&taken, now)
                .await
                .map_err(store_error)?
            {
                continue;
            }
            for event in pending.events {
                handled += usize::from(self.send_immediate(event).await?);
            }
        }
        Ok(handled)
    }
}
