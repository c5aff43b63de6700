//! Replay's output does not depend on the order of its input: files in any order, records in
//! any order within and across files, sorted in memory or through spilled runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::{fixture, settings};
use proptest::prelude::*;
use trailwatch::adapters::memory::{CollectingNotifier, MemoryStore};
use trailwatch::app::{Format, ingest_in_order, render};
use trailwatch::engine::Engine;
use trailwatch::rules::RulePack;
use trailwatch::summary::{Lang, OfflineSummarizer};
use trailwatch::window::EventTimeClock;

/// JSON Lines fixtures whose records are shuffled: several accounts, a burst, a late event,
/// duplicates (some with differing content), planted secrets, hostile text, a broken line.
const FILES: [&str; 8] = [
    "multi-account.jsonl",
    "terraform-burst.jsonl",
    "late-event.jsonl",
    "root-login-no-mfa.jsonl",
    "duplicates.jsonl",
    "secrets.jsonl",
    "hostile-text.jsonl",
    "malformed.jsonl",
];

fn records() -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for name in FILES {
        let text = std::fs::read(fixture(name)).unwrap_or_else(|err| panic!("{name}: {err}"));
        lines.extend(
            text.split(|&b| b == b'\n')
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
                .map(<[u8]>::to_vec),
        );
    }
    lines
}

/// The audit replay writes for `inputs`, sorted with at most `run_size` events in memory,
/// spilling into `dir`.
fn audit(inputs: &[Vec<u8>], run_size: usize, dir: &Path) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|err| panic!("{err}"));
    runtime.block_on(async {
        let settings = settings(Lang::En, chrono_tz::UTC);
        let mut engine = Engine::new(
            RulePack::builtin(),
            settings.clone(),
            MemoryStore::new(settings.window),
            OfflineSummarizer,
            CollectingNotifier::default(),
            EventTimeClock::default(),
        );
        let named = inputs.iter().enumerate().map(|(n, bytes)| {
            Ok(trailwatch::app::Input {
                name: format!("input-{n}"),
                bytes: bytes.clone(),
            })
        });
        ingest_in_order(&mut engine, named, run_size, dir)
            .await
            .unwrap_or_else(|err| panic!("{err:#}"));
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(engine.stats().late, 0, "sorted input has no late event");
        render(&engine.notifier.take(), Format::Audit).unwrap_or_else(|err| panic!("{err}"))
    })
}

/// `records` joined as JSON Lines files, cut before each index in `cuts`.
fn files(records: &[Vec<u8>], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for (i, record) in records.iter().enumerate() {
        if cuts.contains(&i) {
            out.push(Vec::new());
        }
        let file = out.last_mut().unwrap_or_else(|| unreachable!());
        file.extend_from_slice(record);
        file.push(b'\n');
    }
    out
}

fn reference() -> String {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let all = records();
    audit(&files(&all, &[]), usize::MAX, dir.path())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_order_of_files_and_records_gives_the_same_audit(
        shuffled in Just(records()).prop_shuffle(),
        cuts in proptest::collection::vec(0usize..400, 0..6),
        run_size in prop_oneof![Just(usize::MAX), 1usize..40],
    ) {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        let got = audit(&files(&shuffled, &cuts), run_size, dir.path());
        prop_assert_eq!(got, reference());
    }
}

#[test]
fn spilled_runs_are_redacted_private_and_give_the_same_output() {
    let all = records();
    let mut reversed = all.clone();
    reversed.reverse();
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let got = audit(&files(&reversed, &[7, 30]), 3, dir.path());
    assert_eq!(got, reference());

    let runs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap_or_else(|err| panic!("{err}"))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        runs.len() > 10,
        "{} runs: the spill was not forced",
        runs.len()
    );
    let mut spilled = String::new();
    for run in &runs {
        spilled.push_str(&std::fs::read_to_string(run).unwrap_or_else(|err| panic!("{err}")));
    }
    assert!(spilled.contains("\"event\""), "runs hold events");
    let planted = std::fs::read_to_string(fixture("secrets.planted.txt"))
        .unwrap_or_else(|err| panic!("{err}"));
    let mut checked = 0;
    for secret in planted.lines().map(str::trim).filter(|s| !s.is_empty()) {
        checked += 1;
        assert!(
            !spilled.contains(secret),
            "a planted secret reached a spill file: {secret}"
        );
    }
    assert!(checked > 5, "{checked} secrets checked");
}

#[cfg(unix)]
#[test]
fn the_spill_folder_is_private_and_gone_after_the_command() {
    use std::os::unix::fs::PermissionsExt as _;

    let tmp = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let out = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["replay", "--format", "audit", "--sort-run-size", "2"])
        .arg(fixture("secrets.jsonl"))
        .arg(fixture("multi-account.jsonl"))
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap_or_else(|err| panic!("{err}"))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // While it exists, the folder is the owner's alone.
    let held = trailwatch::adapters::spill::spill_dir().unwrap_or_else(|err| panic!("{err}"));
    let mode = std::fs::metadata(held.path())
        .unwrap_or_else(|err| panic!("{err}"))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// Interrupted while it sorts a large input, replay removes its spilled runs and exits 130.
#[cfg(unix)]
#[test]
fn an_interrupted_replay_leaves_no_spill_behind() {
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    let tmp = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
    let input = tmp.path().join("big.jsonl");
    let burst = std::fs::read(fixture("terraform-burst.jsonl")).unwrap_or_else(|e| panic!("{e}"));
    {
        let mut out = std::fs::File::create(&input).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..400 {
            out.write_all(&burst).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let spill_parent = tmp.path().join("tmp");
    std::fs::create_dir(&spill_parent).unwrap_or_else(|e| panic!("{e}"));
    // Each file is read again and again: the replay keeps sorting while the test watches.
    let child = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["replay", "--format", "audit", "--sort-run-size", "100"])
        .args(std::iter::repeat_n(&input, 50))
        .env("TMPDIR", &spill_parent)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let spilled = loop {
        let runs: usize = std::fs::read_dir(&spill_parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|dir| std::fs::read_dir(dir.path()).ok())
            .map(Iterator::count)
            .sum();
        if runs > 0 || started.elapsed() > Duration::from_mins(1) {
            break runs;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(spilled > 0, "no run was spilled within a minute");
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(killed.success());
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    let left: Vec<_> = std::fs::read_dir(&spill_parent)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
