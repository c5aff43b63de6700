//! `trailwatch-lambda`: the Lambda entry point (`bootstrap` after `cargo lambda build`).
//! Kinesis batches from an EventBridge Pipe or an event-source mapping, and scheduled ticks.

use std::process::ExitCode;

use trailwatch::app::lambda::{from_env, serve};
use trailwatch::config::env;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env(env::LOG).unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(trailwatch::config::DEFAULT_LAMBDA_LOG)
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "Cannot start the async runtime.");
            return ExitCode::FAILURE;
        }
    };
    let handler = match runtime.block_on(from_env(&|key| std::env::var(key).ok())) {
        Ok(handler) => handler,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "Invalid configuration.");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(handler)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "Lambda runtime stopped.");
            ExitCode::FAILURE
        }
    }
}
