//! Configuration: one typed file, then the environment, then flags; validated once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::TimeDelta;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::enrich::{ActorConfig, CiRoles};
use crate::event::AccountId;
use crate::incident::IncidentPolicy;
use crate::severity::Severity;
use crate::summary::{Lang, Locale};
use crate::window::WindowConfig;

/// Every environment variable trailwatch reads, in one place.
pub mod env {
    /// `111111111111=prod,222222222222=dev`: account names.
    pub const ACCOUNTS: &str = "TRAILWATCH_ACCOUNTS";
    /// `terraform-*,github-actions-*`: role or user name globs that are automation.
    pub const AUTOMATION_ROLES: &str = "TRAILWATCH_AUTOMATION_ROLES";
    /// `111111111111,222222222222`: the organisation's accounts; events of any other account
    /// are quarantined (added to the file's `[trust] accounts`).
    pub const TRUSTED_ACCOUNTS: &str = "TRAILWATCH_TRUSTED_ACCOUNTS";
    /// Built-in rule packs, comma-separated: `default,clickops` (replaces `[rules] packs`).
    pub const RULE_PACKS: &str = "TRAILWATCH_RULE_PACKS";
    /// How often the Lambda reads the organisation's accounts from AWS Organizations
    /// (`1h`; `off` never reads them). Replaces `[rules] organizations_refresh`.
    pub const ORGANIZATIONS_REFRESH: &str = "TRAILWATCH_ORGANIZATIONS_REFRESH";
    /// `en` or `ko`.
    pub const LANG: &str = "TRAILWATCH_LANG";
    /// An IANA time zone, e.g. `Asia/Seoul`.
    pub const TZ: &str = "TRAILWATCH_TZ";
    /// Window width, e.g. `5m`.
    pub const WINDOW: &str = "TRAILWATCH_WINDOW";
    /// Grace after a window ends, e.g. `2m`.
    pub const GRACE: &str = "TRAILWATCH_GRACE";
    /// Slack bot token (`xoxb-...`), CLI only; the Lambda reads [`SLACK_SECRET_ARN`].
    pub const SLACK_TOKEN: &str = "TRAILWATCH_SLACK_TOKEN";
    /// Slack incoming-webhook URL, CLI only; the Lambda reads [`SLACK_SECRET_ARN`].
    pub const SLACK_WEBHOOK_URL: &str = "TRAILWATCH_SLACK_WEBHOOK_URL";
    /// ARN of the Secrets Manager secret holding the token or webhook URL (Lambda).
    pub const SLACK_SECRET_ARN: &str = "TRAILWATCH_SLACK_SECRET_ARN";
    /// The default Slack channel (id like `C0123ABCD` or name).
    pub const SLACK_CHANNEL: &str = "TRAILWATCH_SLACK_CHANNEL";
    /// `111111111111=C0PROD,222222222222=C0DEV`: a channel per account.
    pub const SLACK_CHANNELS: &str = "TRAILWATCH_SLACK_CHANNELS";
    /// Slack Web API base URL (default `https://slack.com/api/`): tests point it at a fake.
    pub const SLACK_API_URL: &str = "TRAILWATCH_SLACK_API_URL";
    /// `offline` or `bedrock`.
    pub const SUMMARIZER: &str = "TRAILWATCH_SUMMARIZER";
    /// Bedrock model or inference profile id.
    pub const BEDROCK_MODEL_ID: &str = "TRAILWATCH_BEDROCK_MODEL_ID";
    /// Hard deadline for one batch's summary, retries included, e.g. `45s`.
    pub const BEDROCK_DEADLINE: &str = "TRAILWATCH_BEDROCK_DEADLINE";
    /// Most Converse calls for one batch.
    pub const BEDROCK_MAX_ATTEMPTS: &str = "TRAILWATCH_BEDROCK_MAX_ATTEMPTS";
    /// Bytes of batch digest the model may see.
    pub const PROMPT_BUDGET: &str = "TRAILWATCH_PROMPT_BUDGET";
    /// This deployment's id in Slack message metadata (`[slack] deployment`).
    pub const DEPLOYMENT: &str = "TRAILWATCH_DEPLOYMENT";
    /// Fewest events in a batch for the model to be asked (`[summary] model_min_events`).
    pub const MODEL_MIN_EVENTS: &str = "TRAILWATCH_MODEL_MIN_EVENTS";
    /// Most batches in one model call (`[summary] max_batches_per_call`).
    pub const MODEL_MAX_BATCHES: &str = "TRAILWATCH_MODEL_MAX_BATCHES";
    /// Output tokens one model call may use (`[summary] max_output_tokens`).
    pub const MODEL_MAX_OUTPUT_TOKENS: &str = "TRAILWATCH_MODEL_MAX_OUTPUT_TOKENS";
    /// Path of a configuration file (TOML), read before the variables above.
    pub const CONFIG: &str = "TRAILWATCH_CONFIG";
    /// Path of a rule pack (TOML) used instead of the built-in one.
    pub const RULES: &str = "TRAILWATCH_RULES";
    /// DynamoDB table of events, windows, audit and Kinesis checkpoints.
    pub const TABLE: &str = "TRAILWATCH_TABLE";
    /// Log filter (`tracing` env-filter syntax), e.g. `info` or `trailwatch=debug`.
    pub const LOG: &str = "TRAILWATCH_LOG";
    /// How long an account and region may send no heartbeat before it is silent, e.g. `15m`.
    pub const HEARTBEAT_SILENCE: &str = "TRAILWATCH_HEARTBEAT_SILENCE";
    /// How long an account and region may forward no event before it is quiet, e.g. `24h`
    /// (unset: never reported).
    pub const QUIET_AFTER: &str = "TRAILWATCH_QUIET_AFTER";
}

