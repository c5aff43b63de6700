//! trailwatch: CloudTrail changes across an organisation, explained in Slack.

pub mod adapters;
pub mod app;
pub mod config;
pub mod delivery;
pub mod engine;
pub mod enrich;
pub mod event;
pub mod incident;
pub mod locale;
pub mod ports;
pub mod render;
pub mod rules;
pub mod secret;
pub mod severity;
pub mod summary;
pub mod window;

#[cfg(test)]
mod testing;

pub use severity::Severity;
