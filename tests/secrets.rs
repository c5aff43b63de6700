//! The Slack secret from Secrets Manager, against an in-process fake of GetSecretValue, and
//! the Lambda's Slack notifier reading it again when Slack refuses the token.
#![cfg(feature = "cloud")]

mod common;
mod fake_slack;

use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use trailwatch::adapters::secrets::fetch_secret;
use trailwatch::adapters::slack::Credential;
use trailwatch::app::lambda_slack_notifier;
use trailwatch::config::{Settings, env};
use trailwatch::ports::{Notifier, Retryable};

const TOKEN: &str = "xoxb-1111-fake-SECRET-from-secrets-manager";
const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:slack-AbCdEf";

async fn fake(
    State(calls): State<Arc<Mutex<Vec<String>>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(target.clone());
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    if target != "secretsmanager.GetSecretValue" {
        return StatusCode::BAD_REQUEST.into_response();
    }
    if request["SecretId"] == ARN {
        return axum::Json(json!({"ARN": ARN, "Name": "slack", "SecretString": TOKEN}))
            .into_response();
    }
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."}).to_string(),
    )
        .into_response()
}

/// Serve `app` on 127.0.0.1 as the Secrets Manager endpoint; a client for it.
async fn serve(app: Router) -> aws_sdk_secretsmanager::Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let addr = listener.local_addr().unwrap_or_else(|err| panic!("{err}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDFAKE",
            "fake-secret-key",
            None,
            None,
            "test",
        ))
        .endpoint_url(format!("http://{addr}"))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

async fn client() -> (aws_sdk_secretsmanager::Client, Arc<Mutex<Vec<String>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/", post(fake))
        .with_state(calls.clone());
    (serve(app).await, calls)
}

#[tokio::test]
async fn the_secret_is_read_once_and_never_printed() {
    let (client, calls) = client().await;
    let secret = fetch_secret(&client, ARN)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(secret.expose(), TOKEN);
    assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
    assert_eq!(
        Credential::from_secret(&secret).ok(),
        Some(Credential::Token(secret.clone()))
    );

    let var = |key: &str| (key == env::SLACK_SECRET_ARN).then(|| ARN.to_owned());
    let notifier = lambda_slack_notifier(&client, &Settings::default(), &var)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let shown = format!("{notifier:?}");
    assert!(notifier.is_some());
    assert!(!shown.contains(TOKEN), "{shown}");
    assert_eq!(
        calls.lock().unwrap_or_else(PoisonError::into_inner).len(),
        2,
        "one call per start"
    );
    let none = lambda_slack_notifier(&client, &Settings::default(), &|_| None).await;
    assert!(none.is_ok_and(|n| n.is_none()), "no ARN, no Slack");
}

#[tokio::test]
async fn a_missing_secret_fails_clearly() {
    let (client, _) = client().await;
    let err = fetch_secret(
        &client,
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope",
    )
    .await
    .err();
    let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(text.contains("ResourceNotFoundException"), "{text}");
    assert!(text.contains("secret:nope"), "{text}");
    assert!(
        err.is_some_and(|e| !e.is_retryable()),
        "a person must fix it"
    );
}

/// A fake GetSecretValue that answers the next of `tokens` on each call (the last one
/// forever): a secret being rotated.
/// Calls made, and the tokens the secret holds one after the other.
type Rotation = (Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<String>>>);

async fn rotating(State((calls, tokens)): State<Rotation>) -> Response {
    let n = {
        let mut calls = calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.push("secretsmanager.GetSecretValue".to_owned());
        calls.len()
    };
    let tokens = tokens.lock().unwrap_or_else(PoisonError::into_inner);
    let token = tokens[(n - 1).min(tokens.len() - 1)].clone();
    axum::Json(json!({"ARN": ARN, "Name": "slack", "SecretString": token})).into_response()
}

