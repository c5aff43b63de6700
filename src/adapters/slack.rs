//! Slack delivery: the [`Notifier`] that renders each delivery as Block Kit and posts it. The
//! only place that calls Slack.
//!
//! Two transports:
//! - **Bot token**: `chat.postMessage` into the routed channels; part 0 of a batch is the parent,
//!   continuations are thread replies (`thread_ts` of part 0); every message carries the batch id
//!   in its metadata. Before posting, the channel's recent history (with metadata) is searched
//!   for the batch id, and the thread for parts already there: a batch posted just before a crash
//!   is not posted twice.
//! - **Incoming webhook**: one fixed channel, no threads, no history: at least once.
//!
//! Every call is paced (about one message per second per channel) and retried when that can
//! help: HTTP 429 after its `Retry-After`, 5xx, Slack's transient error codes, timeouts and
//! connection failures after an exponential backoff with jitter, all bounded. Errors such as
//! `invalid_auth` or `channel_not_found` fail at once and say so. All waiting goes through a
//! [`Sleeper`], so tests assert the waits instead of measuring wall time. The token and the
//! webhook URL never appear in an error or a log line: reqwest's errors (which carry URLs) are
//! reduced to their kind.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};

use crate::adapters::retry::{Backoff, Pacer, Sleeper, Waiter};
use crate::config::SlackRoutes;
use crate::delivery::Posted;
use crate::event::AccountId;
use crate::incident::Parent;
use crate::ports::{Delivery, Notifier, Receipt, Retryable};
use crate::render::slack::{Attachment, EVENT_TYPE, Metadata, SlackMessage, render_batch};
use crate::secret::Secret;

/// Slack's Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api/";
/// History pages searched for a batch id before giving up and posting.
const HISTORY_PAGES: usize = 5;
/// Seconds before a batch's window start from which its messages are looked for.
const HISTORY_MARGIN_SECS: i64 = 3600;
/// Messages per history page.
const HISTORY_LIMIT: usize = 200;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// Waits between attempts when Slack named none (no `Retry-After`).
    pub backoff: Backoff,
    /// A `Retry-After` longer than this is not waited out: the call fails (retryable).
    pub max_retry_after: Duration,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Least time between two posts to the same channel.
    pub pace: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            max_retry_after: Duration::from_mins(2),
            timeout: Duration::from_secs(10),
            pace: Duration::from_secs(1),
        }
    }
}

/// What Slack is reached with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A bot token (`xoxb-...`) for the Web API.
    Token(Secret),
    /// An incoming-webhook URL.
    Webhook(Secret),
}

impl Credential {
    /// A secret as stored in Secrets Manager: a bare token or webhook URL, or a JSON object
    /// with `token` or `webhook_url`.
    pub fn from_secret(secret: &Secret) -> Result<Self, SlackError> {
        #[derive(Deserialize)]
        struct Stored {
            token: Option<String>,
            webhook_url: Option<String>,
        }
        let text = secret.expose().trim();
        if text.starts_with('{') {
            let stored: Stored =
                serde_json::from_str(text).map_err(|_| SlackError::BadCredential)?;
            return match (stored.token, stored.webhook_url) {
                (Some(token), None) => Self::from_text(&token),
                (None, Some(url)) => Self::from_text(&url),
                _ => Err(SlackError::BadCredential),
            };
        }
        Self::from_text(text)
    }

    fn from_text(text: &str) -> Result<Self, SlackError> {
        let text = text.trim();
        if text.starts_with("https://") || text.starts_with("http://") {
            if !crate::config::is_safe_url(text) {
                return Err(SlackError::InsecureWebhook);
            }
            Ok(Self::Webhook(Secret::new(text)))
        } else if text.starts_with("xox") && !text.contains(char::is_whitespace) {
            Ok(Self::Token(Secret::new(text)))
        } else {
            Err(SlackError::BadCredential)
        }
    }
}

