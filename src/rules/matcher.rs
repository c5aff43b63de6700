//! The `[rule.match]` table: its keys, how each is parsed, and how it tests an event's facts.

use std::fmt;

use crate::event::{EventKind, Facts};

use super::RulesError;
use super::glob::Glob;
use super::path::{self, PathCond, Root};

/// A key of a `[rule.match]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    DetailType,
    Source,
    Name,
    ErrorCode,
    IdentityType,
    ReadOnly,
    MfaUsed,
    LoginResult,
    State,
    UserAgent,
    RoleName,
    UserName,
    InvokedBy,
}

/// What a fact of an event holds, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactValue<'a> {
    Str(Option<&'a str>),
    Bool(Option<bool>),
}

impl FactValue<'_> {
    fn is_present(self) -> bool {
        match self {
            Self::Str(v) => v.is_some(),
            Self::Bool(v) => v.is_some(),
        }
    }
}

impl Field {
    pub const ALL: [Self; 13] = [
        Self::DetailType,
        Self::Source,
        Self::Name,
        Self::ErrorCode,
        Self::IdentityType,
        Self::ReadOnly,
        Self::MfaUsed,
        Self::LoginResult,
        Self::State,
        Self::UserAgent,
        Self::RoleName,
        Self::UserName,
        Self::InvokedBy,
    ];

    pub const KEYS: [&'static str; 13] = [
        "detail_type",
        "source",
        "name",
        "error_code",
        "identity_type",
        "read_only",
        "mfa_used",
        "login_result",
        "state",
        "user_agent",
        "role_name",
        "user_name",
        "invoked_by",
    ];

    /// The key as written in TOML.
    pub fn key(self) -> &'static str {
        Self::KEYS[self as usize]
    }

    fn from_key(key: &str) -> Option<Self> {
        Self::KEYS
            .iter()
            .position(|k| *k == key)
            .map(|i| Self::ALL[i])
    }

    /// Where the field sits in an EventBridge envelope of a CloudTrail event. `source` is the
    /// CloudTrail `eventSource` (`detail.eventSource`); the pattern generator also derives the
    /// envelope `source` from it.
    pub fn path(self) -> &'static [&'static str] {
        match self {
            Self::DetailType => &["detail-type"],
            Self::Source => &["detail", "eventSource"],
            Self::Name => &["detail", "eventName"],
            Self::ErrorCode => &["detail", "errorCode"],
            Self::IdentityType => &["detail", "userIdentity", "type"],
            Self::ReadOnly => &["detail", "readOnly"],
            Self::MfaUsed => &["detail", "additionalEventData", "MFAUsed"],
            Self::LoginResult => &["detail", "responseElements", "ConsoleLogin"],
            Self::State => &["detail", "state"],
            Self::UserAgent => &["detail", "userAgent"],
            Self::RoleName => &[
                "detail",
                "userIdentity",
                "sessionContext",
                "sessionIssuer",
                "userName",
            ],
            Self::UserName => &["detail", "userIdentity", "userName"],
            Self::InvokedBy => &["detail", "userIdentity", "invokedBy"],
        }
    }

    /// The fact this field tests. `detail_type` is tested through [`KindSet`], not here.
    pub fn value<'a>(self, facts: &Facts<'a>) -> FactValue<'a> {
        match self {
            Self::DetailType => FactValue::Str(Some(facts.kind.detail_type())),
            Self::Source => FactValue::Str(Some(facts.source)),
            Self::Name => FactValue::Str(Some(facts.name)),
            Self::ErrorCode => FactValue::Str(facts.error_code),
            Self::IdentityType => FactValue::Str(facts.identity_type),
            Self::ReadOnly => FactValue::Bool(facts.read_only),
            Self::MfaUsed => FactValue::Str(facts.mfa_used),
            Self::LoginResult => FactValue::Str(facts.login_result),
            Self::State => FactValue::Str(facts.state),
            Self::UserAgent => FactValue::Str(facts.user_agent),
            Self::RoleName => FactValue::Str(facts.role_name),
            Self::UserName => FactValue::Str(facts.user_name),
            Self::InvokedBy => FactValue::Str(facts.invoked_by),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Every key a `[rule.match]` table may have, for the unknown-key error.
pub fn known_keys() -> String {
    let fields = Field::KEYS.into_iter();
    let roots = Root::ALL.into_iter().map(Root::key);
    fields.chain(roots).collect::<Vec<_>>().join(", ")
}

/// The condition one key puts on its fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// Any of these globs matches the (present) string.
    Globs(Vec<Glob>),
    /// The fact is present (`true`) or absent (`false`).
    Exists(bool),
    /// The (present) boolean equals this.
    Bool(bool),
}

