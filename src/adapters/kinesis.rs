//! Kinesis Data Streams through aws-sdk-kinesis: every SDK call trailwatch makes to Kinesis.
//! The endpoint and credentials come from the standard AWS environment (`AWS_ENDPOINT_URL`
//! reaches a local emulator without any test branch here). Waits between attempts go through
//! a [`Sleeper`], so tests assert them instead of waiting.

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};

use crate::adapters::retry::{Backoff, Sleeper, TokioSleeper, Waiter};
use crate::ports::Retryable;

/// PutRecords limits: records and bytes (data + partition keys) per request, bytes per record.
pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Attempts for entries PutRecords refused (throttled or failed inside Kinesis).
const PUT_ATTEMPTS: u32 = 8;
/// Waits before PutRecords sends refused entries again.
const PUT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
/// Waits before a failed read is tried again ([`Kinesis::read_backoff`]).
const READ_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// Waits between looks at a stream being created.
const CREATE_POLL: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));

/// A Kinesis call failed.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    #[error("Kinesis {operation} failed: {message}")]
    Sdk {
        operation: &'static str,
        retryable: bool,
        message: String,
    },
    #[error("Kinesis {operation}: {message}")]
    Invalid {
        operation: &'static str,
        message: String,
    },
    #[error(
        "Kinesis PutRecords: {failed} records still refused after {PUT_ATTEMPTS} attempts (last error {code})"
    )]
    PutIncomplete { failed: usize, code: String },
}

impl Retryable for KinesisError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Sdk { retryable, .. } => *retryable,
            Self::Invalid { .. } => false,
            Self::PutIncomplete { .. } => true,
        }
    }
}

fn sdk_error<E, R>(operation: &'static str, err: &SdkError<E, R>) -> KinesisError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let retryable = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => is_retryable_code(service.err().code()),
        _ => false,
    };
    KinesisError::Sdk {
        operation,
        retryable,
        message: DisplayErrorContext(err).to_string(),
    }
}

fn is_retryable_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ProvisionedThroughputExceededException"
                | "LimitExceededException"
                | "ThrottlingException"
                | "KMSThrottlingException"
                | "InternalFailure"
                | "InternalFailureException"
                | "ServiceUnavailable"
                | "ExpiredIteratorException"
        )
    )
}

/// One record to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub partition_key: String,
    pub data: Vec<u8>,
}

impl Entry {
    fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// What `put_records` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutReport {
    pub records: usize,
    pub requests: usize,
    /// Entries refused once and sent again.
    pub retried: usize,
}

/// One record read from a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRecord {
    pub sequence_number: String,
    pub data: Vec<u8>,
}

/// A GetRecords page.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<ShardRecord>,
    /// `None` once a closed shard is read to its end.
    pub next_iterator: Option<String>,
}

/// Split `entries` into PutRecords requests within the record and byte limits, in order.
pub fn chunks(entries: &[Entry]) -> Vec<&[Entry]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, entry) in entries.iter().enumerate() {
        let full = index - start == MAX_BATCH_RECORDS || bytes + entry.size() > MAX_BATCH_BYTES;
        if full && index > start {
            chunks.push(&entries[start..index]);
            start = index;
            bytes = 0;
        }
        bytes += entry.size();
    }
    if start < entries.len() {
        chunks.push(&entries[start..]);
    }
    chunks
}

/// The Kinesis client, built once, waiting on the sleeper `S`.
#[derive(Debug, Clone)]
pub struct Kinesis<S = TokioSleeper> {
    client: Client,
    waiter: Waiter<S>,
}

impl Kinesis {
    /// A client from the standard AWS environment (region, credentials, `AWS_ENDPOINT_URL`),
    /// waiting on tokio's timer.
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::with_sleeper(Client::new(&config), TokioSleeper::default())
    }
}

impl<S: Sleeper> Kinesis<S> {
    /// With a client built by the caller; every wait between attempts goes through `sleeper`.
    pub fn with_sleeper(client: Client, sleeper: S) -> Self {
        Self {
            client,
            waiter: Waiter::new(sleeper),
        }
    }

