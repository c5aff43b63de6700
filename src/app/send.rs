//! `trailwatch send`: put CloudTrail events on a Kinesis stream as EventBridge would.

use std::path::Path;

use anyhow::Context as _;

use super::SendArgs;
use crate::adapters::kinesis::{Entry, Kinesis};
use crate::event::{Decoded, decode_bytes};

/// Kinesis entries for every CloudTrail event and heartbeat in `bytes`, matched by a rule or not: the
/// EventBridge envelope as data, the account as partition key. Returns how many records
/// could not be decoded (they are not sent).
pub fn entries(bytes: &[u8], out: &mut Vec<Entry>) -> u64 {
    let mut quarantined = 0;
    decode_bytes(bytes, &mut |decoded| match decoded {
        Decoded::Record(record) => out.push(Entry {
            partition_key: record.account().to_owned(),
            data: record.envelope_json().into_owned().into_bytes(),
        }),
        Decoded::Quarantined(_) => quarantined += 1,
        Decoded::Heartbeat(beat) => out.push(Entry {
            partition_key: beat.account.to_string(),
            data: beat.envelope_json().into_bytes(),
        }),
        Decoded::Skipped(_) => {}
    });
    quarantined
}

pub async fn send(args: SendArgs) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut quarantined = 0;
    for file in &args.files {
        let bytes = read_input(file)?;
        quarantined += entries(&bytes, &mut all);
    }
    let kinesis = Kinesis::from_env().await;
    let report = kinesis
        .put_records(&args.stream, &all)
        .await
        .with_context(|| format!("sending to stream {}", args.stream))?;
    eprintln!(
        "send: records={} quarantined={quarantined} requests={} retried={}",
        report.records, report.requests, report.retried
    );
    Ok(())
}

/// A file's bytes, or standard input's for `-`.
fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("reading stdin")?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
