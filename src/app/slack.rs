//! Wiring of the Slack notifier for the Lambda: the secret is read at start, read again once
//! it is an hour old, and read again at once when Slack says the token is no longer valid
//! (`invalid_auth`, `token_revoked`, ...), so a rotated token works without recycling the
//! function's instances.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::adapters::retry::TokioSleeper;
use crate::adapters::secrets::fetch_secret;
use crate::adapters::slack::{Credential, RetryPolicy, SlackError, SlackNotifier};
use crate::config::{Settings, env};
use crate::ports::{Delivery, Notifier, Receipt};

/// How long a secret read is used before it is read again.
pub const SECRET_MAX_AGE: Duration = Duration::from_hours(1);

/// The Slack notifier named by `TRAILWATCH_SLACK_SECRET_ARN`, or `None` when it is unset.
/// Call once at cold start and keep the result for every invocation.
///
/// # Errors
/// The secret cannot be read, or holds neither a bot token nor a webhook URL.
pub async fn lambda_slack_notifier(
    client: &aws_sdk_secretsmanager::Client,
    settings: &Settings,
    var: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<RefreshingSlack>> {
    let Some(arn) = var(env::SLACK_SECRET_ARN).filter(|a| !a.trim().is_empty()) else {
        return Ok(None);
    };
    // Configured, or this function's region and table (unique within an account).
    let deployment = settings.slack.deployment.clone().unwrap_or_else(|| {
        format!(
            "{}/{}",
            var("AWS_REGION").unwrap_or_default(),
            var(env::TABLE).unwrap_or_default()
        )
    });
    let source = SecretSource {
        client: client.clone(),
        arn: arn.trim().to_owned(),
        settings: settings.clone(),
        deployment,
    };
    let current = source.read().await?;
    Ok(Some(RefreshingSlack {
        source,
        current: Mutex::new(current),
        max_age: SECRET_MAX_AGE,
    }))
}

/// Where the credential comes from, and what a notifier is built with.
#[derive(Debug)]
struct SecretSource {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    settings: Settings,
    /// This deployment's id in message metadata.
    deployment: String,
}

/// A notifier built from one read of the secret.
#[derive(Debug, Clone)]
struct Current {
    notifier: Arc<SlackNotifier<TokioSleeper>>,
    credential: Credential,
    read_at: Instant,
}

impl SecretSource {
    async fn read(&self) -> anyhow::Result<Current> {
        let secret = fetch_secret(&self.client, &self.arn).await?;
        let credential =
            Credential::from_secret(&secret).with_context(|| format!("secret {}", self.arn))?;
        let notifier = SlackNotifier::new(
            credential.clone(),
            self.settings.slack.api_url.as_deref(),
            self.settings.slack.routes.clone(),
            RetryPolicy::default(),
            TokioSleeper::default(),
        )?
        .with_deployment(self.deployment.clone());
        Ok(Current {
            notifier: Arc::new(notifier),
            credential,
            read_at: Instant::now(),
        })
    }
}

/// The Slack notifier of the Lambda, over a secret it reads again when it is old or refused.
#[derive(Debug)]
pub struct RefreshingSlack {
    source: SecretSource,
    current: Mutex<Current>,
    max_age: Duration,
}

impl RefreshingSlack {
    /// Read the secret again after `max_age` instead of [`SECRET_MAX_AGE`].
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    fn current(&self) -> Current {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Read the secret again; keep what was there when that fails (warned). Returns whether
    /// the credential changed.
    async fn refresh(&self, why: &'static str) -> bool {
        match self.source.read().await {
            Ok(next) => {
                let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
                let changed = next.credential != current.credential;
                *current = next;
                tracing::info!(why, changed, "Slack secret read again.");
                changed
            }
            Err(err) => {
                tracing::warn!(why, error = %format!("{err:#}"), "Cannot read the Slack secret again; keeping the one read before.");
                false
            }
        }
    }
}

impl Notifier for RefreshingSlack {
    type Error = SlackError;

    fn threads(&self) -> bool {
        self.current().notifier.threads()
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, SlackError> {
        if self.current().read_at.elapsed() >= self.max_age {
            self.refresh("older than its maximum age").await;
        }
        let notifier = self.current().notifier;
        match notifier.deliver(delivery).await {
            Err(err) if err.is_auth() && self.refresh("Slack refused the token").await => {
                self.current().notifier.deliver(delivery).await
            }
            outcome => outcome,
        }
    }

    async fn update(&self, receipt: &Receipt, delivery: &Delivery) -> Result<(), SlackError> {
        self.current().notifier.update(receipt, delivery).await
    }
}
