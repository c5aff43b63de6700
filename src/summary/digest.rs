//! The compact, redacted digest of a batch: what a model sees.
