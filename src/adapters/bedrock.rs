//! Claude on Bedrock (Converse): the [`Summarizer`] that asks a model. The only module with
//! Bedrock SDK calls.
//!
//! The batches of one flush bound for the same channels share a request
//! ([`prompt::build_many`]) of at most `max_batches_per_call` batches and as many expected
//! answers as fit `max_tokens`; one forced tool call answers with one entry per batch. A batch
//! the answer leaves out or answers invalidly falls back alone; the others keep theirs.
//! Throttling, unavailability, model timeouts, 5xx and slow answers are retried with backoff
//! and jitter ([`Backoff`]), within `max_attempts` calls and a hard deadline per request, both
//! waited and measured on a [`Sleeper`] (a manual one in tests); an answer that does
//! not pass validation is tried once more; a refused request (validation, access, unknown
//! model) is not retried and is logged as such. Whatever fails, the summarizer returns an
//! error and the engine falls back to the offline summary, marked in the footer and the audit.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata as _, SdkError};
use aws_sdk_bedrockruntime::operation::converse::ConverseError;
use aws_sdk_bedrockruntime::types::{
    CachePointBlock, CachePointType, ContentBlock, ConversationRole, ConverseOutput,
    InferenceConfiguration, Message, SpecificToolChoice, SystemContentBlock, Tool, ToolChoice,
    ToolConfiguration, ToolInputSchema, ToolSpecification,
};
use aws_smithy_types::{Document, Number};
use serde_json::Value;

use crate::adapters::retry::{Backoff, Sleeper, TokioSleeper, Waiter};
use crate::config::SummaryConfig;
use crate::summary::prompt::{self, AnswerError, ModelAnswer, Prompt};
use crate::summary::{Locale, Summarizer, Summary, SummarySource};
use crate::window::Batch;

/// An answer that fails validation is retried this many times (the rest are transient errors).
const INVALID_ANSWER_RETRIES: u32 = 1;
/// Bedrock's messages are cut to this many chars in errors and logs.
const MESSAGE_MAX: usize = 300;

/// How the adapter calls the model.
#[derive(Debug, Clone, PartialEq)]
pub struct BedrockConfig {
    pub model_id: String,
    /// Hard deadline for one request (one or more batches): calls, retries and backoff.
    pub deadline: Duration,
    /// Most calls for one request.
    pub max_attempts: u32,
    /// Most batches explained by one call.
    pub max_batches_per_call: usize,
    /// Longest one call may take (cut short by the deadline).
    pub attempt_timeout: Duration,
    /// Waits between calls.
    pub backoff: Backoff,
    /// Bytes of digest in the prompt.
    pub input_budget: usize,
    /// Output tokens of one call (Converse `maxTokens`); also how many batches a call holds:
    /// as many as their expected answers fit
    /// ([`answer_tokens`](crate::locale::Words::answer_tokens)).
    pub max_tokens: i32,
    pub temperature: f32,
    /// Put a Converse `cachePoint` after the system prompt: the model caches prompts and the
    /// fixed part (tool schema and system prompt) reaches its minimum ([`cache_minimum_tokens`]).
    pub cache_point: bool,
}

/// The fewest tokens a cache checkpoint's prefix must hold for `model_id` (a model id, an
/// inference profile id such as `global.anthropic.claude-sonnet-4-5-…`, or its ARN) to cache
/// it, or `None` for a model without prompt caching on Bedrock (a cache point would be
/// refused).
///
/// Source: Amazon Bedrock User Guide, "Prompt caching for faster model inference", supported
/// models and their minimum tokens per cache checkpoint (Claude 3.7 Sonnet, Sonnet 4 and
/// later, Opus 4 and 4.1: 1,024; Claude 3.5 Haiku: 2,048; Claude Haiku 4.5 and Opus 4.5: 4,096;
/// Amazon Nova Micro, Lite, Pro and Premier: 1,000, system and messages only).
pub fn cache_minimum_tokens(model_id: &str) -> Option<usize> {
    const TABLE: [(&str, usize); 10] = [
        ("anthropic.claude-3-7-sonnet", 1_024),
        ("anthropic.claude-3-5-haiku", 2_048),
        ("anthropic.claude-haiku-4-5", 4_096),
        ("anthropic.claude-opus-4-5", 4_096),
        ("anthropic.claude-sonnet-4", 1_024),
        ("anthropic.claude-opus-4", 1_024),
        ("amazon.nova-micro", 1_000),
        ("amazon.nova-lite", 1_000),
        ("amazon.nova-pro", 1_000),
        ("amazon.nova-premier", 1_000),
    ];
    TABLE
        .iter()
        .find(|(family, _)| model_id.contains(family))
        .map(|(_, min)| *min)
}

