//! Window invariants under any order, duplication, split and failed sends.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use trailwatch::Severity;
use trailwatch::enrich::{Origin, Performer, Principal, PrincipalKind, Tool};
use trailwatch::event::{AccountId, Event, EventId, EventKind, Identity};
use trailwatch::rules::{Rule, Titles};
use trailwatch::window::{Added, BatchEvent, BatchKind, WindowBook, WindowConfig};

fn base() -> DateTime<Utc> {
    DateTime::from_timestamp(1_793_588_400, 0).unwrap_or_default()
}

fn event(id: u32, account: u8, offset_secs: i64) -> BatchEvent {
    BatchEvent {
        event: Event {
            id: EventId::new(format!("e-{id}")),
            account: AccountId::new(format!("{account:012}")),
            time: base() + TimeDelta::seconds(offset_secs),
            region: "us-east-1".into(),
            kind: EventKind::ApiCall,
            source: "iam.amazonaws.com".into(),
            name: "CreateUser".into(),
            identity: Identity::default(),
            user_agent: None,
            source_ip: None,
            error_code: None,
            error_message: None,
            read_only: Some(false),
            mfa_used: None,
            login_result: None,
            state: None,
            resources: Vec::new(),
            resources_more: 0,
            oddities: Vec::new(),
        },
        rule: Arc::new(Rule {
            id: "test".into(),
            titles: Titles::new("test"),
            severity: Severity::Yellow,
            immediate: false,
            tags: Vec::new(),
            dedup_period_secs: None,
            dedup_by: Vec::new(),
            threshold: None,
        }),
        actor: Performer {
            principal: Principal {
                kind: PrincipalKind::Person,
                name: "someone".into(),
                origin: Origin::IamUser,
            },
            tool: Tool::Cli,
            ci: None,
        },
        already_alerted: false,

        placed: false,
        incident: None,
        counted: Vec::new(),
        fallback: None,
    }
}

struct Sent {
    kind: BatchKind,
    account: AccountId,
    start: DateTime<Utc>,
    ids: Vec<String>,
}

/// Drive the book like replay does: the clock follows event time; before each event, what
/// is due is flushed; `fail` decides which claims fail to send (and are released).
fn drive(
    config: WindowConfig,
    input: &[(u32, u8, i64)],
    chunks: &[usize],
    fail: &mut dyn FnMut() -> bool,
) -> (Vec<Sent>, HashMap<String, bool>) {
    let mut book = WindowBook::new(config);
    let mut now = DateTime::<Utc>::MIN_UTC;
    let mut sent = Vec::new();
    let mut late_at_add = HashMap::new();
    let mut flush = |book: &mut WindowBook, now: DateTime<Utc>, sent: &mut Vec<Sent>| {
        for id in book.due(now) {
            let Some(claimed) = book.claim(&id) else {
                continue;
            };
            if fail() {
                book.release(&id, now + config.grace);
                continue;
            }
            assert!(book.mark_sent(&id));
            sent.push(Sent {
                kind: claimed.kind,
                account: id.account.clone(),
                start: id.window_start,
                ids: claimed
                    .events
                    .iter()
                    .map(|e| e.event.id.to_string())
                    .collect(),
            });
        }
    };
    let mut rest = input;
    for &size in chunks.iter().chain(std::iter::once(&usize::MAX)) {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        for &(id, account, offset) in chunk {
            let ev = event(id, account, offset);
            now = now.max(ev.event.time);
            flush(&mut book, now, &mut sent);
            if let Added::New { late, .. } = book.add(ev, now) {
                late_at_add.insert(format!("e-{id}"), late);
            }
        }
        // Between chunks (separate invocations), a tick may flush what is due.
        flush(&mut book, now, &mut sent);
    }
    // Finally everything goes out (released batches are retried).
    let end = DateTime::<Utc>::MAX_UTC;
    while book.unsent() > 0 {
        for id in book.due(end) {
            if let Some(claimed) = book.claim(&id) {
                assert!(book.mark_sent(&id));
                sent.push(Sent {
                    kind: claimed.kind,
                    account: id.account.clone(),
                    start: id.window_start,
                    ids: claimed
                        .events
                        .iter()
                        .map(|e| e.event.id.to_string())
                        .collect(),
                });
            }
        }
    }
    (sent, late_at_add)
}

/// (event id, account, seconds after base) in input order; chunk sizes; which sends fail.
type Input = (Vec<(u32, u8, i64)>, Vec<usize>, Vec<bool>);

