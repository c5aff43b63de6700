//! The `[rule.match]` table: its keys, how each is parsed, and how it tests an event's facts.

use std::fmt;

use crate::event::{EventKind, Facts};

use super::RulesError;
use super::glob::Glob;
use super::path::{self, PathCond, Root};
pub use super::value::Cond;
use super::value::{Compare, Leaf, Organization, Scope};

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
    SourceIp,
    Region,
    ConsoleSession,
}

/// What a fact of an event holds, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactValue<'a> {
    Str(Option<&'a str>),
    Bool(Option<bool>),
}

impl<'a> FactValue<'a> {
    /// The value as the one leaf a condition tests, or none when the field is absent.
    pub fn leaf(self) -> Option<Leaf<'a>> {
        match self {
            Self::Str(v) => v.map(Leaf::Str),
            Self::Bool(v) => v.map(Leaf::Bool),
        }
    }
}

impl Field {
    pub const ALL: [Self; 16] = [
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
        Self::SourceIp,
        Self::Region,
        Self::ConsoleSession,
    ];

    pub const KEYS: [&'static str; 16] = [
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
        "source_ip",
        "region",
        "console_session",
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
            Self::SourceIp => &["detail", "sourceIPAddress"],
            Self::Region => &["detail", "awsRegion"],
            Self::ConsoleSession => &["detail", "sessionCredentialFromConsole"],
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
            Self::SourceIp => FactValue::Str(facts.source_ip),
            Self::Region => FactValue::Str(Some(facts.region)),
            Self::ConsoleSession => FactValue::Str(facts.console_session),
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
    /// True when the event matches, with no organisation known (see [`Organization`]).
    #[cfg(test)]
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        self.matches_in(facts, &Organization::default())
    }

