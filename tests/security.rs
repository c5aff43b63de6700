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

/// A bare CloudTrail record of `source`/`name` with these request parameters (and, when
/// given, error message and user agent).
fn planted_record(n: usize, source: &str, name: &str, request: &Value) -> Value {
    serde_json::json!({
        "eventVersion": "1.09",
        "eventID": format!("planted-{n}"),
        "eventTime": "2026-11-02T03:00:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "recipientAccountId": "111111111111",
        "eventType": "AwsApiCall",
        "readOnly": false,
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111111111111:assumed-role/deployer/jane",
            "accountId": "111111111111",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "deployer",
                "arn": "arn:aws:iam::111111111111:role/deployer"}}
        },
        "requestParameters": request,
        "responseElements": null
    })
}

/// At least 40 secrets where real CloudTrail carries them (Lambda, SSM, ECS, CodeBuild, Glue,
/// Secrets Manager, RDS, CloudFormation, EC2 user data plain and base64, URLs, error
/// messages, user agents, resource names, a key used as a JSON key), each distinct in every
/// 12 characters. Returns the records and the secrets.
#[allow(clippy::too_many_lines)] // One table of planted secrets.
fn planted() -> (Vec<Value>, Vec<String>) {
    let s = |n: usize, shape: &str| format!("{shape}Qz7Wp{n:02}Xk9Lm3Vb8Rt");
    let mut secrets = Vec::new();
    let mut take = |secret: String| {
        secrets.push(secret.clone());
        secret
    };
    let user_data = format!(
        "#!/bin/bash\nmysql -u root -p{} -e 'select 1'\nexport API_KEY={}\n",
        take(s(1, "MyPw")),
        take(s(2, "ApiK"))
    );
    let user_data_b64 = base64_encode(&format!(
        "#!/bin/bash\necho {} > /etc/token\n",
        take(s(3, "B64Tok"))
    ));
    take(user_data_b64.clone());
    let records = vec![
        planted_record(
            1,
            "lambda.amazonaws.com",
            "CreateFunction20150331",
            &serde_json::json!({
                "functionName": "billing",
                "environment": {"variables": {
                    "STRIPE_KEY": take(format!("sk_live_{}", s(4, "St"))),
                    "OPENAI_KEY": take(format!("sk-proj-{}", s(5, "Oa"))),
                    "CLAUDE": take(format!("sk-ant-api03-{}", s(6, "An"))),
                    "DB_PASSWORD": take(s(7, "Lpw")),
                    "SETTINGS_BLOB": take(s(8, "Blob")),
                    "GITHUB": take(format!("ghp_{}", s(9, "Gh"))),
                    "GITLAB": take(format!("glpat-{}", s(10, "Gl"))),
                    "GOOGLE": take(format!("AIzaSy{}", s(11, "GoogleKeyPadding"))),
                    "SLACK": take(format!("xoxb-1234-{}", s(12, "Sl"))),
                    "PAT": take(format!("github_pat_{}", s(13, "Ghp"))),
                }}
            }),
        ),
        planted_record(
            2,
            "ssm.amazonaws.com",
            "PutParameter",
            &serde_json::json!({
                "name": "/prod/db/master", "type": "SecureString",
                "value": take(s(14, "SsmVal")), "overwrite": true
            }),
        ),
        planted_record(
            3,
            "ecs.amazonaws.com",
            "RegisterTaskDefinition",
            &serde_json::json!({
                "family": "api",
                "containerDefinitions": [{"name": "api", "environment": [
                    {"name": "DB_PASSWORD", "value": take(s(15, "EcsPw"))},
                    {"name": "PLAIN", "value": take(s(16, "EcsPlain"))}
                ]}]
            }),
        ),
        planted_record(
            4,
            "codebuild.amazonaws.com",
            "StartBuild",
            &serde_json::json!({
                "projectName": "release",
                "environmentVariablesOverride": [
                    {"name": "NPM_TOKEN", "value": take(s(17, "Npm")), "type": "PLAINTEXT"},
                    {"name": "SIGNING", "value": take(s(18, "Sign")), "type": "PLAINTEXT"}
                ]
            }),
        ),
        planted_record(
            5,
            "glue.amazonaws.com",
            "CreateConnection",
            &serde_json::json!({
                "connectionInput": {"name": "warehouse", "connectionProperties": {
                    "PASSWORD": take(s(19, "GluePw")),
                    "JDBC_CONNECTION_URL": format!(
                        "jdbc:mysql://db.internal:3306/dw?user=etl&password={}",
                        take(s(20, "Jdbc"))
                    )
                }}
            }),
        ),
        planted_record(
            6,
            "secretsmanager.amazonaws.com",
            "CreateSecret",
            &serde_json::json!({
                "name": "prod/api", "secretString": take(s(21, "SmStr"))
            }),
        ),
        planted_record(
            7,
            "secretsmanager.amazonaws.com",
            "PutSecretValue",
            &serde_json::json!({
                "secretId": "prod/api", "secretString": format!("{{\"password\":\"{}\"}}", take(s(22, "SmJs")))
            }),
        ),
        planted_record(
            8,
            "rds.amazonaws.com",
            "CreateDBInstance",
            &serde_json::json!({
                "dBInstanceIdentifier": "orders", "masterUsername": "admin",
                "masterUserPassword": take(s(23, "RdsPw"))
            }),
        ),
        planted_record(
            9,
            "rds.amazonaws.com",
            "ModifyDBInstance",
            &serde_json::json!({
                "dBInstanceIdentifier": "orders", "masterUserPassword": take(s(24, "RdsMod"))
            }),
        ),
        planted_record(
            10,
            "cloudformation.amazonaws.com",
            "CreateStack",
            &serde_json::json!({
                "stackName": "app", "parameters": [
                    {"parameterKey": "DbPassword", "parameterValue": take(s(25, "CfnPw"))},
                    {"parameterKey": "Plain", "parameterValue": take(s(26, "CfnPlain"))}
                ]
            }),
        ),
        planted_record(
            11,
            "ec2.amazonaws.com",
            "RunInstances",
            &serde_json::json!({
                "instancesSet": {"items": [{"imageId": "ami-0abc"}]},
                "userData": user_data
            }),
        ),
        planted_record(
            12,
            "ec2.amazonaws.com",
            "RunInstances",
            &serde_json::json!({
                "instancesSet": {"items": [{"imageId": "ami-0abc"}]},
                "userData": user_data_b64
            }),
        ),
        planted_record(
            13,
            "s3.amazonaws.com",
            "CreateBucket",
            &serde_json::json!({
                "bucketName": format!("backup-{}", take(format!("ghp_{}", s(27, "Bk"))))
            }),
        ),
        planted_record(
            14,
            "iam.amazonaws.com",
            "CreateUser",
            &serde_json::json!({
                "userName": "svc", "tags": [{"key": "note", "value": take(s(28, "Tag"))}]
            }),
        ),
        planted_record(
            15,
            "sts.amazonaws.com",
            "GetCallerIdentity",
            &serde_json::json!({
                take(s(29, "KeyAsKey")): "x"
            }),
        ),
        planted_record(
            16,
            "kms.amazonaws.com",
            "Sign",
            &serde_json::json!({
                "keyId": "alias/signing",
                "signature": take("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned())
            }),
        ),
    ];
    let mut records = records;
    // Free text that is kept: error messages and user agents.
    let mut failed = planted_record(
        17,
        "rds.amazonaws.com",
        "CreateDBInstance",
        &serde_json::json!({}),
    );
    failed["errorCode"] = "InvalidParameterValue".into();
    failed["errorMessage"] = format!(
        "cannot connect to postgres://app:{}@db.internal:5432/prod with token {}",
        take(s(30, "UrlPw")),
        take(format!("sk_live_{}", s(31, "Err")))
    )
    .into();
    records.push(failed);
    let mut agent = planted_record(
        18,
        "iam.amazonaws.com",
        "CreateAccessKey",
        &serde_json::json!({"userName": "svc"}),
    );
    agent["userAgent"] = format!(
        "deploy-bot/1.0 token={} glpat-{}",
        take(s(32, "UaTok")),
        take(s(33, "UaGl"))
    )
    .into();
    records.push(agent);
    let mut hex = planted_record(
        19,
        "iam.amazonaws.com",
        "CreateUser",
        &serde_json::json!({"userName": "svc2"}),
    );
    hex["errorCode"] = "AccessDenied".into();
    hex["errorMessage"] = format!(
        "signature {} rejected",
        take("a3bf4f1b2b0b822cd15d6c15b0f00a089f86d081884c7d659a2feaa0c55ad015".to_owned())
    )
    .into();
    records.push(hex);
    // More in places rules look at but never keep.
    for n in 34..=44 {
        records.push(planted_record(
            n,
            "secretsmanager.amazonaws.com",
            "GetSecretValue",
            &serde_json::json!({
                "secretId": format!("app/{n}"),
                "versionStage": "AWSCURRENT",
                "clientRequestToken": take(s(n, "Crt")),
            }),
        ));
    }
    let secrets = secrets.into_iter().map(|s| s.replace("\\n", "")).collect();
    (records, secrets)
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Every 12-character window of every secret (and the secret whole).
fn windows(secrets: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for secret in secrets {
        let chars: Vec<char> = secret.chars().collect();
        for at in 0..=chars.len().saturating_sub(12) {
            out.push((
                secret.clone(),
                chars[at..(at + 12).min(chars.len())].iter().collect(),
            ));
        }
    }
    out
}

/// The records broken in five ways: cut short, an unterminated string, a field of the wrong
/// type, the record as an escaped JSON string, and a byte that is not UTF-8.
fn broken(records: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        let text = record.to_string();
        let cut = &text[..text.len() * 6 / 10];
        out.extend_from_slice(cut.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(format!("{}\"\n", &text[..text.len() - 2]).as_bytes());
        let mut wrong = record.clone();
        wrong["eventTime"] = 5.into();
        out.extend_from_slice(wrong.to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(Value::String(text.clone()).to_string().as_bytes());
        out.push(b'\n');
        let mut bytes = text.into_bytes();
        let at = bytes.len() / 2;
        bytes.insert(at, 0xff);
        out.extend_from_slice(&bytes);
        out.push(b'\n');
    }
    out
}

/// Issue 15, done-when 1: no planted secret, nor any 12 characters of one, in any output
/// format, the quarantine file or the logs, whether the record is valid, broken, or in a
/// damaged file.
#[test]
fn planted_secrets_reach_no_output_quarantine_or_log() {
    use std::io::Write as _;
    let (records, secrets) = planted();
    assert!(secrets.len() >= 40, "{} secrets", secrets.len());
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let valid: String = records.iter().map(|r| r.to_string() + "\n").collect();
    let log_file = serde_json::json!({ "Records": records }).to_string();
    let gz = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
        encoder.write_all(bytes).unwrap_or_default();
        encoder.finish().unwrap_or_default()
    };
    let whole = gz(log_file.as_bytes());
    let mut bad_crc = whole.clone();
    let crc_at = bad_crc.len() - 6;
    bad_crc[crc_at] ^= 0xff;
    let files: [(&str, Vec<u8>); 5] = [
        ("valid.jsonl", valid.into_bytes()),
        ("broken.jsonl", broken(&records)),
        ("cut.json.gz", whole[..whole.len() * 9 / 10].to_vec()),
        ("crc.json.gz", bad_crc),
        ("bom.json", format!("\u{feff}{log_file}").into_bytes()),
    ];
    let mut args: Vec<String> = vec!["replay".into()];
    for (name, bytes) in &files {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap_or_default();
        args.push(path.display().to_string());
    }
    let needles = windows(&secrets);
    let mut quarantined = 0;
    for format in ["slack", "html", "audit", "text"] {
        let quarantine = dir.path().join(format!("q-{format}.jsonl"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args(&args)
            .args(["--format", format, "--quarantine"])
            .arg(&quarantine)
            .env("TRAILWATCH_LOG", "trace")
            .output()
            .unwrap_or_else(|err| panic!("cannot run trailwatch: {err}"));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let written = std::fs::read_to_string(&quarantine).unwrap_or_default();
        quarantined = written.lines().count();
        let outputs = [
            (format, String::from_utf8_lossy(&out.stdout).into_owned()),
            ("quarantine", written),
            ("log", stderr),
        ];
        for (what, text) in &outputs {
            for (secret, window) in &needles {
                assert!(
                    !text.contains(window.as_str()),
                    "{what} ({format}) holds {window:?} of {secret:?}"
                );
            }
        }
    }
    // Five broken forms of each record, and the two damaged files' notes, were quarantined.
    assert!(
        quarantined >= records.len() * 5 + 2,
        "{quarantined} quarantined"
    );
}

/// Issue 15, item 10: zero-width and bidi characters in event text show in every output
/// format (so `ad\u200bmin` cannot pass for `admin`), while the audit keeps the raw value.
#[test]
fn invisible_characters_show_in_messages_and_stay_raw_in_the_audit() {
    let mut record = planted_record(
        1,
        "iam.amazonaws.com",
        "CreateUser",
        &serde_json::json!({
            "userName": "ad\u{200b}min"
        }),
    );
    record["userIdentity"]["arn"] =
        "arn:aws:sts::111111111111:assumed-role/deployer/ja\u{2060}ne\u{202e}fdp.exe".into();
    let replayed = replay_bytes(
        &[format!("{record}\n").into_bytes()],
        settings(Lang::En, UTC),
    );
    for format in [Format::Slack, Format::Html, Format::Text] {
        let out = replayed.output(format);
        for shown in ["ad⟨U+200B⟩min", "ja⟨U+2060⟩ne⟨U+202E⟩fdp.exe"] {
            assert!(out.contains(shown), "{format:?} lacks {shown}: {out}");
        }
        for hidden in ['\u{200b}', '\u{2060}', '\u{202e}'] {
            assert!(!out.contains(hidden), "{format:?} holds {hidden:?}");
        }
    }
    // The audit is evidence: the performer as CloudTrail wrote it.
    let audit = replayed.output(Format::Audit);
    assert!(
        audit.contains("deployer/ja\u{2060}ne\u{202e}fdp.exe"),
        "{audit}"
    );
}

/// Issue 15, item 6: an event dated in year 9999 is placed at the engine's current time (the
/// latest event time in replay) and marked so; the events after it are not late.
#[test]
fn an_event_dated_far_in_the_future_is_placed_now_and_marked() {
    let at = |n: usize, time: &str| {
        let mut record = planted_record(
            n,
            "iam.amazonaws.com",
            "CreateUser",
            &serde_json::json!({
                "userName": format!("user-{n}")
            }),
        );
        record["eventTime"] = time.into();
        format!("{record}\n")
    };
    let input = [
        at(1, "2026-11-02T03:00:00Z"),
        at(2, "9999-12-31T23:59:59Z"),
        at(3, "2026-11-02T03:04:00Z"),
    ]
    .concat();
    // As they arrive (the Lambda's case): the third would have been late.
    let replayed = replay_bytes(&[input.into_bytes()], settings(Lang::En, UTC));
    assert_eq!((replayed.stats.future_dated, replayed.stats.late), (1, 0));
    let audit = replayed.output(Format::Audit);
    assert!(
        audit.contains("dated 9999-12-31T23:59:59Z, in the future: placed at 2026-11-02T03:00:00Z"),
        "{audit}"
    );
    assert!(
        !audit.contains("9999-12-31T23:59:59Z\",\"late\""),
        "{audit}"
    );
    assert_eq!(replayed.stats.matched, 3);
}

/// Issue 15, item 7: two records with one event id but different content (another account,
/// another event name) are counted as conflicting duplicates, and the one kept is the first in
/// event-time order whatever the input order; a plain redelivery is a duplicate only.
#[test]
fn conflicting_duplicates_are_counted_and_the_kept_one_does_not_depend_on_order() {
    let record = |account: &str, name: &str, time: &str| {
        let mut r = planted_record(
            1,
            "iam.amazonaws.com",
            name,
            &serde_json::json!({"userName": "x"}),
        );
        r["recipientAccountId"] = account.into();
        r["eventTime"] = time.into();
        format!("{r}\n")
    };
    let first = record("111111111111", "CreateUser", "2026-11-02T03:00:00Z");
    let other = record("222222222222", "DeleteUser", "2026-11-02T03:00:05Z");
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let mut audits = Vec::new();
    for (n, lines) in [[&first, &other, &first], [&other, &first, &first]]
        .iter()
        .enumerate()
    {
        let path = dir.path().join(format!("dup-{n}.jsonl"));
        std::fs::write(&path, lines.iter().map(|l| l.as_str()).collect::<String>())
            .unwrap_or_default();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
            .args([
                "replay",
                path.to_str().unwrap_or_default(),
                "--format",
                "audit",
            ])
            .output()
            .unwrap_or_else(|err| panic!("{err}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(" duplicates=2 conflicting_duplicates=1 "),
            "{stderr}"
        );
        assert!(
            stderr.contains("share an event id but differ"),
            "both digests logged: {stderr}"
        );
        audits.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    assert_eq!(
        audits[0], audits[1],
        "the kept record depends on input order"
    );
    assert!(
        audits[0].contains("\"name\":\"CreateUser\""),
        "{}",
        audits[0]
    );
    assert!(!audits[0].contains("DeleteUser"), "{}", audits[0]);
}

/// Issue 16 (trust): the account of an enveloped event is the one EventBridge stamped on the
/// envelope, not the `recipientAccountId` its payload claims (counted when they differ); with
/// `[trust] accounts` set, an event of any other account is quarantined and counted.
#[test]
fn the_envelope_account_wins_and_untrusted_accounts_are_quarantined() {
    let record = planted_record(
        1,
        "iam.amazonaws.com",
        "CreateUser",
        &serde_json::json!({
            "userName": "mallory"
        }),
    );
    let mut claimed = record.clone();
    claimed["recipientAccountId"] = "999999999999".into();
    let envelope = serde_json::json!({
        "version": "0", "id": "env-1", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam", "account": "111111111111", "time": "2026-11-02T03:00:00Z",
        "region": "us-east-1", "resources": [], "detail": claimed
    });
    let mut outsider = record.clone();
    outsider["eventID"] = "planted-2".into();
    outsider["recipientAccountId"] = "333333333333".into();
    let input = format!("{envelope}\n{outsider}\n").into_bytes();

    let mut trusting = settings(Lang::En, UTC);
    trusting
        .trust
        .accounts
        .insert(trailwatch::event::AccountId::new("111111111111"));
    let replayed = replay_bytes(std::slice::from_ref(&input), trusting);
    let stats = replayed.stats;
    assert_eq!(
        (stats.account_mismatches, stats.untrusted, stats.quarantined),
        (1, 1, 1)
    );
    assert_eq!(
        stats.read,
        stats.decoded + stats.quarantined + stats.skipped
    );
    let audit = replayed.output(Format::Audit);
    assert!(audit.contains("\"account\":\"111111111111\""), "{audit}");
    assert!(!audit.contains("999999999999"), "{audit}");
    assert!(
        replayed.quarantined[0].reason.contains("333333333333"),
        "{:?}",
        replayed.quarantined
    );

    // No list configured: every account is taken (replay of anyone's files).
    let open = replay_bytes(&[input], settings(Lang::En, UTC));
    assert_eq!(
        (
            open.stats.untrusted,
            open.stats.quarantined,
            open.stats.matched
        ),
        (0, 0, 2)
    );
}
