//! Replay's audit and Slack output on every fixture and on the shared corpus, pinned by a
//! checked-in digest (`fixtures/output-digests.txt`): a change that should not move the output
//! (streaming, speed work) is checked to leave it byte for byte.
//!
//! A change that means to move the output regenerates the file and says why in its commit:
//! `TRAILWATCH_UPDATE_DIGESTS=1 cargo test --test output_digest`.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

/// A fixed wall clock: replay reads it to tell future-dated events, so the output depends on it.
const NOW: &str = "2026-12-01T00:00:00Z";

const DIGESTS: &str = "fixtures/output-digests.txt";

/// Every input replayed: each fixture file, each fixture folder whole (but `dynamo`), each corpus
/// folder.
fn inputs() -> Vec<(String, PathBuf)> {
    let root = common::root();
    let mut inputs = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(root.join("fixtures"))
        .unwrap_or_else(|err| panic!("fixtures: {err}"))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let data = [".jsonl", ".json", ".json.gz"]
            .iter()
            .any(|ext| name.ends_with(ext))
            && !name.starts_with("expected")
            && name != "config.toml";
        // fixtures/dynamo holds DynamoDB items for tests/dynamo.rs, not replay input.
        if (path.is_dir() && name != "dynamo") || data {
            inputs.push((format!("fixtures/{name}"), path));
        }
    }
    if let Some(corpus) = common::corpus() {
        for name in ["panther", "sans-lab", "stratus-red-team", "traildiscover"] {
            inputs.push((format!("corpus/{name}"), corpus.join(name)));
        }
    }
    inputs
}

fn replay(input: &Path, format: &str) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["replay", "--now", NOW, "--format", format])
        .arg(input)
        .env_remove("TRAILWATCH_CONFIG")
        .output()
        .unwrap_or_else(|err| panic!("trailwatch: {err}"));
    assert!(
        out.status.success(),
        "replay {} --format {format}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn audit_and_slack_output_match_the_checked_in_digests() {
    let mut lines = String::new();
    for (name, path) in inputs() {
        for format in ["audit", "slack"] {
            let digest = Sha256::digest(replay(&path, format));
            let hex: String = digest.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
            let _ = writeln!(lines, "{hex}  {format}  {name}");
        }
    }
    let path = common::root().join(DIGESTS);
    if std::env::var_os("TRAILWATCH_UPDATE_DIGESTS").is_some() {
        std::fs::write(&path, &lines).unwrap_or_else(|err| panic!("{DIGESTS}: {err}"));
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{DIGESTS}: {err}"));
    let mut differ = Vec::new();
    for line in lines.lines() {
        let key = line.split_once("  ").map_or(line, |(_, rest)| rest);
        match stored
            .lines()
            .find(|l| l.split_once("  ").is_some_and(|(_, rest)| rest == key))
        {
            Some(old) if old == line => {}
            Some(_) => differ.push(format!("changed: {key}")),
            // A clone without the shared corpus checks the fixtures alone.
            None => differ.push(format!("not in {DIGESTS}: {key}")),
        }
    }
    assert!(
        differ.is_empty(),
        "replay output moved:\n{}\nIf the change means to move it, regenerate with \
         `TRAILWATCH_UPDATE_DIGESTS=1 cargo test --test output_digest` and say why in the commit",
        differ.join("\n")
    );
}