/// A Slack delivery failure. Never carries the token or a URL.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error(
        "no Slack channel for account {account}: set [slack] default_channel or a channel for the account"
    )]
    NoRoute { account: AccountId },
    #[error("Slack {method} in {channel} refused: {code}{}", hint(code))]
    Api {
        method: &'static str,
        channel: String,
        code: String,
        retryable: bool,
    },
    #[error("Slack {method} answered HTTP {status}")]
    Status {
        method: &'static str,
        status: u16,
        retryable: bool,
    },
    #[error("Slack {method} asked to wait {wait:?}, longer than the {max:?} allowed")]
    RateLimited {
        method: &'static str,
        wait: Duration,
        max: Duration,
    },
    #[error("Slack {method} failed: {kind}")]
    Transport {
        method: &'static str,
        kind: &'static str,
    },
    #[error("Slack {method} answered with a body that is not the expected JSON")]
    Body { method: &'static str },
    #[error("Slack {method} still failing after {attempts} attempts")]
    GaveUp {
        method: &'static str,
        attempts: u32,
        #[source]
        last: Box<SlackError>,
    },
    #[error(
        "the Slack secret is neither a bot token (xoxb-...) nor a webhook URL (nor JSON with token or webhook_url)"
    )]
    BadCredential,
    #[error(
        "the Slack webhook URL must use https:// (http:// only for a test server on this host)"
    )]
    InsecureWebhook,
    #[error("cannot build the HTTP client: {0}")]
    Client(&'static str),
}

/// A reader's hint for the error codes people meet when setting Slack up.
fn hint(code: &str) -> &'static str {
    match code {
        "invalid_auth" | "not_authed" | "token_revoked" | "account_inactive" | "token_expired" => {
            " (the token is wrong or revoked)"
        }
        "channel_not_found" => " (no such channel, or the app cannot see it)",
        "not_in_channel" => " (invite the app to the channel)",
        "missing_scope" => " (the app needs chat:write to post)",
        "is_archived" => " (the channel is archived)",
        _ => "",
    }
}

impl SlackError {
    /// Slack refused the credential itself (`invalid_auth`, `not_authed`, `token_revoked`,
    /// `token_expired`, `account_inactive`; an incoming webhook answers HTTP 403 or 404 once
    /// revoked): reading the secret again may help.
    pub fn is_auth(&self) -> bool {
        match self {
            Self::Api { code, .. } => matches!(
                code.as_str(),
                "invalid_auth"
                    | "not_authed"
                    | "token_revoked"
                    | "account_inactive"
                    | "token_expired"
            ),
            Self::Status { status, .. } => matches!(status, 401 | 403 | 404),
            Self::GaveUp { last, .. } => last.is_auth(),
            _ => false,
        }
    }
}

impl Retryable for SlackError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Api { retryable, .. } | Self::Status { retryable, .. } => *retryable,
            Self::RateLimited { .. } | Self::Transport { .. } | Self::GaveUp { .. } => true,
            Self::NoRoute { .. }
            | Self::Body { .. }
            | Self::BadCredential
            | Self::InsecureWebhook
            | Self::Client(_) => false,
        }
    }
}

impl SlackError {
    /// After this failure Slack may still have taken the message (the answer was lost).
    fn may_have_landed(&self) -> bool {
        match self {
            Self::Transport { kind, .. } => *kind != "cannot connect",
            Self::Status { status, .. } => *status >= 500,
            Self::Api { code, .. } => code != "ratelimited" && code != "rate_limited",
            _ => false,
        }
    }
}

/// Slack error codes worth another try.
fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "ratelimited"
            | "rate_limited"
            | "internal_error"
            | "fatal_error"
            | "service_unavailable"
            | "request_timeout"
            | "team_added_to_org"
    )
}

/// An error code from Slack, reduced to what such codes look like (they go into logs).
fn clean_code(code: &str) -> String {
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(60)
        .collect();
    if code.is_empty() {
        "unknown_error".to_owned()
    } else {
        code
    }
}

