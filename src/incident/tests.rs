use super::*;
use crate::enrich::Tool;
use crate::severity::Severity;
use crate::testing::{actor, batch_event, event, rule};

fn ev(id: &str, minutes: i64, who: &str) -> BatchEvent {
    let rl = rule("root-usage", "Root used", None, Severity::Red);
    let performer = actor(who, PrincipalKind::Person, Tool::Console);
    batch_event(
        event(id, minutes * 60, "us-east-1", "DescribeInstances", &[]),
        &rl,
        &performer,
    )
}

fn known(incidents: &[Incident]) -> BTreeMap<IncidentKey, Incident> {
    incidents
        .iter()
        .map(|i| (i.key.clone(), i.clone()))
        .collect()
}

fn posted(mut incident: Incident) -> Incident {
    incident.posted = true;
    incident
}

#[test]
fn first_events_open_an_incident_in_the_digest() {
    let policy = IncidentPolicy::default();
    let plan = plan(
        vec![ev("a", 0, "alice"), ev("b", 1, "alice"), ev("c", 2, "bob")],
        &BTreeMap::new(),
        "d0",
        &policy,
    );
    assert_eq!(plan.digest.len(), 3);
    assert_eq!(plan.opened.len(), 2, "one incident per performer");
    assert!(plan.replies.is_empty() && plan.reminders.is_empty() && !plan.waiting);
    let alice = &plan.opened[0];
    assert_eq!(alice.events, 2);
    assert_eq!(alice.parent.batch_key, "d0");
    assert_eq!(
        alice.next_reminder,
        alice.opened_at + TimeDelta::minutes(60)
    );
    assert!(plan.digest.iter().all(|e| e.incident.is_some()));
}

#[test]
fn later_events_reply_then_remind_at_doubling_intervals() {
    let policy = IncidentPolicy::default();
    let first = plan(vec![ev("a", 0, "alice")], &BTreeMap::new(), "d0", &policy);
    let mut state = posted(first.opened[0].clone());

    // Ten minutes later: a reply, no top-level post.
    let next = plan(
        vec![ev("b", 10, "alice")],
        &known(&[state.clone()]),
        "d1",
        &policy,
    );
    assert!(next.digest.is_empty() && next.opened.is_empty());
    assert_eq!(next.replies.len(), 1);
    state = next.replies[0].incident.clone();
    assert_eq!(state.events, 2);

    // Every five minutes for a day: reminders at 60 min, then 2 h, 4 h, 8 h, 16 h after each.
    let mut reminders = Vec::new();
    for minute in (15..24 * 60).step_by(5) {
        let p = plan(
            vec![ev(&format!("e{minute}"), minute, "alice")],
            &known(&[state.clone()]),
            &format!("d{minute}"),
            &policy,
        );
        assert!(p.digest.is_empty(), "minute {minute}");
        if let Some(r) = p.reminders.first() {
            reminders.push(minute);
            state = r.incident.clone();
        } else {
            state = p.replies[0].incident.clone();
        }
    }
    assert_eq!(reminders, [60, 180, 420, 900]);
    assert_eq!(state.events, 2 + (15..24 * 60).step_by(5).count() as u64);
}

#[test]
fn a_quiet_dedup_period_closes_the_incident() {
    let policy = IncidentPolicy::default();
    let first =
        posted(plan(vec![ev("a", 0, "alice")], &BTreeMap::new(), "d0", &policy).opened[0].clone());
    let later = plan(
        vec![ev("b", 61, "alice")],
        &known(std::slice::from_ref(&first)),
        "d1",
        &policy,
    );
    assert_eq!(
        later.opened.len(),
        1,
        "quiet for over an hour: a new incident"
    );
    assert_ne!(later.opened[0].id, first.id);
    assert_eq!(later.digest.len(), 1);
}

