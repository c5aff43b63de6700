use std::error::Error as _;

use super::*;
use crate::event::{EventKind, RawJson};

fn api(source: &'static str, name: &'static str) -> Facts<'static> {
    Facts {
        kind: EventKind::ApiCall,
        source,
        name,
        error_code: None,
        identity_type: Some("AssumedRole"),
        read_only: Some(false),
        mfa_used: None,
        login_result: None,
        state: None,
        user_agent: Some("aws-cli/2.17.32"),
        role_name: Some("deployer"),
        user_name: None,
        invoked_by: None,
        account: "111111111111",
        region: "us-east-1",
        source_ip: Some("198.51.100.7"),
        console_session: None,
        request: None,
        response: None,
        additional: None,
        resources: None,
    }
}

fn matched_id(pack: &RulePack, facts: &Facts<'_>) -> Option<String> {
    match pack.evaluate(facts) {
        Verdict::Matched(rule) => Some(rule.id.clone()),
        _ => None,
    }
}

/// The error and all its causes, as an operator would read them.
fn chain(err: &RulesError) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[test]
fn builtin_pack_parses() {
    let pack = RulePack::try_builtin().unwrap();
    assert!(pack.rules().len() >= 30, "{} rules", pack.rules().len());
    for rule in pack.rules() {
        assert!(rule.titles.has(Lang::Ko), "{} has no Korean title", rule.id);
    }
    for rule in pack.ignore_rules() {
        assert!(rule.titles.has(Lang::Ko), "{} has no Korean title", rule.id);
    }
    // Every CIS CloudWatch monitoring control 1..=14 is covered.
    for n in 1..=14 {
        let tag = format!("CIS CloudWatch.{n}");
        assert!(
            pack.rules().iter().any(|r| r.tags.contains(&tag)),
            "no rule tagged {tag}"
        );
    }
    assert_eq!(RulePack::builtin().rules().len(), pack.rules().len());
}

#[test]
fn builtin_verdicts() {
    let pack = RulePack::builtin();
    assert_eq!(
        matched_id(&pack, &api("iam.amazonaws.com", "CreateUser")).as_deref(),
        Some("iam-user-changed")
    );
    assert_eq!(
        matched_id(&pack, &api("iam.amazonaws.com", "ListUsers")),
        None
    );
    assert_eq!(
        matched_id(&pack, &api("s3.amazonaws.com", "GetObject")),
        None
    );
    assert_eq!(
        matched_id(&pack, &api("apigateway.amazonaws.com", "CreateRoute")),
        None
    );
    assert_eq!(
        matched_id(&pack, &api("ec2.amazonaws.com", "CreateRoute")).as_deref(),
        Some("route-table-changed")
    );

    let stop = pack.evaluate(&api("cloudtrail.amazonaws.com", "StopLogging"));
    let Verdict::Matched(rule) = stop else {
        panic!("StopLogging unmatched")
    };
    assert_eq!((rule.severity, rule.immediate), (Severity::Red, true));

    let terminated = Facts {
        kind: EventKind::StateChange,
        state: Some("terminated"),
        ..api("ec2.amazonaws.com", "InstanceStateChange")
    };
    assert_eq!(
        matched_id(&pack, &terminated).as_deref(),
        Some("ec2-instance-terminated")
    );
    assert_eq!(
        matched_id(
            &pack,
            &Facts {
                state: Some("running"),
                ..terminated
            }
        ),
        None
    );

    let root = Facts {
        identity_type: Some("Root"),
        read_only: Some(true),
        ..api("s3.amazonaws.com", "ListBuckets")
    };
    assert_eq!(matched_id(&pack, &root).as_deref(), Some("root-usage"));
    let by_service = Facts {
        invoked_by: Some("cloudformation.amazonaws.com"),
        ..root
    };
    assert_eq!(matched_id(&pack, &by_service), None);
    let service_event = Facts {
        kind: EventKind::ServiceEvent,
        ..root
    };
    assert_eq!(matched_id(&pack, &service_event), None);

    let root_login = Facts {
        kind: EventKind::ConsoleSignIn,
        mfa_used: Some("No"),
        login_result: Some("Success"),
        ..Facts {
            identity_type: Some("Root"),
            ..api("signin.amazonaws.com", "ConsoleLogin")
        }
    };
    assert_eq!(
        matched_id(&pack, &root_login).as_deref(),
        Some("root-console-sign-in-without-mfa")
    );
}

