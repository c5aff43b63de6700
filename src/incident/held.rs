//! Held continuations, for destinations without threads (a Slack incoming webhook).
//!
//! Where a bot token posts an incident's later events as thread replies, a webhook cannot
//! thread. Posting each reply as its own message would flood the channel again, so the
//! engine holds them in the store instead, per account ([`Held`]): one entry per incident,
//! with counts, times and the event names. The account's next top-level post (a digest or a
//! reminder) lists them in a compact "continuing" section and clears them. An incident that
//! keeps going posts reminders (after its dedup period, then at doubling intervals), which
//! carry its held events. So that nothing waits for a post that never comes, an incident's
//! held events go out at the latest when it ends, its dedup period after its latest held
//! event ([`HeldEntry::due_at`]): then a post of their own lists what is due and everything
//! else held for the account. Digests folded past the hourly ceiling are not held (they are
//! new incidents): a webhook posts them as they come.
//!
//! Times are event times, like incidents'.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::IncidentKey;
use crate::event::AccountId;
use crate::locale::Lang;
use crate::severity::Severity;
use crate::window::BatchEvent;

/// Event names kept per entry, most frequent first; the others are counted in `events` only.
pub const NAMES_KEPT: usize = 8;

/// Batches remembered in [`Held::added_by`]: more than can be in flight for an account.
const ADDED_KEPT: usize = 64;

/// What an account holds for its next top-level post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub account: AccountId,
    /// One entry per incident, by incident id.
    #[serde(default)]
    pub entries: BTreeMap<String, HeldEntry>,
    /// Keys of the latest batches whose replies were held here (newest last, at most 64): a
    /// batch retried after a crash holds nothing twice.
    #[serde(default)]
    pub added_by: Vec<String>,
    /// While a flusher posts the held events (from claiming them until it clears what it
    /// listed): no other flusher lists them meanwhile. A lease, so a flusher that died
    /// while posting holds nothing back for long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posting_until: Option<DateTime<Utc>>,
    /// When held events go out at the latest: the earliest [`HeldEntry::due_at`]. `None`
    /// when nothing is held.
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    /// Bumped on every write: the store writes only over the version it read (0: none).
    #[serde(default)]
    pub version: u64,
}

/// One incident's held events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEntry {
    /// The rule's id.
    pub rule: String,
    /// The rule's title in the reader's language when the events were held.
    pub title: String,
    /// The performer the incident is about ([`IncidentKey::subject`]; empty: none named).
    pub subject: String,
    pub severity: Severity,
    /// When the incident opened (`None` for an incident whose first events are held).
    pub since: Option<DateTime<Utc>>,
    /// Held events of this incident.
    pub events: u64,
    /// Times of the first and the latest held event.
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// Event names with their counts, at most [`NAMES_KEPT`].
    pub names: BTreeMap<String, u64>,
    /// When the incident ends if nothing more comes: its latest held event plus its dedup
    /// period. Its held events go out then at the latest.
    pub due_at: DateTime<Utc>,
}

impl Held {
    /// Nothing held yet for `account`.
    pub fn empty(account: AccountId) -> Self {
        Self {
            account,
            entries: BTreeMap::new(),
            added_by: Vec::new(),
            posting_until: None,
            due_at: None,
            version: 0,
        }
    }

