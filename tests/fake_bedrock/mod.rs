//! An in-process fake of Bedrock Runtime's Converse (`POST /model/{id}/converse`) on
//! 127.0.0.1, scripted per test: tool calls, text answers, broken bodies, AWS errors, slow
//! answers. It records every request body so tests can read the prompt that was sent. Like
//! Bedrock, it reports prompt-cache usage for a request with a `cachePoint` in its system
//! blocks: the first such request writes [`CACHED_TOKENS`] to the cache, later ones read them.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Tokens the fake reports written to, then read from, its prompt cache.
pub const CACHED_TOKENS: u64 = 1_100;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A `toolUse` block with this input. An input holding one batch's answer (no
    /// `summaries`) is given to every batch of the request, each entry naming its batch; an
    /// input with `summaries` is sent as it is.
    Tool(Value),
    /// A text block instead of a tool call.
    Text(String),
    /// A 200 whose body is this (e.g. broken JSON).
    Raw(String),
    /// An AWS error: HTTP status and `x-amzn-errortype`.
    Error(u16, &'static str),
    /// Wait, then answer.
    Slow(Duration, Box<Reply>),
}

/// A good answer in the language the prompt asks for.
pub fn good_answer(korean: bool, severity: &str) -> Value {
    if korean {
        json!({
            "headline": "Terraform이 EC2 인스턴스와 보안 그룹을 변경했습니다",
            "summary": "GitHub Actions의 Terraform 역할이 us-east-1에서 인스턴스 200개를 만들고 보안 그룹을 수정했습니다.",
            "notes": ["보안 그룹 인바운드 규칙 추가를 확인하세요."],
            "severity": severity,
            "severity_reason": "자동화에 의한 예정된 변경이지만 네트워크 노출이 바뀌었습니다."
        })
    } else {
        json!({
            "headline": "Terraform changed EC2 instances and security groups",
            "summary": "The GitHub Actions Terraform role launched 200 instances in us-east-1 and changed security groups.",
            "notes": ["Check the new security group ingress rules."],
            "severity": severity,
            "severity_reason": "Planned automation, but network exposure changed."
        })
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    fallback: Option<Reply>,
    requests: Vec<Value>,
    paths: Vec<String>,
    /// When each request arrived.
    arrived: Vec<std::time::Instant>,
    /// A cache point has been written.
    cached: bool,
}

/// The running fake; the server task ends with the test's runtime.
#[derive(Clone)]
pub struct FakeBedrock {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeBedrock {
    /// Start on 127.0.0.1:0. Replies are taken from `script` in order, then `then` forever
    /// (`None`: answer in the prompt's language, green).
    pub async fn start(script: Vec<Reply>, then: Option<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|err| panic!("bind: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("addr: {err}"));
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            fallback: then,
            ..State::default()
        }));
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&served)));
            }
        });
        Self {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Request bodies received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.lock().requests.clone()
    }

    pub fn paths(&self) -> Vec<String> {
        self.lock().paths.clone()
    }

    pub fn calls(&self) -> usize {
        self.lock().requests.len()
    }

    /// When each request arrived, in order.
    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        self.lock().arrived.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some((path, body)) = read_request(&mut stream).await else {
        return;
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let cache_point = request["system"]
        .as_array()
        .is_some_and(|blocks| blocks.iter().any(|b| b.get("cachePoint").is_some()));
    let (reply, usage) = {
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.requests.push(request.clone());
        state.paths.push(path);
        state.arrived.push(std::time::Instant::now());
        let mut usage = json!({"inputTokens": 1234, "outputTokens": 321, "totalTokens": 1555});
        if cache_point {
            let (read, write) = if state.cached {
                (CACHED_TOKENS, 0)
            } else {
                (0, CACHED_TOKENS)
            };
            usage["cacheReadInputTokens"] = json!(read);
            usage["cacheWriteInputTokens"] = json!(write);
            state.cached = true;
        }
        (
            state.script.pop_front().or_else(|| state.fallback.clone()),
            usage,
        )
    };
    let text = request.to_string();
    let reply = reply
        .unwrap_or_else(|| Reply::Tool(good_answer(text.contains("Language: Korean"), "green")));
    let reply = for_every_batch(reply, &batch_ids(&request));
    let (status, error_type, body) = render(reply, usage).await;
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if let Some(kind) = error_type {
        head = format!("{head}x-amzn-errortype: {kind}\r\n");
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The ids of the batches in a request, in order: each `<data batch="ID">` of its user text.
pub fn batch_ids(request: &Value) -> Vec<String> {
    let text = request["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    text.split("<data batch=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// One batch's answer given to each batch of the request (see [`Reply::Tool`]).
fn for_every_batch(reply: Reply, ids: &[String]) -> Reply {
    match reply {
        Reply::Tool(input) if input.get("summaries").is_none() && input.is_object() => {
            let summaries: Vec<Value> = ids
                .iter()
                .map(|id| {
                    let mut entry = input.clone();
                    entry["batch"] = json!(id);
                    entry
                })
                .collect();
            Reply::Tool(json!({ "summaries": summaries }))
        }
        Reply::Slow(delay, inner) => Reply::Slow(delay, Box::new(for_every_batch(*inner, ids))),
        other => other,
    }
}

async fn render(mut reply: Reply, usage: Value) -> (u16, Option<&'static str>, String) {
    while let Reply::Slow(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    let message = |content: Value, stop: &str| {
        json!({
            "output": {"message": {"role": "assistant", "content": [content]}},
            "stopReason": stop,
            "usage": usage,
            "metrics": {"latencyMs": 42}
        })
        .to_string()
    };
    match reply {
        Reply::Tool(input) => (
            200,
            None,
            message(
                json!({"toolUse": {"toolUseId": "tooluse_1", "name": "report_summaries", "input": input}}),
                "tool_use",
            ),
        ),
        Reply::Text(text) => (200, None, message(json!({"text": text}), "end_turn")),
        Reply::Raw(body) => (200, None, body),
        Reply::Error(status, kind) => (
            status,
            Some(kind),
            json!({"message": format!("fake {kind}")}).to_string(),
        ),
        Reply::Slow(..) => unreachable!("unwrapped above"),
    }
}

/// Reads one HTTP/1.1 request: the path and the body (by content-length).
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((path, buf[header_end..].to_vec()))
}