#[test]
fn worst_severity_wins_then_immediate_then_order() {
    // A denied StopLogging is both "unauthorized write" (yellow) and "trail stopped" (red).
    let pack = RulePack::builtin();
    let denied_stop = Facts {
        error_code: Some("AccessDenied"),
        ..api("cloudtrail.amazonaws.com", "StopLogging")
    };
    assert_eq!(
        matched_id(&pack, &denied_stop).as_deref(),
        Some("cloudtrail-stopped")
    );
    // A denied CreateUser: "IAM user changed" and "repeated denied changes" are both yellow;
    // the rule without a threshold wins, so the attempt is reported, not merely counted.
    let denied = Facts {
        error_code: Some("AccessDenied"),
        ..api("iam.amazonaws.com", "CreateUser")
    };
    assert_eq!(
        matched_id(&pack, &denied).as_deref(),
        Some("iam-user-changed")
    );

    let pack = RulePack::from_toml(
        r#"
[[rule]]
id = "first-yellow"
title = "a"
severity = "yellow"
match = { name = "X*" }
[[rule]]
id = "red"
title = "b"
severity = "red"
match = { name = "XY" }
[[rule]]
id = "red-immediate"
title = "c"
severity = "red"
immediate = true
match = { name = "*Z" }
[[rule]]
id = "second-yellow"
title = "d"
severity = "yellow"
match = { source = "s", name = "XQ" }
"#,
    )
    .unwrap();
    let facts = |name| api("s", name);
    assert_eq!(matched_id(&pack, &facts("XY")).as_deref(), Some("red"));
    assert_eq!(
        matched_id(&pack, &facts("XYZ")).as_deref(),
        Some("red-immediate")
    );
    assert_eq!(
        matched_id(&pack, &facts("XQ")).as_deref(),
        Some("first-yellow")
    );
    assert_eq!(matched_id(&pack, &facts("Q")), None);
}

#[test]
fn ignore_entries_come_first() {
    let pack = RulePack::builtin();
    let scan = Facts {
        read_only: Some(true),
        error_code: Some("AccessDenied"),
        user_agent: Some("Boto3/1.34 prowler/4.2.1"),
        ..api("iam.amazonaws.com", "GetAccountAuthorizationDetails")
    };
    assert!(
        matches!(pack.evaluate(&scan), Verdict::Ignored(r) if r.id == "ignore-scanner-denied-reads")
    );
    // The same scanner trying a change is not noise: it counts towards repeated denied
    // changes.
    let write = Facts {
        read_only: Some(false),
        ..scan
    };
    assert_eq!(
        matched_id(&pack, &write).as_deref(),
        Some("unauthorized-writes-repeated")
    );
    // An ordinary client's denied read is CIS CloudWatch.2, green.
    let read = Facts {
        user_agent: Some("aws-cli/2"),
        ..scan
    };
    assert_eq!(
        matched_id(&pack, &read).as_deref(),
        Some("unauthorized-api-call")
    );

    // An ignore beats even a red immediate rule.
    let pack = RulePack::from_toml(
        r#"
[[rule]]
id = "r"
title = "r"
severity = "red"
immediate = true
match = { name = "StopLogging" }
[[ignore]]
id = "i"
title = "i"
match = { role_name = "break-glass-*" }
"#,
    )
    .unwrap();
    let stop = api("cloudtrail.amazonaws.com", "StopLogging");
    assert!(matches!(pack.evaluate(&stop), Verdict::Matched(_)));
    assert!(matches!(
        pack.evaluate(&Facts { role_name: Some("break-glass-admin"), ..stop }),
        Verdict::Ignored(r) if r.id == "i" && r.severity == Severity::Green
    ));
}