/// The command line's log filter when `TRAILWATCH_LOG` is unset: warnings, without the AWS
/// SDK's own (its credential chain warns, at length, once per provider and call; trailwatch says
/// what failed in one line of its own).
pub const DEFAULT_CLI_LOG: &str = "warn,aws_config=error,aws_smithy_runtime=error";
/// The Lambda's log filter when `TRAILWATCH_LOG` is unset, on the same terms.
pub const DEFAULT_LAMBDA_LOG: &str = "info,aws_config=error,aws_smithy_runtime=error";

/// A configuration problem, naming the key and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: expected {expected}, found {found:?}")]
    Invalid {
        key: String,
        expected: &'static str,
        found: String,
    },
}

fn invalid(key: impl Into<String>, expected: &'static str, found: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        expected,
        found: found.to_owned(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    accounts: BTreeMap<String, String>,
    actors: ActorsFile,
    window: WindowFile,
    incidents: IncidentsFile,
    output: OutputFile,
    slack: SlackFile,
    summary: SummaryFile,
    input: InputFile,
    trust: TrustFile,
    heartbeat: HeartbeatFile,
    rules: RulesFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RulesFile {
    packs: Option<Vec<String>>,
    organizations_refresh: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HeartbeatFile {
    silence_after: Option<String>,
    quiet_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TrustFile {
    accounts: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct InputFile {
    max_inflated_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SlackFile {
    default_channel: Option<String>,
    api_url: Option<String>,
    deployment: Option<String>,
    accounts: BTreeMap<String, String>,
    severity: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SummaryFile {
    summarizer: Option<String>,
    model_id: Option<String>,
    deadline: Option<String>,
    max_attempts: Option<u32>,
    input_budget: Option<usize>,
    model_min_events: Option<usize>,
    max_batches_per_call: Option<usize>,
    max_output_tokens: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ActorsFile {
    automation_roles: Vec<String>,
    /// `github-actions = ["gha-*"]`: CI systems by name, each with its role name globs.
    ci: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct WindowFile {
    width: Option<String>,
    grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct IncidentsFile {
    dedup_period: Option<String>,
    max_reminder_interval: Option<String>,
    ceiling_per_hour: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OutputFile {
    lang: Option<String>,
    tz: Option<String>,
}

/// Account number -> readable name, as in the original system's "111111111111(A계정)".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountNames(BTreeMap<AccountId, String>);

impl AccountNames {
    pub fn get(&self, account: &AccountId) -> Option<&str> {
        self.0.get(account).map(String::as_str)
    }

    pub fn insert(&mut self, account: AccountId, name: String) {
        self.0.insert(account, name);
    }

    /// The accounts named, in order.
    pub fn ids(&self) -> impl Iterator<Item = &AccountId> {
        self.0.keys()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where Slack messages go: a channel per account (else the default), plus extra channels for
/// batches at or above a severity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlackRoutes {
    pub default_channel: Option<String>,
    pub accounts: BTreeMap<AccountId, String>,
    pub severity: BTreeMap<Severity, Vec<String>>,
}

impl SlackRoutes {
    /// The channels for a batch of `account` with final colour `severity`: the account's
    /// channel (or the default) first, then the extras, each once. Empty when nothing routes.
    pub fn channels(&self, account: &AccountId, severity: Severity) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let primary = self.accounts.get(account).or(self.default_channel.as_ref());
        let extras = self
            .severity
            .iter()
            .filter(|(level, _)| **level <= severity)
            .flat_map(|(_, channels)| channels);
        for channel in primary.into_iter().chain(extras) {
            if !out.contains(channel) {
                out.push(channel.clone());
            }
        }
        out
    }
}

/// Slack settings that are not secret (the token or webhook URL is read by the app).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlackSettings {
    pub routes: SlackRoutes,
    /// Web API base URL; `None` means Slack's own.
    pub api_url: Option<String>,
    /// This deployment's id (`[slack] deployment`, `TRAILWATCH_DEPLOYMENT`), written in every
    /// message's metadata: after an unclear answer, the "already posted?" check matches this
    /// deployment's messages only, so two deployments (staging and production) or a replay
    /// posting into one channel never suppress each other's. `None`: the Lambda uses
    /// `<region>/<table>` (the CDK sets `<account>/<region>/<table>`), `replay` uses `replay`.
    pub deployment: Option<String>,
}

/// Which summarizer writes the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SummarizerKind {
    /// Deterministic templates; no network.
    #[default]
    Offline,
    /// Claude on Bedrock (Converse), the templates as fallback.
    Bedrock,
}

/// The Claude Sonnet inference profile used unless configured otherwise. (The original
/// system called `anthropic.claude-3-5-sonnet-20240620-v1:0` directly.)
pub const DEFAULT_MODEL_ID: &str = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// How summaries are written, and the model's budgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryConfig {
    pub summarizer: SummarizerKind,
    pub model_id: String,
    /// Hard deadline for one batch, retries and backoff included.
    pub deadline: std::time::Duration,
    /// Most calls for one batch (at least 1).
    pub max_attempts: u32,
    /// Bytes of digest the model sees; the Slack listing stays complete.
    pub input_budget: usize,
    /// Batches with fewer events are summarised offline, without a model call
    /// (`[summary] model_min_events`, `TRAILWATCH_MODEL_MIN_EVENTS`; 1 to 1000, default 1:
    /// every batch asks). The offline summary already says who did what, where and when.
    pub model_min_events: usize,
    /// Most batches one model call explains (`[summary] max_batches_per_call`,
    /// `TRAILWATCH_MODEL_MAX_BATCHES`; 1 to 50, default 10). The batches due in one flush and
    /// bound for the same channels share a call up to this many.
    pub max_batches_per_call: usize,
    /// Output tokens one call may use, its Converse `maxTokens` (`[summary]
    /// max_output_tokens`, `TRAILWATCH_MODEL_MAX_OUTPUT_TOKENS`; 512 to 32,768, default
    /// 4,096). A call holds only as many batches as their expected answers fit
    /// ([`crate::locale::Words::answer_tokens`]: English 400, Korean 1,000), so the call stays
    /// bounded in time as well.
    pub max_output_tokens: u32,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        Self {
            summarizer: SummarizerKind::Offline,
            model_id: DEFAULT_MODEL_ID.to_owned(),
            deadline: std::time::Duration::from_secs(45),
            max_attempts: 4,
            input_budget: crate::summary::prompt::DEFAULT_INPUT_BUDGET,
            model_min_events: 1,
            max_batches_per_call: 10,
            max_output_tokens: 4_096,
        }
    }
}

/// `[trust]`: which accounts events may come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustConfig {
    /// The organisation's accounts (`[trust] accounts`, `TRAILWATCH_TRUSTED_ACCOUNTS`): an
    /// event of any other account is quarantined and counted. Empty: every account (replay of
    /// anyone's files).
    pub accounts: std::collections::BTreeSet<AccountId>,
}

impl TrustConfig {
    pub fn allows(&self, account: &str) -> bool {
        self.accounts.is_empty() || self.accounts.iter().any(|a| a.as_str() == account)
    }
}

/// `[rules]`: which built-in rule packs run (`--rules FILE` and `TRAILWATCH_RULES` replace
/// them with a file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesConfig {
    /// Built-in packs by name (`[rules] packs`, `TRAILWATCH_RULE_PACKS`), combined in order:
    /// `default`, `clickops`, `all-changes` (see [`crate::rules::PACKS`]). Empty: `default`.
    pub packs: Vec<String>,
    /// How often the Lambda reads the organisation's accounts from AWS Organizations
    /// (`[rules] organizations_refresh`, `TRAILWATCH_ORGANIZATIONS_REFRESH`; 5m to 7d, or
    /// `"off"`). `None` (the default) means every hour; see [`RulesConfig::refresh`].
    pub organizations_refresh: Option<Option<TimeDelta>>,
}

impl RulesConfig {
    /// How often to read the organisation's accounts: every hour unless configured, never
    /// when `"off"`.
    pub fn refresh(&self) -> Option<TimeDelta> {
        self.organizations_refresh
            .unwrap_or(Some(TimeDelta::hours(1)))
    }

    /// The packs to run: those given, or `default`.
    pub fn packs(&self) -> Vec<String> {
        if self.packs.is_empty() {
            vec!["default".to_owned()]
        } else {
            self.packs.clone()
        }
    }
}

/// 1 to 100 characters of letters, digits and `-_./:`.
fn parse_deployment(key: &str, text: &str) -> Result<String, ConfigError> {
    let text = text.trim();
    let ok = (1..=100).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c));
    ok.then(|| text.to_owned()).ok_or_else(|| {
        invalid(
            key,
            "1 to 100 letters, digits or -_./: (like \"111111111111/us-east-1/trailwatch\")",
            text,
        )
    })
}

/// A number of events from 1 to 1000.
fn parse_min_events(key: &str, text: &str) -> Result<usize, ConfigError> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=1_000).contains(n))
        .ok_or_else(|| invalid(key, "a number of events from 1 to 1000", text))
}

