//! The DynamoDB store: windows, events, audit and Kinesis checkpoints in one table.
//!
//! Every SDK call of the DynamoDB side lives here. The transitions are those of
//! [`WindowBook`](crate::window::WindowBook), each made with a conditional write, so that
//! retries, redelivery, concurrent flushers and crashes between steps cannot lose an event
//! or put one into two sent batches. README "State (DynamoDB)" documents the items and
//! every transition with its condition.
//!
//! Items (one table, `pk`/`sk` strings):
//! - event id marker `EID#<event id>` / `EID`: the exact dedupe of an event placed at its
//!   arrival (dated in the future), written with `attribute_not_exists(pk)` before the event;
//! - window `W#<account>#<start>` / `WIN`: generation counters, lease, due time (the sparse
//!   index `due` holds only windows with unsent events), commit tokens;
//! - event `W#<account>#<start>` / `E#<event id>`: the redacted event (gzipped JSON, `ev_v`
//!   2; version 1 items hold it as text), the generation it was added in and the commit token
//!   of the add that wrote it. Written with `attribute_not_exists(pk)`, it is the exact dedupe
//!   of its event id: an event always falls in the same window.
//!
//! No write is a transaction (DynamoDB bills each item of one twice). An add takes a commit
//! token from the window (an intent), puts its event items one write unit each, then commits
//! the token with one window update; a flush reads only items of committed tokens, so an add
//! that stopped between its writes leaves orphans that are never sent and that the redelivery
//! of its records takes over (`add_window`, README "State (DynamoDB)");
//! - audit `AUDIT#<day of window start>` / `<start>#<account>#<seq>`: one per sent batch;
//! - checkpoint `CKPT#<stream>` / `<shard id>`: the last sequence number processed;
//! - incident `INC#<account>#<key digest>` / `INC`: its state (JSON), written over the version
//!   read;
//! - held events `HELD#<account>` / `HELD` (destinations without threads): JSON, written over
//!   the version read; while it holds any, it is in the `due` index under partition `HELD`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    TimeToLiveSpecification,
};
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::delivery::AuditLine;
use crate::event::AccountId;
use crate::incident::{Held, Incident, IncidentKey};
use crate::ports::{Retryable, StateItem, StateKind, Store};
use crate::window::{Added, BatchEvent, BatchId, BatchKind, Claimed, WindowConfig};

/// Name of the sparse index of due windows.
pub const DUE_INDEX: &str = "due";
/// Partition key attribute of the due index (one value: `DUE`).
pub const DUE_PK: &str = "due_pk";
/// Sort key attribute of the due index: epoch milliseconds.
pub const DUE_AT: &str = "due_at";
/// The attributes the due index holds besides the keys (`pk`, `sk`, `due_pk`, `due_at`): what
/// `due`, `held_due` and `states_due` read. A window's lease, counters and attempts are not
/// among them, so claiming a window or adding to an open one does not write the index.
pub const DUE_INDEX_ATTRIBUTES: [&str; 7] = [
    "acct",
    "w_start",
    "w_sent",
    "state_key",
    "state_body",
    "state_body_gz",
    "state_version",
];
/// The TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

const DUE_PARTITION: &str = "DUE";
/// The `due` index partition of accounts with held events.
const HELD_PARTITION: &str = "HELD";
/// How often `add`/`mark_sent` re-read a window that changed under them before giving up.
const MAX_RACES: usize = 16;
/// How long an `add`'s intent on a window holds off claims (epoch ms): a claim waits for a
/// younger intent to commit and aborts an older one (its writer stopped, or is too slow: it
/// writes its events again under a new token).
const INTENT_LEASE_MS: i64 = 60_000;
/// A pending intent on a window item: `wp<token>`, the epoch ms it was taken.
const INTENT_PREFIX: &str = "wp";
/// How long a writer that meets an item of an older pending token waits for it to commit
/// before aborting it (its writer may have stopped; the meeting writer may be the redelivery of
/// its records). Real time, not the clock events are dated by.
const WRITER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);
/// How often a waiting writer reads the window again.
const WRITER_POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest release reason kept in the window's attempt history.
const REASON_CHARS: usize = 200;
/// Audit records larger than this are stored gzip-compressed (a write unit is 1 KiB).
const AUDIT_PLAIN_BYTES: usize = 1024;
/// `audit` reads at most this many days.
const AUDIT_MAX_DAYS: i64 = 400;

/// What failed in the DynamoDB store.
#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    /// The service or the connection failed; `retryable` for throttling, 5xx and timeouts.
    #[error("DynamoDB {op} failed: {code}")]
    Service {
        op: &'static str,
        code: String,
        retryable: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A condition failed where none should have: the state is not what this flusher holds.
    #[error("DynamoDB {op}: condition failed on {what}")]
    Conflict { op: &'static str, what: String },
    /// The window kept changing under us (many concurrent writers): try again later.
    #[error("DynamoDB {op}: window {window} changed {MAX_RACES} times in a row")]
    Contention { op: &'static str, window: String },
    /// A test stopped `add` here, as a crash would ([`DynamoStore::crashing_at`]).
    #[error("DynamoDB add stopped at {step:?} (injected crash)")]
    Crashed { step: AddStep },
    /// An item does not have the shape this code writes.
    #[error("DynamoDB item {key} is malformed: {reason}")]
    Malformed { key: String, reason: String },
    /// A request could not be built or a value could not be encoded.
    #[error("DynamoDB {op}: cannot build the request")]
    Build {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Retryable for DynamoError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Service { retryable, .. } => *retryable,
            Self::Contention { .. } | Self::Crashed { .. } => true,
            Self::Conflict { .. } | Self::Malformed { .. } | Self::Build { .. } => false,
        }
    }
}

/// Error codes that mean "try again later".
const RETRYABLE_CODES: [&str; 9] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "LimitExceededException",
];

fn classify<E>(op: &'static str, err: SdkError<E>) -> DynamoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    let (code, retryable) = match &err {
        SdkError::TimeoutError(_) => ("timeout".to_owned(), true),
        SdkError::DispatchFailure(_) => ("dispatch failure".to_owned(), true),
        SdkError::ResponseError(_) => ("unreadable response".to_owned(), true),
        SdkError::ConstructionFailure(_) => ("request construction".to_owned(), false),
        _ => {
            let code = code.unwrap_or_else(|| format!("HTTP {}", status.unwrap_or(0)));
            if code == "ConditionalCheckFailedException" {
                return DynamoError::Conflict {
                    op,
                    what: "an item this store did not expect to change".to_owned(),
                };
            }
            let retryable =
                RETRYABLE_CODES.contains(&code.as_str()) || status.is_some_and(|s| s >= 500);
            (code, retryable)
        }
    };
    DynamoError::Service {
        op,
        code,
        retryable,
        source: Box::new(err),
    }
}

fn build_error(op: &'static str) -> impl FnOnce(BuildError) -> DynamoError {
    move |err| DynamoError::Build {
        op,
        source: Box::new(err),
    }
}

/// Table name, window arithmetic, lease and TTLs.
#[derive(Debug, Clone)]
pub struct DynamoSettings {
    pub table: String,
    pub window: WindowConfig,
    /// How long a flush holds a claimed batch; after a crash the batch is due again then.
    pub lease: TimeDelta,
    /// How long event items (and their dedupe markers) live.
    pub event_ttl: TimeDelta,
    /// How long audit items live.
    pub audit_ttl: TimeDelta,
    /// Event items one `add` writes at once (at least 1).
    pub put_concurrency: usize,
}

impl DynamoSettings {
    /// Defaults: 5-minute lease, events kept 7 days, audit 90 days.
    pub fn new(table: impl Into<String>, window: WindowConfig) -> Self {
        Self {
            table: table.into(),
            window,
            lease: TimeDelta::minutes(5),
            event_ttl: TimeDelta::days(7),
            audit_ttl: TimeDelta::days(90),
            put_concurrency: 32,
        }
    }
}

/// Write requests issued and the write units they cost, estimated with DynamoDB's metering
/// rules (1 unit per started KiB per item written, twice that inside a transaction, plus
/// the due index's writes). moto reports fixed capacities, so this counter is the measure.
#[derive(Debug, Default)]
pub struct WriteMeter {
    requests: AtomicU64,
    items: AtomicU64,
    units: AtomicU64,
    /// The same, per operation (`add`, `claim`, `mark sent`, ...).
    by_op: std::sync::Mutex<std::collections::BTreeMap<&'static str, WriteCounts>>,
}

/// A snapshot of [`WriteMeter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriteCounts {
    pub requests: u64,
    pub items: u64,
    pub units: u64,
}

impl WriteMeter {
    fn record(&self, op: &'static str, items: u64, units: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(items, Ordering::Relaxed);
        self.units.fetch_add(units, Ordering::Relaxed);
        let mut by_op = self
            .by_op
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counts = by_op.entry(op).or_default();
        counts.requests += 1;
        counts.items += items;
        counts.units += units;
    }

    /// The counts per operation.
    pub fn by_op(&self) -> std::collections::BTreeMap<&'static str, WriteCounts> {
        self.by_op
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn counts(&self) -> WriteCounts {
        WriteCounts {
            requests: self.requests.load(Ordering::Relaxed),
            items: self.items.load(Ordering::Relaxed),
            units: self.units.load(Ordering::Relaxed),
        }
    }
}