#[test]
fn index_finds_rules_by_source_by_name_and_without_source() {
    let pack = RulePack::from_toml(
        r#"
[[rule]]
id = "exact"
title = "t"
severity = "green"
match = { source = ["a.amazonaws.com", "b.amazonaws.com"], name = ["N", "M"] }
[[rule]]
id = "glob-name"
title = "t"
severity = "green"
match = { source = "a.amazonaws.com", name = "G*" }
[[rule]]
id = "glob-source"
title = "t"
severity = "green"
match = { source = "c*", name = "N" }
[[rule]]
id = "no-source"
title = "t"
severity = "green"
match = { user_name = "bob" }
"#,
    )
    .unwrap();
    let id = |source, name| matched_id(&pack, &api(source, name));
    assert_eq!(id("a.amazonaws.com", "N").as_deref(), Some("exact"));
    assert_eq!(id("b.amazonaws.com", "M").as_deref(), Some("exact"));
    assert_eq!(id("b.amazonaws.com", "G1"), None);
    assert_eq!(id("a.amazonaws.com", "G1").as_deref(), Some("glob-name"));
    assert_eq!(id("c.amazonaws.com", "N").as_deref(), Some("glob-source"));
    assert_eq!(id("z.amazonaws.com", "N"), None);
    let bob = Facts {
        user_name: Some("bob"),
        ..api("z.amazonaws.com", "Anything")
    };
    assert_eq!(matched_id(&pack, &bob).as_deref(), Some("no-source"));
}

