//! The value side of a match key: what one key asks of the value(s) it tests, and how it reads.
//!
//! Every condition means what the EventBridge operator of the same name means (Amazon
//! EventBridge User Guide, "Comparison operators for use in event patterns"), so the member
//! pattern generated from the pack forwards what the pack matches:
//!
//! | in the pack                                   | EventBridge                          |
//! |-----------------------------------------------|--------------------------------------|
//! | `"glob"`, `["glob", ...]`                     | exact, `prefix`, `suffix`, `wildcard`|
//! | `{ equals = "text" }`                         | exact (a `*` is a `*`)               |
//! | `{ exists = true \| false }`                  | `exists`                             |
//! | `true`, `false`, `3` (paths only)             | the JSON boolean or number           |
//! | `{ anything-but = "x" \| ["x", ...] \| "glob" }` | `anything-but` (a list, or one `prefix`/`suffix`/`wildcard`) |
//! | `{ equals-ignore-case = "x" \| [...] }`       | `equals-ignore-case`                 |
//! | `{ numeric = [">", 0, "<=", 5] }` (paths)     | `numeric`                            |
//! | `{ cidr = "10.0.0.0/8" \| [...] }`            | `cidr`                               |
//! | `{ not_org_account = true }` (paths)          | `exists: true` (a superset: only the engine knows the organisation) |
//!
//! A key tests a list of scalar values ([`Leaf`]s): a field of the record gives one or none; a
//! path gives every scalar under it, each element of an array standing for the array. A
//! condition holds when any value satisfies it (EventBridge's rule for arrays), except
//! `{ exists = false }`, which holds when there is none.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Number, Value};

use super::glob::{Glob, Operator};

/// One scalar value a key tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Leaf<'a> {
    Str(&'a str),
    Number(f64),
    Bool(bool),
    Null,
}

impl<'a> Leaf<'a> {
    /// The leaf of a JSON scalar (`None` for an object or array, which are never leaves).
    pub fn of(value: &'a Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::Str(s)),
            Value::Number(n) => n.as_f64().map(Self::Number),
            Value::Bool(b) => Some(Self::Bool(*b)),
            Value::Null => Some(Self::Null),
            Value::Array(_) | Value::Object(_) => None,
        }
    }
}

/// EventBridge compares numbers from -5e9 to 5e9 only (Amazon EventBridge User Guide, "Numeric
/// matching"); a number outside satisfies no `numeric` condition, in the pattern or here.
pub const NUMERIC_LIMIT: f64 = 5.0e9;

/// True for a number EventBridge can compare.
pub fn within_numeric_limit(n: f64) -> bool {
    n.is_finite() && (-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(&n)
}

/// A comparison of `{ numeric = [...] }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Compare {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "<" => Self::Lt,
            "<=" => Self::Le,
            "=" => Self::Eq,
            ">=" => Self::Ge,
            ">" => Self::Gt,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "=",
            Self::Ge => ">=",
            Self::Gt => ">",
        }
    }

    #[allow(clippy::float_cmp, reason = "EventBridge's `=` is exact equality")]
    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Self::Lt => value < bound,
            Self::Le => value <= bound,
            Self::Eq => value == bound,
            Self::Ge => value >= bound,
            Self::Gt => value > bound,
        }
    }
}

/// The accounts of the organisation, for `{ not_org_account = true }`.
///
/// Known: the organisation's account ids (configuration's `[trust] accounts` and `[accounts]`,
/// and in the Lambda AWS Organizations `ListAccounts`). Unknown (empty): no account can be told
/// foreign, so `not_org_account` holds for none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Organization {
    accounts: HashSet<String>,
}

impl Organization {
    pub fn new(accounts: impl IntoIterator<Item = String>) -> Self {
        Self {
            accounts: accounts.into_iter().collect(),
        }
    }

    /// The account ids known, in no order.
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.accounts.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

/// Where a condition is evaluated: the organisation, and the account of the event.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub organization: &'a Organization,
    pub account: &'a str,
}