/// The [`Store`] port on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    settings: DynamoSettings,
    meter: Arc<WriteMeter>,
    crash: Option<CrashHook>,
}

/// A step of `add` where a test can stop it as a crash would: the intent and any items written
/// so far stay in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddStep {
    /// The window's intent is taken; no item of the call is written yet.
    Intent,
    /// This many events of the window are written (their items, not yet committed).
    Items(usize),
}

/// Whether to stop `add` at a step (see [`DynamoStore::crashing_at`]).
#[derive(Clone)]
struct CrashHook(Arc<dyn Fn(AddStep) -> bool + Send + Sync>);

impl std::fmt::Debug for CrashHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CrashHook")
    }
}

type Item = HashMap<String, AttributeValue>;

/// A window item, read.
#[derive(Debug, Default, Clone)]
struct WindowState {
    exists: bool,
    open_gen: i64,
    sent: i64,
    sent_gen: i64,
    claim_gen: Option<i64>,
    lease_until: Option<i64>,
    pend_due: Option<i64>,
    due_at: Option<i64>,
    claimed_at: Option<i64>,
    attempts: Vec<StatusChange>,
    size: usize,
    /// Whether the item holds `w_tok` (windows written before commit tokens do not).
    has_tok: bool,
    /// The token the next `add` takes (`w_tok`; 1 when absent).
    next_tok: i64,
    /// Pending intents (`wp<token>`): token, epoch ms taken.
    intents: Vec<(i64, i64)>,
    /// Aborted tokens (`w_abort`, a number set).
    aborted: Vec<i64>,
}

/// One step in a batch's life, as the audit records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// `prepared` (claimed), `failed` (released), `lease_expired` (taken over), `sent`.
    pub status: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The audit item of one sent batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    #[serde(flatten)]
    pub line: AuditLine,
    pub event_count: usize,
    pub history: Vec<StatusChange>,
    pub sent_at: DateTime<Utc>,
    /// From claim to sent, when the batch was claimed (immediate alerts are not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_ms: Option<i64>,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn ms(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

fn from_ms(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn ttl(now: DateTime<Utc>, keep: TimeDelta) -> AttributeValue {
    n(now.checked_add_signed(keep).unwrap_or(now).timestamp())
}

fn window_pk(account: &AccountId, start: DateTime<Utc>) -> String {
    format!("W#{account}#{}", rfc3339(start))
}

fn audit_key(id: &BatchId) -> (String, String) {
    let start = rfc3339(id.window_start);
    let pk = format!("AUDIT#{}", id.window_start.format("%Y-%m-%d"));
    let sk = match &id.event {
        Some(event) => format!("{start}#{}#i#{event}", id.account),
        None => format!("{start}#{}#{:05}", id.account, id.seq),
    };
    (pk, sk)
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.as_s().ok().map(String::as_str)
}

/// The attribute names of a JSON item written over the version read (see `put_versioned`).
#[derive(Debug, Clone, Copy)]
struct Versioned {
    op: &'static str,
    body: &'static str,
    version: &'static str,
    /// Whether the item can be in the due index (held events and states; incidents never).
    indexed: bool,
}

/// Versioned JSON bodies (incidents, held events, states) longer than this are stored gzipped
/// (`<body>_gz`): the item then stays within one write unit more often.
const VERSIONED_PLAIN_BYTES: usize = 800;

/// The JSON body of a versioned item: `<attr>` as text, or `<attr>_gz` gzipped.
fn versioned_body(item: &Item, attr: &str, pk: &str) -> Result<Vec<u8>, DynamoError> {
    if let Some(AttributeValue::B(blob)) = item.get(&format!("{attr}_gz")) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(blob.as_ref())
            .read_to_end(&mut out)
            .map_err(|err| malformed(pk, format!("{attr}: {err}")))?;
        return Ok(out);
    }
    get_s(item, attr)
        .map(|body| body.as_bytes().to_vec())
        .ok_or_else(|| malformed(pk, attr.to_owned()))
}

/// The item of an incident: `INC#<account>#<key digest>`, sort key `INC`.
fn incident_pk(key: &IncidentKey) -> String {
    format!("INC#{}#{}", key.account, key.digest())
}

/// Sort key of every state item.
const STATE_SK: &str = "STATE";

/// The item of a state: `ST#<kind>#<key>`, sort key `STATE`.
fn state_pk(kind: StateKind, key: &str) -> String {
    format!("ST#{}#{key}", kind.as_str())
}

fn parse_state(kind: StateKind, pk: &str, item: &Item) -> Result<StateItem, DynamoError> {
    let key = get_s(item, "state_key").ok_or_else(|| malformed(pk, "state key"))?;
    let body = versioned_body(item, "state_body", pk)?;
    let body =
        String::from_utf8(body).map_err(|err| malformed(pk, format!("state body: {err}")))?;
    let version = get_n(item, "state_version").ok_or_else(|| malformed(pk, "state version"))?;
    Ok(StateItem {
        kind,
        key: key.to_owned(),
        body,
        due_at: get_n(item, DUE_AT).map(from_ms),
        version: u64::try_from(version).unwrap_or(0),
    })
}