fn parse_max_batches(key: &str, text: &str) -> Result<usize, ConfigError> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=50).contains(n))
        .ok_or_else(|| invalid(key, "a number of batches from 1 to 50", text))
}

fn parse_output_tokens(key: &str, text: &str) -> Result<u32, ConfigError> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (512..=32_768).contains(n))
        .ok_or_else(|| invalid(key, "a number of tokens from 512 to 32768", text))
}

/// `"off"`, or a duration from 5m to 7d.
fn parse_refresh(key: &str, text: &str) -> Result<Option<TimeDelta>, ConfigError> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    humantime::parse_duration(text.trim())
        .ok()
        .and_then(|d| TimeDelta::from_std(d).ok())
        .filter(|d| *d >= TimeDelta::minutes(5) && *d <= TimeDelta::days(7))
        .map(Some)
        .ok_or_else(|| {
            invalid(
                key,
                "\"off\" or a duration from 5m to 7d, like \"1h\"",
                text,
            )
        })
}

/// Check `names` against the built-in packs, naming `key` (with the index) in errors.
fn parse_packs<'a>(
    key: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>, ConfigError> {
    let mut packs: Vec<String> = Vec::new();
    for (n, name) in names.enumerate() {
        let name = name.trim();
        if !crate::rules::PACKS.iter().any(|(known, _)| *known == name) {
            return Err(invalid(
                format!("{key}[{n}]"),
                "a built-in rule pack: \"default\", \"clickops\" or \"all-changes\"",
                name,
            ));
        }
        if !packs.iter().any(|p| p == name) {
            packs.push(name.to_owned());
        }
    }
    if packs.is_empty() {
        return Err(invalid(key, "at least one rule pack", ""));
    }
    Ok(packs)
}