/// What one attempt came to.
enum Attempt<T> {
    Done(T),
    /// Try again, after `wait` (Slack's `Retry-After`) or a backoff.
    Again {
        wait: Option<Duration>,
        error: SlackError,
    },
    Fail(SlackError),
}

/// The Slack notifier: transport, routing, pacing and retries.
pub struct SlackNotifier<S> {
    http: reqwest::Client,
    credential: Credential,
    api_url: String,
    routes: SlackRoutes,
    policy: RetryPolicy,
    waiter: Waiter<S>,
    /// Posts per channel.
    pacer: Pacer,
    retries: AtomicU64,
    /// Set once the app was found to lack the history scopes (warned once).
    blind: AtomicBool,
    /// This deployment's id, in every message's metadata: a retry finds only its own posts.
    deployment: Option<String>,
}

impl<S> std::fmt::Debug for SlackNotifier<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("credential", &self.credential)
            .field("api_url", &self.api_url)
            .field("routes", &self.routes)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: Sleeper> SlackNotifier<S> {
    /// `api_url` is the Web API base (`None`: Slack's); `routes` is unused with a webhook.
    pub fn new(
        credential: Credential,
        api_url: Option<&str>,
        routes: SlackRoutes,
        policy: RetryPolicy,
        sleeper: S,
    ) -> Result<Self, SlackError> {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("trailwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| SlackError::Client("TLS or resolver setup failed"))?;
        let mut api_url = api_url.unwrap_or(DEFAULT_API_URL).to_owned();
        if !api_url.ends_with('/') {
            api_url.push('/');
        }
        Ok(Self {
            http,
            credential,
            api_url,
            routes,
            policy,
            waiter: Waiter::new(sleeper),
            pacer: Pacer::new(policy.pace),
            retries: AtomicU64::new(0),
            blind: AtomicBool::new(false),
            deployment: None,
        })
    }

    /// Stamp every message with `deployment` (see [`crate::config::SlackSettings`]): the
    /// "already posted?" check after an unclear answer then matches this deployment's messages
    /// only, not those of another deployment (staging and production) or a replay posting the
    /// same batch into the same channel.
    #[must_use]
    pub fn with_deployment(mut self, deployment: impl Into<String>) -> Self {
        let deployment = deployment.into();
        self.deployment = (!deployment.is_empty()).then_some(deployment);
        self
    }

    /// `metadata` with this deployment's id.
    fn stamped(&self, metadata: &Metadata) -> Metadata {
        let mut stamped = metadata.clone();
        stamped
            .event_payload
            .deployment
            .clone_from(&self.deployment);
        stamped
    }

    /// Retries so far (an operator counter).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The sleeper every wait goes through (tests read a manual one's waits).
    pub fn sleeper(&self) -> &S {
        self.waiter.sleeper()
    }

    /// Runs `once` until it is done, fails for good, or the attempts run out.
    async fn retrying<T, F, Fut>(
        &self,
        method: &'static str,
        channel: &str,
        pace: bool,
        once: F,
    ) -> Result<T, SlackError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let attempts = self.policy.attempts.max(1);
        let mut attempt = 1;
        loop {
            if pace {
                self.pacer.wait_turn(self.waiter.sleeper(), channel).await;
            }
            let (wait, error) = match once().await {
                Attempt::Done(value) => {
                    if pace {
                        self.pacer.went_through(self.waiter.sleeper(), channel);
                    }
                    return Ok(value);
                }
                Attempt::Fail(error) => return Err(error),
                Attempt::Again { wait, error } => (wait, error),
            };
            if attempt >= attempts {
                return Err(SlackError::GaveUp {
                    method,
                    attempts,
                    last: Box::new(error),
                });
            }
            let wait = match wait {
                Some(wait) if wait > self.policy.max_retry_after => {
                    return Err(SlackError::RateLimited {
                        method,
                        wait,
                        max: self.policy.max_retry_after,
                    });
                }
                Some(wait) => wait,
                None => self.waiter.backoff(&self.policy.backoff, attempt),
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                method,
                channel,
                attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "Slack call failed; retrying."
            );
            self.waiter.sleep(wait).await;
            attempt += 1;
        }
    }

    /// One Web API call: HTTP status, `Retry-After` and `ok`/`error` read into an [`Attempt`].
    async fn api_once(
        &self,
        method: &'static str,
        channel: &str,
        request: RequestBuilder,
    ) -> Attempt<ApiResponse> {
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return transport_failure(method, &err),
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        if let Some(again) = status_failure(method, status, retry_after) {
            return again;
        }
        let body: ApiResponse = match response.json().await {
            Ok(body) => body,
            Err(err) if err.is_timeout() => return transport_failure(method, &err),
            Err(_) => return Attempt::Fail(SlackError::Body { method }),
        };
        if body.ok {
            return Attempt::Done(body);
        }
        let code = clean_code(body.error.as_deref().unwrap_or(""));
        let retryable = transient_code(&code);
        let error = SlackError::Api {
            method,
            channel: channel.to_owned(),
            code,
            retryable,
        };
        if retryable {
            Attempt::Again {
                wait: retry_after,
                error,
            }
        } else {
            Attempt::Fail(error)
        }
    }

    fn api(&self, method: &str, token: &Secret) -> Result<RequestBuilder, SlackError> {
        let mut auth = HeaderValue::try_from(format!("Bearer {}", token.expose()))
            .map_err(|_| SlackError::BadCredential)?;
        auth.set_sensitive(true);
        Ok(self
            .http
            .post(format!("{}{method}", self.api_url))
            .header(AUTHORIZATION, auth))
    }

    /// Posts one message; after an answer that leaves it unclear whether Slack took the
    /// message (a timeout, a 5xx), looks for it before posting again.
    async fn post_message(
        &self,
        token: &Secret,
        channel: &str,
        message: &SlackMessage,
        thread_ts: Option<&str>,
        oldest: i64,
    ) -> Result<String, SlackError> {
        let metadata = self.stamped(&message.payload.metadata);
        let body = PostMessage {
            channel,
            thread_ts,
            attachments: &message.payload.attachments,
            metadata: &metadata,
            unfurl_links: false,
            unfurl_media: false,
        };
        let method = "chat.postMessage";
        let unclear = AtomicBool::new(false);
        self.retrying(method, channel, true, || async {
            if unclear.load(Ordering::Relaxed) {
                match self
                    .find_message(token, channel, message, thread_ts, oldest)
                    .await
                {
                    Ok(Some(ts)) => return Attempt::Done(ts),
                    Ok(None) => {}
                    Err(err) => return Attempt::Fail(err),
                }
            }
            let request = match self.api(method, token) {
                Ok(request) => request.json(&body),
                Err(err) => return Attempt::Fail(err),
            };
            match self.api_once(method, channel, request).await {
                Attempt::Done(response) => match response.ts {
                    Some(ts) => Attempt::Done(ts),
                    None => Attempt::Fail(SlackError::Body { method }),
                },
                Attempt::Again { wait, error } => {
                    if error.may_have_landed() {
                        unclear.store(true, Ordering::Relaxed);
                    }
                    Attempt::Again { wait, error }
                }
                Attempt::Fail(error) => Attempt::Fail(error),
            }
        })
        .await
    }

    /// The ts of `message` if it is already in `channel` (its thread's for continuations).
    async fn find_message(
        &self,
        token: &Secret,
        channel: &str,
        message: &SlackMessage,
        thread_ts: Option<&str>,
        oldest: i64,
    ) -> Result<Option<String>, SlackError> {
        match thread_ts {
            None => {
                self.find_parent(token, channel, &message.batch_key, oldest)
                    .await
            }
            Some(parent) => Ok(self
                .parts_in_thread(token, channel, &message.batch_key, parent, oldest)
                .await?
                .contains(&message.part)
                .then(|| parent.to_owned())),
        }
    }

    /// Messages of `channel` since `oldest` (parents only), or one thread's messages.
    ///
    /// An app without `channels:history`/`groups:history` still posts: it reads nothing
    /// (warned once), so only a retry after a lost answer may post a batch twice.
    async fn history(
        &self,
        token: &Secret,
        method: &'static str,
        channel: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<HistoryMessage>, SlackError> {
        match self.read_history(token, method, channel, query).await {
            Err(SlackError::Api { code, .. }) if code == "missing_scope" => {
                if !self.blind.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        method,
                        channel,
                        "The Slack app lacks channels:history/groups:history: posting without \
                         looking for an earlier copy (a retry after a lost answer may post twice)."
                    );
                }
                Ok(Vec::new())
            }
            other => other,
        }
    }

    async fn read_history(
        &self,
        token: &Secret,
        method: &'static str,
        channel: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<HistoryMessage>, SlackError> {
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..HISTORY_PAGES {
            let mut params: Vec<(&str, String)> = vec![
                ("channel", channel.to_owned()),
                ("include_all_metadata", "true".to_owned()),
                ("limit", HISTORY_LIMIT.to_string()),
            ];
            params.extend(query.iter().cloned());
            if let Some(cursor) = &cursor {
                params.push(("cursor", cursor.clone()));
            }
            let response = self
                .retrying(method, channel, false, || async {
                    match self.api(method, token) {
                        Ok(request) => self.api_once(method, channel, request.form(&params)).await,
                        Err(err) => Attempt::Fail(err),
                    }
                })
                .await?;
            found.extend(response.messages);
            cursor = response
                .response_metadata
                .and_then(|m| m.next_cursor)
                .filter(|c| !c.is_empty());
            if cursor.is_none() {
                break;
            }
        }
        Ok(found)
    }

    /// The ts of part 0 of `batch_key` if it is already in `channel`.
    async fn find_parent(
        &self,
        token: &Secret,
        channel: &str,
        batch_key: &str,
        oldest: i64,
    ) -> Result<Option<String>, SlackError> {
        let messages = self
            .history(
                token,
                "conversations.history",
                channel,
                &[("oldest", oldest.to_string())],
            )
            .await?;
        Ok(messages
            .into_iter()
            .find(|m| m.is_part_of(batch_key, self.deployment.as_deref()) == Some(0))
            .map(|m| m.ts))
    }

    /// Parts of `batch_key` already in the thread under `parent`, posted since `oldest`
    /// (epoch seconds): the batch's window start less a margin, as nothing of it can predate
    /// its window. The bound keeps a long thread (an incident with hundreds of replies) within
    /// the pages read: `conversations.replies` returns a thread oldest first, and its `oldest`
    /// argument starts the range there (Slack API reference, conversations.replies).
    async fn parts_in_thread(
        &self,
        token: &Secret,
        channel: &str,
        batch_key: &str,
        parent: &str,
        oldest: i64,
    ) -> Result<BTreeSet<usize>, SlackError> {
        let messages = self
            .history(
                token,
                "conversations.replies",
                channel,
                &[("ts", parent.to_owned()), ("oldest", oldest.to_string())],
            )
            .await?;
        Ok(messages
            .iter()
            .filter_map(|m| m.is_part_of(batch_key, self.deployment.as_deref()))
            .collect())
    }

    /// Posts every part of the delivery to `channel` that is not there yet; the parent's ts.
    async fn post_batch(
        &self,
        token: &Secret,
        channel: &str,
        delivery: &Delivery,
        messages: &[SlackMessage],
    ) -> Result<String, SlackError> {
        let Some((first, rest)) = messages.split_first() else {
            return Err(SlackError::Body {
                method: "chat.postMessage",
            });
        };
        let key = &first.batch_key;
        // Nothing of this batch can predate its window (a margin for clock skew).
        let oldest = delivery.batch.id.window_start.timestamp() - HISTORY_MARGIN_SECS;
        let found = self.find_parent(token, channel, key, oldest).await?;
        let parent = match &found {
            Some(ts) => {
                tracing::info!(channel, batch = %key, "Batch already in Slack; not posting it again.");
                ts.clone()
            }
            None => {
                self.post_message(token, channel, first, None, oldest)
                    .await?
            }
        };
        if rest.is_empty() {
            return Ok(parent);
        }
        let present = match found {
            Some(_) => {
                self.parts_in_thread(token, channel, key, &parent, oldest)
                    .await?
            }
            None => BTreeSet::new(),
        };
        for message in rest.iter().filter(|m| !present.contains(&m.part)) {
            self.post_message(token, channel, message, Some(&parent), oldest)
                .await?;
        }
        Ok(parent)
    }

    /// Posts a reply delivery into the thread of its parent message in `channel`
    /// (its `ts` as recorded, else found by the batch id in the channel's history); parts
    /// already in that thread are not posted again. Where the first message cannot be found
    /// (it went to other channels), the reply is posted top level there, never dropped.
    /// Returns the thread's `ts`.
    async fn post_reply(
        &self,
        token: &Secret,
        channel: &str,
        delivery: &Delivery,
        parent: &Parent,
        messages: &[SlackMessage],
    ) -> Result<String, SlackError> {
        // The parent predates the incident's first event (an overflow post: its hour).
        let since = delivery
            .incident()
            .map_or(delivery.batch.id.window_start, |incident| {
                incident.opened_at
            });
        let oldest = since.timestamp() - HISTORY_MARGIN_SECS;
        let recorded = parent
            .posts
            .iter()
            .find(|p| p.destination == channel)
            .map(|p| p.id.clone());
        let thread_ts = match recorded {
            Some(ts) => Some(ts),
            None => {
                self.find_parent(token, channel, &parent.batch_key, oldest)
                    .await?
            }
        };
        let Some(parent) = thread_ts else {
            tracing::warn!(channel, parent = %parent.batch_key, "Parent message not found in this channel; posting the reply top level.");
            return self.post_batch(token, channel, delivery, messages).await;
        };
        let key = delivery.key();
        let own = delivery.batch.id.window_start.timestamp() - HISTORY_MARGIN_SECS;
        let present = self
            .parts_in_thread(token, channel, &key, &parent, own)
            .await?;
        for message in messages.iter().filter(|m| !present.contains(&m.part)) {
            self.post_message(token, channel, message, Some(&parent), own)
                .await?;
        }
        Ok(parent)
    }

    async fn deliver_bot(
        &self,
        token: &Secret,
        delivery: &Delivery,
    ) -> Result<Receipt, SlackError> {
        let batch = &delivery.batch;
        let channels = self.routes.channels(&batch.id.account, delivery.severity);
        if channels.is_empty() {
            return Err(SlackError::NoRoute {
                account: batch.id.account.clone(),
            });
        }
        let messages = render_batch(delivery);
        let mut receipt = Receipt::default();
        for channel in &channels {
            let ts = match delivery.parent() {
                Some(parent) => {
                    self.post_reply(token, channel, delivery, parent, &messages)
                        .await?
                }
                None => self.post_batch(token, channel, delivery, &messages).await?,
            };
            receipt.posts.push(Posted {
                destination: channel.clone(),
                id: ts,
            });
        }
        Ok(receipt)
    }

    async fn webhook_once(&self, url: &Secret, message: &SlackMessage) -> Attempt<()> {
        let method = "webhook";
        let body = WebhookMessage {
            attachments: &message.payload.attachments,
            unfurl_links: false,
            unfurl_media: false,
        };
        let response = match self.http.post(url.expose()).json(&body).send().await {
            Ok(response) => response,
            Err(err) => return transport_failure(method, &err),
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        if status.is_success() {
            return Attempt::Done(());
        }
        if let Some(again) = status_failure(method, status, retry_after) {
            if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
                // Webhooks answer errors as a short text code: `invalid_payload`, `no_service`.
                let code = response
                    .text()
                    .await
                    .map(|t| clean_code(&t))
                    .unwrap_or_default();
                return Attempt::Fail(SlackError::Api {
                    method,
                    channel: "(webhook)".to_owned(),
                    code,
                    retryable: false,
                });
            }
            return again;
        }
        Attempt::Fail(SlackError::Status {
            method,
            status: status.as_u16(),
            retryable: false,
        })
    }

    async fn deliver_webhook(
        &self,
        url: &Secret,
        delivery: &Delivery,
    ) -> Result<Receipt, SlackError> {
        for message in &render_batch(delivery) {
            self.retrying("webhook", "webhook", true, || {
                self.webhook_once(url, message)
            })
            .await?;
        }
        Ok(Receipt::default())
    }
}

