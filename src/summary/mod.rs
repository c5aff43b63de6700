//! Summaries: the Summarizer port, the digest a model sees, and offline templates.

pub mod digest;
pub mod offline;
pub mod outcome;
pub mod prompt;

pub use digest::{Digest, digest};
pub use offline::{OfflineSummarizer, offline_summary};
// Summaries are written for a reader; tests and callers name the locale from here.
pub use crate::locale::{Lang, Locale};

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::severity::Severity;
use crate::window::Batch;

/// Who wrote the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum SummarySource {
    /// Deterministic templates.
    Offline,
    /// The offline templates, after the model failed (`reason` says how).
    Fallback { reason: String },
    /// A model, with what it cost.
    Model {
        model_id: String,
        prompt_version: String,
        /// Input tokens billed at the full rate (Converse `usage.inputTokens`: neither read
        /// from nor written to the prompt cache).
        input_tokens: u64,
        output_tokens: u64,
        /// Input tokens read from the prompt cache (`usage.cacheReadInputTokens`; billed at a
        /// reduced rate). 0 when the call set no cache point.
        #[serde(default)]
        cache_read_tokens: u64,
        /// Input tokens written to the prompt cache (`usage.cacheWriteInputTokens`; billed at
        /// a higher rate, once per cache lifetime).
        #[serde(default)]
        cache_write_tokens: u64,
        /// Wall time of the call that answered, retries and backoff included.
        latency_ms: u64,
        /// Calls made (1 when the first one answered).
        attempts: u32,
        /// Batches the answering call explained together (1: this batch alone). The call's
        /// tokens are shared among them: each batch records its share, and the shares add up
        /// to the call's usage.
        #[serde(default = "one_batch")]
        call_batches: u32,
    },
}

const fn one_batch() -> u32 {
    1
}

/// What a summarizer says about a batch. Never the event list: that comes from the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// One line: what happened, at a glance.
    pub headline: String,
    /// Two to five sentences: who, what, when, where, what was affected.
    pub body: String,
    /// Short per-group remarks.
    pub notes: Vec<String>,
    /// Suggested severity; the final colour is `max(rule severity, this)`.
    pub severity: Severity,
    pub severity_reason: String,
    pub source: SummarySource,
}

/// Port: turns a batch into reader-facing text.
pub trait Summarizer {
    type Error: std::error::Error + Send + Sync + 'static;

    fn summarize(
        &self,
        batch: &Batch,
        locale: Locale,
    ) -> impl Future<Output = Result<Summary, Self::Error>> + Send;

    /// Summaries of `batches`, all bound for the same destinations, in the order given: one
    /// result per batch. A summarizer that can explain several batches in one request (one
    /// model call per flush and route) does so; by default each batch is summarised alone.
    fn summarize_many(
        &self,
        batches: &[&Batch],
        locale: Locale,
    ) -> impl Future<Output = Vec<Result<Summary, Self::Error>>> + Send
    where
        Self: Sync,
    {
        async move {
            let mut out = Vec::with_capacity(batches.len());
            for batch in batches {
                out.push(self.summarize(batch, locale).await);
            }
            out
        }
    }
}