fn malformed(key: &str, reason: impl Into<String>) -> DynamoError {
    DynamoError::Malformed {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// DynamoDB's item size: attribute names plus values (numbers about a byte per two digits).
fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(v) => v.len(),
        AttributeValue::N(v) => v.len().div_ceil(2) + 1,
        AttributeValue::B(v) => v.as_ref().len(),
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn units(size: usize) -> u64 {
    u64::try_from(size.div_ceil(1024).max(1)).unwrap_or(u64::MAX)
}

/// Write units the `due` index costs for one write of a window whose `due_at` goes from
/// `before` to `after` (`None`: not in the index), `projected_change` when it changes one of
/// [`DUE_INDEX_ATTRIBUTES`] (its entry stays under 1 KiB). DynamoDB's rules ("Global secondary indexes:
/// provisioned throughput considerations", Developer Guide, GSI.html#GSI.Writes): an item
/// entering or leaving the index is one write, a change of the index key two (delete, then
/// put), any other change of an indexed item one; an item in the index neither before nor
/// after costs nothing.
fn index_units(before: Option<i64>, after: Option<i64>, projected_change: bool) -> u64 {
    match (before, after) {
        (None, None) => 0,
        (Some(old), Some(new)) if old == new => u64::from(projected_change),
        (Some(_), Some(_)) => 2,
        _ => 1,
    }
}

/// The most the `due` index can cost for a put of an indexable item of `size` bytes over one
/// read at `read` (0: none), with `due` after it: its old `due_at` is not read back, so a change
/// of key is assumed (a state's projected body can pass a write unit).
fn put_index_units(read: u64, due: bool, size: usize) -> u64 {
    match (read > 0, due) {
        (_, true) => 2 * units(size),
        (true, false) => units(size),
        (false, false) => 0,
    }
}

fn status_to_av(change: &StatusChange) -> AttributeValue {
    let mut map = HashMap::from([
        ("status".to_owned(), s(change.status.clone())),
        ("at".to_owned(), n(ms(change.at))),
    ]);
    if let Some(reason) = &change.reason {
        map.insert("reason".to_owned(), s(reason.clone()));
    }
    AttributeValue::M(map)
}

fn status_from_av(value: &AttributeValue) -> Option<StatusChange> {
    let map = value.as_m().ok()?;
    Some(StatusChange {
        status: get_s(map, "status")?.to_owned(),
        at: from_ms(get_n(map, "at")?),
        reason: get_s(map, "reason").map(str::to_owned),
    })
}

impl WindowState {
    fn parse(item: Option<&Item>) -> Self {
        let Some(item) = item else {
            return Self {
                open_gen: 1,
                next_tok: 1,
                ..Self::default()
            };
        };
        Self {
            exists: true,
            open_gen: get_n(item, "w_gen").unwrap_or(1),
            sent: get_n(item, "w_sent").unwrap_or(0),
            sent_gen: get_n(item, "w_sent_gen").unwrap_or(0),
            claim_gen: get_n(item, "w_claim_gen"),
            lease_until: get_n(item, "lease_until"),
            pend_due: get_n(item, "pend_due"),
            due_at: get_n(item, DUE_AT),
            claimed_at: get_n(item, "claimed_at"),
            attempts: item
                .get("w_attempts")
                .and_then(|v| v.as_l().ok())
                .map(|l| l.iter().filter_map(status_from_av).collect())
                .unwrap_or_default(),
            size: item_size(item),
            has_tok: item.contains_key("w_tok"),
            next_tok: get_n(item, "w_tok").unwrap_or(1),
            intents: item
                .iter()
                .filter_map(|(name, value)| {
                    let tok = name.strip_prefix(INTENT_PREFIX)?.parse().ok()?;
                    Some((tok, value.as_n().ok()?.parse().ok()?))
                })
                .collect(),
            aborted: item
                .get("w_abort")
                .and_then(|v| v.as_ns().ok())
                .map(|set| set.iter().filter_map(|t| t.parse().ok()).collect())
                .unwrap_or_default(),
        }
    }

    /// The tokens of the open intents a claim at `now` aborts, or `None` when one is younger
    /// than [`INTENT_LEASE_MS`]: that add is writing events of the generation the claim would
    /// take, so the claim waits for it (the next tick). An aborted intent's items are never
    /// read; their writer, or the redelivery of its records, writes them again.
    fn stale_intents(&self, now: DateTime<Utc>) -> Option<Vec<i64>> {
        let young = self
            .intents
            .iter()
            .any(|(_, at)| at.saturating_add(INTENT_LEASE_MS) > ms(now));
        (!young).then(|| self.intents.iter().map(|(tok, _)| *tok).collect())
    }

    /// When the intent of `tok` was taken (epoch ms), while it is open.
    fn intent(&self, tok: i64) -> Option<i64> {
        self.intents
            .iter()
            .find_map(|(t, at)| (*t == tok).then_some(*at))
    }

    /// What the token `tok` of an item of this window says of it: none (written by a
    /// transaction, before tokens) is committed; an aborted token, or one this window never
    /// gave (the window expired and was made again), is void; one with an intent is pending;
    /// any other token the window gave is committed.
    fn token(&self, tok: Option<i64>) -> TokenState {
        let Some(tok) = tok else {
            return TokenState::Committed;
        };
        if self.aborted.contains(&tok) || tok >= self.next_tok {
            TokenState::Void
        } else if self.intents.iter().any(|(t, _)| *t == tok) {
            TokenState::Pending
        } else {
            TokenState::Committed
        }
    }

    fn in_flight(&self) -> bool {
        self.claim_gen.is_some()
    }

    /// The claim generation holding batch `id` now, if it is the claim `id` came from (any
    /// claim, when `id` does not say): a flusher whose lease was taken over holds nothing.
    fn held_by(&self, id: &BatchId) -> Option<i64> {
        self.claim_gen
            .filter(|held| self.seq() == Some(id.seq) && id.claim.is_none_or(|mine| mine == *held))
    }

    fn seq(&self) -> Option<u32> {
        u32::try_from(self.sent).ok()
    }
}

impl DynamoStore {
    pub fn new(client: Client, settings: DynamoSettings) -> Self {
        Self {
            client,
            settings,
            meter: Arc::new(WriteMeter::default()),
            crash: None,
        }
    }

    /// This store, stopping `add` with [`DynamoError::Crashed`] at each step where `at`
    /// returns true: for tests of crashes between its writes.
    #[must_use]
    pub fn crashing_at(mut self, at: impl Fn(AddStep) -> bool + Send + Sync + 'static) -> Self {
        self.crash = Some(CrashHook(Arc::new(at)));
        self
    }

    /// A client from the environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn client_from_env() -> Client {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Client::new(&config)
    }

    pub fn settings(&self) -> &DynamoSettings {
        &self.settings
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Write requests and units issued so far by this store (and its clones).
    pub fn writes(&self) -> WriteCounts {
        self.meter.counts()
    }

    /// [`writes`](Self::writes) per operation.
    pub fn writes_by_op(&self) -> std::collections::BTreeMap<&'static str, WriteCounts> {
        self.meter.by_op()
    }

    fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    async fn get(&self, op: &'static str, key: Item) -> Result<Option<Item>, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.settings.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(op, e))?;
        Ok(out.item)
    }

    async fn window(&self, pk: &str) -> Result<WindowState, DynamoError> {
        let item = self.get("get window", Self::key(pk, "WIN")).await?;
        Ok(WindowState::parse(item.as_ref()))
    }

    /// Run a single conditional update; `Ok(false)` when the condition failed.
    async fn update_if(
        &self,
        op: &'static str,
        key: Item,
        expression: &str,
        condition: &str,
        values: Item,
        (size, index): (usize, u64),
    ) -> Result<bool, DynamoError> {
        self.meter.record(op, 1, units(size) + index);
        let result = self
            .client
            .update_item()
            .table_name(&self.settings.table)
            .set_key(Some(key))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(err) => Err(classify(op, err)),
        }
    }

    /// Put `item` with `value` as JSON and its version (`value`'s, one more than `read`), if the
    /// stored version is still `read` (none stored counts as 0); kept `event_ttl` from `keep_from`.
    /// `Ok(false)`: another writer moved it on.
    async fn put_versioned<T: Serialize>(
        &self,
        names: Versioned,
        mut item: Item,
        value: &T,
        read: u64,
        keep_from: DateTime<Utc>,
    ) -> Result<bool, DynamoError> {
        let body = serde_json::to_string(value).map_err(|err| DynamoError::Build {
            op: names.op,
            source: Box::new(err),
        })?;
        let version = |v: u64| n(i64::try_from(v).unwrap_or(i64::MAX));
        if body.len() > VERSIONED_PLAIN_BYTES {
            // Over a write unit as text: gzipped, under `<body>_gz`.
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let bytes = gz
                .write_all(body.as_bytes())
                .and_then(|()| gz.finish())
                .map_err(|err| DynamoError::Build {
                    op: names.op,
                    source: Box::new(err),
                })?;
            item.insert(
                format!("{}_gz", names.body),
                AttributeValue::B(Blob::new(bytes)),
            );
        } else {
            item.insert(names.body.to_owned(), s(body));
        }
        item.insert(names.version.to_owned(), version(read + 1));
        item.insert(
            TTL_ATTRIBUTE.to_owned(),
            ttl(keep_from, self.settings.event_ttl),
        );
        let index = if names.indexed {
            put_index_units(read, item.contains_key(DUE_AT), item_size(&item))
        } else {
            0
        };
        if read == 0 {
            return self
                .put_if(names.op, item, "attribute_not_exists(pk)", None, index)
                .await;
        }
        let condition = format!("{} = :v", names.version);
        let values = HashMap::from([(":v".to_owned(), version(read))]);
        self.put_if(names.op, item, &condition, Some(values), index)
            .await
    }

    /// Every item of the `due` index in `partition` due at `now` (`due_at <= now`), all pages.
    async fn due_items(
        &self,
        op: &'static str,
        partition: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Item>, DynamoError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.settings.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("due_pk = :dp AND due_at <= :now")
                .expression_attribute_values(":dp", s(partition))
                .expression_attribute_values(":now", n(ms(now)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(op, e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Run a single put; `Ok(false)` when the condition failed.
    async fn put_if(
        &self,
        op: &'static str,
        item: Item,
        condition: &str,
        values: Option<Item>,
        index: u64,
    ) -> Result<bool, DynamoError> {
        let old = self.put_or_old(op, item, condition, values, index).await?;
        Ok(old.is_none())
    }

    /// The events of generations `(after, upto]` of a window whose tokens are committed in
    /// `tokens` (the window as claimed) and that have not expired at `now` (DynamoDB's TTL sweep
    /// may leave an expired item for days: they are left out and logged), ordered by time then
    /// id. None at all is an error, unless every one expired unsent (a window due for longer
    /// than the events' TTL): the batch is then empty, and the engine closes it without a post.
    async fn events(
        &self,
        pk: &str,
        (after, upto): (i64, i64),
        tokens: &WindowState,
        now: DateTime<Utc>,
    ) -> Result<Vec<BatchEvent>, DynamoError> {
        let mut events = Vec::new();
        let mut expired = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.settings.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :e)")
                .filter_expression("ev_gen > :after AND ev_gen <= :upto")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":e", s("E#"))
                .expression_attribute_values(":after", n(after))
                .expression_attribute_values(":upto", n(upto))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("query events", e))?;
            for item in out.items() {
                if tokens.token(get_n(item, "ev_tok")) != TokenState::Committed {
                    // An orphan: its add never committed; its event is written again.
                    continue;
                }
                if get_n(item, TTL_ATTRIBUTE).is_some_and(|expires| expires <= now.timestamp()) {
                    expired += 1;
                    continue;
                }
                let mut stored = stored_event(pk, item)?;
                let alerted = matches!(item.get("ev_alerted"), Some(AttributeValue::Bool(true)));
                stored.already_alerted |= alerted;
                events.push(stored);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        if events.is_empty() && expired == 0 {
            return Err(malformed(pk, "claimed a window without unsent events"));
        }
        if expired > 0 {
            tracing::warn!(
                window = %pk,
                expired,
                "Events expired unsent (past the events' TTL): left out of the batch."
            );
        }
        events.sort_by(|a, b| (a.event.time, &a.event.id).cmp(&(b.event.time, &b.event.id)));
        Ok(events)
    }

    fn audit_item(
        &self,
        id: &BatchId,
        audit: &AuditLine,
        history: Vec<StatusChange>,
        claimed_at: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<Item, DynamoError> {
        let record = AuditRecord {
            line: audit.clone(),
            event_count: audit.events.len(),
            history,
            sent_at: now,
            flush_ms: claimed_at.map(|c| ms(now) - c),
        };
        let json = serde_json::to_vec(&record).map_err(|err| DynamoError::Build {
            op: "audit",
            source: Box::new(err),
        })?;
        let (pk, sk) = audit_key(id);
        let mut item = Self::key(pk, sk);
        item.insert("batch_key".to_owned(), s(id.key()));
        item.insert("acct".to_owned(), s(id.account.as_str()));
        item.insert("w_start".to_owned(), s(rfc3339(id.window_start)));
        item.insert("severity".to_owned(), s(format!("{:?}", audit.severity)));
        item.insert(
            "event_count".to_owned(),
            n(i64::try_from(audit.events.len()).unwrap_or(i64::MAX)),
        );
        item.insert("sent_at".to_owned(), n(ms(now)));
        item.insert(TTL_ATTRIBUTE.to_owned(), ttl(now, self.settings.audit_ttl));
        if json.len() <= AUDIT_PLAIN_BYTES {
            item.insert(
                "audit_json".to_owned(),
                s(String::from_utf8_lossy(&json).into_owned()),
            );
        } else {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&json)
                .and_then(|()| gz.finish())
                .map(|bytes| {
                    item.insert("audit_gz".to_owned(), AttributeValue::B(Blob::new(bytes)))
                })
                .map_err(|err| DynamoError::Build {
                    op: "audit",
                    source: Box::new(err),
                })?;
        }
        Ok(item)
    }

    async fn mark_immediate_sent(
        &self,
        id: &BatchId,
        audit: &AuditLine,
        now: DateTime<Utc>,
    ) -> Result<(), DynamoError> {
        let history = vec![StatusChange {
            status: "sent".to_owned(),
            at: now,
            reason: None,
        }];
        let item = self.audit_item(id, audit, history, None, now)?;
        // Already there: an earlier attempt recorded it.
        self.put_if("put audit", item, "attribute_not_exists(pk)", None, 0)
            .await?;
        // The window's digest shows the event as already alerted. Skipped when the event item
        // is gone (expired): there is no digest left to mark.
        let Some(event) = &id.event else {
            return Ok(());
        };
        let key = Self::key(
            window_pk(&id.account, id.window_start),
            format!("E#{event}"),
        );
        self.update_if(
            "mark alerted",
            key,
            "SET ev_alerted = :t",
            "attribute_exists(pk)",
            HashMap::from([(":t".to_owned(), AttributeValue::Bool(true))]),
            (event.len() + 64, 0),
        )
        .await
        .map(|_| ())
    }

    /// The last sequence number `consume` processed on a shard.
    pub async fn checkpoint(
        &self,
        stream: &str,
        shard: &str,
    ) -> Result<Option<String>, DynamoError> {
        let item = self
            .get("get checkpoint", Self::key(format!("CKPT#{stream}"), shard))
            .await?;
        Ok(item.and_then(|i| get_s(&i, "ck_seq").map(str::to_owned)))
    }

    /// Record `seq` as processed on a shard. Never moves backwards: `Ok(false)` when a later
    /// sequence number is already stored. Sequence numbers are decimal strings; compared by
    /// length first, then text, which is their numeric order.
    pub async fn set_checkpoint(
        &self,
        stream: &str,
        shard: &str,
        seq: &str,
    ) -> Result<bool, DynamoError> {
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DynamoError::Build {
                op: "set checkpoint",
                source: "a sequence number is a decimal string".into(),
            });
        }
        let len = i64::try_from(seq.len()).unwrap_or(i64::MAX);
        let mut item = Self::key(format!("CKPT#{stream}"), shard);
        item.insert("ck_seq".to_owned(), s(seq));
        item.insert("ck_len".to_owned(), n(len));
        let values = HashMap::from([(":s".to_owned(), s(seq)), (":l".to_owned(), n(len))]);
        self.put_if(
            "set checkpoint",
            item,
            "attribute_not_exists(pk) OR ck_len < :l OR (ck_len = :l AND ck_seq <= :s)",
            Some(values),
            0,
        )
        .await
    }

    /// Audit records of batches whose window started at or after `since`, up to `until`,
    /// oldest window first.
    pub async fn audit(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<AuditRecord>, DynamoError> {
        let mut records = Vec::new();
        let first = since.date_naive();
        let last = until
            .date_naive()
            .min(first + chrono::Days::new(u64::try_from(AUDIT_MAX_DAYS).unwrap_or(0)));
        let mut day: NaiveDate = first;
        while day <= last {
            self.audit_day(day, since, &mut records).await?;
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        Ok(records)
    }

    async fn audit_day(
        &self,
        day: NaiveDate,
        since: DateTime<Utc>,
        records: &mut Vec<AuditRecord>,
    ) -> Result<(), DynamoError> {
        let pk = format!("AUDIT#{}", day.format("%Y-%m-%d"));
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.settings.table)
                .key_condition_expression("pk = :pk AND sk >= :since")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":since", s(rfc3339(since)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("query audit", e))?;
            for item in out.items() {
                records.push(parse_audit(&pk, item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(());
            }
        }
    }
}

fn parse_audit(pk: &str, item: &Item) -> Result<AuditRecord, DynamoError> {
    let json = if let Some(text) = get_s(item, "audit_json") {
        text.as_bytes().to_vec()
    } else {
        let blob = item
            .get("audit_gz")
            .and_then(|v| v.as_b().ok())
            .ok_or_else(|| malformed(pk, "audit record"))?;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(blob.as_ref())
            .read_to_end(&mut out)
            .map_err(|err| malformed(pk, format!("audit record: {err}")))?;
        out
    };
    serde_json::from_slice(&json).map_err(|err| malformed(pk, format!("audit record: {err}")))
}

/// The version of the event item this code writes: 2 holds the event gzipped (`ev_gz`),
/// 1 (no `ev_v`, written before) as JSON text (`ev_body`). Both are read.
const EVENT_ITEM_VERSION: i64 = 2;

/// An event ready to store: its window's start, its body gzipped.
struct NewEvent {
    event: BatchEvent,
    gz: Vec<u8>,
    start: DateTime<Utc>,
}

impl NewEvent {
    fn encode(event: BatchEvent, start: DateTime<Utc>) -> Result<Self, DynamoError> {
        let build = |source: Box<dyn std::error::Error + Send + Sync>| DynamoError::Build {
            op: "add",
            source,
        };
        let body = serde_json::to_vec(&event).map_err(|err| build(Box::new(err)))?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&body).map_err(|err| build(Box::new(err)))?;
        let gz = gz.finish().map_err(|err| build(Box::new(err)))?;
        Ok(Self { event, gz, start })
    }
}

/// The stored event of an event item, either version.
fn stored_event(pk: &str, item: &Item) -> Result<BatchEvent, DynamoError> {
    let json = match (item.get("ev_gz"), get_s(item, "ev_body")) {
        (Some(AttributeValue::B(blob)), _) => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(blob.as_ref())
                .read_to_end(&mut out)
                .map_err(|err| malformed(pk, format!("event body: {err}")))?;
            out
        }
        (_, Some(body)) => body.as_bytes().to_vec(),
        _ => return Err(malformed(pk, "event body")),
    };
    // The event body is the redacted `BatchEvent`, its rule inline.
    serde_json::from_slice(&json).map_err(|err| malformed(pk, format!("event body: {err}")))
}