impl BedrockConfig {
    pub fn from_settings(settings: &SummaryConfig) -> Self {
        Self {
            model_id: settings.model_id.clone(),
            deadline: settings.deadline,
            max_attempts: settings.max_attempts.max(1),
            max_batches_per_call: settings.max_batches_per_call.max(1),
            attempt_timeout: Duration::from_secs(30).min(settings.deadline),
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(8)),
            input_budget: settings.input_budget,
            max_tokens: i32::try_from(settings.max_output_tokens).unwrap_or(i32::MAX),
            temperature: 0.0,
            cache_point: cache_minimum_tokens(&settings.model_id)
                .is_some_and(|min| prompt::fixed_tokens() >= min),
        }
    }
}

/// Why one call did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Worth another try: throttling, unavailable, model timeout or not ready, 5xx, I/O.
    #[error("{0}")]
    Transient(String),
    /// The call took longer than its time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The model answered, but not with a valid tool call.
    #[error("invalid answer: {0}")]
    Invalid(String),
    /// Bedrock refused the request (validation, access, unknown model): retrying cannot help.
    #[error("request refused ({code}): {message}")]
    Refused { code: String, message: String },
}

impl CallError {
    fn retry_allowed(&self, invalid_seen: u32) -> bool {
        match self {
            Self::Transient(_) | Self::Timeout(_) => true,
            Self::Invalid(_) => invalid_seen <= INVALID_ANSWER_RETRIES,
            Self::Refused { .. } => false,
        }
    }
}

/// The summary could not be had from the model; the engine uses the offline one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bedrock {model_id}: {cause} ({attempts} attempts, {elapsed_ms} ms{deadline})", deadline = if *.deadline_hit { ", deadline reached" } else { "" })]
pub struct BedrockError {
    pub model_id: String,
    pub attempts: u32,
    pub elapsed_ms: u64,
    pub deadline_hit: bool,
    #[source]
    pub cause: CallError,
}

impl crate::ports::Retryable for BedrockError {
    fn is_retryable(&self) -> bool {
        !matches!(self.cause, CallError::Refused { .. })
    }
}

/// A valid answer (per batch of the request, its entry or why it has none) and what the call
/// cost.
struct Answered {
    answers: Vec<Result<ModelAnswer, AnswerError>>,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
}

/// The Bedrock summarizer. Its backoff, deadline and latency run on the sleeper `S`'s time.
#[derive(Debug, Clone)]
pub struct BedrockSummarizer<S = TokioSleeper> {
    client: Client,
    config: BedrockConfig,
    waiter: Waiter<S>,
    /// Refusals already logged (code, message): each is logged once, not once per batch.
    refusals: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<(String, String)>>>,
}

impl BedrockSummarizer {
    /// With a client built by the caller (tests point it at a fake endpoint), waiting on
    /// tokio's timer.
    pub fn new(client: Client, config: BedrockConfig) -> Self {
        Self::with_sleeper(client, config, TokioSleeper::default())
    }

    /// A client from the usual AWS chain (environment, profile, container or instance role;
    /// `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` honoured), with the SDK's own retries off: this
    /// adapter retries within the batch deadline.
    pub async fn from_environment(config: BedrockConfig) -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let client_config = aws_sdk_bedrockruntime::config::Builder::from(&shared)
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .build();
        Self::new(Client::from_conf(client_config), config)
    }
}