    /// The sleeper every wait goes through (tests read a manual one's waits).
    pub fn sleeper(&self) -> &S {
        self.waiter.sleeper()
    }

    /// Waits before retry `retry` (1 for the first) of a failed read such as GetRecords:
    /// 100 ms doubling up to 5 s, jittered to `[step / 2, step]`.
    pub async fn read_backoff(&self, retry: u32) {
        self.waiter
            .sleep(self.waiter.backoff(&READ_BACKOFF, retry))
            .await;
    }

    /// Put every entry, in PutRecords requests within the limits; entries Kinesis refuses
    /// (throttling, internal failures) are sent again with backoff.
    pub async fn put_records(
        &self,
        stream: &str,
        entries: &[Entry],
    ) -> Result<PutReport, KinesisError> {
        if let Some(big) = entries.iter().find(|e| e.size() > MAX_RECORD_BYTES) {
            return Err(KinesisError::Invalid {
                operation: "PutRecords",
                message: format!(
                    "a record of {} bytes (partition key {}) is over the 1 MiB limit",
                    big.size(),
                    big.partition_key
                ),
            });
        }
        let mut report = PutReport {
            records: entries.len(),
            ..PutReport::default()
        };
        for chunk in chunks(entries) {
            self.put_chunk(stream, chunk, &mut report).await?;
        }
        Ok(report)
    }

    async fn put_chunk(
        &self,
        stream: &str,
        chunk: &[Entry],
        report: &mut PutReport,
    ) -> Result<(), KinesisError> {
        put_with_retries(&self.waiter, chunk, report, async |pending: &[&Entry]| {
            self.put_once(stream, pending).await
        })
        .await
    }

    /// One PutRecords request: per entry, in order, `None` when stored or the error code
    /// Kinesis refused it with.
    async fn put_once(
        &self,
        stream: &str,
        entries: &[&Entry],
    ) -> Result<Vec<Option<String>>, KinesisError> {
        let request = entries
            .iter()
            .map(|e| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&e.partition_key)
                    .data(Blob::new(e.data.clone()))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| KinesisError::Invalid {
                operation: "PutRecords",
                message: err.to_string(),
            })?;
        let output = self
            .client
            .put_records()
            .stream_name(stream)
            .set_records(Some(request))
            .send()
            .await
            .map_err(|err| sdk_error("PutRecords", &err))?;
        Ok(output
            .records()
            .iter()
            .map(|result| result.error_code().map(str::to_owned))
            .collect())
    }

    /// Every shard id of the stream, open and closed, in the order Kinesis lists them.
    pub async fn shards(&self, stream: &str) -> Result<Vec<String>, KinesisError> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = match &token {
                Some(token) => self.client.list_shards().next_token(token),
                None => self.client.list_shards().stream_name(stream),
            };
            let output = request
                .send()
                .await
                .map_err(|err| sdk_error("ListShards", &err))?;
            shards.extend(output.shards().iter().map(|s| s.shard_id().to_owned()));
            match output.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => return Ok(shards),
            }
        }
    }

    /// An iterator just after `after` (a checkpoint), or at the oldest record kept.
    pub async fn shard_iterator(
        &self,
        stream: &str,
        shard: &str,
        after: Option<&str>,
    ) -> Result<Option<String>, KinesisError> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard);
        let request = match after {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let output = request
            .send()
            .await
            .map_err(|err| sdk_error("GetShardIterator", &err))?;
        Ok(output.shard_iterator().map(str::to_owned))
    }

    /// Read one page (at most `limit` records) from an iterator.
    pub async fn get_records(&self, iterator: &str, limit: i32) -> Result<Page, KinesisError> {
        let output = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(|err| sdk_error("GetRecords", &err))?;
        Ok(Page {
            records: output
                .records()
                .iter()
                .map(|r| ShardRecord {
                    sequence_number: r.sequence_number().to_owned(),
                    data: r.data().as_ref().to_vec(),
                })
                .collect(),
            next_iterator: output.next_shard_iterator().map(str::to_owned),
        })
    }

    /// Create a provisioned stream and wait until it is active (tests, local setups).
    pub async fn create_stream(&self, stream: &str, shards: i32) -> Result<(), KinesisError> {
        self.client
            .create_stream()
            .stream_name(stream)
            .shard_count(shards)
            .send()
            .await
            .map_err(|err| sdk_error("CreateStream", &err))?;
        for attempt in 0..40 {
            let output = self
                .client
                .describe_stream_summary()
                .stream_name(stream)
                .send()
                .await
                .map_err(|err| sdk_error("DescribeStreamSummary", &err))?;
            let active = output
                .stream_description_summary()
                .is_some_and(|s| *s.stream_status() == StreamStatus::Active);
            if active {
                return Ok(());
            }
            self.waiter
                .sleep(self.waiter.backoff(&CREATE_POLL, attempt + 1))
                .await;
        }
        Err(KinesisError::Invalid {
            operation: "CreateStream",
            message: format!("stream {stream} did not become active"),
        })
    }
}

