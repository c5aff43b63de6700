//! `trailwatch replay`: CloudTrail files through the same engine, with embedded defaults.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;

use super::{Format, ReplayArgs, load_rules};
use crate::adapters::memory::{CollectingNotifier, MemoryStore};
use crate::config::Settings;
use crate::engine::{Engine, Stats};
use crate::ports::Delivery;
use crate::render::{audit::audit_line, html::preview, slack::SlackMessage, text::text};
use crate::summary::OfflineSummarizer;
use crate::window::EventTimeClock;

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let mut settings = Settings::load(args.config.as_deref(), &|key| std::env::var(key).ok())?;
    settings.set_locale(args.lang.as_deref(), args.tz.as_deref(), "--lang", "--tz")?;
    let rules = load_rules(args.rules.as_deref())?;
    let store = MemoryStore::new(settings.window);
    let mut engine = Engine::new(
        rules,
        settings,
        store,
        OfflineSummarizer,
        CollectingNotifier::default(),
        EventTimeClock::default(),
    );
    let started = Instant::now();
    for file in &args.files {
        let bytes = read_input(file)?;
        engine.ingest_bytes(&bytes).await?;
    }
    engine.flush_all().await?;
    let elapsed = started.elapsed();
    let deliveries = engine.notifier.take();
    let output = render(&deliveries, args.format)?;
    write_output(args.out.as_deref(), &output)?;
    if let Some(path) = &args.quarantine {
        write_quarantine(path, &engine)?;
    }
    eprintln!("{}", stats_line(&engine.stats(), elapsed.as_secs_f64()));
    Ok(())
}

pub(super) fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("reading stdin")?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Render the deliveries in the chosen format.
pub fn render(deliveries: &[Delivery], format: Format) -> anyhow::Result<String> {
    let messages: Vec<SlackMessage> = deliveries
        .iter()
        .flat_map(|d| d.messages.iter().cloned())
        .collect();
    Ok(match format {
        Format::Slack => {
            let mut out = serde_json::to_string_pretty(&messages)?;
            out.push('\n');
            out
        }
        Format::Html => preview(&messages, "trailwatch replay"),
        Format::Text => text(&messages),
        Format::Audit => {
            let mut out = String::new();
            for delivery in deliveries {
                out.push_str(&serde_json::to_string(&audit_line(
                    &delivery.batch,
                    &delivery.summary,
                ))?);
                out.push('\n');
            }
            out
        }
    })
}

fn write_output(path: Option<&Path>, output: &str) -> anyhow::Result<()> {
    if let Some(path) = path {
        return std::fs::write(path, output)
            .with_context(|| format!("cannot write {}", path.display()));
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(output.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn write_quarantine<S, M, N, C>(path: &Path, engine: &Engine<S, M, N, C>) -> anyhow::Result<()> {
    let mut out = String::new();
    for record in engine.quarantined() {
        out.push_str(&serde_json::to_string(record)?);
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// The one stats line `replay` prints on exit.
pub fn stats_line(stats: &Stats, seconds: f64) -> String {
    #[allow(clippy::cast_precision_loss)] // A rate for people to read.
    let rate = if seconds > 0.0 {
        stats.read as f64 / seconds
    } else {
        0.0
    };
    format!(
        "replay: read={} decoded={} quarantined={} matched={} ignored={} unmatched={} duplicates={} late={} immediate={} batches={} elapsed={seconds:.3}s events/s={rate:.0}",
        stats.read,
        stats.decoded,
        stats.quarantined,
        stats.matched,
        stats.ignored,
        stats.unmatched,
        stats.duplicates,
        stats.late,
        stats.immediate,
        stats.batches,
    )
}