impl<S: Sleeper> BedrockSummarizer<S> {
    /// With a client built by the caller, every wait and every reading of time on `sleeper`.
    /// A call's own time limit stays on tokio's timer, so with a
    /// [`ManualSleeper`](crate::adapters::retry::ManualSleeper) only the waits count towards
    /// the deadline.
    pub fn with_sleeper(client: Client, config: BedrockConfig, sleeper: S) -> Self {
        Self {
            client,
            config,
            waiter: Waiter::new(sleeper),
            refusals: std::sync::Arc::default(),
        }
    }

    /// The sleeper every wait goes through (tests read a manual one's waits).
    pub fn sleeper(&self) -> &S {
        self.waiter.sleeper()
    }

    pub fn config(&self) -> &BedrockConfig {
        &self.config
    }

    /// How many batches one call holds in `locale`: at most `max_batches_per_call`, and as
    /// many expected answers as fit the call's output tokens; at least one.
    pub fn batches_per_call(&self, locale: Locale) -> usize {
        prompt::batches_per_call(
            self.config.max_batches_per_call,
            u32::try_from(self.config.max_tokens).unwrap_or(0),
            locale,
        )
    }

    /// Summaries of `batches` (bound for the same destinations), one request per
    /// [`batches_per_call`](Self::batches_per_call) of them.
    async fn summarize_all(
        &self,
        batches: &[&Batch],
        locale: Locale,
    ) -> Vec<Result<Summary, BedrockError>> {
        let mut out = Vec::with_capacity(batches.len());
        for part in batches.chunks(self.batches_per_call(locale)) {
            out.extend(self.explain(part, locale).await);
        }
        out
    }

    /// One request for `batches`: its calls, retries and backoff within the deadline. A batch
    /// the answer leaves out, or answers invalidly, gets an error (its offline summary); the
    /// others keep their answers.
    async fn explain(
        &self,
        batches: &[&Batch],
        locale: Locale,
    ) -> Vec<Result<Summary, BedrockError>> {
        let prompt = prompt::build_many(batches, locale, self.config.input_budget);
        let started = self.waiter.elapsed();
        let deadline = started + self.config.deadline;
        let mut attempts = 0;
        let mut invalid_seen = 0;
        loop {
            attempts += 1;
            let left = deadline.saturating_sub(self.waiter.elapsed());
            let limit = left.min(self.config.attempt_timeout);
            let result = tokio::time::timeout(limit, self.call(&prompt))
                .await
                .unwrap_or(Err(CallError::Timeout(limit)));
            let fail = |deadline_hit: bool, cause: CallError| BedrockError {
                model_id: self.config.model_id.clone(),
                attempts,
                elapsed_ms: millis(self.waiter.elapsed().saturating_sub(started)),
                deadline_hit,
                cause,
            };
            let cause = match result {
                Ok(answered) => return self.summaries(answered, attempts, started, &fail),
                Err(cause) => cause,
            };
            invalid_seen += u32::from(matches!(cause, CallError::Invalid(_)));
            let all = |error: BedrockError| vec![Err(error); batches.len()];
            if let CallError::Refused { code, message } = &cause {
                // Said once per cause: every later batch meets the same refusal.
                if self.first_time(code, message) {
                    tracing::error!(model = %self.config.model_id, code = %code, message = %message, "Bedrock refused the request; not retried, using offline summaries. Check credentials, the model id, the region and model access.");
                } else {
                    tracing::debug!(model = %self.config.model_id, code = %code, "Bedrock refused the request again.");
                }
                return all(fail(false, cause));
            }
            if !cause.retry_allowed(invalid_seen) || attempts >= self.config.max_attempts {
                if self.first_time("gave no usable answer", &cause.to_string()) {
                    tracing::warn!(model = %self.config.model_id, error = %cause, attempts, "Bedrock gave no usable answer; using the offline summary (said once per cause).");
                }
                return all(fail(false, cause));
            }
            let delay = self.waiter.backoff(&self.config.backoff, attempts);
            if self.waiter.elapsed() + delay >= deadline {
                tracing::warn!(model = %self.config.model_id, error = %cause, attempts, "Bedrock deadline reached; using the offline summary.");
                return all(fail(true, cause));
            }
            tracing::info!(model = %self.config.model_id, error = %cause, attempt = attempts, delay_ms = millis(delay), "Bedrock call failed; retrying.");
            self.waiter.sleep(delay).await;
        }
    }

