use chrono_tz::Tz;

use super::*;
use crate::enrich::{PrincipalKind, Tool};
use crate::event::Resource;
use crate::summary::Lang;
use crate::testing::{actor, batch, batch_event, event, rendered, rule, small_batch, summary};

pub(crate) const HOSTILE: &str = "<!channel> <@U123> <https://evil|click> & *bold* `x` _i_";

fn en() -> Locale {
    Locale {
        lang: Lang::En,
        tz: Tz::UTC,
    }
}

fn ko() -> Locale {
    Locale {
        lang: Lang::Ko,
        tz: Tz::Asia__Seoul,
    }
}

fn all_blocks(messages: &[SlackMessage]) -> impl Iterator<Item = &Block> {
    messages
        .iter()
        .flat_map(|m| m.payload.attachments.iter().flat_map(|a| &a.blocks))
}

fn all_texts(messages: &[SlackMessage]) -> Vec<&str> {
    all_blocks(messages).flat_map(Block::texts).collect()
}

/// Asserts Slack's limits on every message.
fn assert_within_limits(messages: &[SlackMessage]) {
    for m in messages {
        let blocks: usize = m.payload.attachments.iter().map(|a| a.blocks.len()).sum();
        assert!(blocks <= MAX_BLOCKS, "part {} has {blocks} blocks", m.part);
        for block in m.payload.attachments.iter().flat_map(|a| &a.blocks) {
            if let Block::Section {
                fields: Some(fields),
                ..
            } = block
            {
                assert!(fields.len() <= 10);
                for f in fields {
                    assert!(f.as_str().chars().count() <= MAX_FIELD);
                }
            }
            for t in block.texts() {
                assert!(t.chars().count() <= MAX_TEXT, "{} chars", t.chars().count());
            }
        }
    }
}

/// Event lines of the tree (UTC tests: every event is in the 00:00–00:05 window).
fn tree_lines(texts: &str) -> usize {
    texts.lines().filter(|l| l.starts_with("• 00:0")).count()
}

/// Snapshots live in `src/render/snapshots/`, beside the other render modules.
fn assert_snapshot(name: &str, messages: &[SlackMessage]) {
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_json_snapshot!(name, messages);
    });
}

#[test]
fn snapshot_en_utc() {
    let messages = rendered(
        &small_batch(),
        &summary("3 changes in A계정", Severity::Green),
        en(),
    );
    assert_snapshot("slack_en_utc", &messages);
}

#[test]
fn snapshot_ko_seoul() {
    let mut s = summary("A계정에서 3건 변경", Severity::Green);
    s.body = "IAM 변경 2건, 버킷 삭제 실패 1건.".to_owned();
    s.notes = vec!["alice가 bob 사용자를 만들었습니다.".to_owned()];
    s.severity_reason = "IAM 사용자 생성".to_owned();
    let messages = rendered(&small_batch(), &s, ko());
    assert_snapshot("slack_ko_seoul", &messages);
}

#[test]
fn korean_time_is_in_kst() {
    let messages = rendered(&small_batch(), &summary("h", Severity::Green), ko());
    let texts = all_texts(&messages).join("\n");
    assert!(texts.contains("2024-01-01 09:00–09:05 KST"), "{texts}");
    assert!(texts.contains("• 09:00:05 `CreateUser` → `bob`"), "{texts}");
    assert!(
        !texts.contains("*수행자*"),
        "no performer field: the headline says who"
    );
}

#[test]
fn colour_is_the_worse_of_rules_and_summary() {
    let b = small_batch();
    let colour = |s| {
        rendered(&b, &summary("h", s), en())[0].payload.attachments[0]
            .color
            .clone()
    };
    // Rules say yellow: the model cannot lower it, but can raise it.
    assert_eq!(colour(Severity::Green), Severity::Yellow.colour());
    assert_eq!(colour(Severity::Red), Severity::Red.colour());
}

#[test]
fn late_and_immediate_batches_are_labelled() {
    let mut b = small_batch();
    b.kind = BatchKind::Late;
    let m = rendered(&b, &summary("h", Severity::Green), en());
    assert!(all_texts(&m)[0].contains("late follow-up"));
    assert!(
        m[0].payload.attachments[0]
            .fallback
            .starts_with("[late follow-up]")
    );
    let m = rendered(&b, &summary("h", Severity::Green), ko());
    assert!(all_texts(&m)[0].contains("지연 도착"));

    b.kind = BatchKind::Immediate;
    b.events.truncate(1);
    let m = rendered(&b, &summary("h", Severity::Green), ko());
    let texts = all_texts(&m).join("\n");
    assert!(texts.contains("즉시 알림"));
    // An immediate alert shows the event time, not the window.
    assert!(texts.contains("2024-01-01 09:00:05 KST"), "{texts}");
}

