//! Match keys that test values inside the record's JSON by their path: `request` (under
//! `requestParameters`), `response` (`responseElements`), `additional` (`additionalEventData`)
//! and `resources` (each `{ARN, accountId, type}` of the record's `resources`). Their keys are
//! paths: `request = { name = "trailwatch-*" }`, `request = { "a.b" = "x" }`, or nested tables,
//! which TOML's dotted keys also write: `request.a.b = "x"`.
//!
//! A path reads the way an EventBridge pattern reads the same path: an array met on the way or
//! at the end stands for each of its elements, so
//! `request."ipPermissions.items[].ipRanges.items[].cidrIp" = { equals = "0.0.0.0/0" }` holds when
//! any range of any permission is open to the world. `[]` after a segment says that an array is
//! there; it is optional, as EventBridge patterns have no such marker. A path condition takes
//! any value of [`super::value`] and holds when any value at the path satisfies it
//! (`{ exists = false }`: when there is none).

use std::fmt;

use crate::event::{Facts, RawJson};

use super::RulesError;
use super::matcher::{Cond, Ctx};
use super::value::{Leaf, OPERATORS, Scope};

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Root {
    /// `requestParameters`.
    Request,
    /// `responseElements`.
    Response,
    /// `additionalEventData`.
    Additional,
    /// `resources`, an array of `{ARN, accountId, type}`.
    Resources,
}

impl Root {
    pub const ALL: [Self; 4] = [
        Self::Request,
        Self::Response,
        Self::Additional,
        Self::Resources,
    ];

    /// The key as written in `[rule.match]`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
            Self::Additional => "additional",
            Self::Resources => "resources",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|root| root.key() == key)
    }

    /// Where the JSON sits in an EventBridge envelope of a CloudTrail event.
    fn envelope_path(self) -> &'static [&'static str] {
        match self {
            Self::Request => &["detail", "requestParameters"],
            Self::Response => &["detail", "responseElements"],
            Self::Additional => &["detail", "additionalEventData"],
            Self::Resources => &["detail", "resources"],
        }
    }

    pub(super) fn json<'a>(self, facts: &Facts<'a>) -> Option<RawJson<'a>> {
        match self {
            Self::Request => facts.request,
            Self::Response => facts.response,
            Self::Additional => facts.additional,
            Self::Resources => facts.resources,
        }
    }
}

/// A condition on the values at a path: `request.name = "trailwatch-*"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathCond {
    root: Root,
    /// Object keys under the root, outermost first, `[]` markers taken off; never empty.
    path: Vec<String>,
    /// The path as written, for messages.
    written: String,
    cond: Cond,
}

impl PathCond {
    pub fn holds(&self, facts: &Facts<'_>, scope: &Scope<'_>) -> bool {
        let values = self
            .root
            .json(facts)
            .map(|json| json.leaves(&self.path))
            .unwrap_or_default();
        let leaves: Vec<Leaf<'_>> = values.iter().filter_map(Leaf::of).collect();
        self.cond.holds(&leaves, scope)
    }

    pub fn cond(&self) -> &Cond {
        &self.cond
    }

    /// The same path in an EventBridge envelope (`detail.requestParameters.name`).
    pub fn envelope_path(&self) -> Vec<String> {
        let root = self.root.envelope_path().iter().map(|k| (*k).to_owned());
        root.chain(self.path.iter().cloned()).collect()
    }
}

impl fmt::Display for PathCond {
    /// The key as an error names it: `request.name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.root.key(), self.written)
    }
}

const PATHS: &str =
    "a non-empty table of paths under it, like request = { name = \"trailwatch-*\" }";

/// The conditions of one root's key (`request = { ... }`), sorted by path.
pub(super) fn parse(
    ctx: &Ctx<'_>,
    root: Root,
    value: &toml::Value,
) -> Result<Vec<PathCond>, RulesError> {
    let table = match value {
        toml::Value::Table(table) if !table.is_empty() && !is_value(table) => table,
        _ => return Err(ctx.type_error(root.key(), PATHS, value)),
    };
    let mut conds = Vec::new();
    collect(ctx, root, &[], table, &mut conds)?;
    conds.sort_by(|a, b| a.path.cmp(&b.path));
    // Sorted, every path that starts with another comes right after it or after one that does.
    for pair in conds.windows(2) {
        let (outer, inner) = (&pair[0], &pair[1]);
        if inner.path.starts_with(&outer.path) {
            let reason = if inner.path == outer.path {
                "is given twice".to_owned()
            } else {
                format!(
                    "and `{inner}` cannot both be given: a value is tested, or what is inside it, not both (an EventBridge pattern cannot say both)"
                )
            };
            return Err(ctx.bad_path(&outer.to_string(), reason));
        }
    }
    Ok(conds)
}