    /// Each batch's summary from an answered call, the call's usage shared among them.
    fn summaries(
        &self,
        answered: Answered,
        attempts: u32,
        started: Duration,
        fail: &dyn Fn(bool, CallError) -> BedrockError,
    ) -> Vec<Result<Summary, BedrockError>> {
        let n = answered.answers.len();
        let call_batches = u32::try_from(n).unwrap_or(u32::MAX);
        let latency_ms = millis(self.waiter.elapsed().saturating_sub(started));
        let missing = answered.answers.iter().filter(|a| a.is_err()).count();
        if missing > 0 {
            tracing::warn!(model = %self.config.model_id, missing, batches = n, "Bedrock's answer left out or spoiled some batches; they use the offline summary.");
        }
        answered
            .answers
            .into_iter()
            .enumerate()
            .map(|(index, answer)| match answer {
                Ok(answer) => Ok(answer.into_summary(SummarySource::Model {
                    model_id: self.config.model_id.clone(),
                    prompt_version: prompt::prompt_version().to_owned(),
                    input_tokens: share(answered.input_tokens, index, n),
                    output_tokens: share(answered.output_tokens, index, n),
                    cache_read_tokens: share(answered.cache_read_tokens, index, n),
                    cache_write_tokens: share(answered.cache_write_tokens, index, n),
                    latency_ms,
                    attempts,
                    call_batches,
                })),
                Err(err) => Err(fail(false, CallError::Invalid(err.to_string()))),
            })
            .collect()
    }

    /// True the first time this refusal is met (of the last 64 kinds: the set is emptied when
    /// full, so a long-lived function cannot grow it without end).
    fn first_time(&self, code: &str, message: &str) -> bool {
        let mut seen = self
            .refusals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= 64 {
            seen.clear();
        }
        seen.insert((code.to_owned(), message.to_owned()))
    }

    /// One Converse call that must answer through the tool.
    async fn call(&self, prompt: &Prompt) -> Result<Answered, CallError> {
        let request = self.request(prompt).map_err(|message| CallError::Refused {
            code: "request".to_owned(),
            message,
        })?;
        let (system, message, tools, inference) = request;
        let mut call = self
            .client
            .converse()
            .model_id(&self.config.model_id)
            .system(system);
        if self.config.cache_point {
            // After the system prompt: the prefix cached is the tool schema and the system
            // prompt (Bedrock caches in the order tools, system, messages).
            call = call.system(SystemContentBlock::CachePoint(
                CachePointBlock::builder()
                    .r#type(CachePointType::Default)
                    .build()
                    .map_err(|err| CallError::Refused {
                        code: "request".to_owned(),
                        message: err.to_string(),
                    })?,
            ));
        }
        let response = call
            .messages(message)
            .tool_config(tools)
            .inference_config(inference)
            .send()
            .await
            .map_err(classify)?;
        let count = |n: Option<i32>| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        let (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens) =
            response.usage().map_or((0, 0, 0, 0), |u| {
                (
                    count(Some(u.input_tokens())),
                    count(Some(u.output_tokens())),
                    count(u.cache_read_input_tokens()),
                    count(u.cache_write_input_tokens()),
                )
            });
        let Some(ConverseOutput::Message(message)) = response.output() else {
            return Err(CallError::Invalid("no message in the response".to_owned()));
        };
        let input = message.content().iter().find_map(|block| match block {
            ContentBlock::ToolUse(tool) if tool.name() == prompt::TOOL_NAME => Some(tool.input()),
            _ => None,
        });
        let Some(input) = input else {
            return Err(CallError::Invalid(format!(
                "no {} tool call (stop reason {})",
                prompt::TOOL_NAME,
                response.stop_reason().as_str()
            )));
        };
        let answers = prompt::answers_from_value(document_to_value(input), &prompt.ids)
            .map_err(|err| CallError::Invalid(err.to_string()))?;
        Ok(Answered {
            answers,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
        })
    }