#[test]
fn failures_and_alerted_events_are_marked() {
    let m = rendered(&small_batch(), &summary("h", Severity::Green), en());
    let texts = all_texts(&m).join("\n");
    assert!(
        texts.contains("`DeleteBucket` → `logs-bucket` · :x: denied `AccessDenied`"),
        "{texts}"
    );
    assert!(
        texts
            .contains("`AttachUserPolicy` → `bob`, `AdministratorAccess` :bell: (already alerted)")
    );
}

#[test]
fn one_button_per_valid_region_at_most_five() {
    let rl = rule("r", "t", None, Severity::Green);
    let who = actor("a", PrincipalKind::Person, Tool::Cli);
    let regions = [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-west-2",
        "ap-northeast-2",
        "evil.com/#",
    ];
    let events = regions
        .iter()
        .enumerate()
        .map(|(i, region)| batch_event(event(&format!("e{i}"), 0, region, "X", &[]), &rl, &who))
        .collect();
    let m = rendered(
        &batch(BatchKind::Window, None, events),
        &summary("h", Severity::Green),
        en(),
    );
    let blocks: Vec<&Block> = all_blocks(&m).collect();
    let buttons: Vec<&Button> = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Actions { elements } => Some(elements),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(buttons.len(), MAX_BUTTONS);
    assert!(
        buttons
            .iter()
            .all(|b| b.url.starts_with("https://") && !b.url.contains("evil"))
    );
    assert_eq!(
        buttons[0].url,
        "https://ap-northeast-2.console.aws.amazon.com/cloudtrail/home?region=ap-northeast-2\
         #/events?StartTime=2024-01-01T00:00:00.000Z&EndTime=2024-01-01T00:05:00.000Z"
    );
    let others = all_texts(&m)
        .into_iter()
        .find(|t| t.starts_with("Other regions"))
        .unwrap_or_default();
    // Sorted regions: the invalid one and the two valid ones beyond five are listed as text.
    assert_eq!(others, "Other regions: evil.com/#, us-west-1, us-west-2");
}

/// A batch of `n` events by 7 actors with a few resources each; event `i` is named `Ev{i:05}`.
fn big_batch(n: usize) -> Batch {
    let rl = rule(
        "r",
        "Instance changed",
        Some("인스턴스 변경"),
        Severity::Green,
    );
    let actors: Vec<Performer> = (0..7)
        .map(|i| {
            actor(
                &format!("role-{i}"),
                PrincipalKind::Workload,
                Tool::Terraform,
            )
        })
        .collect();
    let events = (0..n)
        .map(|i| {
            let secs = i64::try_from(i % 300).unwrap_or(0);
            let mut e = event(
                &format!("id{i}"),
                secs,
                "us-east-1",
                &format!("Ev{i:05}"),
                &[
                    "i-0123456789abcdef0",
                    "sg-0123456789abcdef0",
                    "arn:aws:iam::111111111111:role/some-long-role-name",
                ],
            );
            if i % 10 == 0 {
                e.error_code = Some("UnauthorizedOperation".into());
            }
            batch_event(e, &rl, &actors[i % actors.len()])
        })
        .collect();
    batch(BatchKind::Window, Some("big"), events)
}

#[test]
fn a_large_batch_splits_within_limits_and_keeps_every_event_once() {
    let n = 2000;
    let messages = rendered(&big_batch(n), &summary("h", Severity::Green), en());
    assert!(messages.len() >= 2, "{} messages", messages.len());
    assert_within_limits(&messages);

    let parts = messages.len();
    for (i, m) in messages.iter().enumerate() {
        assert_eq!((m.part, m.parts), (i, parts));
        assert_eq!(m.is_continuation(), i > 0);
        assert_eq!(m.payload.metadata.event_payload.part, i);
        assert_eq!(m.payload.metadata.event_payload.batch_id, m.batch_key);
        if i > 0 {
            let head = m.payload.attachments[0].blocks[0].texts()[0];
            assert!(
                head.contains(&format!("(continued {}/{parts})", i + 1)),
                "{head}"
            );
            assert!(
                m.payload.attachments[0]
                    .fallback
                    .starts_with(&format!("(continued {}/{parts})", i + 1))
            );
        }
    }
    // An actor header is always followed by an event line in the same block.
    for t in all_texts(&messages) {
        if let Some(last) = t.lines().last() {
            assert!(!last.starts_with("*role-"), "dangling header: {last}");
        }
    }
    let texts = all_texts(&messages).join("\n");
    for i in 0..n {
        assert_eq!(
            texts.matches(&format!("`Ev{i:05}`")).count(),
            1,
            "event {i}"
        );
    }
    // Every event line is an event: no line was added or lost.
    assert_eq!(tree_lines(&texts), n);
}

