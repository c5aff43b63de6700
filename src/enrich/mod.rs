//! Enrichment: who did it (actor classification) and what must never leave (redaction).

pub mod actor;
pub mod redact;

pub use actor::{Actor, ActorConfig, ActorKind, AgentMemo, Via, classify, classify_with};
