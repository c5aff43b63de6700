//! The engine's side of held continuations (destinations without threads; see
//! [`crate::incident::held`]): replies are held in the store per account,
//! the account's next top-level part lists them, and a post of their own lists them when
//! they are due before any other top-level post came.

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, store_error};
use crate::delivery::Placement;
use crate::event::AccountId;
use crate::incident::{Held, IncidentPolicy};
use crate::locale::Lang;
use crate::ports::{Delivery, Notifier, Store};
use crate::severity::Severity;
use crate::summary::{Summarizer, Summary, SummarySource};
use crate::window::{Batch, BatchId, BatchKind, Clock};

/// What a flush did with the account's held events.
pub(super) struct HeldPlan {
    /// The state read before posting.
    read: Held,
    /// What a top-level part of this flush listed, if one did.
    shown: Option<Held>,
}

/// Mark the replies a destination without threads cannot post as held. Digests folded past
/// the hourly ceiling are not held: they are new incidents, and go out as they come.
pub(super) fn unthread(deliveries: &mut [Delivery]) {
    for delivery in deliveries {
        delivery.threaded = false;
        let placement = std::mem::take(&mut delivery.placement);
        delivery.placement = match placement {
            Placement::Reply(incident) => Placement::Held(incident),
            other => other,
        };
    }
}

/// Add the held replies of `deliveries` (the parts of the batch `batch_key`) to `held`,
/// once per batch. Returns false when there were none, or the batch was held already.
fn hold_parts(
    held: &mut Held,
    batch_key: &str,
    deliveries: &[Delivery],
    policy: &IncidentPolicy,
    lang: Lang,
) -> bool {
    let replies: Vec<(&[crate::window::BatchEvent], Option<DateTime<Utc>>)> = deliveries
        .iter()
        .filter_map(|delivery| match &delivery.placement {
            Placement::Held(incident) => {
                Some((delivery.batch.events.as_slice(), Some(incident.opened_at)))
            }
            _ => None,
        })
        .collect();
    !replies.is_empty()
        && held.hold(batch_key, &replies, lang, |e| {
            policy.for_rule(&e.rule).dedup_period
        })
}