impl Cond {
    pub fn holds(&self, value: FactValue<'_>) -> bool {
        match (self, value) {
            (Self::Globs(globs), FactValue::Str(Some(v))) => globs.iter().any(|g| g.matches(v)),
            (Self::Exists(want), v) => v.is_present() == *want,
            (Self::Bool(want), FactValue::Bool(Some(v))) => v == *want,
            _ => false,
        }
    }

    /// The exact values, when every glob is exact (what the index can hash).
    pub fn exact_values(&self) -> Option<Vec<&str>> {
        match self {
            Self::Globs(globs) => globs.iter().map(Glob::exact).collect(),
            _ => None,
        }
    }

    /// How much a test costs, in rank: presence and booleans, whole or end comparisons, then
    /// substring searches.
    fn cost(&self) -> u8 {
        match self {
            Self::Exists(_) | Self::Bool(_) => 0,
            Self::Globs(globs) if globs.iter().all(|g| !g.searches()) => 1,
            Self::Globs(_) => 2,
        }
    }

    /// True when a missing fact fails this condition.
    fn requires_presence(&self) -> bool {
        !matches!(self, Self::Exists(false))
    }
}

/// A set of [`EventKind`]s, i.e. of detail-types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KindSet(u8);

impl KindSet {
    const ORDER: [EventKind; 4] = [
        EventKind::ApiCall,
        EventKind::ConsoleSignIn,
        EventKind::ServiceEvent,
        EventKind::StateChange,
    ];

    /// What a rule without `detail_type` applies to: the three CloudTrail detail-types.
    pub const CLOUDTRAIL: Self = Self(0b0111);
    pub const STATE_CHANGE: Self = Self(0b1000);
    pub const EMPTY: Self = Self(0);

    fn bit(kind: EventKind) -> u8 {
        match kind {
            EventKind::ApiCall => 1,
            EventKind::ConsoleSignIn => 2,
            EventKind::ServiceEvent => 4,
            EventKind::StateChange => 8,
        }
    }

    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    #[must_use]
    pub fn with(self, kind: EventKind) -> Self {
        Self(self.0 | Self::bit(kind))
    }

    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    #[must_use]
    pub fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = EventKind> {
        Self::ORDER.into_iter().filter(move |k| self.contains(*k))
    }
}

/// A compiled `[rule.match]`: the detail-types it applies to and, for the other keys, conditions
/// that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    kinds: KindSet,
    /// Sorted by field, at most one per field, never `detail_type`.
    conds: Vec<(Field, Cond)>,
    /// Positions in `conds`, cheapest test first: an event most often fails on a boolean or
    /// an exact name, so the substring searches of `*word*` globs run last.
    order: Vec<usize>,
    /// Conditions inside the record's JSON (`request = { ... }`), sorted by path. Tested after
    /// every other condition: each one walks the JSON text.
    paths: Vec<PathCond>,
}

