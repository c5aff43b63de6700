//! A destination is one `Notifier` that renders the neutral `Delivery` its own way: this file
//! adds a plain-text one (no Slack blocks anywhere) and runs the real engine into it. Nothing
//! in the engine, the ports or the other adapters had to change for it.

mod common;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Mutex;

use common::{fixture, settings};
use trailwatch::adapters::memory::MemoryStore;
use trailwatch::engine::Engine;
use trailwatch::ports::{Delivery, Notifier, Receipt};
use trailwatch::rules::RulePack;
use trailwatch::summary::{Lang, OfflineSummarizer};
use trailwatch::window::EventTimeClock;

/// One line per delivery, then one line per event: what a pager or a log sink would take.
#[derive(Default)]
struct PlainText {
    out: Mutex<String>,
}

impl Notifier for PlainText {
    type Error = Infallible;

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, Infallible> {
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let batch = &delivery.batch;
        let _ = writeln!(
            out,
            "[{}] {} {}",
            delivery.severity,
            batch.account_label(),
            delivery.summary.headline
        );
        for e in &batch.events {
            let _ = writeln!(
                out,
                "  {} {} by {} ({}) via {}",
                e.event.time.format("%H:%M:%S"),
                e.event.name,
                e.actor.principal.describe(),
                e.actor.principal.kind.as_str(),
                e.actor.tool_label()
            );
        }
        Ok(Receipt::default())
    }
}

#[tokio::test]
async fn a_plain_text_destination_is_one_notifier() {
    let settings = settings(Lang::En, chrono_tz::UTC);
    let mut engine = Engine::new(
        RulePack::builtin(),
        settings.clone(),
        MemoryStore::new(settings.window),
        OfflineSummarizer,
        PlainText::default(),
        EventTimeClock::default(),
    );
    let bytes = std::fs::read(fixture("multi-account.jsonl")).unwrap_or_else(|e| panic!("{e}"));
    engine
        .ingest_bytes(&bytes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    engine.flush_all().await.unwrap_or_else(|e| panic!("{e}"));
    let stats = engine.stats();
    let out = engine.notifier.out.into_inner().unwrap_or_default();

    let heads = out.lines().filter(|l| l.starts_with('[')).count();
    let events = out.lines().filter(|l| l.starts_with("  ")).count();
    assert_eq!(
        u64::try_from(heads).unwrap_or(0),
        stats.top_level + stats.replies
    );
    assert_eq!(
        events as u64,
        stats.matched - stats.below_threshold,
        "{out}"
    );
    assert!(out.contains("[red] 111111111111 (A계정)"), "{out}");
    assert!(
        out.contains("ScheduleKeyDeletion by jane.doe@example.com (SSO) (person) via console"),
        "{out}"
    );
    assert!(
        !out.contains("\"blocks\""),
        "no Slack payload reached this destination"
    );
}