    /// True while another flusher holds the posting lease at `now`.
    pub fn is_being_posted(&self, now: DateTime<Utc>) -> bool {
        self.posting_until.is_some_and(|until| until > now)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Held events in all entries.
    pub fn events(&self) -> u64 {
        self.entries.values().map(|e| e.events).sum()
    }

    /// Hold the replies of the batch `batch_key`: per reply its events (their incident's id
    /// on each) and when its incident started. Each event goes out at the latest
    /// `dedup_period(event)` after it, if its incident ends then. Returns false, and changes
    /// nothing, when that batch was already held.
    pub fn hold(
        &mut self,
        batch_key: &str,
        replies: &[(&[BatchEvent], Option<DateTime<Utc>>)],
        lang: Lang,
        dedup_period: impl Fn(&BatchEvent) -> TimeDelta,
    ) -> bool {
        if self.added_by.iter().any(|k| k == batch_key) {
            return false;
        }
        for (events, since) in replies {
            self.hold_events(events, *since, lang, &dedup_period);
        }
        self.added_by.push(batch_key.to_owned());
        if self.added_by.len() > ADDED_KEPT {
            let extra = self.added_by.len() - ADDED_KEPT;
            self.added_by.drain(..extra);
        }
        true
    }

    fn hold_events(
        &mut self,
        events: &[BatchEvent],
        since: Option<DateTime<Utc>>,
        lang: Lang,
        dedup_period: &impl Fn(&BatchEvent) -> TimeDelta,
    ) {
        for event in events {
            let id = event.incident.clone().unwrap_or_default();
            let time = event.event.time;
            let due = time
                .checked_add_signed(dedup_period(event))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let entry = self.entries.entry(id.clone()).or_insert_with(|| HeldEntry {
                rule: event.rule.id.clone(),
                title: event.rule.title(lang).to_owned(),
                subject: IncidentKey::of(event).subject,
                severity: event.severity(),
                since,
                events: 0,
                first: time,
                last: time,
                names: BTreeMap::new(),
                due_at: due,
            });
            entry.events += 1;
            entry.first = entry.first.min(time);
            entry.last = entry.last.max(time);
            entry.severity = entry.severity.max(event.severity());
            *entry.names.entry(event.event.name.to_string()).or_default() += 1;
            entry.keep_names();
            entry.due_at = entry.due_at.max(due);
        }
        self.due_at = self.entries.values().map(|e| e.due_at).min();
    }

    /// What is left once `shown` went out: each entry less the events `shown` listed of it
    /// (an entry whose events all went out is gone), and the posting lease ended. Events
    /// held after `shown` was read stay, with the due time they had. Exact only while the
    /// posting lease kept every other flusher from listing (and clearing) them meanwhile.
    #[must_use]
    pub fn without(&self, shown: &Self) -> Self {
        let mut next = self.clone();
        for (id, gone) in &shown.entries {
            let Some(entry) = next.entries.get_mut(id) else {
                continue;
            };
            if entry.events <= gone.events {
                next.entries.remove(id);
                continue;
            }
            entry.events -= gone.events;
            for (name, count) in &gone.names {
                if let Some(kept) = entry.names.get_mut(name) {
                    *kept = kept.saturating_sub(*count);
                }
            }
            entry.names.retain(|_, count| *count > 0);
            entry.first = entry.first.max(gone.last);
        }
        for key in &shown.added_by {
            if !next.added_by.contains(key) {
                next.added_by.push(key.clone());
            }
        }
        next.due_at = next.entries.values().map(|e| e.due_at).min();
        next.posting_until = None;
        next
    }

    /// The entries worst first, then by when they were first held.
    pub fn listed(&self) -> Vec<HeldEntry> {
        let mut entries: Vec<HeldEntry> = self.entries.values().cloned().collect();
        entries.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.first.cmp(&b.first))
                .then(a.rule.cmp(&b.rule))
                .then(a.subject.cmp(&b.subject))
        });
        entries
    }
}

impl HeldEntry {
    /// Keep the [`NAMES_KEPT`] most frequent names (ties: alphabetical).
    fn keep_names(&mut self) {
        if self.names.len() <= NAMES_KEPT {
            return;
        }
        let mut ranked: Vec<(String, u64)> = std::mem::take(&mut self.names).into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(NAMES_KEPT);
        self.names = ranked.into_iter().collect();
    }

    /// The names, most frequent first.
    pub fn top_names(&self) -> Vec<(&str, u64)> {
        let mut ranked: Vec<(&str, u64)> =
            self.names.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::{PrincipalKind, Tool};
    use crate::testing::{actor, batch_event, event, rule};

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(minute)
    }