impl<S, M, N, C> Engine<S, M, N, C>
where
    S: Store + Sync,
    M: Summarizer + Sync,
    N: Notifier,
    C: Clock,
{
    /// Hold the replies of a flush of `account`, and list everything the account holds in
    /// the flush's first top-level part, if it has one and no other flusher is posting the
    /// account's held events: the listed state is claimed (with the posting lease) first.
    pub(super) async fn hold(
        &mut self,
        account: &AccountId,
        batch_key: &str,
        deliveries: &mut [Delivery],
        now: DateTime<Utc>,
    ) -> Result<HeldPlan, EngineError> {
        let read = self
            .store
            .held(account)
            .await
            .map_err(store_error)?
            .unwrap_or_else(|| Held::empty(account.clone()));
        let mut next = read.clone();
        let (policy, lang) = (self.settings.incidents, self.settings.locale.lang);
        hold_parts(&mut next, batch_key, deliveries, &policy, lang);
        let Some(top) = deliveries.iter_mut().find(|d| d.is_top_level()) else {
            return Ok(HeldPlan { read, shown: None });
        };
        if next.is_empty() || read.is_being_posted(now) {
            return Ok(HeldPlan { read, shown: None });
        }
        next.posting_until = now.checked_add_signed(policy.claim_timeout);
        if !self
            .store
            .save_held(&next, now)
            .await
            .map_err(store_error)?
        {
            // Another flusher moved it on meanwhile: listed by a later post instead.
            return Ok(HeldPlan { read, shown: None });
        }
        next.version += 1;
        top.continuing = next.listed();
        Ok(HeldPlan {
            read: next.clone(),
            shown: Some(next),
        })
    }

    /// After a flush went out: store what it held, less what its top-level part listed.
    pub(super) async fn save_held(
        &mut self,
        plan: HeldPlan,
        batch_key: &str,
        deliveries: &[Delivery],
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let (policy, lang) = (self.settings.incidents, self.settings.locale.lang);
        let shown = plan.shown;
        let mut probe = plan.read.clone();
        if shown.is_none() && !hold_parts(&mut probe, batch_key, deliveries, &policy, lang) {
            // Nothing to hold (or held by an earlier attempt), nothing listed: no write.
            return Ok(());
        }
        self.write_held(plan.read, now, |base| {
            let mut next = base.clone();
            hold_parts(&mut next, batch_key, deliveries, &policy, lang);
            match &shown {
                Some(shown) => next.without(shown),
                None => next,
            }
        })
        .await
    }

    /// Write `change(state)` over the stored state, reading it again when another flusher
    /// wrote it meanwhile (`change` must be idempotent: holding is, by part key).
    async fn write_held(
        &mut self,
        mut base: Held,
        now: DateTime<Utc>,
        change: impl Fn(&Held) -> Held,
    ) -> Result<(), EngineError> {
        for _ in 0..5 {
            let mut next = change(&base);
            next.version = base.version;
            if self
                .store
                .save_held(&next, now)
                .await
                .map_err(store_error)?
            {
                return Ok(());
            }
            base = self
                .store
                .held(&base.account)
                .await
                .map_err(store_error)?
                .unwrap_or_else(|| Held::empty(base.account.clone()));
        }
        // The batch stays due and is tried again: holding is idempotent per batch.
        Err(EngineError::Store {
            retryable: true,
            source: format!(
                "the held events of account {} kept changing under this flusher",
                base.account
            )
            .into(),
        })
    }

    /// Post the held events of every account they are due for (nothing else posted top level
    /// for it since they were held). Returns how many posts went out; a post that fails is
    /// tried again at the next flush.
    pub(super) async fn post_held(&mut self, now: DateTime<Utc>) -> Result<usize, EngineError> {
        let due = self.store.held_due(now).await.map_err(store_error)?;
        let mut sent = 0;
        for account in due {
            if self.out_of_time() {
                self.stats.deferred += 1;
                continue;
            }
            let Some(read) = self.store.held(&account).await.map_err(store_error)? else {
                continue;
            };
            let Some(due_at) = read.due_at.filter(|at| *at <= now && !read.is_empty()) else {
                continue;
            };
            if read.is_being_posted(now) {
                continue;
            }
            // Claimed first (the posting lease): of two ticks, one posts.
            let mut claimed = read.clone();
            claimed.posting_until = now.checked_add_signed(self.settings.incidents.claim_timeout);
            if !self
                .store
                .save_held(&claimed, now)
                .await
                .map_err(store_error)?
            {
                continue;
            }
            claimed.version += 1;
            let delivery = self.held_post(&claimed, due_at);
            if self.post(&delivery).await.is_err() {
                // Listed again at the next tick once the lease ends.
                continue;
            }
            let shown = claimed.clone();
            self.write_held(claimed, now, |base| base.without(&shown))
                .await?;
            let route = self.route(&delivery);
            self.ceiling.posted(&route, due_at);
            self.stats.top_level += 1;
            self.stats.continuing += 1;
            sent += 1;
        }
        Ok(sent)
    }

    /// A top-level post of `held` alone, placed in the window of `due_at`.
    fn held_post(&self, held: &Held, due_at: DateTime<Utc>) -> Delivery {
        let locale = self.settings.locale;
        let window = self.settings.window;
        let start = window.start_of(due_at);
        let id = BatchId {
            account: held.account.clone(),
            window_start: start,
            seq: 0,
            event: None,
            claim: None,
        };
        let entries = held.listed();
        let severity = entries
            .iter()
            .map(|e| e.severity)
            .max()
            .unwrap_or(Severity::Green);
        let summary = Summary {
            headline: (locale.words().continuing_headline)(held.events(), entries.len()),
            body: String::new(),
            notes: Vec::new(),
            severity,
            severity_reason: String::new(),
            source: SummarySource::Offline,
        };
        let batch = Batch {
            account_name: self.account_name(&id),
            id,
            kind: BatchKind::Window,
            // When it was due: the post's key tells two posts of one window apart.
            window_end: due_at,
            events: Vec::new(),
        };
        let mut delivery = Delivery::new(batch, summary, locale).placed(Placement::Continuing);
        delivery.continuing = entries;
        delivery.threaded = false;
        delivery
    }
}