fn input_strategy() -> impl Strategy<Value = Input> {
    (
        prop::collection::vec((0u32..40, 0u8..3, 0i64..2400), 1..80),
        prop::collection::vec(1usize..20, 0..5),
        prop::collection::vec(any::<bool>(), 0..64),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_event_lands_in_exactly_one_batch((input, chunks, failures) in input_strategy()) {
        let config = WindowConfig::default();
        let mut failures = failures.into_iter();
        let mut fail = move || failures.next().unwrap_or(false);
        let (sent, late_at_add) = drive(config, &input, &chunks, &mut fail);

        // The first occurrence of each id is the one kept (exact dedupe).
        let mut first: BTreeMap<String, (u8, i64)> = BTreeMap::new();
        for &(id, account, offset) in &input {
            first.entry(format!("e-{id}")).or_insert((account, offset));
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for batch in &sent {
            prop_assert!(!batch.ids.is_empty());
            for id in &batch.ids {
                *seen.entry(id.clone()).or_default() += 1;
                let (account, offset) = first[id];
                let time = base() + TimeDelta::seconds(offset);
                // Window bounds: the event is inside its batch's window, of its account.
                prop_assert_eq!(&batch.account, &AccountId::new(format!("{account:012}")));
                prop_assert!(batch.start <= time && time < batch.start + config.width);
                // Late labelling: in a late batch exactly when its window had gone out.
                prop_assert_eq!(batch.kind == BatchKind::Late, late_at_add[id]);
            }
        }
        prop_assert_eq!(seen.len(), first.len());
        prop_assert!(seen.values().all(|n| *n == 1), "an event was sent twice: {:?}", seen);
        // At most one digest per window.
        let mut digests: HashMap<(AccountId, DateTime<Utc>), usize> = HashMap::new();
        for batch in sent.iter().filter(|b| b.kind == BatchKind::Window) {
            *digests.entry((batch.account.clone(), batch.start)).or_default() += 1;
        }
        prop_assert!(digests.values().all(|n| *n == 1));
    }

    #[test]
    fn order_does_not_change_what_is_sent_when_nothing_is_late(
        (input, _, _) in input_strategy(), seed in any::<u64>()
    ) {
        // Without flushing in between (one chunk, no clock movement past due), any order
        // gives the same batches.
        let config = WindowConfig { width: TimeDelta::minutes(5), grace: TimeDelta::days(1) };
        // Duplicated ids keep their first occurrence, which differs between orders: keep one
        // occurrence of each id, then shuffle.
        let mut unique = std::collections::HashSet::new();
        let input: Vec<_> = input.into_iter().filter(|e| unique.insert(e.0)).collect();
        let mut shuffled = input.clone();
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            #[allow(clippy::cast_possible_truncation)]
            let j = (state >> 33) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let norm = |sent: Vec<Sent>| {
            let mut out: Vec<(AccountId, DateTime<Utc>, Vec<String>)> = sent
                .into_iter()
                .map(|b| { let mut ids = b.ids; ids.sort(); (b.account, b.start, ids) })
                .collect();
            out.sort();
            out
        };
        let (a, _) = drive(config, &input, &[], &mut || false);
        let (b, _) = drive(config, &shuffled, &[], &mut || false);
        prop_assert_eq!(norm(a), norm(b));
    }
}

#[test]
fn late_event_goes_to_a_labelled_follow_up() {
    let config = WindowConfig::default();
    let input = [(1, 0, 60), (2, 0, 1800), (3, 0, 120), (4, 0, 1900)];
    let (sent, _) = drive(config, &input, &[], &mut || false);
    let kinds: Vec<(BatchKind, Vec<String>)> = sent.into_iter().map(|b| (b.kind, b.ids)).collect();
    assert_eq!(
        kinds,
        vec![
            (BatchKind::Window, vec!["e-1".to_owned()]),
            (BatchKind::Late, vec!["e-3".to_owned()]),
            (BatchKind::Window, vec!["e-2".to_owned(), "e-4".to_owned()]),
        ]
    );
}

/// With a lease, a claim that is never sent nor released (the flusher crashed) makes the
/// batch due again when the lease ends; the takeover carries what was added meanwhile, and
/// nothing can take it before then.
#[test]
fn an_expired_lease_makes_the_batch_due_again() {
    let config = WindowConfig::default();
    let mut book = WindowBook::with_lease(config, TimeDelta::minutes(5));
    let now = base() + TimeDelta::minutes(10);
    book.add(event(1, 1, 10), base());
    let id = book.due(now).remove(0);
    assert!(book.claim_at(&id, now).is_some());
    assert!(book.due(now).is_empty());
    assert!(book.claim_at(&id, now + TimeDelta::minutes(4)).is_none());
    assert_eq!(
        book.add(event(2, 1, 20), now),
        Added::New {
            batch: trailwatch::window::BatchId {
                seq: 1,
                ..id.clone()
            },
            late: true
        }
    );
    let later = now + TimeDelta::minutes(5);
    assert_eq!(book.due(later), vec![id.clone()]);
    let taken = book.claim_at(&id, later).map(|c| c.events.len());
    assert_eq!(taken, Some(2));
    assert!(book.mark_sent(&id));
    assert_eq!(book.unsent(), 0);
    // Without a lease, a claim holds until sent or released.
    let mut book = WindowBook::new(config);
    book.add(event(3, 1, 10), base());
    let id = book.due(now).remove(0);
    assert!(book.claim_at(&id, now).is_some());
    assert!(book.due(DateTime::<Utc>::MAX_UTC).is_empty());
    assert!(book.claim_at(&id, DateTime::<Utc>::MAX_UTC).is_none());
}
