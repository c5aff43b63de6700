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

/// A bare CloudTrail record no rule matches (a read by a workload role), with its id.
fn quiet_record(id: &str) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.09",
        "eventID": id,
        "eventTime": "2026-11-02T03:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111111111111",
        "eventType": "AwsApiCall",
        "readOnly": true,
        "userAgent": "aws-sdk-go-v2/1.30.0",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111111111111:assumed-role/app/i-0abc",
            "accountId": "111111111111",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "app",
                "arn": "arn:aws:iam::111111111111:role/app"}}
        },
        "requestParameters": {"filterSet": {}, "padding": "x".repeat(300)},
        "responseElements": null
    })
}

fn log_file(ids: std::ops::Range<usize>) -> String {
    let records: Vec<serde_json::Value> = ids.map(|n| quiet_record(&format!("r-{n}"))).collect();
    serde_json::json!({ "Records": records }).to_string()
}

fn gzip(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
    encoder.write_all(bytes).unwrap_or_default();
    encoder.finish().unwrap_or_default()
}

/// The stats line of `trailwatch replay FILE --format audit` (its timing fields cut off).
fn stats_of(name: &str, bytes: &[u8], extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|err| panic!("write: {err}"));
    let mut args = vec![
        "replay",
        path.to_str().unwrap_or_default(),
        "--format",
        "audit",
    ];
    args.extend_from_slice(extra);
    let out = trailwatch(&args);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("replay: "))
        .unwrap_or_else(|| panic!("no stats line: {stderr}"));
    line.split(" elapsed=")
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `trailwatch replay FILE --format audit --quarantine Q` on `bytes` written as `name`: its
/// standard error and the quarantine file (the run must succeed).
fn replay_quarantining(name: &str, bytes: &[u8]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let (input, quarantine) = (dir.path().join(name), dir.path().join("q.jsonl"));
    std::fs::write(&input, bytes).unwrap_or_else(|err| panic!("write: {err}"));
    let out = trailwatch(&[
        "replay",
        input.to_str().unwrap_or_default(),
        "--format",
        "audit",
        "--quarantine",
        quarantine.to_str().unwrap_or_default(),
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let written = std::fs::read_to_string(&quarantine).unwrap_or_default();
    (stderr, written)
}

fn expected_stats(decoded: u64, quarantined: u64, insights: u64, digests: u64) -> String {
    let skipped = insights + digests;
    format!(
        "replay: read={} decoded={decoded} quarantined={quarantined} quarantine_omitted=0 \
         skipped={skipped} insights={insights} digest_files={digests} heartbeats=0 matched=0 \
         ignored=0 unmatched={decoded} duplicates=0 conflicting_duplicates=0 late=0 \
         future_dated=0 immediate=0 batches=0 top_level=0 replies=0 reminders=0 held=0 \
         notices=0 below_threshold=0 fallbacks=0",
        decoded + quarantined + skipped
    )
}

/// A byte-order mark before JSON Lines or a whole log file, and CRLF line ends, cost nothing.
#[test]
fn a_byte_order_mark_and_crlf_line_ends_are_read() {
    let lines: Vec<String> = (0..3)
        .map(|n| quiet_record(&format!("l-{n}")).to_string())
        .collect();
    let bom_lines = format!("\u{feff}{}\n", lines.join("\n"));
    assert_eq!(
        stats_of("bom.jsonl", bom_lines.as_bytes(), &[]),
        expected_stats(3, 0, 0, 0)
    );
    let bom_file = format!("\u{feff}{}", log_file(0..4));
    assert_eq!(
        stats_of("bom.json", bom_file.as_bytes(), &[]),
        expected_stats(4, 0, 0, 0)
    );
    let crlf = format!("{}\r\n", lines.join("\r\n"));
    assert_eq!(
        stats_of("crlf.jsonl", crlf.as_bytes(), &[]),
        expected_stats(3, 0, 0, 0)
    );
    let gz = gzip(bom_file.as_bytes(), flate2::Compression::default());
    assert_eq!(
        stats_of("bom.json.gz", &gz, &[]),
        expected_stats(4, 0, 0, 0)
    );
}

/// A damaged gzip log file: every record complete before the damage decodes, and one
/// quarantine entry (naming the file) says what was lost.
#[test]
fn a_damaged_gzip_file_keeps_the_records_before_the_damage() {
    let file = log_file(0..40);
    let gz = gzip(file.as_bytes(), flate2::Compression::none());
    // Cut at 90%: the records whose text ends within what still inflates decode.
    let cut = &gz[..gz.len() * 9 / 10];
    let mut inflated = Vec::new();
    let _ = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(cut), &mut inflated);
    let complete = (0..40)
        .filter(|n| {
            let record = quiet_record(&format!("r-{n}")).to_string();
            file.find(&record)
                .is_some_and(|at| at + record.len() <= inflated.len())
        })
        .count() as u64;
    assert!((30..40).contains(&complete), "{complete}");
    assert_eq!(
        stats_of("cut.json.gz", cut, &[]),
        expected_stats(complete, 1, 0, 0)
    );
    // Only the trailer missing, or a bad checksum: every record, and the damage noted.
    let no_trailer = &gz[..gz.len() - 8];
    assert_eq!(
        stats_of("trailer.json.gz", no_trailer, &[]),
        expected_stats(40, 1, 0, 0)
    );
    let mut bad_crc = gz.clone();
    let at = bad_crc.len() - 6;
    bad_crc[at] ^= 0xff;
    assert_eq!(
        stats_of("crc.json.gz", &bad_crc, &[]),
        expected_stats(40, 1, 0, 0)
    );
    // The quarantine entry names the file and the reason, and holds nothing of the records.
    let (_, written) = replay_quarantining("cut.json.gz", cut);
    let entry: serde_json::Value = serde_json::from_str(written.trim()).unwrap_or_default();
    assert!(
        entry["source"]
            .as_str()
            .is_some_and(|s| s.ends_with("cut.json.gz")),
        "{written}"
    );
    assert!(
        entry["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("gzip: ")),
        "{written}"
    );
}

/// A gzip bomb is not inflated past the configured bound: one quarantine entry says so.
#[test]
fn a_gzip_bomb_stops_at_the_bound() {
    let bomb = gzip(&vec![b' '; 3 << 20], flate2::Compression::best());
    assert!(bomb.len() < 64 << 10);
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[input]\nmax_inflated_mib = 1\n").unwrap_or_default();
    let config = config.to_str().unwrap_or_default().to_owned();
    assert_eq!(
        stats_of("bomb.json.gz", &bomb, &["--config", &config]),
        expected_stats(0, 1, 0, 0)
    );
}

/// CloudTrail Insights records and digest files are real CloudTrail output, not events:
/// skipped and counted by kind, never quarantined.
#[test]
fn insights_records_and_digest_files_are_skipped_not_quarantined() {
    let insight = serde_json::json!({
        "eventVersion": "1.07", "eventTime": "2026-11-02T03:00:00Z",
        "awsRegion": "us-east-1", "eventID": "ins-1", "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": "111111111111", "sharedEventID": "s-1",
        "insightDetails": {"state": "Start", "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances", "insightType": "ApiCallRateInsight"},
        "eventCategory": "Insight"
    });
    let insights = serde_json::json!({ "Records": [insight, quiet_record("r-1")] }).to_string();
    assert_eq!(
        stats_of("insights.json", insights.as_bytes(), &[]),
        expected_stats(1, 0, 1, 0)
    );
    let digest = serde_json::json!({
        "awsAccountId": "111111111111",
        "digestStartTime": "2026-11-02T02:00:00Z",
        "digestEndTime": "2026-11-02T03:00:00Z",
        "digestS3Bucket": "trail-bucket",
        "digestS3Object": "AWSLogs/111111111111/CloudTrail-Digest/us-east-1/x.json.gz",
        "previousDigestSignature": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "logFiles": []
    })
    .to_string();
    assert_eq!(
        stats_of("digest.json", digest.as_bytes(), &[]),
        expected_stats(0, 0, 0, 1)
    );
}

/// Past 10,000 quarantined records the quarantine file stops, and says so: on the stats line
/// (`quarantine_omitted`) and in its last line.
#[test]
fn the_quarantine_file_says_what_it_left_out() {
    use std::fmt::Write as _;
    let mut broken = String::new();
    for n in 0..10_050 {
        let _ = writeln!(broken, "{{\"eventID\": \"b-{n}\", \"broken\": ");
    }
    let (stderr, written) = replay_quarantining("broken.jsonl", broken.as_bytes());
    assert!(
        stderr.contains(" quarantined=10050 quarantine_omitted=50 "),
        "{stderr}"
    );
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 10_001);
    let last: serde_json::Value = serde_json::from_str(lines[10_000]).unwrap_or_default();
    assert_eq!(last["omitted"], 50, "{last}");
}

/// A record without `recipientAccountId` (and no envelope, no `userIdentity.accountId`) takes
/// the account of its CloudTrail log file's name instead of being quarantined.
#[test]
fn the_log_files_name_gives_a_record_its_account() {
    let mut record = quiet_record("no-account");
    if let Some(map) = record.as_object_mut() {
        map.remove("recipientAccountId");
    }
    if let Some(identity) = record["userIdentity"].as_object_mut() {
        identity.remove("accountId");
    }
    let file = serde_json::json!({ "Records": [record] }).to_string();
    let named = "111111111111_CloudTrail_us-east-1_20261102T0300Z_AbCdEf.json";
    assert_eq!(
        stats_of(named, file.as_bytes(), &[]),
        expected_stats(1, 0, 0, 0)
    );
    assert_eq!(
        stats_of("other.json", file.as_bytes(), &[]),
        expected_stats(0, 1, 0, 0)
    );
}

/// `--now` pins the real time events are checked against: an event dated after it (by more
/// than 15 minutes) is placed at the latest event time before it, whatever day replay runs.
#[test]
fn now_pins_the_future_date_check() {
    let mut early = quiet_record("early");
    early["eventName"] = "CreateUser".into();
    early["eventSource"] = "iam.amazonaws.com".into();
    early["readOnly"] = false.into();
    let mut later = early.clone();
    later["eventID"] = "later".into();
    later["eventTime"] = "2026-11-02T05:00:00Z".into();
    let input = format!("{early}\n{later}\n");
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let path = dir.path().join("two.jsonl");
    std::fs::write(&path, input).unwrap_or_default();
    let run = |now: &str| {
        let out = trailwatch(&[
            "replay",
            path.to_str().unwrap_or_default(),
            "--format",
            "audit",
            "--now",
            now,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    assert!(run("2026-11-02T03:30:00Z").contains(" future_dated=1 "));
    assert!(run("2026-11-02T06:00:00Z").contains(" future_dated=0 "));
    let bad = trailwatch(&["replay", path.to_str().unwrap_or_default(), "--now", "soon"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("RFC 3339"),
        "{}",
        text(&bad.stderr)
    );
}

/// `--summarizer bedrock` without AWS credentials: every batch falls back to the offline
/// summary, and standard error says why in one line (not the SDK's credential chain, once per
/// provider and call, in colour), then the stats line.
#[cfg(feature = "cloud")]
#[test]
fn bedrock_without_credentials_says_so_once() {
    let home = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    // Empty AWS config and credentials files: no profile to find credentials in.
    let empty = home.path().join("empty");
    std::fs::write(&empty, "").unwrap_or_else(|err| panic!("{err}"));
    let out = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args([
            "replay",
            "--summarizer",
            "bedrock",
            "--format",
            "audit",
            &common::fixture("multi-account.jsonl").display().to_string(),
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", &empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .output()
        .unwrap_or_else(|err| panic!("cannot run trailwatch: {err}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "one line on Bedrock, one stats line:\n{stderr}"
    );
    assert!(
        lines[0].contains("no AWS credentials") && lines[0].contains("offline"),
        "{}",
        lines[0]
    );
    assert!(!stderr.contains('\u{1b}'), "no colour codes in a pipe");
    assert!(!stderr.contains("dispatch failure: dispatch failure"));
    assert!(lines[1].starts_with("replay: "));
    // Every batch the model was asked about fell back, saying why; thread replies never ask.
    let audit = text(&out.stdout);
    let asked: Vec<&str> = audit
        .lines()
        .filter(|l| !l.contains("\"summary_by\":\"offline\""))
        .collect();
    assert!(asked.len() > 1, "{audit}");
    for line in asked {
        assert!(
            line.contains("\"summary_by\":\"fallback\"")
                && line.contains("no AWS credentials: no credentials found in chain. (1 attempts"),
            "{line}"
        );
    }
}

/// `trailwatch replay FILE | head -1`: the reader closes the pipe after one line; replay ends
/// quietly with status 0 after what was written (no `error: Broken pipe`). The input, 600
/// users created in 600 windows of three accounts, gives Slack JSON far larger than a pipe's
/// buffer (64 KiB), so the write meets the closed pipe.
#[test]
fn a_closed_pipe_ends_replay_quietly() {
    use std::io::BufRead as _;
    let lines: Vec<String> = (0..600)
        .map(|n| {
            let account = ["111111111111", "222222222222", "333333333333"][n % 3];
            let time = chrono::DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z")
                .map(|t| t + chrono::TimeDelta::minutes(7 * i64::try_from(n).unwrap_or(0)))
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let id = format!("00000000-0000-0000-0000-{n:012}");
            common::create_user(account, &id, &time, "admin", &format!("user-{n}")).to_string()
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("trailwatch-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{err}"));
    let input = dir.join("users.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap_or_else(|err| panic!("{err}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .arg("replay")
        .arg(&input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run trailwatch: {err}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .unwrap_or_else(|err| panic!("read: {err}"));
    // Piped, the default output is the Slack JSON array.
    assert_eq!(first.trim(), "[");
    let out = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("wait: {err}"));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.to_lowercase().contains("broken pipe"), "{stderr}");
    assert!(stderr.contains("replay: read=600"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A build without the `cloud` feature (the README's first command) says, in one line, what
/// it leaves out and how to build it in, for every command or option that needs it.
#[cfg(not(feature = "cloud"))]
#[test]
fn the_offline_build_names_the_feature_it_lacks() {
    let fixture = common::fixture("multi-account.jsonl").display().to_string();
    for args in [
        vec!["replay", "--summarizer", "bedrock", fixture.as_str()],
        vec![
            "replay",
            "--slack-webhook",
            "https://hooks.slack.com/services/T/B/x",
            fixture.as_str(),
        ],
        vec!["consume", "--stream", "s", "--table", "t"],
        vec!["send", "--stream", "s", fixture.as_str()],
        vec!["audit", "--table", "t"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args(&args)
            .output()
            .unwrap_or_else(|err| panic!("cannot run trailwatch: {err}"));
        assert!(!out.status.success(), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("--features cloud"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
