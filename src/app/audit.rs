//! `trailwatch audit`: the batches sent, from the DynamoDB table's audit items.

use std::io::Write as _;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::AuditArgs;
use crate::adapters::dynamo::{DynamoSettings, DynamoStore};
use crate::adapters::system_clock::SystemClock;
use crate::window::{Clock as _, WindowConfig};

/// `--since`: an RFC 3339 time, or a duration back from now (`24h`, `7d`).
pub fn parse_since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    let span = humantime::parse_duration(text).with_context(|| {
        format!("--since: expected a time like 2026-11-02T00:00:00Z or a duration like 24h, found {text:?}")
    })?;
    let span = chrono::TimeDelta::from_std(span).context("--since: duration too long")?;
    Ok(now
        .checked_sub_signed(span)
        .unwrap_or(DateTime::<Utc>::MIN_UTC))
}

/// Print one JSON line per sent batch whose window started at or after `--since`.
pub async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let since = parse_since(&args.since, now)?;
    let client = DynamoStore::client_from_env().await;
    let store = DynamoStore::new(
        client,
        DynamoSettings::new(&args.table, WindowConfig::default()),
    );
    let records = store
        .audit(since, now)
        .await
        .with_context(|| format!("cannot read the audit of table {}", args.table))?;
    let mut stdout = std::io::stdout().lock();
    for record in records {
        serde_json::to_writer(&mut stdout, &record)?;
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration() {
        let now: DateTime<Utc> = "2026-11-02T12:00:00Z".parse().unwrap_or_default();
        assert_eq!(
            parse_since("24h", now).ok(),
            "2026-11-01T12:00:00Z".parse().ok()
        );
        assert_eq!(
            parse_since("2026-11-02T03:00:00+09:00", now).ok(),
            "2026-11-01T18:00:00Z".parse().ok()
        );
        assert!(parse_since("yesterday", now).is_err());
    }
}