/// `[heartbeat]`: when a member account and region that sends heartbeats (see
/// [`crate::engine::heartbeat`]) counts as silent, or as quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// No heartbeat for this long: the source is silent (`silence_after`,
    /// `TRAILWATCH_HEARTBEAT_SILENCE`; 1m to 30d, default 15m: three missed heartbeats of
    /// the member stack's five-minute schedule).
    pub silence_after: TimeDelta,
    /// No forwarded event for this long: the source is quiet (`quiet_after`,
    /// `TRAILWATCH_QUIET_AFTER`; 1m to 30d). `None` (the default): never reported, since
    /// member rules forward only matched events and a quiet account is normal.
    pub quiet_after: Option<TimeDelta>,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            silence_after: TimeDelta::minutes(15),
            quiet_after: None,
        }
    }
}

/// `[input]`: bounds on what one input may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputConfig {
    /// Most bytes one gzip file may inflate to (`max_inflated_mib`, 1 to 4096 MiB; default
    /// 256 MiB); past it the file is quarantined, not read.
    pub max_inflated: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            max_inflated: crate::event::decode::DEFAULT_MAX_INFLATED,
        }
    }
}

/// Validated settings the engine runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub accounts: AccountNames,
    pub actors: ActorConfig,
    pub window: WindowConfig,
    /// `[incidents]`: dedup period and reminder schedule.
    pub incidents: IncidentPolicy,
    pub locale: Locale,
    pub slack: SlackSettings,
    pub summary: SummaryConfig,
    pub input: InputConfig,
    pub trust: TrustConfig,
    pub heartbeat: HeartbeatConfig,
    pub rules: RulesConfig,
}

impl Settings {
    /// The organisation's accounts as far as configuration knows them: `[trust] accounts` and
    /// the accounts `[accounts]` names. Empty when neither is given; `not_org_account` then
    /// holds for no account.
    pub fn organization(&self) -> crate::rules::Organization {
        crate::rules::Organization::new(
            self.trust
                .accounts
                .iter()
                .chain(self.accounts.ids())
                .map(|id| id.as_str().to_owned()),
        )
    }