impl Matcher {
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        self.kinds.contains(facts.kind)
            && self.order.iter().all(|&i| {
                let (field, cond) = &self.conds[i];
                cond.holds(field.value(facts))
            })
            && self.paths.iter().all(|p| p.holds(facts))
    }

    pub fn kinds(&self) -> KindSet {
        self.kinds
    }

    pub fn conds(&self) -> &[(Field, Cond)] {
        &self.conds
    }

    pub fn cond(&self, field: Field) -> Option<&Cond> {
        self.conds.iter().find(|(f, _)| *f == field).map(|(_, c)| c)
    }

    pub fn paths(&self) -> &[PathCond] {
        &self.paths
    }

    /// Compile a `[rule.match]` table of the entry `id` in `section` (`rule` or `ignore`).
    pub fn parse(section: &'static str, id: &str, table: &toml::Table) -> Result<Self, RulesError> {
        if table.is_empty() {
            return Err(RulesError::EmptyMatch {
                section,
                id: id.to_owned(),
            });
        }
        let ctx = Ctx { section, id };
        let mut kinds = None;
        let mut conds = Vec::new();
        let mut paths = Vec::new();
        for (key, value) in table {
            if let Some(root) = Root::from_key(key) {
                paths.extend(path::parse(&ctx, root, value)?);
                continue;
            }
            let field = Field::from_key(key).ok_or_else(|| RulesError::UnknownKey {
                section,
                id: id.to_owned(),
                key: key.clone(),
            })?;
            match field {
                Field::DetailType => kinds = Some(ctx.detail_types(value)?),
                Field::ReadOnly => conds.push((field, ctx.bool_cond(field, value)?)),
                _ => conds.push((field, ctx.glob_cond(field.key(), value)?)),
            }
        }
        conds.sort_by_key(|(f, _)| *f);
        let mut order: Vec<usize> = (0..conds.len()).collect();
        order.sort_by_key(|&i| conds[i].1.cost());
        let matcher = Self {
            kinds: kinds.unwrap_or(KindSet::CLOUDTRAIL),
            conds,
            order,
            paths,
        };
        matcher.check_satisfiable(&ctx)?;
        Ok(matcher)
    }

    /// Reject rules that no event can match: an EC2 state change carries only `state` (its source
    /// is `ec2.amazonaws.com`, its name `InstanceStateChange`), and CloudTrail records carry no
    /// `state`.
    fn check_satisfiable(&self, ctx: &Ctx<'_>) -> Result<(), RulesError> {
        let never = |reason: String| RulesError::NeverMatches {
            section: ctx.section,
            id: ctx.id.to_owned(),
            reason,
        };
        let cloudtrail = !self.kinds.intersect(KindSet::CLOUDTRAIL).is_empty();
        let state_change = self.kinds.contains(EventKind::StateChange);
        if !cloudtrail {
            let probe = state_change_facts();
            let field = self
                .conds
                .iter()
                .find(|(f, c)| *f != Field::State && !c.holds(f.value(&probe)))
                .map(|(f, _)| f.to_string());
            let path = || {
                self.paths
                    .iter()
                    .find(|p| !p.holds(&probe))
                    .map(ToString::to_string)
            };
            if let Some(key) = field.or_else(path) {
                return Err(never(format!(
                    "`{key}` cannot hold for an EC2 state change (source ec2.amazonaws.com, name InstanceStateChange, only `state` present)"
                )));
            }
        }
        if !state_change && self.cond(Field::State).is_some_and(Cond::requires_presence) {
            return Err(never(
                "`state` is only present on `EC2 Instance State-change Notification`; add it to `detail_type`".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The facts of an EC2 state change, with a state that any `state` condition accepts.
pub fn state_change_facts() -> Facts<'static> {
    Facts {
        kind: EventKind::StateChange,
        source: "ec2.amazonaws.com",
        name: "InstanceStateChange",
        error_code: None,
        identity_type: None,
        read_only: None,
        mfa_used: None,
        login_result: None,
        state: None,
        user_agent: None,
        role_name: None,
        user_name: None,
        invoked_by: None,
        request: None,
    }
}

/// Which entry is being parsed, for error messages.
pub struct Ctx<'a> {
    section: &'static str,
    id: &'a str,
}

const GLOBS: &str = "a glob string, a non-empty list of glob strings, { equals = \"text\" } or { exists = true|false }";
const BOOL: &str = "true, false, or { exists = true|false }";
const DETAIL_TYPES: &str = "a detail-type string or a non-empty list of them";

impl Ctx<'_> {
    pub fn type_error(&self, key: &str, expected: &'static str, found: &toml::Value) -> RulesError {
        RulesError::FieldType {
            section: self.section,
            id: self.id.to_owned(),
            key: key.to_owned(),
            expected,
            found: describe(found),
        }
    }

    pub fn bad_path(&self, key: &str, reason: String) -> RulesError {
        RulesError::BadPath {
            section: self.section,
            id: self.id.to_owned(),
            key: key.to_owned(),
            reason,
        }
    }

    /// `{ exists = bool }`, if that is what `value` is.
    fn exists(
        &self,
        key: &str,
        value: &toml::Value,
        expected: &'static str,
    ) -> Result<Option<bool>, RulesError> {
        let toml::Value::Table(t) = value else {
            return Ok(None);
        };
        match (t.len(), t.get("exists")) {
            (1, Some(toml::Value::Boolean(b))) => Ok(Some(*b)),
            _ => Err(self.type_error(key, expected, value)),
        }
    }

    fn strings<'v>(
        &self,
        key: &str,
        value: &'v toml::Value,
        expected: &'static str,
    ) -> Result<Vec<&'v str>, RulesError> {
        match value {
            toml::Value::String(s) => Ok(vec![s.as_str()]),
            toml::Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| self.type_error(key, expected, value))
                })
                .collect(),
            _ => Err(self.type_error(key, expected, value)),
        }
    }

    /// The condition of a key that takes globs (`key` as errors name it).
    pub fn glob_cond(&self, key: &str, value: &toml::Value) -> Result<Cond, RulesError> {
        // `{ equals = "*" }`: the text as it is, `*` included (a glob cannot say a literal `*`).
        if let toml::Value::Table(t) = value
            && t.len() == 1
            && let Some(equals) = t.get("equals")
        {
            return match equals.as_str() {
                Some(text) if !text.is_empty() => Ok(Cond::Globs(vec![Glob::literal(text)])),
                _ => Err(self.type_error(key, GLOBS, value)),
            };
        }
        if let Some(b) = self.exists(key, value, GLOBS)? {
            return Ok(Cond::Exists(b));
        }
        let globs = self
            .strings(key, value, GLOBS)?
            .into_iter()
            .map(|text| {
                Glob::new(text).map_err(|reason| RulesError::BadGlob {
                    section: self.section,
                    id: self.id.to_owned(),
                    key: key.to_owned(),
                    glob: text.to_owned(),
                    reason: reason.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cond::Globs(globs))
    }

    fn bool_cond(&self, field: Field, value: &toml::Value) -> Result<Cond, RulesError> {
        if let Some(b) = self.exists(field.key(), value, BOOL)? {
            return Ok(Cond::Exists(b));
        }
        match value {
            toml::Value::Boolean(b) => Ok(Cond::Bool(*b)),
            _ => Err(self.type_error(field.key(), BOOL, value)),
        }
    }

    fn detail_types(&self, value: &toml::Value) -> Result<KindSet, RulesError> {
        let mut kinds = KindSet::EMPTY;
        for text in self.strings(Field::DetailType.key(), value, DETAIL_TYPES)? {
            let kind =
                EventKind::from_detail_type(text).ok_or_else(|| RulesError::UnknownDetailType {
                    section: self.section,
                    id: self.id.to_owned(),
                    value: text.to_owned(),
                })?;
            kinds = kinds.with(kind);
        }
        Ok(kinds)
    }
}

/// A short description of a TOML value for error messages.
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Array(a) if a.is_empty() => "an empty list".to_owned(),
        toml::Value::Table(_) => format!("the table {value}"),
        other => format!("{} {other}", other.type_str()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use super::*;

    fn matcher(toml_text: &str) -> Result<Matcher, RulesError> {
        let table: toml::Table = toml::from_str(toml_text).unwrap();
        Matcher::parse("rule", "t", &table)
    }

    fn facts() -> Facts<'static> {
        Facts {
            kind: EventKind::ApiCall,
            source: "iam.amazonaws.com",
            name: "CreateUser",
            error_code: None,
            identity_type: Some("IAMUser"),
            read_only: Some(false),
            mfa_used: None,
            login_result: None,
            state: None,
            user_agent: Some("aws-cli/2.17"),
            role_name: None,
            user_name: Some("alice"),
            invoked_by: None,
            request: None,
        }
    }

    #[test]
    fn every_given_key_must_hold() {
        let m = matcher(
            r#"source = "iam.amazonaws.com"
name = ["Create*", "DeleteUser"]
read_only = false"#,
        )
        .unwrap();
        assert!(m.matches(&facts()));
        assert!(!m.matches(&Facts {
            name: "GetUser",
            ..facts()
        }));
        assert!(!m.matches(&Facts {
            read_only: Some(true),
            ..facts()
        }));
        assert!(
            !m.matches(&Facts {
                read_only: None,
                ..facts()
            }),
            "a missing bool fails"
        );
        assert!(!m.matches(&Facts {
            source: "s3.amazonaws.com",
            ..facts()
        }));
    }

    #[test]
    fn missing_fact_fails_a_glob_and_exists_tests_presence() {
        let m = matcher(r#"error_code = ["AccessDenied*"]"#).unwrap();
        assert!(!m.matches(&facts()));
        assert!(m.matches(&Facts {
            error_code: Some("AccessDenied"),
            ..facts()
        }));

        let m = matcher("invoked_by = { exists = false }\nidentity_type = \"Root\"").unwrap();
        let root = Facts {
            identity_type: Some("Root"),
            ..facts()
        };
        assert!(m.matches(&root));
        assert!(!m.matches(&Facts {
            invoked_by: Some("cloudformation.amazonaws.com"),
            ..root
        }));

        let m = matcher("user_agent = { exists = true }").unwrap();
        assert!(m.matches(&facts()));
        assert!(!m.matches(&Facts {
            user_agent: None,
            ..facts()
        }));
    }

    #[test]
    fn cheap_tests_run_first_and_conditions_keep_their_field_order() {
        let m = matcher(
            r#"user_agent = ["*prowler*"]
error_code = ["AccessDenied*"]
read_only = true"#,
        )
        .unwrap();
        let tested: Vec<Field> = m.order.iter().map(|&i| m.conds[i].0).collect();
        assert_eq!(
            tested,
            [Field::ReadOnly, Field::ErrorCode, Field::UserAgent],
            "boolean, then prefix, then substring search"
        );
        let listed: Vec<Field> = m.conds().iter().map(|(f, _)| *f).collect();
        assert_eq!(
            listed,
            [Field::ErrorCode, Field::ReadOnly, Field::UserAgent]
        );
        assert!(m.matches(&Facts {
            error_code: Some("AccessDenied"),
            read_only: Some(true),
            user_agent: Some("prowler/4.0"),
            ..facts()
        }));
    }

    #[test]
    fn detail_type_defaults_to_the_cloudtrail_kinds() {
        let m = matcher(r#"name = "InstanceStateChange""#).unwrap();
        assert_eq!(m.kinds(), KindSet::CLOUDTRAIL);
        let change = Facts {
            kind: EventKind::StateChange,
            name: "InstanceStateChange",
            ..facts()
        };
        assert!(!m.matches(&change));
        for kind in [
            EventKind::ApiCall,
            EventKind::ConsoleSignIn,
            EventKind::ServiceEvent,
        ] {
            assert!(m.matches(&Facts { kind, ..change }));
        }
    }

    #[test]
    fn errors_name_the_key_and_what_was_expected() {
        let err = matcher("name = 3").unwrap_err().to_string();
        assert!(
            err.contains("`name`") && err.contains("glob string") && err.contains("integer 3"),
            "{err}"
        );

        let err = matcher("read_only = \"no\"").unwrap_err().to_string();
        assert!(
            err.contains("`read_only`") && err.contains("true, false"),
            "{err}"
        );

        let err = matcher("name = []").unwrap_err().to_string();
        assert!(err.contains("empty list"), "{err}");

        let err = matcher("naem = \"x\"").unwrap_err().to_string();
        assert!(
            err.contains("unknown match key `naem`") && err.contains("name"),
            "{err}"
        );

        let err = matcher("source = { exists = \"yes\" }")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`source`") && err.contains("exists = true|false"),
            "{err}"
        );

        let err = matcher("detail_type = \"AWS Thing\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown detail-type \"AWS Thing\""), "{err}");

        let err = matcher("name = \"a**\"").unwrap_err().to_string();
        assert!(
            err.contains("`name`") && err.contains("consecutive"),
            "{err}"
        );

        assert!(matches!(matcher(""), Err(RulesError::EmptyMatch { .. })));
    }

    #[test]
    fn unsatisfiable_rules_are_rejected() {
        let err = matcher(
            "detail_type = \"EC2 Instance State-change Notification\"\nname = \"RunInstances\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("can never match") && err.contains("`name`"),
            "{err}"
        );
        let err = matcher("state = \"terminated\"").unwrap_err().to_string();
        assert!(
            err.contains("can never match") && err.contains("`state`"),
            "{err}"
        );
        assert!(
            matcher("detail_type = \"EC2 Instance State-change Notification\"\nsource = \"ec2.*\"\nstate = \"terminated\"")
                .is_ok()
        );
    }
}
