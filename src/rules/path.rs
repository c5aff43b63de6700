//! Match keys that test a value inside the record's JSON by its path: `request`, whose keys are
//! paths under `requestParameters` (`request = { name = "trailwatch-*" }`,
//! `request = { "a.b" = "x" }`, or nested tables, which TOML's dotted keys also write:
//! `request.a.b = "x"`).
//!
//! A path condition takes the same values as the other keys (globs, a list of globs,
//! `{ exists = bool }`) and means what EventBridge's pattern on the same path means, for the
//! values it can hold: a glob holds for a string, `{ exists = true }` for a string,
//! `{ exists = false }` when nothing is there (see [`Found`]). A number, boolean, null, object or
//! array satisfies none of them, so the generated pattern can only forward more than the pack
//! matches, never less (EventBridge would match an array by any element, `exists` a number).
//!
//! A root is where the path starts; `request` is the first. Another (`response` for
//! `responseElements`, `additional` for `additionalEventData`) is one [`Root`] variant: its key,
//! its place in the envelope and which JSON of the [`Facts`] it reads.

use std::fmt;

use crate::event::{Facts, Found, RawJson};

use super::RulesError;
use super::matcher::{Cond, Ctx, FactValue};

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Root {
    /// `requestParameters`.
    Request,
}

impl Root {
    pub const ALL: [Self; 1] = [Self::Request];

    /// The key as written in `[rule.match]`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Request => "request",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|root| root.key() == key)
    }

    /// Where the JSON sits in an EventBridge envelope of a CloudTrail event.
    fn envelope_path(self) -> &'static [&'static str] {
        match self {
            Self::Request => &["detail", "requestParameters"],
        }
    }

    fn json<'a>(self, facts: &Facts<'a>) -> Option<RawJson<'a>> {
        match self {
            Self::Request => facts.request,
        }
    }
}

/// A condition on the value at a path: `request.name = "trailwatch-*"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathCond {
    root: Root,
    /// Object keys under the root, outermost first; never empty.
    path: Vec<String>,
    cond: Cond,
}

impl PathCond {
    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        let found = self
            .root
            .json(facts)
            .map_or(Found::Absent, |json| json.at(&self.path));
        match found {
            Found::Str(text) => self.cond.holds(FactValue::Str(Some(&text))),
            Found::Absent => self.cond.holds(FactValue::Str(None)),
            Found::Other => false,
        }
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
        write!(f, "{}.{}", self.root.key(), self.path.join("."))
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

/// A table that is a value (`{ exists = ... }`, `{ equals = ... }`), not more paths. A
/// request field named `exists` or `equals` cannot be tested.
fn is_value(table: &toml::Table) -> bool {
    table.contains_key("exists") || table.contains_key("equals")
}

fn collect(
    ctx: &Ctx<'_>,
    root: Root,
    prefix: &[String],
    table: &toml::Table,
    out: &mut Vec<PathCond>,
) -> Result<(), RulesError> {
    for (key, value) in table {
        let mut path = prefix.to_vec();
        path.extend(key.split('.').map(str::to_owned));
        let name = format!("{}.{}", root.key(), path.join("."));
        if let Some(reason) = path.iter().find_map(|segment| segment_error(segment)) {
            return Err(ctx.bad_path(&name, reason.to_owned()));
        }
        match value {
            // A table is a value only as `{ exists = ... }` or `{ equals = ... }`; any other
            // nests paths.
            toml::Value::Table(inner) if !is_value(inner) => {
                if inner.is_empty() {
                    return Err(ctx.type_error(&name, PATHS, value));
                }
                collect(ctx, root, &path, inner, out)?;
            }
            _ => {
                let cond = ctx.glob_cond(&name, value)?;
                out.push(PathCond { root, path, cond });
            }
        }
    }
    Ok(())
}

fn segment_error(segment: &str) -> Option<&'static str> {
    if segment.is_empty() {
        Some("has an empty path segment (two dots, or a dot at an end)")
    } else if segment.contains(['[', ']']) {
        Some("looks into an array (`[]`), which request paths do not do yet")
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
            request: request.map(RawJson::new),
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
    fn values_that_are_not_strings_satisfy_no_condition() {
        for m in [
            matcher(r#"request.a = "*""#).unwrap(),
            matcher("request.a = { exists = true }").unwrap(),
            matcher("request.a = { exists = false }").unwrap(),
        ] {
            for other in [
                r#"{"a":3}"#,
                r#"{"a":true}"#,
                r#"{"a":null}"#,
                r#"{"a":{"b":"x"}}"#,
                r#"{"a":["x"]}"#,
            ] {
                assert!(!holds(&m, other), "{other} under {m:?}");
            }
        }
        let m = matcher("request.a.b = { exists = false }").unwrap();
        assert!(
            !holds(&m, r#"{"a":[{"b":"x"}]}"#),
            "an array on the way is not absence: EventBridge would look inside"
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
                "request = { name = 3 }",
                &["`request.name`", "glob string", "integer 3"],
            ),
            (
                "request = { enabled = true }",
                &["`request.enabled`", "boolean true"],
            ),
            ("request = { a = {} }", &["`request.a`", "table of paths"]),
            (
                "request = { \"a..b\" = \"x\" }",
                &["`request.a..b`", "empty path segment"],
            ),
            (
                "request = { \"items[].id\" = \"x\" }",
                &["`request.items[].id`", "array"],
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