impl<S: Sleeper> Notifier for SlackNotifier<S> {
    type Error = SlackError;

    /// An incoming webhook posts into one channel and cannot reply in a thread.
    fn threads(&self) -> bool {
        matches!(self.credential, Credential::Token(_))
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, SlackError> {
        match &self.credential {
            Credential::Token(token) => self.deliver_bot(token, delivery).await,
            Credential::Webhook(url) => self.deliver_webhook(url, delivery).await,
        }
    }

    /// `chat.update` of the first message in each channel the delivery went to (an immediate
    /// alert is one message). A webhook's message cannot be edited: nothing is done.
    async fn update(&self, receipt: &Receipt, delivery: &Delivery) -> Result<(), SlackError> {
        let Credential::Token(token) = &self.credential else {
            return Ok(());
        };
        let messages = render_batch(delivery);
        let Some(message) = messages.first() else {
            return Ok(());
        };
        let method = "chat.update";
        let metadata = self.stamped(&message.payload.metadata);
        for posted in &receipt.posts {
            let body = UpdateMessage {
                channel: &posted.destination,
                ts: &posted.id,
                attachments: &message.payload.attachments,
                metadata: &metadata,
            };
            self.retrying(method, &posted.destination, true, || async {
                let request = match self.api(method, token) {
                    Ok(request) => request.json(&body),
                    Err(err) => return Attempt::Fail(err),
                };
                match self.api_once(method, &posted.destination, request).await {
                    Attempt::Done(_) => Attempt::Done(()),
                    Attempt::Again { wait, error } => Attempt::Again { wait, error },
                    Attempt::Fail(error) => Attempt::Fail(error),
                }
            })
            .await?;
        }
        Ok(())
    }
}

/// A reqwest error reduced to its kind: its text would carry the URL.
fn transport_failure<T>(method: &'static str, err: &reqwest::Error) -> Attempt<T> {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else if err.is_body() || err.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    Attempt::Again {
        wait: None,
        error: SlackError::Transport { method, kind },
    }
}