    #[allow(
        clippy::type_complexity,
        reason = "the four parts of one request, taken apart at the one call site"
    )]
    fn request(
        &self,
        prompt: &Prompt,
    ) -> Result<
        (
            SystemContentBlock,
            Message,
            ToolConfiguration,
            InferenceConfiguration,
        ),
        String,
    > {
        let schema: Value =
            serde_json::from_str(prompt::ANSWER_SCHEMA).map_err(|err| err.to_string())?;
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(prompt.user.clone()))
            .build()
            .map_err(|err| err.to_string())?;
        let spec = ToolSpecification::builder()
            .name(prompt::TOOL_NAME)
            .description(prompt::TOOL_DESCRIPTION)
            .input_schema(ToolInputSchema::Json(value_to_document(&schema)))
            .build()
            .map_err(|err| err.to_string())?;
        let choice = SpecificToolChoice::builder()
            .name(prompt::TOOL_NAME)
            .build()
            .map_err(|err| err.to_string())?;
        let tools = ToolConfiguration::builder()
            .tools(Tool::ToolSpec(spec))
            .tool_choice(ToolChoice::Tool(choice))
            .build()
            .map_err(|err| err.to_string())?;
        let inference = InferenceConfiguration::builder()
            .max_tokens(self.config.max_tokens)
            .temperature(self.config.temperature)
            .build();
        Ok((
            SystemContentBlock::Text(prompt.system.to_owned()),
            message,
            tools,
            inference,
        ))
    }
}

impl<S: Sleeper> Summarizer for BedrockSummarizer<S> {
    type Error = BedrockError;

    async fn summarize(&self, batch: &Batch, locale: Locale) -> Result<Summary, Self::Error> {
        self.explain(&[batch], locale)
            .await
            .pop()
            .unwrap_or_else(|| unreachable!("one result per batch"))
    }

    fn summarize_many(
        &self,
        batches: &[&Batch],
        locale: Locale,
    ) -> impl Future<Output = Vec<Result<Summary, Self::Error>>> + Send
    where
        Self: Sync,
    {
        self.summarize_all(batches, locale)
    }
}

/// Batch `index`'s share of `total` split over `n` batches: even, the remainder to the first
/// ones, so the shares add up to `total`.
fn share(total: u64, index: usize, n: usize) -> u64 {
    let n = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
    let index = u64::try_from(index).unwrap_or(u64::MAX);
    total / n + u64::from(index < total % n)
}