#[test]
fn bad_packs_are_refused_with_the_rule_and_key_named() {
    let rule = |body: &str| format!("[[rule]]\nid = \"bad-one\"\ntitle = \"t\"\n{body}\n");
    let cases: [(String, &[&str]); 9] = [
        (
            rule("severity = \"purple\"\nmatch = { name = \"X\" }"),
            &["bad-one", "purple", "red"],
        ),
        (
            rule("severity = \"red\"\nimmediate = \"yes\"\nmatch = { name = \"X\" }"),
            &["bad-one", "immediate", "boolean"],
        ),
        (
            rule("severity = \"red\"\nnmae = \"X\"\nmatch = { name = \"X\" }"),
            &["bad-one", "nmae", "expected one of"],
        ),
        (rule("severity = \"red\""), &["bad-one", "match"]),
        (
            rule("severity = \"red\"\nmatch = {}"),
            &["bad-one", "empty"],
        ),
        (
            rule("severity = \"red\"\nmatch = { name = 7 }"),
            &["bad-one", "`name`", "glob string", "integer 7"],
        ),
        (
            rule("severity = \"red\"\nmatch = { detail_type = \"AWS API Call\" }"),
            &[
                "bad-one",
                "detail-type \"AWS API Call\"",
                "AWS API Call via CloudTrail",
            ],
        ),
        (
            format!(
                "{}{}",
                rule("severity = \"red\"\nmatch = { name = \"X\" }"),
                rule("severity = \"red\"\nmatch = { name = \"Y\" }")
            ),
            &["bad-one", "more than once"],
        ),
        (
            "[[rules]]\nid = \"x\"".to_owned(),
            &["rules", "not valid TOML"],
        ),
    ];
    for (text, needles) in cases {
        let err = RulePack::from_toml(&text).expect_err(&text);
        let msg = chain(&err);
        for needle in needles {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
    }
    let no_id = "[[rule]]\ntitle = \"t\"\nseverity = \"red\"\nmatch = { name = \"X\" }";
    let msg = chain(&RulePack::from_toml(no_id).unwrap_err());
    assert!(msg.contains("#1") && msg.contains("id"), "{msg}");
    assert!(matches!(
        RulePack::from_toml("[[ignore]]\nid = \"i\"\ntitle = \"t\"\nmatch = { name = \"X\" }"),
        Err(RulesError::NoRules)
    ));
    assert!(matches!(
        RulePack::from_toml("not toml ="),
        Err(RulesError::Syntax(_))
    ));
}

#[test]
fn load_reads_a_file_and_names_it_on_failure() {
    let err = RulePack::load("/nonexistent/rules.toml").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/rules.toml"));
    let dir = std::env::temp_dir().join(format!("trailwatch-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pack.toml");
    std::fs::write(&path, DEFAULT_PACK).unwrap();
    assert_eq!(
        RulePack::load(&path).unwrap().rules().len(),
        RulePack::builtin().rules().len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What `evaluate` must answer, without the index: every entry tried.
fn verdict_without_index(pack: &RulePack, facts: &Facts<'_>) -> Option<(bool, String)> {
    if let Some(e) = pack.ignores.iter().find(|e| e.matcher.matches(facts)) {
        return Some((true, e.rule.id.clone()));
    }
    pack.entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.matcher.matches(facts))
        .max_by_key(|(i, e)| (e.rule.severity, e.rule.immediate, std::cmp::Reverse(*i)))
        .map(|(_, e)| (false, e.rule.id.clone()))
}

#[test]
fn the_index_answers_like_trying_every_entry() {
    let pack = RulePack::builtin();
    let mut sources = vec!["unknown.amazonaws.com", "ec2.amazonaws.com"];
    let mut names = vec!["Unknown", "DescribeInstances", "CreateUser"];
    for text in include_str!("default.toml").split('"') {
        if text.ends_with(".amazonaws.com") {
            sources.push(text);
        } else if text.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && text.chars().all(|c| c.is_ascii_alphanumeric())
        {
            names.push(text);
        }
    }
    let mut compared = 0;
    for &source in &sources {
        for &name in &names {
            for error_code in [
                None,
                Some("AccessDenied"),
                Some("Client.UnauthorizedOperation"),
            ] {
                for (identity_type, read_only) in [("Root", false), ("AssumedRole", true)] {
                    for kind in [EventKind::ApiCall, EventKind::ConsoleSignIn] {
                        let facts = Facts {
                            kind,
                            error_code,
                            identity_type: Some(identity_type),
                            read_only: Some(read_only),
                            mfa_used: Some("No"),
                            user_agent: Some("prowler"),
                            invoked_by: None,
                            ..api(source, name)
                        };
                        let indexed = match pack.evaluate(&facts) {
                            Verdict::Ignored(rule) => Some((true, rule.id.clone())),
                            Verdict::Matched(rule) => Some((false, rule.id.clone())),
                            Verdict::Unmatched => None,
                        };
                        assert_eq!(indexed, verdict_without_index(&pack, &facts), "{facts:?}");
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 1_000, "{compared}");
}

#[test]
fn title_ko_names_the_form_that_replaced_it() {
    let err = RulePack::from_toml(
        r#"
[[rule]]
id = "root"
title = "Root used"
title_ko = "루트 계정 사용"
severity = "red"
[rule.match]
identity_type = "Root"
"#,
    )
    .unwrap_err();
    assert!(matches!(err, RulesError::TitleKo { .. }), "{err:?}");
    assert_eq!(
        chain(&err),
        r#"[[rule]] root: `title_ko` is no longer read; give the titles by language: title = { en = "…", ko = "…" }"#
    );
}

#[test]
fn a_rule_stored_with_title_ko_reads_back_with_its_korean_title() {
    let stored = r#"{"id":"root","title":"Root used","title_ko":"루트 계정 사용","severity":"red","immediate":true,"tags":[]}"#;
    let rule: Rule = serde_json::from_str(stored).unwrap();
    assert_eq!(rule.title(Lang::En), "Root used");
    assert_eq!(rule.title(Lang::Ko), "루트 계정 사용");
    let again: Rule = serde_json::from_str(&serde_json::to_string(&rule).unwrap()).unwrap();
    assert_eq!(again, rule);
}

/// A call with these request parameters.
fn call(source: &'static str, name: &'static str, request: &'static str) -> Facts<'static> {
    Facts {
        request: Some(RawJson::new(request)),
        ..api(source, name)
    }
}

#[test]
fn tamper_rules_meet_trailwatch_s_names_in_every_form() {
    let pack = RulePack::builtin();
    let cases = [
        (
            "events.amazonaws.com",
            "DeleteRule",
            r#"{"name":"TrailwatchCentral-BusToStreamRule1A2B3C4D-0EF5GH6IJ7KL"}"#,
            "trailwatch-rule-tampered",
        ),
        (
            "events.amazonaws.com",
            "DisableRule",
            r#"{"name":"trailwatch-to-stream","eventBusName":"trailwatch"}"#,
            "trailwatch-rule-tampered",
        ),
        (
            "events.amazonaws.com",
            "PutPermission",
            r#"{"eventBusName":"arn:aws:events:ap-northeast-2:444444444444:event-bus/trailwatch","policy":"{}"}"#,
            "trailwatch-bus-policy-changed",
        ),
        (
            "lambda.amazonaws.com",
            "UpdateFunctionCode20150331v2",
            r#"{"functionName":"arn:aws:lambda:ap-northeast-2:444444444444:function:trailwatch:live"}"#,
            "trailwatch-function-changed",
        ),
        (
            "lambda.amazonaws.com",
            "DeleteFunction20150331",
            r#"{"functionName":"444444444444:function:trailwatch"}"#,
            "trailwatch-function-changed",
        ),
        (
            "lambda.amazonaws.com",
            "PutFunctionConcurrency20171031",
            r#"{"functionName":"trailwatch:live","reservedConcurrentExecutions":0}"#,
            "trailwatch-function-changed",
        ),
        (
            "cloudformation.amazonaws.com",
            "DeleteStack",
            r#"{"stackName":"StackSet-trailwatch-member-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"}"#,
            "trailwatch-stack-changed",
        ),
        (
            "cloudformation.amazonaws.com",
            "DeleteStack",
            r#"{"stackName":"arn:aws:cloudformation:us-east-1:111111111111:stack/TrailwatchMember-111111111111-us-east-1/5f0e1d2c-3b4a-5968-7766-554433221100"}"#,
            "trailwatch-stack-changed",
        ),
        (
            "cloudformation.amazonaws.com",
            "UpdateStackSet",
            r#"{"stackSetName":"trailwatch-member:3b9c0d1e-2f3a-4b5c-6d7e-8f9a0b1c2d3e"}"#,
            "trailwatch-stackset-changed",
        ),
        (
            "dynamodb.amazonaws.com",
            "UpdateTable",
            r#"{"tableName":"arn:aws:dynamodb:ap-northeast-2:444444444444:table/trailwatch","deletionProtectionEnabled":false}"#,
            "trailwatch-table-changed",
        ),
        (
            "iam.amazonaws.com",
            "AttachRolePolicy",
            r#"{"roleName":"TrailwatchCentral-LambdaRole3A44B857-1A2B3C4D5E6F","policyArn":"arn:aws:iam::aws:policy/AWSDenyAll"}"#,
            "trailwatch-role-changed",
        ),
    ];
    for (source, name, request, rule) in cases {
        let Verdict::Matched(met) = pack.evaluate(&call(source, name, request)) else {
            panic!("{name} {request} unmatched");
        };
        assert_eq!(met.id, rule, "{name} {request}");
        assert_eq!((met.severity, met.immediate), (Severity::Red, true));
    }
}

#[test]
fn tamper_rules_leave_names_that_only_look_like_trailwatch_s() {
    let pack = RulePack::builtin();
    let near_misses = [
        (
            "events.amazonaws.com",
            "DisableRule",
            r#"{"name":"orders-trailwatch-forward"}"#,
        ),
        (
            "events.amazonaws.com",
            "DisableRule",
            r#"{"name":"trailwatchforward"}"#,
        ),
        (
            "events.amazonaws.com",
            "DisableRule",
            r#"{"name":"Trailwatch-forward-1"}"#,
        ),
        (
            "events.amazonaws.com",
            "DisableRule",
            r#"{"eventBusName":"trailwatch","rule":"trailwatch-forward-1","name":"orders"}"#,
        ),
        ("events.amazonaws.com", "DisableRule", "null"),
        (
            "events.amazonaws.com",
            "EnableRule",
            r#"{"name":"trailwatch-forward-1"}"#,
        ),
        (
            "events.amazonaws.com",
            "PutPermission",
            r#"{"action":"events:PutEvents","principal":"999999999999"}"#,
        ),
        (
            "events.amazonaws.com",
            "PutPermission",
            r#"{"eventBusName":"trailwatch-dev"}"#,
        ),
        (
            "lambda.amazonaws.com",
            "DeleteFunction20150331",
            r#"{"functionName":"trailwatch-canary"}"#,
        ),
        (
            "lambda.amazonaws.com",
            "DeleteFunction20150331",
            r#"{"functionName":"arn:aws:lambda:us-east-1:444444444444:function:trailwatch-canary"}"#,
        ),
        (
            "cloudformation.amazonaws.com",
            "DeleteStack",
            r#"{"stackName":"TrailwatchCentralCopy"}"#,
        ),
        (
            "cloudformation.amazonaws.com",
            "DeleteStack",
            r#"{"stackName":"arn:aws:cloudformation:us-east-1:111111111111:stack/orders/TrailwatchCentral"}"#,
        ),
        (
            "iam.amazonaws.com",
            "PutRolePermissionsBoundary",
            r#"{"roleName":"orders-trailwatch-reader"}"#,
        ),
    ];
    for (source, name, request) in near_misses {
        let met = matched_id(&pack, &call(source, name, request));
        assert!(
            !met.as_deref()
                .is_some_and(|id| id.starts_with("trailwatch-")),
            "{name} {request}: {met:?}"
        );
    }
}