/// A table that is a value (`{ exists = ... }`, `{ cidr = ... }`, see [`OPERATORS`]), not more
/// paths. A field named like an operator cannot be tested.
fn is_value(table: &toml::Table) -> bool {
    OPERATORS.iter().any(|op| table.contains_key(*op))
}

fn collect(
    ctx: &Ctx<'_>,
    root: Root,
    prefix: &[String],
    table: &toml::Table,
    out: &mut Vec<PathCond>,
) -> Result<(), RulesError> {
    for (key, value) in table {
        let mut written = prefix.to_vec();
        written.extend(key.split('.').map(str::to_owned));
        let name = format!("{}.{}", root.key(), written.join("."));
        if let Some(reason) = written.iter().find_map(|segment| segment_error(segment)) {
            return Err(ctx.bad_path(&name, reason.to_owned()));
        }
        match value {
            // A table is a value only when it has an operator's key; any other nests paths.
            toml::Value::Table(inner) if !is_value(inner) => {
                if inner.is_empty() {
                    return Err(ctx.type_error(&name, PATHS, value));
                }
                collect(ctx, root, &written, inner, out)?;
            }
            _ => {
                let cond = ctx.value_cond(&name, value, true)?;
                let path: Vec<String> = written
                    .iter()
                    .map(|s| s.strip_suffix("[]").unwrap_or(s))
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if path.is_empty() {
                    return Err(ctx.bad_path(&name, "names no field under it".to_owned()));
                }
                out.push(PathCond {
                    root,
                    path,
                    written: written.join("."),
                    cond,
                });
            }
        }
    }
    Ok(())
}

