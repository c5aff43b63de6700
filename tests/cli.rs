//! The binary as a user runs it.

mod common;

use std::process::Command;

use common::fixture;

fn trailwatch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(args)
        .env_remove("TRAILWATCH_LANG")
        .env_remove("TRAILWATCH_TZ")
        .env_remove("TRAILWATCH_ACCOUNTS")
        .output()
        .unwrap_or_else(|err| panic!("cannot run trailwatch: {err}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn replay_prints_payloads_and_one_stats_line() {
    let path = fixture("multi-account.jsonl");
    let out = trailwatch(&["replay", path.to_str().unwrap_or_default()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let payloads: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON: {err}"));
    assert!(!payloads.is_empty());
    let stderr = text(&out.stderr);
    let stats: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("replay: "))
        .collect();
    assert_eq!(stats.len(), 1, "{stderr}");
    for key in [
        "read=",
        "decoded=",
        "quarantined=",
        "matched=",
        "ignored=",
        "unmatched=",
        "duplicates=",
        "batches=",
        "elapsed=",
        "events/s=",
    ] {
        assert!(stats[0].contains(key), "{key} missing: {}", stats[0]);
    }
}

#[test]
fn every_format_writes() {
    let path = fixture("console-iam-person.json");
    let dir = std::env::temp_dir().join(format!("trailwatch-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_default();
    for format in ["slack", "html", "audit", "text"] {
        let out_path = dir.join(format!("out.{format}"));
        let out = trailwatch(&[
            "replay",
            path.to_str().unwrap_or_default(),
            "--format",
            format,
            "--out",
            out_path.to_str().unwrap_or_default(),
            "--config",
            fixture("config.toml").to_str().unwrap_or_default(),
        ]);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        let written = std::fs::read_to_string(&out_path).unwrap_or_default();
        assert!(!written.is_empty(), "{format}");
        if format == "audit" {
            for line in written.lines() {
                let value: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                for key in [
                    "account",
                    "account_name",
                    "window_start",
                    "late",
                    "severity",
                    "events",
                ] {
                    assert!(value.get(key).is_some(), "audit line lacks {key}: {line}");
                }
                for event in value["events"].as_array().into_iter().flatten() {
                    for key in ["id", "name", "actor", "severity"] {
                        assert!(event.get(key).is_some(), "audit event lacks {key}");
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_exits_non_zero_with_one_readable_line() {
    let dir = std::env::temp_dir().join(format!("trailwatch-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_default();
    let config = dir.join("bad.toml");
    std::fs::write(&config, "[window]\nwidth = \"soon\"\n").unwrap_or_default();
    let event = fixture("multi-account.jsonl");
    let cases: [(&[&str], &str); 4] = [
        (
            &["replay", "/nonexistent/file.json"],
            "cannot read /nonexistent/file.json",
        ),
        (
            &[
                "replay",
                event.to_str().unwrap_or_default(),
                "--config",
                config.to_str().unwrap_or_default(),
            ],
            "window.width: expected a duration",
        ),
        (
            &["replay", event.to_str().unwrap_or_default(), "--lang", "fr"],
            "--lang: expected \"en\" or \"ko\"",
        ),
        (
            &[
                "replay",
                event.to_str().unwrap_or_default(),
                "--tz",
                "Mars/Base",
            ],
            "--tz: expected an IANA time zone",
        ),
    ];
    for (args, expected) in cases {
        let out = trailwatch(args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(expected),
            "{args:?}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pattern_prints_the_generated_pattern() {
    let out = trailwatch(&["pattern"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let rules = trailwatch::rules::RulePack::builtin();
    assert_eq!(printed, trailwatch::rules::event_pattern(&rules));
    let text = text(&out.stdout);
    assert!(text.contains("AWS Console Sign In via CloudTrail"));
    assert!(text.contains("EC2 Instance State-change Notification"));

    let out = trailwatch(&["pattern", "--split", "2048"]);
    assert!(out.status.success());
    let pieces: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(pieces.len() >= 2);
    for piece in &pieces {
        assert!(serde_json::to_string(piece).unwrap_or_default().len() <= 2048);
    }
}
