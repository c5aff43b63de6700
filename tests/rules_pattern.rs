//! The generated EventBridge pattern forwards exactly what the pack matches.
//!
//! The pattern is checked with a small EventBridge pattern evaluator written here (equals,
//! prefix, suffix, wildcard, exists, anything-but, nested objects, arrays, `$or`), against:
//! (a) an event synthesised for every rule (and every name it lists), (b) events the pack must
//! not match, (c) when present, every record of the TrailDiscover corpus.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "test fixtures")]

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};
use trailwatch::Severity;
use trailwatch::event::{Decoded, EventKind, decode_bytes};
use trailwatch::rules::{self, RulePack, Verdict, event_pattern, event_patterns};

// ------------------------------------------------------------------------------------------------
// A small EventBridge pattern evaluator.

/// Does `pattern` match `event`? `nodes` are the values at the same level as `pattern`: one
/// object, or every object of the arrays met on the way (EventBridge reads an array as each of
/// its elements).
fn pattern_matches(pattern: &Value, event: Option<&Value>) -> bool {
    let nodes: Vec<&Value> = event.into_iter().flat_map(flatten).collect();
    level_matches(pattern, &nodes)
}

fn flatten(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().flat_map(flatten).collect(),
        other => vec![other],
    }
}

fn level_matches(pattern: &Value, nodes: &[&Value]) -> bool {
    let Value::Object(fields) = pattern else {
        panic!("a pattern level must be an object: {pattern}");
    };
    fields.iter().all(|(key, expected)| {
        if key == "$or" {
            let branches = expected.as_array().expect("$or takes a list");
            assert!(!branches.is_empty(), "$or must not be empty");
            return branches.iter().any(|b| level_matches(b, nodes));
        }
        let children: Vec<&Value> = nodes
            .iter()
            .filter_map(|n| n.get(key))
            .flat_map(flatten)
            .collect();
        match expected {
            Value::Object(_) => {
                let objects: Vec<&Value> = children.into_iter().filter(|v| v.is_object()).collect();
                level_matches(expected, &objects)
            }
            Value::Array(ops) => {
                let leaves: Vec<&Value> = children.into_iter().filter(|v| !v.is_object()).collect();
                leaf_matches(ops, &leaves)
            }
            other => panic!("pattern value for {key} must be an object or a list: {other}"),
        }
    })
}

/// A leaf: any operator matches any of the values; `exists` asks whether there is one.
fn leaf_matches(ops: &[Value], leaves: &[&Value]) -> bool {
    ops.iter()
        .any(|op| match op.get("exists").and_then(Value::as_bool) {
            Some(want) => leaves.is_empty() != want,
            None => leaves.iter().any(|leaf| op_matches(op, leaf)),
        })
}

fn op_matches(op: &Value, value: &Value) -> bool {
    let Value::Object(o) = op else {
        return op == value; // string, number, bool or null: equality
    };
    assert_eq!(o.len(), 1, "one operator per object: {op}");
    let (name, arg) = o.iter().next().expect("one operator");
    let text = value.as_str();
    match name.as_str() {
        "prefix" => text.is_some_and(|t| t.starts_with(arg.as_str().expect("prefix string"))),
        "suffix" => text.is_some_and(|t| t.ends_with(arg.as_str().expect("suffix string"))),
        "wildcard" => {
            let glob = arg.as_str().expect("wildcard string");
            assert!(
                !glob.contains("**"),
                "EventBridge rejects consecutive wildcards: {glob}"
            );
            text.is_some_and(|t| wildcard(glob.as_bytes(), t.as_bytes()))
        }
        "equals-ignore-case" => text.is_some_and(|t| {
            t.to_lowercase()
                == arg
                    .as_str()
                    .expect("equals-ignore-case string")
                    .to_lowercase()
        }),
        "numeric" => {
            let bounds = arg.as_array().expect("numeric list");
            value.as_f64().is_some_and(|n| {
                bounds.chunks(2).all(|pair| {
                    let b = pair[1].as_f64().expect("numeric bound");
                    match pair[0].as_str().expect("numeric operator") {
                        "<" => n < b,
                        "<=" => n <= b,
                        "=" => (n - b).abs() < f64::EPSILON,
                        ">=" => n >= b,
                        ">" => n > b,
                        other => panic!("numeric operator {other}"),
                    }
                })
            })
        }
        "cidr" => text.is_some_and(|t| in_cidr(t, arg.as_str().expect("cidr string"))),
        // Any value that is not one of these (a number too: the pack's matcher tests strings
        // only, so the pattern may forward more).
        "anything-but" => match arg {
            Value::Array(list) => !list.contains(value),
            Value::Object(inner) => !op_matches(&Value::Object(inner.clone()), value),
            single => single != value,
        },
        other => panic!("operator {other} is not supported by this evaluator"),
    }
}