/// What a token, found on an event item or marker, says of it (see [`WindowState::token`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenState {
    /// Its add committed: the item is stored, and read by the flush of its generation.
    Committed,
    /// Its add has not committed yet (or stopped before it did).
    Pending,
    /// It can never commit (aborted, or its window is gone): the item is an orphan, which the
    /// next writer of its event adopts.
    Void,
}

/// How one item of an `add` went.
enum ItemPut {
    /// Written (or adopted) under this call's token.
    Ours,
    /// Stored before under a committed token: the event is a duplicate.
    Stored,
    /// This call's intent was aborted meanwhile: write it again under a new token.
    Again,
}

/// What an item's pending token came to (see `DynamoStore::settle`).
enum Settled {
    Committed,
    Void,
    /// The writer's own intent was aborted meanwhile.
    OwnAborted,
}

/// What `put_item` writes over.
#[derive(Debug, Clone, Copy)]
enum Over {
    /// An orphan of this void token.
    Void(i64),
    /// An item past its `expires_at`.
    Expired,
}

/// The intent an add writes under: its window and token.
#[derive(Debug, Clone, Copy)]
struct Own<'a> {
    pk: &'a str,
    tok: i64,
    /// The writer's time, epoch seconds (as `expires_at`).
    now: i64,
}

impl DynamoStore {
    /// Put `item` (an event item or marker, holding `ev_tok` = `own`, a token of window `pk`)
    /// unless its key holds a stored one. A committed item makes the event a duplicate; an
    /// orphan (its token void) is taken over with a put conditional on its token; a pending
    /// one has its token aborted first ([`Self::settle`]).
    async fn put_item(
        &self,
        op: &'static str,
        own: Own<'_>,
        item: Item,
    ) -> Result<ItemPut, DynamoError> {
        let mut over: Option<Over> = None;
        for _ in 0..MAX_RACES {
            let (condition, values) = match over {
                None => ("attribute_not_exists(pk)", None),
                Some(Over::Void(tok)) => (
                    "ev_tok = :t",
                    Some(HashMap::from([(":t".to_owned(), n(tok))])),
                ),
                Some(Over::Expired) => (
                    "expires_at <= :now",
                    Some(HashMap::from([(":now".to_owned(), n(own.now))])),
                ),
            };
            let Some(old) = self
                .put_or_old(op, item.clone(), condition, values, 0)
                .await?
            else {
                return Ok(ItemPut::Ours);
            };
            if old.is_empty() {
                // Gone between the two puts (the TTL sweep took an expired item): put anew.
                over = None;
                continue;
            }
            if get_n(&old, TTL_ATTRIBUTE).is_some_and(|expires| expires <= own.now) {
                // Expired, not yet deleted by DynamoDB's sweep (it deletes in no order, maybe
                // after its window): the event is taken as new, as once the item is gone.
                over = Some(Over::Expired);
                continue;
            }
            // Written by a transaction, before commit tokens: stored.
            let Some(tok) = get_n(&old, "ev_tok") else {
                return Ok(ItemPut::Stored);
            };
            // A marker's token is one of the window it names; an event item's, of its own.
            let owner = get_s(&old, "ev_window").unwrap_or(own.pk);
            if owner == own.pk && tok == own.tok {
                // This call's own item (an SDK retry of a put that went through).
                return Ok(ItemPut::Ours);
            }
            match self.settle(owner, tok, own).await? {
                Settled::Committed => return Ok(ItemPut::Stored),
                Settled::OwnAborted => return Ok(ItemPut::Again),
                Settled::Void => over = Some(Over::Void(tok)),
            }
        }
        Err(DynamoError::Contention {
            op,
            window: own.pk.to_owned(),
        })
    }

