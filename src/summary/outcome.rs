//! What a call did: a change, a read, or an attempt that failed (denied, or failed otherwise).
//! Messages count and word each apart: "103 changes" must never mean 103 `Describe*` calls or
//! denied attempts.

use crate::event::{Event, EventKind};

/// The outcome of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// A write (or a sign-in) that succeeded.
    Change,
    /// A read-only call (`readOnly: true`) that succeeded.
    Read,
    /// Refused for lack of permission (`AccessDenied*`, `*UnauthorizedOperation`, ...).
    Denied,
    /// Failed for another reason (a bad request, a missing resource, a failed sign-in).
    Failed,
}

impl Outcome {
    /// The outcome of `event`. A console sign-in fails by `responseElements.ConsoleLogin =
    /// Failure` (it carries no `errorCode`); a call fails by its `errorCode`.
    pub fn of(event: &Event) -> Self {
        if event.kind == EventKind::ConsoleSignIn
            && event.login_result.as_deref() == Some("Failure")
        {
            return Self::Failed;
        }
        match event.error_code.as_deref() {
            Some(code) if is_denial(code) => Self::Denied,
            Some(_) => Self::Failed,
            None if event.read_only == Some(true) => Self::Read,
            None => Self::Change,
        }
    }

    /// Denied or failed: the call did not happen.
    pub fn is_attempt(self) -> bool {
        matches!(self, Self::Denied | Self::Failed)
    }
}

/// Error codes that mean "not allowed" (IAM, SCPs, resource policies), as AWS services spell
/// them: `AccessDenied`, `AccessDeniedException`, `Client.UnauthorizedOperation`,
/// `UnauthorizedOperation`, `Unauthorized`, `Forbidden`.
pub fn is_denial(code: &str) -> bool {
    code.contains("AccessDenied") || code.contains("Unauthorized") || code.contains("Forbidden")
}

/// How many events of each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub changes: usize,
    pub reads: usize,
    pub denied: usize,
    pub failed: usize,
}

impl Outcomes {
    pub fn count<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut out = Self::default();
        for event in events {
            match Outcome::of(event) {
                Outcome::Change => out.changes += 1,
                Outcome::Read => out.reads += 1,
                Outcome::Denied => out.denied += 1,
                Outcome::Failed => out.failed += 1,
            }
        }
        out
    }

    /// Every event an attempt that did not happen.
    pub fn all_attempts(&self) -> bool {
        self.changes + self.reads == 0 && self.denied + self.failed > 0
    }
}