    /// True when the event matches, `organization` answering `not_org_account`.
    pub fn matches_in(&self, facts: &Facts<'_>, organization: &Organization) -> bool {
        let scope = Scope {
            organization,
            account: facts.account,
        };
        self.kinds.contains(facts.kind)
            && self.order.iter().all(|&i| {
                let (field, cond) = &self.conds[i];
                field_holds(cond, field.value(facts), &scope)
            })
            && self.paths.iter().all(|p| p.holds(facts, &scope))
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
                _ => conds.push((field, ctx.value_cond(field.key(), value, false)?)),
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
        let organization = Organization::default();
        let scope = Scope {
            organization: &organization,
            account: "",
        };
        let cloudtrail = !self.kinds.intersect(KindSet::CLOUDTRAIL).is_empty();
        let state_change = self.kinds.contains(EventKind::StateChange);
        if !cloudtrail {
            let probe = state_change_facts();
            let field = self
                .conds
                .iter()
                .find(|(f, c)| {
                    !matches!(f, Field::State | Field::Region)
                        && !field_holds(c, f.value(&probe), &scope)
                })
                .map(|(f, _)| f.to_string());
            let path = || {
                self.paths
                    .iter()
                    .find(|p| !p.holds(&probe, &scope))
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

/// A condition on a field of the record: one value, or none.
pub fn field_holds(cond: &Cond, value: FactValue<'_>, scope: &Scope<'_>) -> bool {
    let leaf = value.leaf();
    cond.holds(leaf.as_slice(), scope)
}

/// The facts of an EC2 state change as the decoder gives them (an AWS service identity,
/// invoked by EC2, not read-only), with a state and region that any condition on them
/// accepts: those two are checked on the event.
pub fn state_change_facts() -> Facts<'static> {
    Facts {
        kind: EventKind::StateChange,
        source: "ec2.amazonaws.com",
        name: "InstanceStateChange",
        error_code: None,
        identity_type: Some("AWSService"),
        read_only: Some(false),
        mfa_used: None,
        login_result: None,
        state: None,
        user_agent: None,
        role_name: None,
        user_name: None,
        invoked_by: Some("ec2.amazonaws.com"),
        account: "",
        region: "",
        source_ip: None,
        console_session: None,
        request: None,
        response: None,
        additional: None,
        resources: None,
    }
}

/// Which entry is being parsed, for error messages.
pub struct Ctx<'a> {
    section: &'static str,
    id: &'a str,
}

const GLOBS: &str = "a glob string, a non-empty list of glob strings, or one of { equals = \"text\" }, { exists = true|false }, { anything-but = ... }, { equals-ignore-case = ... }, { cidr = \"a.b.c.d/n\" }";
const PATH_VALUES: &str = "a glob string, a non-empty list of glob strings, true, false, a number, or one of { equals = \"text\" }, { exists = true|false }, { anything-but = ... }, { equals-ignore-case = ... }, { numeric = [\">\", 0, \"<=\", 5] }, { cidr = \"a.b.c.d/n\" }, { not_org_account = true }";
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

    /// The condition of a key (`key` as errors name it); `on_path`: a path key (`request.x`),
    /// whose values may also be booleans, numbers, `numeric` and `not_org_account`.
    pub fn value_cond(
        &self,
        key: &str,
        value: &toml::Value,
        on_path: bool,
    ) -> Result<Cond, RulesError> {
        let expected = if on_path { PATH_VALUES } else { GLOBS };
        let wrong = || self.type_error(key, expected, value);
        match value {
            toml::Value::Table(t) => {
                let (op, arg) = match t.iter().next() {
                    Some(pair) if t.len() == 1 => pair,
                    _ => return Err(wrong()),
                };
                match (op.as_str(), arg) {
                    ("exists", toml::Value::Boolean(b)) => Ok(Cond::Exists(*b)),
                    ("equals", toml::Value::String(text)) if !text.is_empty() => {
                        Ok(Cond::Globs(vec![Glob::literal(text)]))
                    }
                    ("anything-but", _) => self.anything_but(key, arg, expected, value),
                    ("equals-ignore-case", _) => {
                        let texts = self.strings(key, arg, expected)?;
                        if texts.iter().any(|t| t.is_empty()) {
                            return Err(wrong());
                        }
                        Ok(Cond::EqualsIgnoreCase(
                            texts.into_iter().map(str::to_owned).collect(),
                        ))
                    }
                    ("cidr", _) => self
                        .strings(key, arg, expected)?
                        .into_iter()
                        .map(|text| {
                            text.parse::<ipnet::IpNet>().map_err(|_| {
                                self.bad_path(
                                    key,
                                    format!(
                                        "has cidr {text:?}, which is not an IP network like \"10.0.0.0/8\""
                                    ),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(Cond::Cidr),
                    ("numeric", toml::Value::Array(items)) if on_path => {
                        Self::numeric(items).ok_or_else(wrong)
                    }
                    ("not_org_account", toml::Value::Boolean(true)) if on_path => {
                        Ok(Cond::NotOrgAccount)
                    }
                    _ => Err(wrong()),
                }
            }
            toml::Value::Boolean(b) if on_path => Ok(Cond::Bool(*b)),
            toml::Value::Integer(n) if on_path => Ok(Cond::Number((*n).into())),
            toml::Value::Float(f) if on_path => serde_json::Number::from_f64(*f)
                .map(Cond::Number)
                .ok_or_else(wrong),
            _ => self
                .strings(key, value, expected)?
                .into_iter()
                .map(|text| self.glob(key, text))
                .collect::<Result<Vec<_>, _>>()
                .map(Cond::Globs),
        }
    }

    fn glob(&self, key: &str, text: &str) -> Result<Glob, RulesError> {
        Glob::new(text).map_err(|reason| RulesError::BadGlob {
            section: self.section,
            id: self.id.to_owned(),
            key: key.to_owned(),
            glob: text.to_owned(),
            reason: reason.to_string(),
        })
    }

    /// `{ anything-but = "x" | ["x", ...] | "glob" }`: exact strings, or one glob (EventBridge's
    /// `anything-but` takes a list of values, or one `prefix`, `suffix` or `wildcard`).
    fn anything_but(
        &self,
        key: &str,
        arg: &toml::Value,
        expected: &'static str,
        whole: &toml::Value,
    ) -> Result<Cond, RulesError> {
        let texts = self.strings(key, arg, expected)?;
        let globs = texts
            .iter()
            .map(|text| self.glob(key, text))
            .collect::<Result<Vec<_>, _>>()?;
        if globs.len() > 1 && globs.iter().any(|g| g.exact().is_none()) {
            return Err(self.bad_path(
                key,
                format!(
                    "has {whole}: anything-but takes exact strings, or a single glob (EventBridge cannot combine them)"
                ),
            ));
        }
        Ok(Cond::AnythingBut(globs))
    }

    /// `[">", 0, "<=", 5]`, as EventBridge takes it: one comparison, or a lower bound (`>` or
    /// `>=`) then an upper one (`<` or `<=`); each number within EventBridge's range
    /// ([`crate::rules::value::NUMERIC_LIMIT`]).
    fn numeric(items: &[toml::Value]) -> Option<Cond> {
        if !(items.len() == 2 || items.len() == 4) {
            return None;
        }
        let bounds = items
            .chunks(2)
            .map(|pair| {
                let cmp = Compare::parse(pair[0].as_str()?)?;
                let n: serde_json::Number = match &pair[1] {
                    toml::Value::Integer(n) => (*n).into(),
                    toml::Value::Float(f) => serde_json::Number::from_f64(*f)?,
                    _ => return None,
                };
                n.as_f64()
                    .is_some_and(super::value::within_numeric_limit)
                    .then_some((cmp, n))
            })
            .collect::<Option<Vec<_>>>()?;
        let shape_ok = match bounds.as_slice() {
            [_] => true,
            [(lower, _), (upper, _)] => {
                matches!(lower, Compare::Gt | Compare::Ge)
                    && matches!(upper, Compare::Lt | Compare::Le)
            }
            _ => false,
        };
        shape_ok.then_some(Cond::Numeric(bounds))
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
