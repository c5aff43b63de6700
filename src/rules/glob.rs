//! `*` globs, compiled once, with the same meaning as EventBridge string matching.
//!
//! A glob without `*` is an exact, case-sensitive match. `*` matches any run of characters,
//! including none. Each glob maps onto one EventBridge operator: an exact string, `prefix`
//! (`Create*`), `suffix` (`*Policy`) or `wildcard` (anything else), so the generated pattern
//! means exactly what the matcher does.

use std::fmt;

/// One compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Exact,
    Prefix(String),
    Suffix(String),
    /// `first*middle*...*last`: `first` and `last` may be empty (a leading or trailing `*`).
    Wildcard {
        first: String,
        middle: Vec<String>,
        last: String,
    },
}

/// The EventBridge operator a glob becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator<'a> {
    Equals(&'a str),
    Prefix(&'a str),
    Suffix(&'a str),
    Wildcard(&'a str),
}

/// Why a glob cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobError {
    Empty,
    /// EventBridge rejects `**`.
    ConsecutiveStars,
    /// EventBridge `wildcard` gives `\` a meaning (escape) that a plain glob has not.
    Backslash,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "an empty glob matches nothing useful",
            Self::ConsecutiveStars => {
                "`**` is not allowed (EventBridge rejects consecutive wildcards)"
            }
            Self::Backslash => {
                "`\\` is not allowed in a glob with `*` (EventBridge reads it as an escape)"
            }
        })
    }
}

impl Glob {
    /// The text as an exact match, `*` included: `{ equals = "*" }` in a rule.
    pub fn literal(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            shape: Shape::Exact,
        }
    }

    pub fn new(text: &str) -> Result<Self, GlobError> {
        if text.is_empty() {
            return Err(GlobError::Empty);
        }
        if text.contains("**") {
            return Err(GlobError::ConsecutiveStars);
        }
        let star_count = text.matches('*').count();
        if star_count > 0 && text.contains('\\') {
            return Err(GlobError::Backslash);
        }
        let starts = text.starts_with('*');
        let ends = text.ends_with('*');
        let shape = match (star_count, starts, ends) {
            (0, _, _) => Shape::Exact,
            (1, false, true) => Shape::Prefix(text[..text.len() - 1].to_owned()),
            (1, true, false) => Shape::Suffix(text[1..].to_owned()),
            _ => {
                let mut parts: Vec<String> = text.split('*').map(str::to_owned).collect();
                // `split` on a text with at least one `*` yields at least two parts.
                let last = parts.pop().unwrap_or_default();
                let first = if parts.is_empty() {
                    String::new()
                } else {
                    parts.remove(0)
                };
                Shape::Wildcard {
                    first,
                    middle: parts.into_iter().filter(|p| !p.is_empty()).collect(),
                    last,
                }
            }
        };
        Ok(Self {
            text: text.to_owned(),
            shape,
        })
    }

    /// The exact value, when the glob has no `*`.
    pub fn exact(&self) -> Option<&str> {
        matches!(self.shape, Shape::Exact).then_some(self.text.as_str())
    }

    /// True when matching searches inside the value (`*word*`), not only compares its ends.
    pub fn searches(&self) -> bool {
        matches!(&self.shape, Shape::Wildcard { middle, .. } if !middle.is_empty())
    }

    pub fn operator(&self) -> Operator<'_> {
        match &self.shape {
            Shape::Exact => Operator::Equals(&self.text),
            Shape::Prefix(p) => Operator::Prefix(p),
            Shape::Suffix(s) => Operator::Suffix(s),
            Shape::Wildcard { .. } => Operator::Wildcard(&self.text),
        }
    }

    pub fn matches(&self, value: &str) -> bool {
        match &self.shape {
            Shape::Exact => value == self.text,
            Shape::Prefix(p) => value.starts_with(p.as_str()),
            Shape::Suffix(s) => value.ends_with(s.as_str()),
            Shape::Wildcard {
                first,
                middle,
                last,
            } => {
                if value.len() < first.len() + last.len()
                    || !value.starts_with(first.as_str())
                    || !value.ends_with(last.as_str())
                {
                    return false;
                }
                // Leftmost-first search of each middle part is complete for `*`-only globs.
                let mut rest = &value[first.len()..value.len() - last.len()];
                for part in middle {
                    match rest.find(part.as_str()) {
                        Some(at) => rest = &rest[at + part.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use super::*;

    fn glob(text: &str) -> Glob {
        Glob::new(text).unwrap()
    }

    #[test]
    fn exact_is_case_sensitive_and_whole() {
        let g = glob("CreateUser");
        assert!(g.matches("CreateUser"));
        assert!(!g.matches("createuser"));
        assert!(!g.matches("CreateUsers"));
        assert_eq!(g.exact(), Some("CreateUser"));
        assert_eq!(g.operator(), Operator::Equals("CreateUser"));
    }

    #[test]
    fn prefix_and_suffix() {
        let p = glob("AccessDenied*");
        assert!(p.matches("AccessDenied"));
        assert!(p.matches("AccessDeniedException"));
        assert!(!p.matches("XAccessDenied"));
        assert_eq!(p.operator(), Operator::Prefix("AccessDenied"));

        let s = glob("*UnauthorizedOperation");
        assert!(s.matches("Client.UnauthorizedOperation"));
        assert!(s.matches("UnauthorizedOperation"));
        assert!(!s.matches("UnauthorizedOperationX"));
        assert_eq!(s.operator(), Operator::Suffix("UnauthorizedOperation"));
        assert_eq!(s.exact(), None);
    }

    #[test]
    fn wildcard_in_the_middle_and_around() {
        let g = glob("*prowler*");
        assert!(g.matches("prowler"));
        assert!(g.matches("aws-sdk prowler/4.0"));
        assert!(!g.matches("Prowler"));
        assert_eq!(g.operator(), Operator::Wildcard("*prowler*"));

        assert!(g.searches());
        assert!(!glob("Put*Policy").searches(), "compares ends only");
        assert!(!glob("AccessDenied*").searches());
        assert!(glob("a*b*c").searches());

        let g = glob("Put*Policy");
        assert!(g.matches("PutUserPolicy"));
        assert!(g.matches("PutPolicy"));
        assert!(!g.matches("PutPolicyX"));

        let g = glob("a*b*a");
        assert!(g.matches("aba"));
        assert!(g.matches("abba"));
        assert!(!g.matches("aa"), "prefix and suffix must not overlap");
        assert!(!g.matches("ab"));

        let g = glob("*");
        assert!(g.matches(""));
        assert!(g.matches("anything"));
    }

    #[test]
    fn rejects_what_eventbridge_would_read_differently() {
        assert_eq!(Glob::new(""), Err(GlobError::Empty));
        assert_eq!(Glob::new("a**b"), Err(GlobError::ConsecutiveStars));
        assert_eq!(Glob::new("a\\*b"), Err(GlobError::Backslash));
        assert!(
            Glob::new("C:\\path").is_ok(),
            "no star: a literal backslash is exact"
        );
    }
}
