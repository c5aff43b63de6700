//! The same messages as plain terminal text: for the CLI and for reading test output.

use std::fmt::Write as _;

use super::mrkdwn::{self, Span};
use super::slack::{Block, SlackMessage, Text, render_batch};
use crate::delivery::Delivery;
use crate::severity::Severity;

const INDENT: &str = "    ";
const RULE: &str = "────────────────────────────────────────";

/// Plain text of the Slack messages of `deliveries`, headed by each one's severity;
/// continuations are indented under their parent.
pub fn text(deliveries: &[Delivery]) -> String {
    let mut out = String::new();
    for delivery in deliveries {
        for message in render_batch(delivery) {
            write_message(&mut out, &message, delivery.severity);
        }
    }
    out
}

fn write_message(out: &mut String, m: &SlackMessage, severity: Severity) {
    let indent = if m.is_reply() { INDENT } else { "" };
    let mut lines = vec![header(m, severity)];
    for att in &m.payload.attachments {
        for block in &att.blocks {
            block_lines(block, &mut lines);
        }
    }
    for line in lines {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{indent}{line}");
        }
    }
    out.push('\n');
}

fn header(m: &SlackMessage, severity: Severity) -> String {
    format!(
        "══ [{}] {} · part {}/{} ══",
        severity.as_str().to_uppercase(),
        m.batch_key,
        m.part + 1,
        m.parts
    )
}

fn block_lines(block: &Block, lines: &mut Vec<String>) {
    match block {
        Block::Section { text, fields } => {
            if let Some(text) = text {
                lines.extend(text_plain(text).lines().map(str::to_owned));
            }
            for f in fields.iter().flatten() {
                // "*Label*\nvalue" reads as "Label: value".
                lines.push(text_plain(f).replacen('\n', ": ", 1).replace('\n', " "));
            }
        }
        Block::Context { elements } => {
            let parts: Vec<String> = elements.iter().map(text_plain).collect();
            lines.push(parts.join(" "));
        }
        Block::Actions { elements } => {
            for b in elements {
                lines.push(format!("[{}] {}", text_plain(&b.text), b.url));
            }
        }
        Block::Divider => lines.push(RULE.to_owned()),
    }
}

fn text_plain(text: &Text) -> String {
    match text {
        Text::Mrkdwn { text, .. } => spans_plain(&mrkdwn::parse(text)),
        Text::PlainText { text, .. } => text.clone(),
    }
}

/// Bold and code lose their markers; terminal control characters never reach the output
/// (the Slack renderer already dropped them from event text).
fn spans_plain(spans: &[Span]) -> String {
    let mut out = String::new();
    for span in spans {
        match span {
            Span::Text(t) => out.push_str(&mrkdwn::emoji(t)),
            Span::Bold(inner) => out.push_str(&spans_plain(inner)),
            Span::Code(c) => out.push_str(c),
            Span::Break => out.push('\n'),
        }
    }
    out.retain(|c| c == '\n' || !c.is_control());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::{PrincipalKind, Tool};
    use crate::summary::{Lang, Locale};
    use crate::testing::{actor, batch, batch_event, delivery, event, rule, small_batch, summary};
    use crate::window::BatchKind;

    #[test]
    fn reads_like_the_message() {
        let out = text(&[delivery(
            small_batch(),
            summary("3 changes", Severity::Green),
        )]);
        assert!(
            out.starts_with("══ [YELLOW] 111111111111/20240101T0000Z/0 · part 1/1 ══\n"),
            "{out}"
        );
        for expected in [
            "🟡 3 changes\n",
            "Time: 2024-01-01 00:00–00:05 UTC\n",
            "Account: 111111111111 (A계정)\n",
            "alice@example.com via console\n",
            "▸ IAM user changed\n",
            "• 00:00:05 CreateUser → bob\n",
            "• 00:03:20 DeleteBucket → logs-bucket · ❌ denied AccessDenied\n",
            "[CloudTrail us-east-1] https://us-east-1.console.aws.amazon.com/",
            RULE,
        ] {
            assert!(out.contains(expected), "missing {expected:?} in\n{out}");
        }
        assert!(!out.contains('{'), "no JSON");
        assert!(!out.contains('*'), "no mrkdwn markers");
        assert!(!out.contains('`'));
        assert!(!out.contains("&amp;") && !out.contains("&lt;"));
    }

    #[test]
    fn continuations_are_indented_and_hostile_text_is_shown_literally() {
        let rl = rule("r", "t", None, Severity::Green);
        let who = actor(
            "<!channel> & \u{1b}[31mred",
            PrincipalKind::Person,
            Tool::Cli,
        );
        // Two performers, so the tree heads each one's lines with its name.
        let other = actor("b", PrincipalKind::Person, Tool::Cli);
        let events = (0..6000)
            .map(|i| {
                let name = format!("E{i}");
                batch_event(
                    event("e", 0, "us-east-1", &name, &["some-resource-name"]),
                    &rl,
                    if i == 0 { &other } else { &who },
                )
            })
            .collect();
        let ko = Delivery::new(
            batch(BatchKind::Window, None, events),
            summary("h", Severity::Green),
            Locale {
                lang: Lang::Ko,
                tz: chrono_tz::Tz::Asia__Seoul,
            },
        );
        assert!(render_batch(&ko).len() > 1);
        let out = text(&[ko]);
        assert!(out.contains("\n    ══ [GREEN] 111111111111/20240101T0000Z/0 · part 2/"));
        assert!(out.contains("    🟢 (계속 2/"));
        assert!(out.contains("<!channel> & [31mred (CLI 사용)"), "{out}");
        assert!(!out.contains('\u{1b}'));
        assert_eq!(out.matches("• 09:00:00 ").count(), 6000);
    }
}
