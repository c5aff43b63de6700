//! Reads back the small subset of `mrkdwn` that our Slack renderer writes: `*bold*`, `` `code` ``,
//! newlines and the three entities. Used by the HTML preview and the terminal text.
//!
//! The input is trusted only in shape: event text in it went through `escape::plain` or
//! `escape::code`, so the only ASCII `*` and `` ` `` outside code spans are ours. Everything that
//! comes out is unescaped text that the caller must escape again for its own medium.

/// A piece of a parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Span {
    Text(String),
    Bold(Vec<Span>),
    Code(String),
    Break,
}

/// Parses `mrkdwn` into spans; text and code contents come out with entities undone.
pub(crate) fn parse(s: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            spans.push(Span::Break);
        }
        spans.extend(inline(line, true));
    }
    spans
}

fn inline(line: &str, allow_bold: bool) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut text = String::new();
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        match c {
            '`' => {
                if let Some(end) = after.find('`') {
                    flush(&mut text, &mut spans);
                    spans.push(Span::Code(unescape(&after[..end])));
                    rest = &after[end + 1..];
                    continue;
                }
            }
            '*' if allow_bold => {
                if let Some(end) = closing_star(after).filter(|&end| end > 0) {
                    flush(&mut text, &mut spans);
                    spans.push(Span::Bold(inline(&after[..end], false)));
                    rest = &after[end + 1..];
                    continue;
                }
            }
            _ => {}
        }
        text.push(c);
        rest = after;
    }
    flush(&mut text, &mut spans);
    spans
}

/// The byte offset of the `*` that closes a bold run, skipping code spans.
fn closing_star(s: &str) -> Option<usize> {
    let mut in_code = false;
    for (i, c) in s.char_indices() {
        match c {
            '`' => in_code = !in_code,
            '*' if !in_code => return Some(i),
            _ => {}
        }
    }
    None
}

fn flush(text: &mut String, spans: &mut Vec<Span>) {
    if !text.is_empty() {
        spans.push(Span::Text(unescape(text)));
        text.clear();
    }
}

/// Undoes Slack's three entities in one pass (so `&amp;lt;` becomes `&lt;`, not `<`).
pub(crate) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (c, len) = if tail.starts_with("&amp;") {
            ('&', 5)
        } else if tail.starts_with("&lt;") {
            ('<', 4)
        } else if tail.starts_with("&gt;") {
            ('>', 4)
        } else {
            ('&', 1)
        };
        out.push(c);
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// Replaces the emoji shortcodes our renderer writes with the glyphs Slack would show.
pub(crate) fn emoji(s: &str) -> String {
    const CODES: [(&str, &str); 7] = [
        (":red_circle:", "🔴"),
        (":large_yellow_circle:", "🟡"),
        (":large_green_circle:", "🟢"),
        (":x:", "❌"),
        (":bell:", "🔔"),
        (":hourglass_flowing_sand:", "⏳"),
        (":rotating_light:", "🚨"),
    ];
    let mut out = s.to_owned();
    for (code, glyph) in CODES {
        if out.contains(code) {
            out = out.replace(code, glyph);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bold_code_and_breaks() {
        let spans = parse("*a &amp; b* `x*y`\nz &lt;");
        assert_eq!(
            spans,
            vec![
                Span::Bold(vec![Span::Text("a & b".into())]),
                Span::Text(" ".into()),
                Span::Code("x*y".into()),
                Span::Break,
                Span::Text("z <".into()),
            ]
        );
    }

    #[test]
    fn unmatched_markers_are_text() {
        assert_eq!(parse("a * b"), vec![Span::Text("a * b".into())]);
        assert_eq!(parse("`open"), vec![Span::Text("`open".into())]);
    }

    #[test]
    fn unescape_is_one_pass() {
        assert_eq!(unescape("&amp;lt; &lt; &gt; & x"), "&lt; < > & x");
    }
}