impl Scope<'_> {
    /// True when `text` names an account (12 digits, or an ARN with an account field) that is
    /// neither the event's account nor one of the organisation's. Text that names no account
    /// (`all`, a key id, a bucket name) is not foreign; nor is any account while the
    /// organisation is unknown (no account configured or listed): a share with a sibling
    /// account must not read as leaving the organisation.
    pub fn names_foreign_account(&self, text: &str) -> bool {
        !self.organization.is_empty()
            && account_in(text)
                .is_some_and(|id| id != self.account && !self.organization.accounts.contains(id))
    }
}

/// The account id `text` names: itself when it is 12 digits, else an ARN's fifth field
/// (`arn:partition:service:region:account:resource`) when that is 12 digits.
pub fn account_in(text: &str) -> Option<&str> {
    let is_id = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    if is_id(text) {
        return Some(text);
    }
    let mut fields = text.strip_prefix("arn:")?.splitn(5, ':');
    let account = fields.nth(3)?;
    (fields.next().is_some() && is_id(account)).then_some(account)
}

/// The condition one key puts on its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// Any of these globs matches a string.
    Globs(Vec<Glob>),
    /// There is a value (`true`) or none (`false`).
    Exists(bool),
    /// A boolean equal to this.
    Bool(bool),
    /// A number equal to this.
    Number(Number),
    /// A string that none of these globs matches: all exact, or a single glob.
    AnythingBut(Vec<Glob>),
    /// A string equal to one of these, ignoring case (kept as given; compared lowercased).
    EqualsIgnoreCase(Vec<String>),
    /// A number for which every comparison holds.
    Numeric(Vec<(Compare, Number)>),
    /// A string that is an IP address inside one of these networks.
    Cidr(Vec<IpNet>),
    /// A string naming an account outside the organisation (see [`Scope`]).
    NotOrgAccount,
}