/// `ip` inside `net` (`a.b.c.d/n` or an IPv6 network), written here with the standard library
/// alone, apart from the crate's own parsing.
fn in_cidr(ip: &str, net: &str) -> bool {
    let (base, bits) = net.split_once('/').expect("cidr has a /");
    let bits: u32 = bits.parse().expect("prefix length");
    match (
        ip.parse::<std::net::IpAddr>(),
        base.parse::<std::net::IpAddr>(),
    ) {
        (Ok(std::net::IpAddr::V4(ip)), Ok(std::net::IpAddr::V4(base))) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(ip) & mask == u32::from(base) & mask
        }
        (Ok(std::net::IpAddr::V6(ip)), Ok(std::net::IpAddr::V6(base))) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(ip) & mask == u128::from(base) & mask
        }
        _ => false,
    }
}

/// `*` matches any run of bytes (a backtracking matcher, independent of the crate's glob code).
fn wildcard(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && glob[g] == b'*' {
            star = Some((g, t));
            g += 1;
        } else if g < glob.len() && glob[g] == text[t] {
            g += 1;
            t += 1;
        } else if let Some((sg, st)) = star {
            g = sg + 1;
            t = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

#[test]
fn evaluator_self_check() {
    let event = json!({"source": "aws.iam", "detail": {"eventName": "CreateUser", "tags": ["a", "b"], "n": null,
        "items": [{"ip": "192.168.1.1", "n": 1}, {"ip": "10.1.2.3", "n": 4}]}});
    let yes = [
        json!({"source": ["aws.iam"]}),
        json!({"detail": {"eventName": [{"prefix": "Create"}]}}),
        json!({"detail": {"eventName": [{"suffix": "User"}]}}),
        json!({"detail": {"eventName": [{"wildcard": "C*e*r"}]}}),
        json!({"detail": {"eventName": [{"anything-but": ["DeleteUser"]}]}}),
        json!({"detail": {"tags": ["b"]}}),
        json!({"detail": {"missing": [{"exists": false}], "eventName": [{"exists": true}]}}),
        json!({"detail": {"deep": {"missing": [{"exists": false}]}}}),
        json!({"$or": [{"source": ["aws.s3"]}, {"detail": {"eventName": ["CreateUser"]}}]}),
        json!({"detail": {"items": {"ip": [{"cidr": "10.0.0.0/8"}]}}}),
        json!({"detail": {"items": {"n": [{"numeric": [">", 2, "<=", 5]}]}}}),
        json!({"detail": {"eventName": [{"equals-ignore-case": "createuser"}]}}),
        json!({"detail": {"eventName": [{"anything-but": {"prefix": "Delete"}}]}}),
    ];
    let no = [
        json!({"source": ["aws.s3"]}),
        json!({"source": ["aws.iam"], "detail": {"eventName": ["DeleteUser"]}}),
        json!({"detail": {"eventName": [{"wildcard": "C*x"}]}}),
        json!({"detail": {"missing": ["x"]}}),
        json!({"detail": {"eventName": [{"exists": false}]}}),
        json!({"$or": [{"source": ["aws.s3"]}, {"detail": {"eventName": ["X"]}}]}),
        json!({"detail": {"items": {"ip": [{"cidr": "172.16.0.0/12"}]}}}),
        json!({"detail": {"items": {"n": [{"numeric": [">", 5]}]}}}),
        json!({"detail": {"eventName": [{"anything-but": {"prefix": "Create"}}]}}),
    ];
    for p in &yes {
        assert!(pattern_matches(p, Some(&event)), "{p} should match");
    }
    for p in &no {
        assert!(!pattern_matches(p, Some(&event)), "{p} should not match");
    }
    assert!(wildcard(b"*", b""));
    assert!(wildcard(b"a*b*a", b"abba"));
    assert!(!wildcard(b"a*b*a", b"ab"));
}

// ------------------------------------------------------------------------------------------------
// Envelopes and facts.

const API: &str = "AWS API Call via CloudTrail";
const SIGN_IN: &str = "AWS Console Sign In via CloudTrail";
const SERVICE: &str = "AWS Service Event via CloudTrail";
const STATE_CHANGE: &str = "EC2 Instance State-change Notification";

/// The EventBridge envelope CloudTrail delivers a bare record in.
fn envelope(record: &Value) -> Value {
    let kind = EventKind::from_event_type(record["eventType"].as_str());
    let event_source = record["eventSource"].as_str().unwrap_or_default();
    let label = event_source.split('.').next().unwrap_or_default();
    json!({
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": kind.detail_type(),
        "source": format!("aws.{label}"),
        "account": record["recipientAccountId"],
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    })
}

fn state_change(state: &str) -> Value {
    json!({
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000001",
        "detail-type": STATE_CHANGE,
        "source": "aws.ec2",
        "account": "111111111111",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:111111111111:instance/i-0123456789abcdef0"],
        "detail": {"instance-id": "i-0123456789abcdef0", "state": state},
    })
}

/// The built-in pack, with the organisation of the synthesised events (111111111111) known,
/// so that `not_org_account` can tell 999999999999 outside.
fn builtin() -> RulePack {
    RulePack::builtin().with_organization(rules::Organization::new([
        "111111111111".to_owned(),
        "222222222222".to_owned(),
    ]))
}

/// What the pack says of an envelope, read by the crate's own decoder.
fn verdict(pack: &RulePack, envelope: &Value) -> Verdict {
    let text = envelope.to_string();
    let mut out = None;
    decode_bytes(text.as_bytes(), &mut |decoded| match decoded {
        Decoded::Record(record) => out = Some(pack.evaluate(&record.facts())),
        other => panic!("{envelope} does not decode to a record: {other:?}"),
    });
    out.expect("one record")
}

fn matches_pattern(pattern: &Value, envelope: &Value) -> bool {
    pattern_matches(pattern, Some(envelope))
}

// ------------------------------------------------------------------------------------------------
// (a) Every rule's own events.

/// A string that `glob` matches.
fn sample(glob: &str) -> String {
    glob.replace('*', "X")
}

/// Values of a match key as a list of globs, or `None` for `{ exists = ... }`.
fn globs(value: &toml::Value) -> Option<Vec<String>> {
    match value {
        toml::Value::String(s) => Some(vec![s.clone()]),
        toml::Value::Array(a) => Some(
            a.iter()
                .map(|v| v.as_str().expect("glob").to_owned())
                .collect(),
        ),
        _ => None,
    }
}

/// Put `value` at `path`; a segment `key[]` is an array of one object (or, last, of the value).
fn set(root: &mut Value, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut node = root;
    for key in parents {
        let (key, array) = key.strip_suffix("[]").map_or((*key, false), |k| (k, true));
        let entry = node
            .as_object_mut()
            .expect("object")
            .entry(key)
            .or_insert_with(|| if array { json!([{}]) } else { json!({}) });
        node = if array {
            entry.get_mut(0).expect("one element")
        } else {
            entry
        };
    }
    let (last, array) = last
        .strip_suffix("[]")
        .map_or((*last, false), |k| (k, true));
    node.as_object_mut()
        .expect("object")
        .insert(last.to_owned(), if array { json!([value]) } else { value });
}

const PATHS: [(&str, &[&str]); 12] = [
    ("source_ip", &["sourceIPAddress"]),
    ("region", &["awsRegion"]),
    ("error_code", &["errorCode"]),
    ("identity_type", &["userIdentity", "type"]),
    ("read_only", &["readOnly"]),
    ("mfa_used", &["additionalEventData", "MFAUsed"]),
    ("login_result", &["responseElements", "ConsoleLogin"]),
    ("user_agent", &["userAgent"]),
    (
        "role_name",
        &[
            "userIdentity",
            "sessionContext",
            "sessionIssuer",
            "userName",
        ],
    ),
    ("user_name", &["userIdentity", "userName"]),
    ("invoked_by", &["userIdentity", "invokedBy"]),
    ("state", &["state"]),
];

/// Put at `path` a value that the match key's `value` accepts.
fn set_sample(record: &mut Value, path: &[&str], value: &toml::Value) {
    match value {
        toml::Value::Boolean(b) => set(record, path, json!(b)),
        toml::Value::Table(t) if t.get("exists") == Some(&toml::Value::Boolean(true)) => {
            set(record, path, json!("present"));
        }
        // `{ equals = "..." }`: the text itself, `*` included.
        toml::Value::Table(t) if t.contains_key("equals") => {
            set(
                record,
                path,
                json!(t["equals"].as_str().expect("equals text")),
            );
        }
        toml::Value::Table(t) if t.contains_key("anything-but") => {
            set(record, path, json!("something-else"));
        }
        toml::Value::Table(t) if t.contains_key("equals-ignore-case") => {
            let text = globs(&t["equals-ignore-case"]).expect("texts")[0].to_uppercase();
            set(record, path, json!(text));
        }
        toml::Value::Table(t) if t.contains_key("cidr") => {
            let net = globs(&t["cidr"]).expect("networks")[0].clone();
            let base = net.split('/').next().expect("base").to_owned();
            set(record, path, json!(base));
        }
        toml::Value::Table(t) if t.contains_key("not_org_account") => {
            set(record, path, json!("999999999999"));
        }
        toml::Value::Table(t) if t.contains_key("numeric") => {
            let bounds = t["numeric"].as_array().expect("numeric list");
            let first = bounds[1].as_integer().expect("integer bound");
            let n = match bounds[0].as_str() {
                Some(">") => first + 1,
                Some("<") => first - 1,
                _ => first,
            };
            set(record, path, json!(n));
        }
        toml::Value::Table(_) => {} // exists = false: leave it out
        toml::Value::Integer(n) => set(record, path, json!(n)),
        v => set(record, path, json!(sample(&globs(v).expect("globs")[0]))),
    }
}

/// The operators a value table may have (`{ exists = ... }`); any other table nests paths.
const OPERATORS: [&str; 7] = [
    "exists",
    "equals",
    "anything-but",
    "equals-ignore-case",
    "numeric",
    "cidr",
    "not_org_account",
];

/// The paths of a `request` table (dotted keys and nested tables) with their values.
fn request_paths(table: &toml::Table) -> Vec<(Vec<String>, &toml::Value)> {
    let mut out = Vec::new();
    for (key, value) in table {
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        match value {
            toml::Value::Table(inner) if !OPERATORS.iter().any(|op| inner.contains_key(*op)) => {
                for (mut rest, value) in request_paths(inner) {
                    rest.splice(0..0, path.iter().cloned());
                    out.push((rest, value));
                }
            }
            _ => out.push((path, value)),
        }
    }
    out
}

/// One bare CloudTrail record (or a state change) per detail-type and per listed name.
fn synthesise(m: &toml::Table) -> Vec<Value> {
    let detail_types = m
        .get("detail_type")
        .and_then(globs)
        .unwrap_or_else(|| vec![API.into(), SIGN_IN.into(), SERVICE.into()]);
    let names = m
        .get("name")
        .and_then(globs)
        .unwrap_or_else(|| vec!["SomeCall".into()]);
    let source = m
        .get("source")
        .and_then(globs)
        .map_or_else(|| "example.amazonaws.com".to_owned(), |g| sample(&g[0]));
    let mut out = Vec::new();
    for dt in &detail_types {
        if dt == STATE_CHANGE {
            let state = m
                .get("state")
                .and_then(globs)
                .map_or_else(|| "stopped".to_owned(), |g| sample(&g[0]));
            out.push(state_change(&state));
            continue;
        }
        let event_type = match dt.as_str() {
            API => "AwsApiCall",
            SIGN_IN => "AwsConsoleSignIn",
            _ => "AwsServiceEvent",
        };
        for name in &names {
            let mut record = json!({
                "eventVersion": "1.09",
                "eventTime": "2026-01-01T00:00:00Z",
                "eventSource": source,
                "eventName": sample(name),
                "eventType": event_type,
                "awsRegion": "us-east-1",
                "recipientAccountId": "111111111111",
                "eventID": "11111111-1111-1111-1111-111111111111",
            });
            for (key, path) in PATHS {
                if let Some(value) = m.get(key) {
                    set_sample(&mut record, path, value);
                }
            }
            for (root, field) in [
                ("request", "requestParameters"),
                ("response", "responseElements"),
                ("additional", "additionalEventData"),
                ("resources", "resources[]"),
            ] {
                if let Some(toml::Value::Table(table)) = m.get(root) {
                    for (path, value) in request_paths(table) {
                        let mut path: Vec<&str> = path.iter().map(String::as_str).collect();
                        path.insert(0, field);
                        set_sample(&mut record, &path, value);
                    }
                }
            }
            out.push(envelope(&record));
        }
    }
    out
}

fn builtin_rule_tables() -> Vec<toml::Table> {
    let file: toml::Table = toml::from_str(rules::DEFAULT_PACK).expect("default pack is TOML");
    file["rule"]
        .as_array()
        .expect("[[rule]] list")
        .iter()
        .map(|r| r.as_table().expect("rule table").clone())
        .collect()
}

#[test]
fn every_rule_matches_its_own_events_in_pack_and_pattern() {
    let pack = builtin();
    let pattern = event_pattern(&pack);
    let split = event_patterns(&pack, rules::EVENT_PATTERN_DEFAULT_LIMIT).expect("split");
    let tables = builtin_rule_tables();
    assert_eq!(tables.len(), pack.rules().len());
    let mut checked = 0;
    for (table, rule) in tables.iter().zip(pack.rules()) {
        let m = table["match"].as_table().expect("match table");
        for event in synthesise(m) {
            let verdict = verdict(&pack, &event);
            let Verdict::Matched(winner) = verdict else {
                panic!("rule {}: pack says {verdict:?} for {event}", rule.id);
            };
            assert!(
                (winner.severity, winner.immediate) >= (rule.severity, rule.immediate),
                "rule {}: weaker rule {} won for {event}",
                rule.id,
                winner.id
            );
            assert!(
                matches_pattern(&pattern, &event),
                "rule {}: pattern misses {event}",
                rule.id
            );
            assert!(
                split.iter().any(|p| matches_pattern(p, &event)),
                "rule {}: split patterns miss {event}",
                rule.id
            );
            checked += 1;
        }
    }
    println!("{checked} synthesised events checked");
    assert!(checked > 150, "only {checked} events");
}

// ------------------------------------------------------------------------------------------------
// (b) What the pack leaves alone.

fn record(source: &str, name: &str, extra: &Value) -> Value {
    let mut r = json!({
        "eventVersion": "1.09",
        "eventSource": source,
        "eventName": name,
        "eventID": format!("{source}/{name}"),
        "eventTime": "2026-01-01T00:00:00Z",
        "eventType": "AwsApiCall",
        "readOnly": true,
        "awsRegion": "us-east-1",
        "recipientAccountId": "111111111111",
        "userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"userName": "dev"}}},
        "userAgent": "aws-cli/2.17.32",
    });
    for (k, v) in extra.as_object().expect("object") {
        r[k] = v.clone();
    }
    envelope(&r)
}

#[test]
fn unmatched_events_are_not_forwarded() {
    let pack = builtin();
    let pattern = event_pattern(&pack);
    let split = event_patterns(&pack, rules::EVENT_PATTERN_DEFAULT_LIMIT).expect("split");
    let none = json!({});
    let events = [
        record("iam.amazonaws.com", "ListUsers", &none),
        record("iam.amazonaws.com", "GetUser", &none),
        record("s3.amazonaws.com", "GetObject", &none),
        record("s3.amazonaws.com", "PutObject", &json!({"readOnly": false})),
        record("ec2.amazonaws.com", "DescribeInstances", &none),
        record(
            "apigateway.amazonaws.com",
            "CreateRoute",
            &json!({"readOnly": false}),
        ),
        record("organizations.amazonaws.com", "DescribeOrganization", &none),
        record("kms.amazonaws.com", "Decrypt", &none),
        record("sts.amazonaws.com", "AssumeRole", &none),
        record("cloudtrail.amazonaws.com", "LookupEvents", &none),
        record("guardduty.amazonaws.com", "GetFindings", &none),
        // The root rules exclude calls a service made on root's behalf, and service events.
        record(
            "s3.amazonaws.com",
            "ListBuckets",
            &json!({"userIdentity": {"type": "Root", "invokedBy": "support.amazonaws.com"}}),
        ),
        record(
            "kms.amazonaws.com",
            "RotateKey",
            &json!({"eventType": "AwsServiceEvent", "userIdentity": {"type": "Root"}}),
        ),
        // Successful sign-in with MFA.
        record(
            "signin.amazonaws.com",
            "ConsoleLogin",
            &json!({"eventType": "AwsConsoleSignIn", "userIdentity": {"type": "IAMUser"},
                    "additionalEventData": {"MFAUsed": "Yes"}, "responseElements": {"ConsoleLogin": "Success"}}),
        ),
        state_change("running"),
        state_change("stopped"),
    ];
    for event in &events {
        assert_eq!(
            verdict(&pack, event),
            Verdict::Unmatched,
            "pack matches {event}"
        );
        assert!(!matches_pattern(&pattern, event), "pattern matches {event}");
        assert!(
            !split.iter().any(|p| matches_pattern(p, event)),
            "a split pattern matches {event}"
        );
    }
}

#[test]
fn ignored_noise_and_immediate_alerts() {
    let pack = builtin();
    let scanner = record(
        "iam.amazonaws.com",
        "ListUsers",
        &json!({"errorCode": "AccessDenied", "userAgent": "Boto3/1.34.0 prowler/4.2.1"}),
    );
    assert!(matches!(verdict(&pack, &scanner), Verdict::Ignored(_)));

    let root = record(
        "iam.amazonaws.com",
        "CreateAccessKey",
        &json!({"readOnly": false, "userIdentity": {"type": "Root"}}),
    );
    let Verdict::Matched(rule) = verdict(&pack, &root) else {
        panic!("root unmatched")
    };
    assert_eq!(
        (rule.id.as_str(), rule.severity, rule.immediate),
        ("root-usage", Severity::Red, true)
    );
}

// ------------------------------------------------------------------------------------------------
// (c) The TrailDiscover corpus.

fn corpus_file() -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        std::env::var_os("TRAILWATCH_CORPUS").map(PathBuf::from),
        Some(manifest.join("../shared/corpus")),
        // A git worktree under /work/wt/<branch> sits one level deeper than /work/main.
        Some(manifest.join("../../shared/corpus")),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|dir| dir.join("traildiscover/examples.jsonl"))
        .find(|path| path.is_file())
}

