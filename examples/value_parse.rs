//! The baseline of replay's speed: a plain `serde_json::Value` parse of the same input, as a
//! whole process (`benches/replay.sh` runs both). Files and folders as replay takes them;
//! gzip is inflated (flate2, the same backend replay uses); JSON Lines are parsed line by
//! line, anything else as one document.
//!
//! ```sh
//! cargo run --release --example value_parse -- ../shared/corpus/sans-lab
//! ```

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            files(&entry, out)?;
        }
    } else {
        out.push(path.to_owned());
    }
    Ok(())
}

/// Records parsed in `bytes`: each line of JSON Lines, or the one document (its `Records`
/// when it is a CloudTrail log file).
fn parse(bytes: &[u8]) -> usize {
    let mut lines = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty());
    let first = lines.next().unwrap_or_default();
    let json_lines =
        lines.next().is_some() && serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok();
    if json_lines {
        return bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.trim_ascii().is_empty())
            .filter(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok())
            .count();
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(value) => value
            .get("Records")
            .and_then(serde_json::Value::as_array)
            .map_or(1, Vec::len),
        Err(_) => 0,
    }
}

fn main() -> std::io::Result<()> {
    let mut paths = Vec::new();
    for arg in std::env::args_os().skip(1) {
        files(Path::new(&arg), &mut paths)?;
    }
    let started = Instant::now();
    let (mut bytes, mut records) = (0usize, 0usize);
    // Time in each phase, summed over files: reading the file, inflating it, parsing it.
    let (mut read_s, mut inflate_s, mut parse_s) = (0.0, 0.0, 0.0);
    for path in &paths {
        let phase = Instant::now();
        let raw = std::fs::read(path)?;
        read_s += phase.elapsed().as_secs_f64();
        let phase = Instant::now();
        let text = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut inflated = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut inflated)?;
            inflated
        } else {
            raw
        };
        inflate_s += phase.elapsed().as_secs_f64();
        bytes += text.len();
        let phase = Instant::now();
        records += parse(&text);
        parse_s += phase.elapsed().as_secs_f64();
    }
    let seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // A rate for people to read.
    let rate = records as f64 / seconds.max(1e-9);
    println!(
        "value_parse: files={} bytes={bytes} records={records} elapsed={seconds:.3}s \
         read={read_s:.3}s inflate={inflate_s:.3}s parse={parse_s:.3}s records/s={rate:.0}",
        paths.len()
    );
    Ok(())
}
