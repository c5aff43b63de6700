//! An in-process fake of Slack's Web API and incoming webhooks, on 127.0.0.1:0.
//!
//! It keeps what was posted (channel, ts, thread_ts, metadata) as history that
//! `conversations.history` and `conversations.replies` answer from, checks the bot token,
//! knows which channels exist and which the app is in, and can be scripted to answer the next
//! calls of a method with 429 + Retry-After, a 5xx, a slow answer, or an error code.

#![allow(dead_code)]
// Handlers answer early with the `Response` itself; boxing it would only add noise to a fake.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use trailwatch::adapters::retry::ManualSleeper;
use trailwatch::adapters::slack::{Credential, RetryPolicy, SlackNotifier};
use trailwatch::config::SlackRoutes;
use trailwatch::secret::Secret;

pub const TOKEN: &str = "xoxb-000000000-fake-SECRET-token-4f9d2b";
pub const HOOK_SECRET: &str = "T000FAKE/B000FAKE/SECRETwebhookPATH7c1e";

/// A scripted answer for the next call of a method.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answer as Slack normally would (to let some calls through before a failure).
    Pass,
    /// HTTP 429 with `Retry-After: secs`.
    RateLimited(u64),
    /// This HTTP status, with an empty body.
    Status(u16),
    /// Do the work (record the post), then answer after this long: the client times out
    /// although Slack took the message.
    Slow(Duration),
    /// `{"ok": false, "error": code}`.
    Error(&'static str),
}

/// A message in the fake's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: String,
    pub metadata: Option<Value>,
    pub body: Value,
    /// When it was posted.
    pub at: std::time::Instant,
    /// The bodies of the `chat.update` calls that replaced it, in order.
    pub updates: Vec<Value>,
}

impl Posted {
    pub fn batch_id(&self) -> Option<String> {
        self.metadata
            .as_ref()?
            .pointer("/event_payload/batch_id")?
            .as_str()
            .map(str::to_owned)
    }

    pub fn part(&self) -> Option<u64> {
        self.metadata
            .as_ref()?
            .pointer("/event_payload/part")?
            .as_u64()
    }
}