#[test]
fn traildiscover_corpus_pattern_agrees_with_pack() {
    let Some(path) = corpus_file() else {
        println!(
            "SKIPPED: traildiscover/examples.jsonl not found under ../shared/corpus (or $TRAILWATCH_CORPUS)"
        );
        return;
    };
    let text = std::fs::read_to_string(&path).expect("read corpus");
    let pack = builtin();
    let pattern = event_pattern(&pack);
    let split = event_patterns(&pack, rules::EVENT_PATTERN_DEFAULT_LIMIT).expect("split");
    let (mut matched, mut ignored, mut unmatched) = (0, 0, 0);
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        let event = envelope(&record);
        let forwarded = matches_pattern(&pattern, &event);
        assert_eq!(
            forwarded,
            split.iter().any(|p| matches_pattern(p, &event)),
            "line {}: split disagrees",
            n + 1
        );
        match verdict(&pack, &event) {
            Verdict::Matched(rule) => {
                matched += 1;
                assert!(
                    forwarded,
                    "line {}: pack matched {} but the pattern drops it",
                    n + 1,
                    rule.id
                );
            }
            Verdict::Unmatched => {
                unmatched += 1;
                assert!(
                    !forwarded,
                    "line {}: pattern forwards {} {} the pack ignores",
                    n + 1,
                    record["eventSource"],
                    record["eventName"]
                );
            }
            Verdict::Ignored(_) => ignored += 1,
        }
    }
    println!(
        "{}: {matched} matched, {ignored} ignored, {unmatched} unmatched",
        path.display()
    );
    assert!(matched > 0 && unmatched > 0);
}

