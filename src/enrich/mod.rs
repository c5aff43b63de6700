//! Enrichment: who did it and with what (the performer) and what must never leave (redaction).

pub mod actor;
pub mod redact;

pub use actor::{
    ActorConfig, AgentMemo, Ci, CiRoles, Origin, Performer, Principal, PrincipalKind, Tool,
    classify, classify_with,
};