#[derive(Debug, Default)]
struct Inner {
    channels: BTreeSet<String>,
    not_member: BTreeSet<String>,
    posts: Vec<Posted>,
    hooks: Vec<Value>,
    script: HashMap<String, VecDeque<Reply>>,
    calls: Vec<String>,
    next_ts: u64,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct FakeSlack {
    pub addr: std::net::SocketAddr,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeSlack {
    /// Starts the fake on the current tokio runtime with these channels.
    pub async fn start(channels: &[&str]) -> Self {
        let shared = Shared::default();
        shared.lock().channels = channels.iter().map(|c| (*c).to_owned()).collect();
        // Later than every fixture's events, as a real post is.
        shared.lock().next_ts = 1_900_000_000;
        let app = Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.update", post(update_message))
            .route("/api/conversations.history", post(history))
            .route("/api/conversations.replies", post(replies))
            .route("/hooks/{a}/{b}/{c}", post(webhook))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|err| panic!("bind: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("addr: {err}"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            server,
        }
    }

    /// Posts from now on get timestamps from `secs` (epoch seconds) on, as Slack's follow
    /// real time: a test whose clock is event time keeps Slack's history windows realistic.
    /// Never moves back past a message already posted.
    pub fn follow_clock(&self, secs: u64) {
        let mut inner = self.shared.lock();
        inner.next_ts = if inner.posts.is_empty() {
            secs
        } else {
            inner.next_ts.max(secs)
        };
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// A bot-token notifier posting to this fake, waiting on a manual sleeper (tests never
    /// wait for pacing or backoff).
    pub fn bot(
        &self,
        token: &str,
        routes: SlackRoutes,
        policy: RetryPolicy,
    ) -> SlackNotifier<Arc<ManualSleeper>> {
        SlackNotifier::new(
            Credential::Token(Secret::new(token)),
            Some(&self.api_url()),
            routes,
            policy,
            Arc::new(ManualSleeper::default()),
        )
        .unwrap_or_else(|err| panic!("notifier: {err}"))
    }

    pub fn webhook_url(&self) -> String {
        format!("http://{}/hooks/{HOOK_SECRET}", self.addr)
    }

    /// The next calls of `method` (`chat.postMessage`, `webhook`, ...) answer these, in order.
    pub fn script(&self, method: &str, replies: impl IntoIterator<Item = Reply>) {
        self.shared
            .lock()
            .script
            .entry(method.to_owned())
            .or_default()
            .extend(replies);
    }

    /// The channel exists but the app was not invited.
    pub fn leave(&self, channel: &str) {
        self.shared.lock().not_member.insert(channel.to_owned());
    }

    pub fn posts(&self) -> Vec<Posted> {
        self.shared.lock().posts.clone()
    }

    pub fn hooks(&self) -> Vec<Value> {
        self.shared.lock().hooks.clone()
    }

    /// Every call, as `method` or `method channel`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.shared.lock().calls.clone()
    }

    /// Posts per channel, in the order they arrived.
    pub fn by_channel(&self) -> BTreeMap<String, Vec<Posted>> {
        let mut out: BTreeMap<String, Vec<Posted>> = BTreeMap::new();
        for p in self.posts() {
            out.entry(p.channel.clone()).or_default().push(p);
        }
        out
    }
}

fn ok(body: Value) -> Response {
    let mut body = body;
    body["ok"] = json!(true);
    axum::Json(body).into_response()
}

fn fail(code: &str) -> Response {
    axum::Json(json!({"ok": false, "error": code})).into_response()
}

/// Takes the next scripted reply for `method`, if any, and answers it (except `Slow`).
fn scripted(shared: &Shared, method: &str) -> Result<Option<Duration>, Response> {
    let reply = shared
        .lock()
        .script
        .get_mut(method)
        .and_then(VecDeque::pop_front);
    match reply {
        None | Some(Reply::Pass) => Ok(None),
        Some(Reply::Slow(wait)) => Ok(Some(wait)),
        Some(Reply::RateLimited(secs)) => Err((
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            axum::Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response()),
        Some(Reply::Status(code)) => Err(StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response()),
        Some(Reply::Error(code)) => Err(fail(code)),
    }
}

fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"))
}

/// `channel_not_found` / `not_in_channel` like Slack, or `None` when the app may use it.
fn channel_error(inner: &Inner, channel: &str) -> Option<&'static str> {
    if !inner.channels.contains(channel) {
        Some("channel_not_found")
    } else if inner.not_member.contains(channel) {
        Some("not_in_channel")
    } else {
        None
    }
}

async fn post_message(
    State(shared): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    shared
        .lock()
        .calls
        .push(format!("chat.postMessage {channel}"));
    let slow = match scripted(&shared, "chat.postMessage") {
        Ok(slow) => slow,
        Err(response) => return response,
    };
    if !authorised(&headers) {
        return fail("invalid_auth");
    }
    // Like Slack: a message needs text, blocks or attachments.
    if ["text", "blocks", "attachments"]
        .iter()
        .all(|k| body.get(k).is_none_or(Value::is_null))
    {
        return fail("no_text");
    }
    let ts = {
        let mut inner = shared.lock();
        if let Some(code) = channel_error(&inner, &channel) {
            return fail(code);
        }
        inner.next_ts += 1;
        let ts = format!("{}.000100", inner.next_ts);
        let thread_ts = body["thread_ts"].as_str().map(str::to_owned);
        if let Some(parent) = &thread_ts
            && !inner
                .posts
                .iter()
                .any(|p| &p.ts == parent && p.channel == channel)
        {
            return fail("thread_not_found");
        }
        inner.posts.push(Posted {
            channel: channel.clone(),
            ts: ts.clone(),
            thread_ts,
            text: body["text"]
                .as_str()
                .or_else(|| body["attachments"][0]["fallback"].as_str())
                .unwrap_or_default()
                .to_owned(),
            metadata: body.get("metadata").cloned(),
            body: body.clone(),
            at: std::time::Instant::now(),
            updates: Vec::new(),
        });
        ts
    };
    if let Some(wait) = slow {
        tokio::time::sleep(wait).await;
    }
    ok(json!({"channel": channel, "ts": ts}))
}

/// `chat.update`: the message at `ts` in `channel` takes the new attachments, like Slack
/// (`message_not_found` when there is none).
async fn update_message(
    State(shared): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    let ts = body["ts"].as_str().unwrap_or_default().to_owned();
    shared.lock().calls.push(format!("chat.update {channel}"));
    if let Err(response) = scripted(&shared, "chat.update") {
        return response;
    }
    if !authorised(&headers) {
        return fail("invalid_auth");
    }
    let mut inner = shared.lock();
    if let Some(code) = channel_error(&inner, &channel) {
        return fail(code);
    }
    let Some(post) = inner
        .posts
        .iter_mut()
        .find(|p| p.channel == channel && p.ts == ts)
    else {
        return fail("message_not_found");
    };
    post.updates.push(body.clone());
    if let Some(text) = body["attachments"][0]["fallback"].as_str() {
        text.clone_into(&mut post.text);
    }
    ok(json!({"channel": channel, "ts": ts}))
}

fn message_json(p: &Posted, with_metadata: bool) -> Value {
    let mut m = json!({"type": "message", "ts": p.ts, "text": p.text});
    if let Some(t) = &p.thread_ts {
        m["thread_ts"] = json!(t);
    }
    if with_metadata && let Some(meta) = &p.metadata {
        m["metadata"] = meta.clone();
    }
    m
}

/// Pages of at most `limit`, newest first, with a cursor (the offset) like Slack's.
fn page(messages: &[Value], form: &HashMap<String, String>) -> Response {
    let limit: usize = form
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100);
    let start: usize = form.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let end = (start + limit).min(messages.len());
    let next = if end < messages.len() {
        end.to_string()
    } else {
        String::new()
    };
    ok(json!({
        "messages": messages[start.min(end)..end],
        "has_more": !next.is_empty(),
        "response_metadata": {"next_cursor": next},
    }))
}

