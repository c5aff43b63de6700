//! No credential from any input reaches any output; no event text can format, mention or link.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono_tz::UTC;
use common::{corpus, fixture, fixture_inputs, replay_bytes, replay_files, settings};
use serde_json::Value;
use trailwatch::app::Format;
use trailwatch::enrich::redact::is_secret_key;
use trailwatch::render::escape;
use trailwatch::summary::Lang;

/// String values under secret-named keys (`sessionToken`, `secretAccessKey`, `*password*`...).
fn collect_secrets(value: &Value, key: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) if is_secret_key(key) && is_real_secret(s) => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, key, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| collect_secrets(v, k, out)),
        _ => {}
    }
}

/// Placeholders CloudTrail writes instead of a secret are not secrets.
fn is_real_secret(s: &str) -> bool {
    s.len() >= 8
        && !s.contains("HIDDEN_DUE_TO_SECURITY_REASONS")
        && !s.contains("REDACTED")
        && s.chars().collect::<BTreeSet<_>>().len() > 3
}

fn secrets_in(bytes: &[u8], out: &mut BTreeSet<String>) {
    let text = String::from_utf8_lossy(bytes);
    for line in text.lines() {
        if let Ok(value) = serde_json::from_str::<Value>(line) {
            collect_secrets(&value, "", out);
        }
    }
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        collect_secrets(&value, "", out);
    }
}

/// What a secret would look like in an output: as is, escaped for Slack or HTML, or with
/// formatting characters swapped for look-alikes; long ones also by their first 20 characters
/// (a cut value still leaks).
fn needles(secrets: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for secret in secrets {
        let forms = [
            secret.clone(),
            secret.replace('&', "&amp;"),
            escape::plain(secret),
            escape::code(secret).trim_matches('`').to_owned(),
        ];
        for form in forms {
            let prefix: String = form.chars().take(20).collect();
            out.push((secret.clone(), prefix));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn inputs() -> Vec<PathBuf> {
    let mut files = fixture_inputs();
    if let Some(dir) = corpus() {
        for file in [
            "panther/labelled.jsonl",
            "stratus-red-team/detonations.jsonl",
            "traildiscover/examples.jsonl",
        ] {
            files.push(dir.join(file));
        }
    }
    files
}

#[test]
fn no_credential_appears_in_any_output() {
    let files = inputs();
    let mut secrets = BTreeSet::new();
    let mut bytes = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap_or_default();
        secrets_in(&data, &mut secrets);
        bytes.push(data);
    }
    let planted = std::fs::read_to_string(fixture("secrets.planted.txt")).unwrap_or_default();
    secrets.extend(
        planted
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
    );
    assert!(
        secrets.len() >= 20,
        "too few secrets found to make the test mean anything"
    );

    let replayed = replay_bytes(&bytes, settings(Lang::En, UTC));
    let quarantine = serde_json::to_string(&replayed.quarantined).unwrap_or_default();
    let outputs = [
        ("slack", replayed.output(Format::Slack)),
        ("html", replayed.output(Format::Html)),
        ("audit", replayed.output(Format::Audit)),
        ("text", replayed.output(Format::Text)),
        ("quarantine", quarantine),
    ];
    let needles = needles(&secrets);
    let long_key =
        regex::Regex::new(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b").unwrap_or_else(|e| panic!("{e}"));
    for (format, output) in &outputs {
        assert!(!output.is_empty(), "{format} output is empty");
        for (secret, needle) in &needles {
            assert!(
                !output.contains(needle.as_str()),
                "{format} output leaks {secret:?} as {needle:?}"
            );
        }
        // Whole access key ids never appear: they are shortened.
        assert!(
            !long_key.is_match(output),
            "{format} output shows a whole access key id"
        );
    }
}

const HOSTILE: &[&str] = &[
    "<!channel>",
    "<!here>",
    "<@U123>",
    "<https://evil.example|click here>",
    "*bold*",
    "_italic_",
    "~strike~",
    "<b>",
];

#[test]
fn hostile_event_text_renders_inert() {
    let replayed = replay_files(&[&fixture("hostile-text.jsonl")], settings(Lang::En, UTC));
    assert!(replayed.stats.matched >= 3, "{:?}", replayed.stats);
    let slack = replayed.output(Format::Slack);
    for needle in HOSTILE {
        assert!(!slack.contains(needle), "Slack JSON carries {needle}");
    }
    // A bare `&` from event text is escaped: every `&` starts an entity.
    let payloads: Vec<Value> = serde_json::from_str(&slack).unwrap_or_default();
    let mut texts = Vec::new();
    collect_texts(&Value::Array(payloads), &mut texts);
    for text in &texts {
        for (i, _) in text.match_indices('&') {
            let rest = &text[i..];
            assert!(
                rest.starts_with("&amp;") || rest.starts_with("&lt;") || rest.starts_with("&gt;"),
                "unescaped & in {text:?}"
            );
        }
    }
    let html = replayed.output(Format::Html);
    for needle in [
        "<!channel>",
        "<@U123>",
        "<https://evil",
        "href=\"https://evil",
        "<script",
        "<b>bold",
    ] {
        assert!(!html.contains(needle), "HTML carries {needle}");
    }
    assert!(
        html.contains("&lt;!channel&gt;"),
        "the hostile text is shown, escaped"
    );
}

fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match item {
                    Value::String(s) if key == "text" => out.push(s.clone()),
                    _ => collect_texts(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_texts(v, out)),
        _ => {}
    }
}