fn segment_error(segment: &str) -> Option<&'static str> {
    let key = segment.strip_suffix("[]").unwrap_or(segment);
    if segment.is_empty() {
        Some("has an empty path segment (two dots, or a dot at an end)")
    } else if key.contains(['[', ']']) {
        Some("has `[` or `]` other than a `[]` at the end of a segment (any element of an array)")
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use crate::rules::matcher::Matcher;

    fn matcher(toml_text: &str) -> Result<Matcher, RulesError> {
        let table: toml::Table = toml::from_str(toml_text).unwrap();
        Matcher::parse("rule", "t", &table)
    }

    fn facts(request: Option<&str>) -> Facts<'_> {
        Facts {
            kind: EventKind::ApiCall,
            source: "events.amazonaws.com",
            name: "DisableRule",
            error_code: None,
            identity_type: Some("AssumedRole"),
            read_only: Some(false),
            mfa_used: None,
            login_result: None,
            state: None,
            user_agent: None,
            role_name: None,
            user_name: None,
            invoked_by: None,
            account: "111111111111",
            region: "us-east-1",
            source_ip: None,
            console_session: None,
            request: request.map(RawJson::new),
            response: None,
            additional: None,
            resources: None,
        }
    }

    fn holds(m: &Matcher, request: &str) -> bool {
        m.matches(&facts(Some(request)))
    }

    #[test]
    fn dotted_quoted_and_nested_keys_are_the_same_paths() {
        let forms = [
            r#"request = { "stack.name" = "trailwatch-*", id = { exists = true } }"#,
            "request.stack.name = \"trailwatch-*\"\nrequest.id = { exists = true }",
            "[request]\nstack = { name = \"trailwatch-*\" }\nid.exists = true",
        ];
        let parsed: Vec<Matcher> = forms.iter().map(|f| matcher(f).unwrap()).collect();
        assert!(parsed.windows(2).all(|w| w[0] == w[1]), "{parsed:#?}");
        let keys: Vec<String> = parsed[0].paths().iter().map(ToString::to_string).collect();
        assert_eq!(keys, ["request.id", "request.stack.name"]);
        assert_eq!(
            parsed[0].paths()[1].envelope_path(),
            ["detail", "requestParameters", "stack", "name"]
        );
    }

    #[test]
    fn globs_lists_and_exists_test_the_value_at_the_path() {
        let m = matcher(r#"request = { name = ["trailwatch", "trailwatch-*"] }"#).unwrap();
        assert!(holds(&m, r#"{"name":"trailwatch-forward-1"}"#));
        assert!(holds(
            &m,
            r#"{"eventBusName":"default","name":"trailwatch"}"#
        ));
        assert!(!holds(&m, r#"{"name":"payments-forward"}"#));
        assert!(!holds(&m, r#"{"name":"xtrailwatch-1"}"#));
        assert!(!holds(&m, r#"{"rule":"trailwatch-1"}"#), "another key");
        assert!(!holds(&m, "null"));
        assert!(!m.matches(&facts(None)), "no requestParameters");

        let m = matcher("request.a.b = { exists = true }").unwrap();
        assert!(holds(&m, r#"{"a":{"b":"x"}}"#));
        assert!(!holds(&m, r#"{"a":{"c":"x"}}"#));
        let m = matcher("request.a.b = { exists = false }").unwrap();
        assert!(holds(&m, r#"{"a":{"c":"x"}}"#));
        assert!(holds(&m, r#"{"a":"x"}"#), "a string has no keys");
        assert!(m.matches(&facts(None)));
    }

    #[test]
    fn exists_sees_any_scalar_and_globs_only_strings() {
        let glob = matcher(r#"request.a = "*""#).unwrap();
        let present = matcher("request.a = { exists = true }").unwrap();
        let absent = matcher("request.a = { exists = false }").unwrap();
        for scalar in [
            r#"{"a":3}"#,
            r#"{"a":true}"#,
            r#"{"a":null}"#,
            r#"{"a":["x"]}"#,
        ] {
            assert!(holds(&present, scalar), "{scalar}");
            assert!(!holds(&absent, scalar), "{scalar}");
        }
        assert!(holds(&glob, r#"{"a":["x"]}"#), "an array's string element");
        for not_string in [r#"{"a":3}"#, r#"{"a":true}"#, r#"{"a":null}"#] {
            assert!(!holds(&glob, not_string), "{not_string}");
        }
        // An object is not a leaf; an empty array has no elements.
        for nothing in [r#"{"a":{"b":"x"}}"#, r#"{"a":[]}"#] {
            assert!(
                !holds(&present, nothing) && holds(&absent, nothing),
                "{nothing}"
            );
        }
    }

    #[test]
    fn arrays_on_the_way_stand_for_each_element() {
        let open = matcher(
            r#"request = { "ipPermissions.items[].ipRanges.items[].cidrIp" = { equals = "0.0.0.0/0" } }"#,
        )
        .unwrap();
        let same = matcher(
            r#"request = { "ipPermissions.items.ipRanges.items.cidrIp" = { equals = "0.0.0.0/0" } }"#,
        )
        .unwrap();
        assert_eq!(
            open.paths()[0].envelope_path(),
            same.paths()[0].envelope_path()
        );
        let world = r#"{"ipPermissions":{"items":[{"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8"}]}},{"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}"#;
        let private =
            r#"{"ipPermissions":{"items":[{"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8"}]}}]}}"#;
        assert!(holds(&open, world) && holds(&same, world));
        assert!(!holds(&open, private));
        assert_eq!(
            open.paths()[0].to_string(),
            "request.ipPermissions.items[].ipRanges.items[].cidrIp",
            "messages keep the path as written"
        );
    }

    #[test]
    fn booleans_and_numbers_are_compared_as_json() {
        let off = matcher("request.deletionProtection = false").unwrap();
        assert!(holds(&off, r#"{"deletionProtection":false}"#));
        assert!(!holds(&off, r#"{"deletionProtection":true}"#));
        assert!(
            !holds(&off, r#"{"deletionProtection":"false"}"#),
            "text is not a boolean"
        );
        let zero = matcher("request.backupRetentionPeriod = 0").unwrap();
        assert!(holds(&zero, r#"{"backupRetentionPeriod":0}"#));
        assert!(holds(&zero, r#"{"backupRetentionPeriod":0.0}"#));
        assert!(!holds(&zero, r#"{"backupRetentionPeriod":7}"#));
    }

    #[test]
    fn numeric_ranges_hold_for_numbers_within_every_bound() {
        let m = matcher(r#"request.n = { numeric = [">", 0, "<=", 5] }"#).unwrap();
        for (n, want) in [
            ("0", false),
            ("0.5", true),
            ("5", true),
            ("5.01", false),
            ("-1", false),
        ] {
            assert_eq!(holds(&m, &format!(r#"{{"n":{n}}}"#)), want, "{n}");
        }
        assert!(!holds(&m, r#"{"n":"3"}"#), "a string is not a number");
        assert!(holds(&m, r#"{"n":[9,3]}"#), "any element");
        let eq = matcher(r#"request.n = { numeric = ["=", 443] }"#).unwrap();
        assert!(holds(&eq, r#"{"n":443}"#) && !holds(&eq, r#"{"n":444}"#));
        // EventBridge compares numbers from -5e9 to 5e9 only.
        let any = matcher(r#"request.n = { numeric = [">", 0] }"#).unwrap();
        assert!(holds(&any, r#"{"n":4999999999}"#));
        assert!(
            !holds(&any, r#"{"n":6000000000}"#),
            "outside EventBridge's range"
        );
        // Its forms: one comparison, or a lower bound then an upper one.
        for bad in [
            r#"["<", 5, ">", 0]"#,
            r#"["=", 1, "<", 2]"#,
            r#"[">", 1, ">", 2]"#,
            r#"[">", 6000000000]"#,
            r#"["!=", 1]"#,
            r#"[">", "1"]"#,
            r#"[">", 0, "<", 5, "<", 6]"#,
        ] {
            assert!(
                matcher(&format!("request.n = {{ numeric = {bad} }}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn anything_but_needs_a_string_that_is_none_of_them() {
        let m = matcher(r#"request.s = { anything-but = ["Enabled", "Pending"] }"#).unwrap();
        assert!(holds(&m, r#"{"s":"Suspended"}"#));
        assert!(!holds(&m, r#"{"s":"Enabled"}"#));
        assert!(!holds(&m, "{}"), "a missing field is not anything");
        assert!(holds(&m, r#"{"s":["Enabled","Off"]}"#), "any element");
        let prefix = matcher(r#"request.s = { anything-but = "us-*" }"#).unwrap();
        assert!(holds(&prefix, r#"{"s":"eu-west-1"}"#));
        assert!(!holds(&prefix, r#"{"s":"us-east-1"}"#));
        let one = matcher(r#"request.s = { anything-but = "*" }"#).unwrap();
        assert!(!holds(&one, r#"{"s":"x"}"#), "`*` excludes every string");
    }

    #[test]
    fn equals_ignore_case_and_cidr() {
        let m = matcher(r#"request.v = { equals-ignore-case = ["public_read", "ALL"] }"#).unwrap();
        assert!(holds(&m, r#"{"v":"PUBLIC_READ"}"#) && holds(&m, r#"{"v":"all"}"#));
        assert!(!holds(&m, r#"{"v":"PRIVATE"}"#));
        let m = matcher(r#"request.ip = { cidr = ["10.0.0.0/8", "2001:db8::/32"] }"#).unwrap();
        assert!(holds(&m, r#"{"ip":"10.200.0.1"}"#));
        assert!(holds(&m, r#"{"ip":"2001:db8::1"}"#));
        assert!(!holds(&m, r#"{"ip":"11.0.0.1"}"#));
        assert!(
            !holds(&m, r#"{"ip":"cloudformation.amazonaws.com"}"#),
            "not an address"
        );
        assert!(
            !holds(&m, r#"{"ip":"10.0.0.0/8"}"#),
            "a network is not an address"
        );
    }

    #[test]
    fn not_org_account_holds_for_an_account_outside() {
        use crate::rules::Organization;
        let m = matcher("request.valuesToAdd = { not_org_account = true }").unwrap();
        let org = Organization::new(["222222222222".to_owned()]);
        let holds_in = |request: &str| m.matches_in(&facts(Some(request)), &org);
        assert!(holds_in(r#"{"valuesToAdd":["999999999999"]}"#));
        assert!(holds_in(
            r#"{"valuesToAdd":["222222222222","999999999999"]}"#
        ));
        assert!(!holds_in(r#"{"valuesToAdd":["222222222222"]}"#), "a member");
        assert!(
            !holds_in(r#"{"valuesToAdd":["111111111111"]}"#),
            "its own account"
        );
        assert!(
            !holds_in(r#"{"valuesToAdd":["all"]}"#),
            "`all` names no account"
        );
        assert!(!holds_in(r#"{"valuesToAdd":[]}"#));
        let arn = matcher(
            r#"request."x-amz-server-side-encryption-aws-kms-key-id" = { not_org_account = true }"#,
        )
        .unwrap();
        assert!(arn.matches_in(
            &facts(Some(r#"{"x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:us-east-1:999999999999:key/k"}"#)),
            &org
        ));
    }

    #[test]
    fn each_root_reads_its_own_part_of_the_record() {
        let m = matcher(
            r#"response.publiclyAccessible = true
additional.SamlProviderArn = { exists = false }
resources.ARN = "arn:aws:rds:*""#,
        )
        .unwrap();
        let base = facts(None);
        let with = |response, additional, resources| Facts {
            response: Some(RawJson::new(response)),
            additional: Some(RawJson::new(additional)),
            resources: Some(RawJson::new(resources)),
            ..base
        };
        assert!(m.matches(&with(
            r#"{"publiclyAccessible":true}"#,
            "{}",
            r#"[{"ARN":"arn:aws:rds:us-east-1:1:db:x"}]"#
        )));
        assert!(!m.matches(&with(
            r#"{"publiclyAccessible":true}"#,
            r#"{"SamlProviderArn":"arn:aws:iam::1:saml-provider/Okta"}"#,
            r#"[{"ARN":"arn:aws:rds:us-east-1:1:db:x"}]"#
        )));
        assert!(!m.matches(&with(
            r#"{"publiclyAccessible":false}"#,
            "{}",
            r#"[{"ARN":"arn:aws:rds:x"}]"#
        )));
        let envelope: Vec<Vec<String>> = m.paths().iter().map(PathCond::envelope_path).collect();
        assert!(
            envelope.contains(&vec![
                "detail".to_owned(),
                "responseElements".to_owned(),
                "publiclyAccessible".to_owned()
            ]),
            "{envelope:?}"
        );
    }

    #[test]
    fn path_conditions_run_after_the_cheap_ones_and_all_must_hold() {
        let m = matcher(
            r#"name = "DisableRule"
request = { name = "trailwatch-*", eventBusName = { exists = false } }"#,
        )
        .unwrap();
        assert!(holds(&m, r#"{"name":"trailwatch-forward-1"}"#));
        assert!(!holds(
            &m,
            r#"{"name":"trailwatch-forward-1","eventBusName":"other"}"#
        ));
        assert!(!m.matches(&Facts {
            name: "EnableRule",
            ..facts(Some(r#"{"name":"trailwatch-forward-1"}"#))
        }));
    }

    #[test]
    fn errors_name_the_key_and_what_was_expected() {
        let cases: [(&str, &[&str]); 10] = [
            (
                "request = \"trailwatch-*\"",
                &["`request`", "table of paths", "the string"],
            ),
            ("request = {}", &["`request`", "table of paths"]),
            (
                "request = { exists = true }",
                &["`request`", "table of paths"],
            ),
            (
                "request = { name = [3] }",
                &["`request.name`", "glob string", "array [3]"],
            ),
            (
                "request = { a = { numeric = [\">\"] } }",
                &["`request.a`", "numeric"],
            ),
            ("request = { a = {} }", &["`request.a`", "table of paths"]),
            (
                "request = { \"a..b\" = \"x\" }",
                &["`request.a..b`", "empty path segment"],
            ),
            (
                "request = { \"items[0].id\" = \"x\" }",
                &["`request.items[0].id`", "`[]`"],
            ),
            (
                "request = { a = \"x\", \"a.b\" = \"y\" }",
                &["`request.a`", "`request.a.b`", "cannot both"],
            ),
            (
                "request = { \"a.b\" = \"x\", a = { b = \"y\" } }",
                &["`request.a.b`", "twice"],
            ),
        ];
        for (text, needles) in cases {
            let err = matcher(text).unwrap_err().to_string();
            for needle in needles {
                assert!(err.contains(needle), "{text}: {err:?} lacks {needle:?}");
            }
        }
        let err = matcher("request = { name = \"a**\" }")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`request.name`") && err.contains("consecutive"),
            "{err}"
        );
        let err = matcher("requests = { name = \"x\" }")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown match key") && err.contains("request"),
            "{err}"
        );
    }

    #[test]
    fn a_state_change_has_no_request_parameters() {
        let err = matcher(
            "detail_type = \"EC2 Instance State-change Notification\"\nrequest.name = \"x\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("can never match") && err.contains("`request.name`"),
            "{err}"
        );
        assert!(
            matcher("detail_type = \"EC2 Instance State-change Notification\"\nrequest.name = { exists = false }")
                .is_ok()
        );
    }
}
