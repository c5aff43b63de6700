//! Incidents: what turns a stream of matched events into messages a person can follow.
//!
//! Events of one account, one rule and one subject (the performer, see [`IncidentKey::of`])
//! form an incident, open from its first event until the dedup period (Panther's
//! `DedupPeriodMinutes`; default 60 minutes) passes with no new event. Its first events post
//! top level (in their window's digest, or at once for an immediate rule); later events go as
//! one thread reply per window under that first message; while it keeps going, it posts top
//! level again as a reminder after the dedup period, then after doubling intervals up to a
//! day. Times are event times, so replay gives what production would.
//!
//! This module is pure: [`plan`] decides, for the events of one claimed window batch and the
//! incident states the store holds, what posts where and what the states become. The engine
//! reads and writes the states through the `Store` port and delivers the parts.

pub mod held;

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::delivery::{Placement, Posted};
use crate::enrich::{Origin, PrincipalKind};
use crate::event::AccountId;
use crate::rules::{DedupField, Rule};
use crate::window::BatchEvent;

pub use held::{Held, HeldEntry};

/// What one incident is about: an account, a rule, and a subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IncidentKey {
    pub account: AccountId,
    /// The rule's id.
    pub rule: String,
    /// The performer: the session for people (`role/session`, the SSO or IAM user), the role
    /// for workloads, the service for AWS services; empty for events that name no actor.
    pub subject: String,
}

impl IncidentKey {
    /// The incident an event belongs to: its account, its rule, and its performer or the
    /// fields the rule's `dedup_by` names (joined with `|`).
    pub fn of(event: &BatchEvent) -> Self {
        let by_account = event
            .rule
            .threshold
            .as_ref()
            .is_some_and(|t| t.by == crate::rules::ThresholdBy::Account);
        let subject = if by_account {
            // A threshold counted over the whole account is one incident, not one a performer.
            String::new()
        } else if event.rule.dedup_by.is_empty() {
            performer(event)
        } else {
            let values: Vec<String> = event
                .rule
                .dedup_by
                .iter()
                .map(|field| field_value(event, *field))
                .collect();
            values.join("|")
        };
        Self {
            account: event.event.account.clone(),
            rule: event.rule.id.clone(),
            subject,
        }
    }

    /// A short stable digest of the key (FNV-1a, 64 bits, hex): the same on every machine
    /// and in every run, unlike `Hash`.
    pub fn digest(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [self.account.as_str(), &self.rule, &self.subject] {
            for byte in part.bytes().chain([0]) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{hash:016x}")
    }

    /// The id of the incident of this key that opened at `opened_at`:
    /// `ACCOUNT/YYYYMMDDTHHMMSSZ/DIGEST`.
    pub fn incident_id(&self, opened_at: DateTime<Utc>) -> String {
        format!(
            "{}/{}/{}",
            self.account,
            opened_at.format("%Y%m%dT%H%M%SZ"),
            &self.digest()[..12]
        )
    }
}

/// The performer as incidents tell them apart: the session for people, the role for
/// workloads, the service for AWS services; empty for events that name no actor.
pub(crate) fn performer(event: &BatchEvent) -> String {
    let principal = &event.actor.principal;
    match (principal.kind, principal.origin) {
        (_, Origin::NoActor) => String::new(),
        (PrincipalKind::Workload, Origin::RoleSession) => principal
            .name
            .split_once('/')
            .map_or(principal.name.as_str(), |(role, _)| role)
            .to_owned(),
        _ => principal.describe(),
    }
}

fn field_value(event: &BatchEvent, field: DedupField) -> String {
    let e = &event.event;
    match field {
        DedupField::Performer => performer(event),
        DedupField::Name => e.name.to_string(),
        DedupField::Resource => e
            .resources
            .first()
            .map(|r| r.name.to_string())
            .unwrap_or_default(),
        DedupField::Region => e.region.to_string(),
        DedupField::SourceIp => e.source_ip.as_deref().unwrap_or_default().to_owned(),
        DedupField::ErrorCode => e.error_code.as_deref().unwrap_or_default().to_owned(),
    }
}

/// The message an incident's replies go under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// The batch key of the incident's first message (its digest or immediate alert).
    pub batch_key: String,
    /// Where that message landed, per destination (Slack: channel and `ts`); empty for
    /// destinations without threads or before it was posted.
    #[serde(default)]
    pub posts: Vec<Posted>,
}

