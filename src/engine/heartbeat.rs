//! Heartbeats and silence: each member account and region runs a scheduled rule
//! ([`HEARTBEAT_RULE`]) that sends a heartbeat every five minutes through the same rules,
//! central bus, stream and Pipe as its CloudTrail events. The engine keeps, per source
//! (account and region), the latest heartbeat and the latest forwarded event
//! ([`SourceState`], a [`StateKind::Source`] item due when the source would fall silent).
//!
//! - No heartbeat for `[heartbeat] silence_after` (default 15 minutes): the source is
//!   *silent*: one red notice in the account's channel, and the `SilentSources` metric
//!   counts it at every flush until its heartbeats are back, which posts one green notice.
//! - No forwarded event for `[heartbeat] quiet_after` (off by default): the source is
//!   *quiet*: one yellow notice, and one when events come again.
//!
//! Ingest only writes the state; the flush (the scheduler's tick) decides and posts. A state
//! change is written before its notice is posted, with the notice pending in it, and the
//! notice is cleared once posted: a failed post is tried again at the next flush, and no
//! notice goes out twice from racing flushers.
//!
//! A source is known from its first heartbeat: an account whose member stack never sent
//! one is not reported (the deployment's alarms cover a stack that never worked).
//!
//! [`HEARTBEAT_RULE`]: crate::event::decode::HEARTBEAT_RULE

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, store_error};
use crate::config::HeartbeatConfig;
use crate::delivery::Placement;
use crate::event::{AccountId, Heartbeat};
use crate::ports::{Delivery, Notifier, StateItem, StateKind, Store};
use crate::severity::Severity;
use crate::summary::{Summarizer, Summary, SummarySource};
use crate::window::{Batch, BatchId, BatchKind, Clock};

/// Writes of one source's state retried when another writer moved it on.
const WRITE_RACES: usize = 8;

/// What the engine gathered since it last wrote sources: heartbeats decoded, and the latest
/// event time per source (written with the next heartbeat, so events cost no write).
#[derive(Debug, Default)]
pub(super) struct Beats {
    pending: Vec<Heartbeat>,
    latest_event: HashMap<(AccountId, String), DateTime<Utc>>,
}

impl Beats {
    pub(super) fn heard(&mut self, beat: Heartbeat) {
        self.pending.push(beat);
    }

    pub(super) fn saw_event(&mut self, account: &AccountId, region: &str, at: DateTime<Utc>) {
        let latest = self
            .latest_event
            .entry((account.clone(), region.to_owned()))
            .or_insert(at);
        *latest = (*latest).max(at);
    }
}

/// A notice about a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    Silent,
    Resumed,
    Quiet,
    Unquiet,
}

impl Notice {
    fn name(self) -> &'static str {
        match self {
            Self::Silent => "silent",
            Self::Resumed => "resumed",
            Self::Quiet => "quiet",
            Self::Unquiet => "unquiet",
        }
    }

    fn severity(self) -> Severity {
        match self {
            Self::Silent => Severity::Red,
            Self::Quiet => Severity::Yellow,
            Self::Resumed | Self::Unquiet => Severity::Green,
        }
    }
}

/// One source's state, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    pub account: AccountId,
    pub region: String,
    /// The latest heartbeat's time.
    pub last_beat: DateTime<Utc>,
    /// The latest forwarded event's time, as far as heartbeats have carried it.
    #[serde(default)]
    pub last_event: Option<DateTime<Utc>>,
    /// Set while silent: the last heartbeat before the silence.
    #[serde(default)]
    pub silent_since: Option<DateTime<Utc>>,
    /// Set while quiet: the last event (or, with none, heartbeat) before the quiet.
    #[serde(default)]
    pub quiet_since: Option<DateTime<Utc>>,
    /// Notices decided and not yet posted, with the time each is about.
    #[serde(default)]
    pub notices: Vec<(Notice, DateTime<Utc>)>,
}

impl SourceState {
    fn key(account: &AccountId, region: &str) -> String {
        format!("{account}/{region}")
    }

