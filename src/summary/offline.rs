//! Deterministic English and Korean summaries.