    /// Defaults, then `file` (if given), then the environment as `var` reports it.
    pub fn load(
        file: Option<&Path>,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut settings = Self::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let parsed: FileConfig = toml::from_str(&text).map_err(|err| ConfigError::Parse {
                path: path.to_owned(),
                message: err.to_string().trim().replace('\n', " "),
            })?;
            settings.apply_file(parsed)?;
        }
        settings.apply_env(var)?;
        Ok(settings)
    }

    fn apply_file(&mut self, file: FileConfig) -> Result<(), ConfigError> {
        for (account, name) in file.accounts {
            self.accounts.insert(
                parse_account(&format!("accounts.{account}"), &account)?,
                name,
            );
        }
        self.actors
            .automation_roles
            .extend(file.actors.automation_roles);
        for (name, roles) in file.actors.ci {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return Err(invalid(
                    format!("actors.ci.{name}"),
                    "a CI name of letters, digits, '-', '_' or '.'",
                    &name,
                ));
            }
            self.actors.ci_roles.push(CiRoles { name, roles });
        }
        if let Some(width) = file.window.width {
            self.window.width = parse_duration("window.width", &width)?;
        }
        if let Some(grace) = file.window.grace {
            self.window.grace = parse_duration("window.grace", &grace)?;
        }
        if let Some(period) = file.incidents.dedup_period {
            self.incidents.dedup_period = parse_duration("incidents.dedup_period", &period)?;
        }
        if let Some(max) = file.incidents.max_reminder_interval {
            self.incidents.max_reminder_interval =
                parse_duration("incidents.max_reminder_interval", &max)?;
        }
        if let Some(after) = &file.heartbeat.silence_after {
            self.heartbeat.silence_after = parse_duration("heartbeat.silence_after", after)?;
        }
        if let Some(after) = &file.heartbeat.quiet_after {
            self.heartbeat.quiet_after = Some(parse_duration("heartbeat.quiet_after", after)?);
        }
        for (n, account) in file.trust.accounts.iter().enumerate() {
            let id = parse_account(&format!("trust.accounts[{n}]"), account)?;
            self.trust.accounts.insert(id);
        }
        if let Some(packs) = &file.rules.packs {
            self.rules.packs = parse_packs("rules.packs", packs.iter().map(String::as_str))?;
        }
        if let Some(refresh) = &file.rules.organizations_refresh {
            self.rules.organizations_refresh =
                Some(parse_refresh("rules.organizations_refresh", refresh)?);
        }
        if let Some(mib) = file.input.max_inflated_mib {
            if !(1..=4096).contains(&mib) {
                return Err(invalid(
                    "input.max_inflated_mib",
                    "a size in MiB from 1 to 4096",
                    &mib.to_string(),
                ));
            }
            self.input.max_inflated = usize::try_from(mib << 20).unwrap_or(usize::MAX);
        }
        if let Some(ceiling) = file.incidents.ceiling_per_hour {
            self.incidents.ceiling_per_hour = ceiling;
        }
        if let Some(lang) = file.output.lang {
            self.locale.lang = parse_lang("output.lang", &lang)?;
        }
        if let Some(tz) = file.output.tz {
            self.locale.tz = parse_tz("output.tz", &tz)?;
        }
        self.apply_slack_file(file.slack)?;
        self.apply_summary_sizes(&file.summary)?;
        self.apply_summary(
            file.summary.summarizer.as_deref(),
            file.summary.model_id,
            file.summary.deadline.as_deref(),
            [
                (
                    "summary.max_attempts",
                    file.summary.max_attempts.map(|n| n.to_string()),
                ),
                (
                    "summary.input_budget",
                    file.summary.input_budget.map(|n| n.to_string()),
                ),
            ],
            ["summary.summarizer", "summary.deadline"],
        )
    }

    /// `[summary]`'s sizes: model_min_events, max_batches_per_call, max_output_tokens.
    fn apply_summary_sizes(&mut self, file: &SummaryFile) -> Result<(), ConfigError> {
        if let Some(n) = file.model_min_events {
            self.summary.model_min_events =
                parse_min_events("summary.model_min_events", &n.to_string())?;
        }
        if let Some(n) = file.max_batches_per_call {
            self.summary.max_batches_per_call =
                parse_max_batches("summary.max_batches_per_call", &n.to_string())?;
        }
        if let Some(n) = file.max_output_tokens {
            self.summary.max_output_tokens =
                parse_output_tokens("summary.max_output_tokens", &n.to_string())?;
        }
        Ok(())
    }

    fn apply_slack_file(&mut self, file: SlackFile) -> Result<(), ConfigError> {
        let routes = &mut self.slack.routes;
        if let Some(channel) = file.default_channel {
            routes.default_channel = Some(parse_channel("slack.default_channel", &channel)?);
        }
        for (account, channel) in file.accounts {
            let key = format!("slack.accounts.{account}");
            routes.accounts.insert(
                parse_account(&key, &account)?,
                parse_channel(&key, &channel)?,
            );
        }
        for (level, channels) in file.severity {
            let key = format!("slack.severity.{level}");
            let severity = level
                .parse::<Severity>()
                .map_err(|_| invalid(&key, "red, yellow or green", &level))?;
            let channels = channels
                .iter()
                .map(|c| parse_channel(&key, c))
                .collect::<Result<Vec<_>, _>>()?;
            routes
                .severity
                .entry(severity)
                .or_default()
                .extend(channels);
        }
        if let Some(url) = file.api_url {
            self.slack.api_url = Some(parse_url("slack.api_url", &url)?);
        }
        if let Some(deployment) = file.deployment {
            self.slack.deployment = Some(parse_deployment("slack.deployment", &deployment)?);
        }
        Ok(())
    }

    /// Summary keys from the file or the environment, named in errors by `keys`.
    fn apply_summary(
        &mut self,
        summarizer: Option<&str>,
        model_id: Option<String>,
        deadline: Option<&str>,
        [(attempts_key, attempts), (budget_key, budget)]: [(&str, Option<String>); 2],
        [summarizer_key, deadline_key]: [&str; 2],
    ) -> Result<(), ConfigError> {
        if let Some(kind) = summarizer {
            self.set_summarizer(kind, summarizer_key)?;
        }
        if let Some(model_id) = model_id.filter(|m| !m.trim().is_empty()) {
            model_id.trim().clone_into(&mut self.summary.model_id);
        }
        if let Some(deadline) = deadline {
            self.summary.deadline = parse_duration(deadline_key, deadline)?
                .to_std()
                .map_err(|_| invalid(deadline_key, "a positive duration", deadline))?;
        }
        if let Some(text) = attempts {
            self.summary.max_attempts = text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=10).contains(n))
                .ok_or_else(|| invalid(attempts_key, "a number from 1 to 10", &text))?;
        }
        if let Some(text) = budget {
            self.summary.input_budget = text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1_000)
                .ok_or_else(|| {
                invalid(budget_key, "a number of bytes, at least 1000", &text)
            })?;
        }
        Ok(())
    }

    fn apply_slack_env(&mut self, var: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(channel) = var(env::SLACK_CHANNEL) {
            self.slack.routes.default_channel = Some(parse_channel(env::SLACK_CHANNEL, &channel)?);
        }
        if let Some(list) = var(env::SLACK_CHANNELS) {
            for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (account, channel) = pair.split_once('=').ok_or_else(|| {
                    invalid(
                        env::SLACK_CHANNELS,
                        "comma-separated ACCOUNT=CHANNEL pairs",
                        pair,
                    )
                })?;
                self.slack.routes.accounts.insert(
                    parse_account(env::SLACK_CHANNELS, account.trim())?,
                    parse_channel(env::SLACK_CHANNELS, channel)?,
                );
            }
        }
        if let Some(url) = var(env::SLACK_API_URL) {
            self.slack.api_url = Some(parse_url(env::SLACK_API_URL, &url)?);
        }
        if let Some(deployment) = var(env::DEPLOYMENT) {
            self.slack.deployment = Some(parse_deployment(env::DEPLOYMENT, &deployment)?);
        }
        Ok(())
    }

    /// Choose the summarizer (`offline` or `bedrock`), naming `key` in errors.
    pub fn set_summarizer(&mut self, kind: &str, key: &str) -> Result<(), ConfigError> {
        self.summary.summarizer = match kind.trim().to_ascii_lowercase().as_str() {
            "offline" => SummarizerKind::Offline,
            "bedrock" => SummarizerKind::Bedrock,
            _ => return Err(invalid(key, "\"offline\" or \"bedrock\"", kind)),
        };
        Ok(())
    }

    fn apply_env(&mut self, var: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(list) = var(env::ACCOUNTS) {
            for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (account, name) = pair.split_once('=').ok_or_else(|| {
                    invalid(env::ACCOUNTS, "comma-separated ACCOUNT=NAME pairs", pair)
                })?;
                let account = parse_account(env::ACCOUNTS, account.trim())?;
                self.accounts.insert(account, name.trim().to_owned());
            }
        }
        if let Some(list) = var(env::TRUSTED_ACCOUNTS) {
            for account in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                let id = parse_account(env::TRUSTED_ACCOUNTS, account)?;
                self.trust.accounts.insert(id);
            }
        }
        if let Some(refresh) = var(env::ORGANIZATIONS_REFRESH) {
            self.rules.organizations_refresh =
                Some(parse_refresh(env::ORGANIZATIONS_REFRESH, &refresh)?);
        }
        if let Some(list) = var(env::RULE_PACKS) {
            self.rules.packs = parse_packs(
                env::RULE_PACKS,
                list.split(',').filter(|p| !p.trim().is_empty()),
            )?;
        }
        if let Some(list) = var(env::AUTOMATION_ROLES) {
            self.actors.automation_roles.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            );
        }
        if let Some(width) = var(env::WINDOW) {
            self.window.width = parse_duration(env::WINDOW, &width)?;
        }
        if let Some(after) = var(env::HEARTBEAT_SILENCE) {
            self.heartbeat.silence_after = parse_duration(env::HEARTBEAT_SILENCE, &after)?;
        }
        if let Some(after) = var(env::QUIET_AFTER).filter(|a| !a.trim().is_empty()) {
            self.heartbeat.quiet_after = Some(parse_duration(env::QUIET_AFTER, &after)?);
        }
        if let Some(grace) = var(env::GRACE) {
            self.window.grace = parse_duration(env::GRACE, &grace)?;
        }
        self.apply_slack_env(var)?;
        self.apply_summary(
            var(env::SUMMARIZER).as_deref(),
            var(env::BEDROCK_MODEL_ID),
            var(env::BEDROCK_DEADLINE).as_deref(),
            [
                (env::BEDROCK_MAX_ATTEMPTS, var(env::BEDROCK_MAX_ATTEMPTS)),
                (env::PROMPT_BUDGET, var(env::PROMPT_BUDGET)),
            ],
            [env::SUMMARIZER, env::BEDROCK_DEADLINE],
        )?;
        if let Some(n) = var(env::MODEL_MIN_EVENTS) {
            self.summary.model_min_events = parse_min_events(env::MODEL_MIN_EVENTS, &n)?;
        }
        if let Some(n) = var(env::MODEL_MAX_BATCHES) {
            self.summary.max_batches_per_call = parse_max_batches(env::MODEL_MAX_BATCHES, &n)?;
        }
        if let Some(n) = var(env::MODEL_MAX_OUTPUT_TOKENS) {
            self.summary.max_output_tokens = parse_output_tokens(env::MODEL_MAX_OUTPUT_TOKENS, &n)?;
        }
        self.set_locale(
            var(env::LANG).as_deref(),
            var(env::TZ).as_deref(),
            env::LANG,
            env::TZ,
        )
    }

    /// Override language and time zone (flags), naming `lang_key`/`tz_key` in errors.
    pub fn set_locale(
        &mut self,
        lang: Option<&str>,
        tz: Option<&str>,
        lang_key: &str,
        tz_key: &str,
    ) -> Result<(), ConfigError> {
        if let Some(lang) = lang {
            self.locale.lang = parse_lang(lang_key, lang)?;
        }
        if let Some(tz) = tz {
            self.locale.tz = parse_tz(tz_key, tz)?;
        }
        Ok(())
    }
}

