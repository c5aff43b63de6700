//! Every file of `../shared/corpus` replays without panic, and the stats add up.

mod common;

use chrono_tz::UTC;
use common::{corpus, replay_files, settings};
use trailwatch::summary::Lang;

#[test]
fn corpus_replays_and_stats_add_up() {
    let Some(dir) = corpus() else {
        return;
    };
    let mut files = Vec::new();
    for sub in ["panther", "stratus-red-team", "traildiscover"] {
        for entry in std::fs::read_dir(dir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            files.push(entry.path());
        }
    }
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in &files {
        let replayed = replay_files(&[file], settings(Lang::En, UTC));
        let s = replayed.stats;
        assert!(s.read > 0, "{}", file.display());
        assert_eq!(
            s.read,
            s.decoded + s.quarantined,
            "{}: {s:?}",
            file.display()
        );
        assert_eq!(
            s.decoded,
            s.matched + s.ignored + s.unmatched + s.duplicates,
            "{}: {s:?}",
            file.display()
        );
        // Every matched event is in exactly one delivery (an immediate alert, a digest, a
        // reminder or a thread reply), or counted below its rule's threshold.
        let mut ids: Vec<String> = replayed
            .deliveries
            .iter()
            .flat_map(|d| d.batch.events.iter().map(|e| e.event.id.to_string()))
            .collect();
        let reported = s.matched - s.below_threshold;
        assert_eq!(ids.len() as u64, reported, "{}", file.display());
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len() as u64,
            reported,
            "{}: an event posted twice",
            file.display()
        );
        eprintln!("{}: {s:?}", file.display());
    }
}
