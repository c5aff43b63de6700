//! Escaping of hostile event text for Slack `mrkdwn`.
//!
//! Every string that came from an event (names, resources, actors, error codes, account names)
//! or from a model (headline, body) goes through [`plain`] or [`code`] before it reaches Slack.
//! Slack only turns `<...>` into mentions and links, so escaping `&`, `<` and `>` is what makes a
//! `<!channel>` or `<https://evil|click>` print as text. Formatting characters are the other
//! half: [`plain`] replaces them with look-alikes, [`code`] keeps identifiers inside one code span
//! that the text cannot close.
//!
//! Look-alikes rather than zero-width spaces: Slack's own advice for bolding part of a word is to
//! wrap the markers in U+200B, so a zero-width space next to `*` can *enable* formatting instead of
//! disabling it. A look-alike (`∗`, `ˍ`, `∼`, `ˋ`) is not ASCII, so no version of Slack's parser
//! treats it as markup. The cost, that copied free text differs from the original, is acceptable
//! for free text; identifiers go through [`code`], which keeps them verbatim but for backticks.

/// Look-alike of `*` (U+2217 ASTERISK OPERATOR).
const STAR: char = '\u{2217}';
/// Look-alike of `_` (U+02CD MODIFIER LETTER LOW MACRON).
const UNDERSCORE: char = '\u{02CD}';
/// Look-alike of `~` (U+223C TILDE OPERATOR).
const TILDE: char = '\u{223C}';
/// Look-alike of `` ` `` (U+02CB MODIFIER LETTER GRAVE ACCENT).
const BACKTICK: char = '\u{02CB}';
/// Marks a cut.
const ELLIPSIS: char = '…';

/// Escapes `&`, `<` and `>` as Slack asks; nothing else changes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match entity(c) {
            Some(e) => out.push_str(e),
            None => out.push(c),
        }
    }
    out
}