    /// What token `tok` of window `pk` comes to for a writer holding `own`: committed, or void.
    /// A pending one is aborted, at once when its intent is younger than the writer's (later,
    /// or as old and after it by window and token), otherwise after waiting up to
    /// [`WRITER_PATIENCE`] for it to commit: of two writers of one event the older goes on, and
    /// a writer that stopped is taken over after the wait. A writer whose own intent was
    /// aborted meanwhile aborts nobody: it starts again with a new, younger token.
    async fn settle(&self, pk: &str, tok: i64, own: Own<'_>) -> Result<Settled, DynamoError> {
        let started = std::time::Instant::now();
        for _ in 0..MAX_RACES * 8 {
            let window = self.window(pk).await?;
            let Some(other) = window.intent(tok) else {
                return Ok(match window.token(Some(tok)) {
                    TokenState::Committed => Settled::Committed,
                    TokenState::Pending | TokenState::Void => Settled::Void,
                });
            };
            let mine = if pk == own.pk {
                window.intent(own.tok)
            } else {
                self.window(own.pk).await?.intent(own.tok)
            };
            let Some(mine) = mine else {
                return Ok(Settled::OwnAborted);
            };
            let younger = (other, pk, tok) > (mine, own.pk, own.tok);
            if younger || started.elapsed() >= WRITER_PATIENCE {
                // Then read again: committed meanwhile, or now void.
                self.abort(pk, tok, &window).await?;
            } else {
                tokio::time::sleep(WRITER_POLL).await;
            }
        }
        Err(DynamoError::Contention {
            op: "settle",
            window: pk.to_owned(),
        })
    }

    /// A put with `condition` (costing `index` units in the due index besides the item):
    /// `Ok(None)` when written, else the item that failed it (returned with the error, no read).
    async fn put_or_old(
        &self,
        op: &'static str,
        item: Item,
        condition: &str,
        values: Option<Item>,
        index: u64,
    ) -> Result<Option<Item>, DynamoError> {
        self.meter.record(op, 1, units(item_size(&item)) + index);
        let result = self
            .client
            .put_item()
            .table_name(&self.settings.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(err) => {
                if let Some(PutItemError::ConditionalCheckFailedException(failed)) =
                    err.as_service_error()
                {
                    return Ok(Some(failed.item().cloned().unwrap_or_default()));
                }
                Err(classify(op, err))
            }
        }
    }

    /// Abort the pending token `tok` of window `pk`: it can no longer commit, and its items are
    /// orphans. `Ok(false)` when it is not pending any more (committed or aborted meanwhile).
    async fn abort(&self, pk: &str, tok: i64, window: &WindowState) -> Result<bool, DynamoError> {
        self.update_if(
            "abort",
            Self::key(pk, "WIN"),
            &format!("REMOVE {INTENT_PREFIX}{tok} ADD w_abort :t"),
            &format!("attribute_exists({INTENT_PREFIX}{tok})"),
            HashMap::from([(":t".to_owned(), AttributeValue::Ns(vec![tok.to_string()]))]),
            (window.size, 0),
        )
        .await
    }

    /// Remove the intent of `tok` (an add that stored nothing new): `Ok(false)` when it was
    /// aborted meanwhile.
    async fn withdraw(
        &self,
        pk: &str,
        tok: i64,
        window: &WindowState,
    ) -> Result<bool, DynamoError> {
        self.update_if(
            "commit",
            Self::key(pk, "WIN"),
            &format!("REMOVE {INTENT_PREFIX}{tok}"),
            &format!("attribute_exists({INTENT_PREFIX}{tok})"),
            HashMap::new(),
            (window.size, 0),
        )
        .await
    }

    /// Take the window's next token: `w_tok + 1`, and an intent `wp<token>` = `now` (epoch ms).
    /// Creates the window when new (not in the due index yet). `Ok(None)` when the window
    /// moved since it was read.
    async fn intend(
        &self,
        pk: &str,
        window: &WindowState,
        (account, start): (&AccountId, DateTime<Utc>),
        now: DateTime<Utc>,
        expires_at: AttributeValue,
    ) -> Result<Option<i64>, DynamoError> {
        let tok = window.next_tok;
        let mut values = HashMap::from([
            (":k1".to_owned(), n(tok + 1)),
            (":now".to_owned(), n(ms(now))),
            (":ttl".to_owned(), expires_at),
        ]);
        let mut expression =
            format!("SET w_tok = :k1, {INTENT_PREFIX}{tok} = :now, expires_at = :ttl");
        let condition = if window.exists {
            values.insert(":g".to_owned(), n(window.open_gen));
            if window.has_tok {
                values.insert(":k".to_owned(), n(tok));
                "w_gen = :g AND w_tok = :k"
            } else {
                "w_gen = :g AND attribute_not_exists(w_tok)"
            }
        } else {
            values.insert(":one".to_owned(), n(1));
            values.insert(":zero".to_owned(), n(0));
            values.insert(":acct".to_owned(), s(account.as_str()));
            values.insert(":start".to_owned(), s(rfc3339(start)));
            expression.push_str(
                ", w_gen = :one, w_sent = :zero, w_sent_gen = :zero, acct = :acct, \
                 w_start = :start",
            );
            "attribute_not_exists(pk)"
        };
        let size = window.size + 32;
        let taken = self
            .update_if(
                "intent",
                Self::key(pk, "WIN"),
                &expression,
                condition,
                values,
                (size, 0),
            )
            .await?;
        Ok(taken.then_some(tok))
    }

    /// Commit token `tok` of window `pk` with `count` events: the window becomes due (or, while
    /// a batch is in flight, remembers when its next batch is due) and the intent goes. Returns
    /// the batch the events are in, and whether they are late; `Ok(None)` when the intent was
    /// aborted (the items are orphans: the caller writes them again under a new token).
    async fn commit(
        &self,
        pk: &str,
        (tok, count, generation): (i64, usize, i64),
        read: WindowState,
        (account, start): (&AccountId, DateTime<Utc>),
        now: DateTime<Utc>,
        expires_at: &AttributeValue,
    ) -> Result<Option<Added>, DynamoError> {
        let config = self.settings.window;
        let intent = format!("{INTENT_PREFIX}{tok}");
        let mut known = Some(read);
        for _ in 0..MAX_RACES {
            let window = match known.take() {
                Some(window) => window,
                None => self.window(pk).await?,
            };
            if window.intent(tok).is_none() {
                return Ok(None);
            }
            if window.open_gen != generation {
                // Only a claim that ignores intents (a release before commit tokens, during a
                // deploy) moves the generation under an open intent: these items may have been
                // read with it, so they are not committed into another generation.
                self.abort(pk, tok, &window).await?;
                return Ok(None);
            }
            let in_flight = window.in_flight();
            let late = window.sent > 0 || in_flight;
            let seq = window.sent + i64::from(in_flight);
            let window_due = config.due_at(start);
            let due = if late {
                window_due.max(now.checked_add_signed(config.grace).unwrap_or(now))
            } else {
                window_due
            };
            let mut values = HashMap::from([
                (":due".to_owned(), n(ms(due))),
                (":g".to_owned(), n(generation)),
                (":ttl".to_owned(), expires_at.clone()),
            ]);
            if count == 0 {
                // Every event was stored already: only the intent goes; nothing becomes due.
                return Ok(self
                    .withdraw(pk, tok, &window)
                    .await?
                    .then_some(Added::Duplicate));
            }
            values.insert(
                ":count".to_owned(),
                n(i64::try_from(count).unwrap_or(i64::MAX)),
            );
            let (expression, condition, index) = if in_flight {
                values.insert(":s".to_owned(), n(window.sent));
                (
                    format!(
                        "SET pend_due = if_not_exists(pend_due, :due), expires_at = :ttl \
                         REMOVE {intent} ADD w_events :count"
                    ),
                    format!(
                        "attribute_exists({intent}) AND w_gen = :g AND w_sent = :s AND \
                         attribute_exists(w_claim_gen)"
                    ),
                    0,
                )
            } else {
                values.insert(":dp".to_owned(), s(DUE_PARTITION));
                (
                    format!(
                        "SET due_pk = :dp, due_at = if_not_exists(due_at, :due), \
                         expires_at = :ttl REMOVE {intent} ADD w_events :count"
                    ),
                    format!(
                        "attribute_exists({intent}) AND w_gen = :g AND \
                         attribute_not_exists(w_claim_gen)"
                    ),
                    index_units(window.due_at, window.due_at.or(Some(ms(due))), false),
                )
            };
            if self
                .update_if(
                    "commit",
                    Self::key(pk, "WIN"),
                    &expression,
                    &condition,
                    values,
                    (window.size, index),
                )
                .await?
            {
                return Ok(Some(Added::New {
                    batch: BatchId {
                        account: account.clone(),
                        window_start: start,
                        seq: u32::try_from(seq).unwrap_or(u32::MAX),
                        event: None,
                        claim: None,
                    },
                    late,
                }));
            }
        }
        Err(DynamoError::Contention {
            op: "commit",
            window: pk.to_owned(),
        })
    }