// ------------------------------------------------------------------------------------------------
// (d) Request parameters: the tamper fixtures, and arbitrary requests against arbitrary rules.

#[test]
fn tamper_fixtures_are_forwarded_exactly_when_the_pack_matches() {
    let pack = builtin();
    let pattern = event_pattern(&pack);
    let split = event_patterns(&pack, rules::EVENT_PATTERN_DEFAULT_LIMIT).expect("split");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tamper");
    let mut checked = 0;
    for file in ["tamper.jsonl", "lookalike.jsonl", "denied.jsonl"] {
        let text = std::fs::read_to_string(dir.join(file)).expect("tamper fixture");
        for line in text.lines() {
            let event: Value = serde_json::from_str(line).expect("JSON");
            let matched = verdict(&pack, &event) != Verdict::Unmatched;
            assert_eq!(
                matches_pattern(&pattern, &event),
                matched,
                "{file}: {}",
                event["detail"]["requestParameters"]
            );
            assert_eq!(split.iter().any(|p| matches_pattern(p, &event)), matched);
            checked += 1;
        }
    }
    assert!(checked >= 3 * 20, "{checked}");
}

/// Paths a generated rule tests (none a prefix of another) and keys a generated request has.
const REQUEST_PATHS: [&str; 4] = ["name", "rule", "a.b", "a.c"];

