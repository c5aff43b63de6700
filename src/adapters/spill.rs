//! Matched events in event-time order, whatever order they arrived in, in bounded memory: the
//! standard external sort. Events are kept in memory up to a run size; a full run is sorted and
//! written ("spilled") as JSON Lines to a private temporary folder, and the runs are merged at
//! the end. Replay uses it so that its output does not depend on the order of its input.
//!
//! The events are decoded, matched and redacted before they get here: a spill file holds what a
//! Slack message may show, never a raw record. The runs go into a folder the caller owns:
//! [`spill_dir`] makes a private one (mode 0700) that is removed when dropped; replay also
//! removes it on an interrupt.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::window::BatchEvent;

/// Events per sorted run by default: about 50 MB of decoded events at most in memory.
pub const DEFAULT_RUN_SIZE: usize = 50_000;

/// Spilling or merging a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("cannot write sorted run {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read sorted run {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sorted run {path} holds an event that does not decode")]
    Decode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The replay order: event time, then event id, then the event's whole content, so that two
/// copies of one event id sort the same way whichever arrived first. Never arrival order.
pub fn event_order(a: &BatchEvent, b: &BatchEvent) -> Ordering {
    (a.event.time, &a.event.id)
        .cmp(&(b.event.time, &b.event.id))
        .then_with(|| content(a).cmp(&content(b)))
}

/// The serialised event, for the last tie-break (equal time and id: rare, so not cached).
fn content(event: &BatchEvent) -> Vec<u8> {
    serde_json::to_vec(event).unwrap_or_default()
}

/// A private temporary folder for sorted runs (`trailwatch-sort-*` under the system's
/// temporary folder, mode 0700 on Unix), removed with everything in it when dropped.
pub fn spill_dir() -> std::io::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("trailwatch-sort-");
    // Created with this mode, not changed after: no moment where others could list it.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
    builder.tempdir()
}

/// Collects events and hands them back in [`event_order`].
#[derive(Debug)]
pub struct EventSorter {
    run_size: usize,
    buffer: Vec<BatchEvent>,
    dir: PathBuf,
    runs: Vec<PathBuf>,
}

impl EventSorter {
    /// A sorter that keeps at most `run_size` events in memory (at least one) and spills
    /// sorted runs into `dir` (see [`spill_dir`]).
    pub fn new(run_size: usize, dir: &Path) -> Self {
        Self {
            run_size: run_size.max(1),
            buffer: Vec::new(),
            dir: dir.to_owned(),
            runs: Vec::new(),
        }
    }

    /// Runs written so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Add events; a full run is sorted and spilled.
    pub fn extend(
        &mut self,
        events: impl IntoIterator<Item = BatchEvent>,
    ) -> Result<(), SpillError> {
        for event in events {
            self.buffer.push(event);
            if self.buffer.len() >= self.run_size {
                self.spill()?;
            }
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), SpillError> {
        self.buffer.sort_by(event_order);
        let path = self.dir.join(format!("run-{:06}.jsonl", self.runs.len()));
        let write = |path: &Path, events: &[BatchEvent]| -> std::io::Result<()> {
            let mut out = BufWriter::new(File::create(path)?);
            for event in events {
                serde_json::to_writer(&mut out, event)?;
                out.write_all(b"\n")?;
            }
            out.into_inner()
                .map_err(std::io::IntoInnerError::into_error)?
                .sync_all()
        };
        write(&path, &self.buffer).map_err(|source| SpillError::Write {
            path: path.clone(),
            source,
        })?;
        self.buffer.clear();
        self.runs.push(path);
        Ok(())
    }

    /// Every event added, in [`event_order`].
    pub fn finish(mut self) -> Result<Sorted, SpillError> {
        if self.runs.is_empty() {
            self.buffer.sort_by(event_order);
            return Ok(Sorted::Memory(self.buffer.into_iter()));
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        let mut readers = Vec::with_capacity(self.runs.len());
        let mut heap = BinaryHeap::with_capacity(self.runs.len());
        for (index, path) in self.runs.iter().enumerate() {
            let file = File::open(path).map_err(|source| SpillError::Read {
                path: path.clone(),
                source,
            })?;
            let mut reader = RunReader {
                path: path.clone(),
                lines: BufReader::new(file),
                line: String::new(),
            };
            if let Some(event) = reader.next_event()? {
                heap.push(Reverse(Head { event, run: index }));
            }
            readers.push(reader);
        }
        Ok(Sorted::Merge(Merge { readers, heap }))
    }
}

/// Events in [`event_order`]: from memory, or merged from spilled runs.
#[derive(Debug)]
pub enum Sorted {
    Memory(std::vec::IntoIter<BatchEvent>),
    Merge(Merge),
}

impl Iterator for Sorted {
    type Item = Result<BatchEvent, SpillError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Memory(events) => events.next().map(Ok),
            Self::Merge(merge) => merge.next(),
        }
    }
}

/// A k-way merge of sorted runs.
#[derive(Debug)]
pub struct Merge {
    readers: Vec<RunReader>,
    heap: BinaryHeap<Reverse<Head>>,
}

impl Iterator for Merge {
    type Item = Result<BatchEvent, SpillError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Reverse(Head { event, run }) = self.heap.pop()?;
        match self.readers[run].next_event() {
            Ok(Some(next)) => self.heap.push(Reverse(Head { event: next, run })),
            Ok(None) => {}
            Err(err) => return Some(Err(err)),
        }
        Some(Ok(event))
    }
}

#[derive(Debug)]
struct RunReader {
    path: PathBuf,
    lines: BufReader<File>,
    line: String,
}

impl RunReader {
    fn next_event(&mut self) -> Result<Option<BatchEvent>, SpillError> {
        self.line.clear();
        let read = self
            .lines
            .read_line(&mut self.line)
            .map_err(|source| SpillError::Read {
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(None);
        }
        serde_json::from_str(&self.line)
            .map(Some)
            .map_err(|source| SpillError::Decode {
                path: self.path.clone(),
                source,
            })
    }
}

/// The next event of one run; ties between runs go to the lower run (stable merge).
#[derive(Debug)]
struct Head {
    event: BatchEvent,
    run: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        event_order(&self.event, &other.event).then(self.run.cmp(&other.run))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}