    /// When the source would fall silent or quiet, or `now` while a notice is pending or it
    /// is silent (so that every flush counts it).
    fn due_at(&self, config: &HeartbeatConfig, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.notices.is_empty() || self.silent_since.is_some() {
            return Some(now);
        }
        let silent = self.last_beat.checked_add_signed(config.silence_after);
        let quiet = config
            .quiet_after
            .filter(|_| self.quiet_since.is_none())
            .and_then(|q| {
                self.last_event
                    .unwrap_or(self.last_beat)
                    .checked_add_signed(q)
            });
        [silent, quiet].into_iter().flatten().min()
    }

    /// Decide what changed by `now`: going silent or quiet, or coming back.
    fn decide(&mut self, config: &HeartbeatConfig, now: DateTime<Utc>) {
        let silent = self
            .last_beat
            .checked_add_signed(config.silence_after)
            .is_some_and(|at| at <= now);
        match (silent, self.silent_since) {
            (true, None) => {
                self.silent_since = Some(self.last_beat);
                self.notices.push((Notice::Silent, self.last_beat));
            }
            (false, Some(since)) => {
                self.silent_since = None;
                self.notices.push((Notice::Resumed, since));
            }
            _ => {}
        }
        let last_event = self.last_event.unwrap_or(self.last_beat);
        let quiet = config
            .quiet_after
            .and_then(|q| last_event.checked_add_signed(q))
            .is_some_and(|at| at <= now);
        match (quiet, self.quiet_since) {
            // A silent source is reported as silent, not also as quiet.
            (true, None) if self.silent_since.is_none() => {
                self.quiet_since = Some(last_event);
                self.notices.push((Notice::Quiet, last_event));
            }
            (false, Some(since)) => {
                self.quiet_since = None;
                self.notices.push((Notice::Unquiet, since));
            }
            _ => {}
        }
    }
}

fn parse(item: &StateItem) -> Result<SourceState, EngineError> {
    serde_json::from_str(&item.body).map_err(|err| EngineError::Store {
        retryable: false,
        source: format!("source state {}: {err}", item.key).into(),
    })
}