    /// The items of one event under token `tok`, generation `generation`: its id marker first
    /// when it was placed at its arrival, then the event item.
    async fn put_event(
        &self,
        pk: &str,
        (tok, generation, now): (i64, i64, i64),
        new: &NewEvent,
        expires_at: &AttributeValue,
    ) -> Result<ItemPut, DynamoError> {
        let id = new.event.event.id.as_str();
        if new.event.placed {
            let mut marker = Self::key(format!("EID#{id}"), "EID");
            marker.insert("ev_window".to_owned(), s(pk));
            marker.insert("ev_tok".to_owned(), n(tok));
            marker.insert(TTL_ATTRIBUTE.to_owned(), expires_at.clone());
            if let ItemPut::Stored = self
                .put_item("put marker", Own { pk, tok, now }, marker)
                .await?
            {
                return Ok(ItemPut::Stored);
            }
        }
        let mut item = Self::key(pk, format!("E#{id}"));
        item.insert("ev_v".to_owned(), n(EVENT_ITEM_VERSION));
        item.insert("ev_gen".to_owned(), n(generation));
        item.insert("ev_tok".to_owned(), n(tok));
        item.insert("ev_time".to_owned(), n(ms(new.event.event.time)));
        item.insert(
            "ev_gz".to_owned(),
            AttributeValue::B(Blob::new(new.gz.clone())),
        );
        item.insert(TTL_ATTRIBUTE.to_owned(), expires_at.clone());
        self.put_item("put event", Own { pk, tok, now }, item).await
    }

    /// Store `events` of the window `pk` (see `add_all`); each event's result goes to `out` at
    /// its index. Three steps, each one conditional write or more: take the window's next
    /// token with an intent (`intend`); put the items under it, [`DynamoSettings::put_concurrency`]
    /// at a time (`put_event`); commit it (`commit`). Stopped after any step, nothing of the
    /// call is read by a flush: its items are orphans until its records come again. If a claim
    /// aborted the intent meanwhile (this call outlived [`INTENT_LEASE_MS`]), all again under a
    /// new token.
    async fn add_window(
        &self,
        pk: &str,
        mut events: Vec<(usize, NewEvent)>,
        (now, started): (DateTime<Utc>, std::time::Instant),
        out: &mut [Option<Added>],
    ) -> Result<(), DynamoError> {
        let event_ttl = ttl(now, self.settings.event_ttl);
        let Some((_, first)) = events.first() else {
            return Ok(());
        };
        let (start, account) = (first.start, first.event.event.account.clone());
        for _ in 0..MAX_RACES {
            if events.is_empty() {
                return Ok(());
            }
            let window = self.window(pk).await?;
            // The intent is dated `now` plus the time this call has taken so far (`now` is when
            // the call began), and never before the claim in flight: an intent taken again
            // after a claim aborted the first is not old at birth.
            let elapsed = TimeDelta::from_std(started.elapsed()).unwrap_or_default();
            let stamp = now.checked_add_signed(elapsed).unwrap_or(now);
            let stamp = window.claimed_at.map_or(stamp, |c| stamp.max(from_ms(c)));
            let Some(tok) = self
                .intend(pk, &window, (&account, start), stamp, event_ttl.clone())
                .await?
            else {
                continue;
            };
            self.crash_at(AddStep::Intent)?;
            let mut ours = Vec::with_capacity(events.len());
            let mut again = Vec::new();
            let mut done = 0;
            let concurrency = self.settings.put_concurrency.max(1);
            while !events.is_empty() {
                let rest = events.split_off(events.len().min(concurrency));
                let mut tasks = tokio::task::JoinSet::new();
                for (index, new) in std::mem::replace(&mut events, rest) {
                    let (store, pk, ttl) = (self.clone(), pk.to_owned(), event_ttl.clone());
                    let generation = window.open_gen;
                    tasks.spawn(async move {
                        let put = store
                            .put_event(&pk, (tok, generation, now.timestamp()), &new, &ttl)
                            .await;
                        (index, new, put)
                    });
                }
                while let Some(joined) = tasks.join_next().await {
                    let (index, new, put) = joined.map_err(|err| DynamoError::Build {
                        op: "add",
                        source: Box::new(err),
                    })?;
                    match put? {
                        ItemPut::Ours => ours.push((index, new)),
                        ItemPut::Stored => out[index] = Some(Added::Duplicate),
                        ItemPut::Again => again.push((index, new)),
                    }
                    done += 1;
                }
                self.crash_at(AddStep::Items(done))?;
            }
            if !again.is_empty() {
                // Aborted while writing (a writer of the same event, or a claim, took over):
                // everything again under a new token; the items written are taken back.
                ours.append(&mut again);
                ours.sort_by_key(|(index, _)| *index);
                events = ours;
                continue;
            }
            ours.sort_by_key(|(index, _)| *index);
            // The window as read, with this intent: a claim cannot have come between (it waits
            // for intents), but a batch in flight may have been marked sent (then re-read).
            let mut read = window;
            read.exists = true;
            read.has_tok = true;
            read.next_tok = tok + 1;
            read.intents.push((tok, ms(stamp)));
            match self
                .commit(
                    pk,
                    (tok, ours.len(), read.open_gen),
                    read,
                    (&account, start),
                    now,
                    &event_ttl,
                )
                .await?
            {
                Some(added) => {
                    for (index, _) in ours {
                        out[index] = Some(added.clone());
                    }
                    return Ok(());
                }
                // Aborted while writing (this call outlived its intent): again, a new token.
                None => events = ours,
            }
        }
        Err(DynamoError::Contention {
            op: "add",
            window: pk.to_owned(),
        })
    }

    /// Stop here if a test asked to, as a crash would.
    fn crash_at(&self, step: AddStep) -> Result<(), DynamoError> {
        match &self.crash {
            Some(hook) if (hook.0)(step) => Err(DynamoError::Crashed { step }),
            _ => Ok(()),
        }
    }
}

impl Store for DynamoStore {
    type Error = DynamoError;

    async fn add(&self, event: BatchEvent, now: DateTime<Utc>) -> Result<Added, DynamoError> {
        self.add_all(vec![event], now)
            .await?
            .pop()
            .ok_or_else(|| malformed("add", "no result for the event"))
    }

