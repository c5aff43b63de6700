//! One of two adapters, chosen by configuration at start: the engine stays generic and static.

use crate::ports::{Delivery, Notifier, Receipt, Retryable};
use crate::summary::{Locale, Summarizer, Summary};
use crate::window::Batch;

/// The failure of whichever adapter was chosen.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct EitherError {
    retryable: bool,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl EitherError {
    fn from<E: std::error::Error + Retryable + Send + Sync + 'static>(err: E) -> Self {
        Self {
            retryable: err.is_retryable(),
            source: Box::new(err),
        }
    }
}

impl Retryable for EitherError {
    fn is_retryable(&self) -> bool {
        self.retryable
    }
}

/// `A` or `B`, as configured.
#[derive(Debug)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<A, B> Summarizer for Either<A, B>
where
    A: Summarizer + Sync,
    B: Summarizer + Sync,
{
    type Error = EitherError;

    async fn summarize(&self, batch: &Batch, locale: Locale) -> Result<Summary, EitherError> {
        let boxed = |err: Box<dyn std::error::Error + Send + Sync>| EitherError {
            retryable: false,
            source: err,
        };
        match self {
            Self::Left(a) => a
                .summarize(batch, locale)
                .await
                .map_err(|e| boxed(e.into())),
            Self::Right(b) => b
                .summarize(batch, locale)
                .await
                .map_err(|e| boxed(e.into())),
        }
    }

    async fn summarize_many(
        &self,
        batches: &[&Batch],
        locale: Locale,
    ) -> Vec<Result<Summary, EitherError>> {
        fn boxed<E: std::error::Error + Send + Sync + 'static>(
            results: Vec<Result<Summary, E>>,
        ) -> Vec<Result<Summary, EitherError>> {
            results
                .into_iter()
                .map(|result| {
                    result.map_err(|err| EitherError {
                        retryable: false,
                        source: err.into(),
                    })
                })
                .collect()
        }
        match self {
            Self::Left(a) => boxed(a.summarize_many(batches, locale).await),
            Self::Right(b) => boxed(b.summarize_many(batches, locale).await),
        }
    }
}

impl<A, B> Notifier for Either<A, B>
where
    A: Notifier + Sync,
    B: Notifier + Sync,
{
    type Error = EitherError;

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, EitherError> {
        match self {
            Self::Left(a) => a.deliver(delivery).await.map_err(EitherError::from),
            Self::Right(b) => b.deliver(delivery).await.map_err(EitherError::from),
        }
    }

    fn threads(&self) -> bool {
        match self {
            Self::Left(a) => a.threads(),
            Self::Right(b) => b.threads(),
        }
    }

    async fn update(&self, receipt: &Receipt, delivery: &Delivery) -> Result<(), EitherError> {
        match self {
            Self::Left(a) => a.update(receipt, delivery).await.map_err(EitherError::from),
            Self::Right(b) => b.update(receipt, delivery).await.map_err(EitherError::from),
        }
    }
}