impl<S, M, N, C> Engine<S, M, N, C>
where
    S: Store + Sync,
    M: Summarizer + Sync,
    N: Notifier,
    C: Clock,
{
    /// Write the heartbeats decoded since the last call (each source once, its latest).
    pub(super) async fn record_beats(&mut self) -> Result<(), EngineError> {
        let mut latest: HashMap<(AccountId, String), DateTime<Utc>> = HashMap::new();
        for beat in std::mem::take(&mut self.beats.pending) {
            let at = latest
                .entry((beat.account, beat.region))
                .or_insert(beat.time);
            *at = (*at).max(beat.time);
        }
        for ((account, region), at) in latest {
            let event = self
                .beats
                .latest_event
                .remove(&(account.clone(), region.clone()));
            self.record_beat(&account, &region, at, event).await?;
        }
        Ok(())
    }

    async fn record_beat(
        &mut self,
        account: &AccountId,
        region: &str,
        beat: DateTime<Utc>,
        event: Option<DateTime<Utc>>,
    ) -> Result<(), EngineError> {
        let key = SourceState::key(account, region);
        let now = self.clock.now();
        let config = self.settings.heartbeat;
        for _ in 0..WRITE_RACES {
            let read = self
                .store
                .state(StateKind::Source, &key)
                .await
                .map_err(store_error)?;
            let (mut state, version) = match &read {
                Some(item) => (parse(item)?, item.version),
                None => (
                    SourceState {
                        account: account.clone(),
                        region: region.to_owned(),
                        last_beat: beat,
                        last_event: None,
                        silent_since: None,
                        quiet_since: None,
                        notices: Vec::new(),
                    },
                    0,
                ),
            };
            let before = state.clone();
            state.last_beat = state.last_beat.max(beat);
            state.last_event = state.last_event.max(event);
            if version > 0 && state == before {
                return Ok(());
            }
            let item = StateItem {
                kind: StateKind::Source,
                key: key.clone(),
                body: serde_json::to_string(&state).unwrap_or_default(),
                due_at: state.due_at(&config, now),
                version,
            };
            if self
                .store
                .save_state(&item, now)
                .await
                .map_err(store_error)?
            {
                return Ok(());
            }
        }
        Err(EngineError::Store {
            retryable: true,
            source: format!("the heartbeat state of {key} kept changing").into(),
        })
    }

    /// Decide and post what changed for every source due now; count the silent ones.
    /// Returns how many notices went out.
    pub(super) async fn post_notices(&mut self, now: DateTime<Utc>) -> Result<usize, EngineError> {
        let config = self.settings.heartbeat;
        let due = self
            .store
            .states_due(StateKind::Source, now)
            .await
            .map_err(store_error)?;
        let mut silent = 0;
        let mut sent = 0;
        for item in due {
            let mut state = parse(&item)?;
            let before = state.clone();
            state.decide(&config, now);
            silent += u64::from(state.silent_since.is_some());
            if state.notices.is_empty() {
                if state != before {
                    self.save_source(&item, &state, now).await?;
                }
                continue;
            }
            if self.out_of_time() {
                self.stats.deferred += 1;
                continue;
            }
            // Decided first, then posted: of two flushers, one moves the state on and posts.
            let Some(version) = self.save_source(&item, &state, now).await? else {
                continue;
            };
            let mut left = Vec::new();
            for (notice, at) in std::mem::take(&mut state.notices) {
                let delivery = self.notice(&state, notice, at);
                if self.post(&delivery).await.is_err() {
                    left.push((notice, at));
                    continue;
                }
                self.stats.notices += 1;
                self.stats.top_level += 1;
                sent += 1;
            }
            state.notices = left;
            let decided = StateItem {
                version,
                ..item.clone()
            };
            // A heartbeat written meanwhile makes this fail: the notice stays pending and is
            // posted again at the next flush, under the same key (a bot token's post finds
            // the first one and does not post twice).
            self.save_source(&decided, &state, now).await?;
        }
        self.stats.silent_sources = silent;
        Ok(sent)
    }

    /// Write `state` over `read`'s version; the new version, or `None` when another writer
    /// moved it on.
    async fn save_source(
        &mut self,
        read: &StateItem,
        state: &SourceState,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, EngineError> {
        let item = StateItem {
            body: serde_json::to_string(state).unwrap_or_default(),
            due_at: state.due_at(&self.settings.heartbeat, now),
            ..read.clone()
        };
        let saved = self
            .store
            .save_state(&item, now)
            .await
            .map_err(store_error)?;
        Ok(saved.then_some(read.version + 1))
    }

    /// The notice `notice` about `state`'s source, about the time `at`.
    fn notice(&self, state: &SourceState, notice: Notice, at: DateTime<Utc>) -> Delivery {
        let locale = self.settings.locale;
        let words = locale.words();
        let since = at
            .with_timezone(&locale.tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string();
        let region = state.region.as_str();
        let (headline, body) = match notice {
            Notice::Silent => ((words.silent_headline)(region, &since), words.silent_body),
            Notice::Resumed => ((words.resumed_headline)(region, &since), ""),
            Notice::Quiet => ((words.quiet_headline)(region, &since), words.quiet_body),
            Notice::Unquiet => ((words.unquiet_headline)(region, &since), ""),
        };
        let window = self.settings.window;
        let id = BatchId {
            account: state.account.clone(),
            window_start: window.start_of(at),
            seq: 0,
            event: Some(format!("{}-{region}", notice.name())),
            claim: None,
        };
        let summary = Summary {
            headline,
            body: body.to_owned(),
            notes: Vec::new(),
            severity: notice.severity(),
            severity_reason: String::new(),
            source: SummarySource::Offline,
        };
        let batch = Batch {
            account_name: self.account_name(&id),
            id,
            kind: BatchKind::Window,
            window_end: at,
            events: Vec::new(),
        };
        Delivery::new(batch, summary, locale).placed(Placement::Notice)
    }
}
