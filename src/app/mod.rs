//! The command line: thin wiring of config -> adapters -> engine.

#[cfg(feature = "cloud")]
mod audit;
#[cfg(feature = "cloud")]
pub mod consume;
#[cfg(feature = "cloud")]
pub mod lambda;
mod pattern;
mod replay;
#[cfg(feature = "cloud")]
pub mod send;
#[cfg(feature = "cloud")]
mod slack;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[cfg(feature = "cloud")]
pub use audit::{audit, parse_since};
pub use pattern::pattern;
pub use replay::{
    Input, ingest_as_arrived, ingest_in_order, input_files, render, replay, stats_line,
};
#[cfg(feature = "cloud")]
pub use slack::{RefreshingSlack, SECRET_MAX_AGE, lambda_slack_notifier};

/// trailwatch: what changed in your AWS accounts, who did it, how bad it is.
#[derive(Debug, Parser)]
#[command(name = "trailwatch", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay CloudTrail files through the engine and show the Slack messages it would send.
    Replay(Box<ReplayArgs>),
    /// Print the EventBridge event pattern for member accounts, generated from the rule pack.
    Pattern(PatternArgs),
    /// List the batches sent, from the DynamoDB table's audit items (JSON Lines).
    Audit(AuditArgs),
    /// Put CloudTrail events on a Kinesis stream (EventBridge envelopes, key = account).
    Send(SendArgs),
    /// Read every shard of a Kinesis stream through the engine, resuming from checkpoints.
    Consume(ConsumeArgs),
}

/// Output formats of `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Slack payloads (Block Kit JSON), one per message.
    Slack,
    /// A self-contained HTML preview page.
    Html,
    /// One JSON line per sent batch.
    Audit,
    /// Plain text for a terminal.
    Text,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// CloudTrail files or folders (read recursively): S3 log files (.json, .json.gz), JSON
    /// Lines, envelopes, Kinesis batches; `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format. Default: `text` on a terminal, `slack` (JSON) when written to a file or
    /// a pipe.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Feed events in the order they were read instead of by event time: simulates events
    /// arriving late (files are otherwise sorted as a whole, so input order never matters).
    #[arg(long)]
    pub as_arrived: bool,
    /// Preview what a destination without threads (a Slack incoming webhook) gets: an
    /// incident's later events are held and listed in the account's next top-level post.
    /// Implied by --slack-webhook.
    #[arg(long)]
    pub no_threads: bool,
    /// The real time to check event dates against (RFC 3339, e.g. 2026-11-30T00:00:00Z; default
    /// now): an event dated more than 15 minutes later is placed at the latest event time
    /// before it. Pins replay's output whatever day it runs.
    #[arg(long, value_name = "TIME", value_parser = parse_now)]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
    /// Matched events held in memory before a sorted run is spilled to a private temporary
    /// folder (memory against disk; the output is the same).
    #[arg(long, hide = true, default_value_t = crate::adapters::spill::DEFAULT_RUN_SIZE)]
    pub sort_run_size: usize,
    /// Write the output here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Configuration file (TOML): account names, automation roles, window, language, zone.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Rule pack (TOML) to use instead of the built-in one.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Language of the messages: en or ko.
    #[arg(long)]
    pub lang: Option<String>,
    /// Time zone of the messages, e.g. Asia/Seoul (default UTC).
    #[arg(long)]
    pub tz: Option<String>,
    /// Write quarantined records (redacted) here as JSON Lines.
    #[arg(long)]
    pub quarantine: Option<PathBuf>,
    /// Also post each batch to this Slack incoming webhook (at least once).
    #[arg(long, value_name = "URL", env = crate::config::env::SLACK_WEBHOOK_URL, hide_env_values = true, conflicts_with = "slack_token")]
    pub slack_webhook: Option<String>,
    /// Also post each batch with this Slack bot token (chat.postMessage, threads, no duplicates).
    #[arg(long, value_name = "TOKEN", env = crate::config::env::SLACK_TOKEN, hide_env_values = true)]
    pub slack_token: Option<String>,
    /// With --slack-token: post every batch to this channel (else the config's [slack] routes).
    #[arg(long, value_name = "CHANNEL")]
    pub channel: Option<String>,
    /// Who writes the summaries: offline templates, or Claude on Bedrock (credentials and
    /// region from the usual AWS chain; the templates remain the fallback).
    #[arg(long, value_enum)]
    pub summarizer: Option<SummarizerArg>,
    /// Bedrock model or inference profile id (with `--summarizer bedrock`).
    #[arg(long)]
    pub model: Option<String>,
}