/// What the store keeps of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// [`IncidentKey::incident_id`].
    pub id: String,
    pub key: IncidentKey,
    /// Time of its first event.
    pub opened_at: DateTime<Utc>,
    /// Time of its latest event so far.
    pub last_event: DateTime<Utc>,
    /// Events so far, every part counted.
    pub events: u64,
    /// The batch key of the batch that opened it (its digest or immediate alert). The first
    /// message may end up elsewhere (a digest folded past the ceiling goes in the overflow
    /// post's thread), so a retry of the opening batch recognises it by this.
    #[serde(default)]
    pub opened_by: String,
    /// Its first message, once a flusher took the job of posting it. `posts` is filled once
    /// that message went out; until then another flusher must not reply (it waits).
    pub parent: Parent,
    /// True once the first message went out.
    pub posted: bool,
    /// When the opening batch claimed it (before posting its first message). A claim still
    /// unposted after [`IncidentPolicy::claim_timeout`] is abandoned: another batch takes
    /// the incident over instead of waiting for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    /// A continuing event at or after this time posts a top-level reminder.
    pub next_reminder: DateTime<Utc>,
    pub reminders: u32,
    /// The latest window batches that continued it, as counted here: a batch retried after
    /// a crash that came after this state was written posts the same part again (the
    /// destination finds it) and counts nothing twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted: Vec<Counted>,
    /// Bumped on every write: the store writes a state only over the version it read.
    pub version: u64,
}

/// A window batch an incident's state counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// Its batch key.
    pub batch: String,
    /// True when it posted a reminder, false for a reply.
    pub reminder: bool,
    /// Events it added to the count.
    #[serde(default)]
    pub events: u64,
}

/// Batches kept in [`Incident::counted`]: more than can be in flight for one incident.
const COUNTED_KEPT: usize = 16;

impl Incident {
    /// The batch key of the batch that opened it (`parent.batch_key` for states written
    /// before `opened_by` was).
    pub fn opener(&self) -> &str {
        if self.opened_by.is_empty() {
            &self.parent.batch_key
        } else {
            &self.opened_by
        }
    }

    /// True for a claim whose first message never went out within the claim timeout (its
    /// batch keeps failing, or no longer holds its events): not worth waiting for.
    pub fn is_abandoned(&self, now: DateTime<Utc>, policy: &IncidentPolicy) -> bool {
        !self.posted
            && self.claimed_at.is_some_and(|at| {
                at.checked_add_signed(policy.claim_timeout)
                    .is_some_and(|end| end <= now)
            })
    }

    /// The state as if the incident had ended long ago (same version): what a batch that
    /// takes over an abandoned claim plans against, opening the incident anew.
    #[must_use]
    pub fn closed(mut self) -> Self {
        self.last_event = DateTime::<Utc>::MIN_UTC;
        self
    }

    /// True when an event at `time` continues this incident (it is still open then).
    pub fn is_open_at(&self, time: DateTime<Utc>, policy: &IncidentPolicy) -> bool {
        time <= self.last_event + policy.dedup_period
            && time >= self.opened_at - policy.dedup_period
    }

    /// A new incident opened by `events` (at least one), its first message `parent_key`.
    pub fn open(
        key: IncidentKey,
        events: &[BatchEvent],
        parent_key: &str,
        policy: &IncidentPolicy,
    ) -> Self {
        let opened_at = events
            .first()
            .map_or(DateTime::<Utc>::MIN_UTC, |e| e.event.time);
        let last_event = events.last().map_or(opened_at, |e| e.event.time);
        Self {
            id: key.incident_id(opened_at),
            key,
            opened_at,
            last_event,
            events: events.len() as u64,
            opened_by: parent_key.to_owned(),
            parent: Parent {
                batch_key: parent_key.to_owned(),
                posts: Vec::new(),
            },
            posted: false,
            claimed_at: None,
            next_reminder: opened_at + policy.dedup_period,
            reminders: 0,
            counted: Vec::new(),
            version: 0,
        }
    }