#[test]
fn immediate_events_are_left_out_and_unposted_parents_make_the_batch_wait() {
    let policy = IncidentPolicy::default();
    let mut alerted = ev("a", 0, "alice");
    alerted.already_alerted = true;
    let opened =
        plan(vec![ev("x", 0, "alice")], &BTreeMap::new(), "imm", &policy).opened[0].clone();
    let p = plan(
        vec![alerted, ev("b", 1, "alice")],
        &known(std::slice::from_ref(&opened)),
        "d0",
        &policy,
    );
    assert!(p.waiting, "the immediate alert is not out yet");
    let p = plan(
        vec![
            {
                let mut e = ev("a", 0, "alice");
                e.already_alerted = true;
                e
            },
            ev("b", 1, "alice"),
        ],
        &known(&[posted(opened)]),
        "d0",
        &policy,
    );
    assert!(!p.waiting);
    assert_eq!(p.alerted.len(), 1);
    assert!(p.digest.is_empty());
    assert_eq!(p.replies.len(), 1);
}

#[test]
fn keys_and_ids_are_stable() {
    let e = ev("a", 0, "alice");
    let key = IncidentKey::of(&e);
    assert_eq!(key.subject, "alice");
    assert_eq!(key.digest(), IncidentKey::of(&ev("b", 9, "alice")).digest());
    assert_ne!(key.digest(), IncidentKey::of(&ev("b", 9, "bob")).digest());
    assert_eq!(
        key.incident_id(e.event.time),
        format!("111111111111/20240101T000000Z/{}", &key.digest()[..12])
    );
    let workload = actor("deployer/run-17", PrincipalKind::Workload, Tool::Terraform);
    let rl = rule("r", "t", None, Severity::Green);
    let run = batch_event(
        event("w", 0, "us-east-1", "CreateRole", &[]),
        &rl,
        &workload,
    );
    assert_eq!(
        IncidentKey::of(&run).subject,
        "deployer",
        "the role, not the session"
    );
}

#[test]
fn reminder_intervals_double_up_to_a_day() {
    let policy = IncidentPolicy::default();
    let hours: Vec<i64> = (0..8)
        .map(|n| policy.reminder_interval(n).num_minutes())
        .collect();
    assert_eq!(hours, [60, 120, 240, 480, 960, 1440, 1440, 1440]);
}

#[test]
fn past_the_hourly_ceiling_new_incidents_fold_into_one_thread() {
    let mut ceiling = Ceiling::default();
    let t = crate::testing::t0();
    for minute in 0..3 {
        assert_eq!(
            ceiling.place("C1", t + TimeDelta::minutes(minute), 3),
            Placement::Top
        );
        ceiling.posted("C1", t + TimeDelta::minutes(minute));
    }
    assert_eq!(ceiling.place("C2", t, 3), Placement::Top, "per channel");
    assert_eq!(
        ceiling.place("C1", t + TimeDelta::minutes(10), 3),
        Placement::Overflow(3)
    );
    let parent = Parent {
        batch_key: "over".to_owned(),
        posts: Vec::new(),
    };
    ceiling.posted("C1", t + TimeDelta::minutes(10));
    ceiling.overflowed("C1", t + TimeDelta::minutes(10), parent.clone());
    assert_eq!(
        ceiling.place("C1", t + TimeDelta::minutes(20), 3),
        Placement::Folded(parent)
    );
    // An hour after the posts, there is room again.
    assert_eq!(
        ceiling.place("C1", t + TimeDelta::minutes(71), 3),
        Placement::Top
    );
    assert_eq!(ceiling.place("C3", t, 0), Placement::Top, "0: no ceiling");
}