/// 429 and 5xx: try again; other non-success statuses: fail; success: `None`.
fn status_failure<T>(
    method: &'static str,
    status: StatusCode,
    retry_after: Option<Duration>,
) -> Option<Attempt<T>> {
    if status.is_success() {
        return None;
    }
    let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
    let error = SlackError::Status {
        method,
        status: status.as_u16(),
        retryable,
    };
    Some(if retryable {
        Attempt::Again {
            wait: retry_after
                .or((status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(1))),
            error,
        }
    } else {
        Attempt::Fail(error)
    })
}

/// `Retry-After` in seconds (Slack sends seconds).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[derive(Serialize)]
struct PostMessage<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_ts: Option<&'a str>,
    attachments: &'a [Attachment],
    metadata: &'a Metadata,
    unfurl_links: bool,
    unfurl_media: bool,
}

/// `chat.update`: the message at `ts` in `channel` gets these attachments and metadata.
#[derive(Serialize)]
struct UpdateMessage<'a> {
    channel: &'a str,
    ts: &'a str,
    attachments: &'a [Attachment],
    metadata: &'a Metadata,
}

#[derive(Serialize)]
struct WebhookMessage<'a> {
    attachments: &'a [Attachment],
    unfurl_links: bool,
    unfurl_media: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiResponse {
    ok: bool,
    error: Option<String>,
    ts: Option<String>,
    messages: Vec<HistoryMessage>,
    response_metadata: Option<ResponseMetadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResponseMetadata {
    next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HistoryMessage {
    ts: String,
    metadata: Option<HistoryMetadata>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HistoryMetadata {
    event_type: String,
    event_payload: HistoryPayload,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HistoryPayload {
    batch_id: Option<String>,
    part: Option<usize>,
    deployment: Option<String>,
}

impl HistoryMessage {
    /// The part number when this message is one of ours for `batch_key`.
    /// The part number when this message is part `batch_key` as `deployment` posted it.
    fn is_part_of(&self, batch_key: &str, deployment: Option<&str>) -> Option<usize> {
        let meta = self.metadata.as_ref()?;
        (meta.event_type == EVENT_TYPE
            && meta.event_payload.batch_id.as_deref() == Some(batch_key)
            && meta.event_payload.deployment.as_deref() == deployment)
            .then(|| meta.event_payload.part.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_stored_secrets() {
        let token = Credential::from_secret(&Secret::new(" xoxb-1-2-abc\n"));
        assert_eq!(
            token.ok(),
            Some(Credential::Token(Secret::new("xoxb-1-2-abc")))
        );
        let json = Credential::from_secret(&Secret::new(
            r#"{"webhook_url":"https://hooks.slack.com/services/T/B/x"}"#,
        ));
        assert_eq!(
            json.ok(),
            Some(Credential::Webhook(Secret::new(
                "https://hooks.slack.com/services/T/B/x"
            )))
        );
        for bad in [
            "",
            "hunter2",
            r#"{"token":"a","webhook_url":"b"}"#,
            "{not json",
        ] {
            let err = Credential::from_secret(&Secret::new(bad)).err();
            assert!(matches!(err, Some(SlackError::BadCredential)), "{bad}");
        }
        // A webhook URL in clear text crosses no network: http:// only to this host.
        for insecure in [
            "http://hooks.slack.com/services/T/B/x",
            "http://127.0.0.1.evil.example/hooks",
            "http://localhost@evil.example/",
        ] {
            let err = Credential::from_secret(&Secret::new(insecure)).err();
            assert!(
                matches!(err, Some(SlackError::InsecureWebhook)),
                "{insecure}"
            );
        }
        for local in [
            "http://127.0.0.1:8080/hooks/x",
            "http://localhost:9/x",
            "http://[::1]:9/x",
        ] {
            let ok = Credential::from_secret(&Secret::new(local));
            assert!(matches!(ok, Ok(Credential::Webhook(_))), "{local}");
        }
        assert_eq!(
            format!("{:?}", Credential::Token(Secret::new("xoxb-9"))),
            "Token([redacted])"
        );
    }

    #[test]
    fn codes_are_cleaned_and_classified() {
        assert_eq!(clean_code("invalid_auth"), "invalid_auth");
        assert_eq!(clean_code("<!channel> x\ny"), "channelxy");
        assert_eq!(clean_code(""), "unknown_error");
        assert!(transient_code("ratelimited"));
        assert!(!transient_code("channel_not_found"));
        let err = SlackError::Api {
            method: "chat.postMessage",
            channel: "C1".to_owned(),
            code: "not_in_channel".to_owned(),
            retryable: false,
        };
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "Slack chat.postMessage in C1 refused: not_in_channel (invite the app to the channel)"
        );
    }
}