    /// What is stored, moved on by what `mine` added to the state it read: the events of
    /// the batches it counted that the stored state does not, its latest time, its reminder
    /// if it sent one, its first message if it posted it.
    #[must_use]
    pub fn merged(&self, mine: &Self) -> Self {
        let mut next = self.clone();
        next.last_event = next.last_event.max(mine.last_event);
        if mine.reminders > next.reminders {
            next.reminders = mine.reminders;
            next.next_reminder = mine.next_reminder;
        }
        if mine.posted && !next.posted && mine.parent.batch_key == next.parent.batch_key {
            next.posted = true;
            next.parent.posts.clone_from(&mine.parent.posts);
        }
        for counted in &mine.counted {
            if !next.counted.iter().any(|c| c.batch == counted.batch) {
                next.events += counted.events;
                next.counted.push(counted.clone());
            }
        }
        next.keep_latest_counted();
        next
    }

    /// Window batch `batch` continued it with `events` events (`reminder`: with a reminder).
    fn count(&mut self, batch: &str, reminder: bool, events: u64) {
        self.counted.push(Counted {
            batch: batch.to_owned(),
            reminder,
            events,
        });
        self.keep_latest_counted();
    }

    fn keep_latest_counted(&mut self) {
        let excess = self.counted.len().saturating_sub(COUNTED_KEPT);
        self.counted.drain(..excess);
    }

    /// `events` continue this incident.
    fn extend(&mut self, events: &[BatchEvent]) {
        if let Some(last) = events.iter().map(|e| e.event.time).max() {
            self.last_event = self.last_event.max(last);
        }
        self.events += events.len() as u64;
    }
}

/// How incidents open, continue and remind. From configuration (`[incidents]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentPolicy {
    /// How long an incident stays open after its latest event (default 60 minutes).
    pub dedup_period: TimeDelta,
    /// The longest interval between reminders (default 24 hours).
    pub max_reminder_interval: TimeDelta,
    /// Top-level posts per channel per hour (default 20; 0: no ceiling). Beyond it, the
    /// digests of new incidents fold into the thread of one "more incidents" post.
    pub ceiling_per_hour: usize,
    /// How long a claimed incident may wait for its first message before another batch
    /// takes it over (default 15 minutes: longer than a flush lease and a few retries).
    pub claim_timeout: TimeDelta,
}

impl Default for IncidentPolicy {
    fn default() -> Self {
        Self {
            dedup_period: TimeDelta::minutes(60),
            max_reminder_interval: TimeDelta::hours(24),
            ceiling_per_hour: 20,
            claim_timeout: TimeDelta::minutes(15),
        }
    }
}

impl IncidentPolicy {
    /// The policy for `rule`'s incidents: its own dedup period where the pack gives one.
    #[must_use]
    pub fn for_rule(&self, rule: &Rule) -> Self {
        Self {
            dedup_period: rule.dedup_period().unwrap_or(self.dedup_period),
            ..*self
        }
    }

    /// The interval after the `n`th reminder (0: after the first post): the dedup period,
    /// doubled each time, at most [`Self::max_reminder_interval`].
    pub fn reminder_interval(&self, n: u32) -> TimeDelta {
        let factor = 1_i32.checked_shl(n.min(20)).unwrap_or(i32::MAX);
        self.dedup_period
            .checked_mul(factor)
            .unwrap_or(self.max_reminder_interval)
            .min(self.max_reminder_interval)
    }
}

/// Top-level posts per channel over the last hour, and each channel's overflow post: what
/// folds a burst of new incidents into one thread. Times are the posts' window ends (event
/// time), so replay counts as production would. Kept by one engine: engines running side by
/// side (several Lambda instances) each count their own posts.
#[derive(Debug, Default)]
pub struct Ceiling {
    posts: HashMap<String, VecDeque<DateTime<Utc>>>,
    overflow: HashMap<String, (DateTime<Utc>, Parent)>,
}

impl Ceiling {
    /// Where a digest of new incidents for `route` at `time` goes: top level while the
    /// route had fewer than `ceiling` top-level posts in the hour before, else as the hour's
    /// overflow post, or in the thread of the one already out.
    pub fn place(&mut self, route: &str, time: DateTime<Utc>, ceiling: usize) -> Placement {
        let hour_ago = time - TimeDelta::hours(1);
        let posts = self.posts.entry(route.to_owned()).or_default();
        while posts.front().is_some_and(|t| *t <= hour_ago) {
            posts.pop_front();
        }
        if ceiling == 0 || posts.len() < ceiling {
            return Placement::Top;
        }
        match self.overflow.get(route) {
            Some((at, parent)) if *at > hour_ago => Placement::Folded(parent.clone()),
            _ => Placement::Overflow(ceiling),
        }
    }

