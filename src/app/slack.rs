//! Wiring of the Slack notifier for the Lambda: the secret is read once, at start.

use anyhow::Context as _;

use crate::adapters::retry::TokioSleeper;
use crate::adapters::secrets::fetch_secret;
use crate::adapters::slack::{Credential, RetryPolicy, SlackNotifier};
use crate::config::{Settings, env};

/// The Slack notifier named by `TRAILWATCH_SLACK_SECRET_ARN`, or `None` when it is unset.
/// Call once at cold start and keep the result for every invocation.
pub async fn lambda_slack_notifier(
    client: &aws_sdk_secretsmanager::Client,
    settings: &Settings,
    var: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<SlackNotifier<TokioSleeper>>> {
    let Some(arn) = var(env::SLACK_SECRET_ARN).filter(|a| !a.trim().is_empty()) else {
        return Ok(None);
    };
    let secret = fetch_secret(client, arn.trim()).await?;
    let credential =
        Credential::from_secret(&secret).with_context(|| format!("secret {}", arn.trim()))?;
    let notifier = SlackNotifier::new(
        credential,
        settings.slack.api_url.as_deref(),
        settings.slack.routes.clone(),
        RetryPolicy::default(),
        TokioSleeper::default(),
    )?;
    Ok(Some(notifier))
}
