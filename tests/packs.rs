//! Rule packs switched on by name (`[rules] packs`), and trailwatch's own calls ignored
//! (issue 18).

mod common;

use serde_json::json;
use trailwatch::Severity;
use trailwatch::config::Settings;
use trailwatch::rules::{RulePack, Verdict, event_pattern};
use trailwatch::summary::Lang;

/// A call, with `extra` fields merged into the record.
fn call(id: &str, source: &str, name: &str, extra: &serde_json::Value) -> String {
    let mut record = json!({
        "eventVersion": "1.09", "eventID": id, "eventTime": "2026-11-02T03:01:00Z",
        "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
        "recipientAccountId": "111111111111", "sourceIPAddress": "198.51.100.7",
        "userAgent": "Mozilla/5.0", "readOnly": false, "eventType": "AwsApiCall",
        "userIdentity": {"type": "AssumedRole", "accountId": "111111111111",
            "arn": "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123/jane@example.com",
            "sessionContext": {"sessionIssuer": {"type": "Role",
                "userName": "AWSReservedSSO_Admin_0123"}}},
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        record[k] = v.clone();
    }
    record.to_string()
}

/// The rule and colour each event got, with these packs.
fn verdicts(packs: &[&str], lines: &[String]) -> Vec<(String, Option<(String, Severity)>)> {
    let pack = RulePack::named(packs).unwrap_or_else(|err| panic!("{err}"));
    let deliveries = common::replay_bytes_with(
        &[lines.join("\n").into_bytes()],
        common::settings(Lang::En, chrono_tz::UTC),
        pack,
    );
    lines
        .iter()
        .map(|line| {
            let id = serde_json::from_str::<serde_json::Value>(line).unwrap_or_default()["eventID"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let got = deliveries
                .iter()
                .flat_map(|d| &d.batch.events)
                .find(|e| e.event.id.as_str() == id)
                .map(|e| (e.rule.id.clone(), e.rule.severity));
            (id, got)
        })
        .collect()
}

fn console() -> serde_json::Value {
    json!({"sessionCredentialFromConsole": "true"})
}

#[test]
fn clickops_reports_every_successful_console_change_and_nothing_else() {
    let lines = [
        call(
            "route",
            "apigateway.amazonaws.com",
            "CreateRoute",
            &console(),
        ),
        call(
            "denied",
            "apigateway.amazonaws.com",
            "CreateRoute",
            &json!({"sessionCredentialFromConsole": "true", "errorCode": "AccessDenied"}),
        ),
        call(
            "read",
            "apigateway.amazonaws.com",
            "GetRoutes",
            &json!({"sessionCredentialFromConsole": "true", "readOnly": true}),
        ),
        call("cli", "apigateway.amazonaws.com", "CreateRoute", &json!({})),
    ];
    let with = verdicts(&["default", "clickops"], &lines);
    assert_eq!(
        with[0].1,
        Some(("clickops-console-change".to_owned(), Severity::Yellow))
    );
    assert_ne!(
        with[1].1.as_ref().map(|r| r.0.as_str()),
        Some("clickops-console-change")
    );
    assert_eq!(with[2].1, None, "a read");
    assert_eq!(with[3].1, None, "not from the console");
    let without = verdicts(&["default"], &lines);
    assert_eq!(without[0].1, None, "the default pack alone says nothing");
}

#[test]
fn all_changes_lists_every_successful_write_and_the_default_rules_still_colour() {
    let lines = [
        call(
            "route",
            "apigateway.amazonaws.com",
            "CreateRoute",
            &json!({}),
        ),
        call(
            "trail",
            "cloudtrail.amazonaws.com",
            "StopLogging",
            &json!({"requestParameters": {"name": "org-trail"}}),
        ),
        call(
            "read",
            "apigateway.amazonaws.com",
            "GetRoutes",
            &json!({"readOnly": true}),
        ),
    ];
    let got = verdicts(&["default", "all-changes"], &lines);
    assert_eq!(
        got[0].1,
        Some(("all-changes-write".to_owned(), Severity::Green))
    );
    assert_eq!(
        got[1].1,
        Some(("cloudtrail-stopped".to_owned(), Severity::Red))
    );
    assert_eq!(got[2].1, None);
}

#[test]
fn packs_are_one_config_line_or_one_variable_and_a_wrong_name_is_named() {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[rules]\npacks = [\"default\", \"clickops\"]\n")
        .unwrap_or_else(|err| panic!("{err}"));
    let settings = Settings::load(Some(&path), &|_| None).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(settings.rules.packs(), ["default", "clickops"]);
    assert_eq!(Settings::default().rules.packs(), ["default"]);

    let env = |key: &str| (key == "TRAILWATCH_RULE_PACKS").then(|| "default, all-changes".into());
    let settings = Settings::load(None, &env).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(settings.rules.packs(), ["default", "all-changes"]);

    std::fs::write(&path, "[rules]\npacks = [\"default\", \"click-ops\"]\n")
        .unwrap_or_else(|err| panic!("{err}"));
    let err = Settings::load(Some(&path), &|_| None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("rules.packs[1]") && err.contains("clickops") && err.contains("click-ops"),
        "{err}"
    );
    let err = RulePack::named(&["nope"]).err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("\"nope\"")));
}