/// Neutralises links and broadcast mentions in prose that is not ours (a model's answer):
/// `scheme://` becomes `scheme[:]//`, `www.` becomes `www[.]`, and the `@` of `@channel`,
/// `@here` and `@everyone` becomes a full-width `＠`. Escaping (`<`, `>`, `&`) still follows:
/// this only covers what a Slack client might link or notify without angle brackets.
pub fn defang(s: &str) -> String {
    const MENTIONS: [&str; 3] = ["channel", "here", "everyone"];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let head = rest
            .char_indices()
            .nth(12)
            .map_or(rest, |(i, _)| &rest[..i]);
        let lower_rest = head.to_ascii_lowercase();
        if rest.starts_with("://")
            && out
                .chars()
                .last()
                .is_some_and(|p| p.is_ascii_alphanumeric())
        {
            out.push_str("[:]//");
            rest = &rest[3..];
            continue;
        }
        if lower_rest.starts_with("www.") && !out.chars().last().is_some_and(char::is_alphanumeric)
        {
            out.push_str(&rest[..3]);
            out.push_str("[.]");
            rest = &rest[4..];
            continue;
        }
        if c == '@' && MENTIONS.iter().any(|m| lower_rest[1..].starts_with(m)) {
            out.push('＠');
            rest = &rest[1..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Free event text for `mrkdwn`: escaped, formatting characters replaced by look-alikes,
/// whitespace (newlines included) collapsed to single spaces, control characters removed, bidi
/// and zero-width characters shown as their code points.
pub fn plain(s: &str) -> String {
    plain_within(s, usize::MAX)
}

/// [`plain`], cut with an ellipsis so that the result holds at most `max` chars. An entity is
/// never cut in half.
pub fn plain_within(s: &str, max: usize) -> String {
    fit(&clean(s), max, Mode::Plain)
}

/// An identifier as one inline code span: escaped, whitespace collapsed, backticks replaced by a
/// look-alike so that the span cannot be closed early. Slack applies no formatting inside a code
/// span; as a second guard `*` and `~` (rare in identifiers: policy wildcards) become look-alikes
/// too, while `_`, common in identifiers (`role_name`), stays verbatim and relies on the span.
/// Empty input renders as `` `(empty)` ``.
pub fn code(s: &str) -> String {
    code_within(s, usize::MAX)
}

/// [`code`], cut with an ellipsis inside the span so that the whole span holds at most `max`
/// chars (at least the two backticks and one char).
pub fn code_within(s: &str, max: usize) -> String {
    let cleaned = clean(s);
    let inner = if cleaned.is_empty() {
        "(empty)".to_owned()
    } else {
        fit(&cleaned, max.saturating_sub(2).max(1), Mode::Code)
    };
    format!("`{inner}`")
}

/// Cuts `s` to at most `max` chars on char boundaries, the last one an ellipsis when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push(ELLIPSIS);
    out
}

#[derive(Clone, Copy)]
enum Mode {
    Plain,
    Code,
}

fn entity(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    }
}

/// Pushes the rendering of one char and returns how many chars it took.
fn push_piece(out: &mut String, c: char, mode: Mode) -> usize {
    if let Some(e) = entity(c) {
        out.push_str(e);
        return e.len();
    }
    let c = match (c, mode) {
        ('`', _) => BACKTICK,
        ('*', _) => STAR,
        ('~', _) => TILDE,
        ('_', Mode::Plain) => UNDERSCORE,
        _ => c,
    };
    out.push(c);
    1
}

fn piece_len(c: char) -> usize {
    entity(c).map_or(1, str::len)
}

/// Renders `s` piece by piece; when the whole would exceed `max` chars, stops early enough to
/// append an ellipsis.
fn fit(s: &str, max: usize, mode: Mode) -> String {
    let total: usize = s.chars().map(piece_len).sum();
    let mut out = String::with_capacity(s.len());
    if total <= max {
        for c in s.chars() {
            push_piece(&mut out, c, mode);
        }
        return out;
    }
    let budget = max.saturating_sub(1);
    let mut used = 0;
    for c in s.chars() {
        if used + piece_len(c) > budget {
            break;
        }
        used += push_piece(&mut out, c, mode);
    }
    if max > 0 {
        out.push(ELLIPSIS);
    }
    out
}

/// Characters that change how text reads without showing: bidi controls (they can make
/// `gpj.exe` read as `exe.jpg`) and zero-width characters (`ad\u{200B}min` reads as `admin`).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Collapses whitespace runs to one space, trims, drops control characters, and shows each
/// invisible character as its code point (`⟨U+200B⟩`): removing it would make the text read
/// as something it is not. (The audit keeps the raw value as evidence.)
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if is_invisible(c) {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("⟨U+{:04X}⟩", u32::from(c)));
        } else if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if !c.is_control() {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOSTILE: [&str; 5] = [
        "<!channel>",
        "<@U123>",
        "<https://evil|click>",
        "*bold*",
        "a & b",
    ];

    /// True when every `&` starts one of the three entities we produce.
    fn ampersands_are_entities(s: &str) -> bool {
        s.match_indices('&').all(|(i, _)| {
            let rest = &s[i..];
            rest.starts_with("&amp;") || rest.starts_with("&lt;") || rest.starts_with("&gt;")
        })
    }

    #[test]
    fn escape_replaces_the_three_characters() {
        assert_eq!(escape("a & <b> c"), "a &amp; &lt;b&gt; c");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn hostile_text_is_inert_in_plain() {
        assert_eq!(plain("<!channel>"), "&lt;!channel&gt;");
        assert_eq!(plain("<@U123>"), "&lt;@U123&gt;");
        assert_eq!(plain("<https://evil|click>"), "&lt;https://evil|click&gt;");
        assert_eq!(plain("*bold* _it_ ~s~ `c`"), "∗bold∗ ˍitˍ ∼s∼ ˋcˋ");
        for h in HOSTILE {
            let out = plain(h);
            assert!(!out.contains(['<', '>', '*']), "{out}");
        }
    }

    #[test]
    fn defang_neutralises_links_and_broadcasts() {
        assert_eq!(
            defang("see https://evil.example/x or HTTP://a.b and www.evil.example"),
            "see https[:]//evil.example/x or HTTP[:]//a.b and www[.]evil.example"
        );
        assert_eq!(
            defang("@channel @Here @everyone @alice"),
            "＠channel ＠Here ＠everyone @alice"
        );
        assert_eq!(defang("a://b ://c 계정 www"), "a[:]//b ://c 계정 www");
        assert_eq!(defang(""), "");
        let out = plain(&defang("<https://evil|click> <!channel> @here"));
        assert!(
            !out.contains("https://") && !out.contains('<') && !out.contains("@here"),
            "{out}"
        );
    }

    #[test]
    fn plain_collapses_whitespace_and_drops_controls() {
        assert_eq!(plain("  a\n\n b\r\n\tc  "), "a b c");
        assert_eq!(plain("x\u{202E}gpj.exe\u{0}"), "x⟨U+202E⟩gpj.exe");
    }

    /// Zero-width and bidi characters show: `ad\u{200B}min` must not read as `admin`.
    #[test]
    fn invisible_characters_are_shown_as_code_points() {
        for (input, shown) in [
            ("ad\u{200B}min", "ad⟨U+200B⟩min"),
            ("ad\u{2060}min", "ad⟨U+2060⟩min"),
            ("\u{FEFF}admin", "⟨U+FEFF⟩admin"),
            ("evil\u{202E}fdp.exe", "evil⟨U+202E⟩fdp.exe"),
            ("a\u{E0041}b", "a⟨U+E0041⟩b"),
            ("\u{3164}x", "⟨U+3164⟩x"),
        ] {
            assert_eq!(plain(input), shown);
            assert_eq!(code(input), format!("`{shown}`"));
        }
    }

    #[test]
    fn code_is_one_span_that_cannot_be_closed() {
        assert_eq!(code("CreateUser"), "`CreateUser`");
        assert_eq!(code("a`b"), "`aˋb`");
        assert_eq!(code("`<!here>`"), "`ˋ&lt;!here&gt;ˋ`");
        assert_eq!(code("my_role/*"), "`my_role/∗`");
        assert_eq!(code("*bold* ~s~"), "`∗bold∗ ∼s∼`");
        assert_eq!(code(" \n"), "`(empty)`");
    }

    #[test]
    fn truncation_is_on_char_boundaries() {
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("계정이름", 3), "계정…");
        assert_eq!(truncate_chars("abc", 0), "");
    }

    #[test]
    fn within_never_cuts_an_entity() {
        assert_eq!(plain_within("a&b", 3), "a…");
        assert_eq!(plain_within("a&b", 7), "a&amp;b");
        assert_eq!(plain_within("<<<<", 10), "&lt;&lt;…");
        assert_eq!(code_within("abcdef", 6), "`abc…`");
        assert_eq!(code_within("abcd", 6), "`abcd`");
    }

    proptest! {
        #[test]
        fn plain_output_is_inert(s in any::<String>(), extra in prop::sample::select(HOSTILE.to_vec())) {
            let input = format!("{s}{extra}{s}");
            let out = plain(&input);
            prop_assert!(!out.contains(['<', '>']));
            prop_assert!(ampersands_are_entities(&out));
            // No ASCII formatting character is left, so no `*x*`, `_x_`, `~x~` pair can form.
            prop_assert!(!out.contains(['*', '_', '~', '`']));
            prop_assert!(!out.contains('\n'));
        }

        #[test]
        fn code_output_is_one_inert_span(s in any::<String>(), extra in prop::sample::select(HOSTILE.to_vec())) {
            let input = format!("{extra}{s}`*x*`{s}");
            let out = code(&input);
            prop_assert!(!out.contains(['<', '>', '\n']));
            prop_assert!(ampersands_are_entities(&out));
            // Exactly two backticks, at both ends: the span cannot be closed early, and no `*x*`
            // or `~x~` pair is left even inside it.
            prop_assert!(out.starts_with('`') && out.ends_with('`'));
            prop_assert_eq!(out.matches('`').count(), 2);
            prop_assert!(!out.contains(['*', '~']));
        }

        #[test]
        fn within_respects_the_bound(s in any::<String>(), max in 3usize..200) {
            let p = plain_within(&s, max);
            prop_assert!(p.chars().count() <= max);
            prop_assert!(ampersands_are_entities(&p));
            let c = code_within(&s, max);
            prop_assert!(c.chars().count() <= max.max(9));
            prop_assert_eq!(c.matches('`').count(), 2);
        }
    }
}