/// Sends `chunk` with `send` (one PutRecords request) until every entry is stored: refused
/// entries, or all of them after a retryable failure, go again after a backoff on `waiter`,
/// within [`PUT_ATTEMPTS`] requests. A failure that is not retryable ends it at once.
async fn put_with_retries<S, F>(
    waiter: &Waiter<S>,
    chunk: &[Entry],
    report: &mut PutReport,
    mut send: F,
) -> Result<(), KinesisError>
where
    S: Sleeper,
    F: AsyncFnMut(&[&Entry]) -> Result<Vec<Option<String>>, KinesisError>,
{
    let mut pending: Vec<&Entry> = chunk.iter().collect();
    let mut last_code = String::new();
    for attempt in 0..PUT_ATTEMPTS {
        if attempt > 0 {
            waiter.sleep(waiter.backoff(&PUT_BACKOFF, attempt)).await;
        }
        report.requests += 1;
        let codes = match send(&pending).await {
            Ok(codes) => codes,
            Err(err) if err.is_retryable() => {
                tracing::warn!(attempt, error = %err, "PutRecords failed; retrying.");
                last_code = err.to_string();
                continue;
            }
            Err(err) => return Err(err),
        };
        let refused: Vec<&Entry> = pending
            .iter()
            .zip(codes)
            .filter_map(|(entry, code)| {
                last_code = code?;
                Some(*entry)
            })
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        report.retried += refused.len();
        tracing::warn!(attempt, refused = refused.len(), code = %last_code, "PutRecords refused entries; retrying them.");
        pending = refused;
    }
    Err(KinesisError::PutIncomplete {
        failed: pending.len(),
        code: last_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::retry::ManualSleeper;

    fn entry(bytes: usize) -> Entry {
        Entry {
            partition_key: "111111111111".to_owned(),
            data: vec![b'x'; bytes],
        }
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        let many: Vec<Entry> = (0..1201).map(|_| entry(10)).collect();
        let sizes: Vec<usize> = chunks(&many).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![500, 500, 201]);
        let big: Vec<Entry> = (0..12).map(|_| entry(1_000_000)).collect();
        let sizes: Vec<usize> = chunks(&big).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![5, 5, 2]);
        for chunk in chunks(&big) {
            assert!(chunk.iter().map(Entry::size).sum::<usize>() <= MAX_BATCH_BYTES);
        }
        assert!(chunks(&[]).is_empty());
    }

    /// What one scripted PutRecords request answers.
    enum Answer {
        /// Per entry sent: refused with this code, or stored.
        Codes(Vec<Option<&'static str>>),
        Fail {
            retryable: bool,
        },
    }

    /// Runs the retry path against `script` (its last answer repeats), on a manual sleeper:
    /// the outcome, the report, the partition keys of each request, and the waits.
    async fn put_scripted(
        chunk: &[Entry],
        script: Vec<Answer>,
    ) -> (
        Result<(), KinesisError>,
        PutReport,
        Vec<Vec<String>>,
        Vec<Duration>,
    ) {
        let waiter = Waiter::new(ManualSleeper::default());
        let mut report = PutReport::default();
        let mut sent = Vec::new();
        let result = put_with_retries(&waiter, chunk, &mut report, async |pending: &[&Entry]| {
            let answer = &script[sent.len().min(script.len() - 1)];
            sent.push(pending.iter().map(|e| e.partition_key.clone()).collect());
            match answer {
                Answer::Codes(codes) => Ok(codes.iter().map(|c| c.map(str::to_owned)).collect()),
                Answer::Fail { retryable } => Err(KinesisError::Sdk {
                    operation: "PutRecords",
                    retryable: *retryable,
                    message: "scripted".to_owned(),
                }),
            }
        })
        .await;
        (result, report, sent, waiter.sleeper().waits())
    }

    fn keyed(keys: &[&str]) -> Vec<Entry> {
        keys.iter()
            .map(|key| Entry {
                partition_key: (*key).to_owned(),
                data: b"{}".to_vec(),
            })
            .collect()
    }

    /// Each wait lies in `[step / 2, step]` of the doubling steps from 200 ms, capped at 5 s.
    fn assert_put_backoff(waits: &[Duration]) {
        for (retry, wait) in (1..).zip(waits) {
            let step = Duration::from_millis(200 << (retry - 1)).min(Duration::from_secs(5));
            assert!(
                *wait >= step / 2 && *wait <= step,
                "retry {retry}: {wait:?}, step {step:?}"
            );
        }
    }

    #[tokio::test]
    async fn refused_entries_alone_go_again_after_a_backoff() {
        const THROTTLED: Option<&str> = Some("ProvisionedThroughputExceededException");
        let chunk = keyed(&["a", "b", "c"]);
        let script = vec![
            Answer::Codes(vec![None, THROTTLED, THROTTLED]),
            Answer::Fail { retryable: true },
            Answer::Codes(vec![Some("InternalFailure"), None]),
            Answer::Codes(vec![None]),
        ];
        let (result, report, sent, waits) = put_scripted(&chunk, script).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            sent,
            [
                vec!["a", "b", "c"],
                vec!["b", "c"],
                vec!["b", "c"],
                vec!["b"]
            ]
        );
        assert_eq!((report.requests, report.retried), (4, 3));
        assert_eq!(waits.len(), 3, "{waits:?}");
        assert_put_backoff(&waits);
    }

    #[tokio::test]
    async fn entries_refused_every_time_give_up_after_the_attempts() {
        const KMS: Option<&str> = Some("KMSThrottlingException");
        let chunk = keyed(&["a", "b"]);
        let script = vec![Answer::Codes(vec![None, KMS]), Answer::Codes(vec![KMS])];
        let (result, report, sent, waits) = put_scripted(&chunk, script).await;
        let Err(KinesisError::PutIncomplete { failed, code }) = result else {
            panic!("not PutIncomplete: {result:?}");
        };
        assert_eq!((failed, code.as_str()), (1, "KMSThrottlingException"));
        assert_eq!((sent.len(), report.requests), (8, 8));
        // Waits before requests 2 to 8: steps 200, 400, 800, 1600, 3200, then 5000 twice.
        assert_eq!(waits.len(), 7, "{waits:?}");
        assert!(
            waits[5] >= Duration::from_millis(2500),
            "capped too low: {waits:?}"
        );
        assert_put_backoff(&waits);
    }

    #[tokio::test]
    async fn a_failure_that_cannot_pass_is_not_retried() {
        let script = vec![Answer::Fail { retryable: false }];
        let (result, report, _, waits) = put_scripted(&keyed(&["a"]), script).await;
        assert!(matches!(
            result,
            Err(KinesisError::Sdk {
                retryable: false,
                ..
            })
        ));
        assert_eq!(report.requests, 1);
        assert!(waits.is_empty(), "{waits:?}");
    }

    #[test]
    fn throttling_is_retryable_validation_is_not() {
        assert!(is_retryable_code(Some(
            "ProvisionedThroughputExceededException"
        )));
        assert!(!is_retryable_code(Some("ResourceNotFoundException")));
        assert!(!is_retryable_code(None));
    }
}