fn request_cond() -> impl Strategy<Value = String> {
    let glob = prop::sample::select(vec![
        "trailwatch",
        "trailwatch-*",
        "*-forward",
        "t*h*d",
        "x",
    ]);
    prop_oneof![
        prop::collection::btree_set(glob, 1..3).prop_map(|globs| {
            let quoted: Vec<String> = globs.iter().map(|g| format!("{g:?}")).collect();
            format!("[{}]", quoted.join(", "))
        }),
        any::<bool>().prop_map(|b| format!("{{ exists = {b} }}")),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("3".to_owned()),
        Just("{ equals-ignore-case = \"TRAILWATCH\" }".to_owned()),
        Just("{ anything-but = [\"x\", \"trailwatch\"] }".to_owned()),
        Just("{ anything-but = \"trailwatch-*\" }".to_owned()),
        Just("{ numeric = [\">\", 3, \"<=\", 200] }".to_owned()),
        Just("{ cidr = \"10.0.0.0/8\" }".to_owned()),
    ]
}

/// A `request = { ... }` table of one to three of [`REQUEST_PATHS`].
fn request_rule() -> impl Strategy<Value = String> {
    prop::collection::btree_map(
        prop::sample::select(REQUEST_PATHS.to_vec()),
        request_cond(),
        1..4,
    )
    .prop_map(|conds| {
        let entries: Vec<String> = conds.iter().map(|(p, c)| format!("{p:?} = {c}")).collect();
        format!("request = {{ {} }}", entries.join(", "))
    })
}