fn reader(
    shared: &Shared,
    method: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(String, bool), Response> {
    let channel = form.get("channel").cloned().unwrap_or_default();
    shared.lock().calls.push(format!("{method} {channel}"));
    scripted(shared, method)?;
    if !authorised(headers) {
        return Err(fail("invalid_auth"));
    }
    if let Some(code) = channel_error(&shared.lock(), &channel) {
        return Err(fail(code));
    }
    let with_metadata = form.get("include_all_metadata").map(String::as_str) == Some("true");
    Ok((channel, with_metadata))
}

async fn history(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (channel, with_metadata) = match reader(&shared, "conversations.history", &headers, &form) {
        Ok(x) => x,
        Err(response) => return response,
    };
    let oldest: f64 = form
        .get("oldest")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0.0);
    let inner = shared.lock();
    // Parents only (replies stay in their threads), newest first.
    let messages: Vec<Value> = inner
        .posts
        .iter()
        .rev()
        .filter(|p| p.channel == channel && p.thread_ts.as_ref().is_none_or(|t| *t == p.ts))
        .filter(|p| p.ts.parse::<f64>().unwrap_or(0.0) >= oldest)
        .map(|p| message_json(p, with_metadata))
        .collect();
    drop(inner);
    page(&messages, &form)
}

async fn replies(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (channel, with_metadata) = match reader(&shared, "conversations.replies", &headers, &form) {
        Ok(x) => x,
        Err(response) => return response,
    };
    let ts = form.get("ts").cloned().unwrap_or_default();
    // Like Slack: only messages from `oldest` on (epoch seconds), when given.
    let oldest: f64 = form
        .get("oldest")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0.0);
    let inner = shared.lock();
    let thread: Vec<&Posted> = inner
        .posts
        .iter()
        .filter(|p| p.channel == channel && (p.ts == ts || p.thread_ts.as_deref() == Some(&ts)))
        .collect();
    if thread.is_empty() {
        return fail("thread_not_found");
    }
    let messages: Vec<Value> = thread
        .into_iter()
        .filter(|p| p.ts.parse::<f64>().unwrap_or(0.0) >= oldest)
        .map(|p| message_json(p, with_metadata))
        .collect();
    drop(inner);
    page(&messages, &form)
}

async fn webhook(
    State(shared): State<Shared>,
    Path((a, b, c)): Path<(String, String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    shared.lock().calls.push("webhook".to_owned());
    let slow = match scripted(&shared, "webhook") {
        Ok(slow) => slow,
        Err(response) => return response,
    };
    if format!("{a}/{b}/{c}") != HOOK_SECRET {
        return (StatusCode::NOT_FOUND, "no_service").into_response();
    }
    shared.lock().hooks.push(body);
    if let Some(wait) = slow {
        tokio::time::sleep(wait).await;
    }
    (StatusCode::OK, "ok").into_response()
}