    /// A top-level post went to `route` at `time`.
    pub fn posted(&mut self, route: &str, time: DateTime<Utc>) {
        self.posts
            .entry(route.to_owned())
            .or_default()
            .push_back(time);
    }

    /// `parent` is the overflow post of `route` from `time` on.
    pub fn overflowed(&mut self, route: &str, time: DateTime<Utc>, parent: Parent) {
        self.overflow.insert(route.to_owned(), (time, parent));
    }
}

/// Events of one incident in one part of a flush.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    /// The incident as it will be once this flush went out.
    pub incident: Incident,
    pub events: Vec<BatchEvent>,
}

/// What one claimed window batch becomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Events of incidents this batch opens: the window's top-level digest (may be empty:
    /// then nothing posts top level).
    pub digest: Vec<BatchEvent>,
    /// Events already posted as immediate alerts, left out of every part.
    pub alerted: Vec<BatchEvent>,
    /// Continuing incidents due a top-level reminder.
    pub reminders: Vec<Thread>,
    /// Continuing incidents: one reply each, under the incident's first message.
    pub replies: Vec<Thread>,
    /// Incidents this batch opens (their parent is the digest).
    pub opened: Vec<Incident>,
    /// True when an event continues an incident whose first message is not out yet
    /// (another flusher is posting it): the batch must wait.
    pub waiting: bool,
}

/// Decide what the events of one claimed batch post, given the stored state of their
/// incidents (`known`, by key). `digest_key` is the batch key the digest will carry.
pub fn plan(
    events: Vec<BatchEvent>,
    known: &BTreeMap<IncidentKey, Incident>,
    digest_key: &str,
    policy: &IncidentPolicy,
) -> Plan {
    let mut out = Plan::default();
    let mut groups: Vec<(IncidentKey, Vec<BatchEvent>)> = Vec::new();
    for event in events {
        if event.already_alerted {
            out.alerted.push(event);
            continue;
        }
        let key = IncidentKey::of(&event);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(event),
            None => groups.push((key, vec![event])),
        }
    }
    let default_policy = policy;
    for (key, mut group) in groups {
        let first = group[0].event.time;
        let rule_policy = default_policy.for_rule(&group[0].rule);
        let policy = &rule_policy;
        let stored = known.get(&key);
        // Opened by an earlier attempt of this batch, posted or not: it opens again.
        let ours = stored.filter(|s| s.opener() == digest_key);
        match stored.filter(|s| ours.is_none() && s.is_open_at(first, policy)) {
            None => {
                // Posted already (the crash came after its state was written): as it
                // stands, so nothing is counted twice.
                let incident = if let Some(posted) = ours.filter(|s| s.posted) {
                    posted.clone()
                } else {
                    let mut incident = Incident::open(key, &group, digest_key, policy);
                    // Written over the version read: our own claim from an earlier attempt,
                    // or a closed incident of the same key.
                    incident.version = stored.map_or(0, |s| s.version);
                    // An earlier attempt chose where the first message goes (top level, or
                    // folded into an overflow thread): it goes there again.
                    if let Some(claim) = ours {
                        incident.parent.clone_from(&claim.parent);
                    }
                    incident
                };
                for event in &mut group {
                    event.incident = Some(incident.id.clone());
                }
                out.digest.extend(group);
                out.opened.push(incident);
            }
            Some(state) if !state.posted => out.waiting = true,
            Some(state) => {
                let mut incident = state.clone();
                for event in &mut group {
                    event.incident = Some(incident.id.clone());
                }
                // A retry of a batch this state already counts posts the same part again.
                let done = incident
                    .counted
                    .iter()
                    .find(|c| c.batch == digest_key)
                    .map(|c| c.reminder);
                let remind = done.unwrap_or(first >= incident.next_reminder);
                if done.is_none() {
                    incident.extend(&group);
                    if remind {
                        incident.reminders += 1;
                        incident.next_reminder =
                            first + policy.reminder_interval(incident.reminders);
                    }
                    incident.count(digest_key, remind, group.len() as u64);
                }
                if remind {
                    out.reminders.push(Thread {
                        incident,
                        events: group,
                    });
                } else {
                    out.replies.push(Thread {
                        incident,
                        events: group,
                    });
                }
            }
        }
    }
    out.digest
        .sort_by(|a, b| (a.event.time, &a.event.id).cmp(&(b.event.time, &b.event.id)));
    out
}

#[cfg(test)]
mod tests;