impl Cond {
    /// True when the condition holds for these values (any of them; none, for `exists = false`).
    pub fn holds(&self, leaves: &[Leaf<'_>], scope: &Scope<'_>) -> bool {
        match self {
            Self::Exists(want) => leaves.is_empty() != *want,
            _ => leaves.iter().any(|leaf| self.holds_for(*leaf, scope)),
        }
    }

    fn holds_for(&self, leaf: Leaf<'_>, scope: &Scope<'_>) -> bool {
        match (self, leaf) {
            (Self::Globs(globs), Leaf::Str(s)) => globs.iter().any(|g| g.matches(s)),
            (Self::Bool(want), Leaf::Bool(b)) => b == *want,
            (Self::Number(want), Leaf::Number(n)) => {
                want.as_f64().is_some_and(|w| Compare::Eq.holds(n, w))
            }
            (Self::AnythingBut(globs), Leaf::Str(s)) => !globs.iter().any(|g| g.matches(s)),
            (Self::EqualsIgnoreCase(texts), Leaf::Str(s)) => {
                texts.iter().any(|t| t.to_lowercase() == s.to_lowercase())
            }
            (Self::Numeric(bounds), Leaf::Number(n)) => {
                within_numeric_limit(n)
                    && bounds
                        .iter()
                        .all(|(cmp, b)| b.as_f64().is_some_and(|b| cmp.holds(n, b)))
            }
            (Self::Cidr(nets), Leaf::Str(s)) => s
                .parse::<IpAddr>()
                .is_ok_and(|ip| nets.iter().any(|net| net.contains(&ip))),
            (Self::NotOrgAccount, Leaf::Str(s)) => scope.names_foreign_account(s),
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
    /// substring searches and parsing.
    pub fn cost(&self) -> u8 {
        match self {
            Self::Exists(_) | Self::Bool(_) | Self::Number(_) => 0,
            Self::Globs(globs) | Self::AnythingBut(globs)
                if globs.iter().all(|g| !g.searches()) =>
            {
                1
            }
            Self::EqualsIgnoreCase(_) | Self::Numeric(_) => 1,
            Self::Globs(_) | Self::AnythingBut(_) | Self::Cidr(_) | Self::NotOrgAccount => 2,
        }
    }

    /// True when no value at all fails this condition.
    pub fn requires_presence(&self) -> bool {
        !matches!(self, Self::Exists(false))
    }

    /// The EventBridge operators that forward what this condition matches (exactly, except
    /// `not_org_account`, which forwards every value: the organisation is known only here).
    pub fn pattern_ops(&self) -> Vec<Value> {
        use serde_json::json;
        match self {
            Self::Globs(globs) => globs.iter().map(glob_op).collect(),
            Self::Exists(b) => vec![json!({ "exists": b })],
            Self::Bool(b) => vec![json!(b)],
            Self::Number(n) => vec![Value::Number(n.clone())],
            Self::AnythingBut(globs) => {
                let inner = match globs.as_slice() {
                    [one] => match one.operator() {
                        Operator::Equals(s) => json!(s),
                        Operator::Prefix(s) => json!({ "prefix": s }),
                        Operator::Suffix(s) => json!({ "suffix": s }),
                        Operator::Wildcard(s) => json!({ "wildcard": s }),
                    },
                    many => Value::Array(
                        many.iter()
                            .filter_map(Glob::exact)
                            .map(|s| json!(s))
                            .collect(),
                    ),
                };
                vec![json!({ "anything-but": inner })]
            }
            Self::EqualsIgnoreCase(texts) => texts
                .iter()
                .map(|t| json!({ "equals-ignore-case": t }))
                .collect(),
            Self::Numeric(bounds) => {
                let flat: Vec<Value> = bounds
                    .iter()
                    .flat_map(|(cmp, n)| [json!(cmp.as_str()), Value::Number(n.clone())])
                    .collect();
                vec![json!({ "numeric": flat })]
            }
            Self::Cidr(nets) => nets
                .iter()
                .map(|n| json!({ "cidr": n.to_string() }))
                .collect(),
            Self::NotOrgAccount => vec![json!({ "exists": true })],
        }
    }
}

fn glob_op(g: &Glob) -> Value {
    use serde_json::json;
    match g.operator() {
        Operator::Equals(s) => json!(s),
        Operator::Prefix(s) => json!({ "prefix": s }),
        Operator::Suffix(s) => json!({ "suffix": s }),
        Operator::Wildcard(s) => json!({ "wildcard": s }),
    }
}

/// The operator names a value table may have (`{ exists = ... }`): a table with one of these
/// keys is a value, any other a table of paths.
pub const OPERATORS: [&str; 7] = [
    "exists",
    "equals",
    "anything-but",
    "equals-ignore-case",
    "numeric",
    "cidr",
    "not_org_account",
];

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_twelve_digits_or_an_arns_account_field() {
        assert_eq!(account_in("193672423079"), Some("193672423079"));
        assert_eq!(
            account_in("arn:aws:kms:us-east-1:999999999999:key/attacker-key-id"),
            Some("999999999999")
        );
        assert_eq!(
            account_in("arn:aws:iam::111122223333:role/x"),
            Some("111122223333")
        );
        for none in [
            "all",
            "1936724230790",
            "19367242307",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-1:999999999999",
            "alias/aws/s3",
            "",
        ] {
            assert_eq!(account_in(none), None, "{none}");
        }
    }

    #[test]
    fn foreign_means_neither_the_events_account_nor_a_known_member() {
        let org = Organization::new(["111111111111".to_owned(), "222222222222".to_owned()]);
        let scope = Scope {
            organization: &org,
            account: "333333333333",
        };
        assert!(!scope.names_foreign_account("111111111111"));
        assert!(
            !scope.names_foreign_account("333333333333"),
            "its own account"
        );
        assert!(scope.names_foreign_account("999999999999"));
        assert!(!scope.names_foreign_account("all"));
        let unknown = Organization::default();
        let scope = Scope {
            organization: &unknown,
            account: "333333333333",
        };
        assert!(
            !scope.names_foreign_account("999999999999"),
            "without the list, no account can be told foreign"
        );
    }
}