#[test]
fn oversized_fields_are_bounded_per_line_and_still_shown() {
    let rl = rule("r", &"T&".repeat(2000), None, Severity::Red);
    let who = actor(&"<".repeat(5000), PrincipalKind::Root, Tool::Unknown);
    let resources: Vec<String> = (0..100)
        .map(|i| format!("{i}{}", "&".repeat(1000)))
        .collect();
    let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
    let mut e = event("e", 0, &">".repeat(500), &"&".repeat(10_000), &resources);
    e.error_code = Some("<".repeat(3000).into());
    let events = vec![batch_event(e.clone(), &rl, &who), batch_event(e, &rl, &who)];
    let mut s = summary(&"*".repeat(10_000), Severity::Green);
    s.body = "&".repeat(10_000);
    s.notes = vec!["<".repeat(1000); 100];
    s.severity_reason = ">".repeat(5000);
    // Not the offline templates: the tree is shown even for one line.
    s.source = SummarySource::Fallback {
        reason: "<".repeat(3000),
    };
    let b = batch(BatchKind::Window, Some(&"&".repeat(5000)), events);
    let messages = rendered(&b, &s, en());
    assert_within_limits(&messages);
    let texts = all_texts(&messages).join("\n");
    // Two calls of one API with one outcome: one line, counted.
    assert_eq!(tree_lines(&texts), 1);
    assert!(texts.contains(" ×2"), "{texts}");
    assert!(
        texts.contains(" more"),
        "cut resources are counted, not dropped silently"
    );
}

#[test]
fn hostile_text_in_every_field_renders_inert() {
    let rl = rule("r", HOSTILE, Some(HOSTILE), Severity::Red);
    let who = actor(HOSTILE, PrincipalKind::Person, Tool::Console);
    let mut e = event(HOSTILE, 0, HOSTILE, HOSTILE, &[HOSTILE, HOSTILE]);
    e.error_code = Some(HOSTILE.into());
    e.error_message = Some(HOSTILE.into());
    e.user_agent = Some(HOSTILE.into());
    e.source_ip = Some(HOSTILE.into());
    e.source = HOSTILE.into();
    e.resources.push(Resource {
        kind: HOSTILE.into(),
        name: HOSTILE.into(),
    });
    let b = batch(
        BatchKind::Late,
        Some(HOSTILE),
        vec![batch_event(e, &rl, &who)],
    );
    let mut s = summary(HOSTILE, Severity::Green);
    s.body = HOSTILE.to_owned();
    s.notes = vec![HOSTILE.to_owned()];
    s.severity_reason = HOSTILE.to_owned();

    for locale in [en(), ko()] {
        let messages = rendered(&b, &s, locale);
        let json = serde_json::to_string(&messages).unwrap_or_default();
        assert!(!json.is_empty());
        // We never write Slack's `<...>` syntax ourselves, so no `<` or `>` may appear at all.
        assert!(!json.contains(['<', '>']), "{json}");
        assert!(!json.contains("*bold*"));
        assert!(json.contains("&lt;!channel&gt;"));
        assert!(json.contains("&lt;@U123&gt;"));
        assert!(json.contains("&lt;https://evil|click&gt;"));
        for t in all_texts(&messages)
            .iter()
            .chain([&messages[0].payload.attachments[0].fallback.as_str()])
        {
            for (i, _) in t.match_indices('&') {
                let rest = &t[i..];
                assert!(
                    rest.starts_with("&amp;")
                        || rest.starts_with("&lt;")
                        || rest.starts_with("&gt;"),
                    "bare & in {t}"
                );
            }
        }
        // Every mrkdwn object is verbatim: Slack must not auto-link event text.
        let verbatim = serde_json::to_value(&messages)
            .unwrap_or_default()
            .to_string();
        assert!(!verbatim.contains("\"verbatim\":false"));
    }
}

#[test]
fn empty_batch_still_renders_one_message() {
    let b = batch(BatchKind::Window, None, Vec::new());
    let m = rendered(&b, &summary("", Severity::Green), en());
    assert_eq!(m.len(), 1);
    assert!(all_texts(&m).contains(&"(no events)"));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Event names carry a marker that ASCII input cannot produce, so coverage can be counted.
    fn name(i: usize) -> String {
        format!("Ev\u{263A}{i:05}")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn any_batch_stays_within_limits_and_shows_every_event_once(
            texts in prop::collection::vec("[ -~\n]{0,60}", 1..400),
            actors in 1usize..20,
        ) {
            let rl = rule("r", "t", None, Severity::Green);
            let events: Vec<BatchEvent> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let who = actor(&format!("{t}{}", i % actors), PrincipalKind::Person, Tool::Cli);
                    let mut e = event("e", 0, t, &name(i), &[t, t, t]);
                    if i % 3 == 0 {
                        e.error_code = Some(t.clone().into());
                    }
                    batch_event(e, &rl, &who)
                })
                .collect();
            let b = batch(BatchKind::Window, Some(&texts[0]), events);
            let messages = rendered(&b, &summary(&texts[0], Severity::Green), en());
            assert_within_limits(&messages);
            let all = all_texts(&messages).join("\n");
            prop_assert!(!all.contains(['<', '>']));
            for i in 0..texts.len() {
                prop_assert_eq!(all.matches(&format!("`{}`", name(i))).count(), 1);
            }
        }
    }
}