/// Values of `--summarizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummarizerArg {
    Offline,
    Bedrock,
}

#[derive(Debug, clap::Args)]
pub struct PatternArgs {
    /// Rule pack (TOML) to use instead of the built-in ones.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Built-in rule packs, comma-separated (default, clickops, all-changes): the same as the
    /// central function's `[rules] packs`.
    #[arg(long, value_delimiter = ',', default_value = "default")]
    pub packs: Vec<String>,
    /// Indent the JSON.
    #[arg(long)]
    pub pretty: bool,
    /// Split into several patterns of at most this many characters each (EventBridge allows
    /// 2048 by default, 4096 at most) and print them as a JSON array: one rule per pattern.
    #[arg(long, value_name = "CHARS")]
    pub split: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The DynamoDB table (as the CDK stack created it).
    #[arg(long)]
    pub table: String,
    /// Windows that started at or after this time (RFC 3339) or this long ago (`24h`, `7d`).
    #[arg(long, default_value = "24h")]
    pub since: String,
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Kinesis stream name.
    #[arg(long)]
    pub stream: String,
    /// CloudTrail files, any shape `replay` reads.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// Kinesis stream name.
    #[arg(long)]
    pub stream: String,
    /// DynamoDB table for windows, audit and checkpoints.
    #[arg(long)]
    pub table: String,
    /// Stop after this many seconds without a record (default: run until the shards close).
    #[arg(long, value_name = "SECS")]
    pub until_idle: Option<u64>,
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Rule pack (TOML) to use instead of the built-in one.
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

/// Run one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Replay(args) => Box::pin(replay(*args)).await,
        Command::Pattern(args) => pattern(&args),
        #[cfg(feature = "cloud")]
        Command::Audit(args) => audit(args).await,
        #[cfg(feature = "cloud")]
        Command::Send(args) => send::send(args).await,
        #[cfg(feature = "cloud")]
        Command::Consume(args) => Box::pin(consume::run(args)).await,
        #[cfg(not(feature = "cloud"))]
        Command::Audit(_) => Err(needs_cloud("trailwatch audit")),
        #[cfg(not(feature = "cloud"))]
        Command::Send(_) => Err(needs_cloud("trailwatch send")),
        #[cfg(not(feature = "cloud"))]
        Command::Consume(_) => Err(needs_cloud("trailwatch consume")),
    }
}

/// The error of a command this build cannot run: it was built without the AWS and Slack
/// adapters (the `cloud` feature).
#[cfg(not(feature = "cloud"))]
pub(crate) fn needs_cloud(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} needs the AWS and Slack adapters, which this build leaves out: build with \
         `cargo build --release --features cloud`"
    )
}

/// The rule pack: the file at `path`, or else the built-in `packs` combined.
fn load_rules(
    path: Option<&std::path::Path>,
    packs: &[String],
) -> anyhow::Result<crate::rules::RulePack> {
    use anyhow::Context as _;
    match path {
        Some(path) => crate::rules::RulePack::load(path)
            .with_context(|| format!("rule pack {}", path.display())),
        None => crate::rules::RulePack::named(packs)
            .with_context(|| format!("built-in rule packs {}", packs.join(", "))),
    }
}

/// `--now`: an RFC 3339 time.
fn parse_now(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|err| format!("expected an RFC 3339 time like 2026-11-30T00:00:00Z ({err})"))
}
