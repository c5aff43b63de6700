//! A notifier that writes each delivery as one JSON line with its Slack messages: standard
//! output when no Slack credential is configured (the Lambda's logs keep the lines), any
//! writer in tests.

use std::io::Write;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use crate::ports::{Delivery, Notifier, Receipt, Retryable};
use crate::render::slack::{SlackMessage, render_batch};
use crate::window::BatchKind;

/// Writing a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("cannot encode delivery {batch}")]
    Encode {
        batch: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write delivery {batch}")]
    Write {
        batch: String,
        #[source]
        source: std::io::Error,
    },
}

impl Retryable for LineError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Write { .. })
    }
}

#[derive(Serialize)]
struct Line<'a> {
    batch: String,
    kind: BatchKind,
    account: &'a str,
    events: usize,
    messages: Vec<SlackMessage>,
}

/// Writes one JSON line per delivery: `{"batch", "kind", "account", "events", "messages"}`.
#[derive(Debug)]
pub struct LineNotifier<W> {
    out: Mutex<W>,
}

/// The Lambda's notifier when no Slack credential is configured: CloudWatch Logs keeps the lines.
pub type StdoutNotifier = LineNotifier<std::io::Stdout>;

impl StdoutNotifier {
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }
}

impl<W> LineNotifier<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<W: Write + Send> Notifier for LineNotifier<W> {
    type Error = LineError;

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, LineError> {
        let batch = delivery.key();
        let line = Line {
            batch: batch.clone(),
            kind: delivery.batch.kind,
            account: delivery.batch.id.account.as_str(),
            events: delivery.batch.events.len(),
            messages: render_batch(delivery),
        };
        let mut text = serde_json::to_string(&line).map_err(|source| LineError::Encode {
            batch: batch.clone(),
            source,
        })?;
        text.push('\n');
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|source| LineError::Write { batch, source })?;
        Ok(Receipt::default())
    }
}