#[test]
fn the_member_pattern_forwards_what_the_packs_add() {
    let default =
        event_pattern(&RulePack::named(&["default"]).unwrap_or_else(|e| panic!("{e}"))).to_string();
    let clickops =
        event_pattern(&RulePack::named(&["default", "clickops"]).unwrap_or_else(|e| panic!("{e}")))
            .to_string();
    assert!(!default.contains("sessionCredentialFromConsole"));
    assert!(
        clickops.contains(r#""sessionCredentialFromConsole":["true"]"#),
        "{clickops}"
    );
}

/// trailwatch's own function role reading its Slack secret, asking Bedrock and writing its
/// table is ignored; the same role doing anything else is not.
#[test]
fn trailwatch_s_own_calls_are_ignored_and_nothing_else_of_its_role() {
    let pack = RulePack::builtin();
    let own = |id: &str, source: &str, name: &str| {
        call(
            id,
            source,
            name,
            &json!({"userIdentity": {"type": "AssumedRole", "accountId": "111111111111",
                "arn": "arn:aws:sts::111111111111:assumed-role/TrailwatchCentral-FunctionRoleA1B2C3D4-XYZ/trailwatch",
                "sessionContext": {"sessionIssuer": {"type": "Role",
                    "userName": "TrailwatchCentral-FunctionRoleA1B2C3D4-XYZ"}}},
                "userAgent": "aws-sdk-rust/1.3.0", "readOnly": true,
                "requestParameters": {"secretId": format!("trailwatch/slack-{id}")}}),
        )
    };
    let verdict = |line: &str| {
        let mut out = None;
        trailwatch::event::decode_bytes(line.as_bytes(), &mut |d| {
            if let trailwatch::event::Decoded::Record(r) = d {
                out = Some(pack.evaluate(&r.facts()));
            }
        });
        out.unwrap_or(Verdict::Unmatched)
    };
    for (source, name) in [
        ("bedrock.amazonaws.com", "Converse"),
        ("secretsmanager.amazonaws.com", "GetSecretValue"),
        ("dynamodb.amazonaws.com", "UpdateItem"),
    ] {
        assert!(
            matches!(verdict(&own("x", source, name)), Verdict::Ignored(r) if r.id == "ignore-trailwatch-own-calls"),
            "{name}"
        );
    }
    // Twelve secrets read by the role: ignored, so no "many secrets" alert.
    let reads: Vec<String> = (0..12)
        .map(|i| {
            own(
                &format!("s{i}"),
                "secretsmanager.amazonaws.com",
                "GetSecretValue",
            )
        })
        .collect();
    let replayed = common::replay_bytes(
        &[reads.join("\n").into_bytes()],
        common::settings(Lang::En, chrono_tz::UTC),
    );
    assert!(replayed.deliveries.is_empty());
    assert_eq!(replayed.stats.ignored, 12);
    // The same role deleting its table is tampering, not noise.
    let delete = own("d", "dynamodb.amazonaws.com", "DeleteTable");
    assert!(matches!(
        verdict(&delete),
        Verdict::Matched(_) | Verdict::Unmatched
    ));
    assert!(!matches!(verdict(&delete), Verdict::Ignored(_)));
}