/// Sorts an SDK error into retry or not.
fn classify(err: SdkError<ConverseError, HttpResponse>) -> CallError {
    let cause = innermost(&err);
    match err {
        SdkError::TimeoutError(_) => CallError::Transient("the HTTP call timed out".to_owned()),
        SdkError::DispatchFailure(_) => {
            if cause.to_ascii_lowercase().contains("credentials") {
                // Not retried: the next call has no more credentials than this one.
                CallError::Refused {
                    code: "credentials".to_owned(),
                    message: format!("no AWS credentials: {cause}"),
                }
            } else {
                CallError::Transient(format!("the request could not be sent: {cause}"))
            }
        }
        SdkError::ResponseError(_) => {
            CallError::Transient("the response could not be read".to_owned())
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let err = service.into_err();
            let code = err.code().unwrap_or("unknown").to_owned();
            let message = cut(err.message().unwrap_or(""));
            match err {
                ConverseError::ThrottlingException(_)
                | ConverseError::ServiceUnavailableException(_)
                | ConverseError::ModelTimeoutException(_)
                | ConverseError::ModelNotReadyException(_)
                | ConverseError::InternalServerException(_)
                | ConverseError::ModelErrorException(_) => {
                    CallError::Transient(format!("{code}: {message}"))
                }
                ConverseError::ValidationException(_)
                | ConverseError::AccessDeniedException(_)
                | ConverseError::ResourceNotFoundException(_) => {
                    CallError::Refused { code, message }
                }
                // An error this SDK version does not model (e.g. ServiceQuotaExceeded): a 5xx
                // or a throttling code is transient; a 2xx the SDK could not parse is a broken
                // answer; anything else is a refusal.
                _ if status >= 500 || code.contains("Throttl") || code.contains("Unavailable") => {
                    CallError::Transient(format!("{code} (HTTP {status}): {message}"))
                }
                _ if (200..300).contains(&status) => {
                    CallError::Invalid(format!("unreadable response body (HTTP {status})"))
                }
                _ => CallError::Refused { code, message },
            }
        }
        other => CallError::Refused {
            code: "client".to_owned(),
            message: cut(&other.to_string()),
        },
    }
}

/// The last error of `err`'s source chain, said once and on one line: SDK errors repeat their
/// outer message in each layer ("dispatch failure: dispatch failure: …"), so only the innermost
/// is kept, and of it the first line (the credential chain then lists every provider it tried,
/// one a line, after "Attempted:").
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    let text = last.to_string();
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let first = first.strip_suffix("Attempted:").unwrap_or(first).trim_end();
    cut(first)
}

fn cut(text: &str) -> String {
    crate::render::truncate_chars(text, MESSAGE_MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// JSON to a Smithy document (the tool's input schema).
pub fn value_to_document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(items) => Document::Array(items.iter().map(value_to_document).collect()),
        Value::Object(map) => Document::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), value_to_document(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// A Smithy document (the tool call's input) to JSON. A non-finite float becomes null.
pub fn document_to_value(document: &Document) -> Value {
    match document {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Document::String(s) => Value::String(s.clone()),
        Document::Array(items) => Value::Array(items.iter().map(document_to_value).collect()),
        Document::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), document_to_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn documents_and_json_round_trip() {
        let value = json!({
            "s": "계정 <!channel>",
            "n": [0, 1, -1, u64::MAX, i64::MIN, 1.5, -2.25],
            "b": [true, false],
            "z": null,
            "o": {"nested": {"deep": []}},
        });
        let document = value_to_document(&value);
        assert_eq!(document_to_value(&document), value);
        let Document::Object(map) = &document else {
            panic!("not an object: {document:?}");
        };
        assert_eq!(map["s"], Document::String("계정 <!channel>".to_owned()));
        let Document::Array(numbers) = &map["n"] else {
            panic!("not an array");
        };
        assert_eq!(numbers[1], Document::Number(Number::PosInt(1)));
        assert_eq!(numbers[2], Document::Number(Number::NegInt(-1)));
        assert_eq!(numbers[5], Document::Number(Number::Float(1.5)));
    }

    #[test]
    fn non_finite_floats_become_null() {
        assert_eq!(
            document_to_value(&Document::Number(Number::Float(f64::NAN))),
            Value::Null
        );
    }

    #[test]
    fn the_schema_converts() {
        let schema: Value = serde_json::from_str(prompt::ANSWER_SCHEMA).unwrap();
        assert_eq!(document_to_value(&value_to_document(&schema)), schema);
    }

    #[test]
    fn only_refusals_are_final() {
        assert!(CallError::Transient("x".into()).retry_allowed(0));
        assert!(CallError::Timeout(Duration::from_secs(1)).retry_allowed(0));
        assert!(CallError::Invalid("x".into()).retry_allowed(1));
        assert!(!CallError::Invalid("x".into()).retry_allowed(2));
        let refused = CallError::Refused {
            code: "AccessDeniedException".into(),
            message: String::new(),
        };
        assert!(!refused.retry_allowed(0));
    }
}