fn parse_account(key: &str, text: &str) -> Result<AccountId, ConfigError> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(AccountId::new(text))
    } else {
        Err(invalid(key, "a 12-digit AWS account number", text))
    }
}

/// A channel id (`C0123ABCD`) or name (`#aws-changes`, `aws-changes`).
fn parse_channel(key: &str, text: &str) -> Result<String, ConfigError> {
    let name = text.trim();
    let body = name.strip_prefix('#').unwrap_or(name);
    let ok = !body.is_empty()
        && body.len() <= 80
        && body
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(invalid(
            key,
            "a Slack channel id like \"C0123ABCD\" or a name like \"#aws-changes\"",
            text,
        ))
    }
}

/// An http(s) base URL, kept with a trailing slash.
/// True for an `https://` URL, or an `http://` one to this host (`127.0.0.1`, `localhost`,
/// `[::1]`: a test server). Tokens and webhook URLs never cross a network in clear text.
pub fn is_safe_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let name = if host.starts_with('[') {
        host.split_once(']')
            .map_or(host, |(h, _)| h)
            .trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or_default()
    };
    matches!(name, "127.0.0.1" | "localhost" | "::1")
}

fn parse_url(key: &str, text: &str) -> Result<String, ConfigError> {
    let url = text.trim();
    if is_safe_url(url) && !url.contains(char::is_whitespace) {
        Ok(if url.ends_with('/') {
            url.to_owned()
        } else {
            format!("{url}/")
        })
    } else {
        Err(invalid(
            key,
            "an https:// URL (http:// only for a test server on this host)",
            text,
        ))
    }
}

