//! Kinesis Data Streams through aws-sdk-kinesis: every SDK call trailwatch makes to Kinesis.
//! The endpoint and credentials come from the standard AWS environment (`AWS_ENDPOINT_URL`
//! reaches a local emulator without any test branch here).

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};

use crate::ports::Retryable;

/// PutRecords limits: records and bytes (data + partition keys) per request, bytes per record.
pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Attempts for entries PutRecords refused (throttled or failed inside Kinesis).
const PUT_ATTEMPTS: u32 = 8;

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

/// Exponential backoff: 100 ms doubling, at most 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100_u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}

/// The Kinesis client, built once.
#[derive(Debug, Clone)]
pub struct Kinesis {
    client: Client,
}

impl Kinesis {
    /// A client from the standard AWS environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self {
            client: Client::new(&config),
        }
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
        let mut pending: Vec<&Entry> = chunk.iter().collect();
        let mut last_code = String::new();
        for attempt in 0..PUT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            report.requests += 1;
            let request = pending
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
            let output = match self
                .client
                .put_records()
                .stream_name(stream)
                .set_records(Some(request))
                .send()
                .await
            {
                Ok(output) => output,
                Err(err) => {
                    let err = sdk_error("PutRecords", &err);
                    if !err.is_retryable() {
                        return Err(err);
                    }
                    tracing::warn!(attempt, error = %err, "PutRecords failed; retrying.");
                    last_code = err.to_string();
                    continue;
                }
            };
            let refused: Vec<&Entry> = pending
                .iter()
                .zip(output.records())
                .filter_map(|(entry, result)| {
                    let code = result.error_code()?;
                    code.clone_into(&mut last_code);
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
            tokio::time::sleep(backoff(attempt.min(3))).await;
        }
        Err(KinesisError::Invalid {
            operation: "CreateStream",
            message: format!("stream {stream} did not become active"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(30), Duration::from_secs(5));
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