#[test]
fn a_rule_may_key_its_incidents_by_other_fields_and_keep_them_open_shorter() {
    let pack = crate::rules::RulePack::from_toml(
        r#"
[[rule]]
id = "bucket-deleted"
title = "Bucket deleted"
severity = "yellow"
dedup_by = ["name", "resource"]
dedup_period = "10m"
[rule.match]
name = "DeleteBucket"
"#,
    )
    .unwrap_or_else(|err| panic!("{err}"));
    let rl = std::sync::Arc::clone(&pack.rules()[0]);
    assert_eq!(rl.dedup_period(), Some(TimeDelta::minutes(10)));
    let who = actor("alice", PrincipalKind::Person, Tool::Console);
    let bob = actor("bob", PrincipalKind::Person, Tool::Console);
    let a = batch_event(
        event("a", 0, "us-east-1", "DeleteBucket", &["logs"]),
        &rl,
        &who,
    );
    let b = batch_event(
        event("b", 60, "us-east-1", "DeleteBucket", &["logs"]),
        &rl,
        &bob,
    );
    let c = batch_event(
        event("c", 60, "us-east-1", "DeleteBucket", &["other"]),
        &rl,
        &who,
    );
    assert_eq!(IncidentKey::of(&a).subject, "DeleteBucket|logs");
    assert_eq!(
        IncidentKey::of(&a),
        IncidentKey::of(&b),
        "performer not in the key"
    );
    assert_ne!(IncidentKey::of(&a), IncidentKey::of(&c));

    let policy = IncidentPolicy::default();
    let opened = posted(plan(vec![a], &BTreeMap::new(), "d0", &policy).opened[0].clone());
    assert_eq!(
        opened.next_reminder,
        opened.opened_at + TimeDelta::minutes(10)
    );
    let late = batch_event(
        event("d", 11 * 60, "us-east-1", "DeleteBucket", &["logs"]),
        &rl,
        &bob,
    );
    let p = plan(vec![late], &known(&[opened]), "d1", &policy);
    assert_eq!(
        p.opened.len(),
        1,
        "the rule's 10 minutes passed: a new incident"
    );

    let bad = crate::rules::RulePack::from_toml(
        "[[rule]]\nid = \"x\"\ntitle = \"x\"\nseverity = \"red\"\ndedup_period = \"soon\"\n[rule.match]\nname = \"X\"\n",
    );
    let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("[[rule]] x: dedup_period: expected a duration"),
        "{message}"
    );
    // Less than a minute, or more than 30 days, is refused.
    for period in ["0s", "59s", "31d", "100000y", "100000000y"] {
        let text = format!(
            "[[rule]]\nid = \"x\"\ntitle = \"x\"\nseverity = \"red\"\ndedup_period = \"{period}\"\n[rule.match]\nname = \"X\"\n"
        );
        assert!(
            crate::rules::RulePack::from_toml(&text).is_err(),
            "{period} accepted"
        );
    }
}

#[test]
fn a_retried_folded_digest_is_still_its_incidents_opener() {
    let policy = IncidentPolicy::default();
    let mut opened =
        posted(plan(vec![ev("a", 0, "alice")], &BTreeMap::new(), "d0", &policy).opened[0].clone());
    // Folded past the ceiling: its first message is the hour's overflow post.
    opened.parent = Parent {
        batch_key: "overflow".to_owned(),
        posts: Vec::new(),
    };
    let retry = plan(
        vec![ev("a", 0, "alice")],
        &known(std::slice::from_ref(&opened)),
        "d0",
        &policy,
    );
    assert!(
        retry.replies.is_empty(),
        "posted again as a reply: {retry:?}"
    );
    assert_eq!(retry.opened.len(), 1);
    assert_eq!(retry.opened[0].events, 1, "counted once");
}

#[test]
fn racing_continuers_add_their_counts() {
    let policy = IncidentPolicy::default();
    let base =
        posted(plan(vec![ev("a", 0, "alice")], &BTreeMap::new(), "d0", &policy).opened[0].clone());
    let one = plan(
        vec![ev("b", 6, "alice"), ev("c", 7, "alice")],
        &known(std::slice::from_ref(&base)),
        "d1",
        &policy,
    )
    .replies[0]
        .incident
        .clone();
    let other = plan(
        vec![ev("d", 11, "alice")],
        &known(std::slice::from_ref(&base)),
        "d2",
        &policy,
    )
    .replies[0]
        .incident
        .clone();
    // `other` wrote first; `one` merges into what is stored.
    let merged = other.merged(&one);
    assert_eq!(merged.events, 4, "1 + 2 + 1");
    // Merging again (a retry of the same write) adds nothing.
    assert_eq!(merged.merged(&one).events, 4);
}