/// The range a duration setting must fall in, by its key (file or environment name), with
/// how the error states it. Every duration is bounded: a year-long window or a deadline past
/// the Lambda's own timeout is a typo, and times plus huge durations leave chrono's range.
fn duration_bounds(key: &str) -> (TimeDelta, TimeDelta, &'static str) {
    let key = key.to_ascii_lowercase();
    if key.contains("grace") {
        (
            TimeDelta::zero(),
            TimeDelta::hours(1),
            "a duration from 0s to 1h, like \"2m\"",
        )
    } else if key.contains("width") || key.ends_with("window") {
        (
            TimeDelta::minutes(1),
            TimeDelta::days(1),
            "a duration from 1m to 1d, like \"5m\"",
        )
    } else if key.contains("deadline") {
        (
            TimeDelta::seconds(1),
            TimeDelta::minutes(15),
            "a duration from 1s to 15m, like \"45s\"",
        )
    } else {
        // Dedup periods and reminder intervals.
        (
            TimeDelta::minutes(1),
            TimeDelta::days(30),
            "a duration from 1m to 30d, like \"60m\"",
        )
    }
}

fn parse_duration(key: &str, text: &str) -> Result<TimeDelta, ConfigError> {
    let (min, max, expected) = duration_bounds(key);
    humantime::parse_duration(text.trim())
        .ok()
        .and_then(|d| TimeDelta::from_std(d).ok())
        .filter(|d| *d >= min && *d <= max)
        .ok_or_else(|| invalid(key, expected, text))
}

fn parse_lang(key: &str, text: &str) -> Result<Lang, ConfigError> {
    text.parse().map_err(|_| invalid(key, Lang::EXPECTED, text))
}