async fn rotating_client(
    tokens: &[&str],
) -> (aws_sdk_secretsmanager::Client, Arc<Mutex<Vec<String>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let tokens = Arc::new(Mutex::new(tokens.iter().map(|t| (*t).to_owned()).collect()));
    let app = Router::new()
        .route("/", post(rotating))
        .with_state((calls.clone(), tokens));
    (serve(app).await, calls)
}

/// A one-event delivery (replayed before any runtime starts: replay runs its own).
fn one_delivery() -> trailwatch::ports::Delivery {
    let replayed = common::replay_bytes(
        &[std::fs::read(common::fixture("root-login-no-mfa.jsonl")).unwrap_or_default()],
        Settings::default(),
    );
    replayed
        .deliveries
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("the fixture gives a delivery"))
}

/// Settings that post to `fake`'s channel `C_A`.
fn slack_settings(fake: &fake_slack::FakeSlack) -> Settings {
    let mut settings = Settings::default();
    settings.slack.api_url = Some(fake.api_url());
    settings.slack.routes.default_channel = Some("C_A".to_owned());
    settings
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("runtime: {err}"))
}

#[test]
fn a_refused_token_is_read_again_and_the_post_goes_out_with_the_new_one() {
    let delivery = one_delivery();
    rt().block_on(async {
        let fake = fake_slack::FakeSlack::start(&["C_A"]).await;
        let (client, calls) =
            rotating_client(&["xoxb-0000-revoked-OLD-token", fake_slack::TOKEN]).await;
        let settings = slack_settings(&fake);
        let var = |key: &str| (key == env::SLACK_SECRET_ARN).then(|| ARN.to_owned());
        let notifier = lambda_slack_notifier(&client, &settings, &var)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
            .unwrap_or_else(|| panic!("an ARN gives a notifier"));
        let receipt = notifier.deliver(&delivery).await;
        assert!(receipt.is_ok(), "{receipt:?}");
        assert_eq!(fake.posts().len(), 1, "posted once, with the new token");
        assert_eq!(
            calls.lock().unwrap_or_else(PoisonError::into_inner).len(),
            2,
            "read at start, and again when Slack refused the token"
        );
    });
}

#[test]
fn a_refused_token_that_did_not_change_fails_without_a_second_post() {
    let delivery = one_delivery();
    rt().block_on(async {
        let fake = fake_slack::FakeSlack::start(&["C_A"]).await;
        let (client, calls) = rotating_client(&["xoxb-0000-revoked-OLD-token"]).await;
        let settings = slack_settings(&fake);
        let var = |key: &str| (key == env::SLACK_SECRET_ARN).then(|| ARN.to_owned());
        let notifier = lambda_slack_notifier(&client, &settings, &var)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
            .unwrap_or_else(|| panic!("an ARN gives a notifier"));
        let err = notifier.deliver(&delivery).await.err();
        assert!(
            err.as_ref()
                .is_some_and(trailwatch::adapters::slack::SlackError::is_auth),
            "{err:?}"
        );
        assert!(fake.posts().is_empty());
        assert_eq!(
            calls.lock().unwrap_or_else(PoisonError::into_inner).len(),
            2
        );
    });
}

#[test]
fn an_old_secret_is_read_again_before_posting() {
    let delivery = one_delivery();
    rt().block_on(async {
        let fake = fake_slack::FakeSlack::start(&["C_A"]).await;
        let (client, calls) = rotating_client(&[fake_slack::TOKEN]).await;
        let settings = slack_settings(&fake);
        let var = |key: &str| (key == env::SLACK_SECRET_ARN).then(|| ARN.to_owned());
        let notifier = lambda_slack_notifier(&client, &settings, &var)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
            .unwrap_or_else(|| panic!("an ARN gives a notifier"))
            .with_max_age(std::time::Duration::ZERO);
        let receipt = notifier.deliver(&delivery).await;
        assert!(receipt.is_ok(), "{receipt:?}");
        assert_eq!(
            calls.lock().unwrap_or_else(PoisonError::into_inner).len(),
            2
        );
    });
}
