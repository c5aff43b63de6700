//! A self-contained HTML page that shows messages roughly as Slack would: for reviewing rules
//! and prompts at a laptop. No scripts, no external resources, a strict Content-Security-Policy.
//!
//! Text is converted, never passed through: Slack's entities are undone, everything is
//! HTML-escaped, and only the formatting our renderer writes (`*bold*`, `` `code` ``, newlines) is
//! turned back into markup.

use std::fmt::Write as _;

use super::mrkdwn::{self, Span};
use super::slack::{Block, Button, SlackMessage, Text};

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Slack's light theme, close enough to judge a rule or a prompt by: the message column, the
/// app's avatar and name, the attachment's colour bar, Block Kit sections, fields, context,
/// buttons and dividers, inline code, and threads shown as Slack's thread pane would.
const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:Lato,'Slack-Lato',-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,\
'Helvetica Neue','Noto Sans KR','Noto Sans CJK KR',sans-serif;background:#fff;color:#1d1c1d;\
margin:0;font-size:15px;line-height:1.46668;-webkit-font-smoothing:antialiased}\
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #dddddd;padding:10px 20px;\
z-index:1}\
h1{font-size:18px;font-weight:900;margin:0}\
h1::before{content:'# ';color:#616061;font-weight:400}\
.thread{border-bottom:1px solid #f2f2f2;padding:4px 0}\
.replies{margin:0 0 8px 68px;border-left:2px solid #e8e8e8;padding-left:4px}\
.replies::before{content:attr(data-count);display:block;color:#1264a3;font-size:13px;\
font-weight:700;padding:2px 16px}\
.msg{display:grid;grid-template-columns:36px minmax(0,1fr);column-gap:8px;padding:8px 20px;\
max-width:1000px}\
.msg:hover{background:#f8f8f8}\
.avatar{width:36px;height:36px;border-radius:6px;background:#4a154b;color:#fff;font-weight:900;\
font-size:14px;display:flex;align-items:center;justify-content:center}\
.name{font-weight:900;font-size:15px}\
.badge{background:rgba(29,28,29,.13);color:rgba(29,28,29,.7);font-size:10px;font-weight:700;\
border-radius:2px;padding:1px 3px;margin:0 6px;vertical-align:1px}\
.meta{color:#616061;font-size:12px}\
.att{border-left:4px solid #dddddd;border-radius:4px 0 0 4px;padding:2px 0 2px 12px;margin:4px 0}\
.section{margin:4px 0;overflow-wrap:anywhere;white-space:normal}\
.fields{display:grid;grid-template-columns:1fr 1fr;gap:8px 16px;margin:8px 0}\
.context{color:#616061;font-size:12px;margin:6px 0}\
.context code{font-size:11px}\
.actions{margin:8px 0;display:flex;flex-wrap:wrap;gap:8px}\
.button{display:inline-flex;align-items:center;height:28px;border:1px solid rgba(29,28,29,.3);\
border-radius:4px;padding:0 12px;color:#1d1c1d;background:#fff;text-decoration:none;\
font-weight:700;font-size:13px}\
hr{border:0;border-top:1px solid #dddddd;margin:12px 0}\
b{font-weight:700}\
code{font-family:Monaco,Menlo,Consolas,'Courier New',monospace;font-size:12px;\
background:rgba(29,28,29,.04);border:1px solid rgba(29,28,29,.13);border-radius:3px;\
padding:2px 3px 1px;color:#e01e5a;overflow-wrap:anywhere}";

/// The page for `messages`; continuations are shown indented under their parent.
pub fn preview(messages: &[SlackMessage], title: &str) -> String {
    let title = html_escape(title);
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
    );
    out.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    let _ = writeln!(
        out,
        "<title>{title}</title>\n<style>{STYLE}</style>\n</head>"
    );
    let _ = writeln!(out, "<body>\n<header><h1>{title}</h1></header>\n<main>");
    for (parent, replies) in threads(messages) {
        out.push_str("<div class=\"thread\">\n");
        if let Some(parent) = parent {
            card(&mut out, parent);
        }
        if !replies.is_empty() {
            let _ = writeln!(
                out,
                "<div class=\"replies\" data-count=\"{} {}\">",
                replies.len(),
                if replies.len() == 1 {
                    "reply"
                } else {
                    "replies"
                }
            );
            for reply in replies {
                card(&mut out, reply);
            }
            out.push_str("</div>\n");
        }
        out.push_str("</div>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

type Thread<'a> = (Option<&'a SlackMessage>, Vec<&'a SlackMessage>);

/// Groups messages into threads, as Slack shows them: a top-level message, then every
/// message that replies to it (its continuation parts, and incident replies under it, which
/// may come much later). A reply whose parent is not on the page gets a thread of its own,
/// so every message is shown.
fn threads(messages: &[SlackMessage]) -> Vec<Thread<'_>> {
    let mut threads: Vec<Thread<'_>> = Vec::new();
    let mut by_key: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for m in messages {
        let Some(parent) = m.thread_of.as_deref() else {
            by_key.insert(&m.batch_key, threads.len());
            threads.push((Some(m), Vec::new()));
            continue;
        };
        if let Some(&at) = by_key.get(parent) {
            threads[at].1.push(m);
        } else {
            by_key.insert(parent, threads.len());
            threads.push((None, vec![m]));
        }
    }
    threads
}

fn card(out: &mut String, m: &SlackMessage) {
    // What Slack shows beside the app's name is a time; the batch key is for whoever checks
    // the preview, so it is a tooltip, and the part only when there are several.
    let visible = if m.parts > 1 {
        format!("{}/{}", m.part + 1, m.parts)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "<article class=\"msg\">\n<div class=\"avatar\">tw</div>\n<div class=\"body\">\n\
         <div><span class=\"name\">trailwatch</span><span class=\"badge\">APP</span>\
         <span class=\"meta\" title=\"{} · {}/{}\">{visible}</span></div>",
        html_escape(&m.batch_key),
        m.part + 1,
        m.parts
    );
    for att in &m.payload.attachments {
        let _ = writeln!(
            out,
            "<div class=\"att\" style=\"border-left-color:{}\">",
            safe_colour(&att.color)
        );
        for block in &att.blocks {
            render_block(out, block);
        }
        out.push_str("</div>\n");
    }
    out.push_str("</div>\n</article>\n");
}

fn render_block(out: &mut String, block: &Block) {
    match block {
        Block::Section { text, fields } => {
            if let Some(text) = text {
                let _ = writeln!(out, "<div class=\"section\">{}</div>", text_html(text));
            }
            if let Some(fields) = fields {
                out.push_str("<div class=\"fields\">");
                for f in fields {
                    let _ = write!(out, "<div>{}</div>", text_html(f));
                }
                out.push_str("</div>\n");
            }
        }
        Block::Context { elements } => {
            let parts: Vec<String> = elements.iter().map(text_html).collect();
            let _ = writeln!(out, "<div class=\"context\">{}</div>", parts.join(" "));
        }
        Block::Actions { elements } => {
            out.push_str("<div class=\"actions\">");
            for b in elements {
                button(out, b);
            }
            out.push_str("</div>\n");
        }
        Block::Divider => out.push_str("<hr>\n"),
    }
}

fn button(out: &mut String, b: &Button) {
    let label = text_html(&b.text);
    if b.url.starts_with("https://") {
        let _ = write!(
            out,
            "<a class=\"button\" href=\"{}\" rel=\"noopener noreferrer\" target=\"_blank\">{label}</a>",
            html_escape(&b.url)
        );
    } else {
        let _ = write!(out, "<span class=\"button\">{label}</span>");
    }
}

fn text_html(text: &Text) -> String {
    match text {
        Text::Mrkdwn { text, .. } => spans_html(&mrkdwn::parse(text)),
        Text::PlainText { text, .. } => html_escape(text),
    }
}

fn spans_html(spans: &[Span]) -> String {
    let mut out = String::new();
    for span in spans {
        match span {
            Span::Text(t) => out.push_str(&html_escape(&mrkdwn::emoji(t))),
            Span::Bold(inner) => {
                let _ = write!(out, "<b>{}</b>", spans_html(inner));
            }
            Span::Code(c) => {
                let _ = write!(out, "<code>{}</code>", html_escape(c));
            }
            Span::Break => out.push_str("<br>"),
        }
    }
    out
}

/// `#rrggbb` or a neutral grey: the colour goes into a style attribute.
fn safe_colour(c: &str) -> &str {
    let hex = c.strip_prefix('#').unwrap_or("");
    if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        c
    } else {
        "#dddddd"
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::{PrincipalKind, Tool};
    use crate::severity::Severity;
    use crate::summary::Locale;
    use crate::testing::{actor, batch, batch_event, event, rendered, rule, small_batch, summary};
    use crate::window::BatchKind;

    const HOSTILE: &str =
        "<script>alert(1)</script> <a href=\"https://evil\">x</a> <!channel> & *bold* \"q\" 'q'";

    fn hostile_messages() -> Vec<SlackMessage> {
        let rl = rule("r", HOSTILE, None, Severity::Red);
        let who = actor(HOSTILE, PrincipalKind::Person, Tool::Console);
        let mut e = event(HOSTILE, 0, HOSTILE, HOSTILE, &[HOSTILE]);
        e.error_code = Some(HOSTILE.into());
        let b = batch(
            BatchKind::Window,
            Some(HOSTILE),
            vec![batch_event(e, &rl, &who)],
        );
        let mut s = summary(HOSTILE, Severity::Green);
        s.body = HOSTILE.to_owned();
        rendered(&b, &s, Locale::default())
    }

    #[test]
    fn hostile_strings_appear_only_escaped() {
        let page = preview(&hostile_messages(), HOSTILE);
        assert!(!page.to_lowercase().contains("<script"), "{page}");
        assert!(!page.contains("<a href=\"https://evil"));
        assert!(!page.contains("href=\"https://evil"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&lt;!channel&gt;"));
        // Look-alike stars: the text stays unformatted, only our own headline bold remains.
        assert!(!page.contains("<b>bold</b>"));
        // Nothing external: the only links are our CloudTrail buttons (none here: bad region).
        assert!(!page.contains("src="));
        assert!(!page.contains("href=\""));
        assert!(page.contains("Content-Security-Policy"));
        assert!(page.contains("default-src 'none'"));
    }

    #[test]
    fn every_message_appears_with_continuations_indented() {
        let rl = rule("r", "t", None, Severity::Green);
        let who = actor("a", PrincipalKind::Person, Tool::Cli);
        let events = (0..3000)
            .map(|i| {
                let name = format!("Event{i:05}");
                batch_event(
                    event(&name, 0, "us-east-1", &name, &["some-resource-name"]),
                    &rl,
                    &who,
                )
            })
            .collect();
        let mut messages = rendered(
            &batch(BatchKind::Window, None, events),
            &summary("big", Severity::Green),
            Locale::default(),
        );
        let parts = messages.len();
        assert!(parts > 1);
        messages.extend(rendered(
            &small_batch(),
            &summary("small", Severity::Green),
            Locale::default(),
        ));
        let page = preview(&messages, "t");
        assert_eq!(
            page.matches("<article class=\"msg\">").count(),
            messages.len()
        );
        assert_eq!(page.matches("<div class=\"thread\">").count(), 2);
        assert_eq!(
            page.matches("<div class=\"replies\" data-count=").count(),
            1
        );
        for i in 0..3000 {
            assert!(
                page.contains(&format!("<code>Event{i:05}</code>")),
                "event {i}"
            );
        }
        assert!(page.contains("<b>big</b>"));
        assert!(page.contains("<br>"));
        assert!(page.contains(
            "href=\"https://us-east-1.console.aws.amazon.com/cloudtrail/home?region=us-east-1\
             #/events?StartTime=2024-01-01T00:00:00.000Z&amp;EndTime=2024-01-01T00:05:00.000Z\""
        ));
        assert!(page.contains("border-left-color:#2eb67d"));
    }

    #[test]
    fn entities_are_undone_once_then_html_escaped() {
        let messages = rendered(
            &small_batch(),
            &summary("a &amp; b < c", Severity::Green),
            Locale::default(),
        );
        let page = preview(&messages, "t");
        // Input "a &amp; b" was Slack-escaped to "a &amp;amp; b", shown as "a &amp; b" in HTML.
        assert!(page.contains("<b>a &amp;amp; b &lt; c</b>"), "{page}");
    }

    #[test]
    fn orphan_continuations_still_appear() {
        let rl = rule("r", "t", None, Severity::Green);
        let who = actor("a", PrincipalKind::Person, Tool::Cli);
        let events = (0..6000)
            .map(|i| {
                let name = format!("E{i}");
                batch_event(
                    event("e", 0, "us-east-1", &name, &["some-resource-name"]),
                    &rl,
                    &who,
                )
            })
            .collect();
        let messages = rendered(
            &batch(BatchKind::Window, None, events),
            &summary("h", Severity::Green),
            Locale::default(),
        );
        assert!(messages.len() > 1);
        let page = preview(&messages[1..], "t");
        assert_eq!(
            page.matches("<article class=\"msg\">").count(),
            messages.len() - 1
        );
    }

    #[test]
    fn colours_are_checked_before_use() {
        assert_eq!(safe_colour("#e01e5a"), "#e01e5a");
        assert_eq!(safe_colour("red;background:url(x)"), "#dddddd");
    }
}