    fn named(id: &str, minute: i64, name: &str) -> BatchEvent {
        let rl = rule("root-usage", "Root used", None, Severity::Red);
        let performer = actor("root", PrincipalKind::Root, Tool::Console);
        let mut e = batch_event(event(id, 0, "us-east-1", name, &[]), &rl, &performer);
        e.event.time = at(minute);
        e.incident = Some("inc-1".to_owned());
        e
    }

    fn events(n: usize, minute: i64) -> Vec<BatchEvent> {
        (0..n)
            .map(|i| named(&format!("e{minute}-{i}"), minute, "DescribeInstances"))
            .collect()
    }

    fn hold(held: &mut Held, key: &str, events: &[BatchEvent]) -> bool {
        held.hold(key, &[(events, None)], Lang::En, |_| TimeDelta::minutes(60))
    }

    #[test]
    fn a_delivery_is_held_once_and_its_events_counted() {
        let mut held = Held::empty(AccountId::new("111111111111"));
        assert!(hold(&mut held, "a/1", &events(3, 10)));
        assert!(!hold(&mut held, "a/1", &events(3, 10)));
        assert!(hold(&mut held, "a/2", &events(2, 20)));
        assert_eq!(held.events(), 5);
        assert_eq!(held.entries.len(), 1);
        assert_eq!(held.due_at, Some(at(80)), "due when the incident would end");
        let entry = &held.entries["inc-1"];
        assert_eq!((entry.first, entry.last), (at(10), at(20)));
        assert_eq!(entry.title, "Root used");
    }

    #[test]
    fn what_went_out_is_taken_off_and_what_came_after_stays() {
        let mut held = Held::empty(AccountId::new("111111111111"));
        hold(&mut held, "k1", &events(3, 10));
        let shown = held.clone();
        hold(&mut held, "k2", &events(2, 20));
        let left = held.without(&shown);
        assert_eq!(left.events(), 2);
        assert_eq!(left.due_at, Some(at(80)));
        assert!(left.added_by.contains(&"k1".to_owned()));
        assert!(held.without(&held).is_empty());
        assert_eq!(held.without(&held).due_at, None);
    }

    #[test]
    fn names_are_bounded_and_ranked() {
        let mut held = Held::empty(AccountId::new("111111111111"));
        let many: Vec<BatchEvent> = (0..20)
            .map(|i| named(&format!("n{i}"), 1, &format!("Name{:02}", i % 12)))
            .collect();
        hold(&mut held, "k", &many);
        let entry = &held.entries["inc-1"];
        assert_eq!(entry.events, 20);
        assert_eq!(entry.names.len(), NAMES_KEPT);
        assert_eq!(entry.top_names()[0], ("Name00", 2));
    }

    #[test]
    fn a_batch_of_many_replies_is_held_once() {
        let mut held = Held::empty(AccountId::new("111111111111"));
        let parts: Vec<Vec<BatchEvent>> = (0..100)
            .map(|i| {
                let mut e = named(&format!("p{i}"), 10, "PutObject");
                e.incident = Some(format!("inc-{i}"));
                vec![e]
            })
            .collect();
        let replies: Vec<(&[BatchEvent], Option<DateTime<Utc>>)> =
            parts.iter().map(|p| (p.as_slice(), None)).collect();
        let hold_batch =
            |held: &mut Held| held.hold("acct/0310/0", &replies, Lang::En, |_| TimeDelta::hours(1));
        assert!(hold_batch(&mut held));
        assert!(
            !hold_batch(&mut held),
            "a retried batch holds nothing twice"
        );
        assert_eq!((held.entries.len(), held.events()), (100, 100));
        assert_eq!(held.added_by.len(), 1);
    }

    #[test]
    fn the_posting_lease_runs_until_what_was_listed_is_cleared() {
        let mut held = Held::empty(AccountId::new("111111111111"));
        hold(&mut held, "k1", &events(2, 10));
        held.posting_until = Some(at(30));
        assert!(held.is_being_posted(at(29)));
        assert!(!held.is_being_posted(at(30)), "a lease that ended");
        let cleared = held.without(&held);
        assert_eq!(cleared.posting_until, None);
    }
}