    /// Per window: an intent (a commit token), the event items, conditional on not existing
    /// (the exact dedupe: an event id always falls in the same window) with an id marker first
    /// for an event placed at its arrival (its window depends on when it arrived), then the
    /// commit (see `add_window`). An event stored before under a committed token is a
    /// duplicate; so is a second record of an id within the call.
    async fn add_all(
        &self,
        events: Vec<BatchEvent>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Added>, DynamoError> {
        let config = self.settings.window;
        // `now` is when the call began; intents are dated by the time it has run since.
        let started = std::time::Instant::now();
        let mut out: Vec<Option<Added>> = vec![None; events.len()];
        // Windows in the order their first event came, each with its events in order.
        let mut windows: Vec<(String, Vec<(usize, NewEvent)>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (index, event) in events.into_iter().enumerate() {
            let start = config.start_of(event.event.time);
            let pk = window_pk(&event.event.account, start);
            if !seen.insert((pk.clone(), event.event.id.to_string())) {
                out[index] = Some(Added::Duplicate);
                continue;
            }
            let new = NewEvent::encode(event, start)?;
            match windows.iter_mut().find(|(key, _)| *key == pk) {
                Some((_, list)) => list.push((index, new)),
                None => windows.push((pk, vec![(index, new)])),
            }
        }
        for (pk, list) in windows {
            self.add_window(&pk, list, (now, started), &mut out).await?;
        }
        out.into_iter()
            .map(|added| added.ok_or_else(|| malformed("add", "an event left unstored")))
            .collect()
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<BatchId>, DynamoError> {
        let mut due = Vec::new();
        for item in &self.due_items("query due", DUE_PARTITION, now).await? {
            let window = WindowState::parse(Some(item));
            if window.in_flight() && window.lease_until.is_some_and(|l| l > ms(now)) {
                continue;
            }
            let key = get_s(item, "pk").unwrap_or_default();
            let account = get_s(item, "acct").ok_or_else(|| malformed(key, "account"))?;
            let window_start = get_s(item, "w_start")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .ok_or_else(|| malformed(key, "window start"))?
                .with_timezone(&Utc);
            let seq = window.seq().ok_or_else(|| malformed(key, "sent count"))?;
            let at = get_n(item, DUE_AT).unwrap_or_default();
            due.push((
                at,
                BatchId {
                    account: AccountId::new(account),
                    window_start,
                    seq,
                    event: None,
                    claim: None,
                },
            ));
        }
        due.sort();
        Ok(due.into_iter().map(|(_, id)| id).collect())
    }

    async fn claim(
        &self,
        id: &BatchId,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, DynamoError> {
        let pk = window_pk(&id.account, id.window_start);
        let window = self.window(&pk).await?;
        let expired = window.lease_until.is_none_or(|l| l <= ms(now));
        if !window.exists
            || window.seq() != Some(id.seq)
            || (window.in_flight() && !expired)
            || window.due_at.is_none()
        {
            return Ok(None);
        }
        let Some(stale) = window.stale_intents(now) else {
            return Ok(None);
        };
        let lease = now.checked_add_signed(self.settings.lease).unwrap_or(now);
        let mut values = HashMap::from([
            (":g".to_owned(), n(window.open_gen)),
            (":g1".to_owned(), n(window.open_gen + 1)),
            (":s".to_owned(), n(window.sent)),
            (":now".to_owned(), n(ms(now))),
            (":lease".to_owned(), n(ms(lease))),
        ]);
        // The window stays in the due index as it was (`due` lists it; a claim while the lease
        // runs fails its condition): the index is not written.
        let mut expression =
            "SET w_claim_gen = :g, w_gen = :g1, lease_until = :lease, claimed_at = :now".to_owned();
        if let (true, Some(claimed)) = (window.in_flight(), window.claimed_at) {
            // Taking over from a flusher whose lease ended: say so in the history.
            let change = StatusChange {
                status: "lease_expired".to_owned(),
                at: from_ms(claimed),
                reason: None,
            };
            values.insert(
                ":att".to_owned(),
                AttributeValue::L(vec![status_to_av(&change)]),
            );
            values.insert(":empty".to_owned(), AttributeValue::L(Vec::new()));
            expression
                .push_str(", w_attempts = list_append(if_not_exists(w_attempts, :empty), :att)");
        }
        expression.push_str(" REMOVE pend_due");
        let mut condition = "w_gen = :g AND w_sent = :s AND attribute_exists(due_at) AND \
             (attribute_not_exists(w_claim_gen) OR lease_until <= :now)"
            .to_owned();
        // No intent taken since the read (`w_tok` unchanged), and the stale ones still there.
        if window.has_tok {
            values.insert(":tok".to_owned(), n(window.next_tok));
            condition.push_str(" AND w_tok = :tok");
        } else {
            condition.push_str(" AND attribute_not_exists(w_tok)");
        }
        for tok in &stale {
            let _ = write!(expression, ", {INTENT_PREFIX}{tok}");
            let _ = write!(condition, " AND attribute_exists({INTENT_PREFIX}{tok})");
        }
        if !stale.is_empty() {
            values.insert(
                ":ab".to_owned(),
                AttributeValue::Ns(stale.iter().map(ToString::to_string).collect()),
            );
            expression.push_str(" ADD w_abort :ab");
        }
        let taken = self
            .update_if(
                "claim",
                Self::key(&pk, "WIN"),
                &expression,
                &condition,
                values,
                (window.size, 0),
            )
            .await?;
        if !taken {
            return Ok(None);
        }
        let mut tokens = window.clone();
        tokens.intents.clear();
        tokens.aborted.extend(stale);
        let events = self
            .events(&pk, (window.sent_gen, window.open_gen), &tokens, now)
            .await?;
        Ok(Some(Claimed {
            // This claim's generation: `mark_sent` and `release` act only while it holds.
            id: BatchId {
                claim: Some(window.open_gen),
                ..id.clone()
            },
            kind: if id.seq == 0 {
                BatchKind::Window
            } else {
                BatchKind::Late
            },
            window_end: self.settings.window.end_of(id.window_start),
            events,
        }))
    }

    async fn mark_sent(
        &self,
        id: &BatchId,
        audit: &AuditLine,
        now: DateTime<Utc>,
    ) -> Result<(), DynamoError> {
        if id.event.is_some() {
            return self.mark_immediate_sent(id, audit, now).await;
        }
        let pk = window_pk(&id.account, id.window_start);
        for _ in 0..MAX_RACES {
            let window = self.window(&pk).await?;
            let Some(claim_gen) = window.held_by(id) else {
                return Err(DynamoError::Conflict {
                    op: "mark sent",
                    what: format!("batch {}: no longer held by this flusher", id.key()),
                });
            };
            let mut history = Vec::new();
            history.extend(window.attempts.iter().cloned());
            if let Some(claimed) = window.claimed_at {
                history.push(StatusChange {
                    status: "prepared".to_owned(),
                    at: from_ms(claimed),
                    reason: None,
                });
            }
            history.push(StatusChange {
                status: "sent".to_owned(),
                at: now,
                reason: None,
            });
            let mut audit_item = self.audit_item(id, audit, history, window.claimed_at, now)?;
            audit_item.insert("a_claim".to_owned(), n(claim_gen));
            let mut values = HashMap::from([
                (":c".to_owned(), n(claim_gen)),
                (":s".to_owned(), n(window.sent)),
                (":s1".to_owned(), n(window.sent + 1)),
            ]);
            let (expression, condition) = if let Some(pend) = window.pend_due {
                values.insert(":p".to_owned(), n(pend));
                (
                    "SET w_sent = :s1, w_sent_gen = :c, due_at = :p \
                     REMOVE w_claim_gen, lease_until, claimed_at, w_attempts, pend_due",
                    "w_claim_gen = :c AND w_sent = :s AND pend_due = :p",
                )
            } else {
                (
                    "SET w_sent = :s1, w_sent_gen = :c \
                     REMOVE w_claim_gen, lease_until, claimed_at, w_attempts, due_at, due_pk",
                    "w_claim_gen = :c AND w_sent = :s AND attribute_not_exists(pend_due)",
                )
            };
            // The audit item first, once per claim: an attempt that stopped before the window
            // update wrote it already, and a retry finds it there; a takeover's (a later claim)
            // replaces one a flusher whose lease it took wrote meanwhile. Then the window, if
            // this flusher still holds it (two writes, not a transaction: half the write units).
            self.put_if(
                "put audit",
                audit_item,
                "attribute_not_exists(pk) OR a_claim < :c",
                Some(HashMap::from([(":c".to_owned(), n(claim_gen))])),
                0,
            )
            .await?;
            if self
                .update_if(
                    "mark sent",
                    Self::key(&pk, "WIN"),
                    expression,
                    condition,
                    values,
                    (
                        window.size,
                        index_units(window.due_at, window.pend_due, true),
                    ),
                )
                .await?
            {
                return Ok(());
            }
        }
        Err(DynamoError::Contention {
            op: "mark sent",
            window: pk,
        })
    }

    async fn incidents(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, DynamoError> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            let pk = incident_pk(key);
            let Some(item) = self.get("get incident", Self::key(&pk, "INC")).await? else {
                continue;
            };
            let body = versioned_body(&item, "inc_body", &pk)?;
            let incident: Incident = serde_json::from_slice(&body)
                .map_err(|err| malformed(&pk, format!("incident body: {err}")))?;
            found.push(incident);
        }
        Ok(found)
    }

    async fn save_incident(
        &self,
        incident: &Incident,
        now: DateTime<Utc>,
    ) -> Result<bool, DynamoError> {
        let mut next = incident.clone();
        next.version += 1;
        let item = Self::key(incident_pk(&incident.key), "INC");
        let versioned = Versioned {
            op: "save incident",
            body: "inc_body",
            version: "inc_version",
            indexed: false,
        };
        self.put_versioned(versioned, item, &next, incident.version, now)
            .await
    }

    async fn held(&self, account: &AccountId) -> Result<Option<Held>, DynamoError> {
        let pk = format!("HELD#{account}");
        let Some(item) = self.get("get held", Self::key(&pk, "HELD")).await? else {
            return Ok(None);
        };
        let body = versioned_body(&item, "held_body", &pk)?;
        let held: Held = serde_json::from_slice(&body)
            .map_err(|err| malformed(&pk, format!("held body: {err}")))?;
        Ok(Some(held))
    }

    async fn save_held(&self, held: &Held, now: DateTime<Utc>) -> Result<bool, DynamoError> {
        let mut next = held.clone();
        next.version += 1;
        let mut item = Self::key(format!("HELD#{}", held.account), "HELD");
        item.insert("acct".to_owned(), s(held.account.as_str()));
        if let Some(due) = held.due_at {
            item.insert(DUE_PK.to_owned(), s(HELD_PARTITION));
            item.insert(DUE_AT.to_owned(), n(ms(due)));
        }
        // Kept until well after its events are due, whatever the event TTL.
        let keep_from = held.due_at.map_or(now, |due| due.max(now));
        let versioned = Versioned {
            op: "save held",
            body: "held_body",
            version: "held_version",
            indexed: true,
        };
        self.put_versioned(versioned, item, &next, held.version, keep_from)
            .await
    }

    async fn held_due(&self, now: DateTime<Utc>) -> Result<Vec<AccountId>, DynamoError> {
        let items = self.due_items("query held", HELD_PARTITION, now).await?;
        Ok(items
            .iter()
            .filter_map(|item| get_s(item, "acct").map(AccountId::new))
            .collect())
    }

    async fn state(&self, kind: StateKind, key: &str) -> Result<Option<StateItem>, DynamoError> {
        let pk = state_pk(kind, key);
        let Some(item) = self.get("get state", Self::key(&pk, STATE_SK)).await? else {
            return Ok(None);
        };
        parse_state(kind, &pk, &item).map(Some)
    }

    async fn save_state(&self, state: &StateItem, now: DateTime<Utc>) -> Result<bool, DynamoError> {
        let (kind, read) = (state.kind, state.version);
        let mut item = Self::key(state_pk(kind, &state.key), STATE_SK);
        item.insert("state_key".to_owned(), s(&state.key));
        if let Some(due) = state.due_at {
            item.insert(DUE_PK.to_owned(), s(kind.as_str()));
            item.insert(DUE_AT.to_owned(), n(ms(due)));
        }
        // The body is JSON already: written as it is, under the version read.
        let body = serde_json::value::RawValue::from_string(state.body.clone()).map_err(|err| {
            DynamoError::Build {
                op: "save state",
                source: Box::new(err),
            }
        })?;
        // Kept until well after it is due, whatever the event TTL.
        let keep_from = state.due_at.map_or(now, |due| due.max(now));
        let versioned = Versioned {
            op: "save state",
            body: "state_body",
            version: "state_version",
            indexed: true,
        };
        self.put_versioned(versioned, item, &body, read, keep_from)
            .await
    }

    async fn states_due(
        &self,
        kind: StateKind,
        now: DateTime<Utc>,
    ) -> Result<Vec<StateItem>, DynamoError> {
        let items = self.due_items("query states", kind.as_str(), now).await?;
        items
            .iter()
            .map(|item| {
                let pk = get_s(item, "pk").unwrap_or_default();
                parse_state(kind, pk, item)
            })
            .collect()
    }

    async fn release(
        &self,
        id: &BatchId,
        retry_at: DateTime<Utc>,
        reason: &str,
    ) -> Result<(), DynamoError> {
        let pk = window_pk(&id.account, id.window_start);
        let window = self.window(&pk).await?;
        let Some(claim_gen) = window.held_by(id) else {
            // Not held (any more): like the in-memory book, nothing to give back.
            return Ok(());
        };
        let change = StatusChange {
            status: "failed".to_owned(),
            at: window.claimed_at.map_or(retry_at, from_ms),
            reason: Some(reason.chars().take(REASON_CHARS).collect()),
        };
        let values = HashMap::from([
            (":c".to_owned(), n(claim_gen)),
            (":s".to_owned(), n(window.sent)),
            (":r".to_owned(), n(ms(retry_at))),
            (":dp".to_owned(), s(DUE_PARTITION)),
            (
                ":att".to_owned(),
                AttributeValue::L(vec![status_to_av(&change)]),
            ),
            (":empty".to_owned(), AttributeValue::L(Vec::new())),
        ]);
        // A failed condition means another flusher took the batch over: nothing to do.
        self.update_if(
            "release",
            Self::key(&pk, "WIN"),
            "SET due_at = :r, due_pk = :dp, \
             w_attempts = list_append(if_not_exists(w_attempts, :empty), :att) \
             REMOVE w_claim_gen, lease_until, pend_due, claimed_at",
            "w_claim_gen = :c AND w_sent = :s",
            values,
            (
                window.size,
                index_units(window.due_at, Some(ms(retry_at)), false),
            ),
        )
        .await
        .map(|_| ())
    }
}

/// Create the table as the CDK stack does: `pk`/`sk` strings, on-demand, the sparse `due`
/// index (`due_pk` string, `due_at` number, [`DUE_INDEX_ATTRIBUTES`]) and TTL on `expires_at`.
pub async fn create_table(client: &Client, table: &str) -> Result<(), DynamoError> {
    let attribute = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .map_err(build_error("create table"))
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(build_error("create table"))
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name(DUE_INDEX)
        .key_schema(key(DUE_PK, KeyType::Hash)?)
        .key_schema(key(DUE_AT, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(
                    DUE_INDEX_ATTRIBUTES
                        .iter()
                        .map(|a| (*a).to_owned())
                        .collect(),
                ))
                .build(),
        )
        .build()
        .map_err(build_error("create table"))?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("sk", ScalarAttributeType::S)?)
        .attribute_definitions(attribute(DUE_PK, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(DUE_AT, ScalarAttributeType::N)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(index)
        .send()
        .await
        .map_err(|e| classify("create table", e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(build_error("create table"))?,
        )
        .send()
        .await
        .map_err(|e| classify("update time to live", e))?;
    Ok(())
}

impl crate::ports::Checkpoints for DynamoStore {
    type Error = DynamoError;

    async fn checkpoint(&self, stream: &str, shard: &str) -> Result<Option<String>, DynamoError> {
        DynamoStore::checkpoint(self, stream, shard).await
    }

    /// A later checkpoint already stored (another consumer got further) is not an error.
    async fn set_checkpoint(
        &self,
        stream: &str,
        shard: &str,
        sequence: &str,
    ) -> Result<(), DynamoError> {
        DynamoStore::set_checkpoint(self, stream, shard, sequence)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Event items of both versions read as the same event: version 1 (written before
    /// 2026-11-30) as JSON text in `ev_body`, version 2 gzipped in `ev_gz`.
    #[test]
    fn event_items_of_either_version_read_the_same() {
        let event = crate::testing::small_batch().events.remove(0);
        let json = serde_json::to_string(&event).unwrap_or_default();
        let mut v1 = DynamoStore::key("W#1#t", "E#x");
        v1.insert("ev_body".to_owned(), s(&json));
        let new = NewEvent::encode(event.clone(), crate::testing::t0());
        let Ok(new) = new else {
            panic!("encode: {:?}", new.err());
        };
        assert!(new.gz.len() < json.len());
        let mut v2 = DynamoStore::key("W#1#t", "E#x");
        v2.insert("ev_v".to_owned(), n(EVENT_ITEM_VERSION));
        v2.insert("ev_gz".to_owned(), AttributeValue::B(Blob::new(new.gz)));
        let read = |item: &Item| {
            stored_event("W#1#t", item).map(|e| serde_json::to_string(&e).unwrap_or_default())
        };
        assert_eq!(read(&v1).ok(), Some(json.clone()));
        assert_eq!(read(&v2).ok(), Some(json));
        let empty = DynamoStore::key("W#1#t", "E#x");
        assert!(stored_event("W#1#t", &empty).is_err());
    }

    /// Versioned bodies (incidents, held events, states) read as text or gzipped.
    #[test]
    fn versioned_bodies_read_as_text_or_gzipped() {
        let body = b"{\"a\":1}";
        let mut text = DynamoStore::key("INC#1#k", "INC");
        text.insert("inc_body".to_owned(), s("{\"a\":1}"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let zipped = gz
            .write_all(body)
            .and_then(|()| gz.finish())
            .unwrap_or_default();
        let mut zipped_item = DynamoStore::key("INC#1#k", "INC");
        zipped_item.insert(
            "inc_body_gz".to_owned(),
            AttributeValue::B(Blob::new(zipped)),
        );
        assert_eq!(
            versioned_body(&text, "inc_body", "p").ok().as_deref(),
            Some(&body[..])
        );
        assert_eq!(
            versioned_body(&zipped_item, "inc_body", "p")
                .ok()
                .as_deref(),
            Some(&body[..])
        );
        assert!(versioned_body(&DynamoStore::key("p", "INC"), "inc_body", "p").is_err());
    }

    #[test]
    fn sizes_follow_dynamodb_metering() {
        let item = HashMap::from([
            ("pk".to_owned(), s("abc")),
            ("n".to_owned(), n(12345)),
            ("l".to_owned(), AttributeValue::L(vec![s("x")])),
        ]);
        // pk:2+3, n:1+(5 digits -> 3+1), l:1+3+1+1
        assert_eq!(item_size(&item), 5 + 5 + 6);
        assert_eq!(units(0), 1);
        assert_eq!(units(1024), 1);
        assert_eq!(units(1025), 2);
    }

    #[test]
    fn audit_keys_sort_by_window_then_account() {
        let id = BatchId {
            account: AccountId::new("111111111111"),
            window_start: DateTime::from_timestamp(1_793_588_400, 0).unwrap_or_default(),
            seq: 2,
            event: None,
            claim: None,
        };
        let (pk, sk) = audit_key(&id);
        assert_eq!(pk, "AUDIT#2026-11-02");
        assert_eq!(sk, "2026-11-02T03:00:00Z#111111111111#00002");
    }

    #[test]
    fn only_throttling_5xx_and_timeouts_are_retryable() {
        let service = |code: &str, retryable| DynamoError::Service {
            op: "x",
            code: code.to_owned(),
            retryable,
            source: "x".into(),
        };
        assert!(service("ThrottlingException", true).is_retryable());
        assert!(!service("ValidationException", false).is_retryable());
        assert!(
            !DynamoError::Conflict {
                op: "x",
                what: String::new()
            }
            .is_retryable()
        );
        assert!(
            DynamoError::Contention {
                op: "x",
                window: String::new()
            }
            .is_retryable()
        );
    }
}