fn parse_tz(key: &str, text: &str) -> Result<Tz, ConfigError> {
    text.trim().parse::<Tz>().map_err(|_| {
        invalid(
            key,
            "an IANA time zone like \"Asia/Seoul\" or \"UTC\"",
            text,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn write(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(text)
    }

    /// A minimal temp-file helper (no extra dependency).
    mod tempfile_path {
        use std::path::PathBuf;
        use std::sync::atomic::{AtomicUsize, Ordering};

        pub struct TempPath(pub PathBuf);

        impl TempPath {
            pub fn with(text: &str) -> Self {
                static N: AtomicUsize = AtomicUsize::new(0);
                let path = std::env::temp_dir().join(format!(
                    "trailwatch-config-{}-{}.toml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::write(&path, text).unwrap_or_default();
                Self(path)
            }
        }

        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn file_then_env() {
        let file = write(
            "[accounts]\n\"111111111111\" = \"A계정\"\n[window]\nwidth = \"10m\"\n[output]\nlang = \"ko\"\ntz = \"Asia/Seoul\"\n",
        );
        let env = |key: &str| match key {
            env::ACCOUNTS => Some("222222222222=dev".to_owned()),
            env::LANG => Some("en".to_owned()),
            _ => None,
        };
        let settings = Settings::load(Some(&file.0), &env).unwrap_or_default();
        assert_eq!(settings.accounts.len(), 2);
        assert_eq!(
            settings.accounts.get(&AccountId::new("111111111111")),
            Some("A계정")
        );
        assert_eq!(settings.window.width, TimeDelta::minutes(10));
        assert_eq!(settings.locale.lang, Lang::En);
        assert_eq!(settings.locale.tz, chrono_tz::Asia::Seoul);
    }

    #[test]
    fn named_ci_systems_from_file() {
        let file = write(
            "[actors]\nautomation_roles = [\"*-deployer\"]\n[actors.ci]\ngithub-actions = [\"gha-*\", \"github-actions-*\"]\n",
        );
        let settings = Settings::load(Some(&file.0), &no_env).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(settings.actors.automation_roles, ["*-deployer"]);
        assert_eq!(
            settings.actors.ci_roles,
            [CiRoles {
                name: "github-actions".to_owned(),
                roles: vec!["gha-*".to_owned(), "github-actions-*".to_owned()],
            }]
        );

        let file = write("[actors.ci]\n\"git hub\" = [\"gha-*\"]\n");
        let Err(err) = Settings::load(Some(&file.0), &no_env) else {
            panic!("a CI name with a space is refused");
        };
        assert!(err.to_string().contains("actors.ci.git hub"), "{err}");
    }

    #[test]
    fn slack_routes_from_file_and_env() {
        let file = write(
            "[slack]\ndefault_channel = \"#aws-changes\"\n[slack.accounts]\n\"111111111111\" = \"C0PROD\"\n[slack.severity]\nred = [\"#security\"]\nyellow = [\"C0WATCH\", \"C0PROD\"]\n",
        );
        let env = |key: &str| match key {
            env::SLACK_CHANNELS => Some("222222222222=C0DEV".to_owned()),
            env::SLACK_API_URL => Some("http://127.0.0.1:9/api".to_owned()),
            _ => None,
        };
        let settings = Settings::load(Some(&file.0), &env).unwrap_or_default();
        let routes = &settings.slack.routes;
        let prod = AccountId::new("111111111111");
        let dev = AccountId::new("222222222222");
        let other = AccountId::new("999999999999");
        assert_eq!(routes.channels(&prod, Severity::Green), ["C0PROD"]);
        // Extras at or above their level, each channel once, the account's channel first.
        assert_eq!(
            routes.channels(&prod, Severity::Yellow),
            ["C0PROD", "C0WATCH"]
        );
        assert_eq!(
            routes.channels(&prod, Severity::Red),
            ["C0PROD", "C0WATCH", "#security"]
        );
        assert_eq!(routes.channels(&dev, Severity::Green), ["C0DEV"]);
        assert_eq!(routes.channels(&other, Severity::Green), ["#aws-changes"]);
        assert_eq!(
            settings.slack.api_url.as_deref(),
            Some("http://127.0.0.1:9/api/")
        );
        assert!(
            SlackRoutes::default()
                .channels(&other, Severity::Red)
                .is_empty()
        );
    }

    #[test]
    fn summary_keys_from_file_then_env() {
        assert_eq!(
            Settings::default().summary.summarizer,
            SummarizerKind::Offline
        );
        assert_eq!(Settings::default().summary.model_id, DEFAULT_MODEL_ID);
        let file = write(
            "[summary]\nsummarizer = \"bedrock\"\nmodel_id = \"anthropic.claude-3-5-sonnet-20240620-v1:0\"\ndeadline = \"20s\"\nmax_attempts = 3\ninput_budget = 8000\n",
        );
        let settings = Settings::load(Some(&file.0), &no_env).unwrap_or_default();
        assert_eq!(settings.summary.summarizer, SummarizerKind::Bedrock);
        assert_eq!(
            settings.summary.model_id,
            "anthropic.claude-3-5-sonnet-20240620-v1:0"
        );
        assert_eq!(
            settings.summary.deadline,
            std::time::Duration::from_secs(20)
        );
        assert_eq!(settings.summary.max_attempts, 3);
        assert_eq!(settings.summary.input_budget, 8000);
        let env = |key: &str| match key {
            env::SUMMARIZER => Some("offline".to_owned()),
            env::BEDROCK_MODEL_ID => Some("us.anthropic.claude-sonnet-4-20250514-v1:0".to_owned()),
            env::BEDROCK_MAX_ATTEMPTS => Some("2".to_owned()),
            _ => None,
        };
        let settings = Settings::load(Some(&file.0), &env).unwrap_or_default();
        assert_eq!(settings.summary.summarizer, SummarizerKind::Offline);
        assert_eq!(
            settings.summary.model_id,
            "us.anthropic.claude-sonnet-4-20250514-v1:0"
        );
        assert_eq!(settings.summary.max_attempts, 2);
        for (key, value, expected) in [
            (
                env::SUMMARIZER,
                "gpt",
                "TRAILWATCH_SUMMARIZER: expected \"offline\" or \"bedrock\"",
            ),
            (
                env::BEDROCK_MAX_ATTEMPTS,
                "0",
                "TRAILWATCH_BEDROCK_MAX_ATTEMPTS: expected a number from 1 to 10",
            ),
            (
                env::PROMPT_BUDGET,
                "12",
                "TRAILWATCH_PROMPT_BUDGET: expected a number of bytes",
            ),
            (
                env::BEDROCK_DEADLINE,
                "soon",
                "TRAILWATCH_BEDROCK_DEADLINE: expected a duration",
            ),
        ] {
            let env = |k: &str| (k == key).then(|| value.to_owned());
            let err = Settings::load(None, &env)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with(expected), "{err}");
        }
    }

    #[test]
    fn errors_name_the_key_and_expectation() {
        let cases = [
            (
                "[window]\nwidth = \"five\"\n",
                "window.width: expected a duration",
            ),
            (
                "[slack]\ndeployment = \"prod team\"\n",
                "slack.deployment: expected 1 to 100 letters, digits or -_./:",
            ),
            (
                "[summary]\nmodel_min_events = 0\n",
                "summary.model_min_events: expected a number of events from 1 to 1000",
            ),
            (
                "[summary]\nmax_batches_per_call = 51\n",
                "summary.max_batches_per_call: expected a number of batches from 1 to 50",
            ),
            (
                "[summary]\nmax_output_tokens = 100\n",
                "summary.max_output_tokens: expected a number of tokens from 512 to 32768",
            ),
            (
                "[rules]\norganizations_refresh = \"1m\"\n",
                "rules.organizations_refresh: expected \"off\" or a duration from 5m to 7d",
            ),
            (
                "[slack]\napi_url = \"http://slack.example/api\"\n",
                "slack.api_url: expected an https:// URL",
            ),
            (
                "[window]\nwidth = \"300000y\"\n",
                "window.width: expected a duration from 1m to 1d",
            ),
            (
                "[window]\ngrace = \"100000y\"\n",
                "window.grace: expected a duration from 0s to 1h",
            ),
            (
                "[incidents]\ndedup_period = \"100000y\"\n",
                "incidents.dedup_period: expected a duration from 1m to 30d",
            ),
            (
                "[incidents]\nmax_reminder_interval = \"0s\"\n",
                "incidents.max_reminder_interval: expected a duration from 1m to 30d",
            ),
            (
                "[output]\ntz = \"Mars/Base\"\n",
                "output.tz: expected an IANA time zone",
            ),
            (
                "[accounts]\n\"12\" = \"x\"\n",
                "accounts.12: expected a 12-digit",
            ),
            ("[outptu]\nlang = \"ko\"\n", "unknown field `outptu`"),
            (
                "[slack.severity]\npurple = [\"C1\"]\n",
                "slack.severity.purple: expected red, yellow or green",
            ),
            (
                "[slack.accounts]\n\"111111111111\" = \"<!channel>\"\n",
                "slack.accounts.111111111111: expected a Slack channel id",
            ),
        ];
        for (text, expected) in cases {
            let file = write(text);
            let err = Settings::load(Some(&file.0), &no_env)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(expected), "{err}");
        }
        let env = |key: &str| (key == env::LANG).then(|| "fr".to_owned());
        let err = Settings::load(None, &env).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("TRAILWATCH_LANG: expected \"en\" or \"ko\", found \"fr\"")
        );
    }
}