fn request_value() -> impl Strategy<Value = Value> {
    let text = prop::sample::select(vec![
        "trailwatch",
        "trailwatch-forward",
        "tah-d",
        "x",
        "",
        "10.1.2.3",
        "8.8.8.8",
    ]);
    let leaf = prop_oneof![
        4 => text.prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<u8>().prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(vec!["b", "c", "d"]), inner, 0..3)
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
        ]
    });
    prop::collection::btree_map(
        prop::sample::select(vec!["name", "rule", "a", "z"]),
        value,
        0..4,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_pattern_forwards_what_request_conditions_match(
        rule in request_rule(),
        request in request_value(),
    ) {
        let text = format!(
            "[[rule]]\nid = \"p\"\ntitle = \"p\"\nseverity = \"red\"\n[rule.match]\nsource = \"events.amazonaws.com\"\nname = \"DisableRule\"\n{rule}\n"
        );
        let pack = RulePack::from_toml(&text).expect("generated rule");
        let pattern = event_pattern(&pack);
        let event = record(
            "events.amazonaws.com",
            "DisableRule",
            &json!({"readOnly": false, "requestParameters": request}),
        );
        let matched = verdict(&pack, &event) != Verdict::Unmatched;
        let forwarded = matches_pattern(&pattern, &event);
        prop_assert!(!matched || forwarded, "{rule} matches {request} but {pattern} drops it");
        // `anything-but` tests strings only in the pack; EventBridge may forward a number too.
        if !rule.contains("anything-but") {
            prop_assert_eq!(matched, forwarded, "{} on {} with {}", rule, request, pattern);
        }
    }
}
