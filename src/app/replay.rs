//! `trailwatch replay`: CloudTrail files through the same engine, with embedded defaults.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::{Format, ReplayArgs, SummarizerArg, load_rules};
#[cfg(feature = "cloud")]
use crate::adapters::bedrock::{BedrockConfig, BedrockSummarizer};
use crate::adapters::memory::{CollectingNotifier, MemoryStore};
#[cfg(feature = "cloud")]
use crate::adapters::retry::TokioSleeper;
#[cfg(feature = "cloud")]
use crate::adapters::slack::{Credential, RetryPolicy, SlackNotifier};
use crate::adapters::spill::{EventSorter, spill_dir};
use crate::adapters::system_clock::SystemClock;
#[cfg(feature = "cloud")]
use crate::config::SlackRoutes;
use crate::config::{Settings, SummarizerKind};
use crate::engine::{Engine, Stats};
use crate::ports::{Clock, Delivery, Notifier, Receipt, Store};
use crate::render::{html::preview, slack::SlackMessage, slack::render_batch, text::text};
use crate::rules::RulePack;
#[cfg(feature = "cloud")]
use crate::secret::Secret;
use crate::summary::{OfflineSummarizer, Summarizer};
use crate::window::EventTimeClock;

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let mut settings = Settings::load(args.config.as_deref(), &|key| std::env::var(key).ok())?;
    settings.set_locale(args.lang.as_deref(), args.tz.as_deref(), "--lang", "--tz")?;
    match args.summarizer {
        Some(SummarizerArg::Offline) => settings.set_summarizer("offline", "--summarizer")?,
        Some(SummarizerArg::Bedrock) => settings.set_summarizer("bedrock", "--summarizer")?,
        None => {}
    }
    if let Some(model) = args.model.as_deref().filter(|m| !m.trim().is_empty()) {
        settings.summary.model_id = model.trim().to_owned();
    }
    let rules = load_rules(args.rules.as_deref(), &settings.rules.packs())?;
    match settings.summary.summarizer {
        SummarizerKind::Offline => Box::pin(run(args, settings, rules, OfflineSummarizer)).await,
        #[cfg(feature = "cloud")]
        SummarizerKind::Bedrock => {
            let config = BedrockConfig::from_settings(&settings.summary);
            let summarizer = BedrockSummarizer::from_environment(config).await;
            Box::pin(run(args, settings, rules, summarizer)).await
        }
        #[cfg(not(feature = "cloud"))]
        SummarizerKind::Bedrock => Err(super::needs_cloud("the Bedrock summarizer")),
    }
}

async fn run<M: Summarizer + Sync>(
    args: ReplayArgs,
    settings: Settings,
    rules: RulePack,
    summarizer: M,
) -> anyhow::Result<()> {
    let format = args
        .format
        .unwrap_or_else(|| default_format(args.out.as_deref()));
    let slack = slack_notifier(&args, &settings)?;
    let store = MemoryStore::without_audit(settings.window);
    let clock = EventTimeClock::with_wall(args.now.unwrap_or_else(|| SystemClock.now()));
    let started = Instant::now();
    // Written as it is made when no delivery can change afterwards (offline summaries, nothing
    // posted to Slack) and the format needs no later message to write an earlier one (HTML
    // puts a thread's replies under its first message): memory then does not grow with the
    // output.
    let stream = match format {
        Format::Slack => Some(StreamFormat::Slack),
        Format::Audit => Some(StreamFormat::Audit),
        Format::Text => Some(StreamFormat::Text),
        Format::Html => None,
    }
    .filter(|_| slack.is_none() && settings.summary.summarizer == SummarizerKind::Offline);
    if let Some(stream) = stream {
        let notifier = StreamingNotifier {
            out: std::sync::Mutex::new(StreamOutput::open(args.out.as_deref(), stream)?),
            threads: !args.no_threads,
        };
        let mut engine = Engine::new(rules, settings, store, summarizer, notifier, clock);
        feed(&mut engine, &args).await?;
        engine.flush_all().await?;
        let elapsed = started.elapsed();
        engine.notifier.finish()?;
        return finish(&args, &engine, elapsed);
    }
    let notifier = ReplayNotifier {
        collected: if args.no_threads {
            CollectingNotifier::without_threads()
        } else {
            CollectingNotifier::default()
        },
        slack,
    };
    let mut engine = Engine::new(rules, settings, store, summarizer, notifier, clock);
    feed(&mut engine, &args).await?;
    engine.flush_all().await?;
    let elapsed = started.elapsed();
    let deliveries = once_each(engine.notifier.collected.take());
    let output = render(&deliveries, format)?;
    write_output(args.out.as_deref(), &output)?;
    finish(&args, &engine, elapsed)
}

/// Read the inputs into the engine: in event order through the external sort, or as they
/// arrive (`--as-arrived`).
async fn feed<S, M, N, C>(engine: &mut Engine<S, M, N, C>, args: &ReplayArgs) -> anyhow::Result<()>
where
    S: Store + Sync,
    M: Summarizer + Sync,
    N: Notifier,
    C: Clock,
{
    let files = input_files(&args.files)?;
    let inputs = files.iter().flat_map(|file| InputChunks::new(file));
    if args.as_arrived {
        return ingest_as_arrived(engine, inputs).await;
    }
    let dir = spill_dir().context("cannot create a private temporary folder for sorting")?;
    remove_on_interrupt(dir.path().to_owned());
    ingest_in_order(engine, inputs, args.sort_run_size, dir.path()).await
}

/// The quarantine file, the stats line, and the exit status once the output is written.
fn finish<S, M, N, C>(
    args: &ReplayArgs,
    engine: &Engine<S, M, N, C>,
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    if let Some(path) = &args.quarantine {
        write_quarantine(path, engine)?;
    }
    let stats = engine.stats();
    eprintln!("{}", stats_line(&stats, elapsed.as_secs_f64()));
    if stats.send_failures > 0 {
        anyhow::bail!(
            "{} batch(es) could not be posted to Slack (see the warnings above)",
            stats.send_failures
        );
    }
    Ok(())
}

/// The formats replay writes as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamFormat {
    Slack,
    Audit,
    Text,
}

/// Writes each delivery as the engine makes it and keeps none. An offline summary never
/// changes after the delivery is made, so `update` has nothing to write.
struct StreamingNotifier {
    out: std::sync::Mutex<StreamOutput>,
    threads: bool,
}

impl StreamingNotifier {
    /// Close the output (the Slack JSON array's end) and report a write that failed.
    fn finish(&self) -> anyhow::Result<()> {
        self.out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .finish()
    }
}

impl Notifier for StreamingNotifier {
    type Error = std::convert::Infallible;

    fn threads(&self) -> bool {
        self.threads
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, Self::Error> {
        self.out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .write(delivery);
        Ok(Receipt::default())
    }
}

/// Replay's output as it is written: to a file (`--out`) or standard output, buffered. The bytes
/// are those [`render`] gives for all the deliveries at once (`tests/output_digest.rs`).
struct StreamOutput {
    writer: Box<dyn Write + Send>,
    format: StreamFormat,
    /// Slack messages written so far (the JSON array's separators).
    messages: usize,
    /// The reader closed the pipe (`replay ... | head`): it has all it wanted.
    closed: bool,
    /// A write that failed otherwise; reported at the end.
    failed: Option<std::io::Error>,
}

impl StreamOutput {
    fn open(path: Option<&Path>, format: StreamFormat) -> anyhow::Result<Self> {
        let writer: Box<dyn Write + Send> = match path {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot write {}", path.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout())),
        };
        Ok(Self {
            writer,
            format,
            messages: 0,
            closed: false,
            failed: None,
        })
    }

    fn write(&mut self, delivery: &Delivery) {
        if self.closed || self.failed.is_some() {
            return;
        }
        let written = match self.format {
            StreamFormat::Audit => {
                serde_json::to_writer(&mut self.writer, &delivery.audit(&Receipt::default()))
                    .map_err(std::io::Error::from)
                    .and_then(|()| self.writer.write_all(b"\n"))
            }
            StreamFormat::Text => self
                .writer
                .write_all(text(std::slice::from_ref(delivery)).as_bytes()),
            StreamFormat::Slack => render_batch(delivery)
                .iter()
                .try_for_each(|message| self.slack_message(message)),
        };
        self.settle(written);
    }

    /// One element of the pretty-printed JSON array, as `serde_json::to_string_pretty` writes
    /// it inside the array: its lines indented by two spaces (JSON text holds no raw newline
    /// inside a string, so every newline is a line end).
    fn slack_message(&mut self, message: &SlackMessage) -> std::io::Result<()> {
        let pretty = serde_json::to_string_pretty(message)?;
        let mut out = String::with_capacity(pretty.len() + pretty.len() / 16 + 4);
        out.push_str(if self.messages == 0 { "[\n" } else { ",\n" });
        for (index, line) in pretty.split('\n').enumerate() {
            if index > 0 {
                out.push('\n');
            }
            out.push_str("  ");
            out.push_str(line);
        }
        self.messages += 1;
        self.writer.write_all(out.as_bytes())
    }

    fn settle(&mut self, written: std::io::Result<()>) {
        match written {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => self.closed = true,
            Err(err) => self.failed = Some(err),
        }
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if self.format == StreamFormat::Slack && !self.closed && self.failed.is_none() {
            let end: &[u8] = if self.messages == 0 {
                b"[]\n"
            } else {
                b"\n]\n"
            };
            let written = self.writer.write_all(end);
            self.settle(written);
        }
        if !self.closed && self.failed.is_none() {
            let flushed = self.writer.flush();
            self.settle(flushed);
        }
        match self.failed.take() {
            Some(err) => Err(anyhow::Error::new(err).context("cannot write the output")),
            None => Ok(()),
        }
    }
}

/// Where replay posts when asked: Slack in a build with the `cloud` feature, nowhere otherwise.
#[cfg(feature = "cloud")]
type ReplaySlack = SlackNotifier<TokioSleeper>;
#[cfg(not(feature = "cloud"))]
type ReplaySlack = NoSlack;

/// No Slack: a build without the `cloud` feature cannot make one (uninhabited).
#[cfg(not(feature = "cloud"))]
#[derive(Debug)]
enum NoSlack {}

#[cfg(not(feature = "cloud"))]
impl Notifier for NoSlack {
    type Error = std::convert::Infallible;

    async fn deliver(&self, _: &Delivery) -> Result<Receipt, Self::Error> {
        match *self {}
    }

    async fn update(&self, _: &Receipt, _: &Delivery) -> Result<(), Self::Error> {
        match *self {}
    }
}

type SlackError = <ReplaySlack as Notifier>::Error;

/// Collects every delivery for the output and, when asked, posts it to Slack first: a batch
/// that Slack refused is not in the output either (it stays unsent).
struct ReplayNotifier {
    collected: CollectingNotifier,
    slack: Option<ReplaySlack>,
}

impl Notifier for ReplayNotifier {
    type Error = SlackError;

    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, SlackError> {
        let receipt = match &self.slack {
            Some(slack) => slack.deliver(delivery).await?,
            None => Receipt::default(),
        };
        let _ = self.collected.deliver(delivery).await;
        Ok(receipt)
    }

    /// No threads when `--no-threads` asks for none or the Slack destination has none (a
    /// webhook).
    fn threads(&self) -> bool {
        self.collected.threads() && self.slack.as_ref().is_none_or(Notifier::threads)
    }

    async fn update(&self, receipt: &Receipt, delivery: &Delivery) -> Result<(), SlackError> {
        if let Some(slack) = &self.slack {
            slack.update(receipt, delivery).await?;
        }
        let _ = self.collected.update(receipt, delivery).await;
        Ok(())
    }
}

/// Each delivery once, in the place it first went out, as last delivered: with Slack, a
/// batch whose later part failed is retried, and its earlier parts are delivered again (Slack
/// finds them and does not post them twice; the output must not list them twice either).
fn once_each(deliveries: Vec<Delivery>) -> Vec<Delivery> {
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<Delivery> = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        match at.entry(delivery.key()) {
            std::collections::hash_map::Entry::Occupied(place) => out[*place.get()] = delivery,
            std::collections::hash_map::Entry::Vacant(place) => {
                place.insert(out.len());
                out.push(delivery);
            }
        }
    }
    out
}

/// `--slack-webhook` and `--slack-token` need the `cloud` feature.
#[cfg(not(feature = "cloud"))]
fn slack_notifier(args: &ReplayArgs, _: &Settings) -> anyhow::Result<Option<ReplaySlack>> {
    if args.slack_webhook.is_some() || args.slack_token.is_some() || args.channel.is_some() {
        return Err(super::needs_cloud("posting to Slack"));
    }
    Ok(None)
}

/// The Slack notifier `--slack-webhook` or `--slack-token` asks for, if any.
#[cfg(feature = "cloud")]
fn slack_notifier(
    args: &ReplayArgs,
    settings: &Settings,
) -> anyhow::Result<Option<SlackNotifier<TokioSleeper>>> {
    let credential = match (&args.slack_webhook, &args.slack_token) {
        (Some(_), Some(_)) => anyhow::bail!("give --slack-webhook or --slack-token, not both"),
        (Some(url), None) => match Credential::from_secret(&Secret::new(url.as_str()))? {
            webhook @ Credential::Webhook(_) => webhook,
            Credential::Token(_) => anyhow::bail!("--slack-webhook: expected an https:// URL"),
        },
        (None, Some(token)) => match Credential::from_secret(&Secret::new(token.as_str()))? {
            token @ Credential::Token(_) => token,
            Credential::Webhook(_) => anyhow::bail!("--slack-token: expected a token (xoxb-...)"),
        },
        (None, None) => {
            if args.channel.is_some() {
                anyhow::bail!("--channel needs --slack-token");
            }
            return Ok(None);
        }
    };
    let routes = match &args.channel {
        Some(channel) => SlackRoutes {
            default_channel: Some(channel.clone()),
            ..SlackRoutes::default()
        },
        None => settings.slack.routes.clone(),
    };
    if matches!(credential, Credential::Token(_))
        && routes.default_channel.is_none()
        && routes.accounts.is_empty()
    {
        anyhow::bail!("--slack-token needs --channel, or [slack] routes in the config file");
    }
    let notifier = SlackNotifier::new(
        credential,
        settings.slack.api_url.as_deref(),
        routes,
        RetryPolicy::default(),
        TokioSleeper::default(),
    )?
    .with_deployment(
        settings
            .slack
            .deployment
            .clone()
            .unwrap_or_else(|| "replay".to_owned()),
    );
    Ok(Some(notifier))
}

/// Bytes of JSON Lines handed to the engine at once (whole lines): about the most replay holds
/// of a JSON Lines input, whatever its size.
const LINES_CHUNK: usize = 8 << 20;

/// One input file as the engine takes it: JSON Lines (a plain file or standard input) in runs
/// of whole lines of about [`LINES_CHUNK`] bytes; anything else whole, as its format needs (a
/// gzipped file, a CloudTrail log file `{"Records": [...]}`, one JSON document).
struct InputChunks {
    name: String,
    path: PathBuf,
    reader: Option<Box<dyn std::io::Read>>,
    carry: Vec<u8>,
    first: bool,
    /// [`LINES_CHUNK`], smaller in tests.
    chunk_size: usize,
}

impl InputChunks {
    fn new(path: &Path) -> Self {
        let mut chunks = Self {
            name: path.display().to_string(),
            path: path.to_owned(),
            reader: None,
            carry: Vec::new(),
            first: true,
            chunk_size: LINES_CHUNK,
        };
        if path == Path::new("-") {
            chunks.reader = Some(Box::new(std::io::stdin()));
        }
        chunks
    }

    /// Read up to `want` more bytes into `buf`; `Ok(true)` at the end of the input.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> anyhow::Result<bool> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(true);
        };
        let before = buf.len();
        let limit = u64::try_from(want).unwrap_or(u64::MAX);
        std::io::Read::read_to_end(&mut std::io::Read::take(reader, limit), buf)
            .with_context(|| format!("cannot read {}", self.name))?;
        Ok(buf.len() - before < want)
    }

    fn input(&self, bytes: Vec<u8>) -> Input {
        Input {
            name: self.name.clone(),
            bytes,
        }
    }

    fn chunk(&mut self) -> anyhow::Result<Option<Input>> {
        if self.first && self.reader.is_none() {
            let file = std::fs::File::open(&self.path)
                .with_context(|| format!("cannot read {}", self.path.display()))?;
            self.reader = Some(Box::new(file));
        }
        if self.reader.is_none() {
            return Ok(None);
        }
        let mut buf = std::mem::take(&mut self.carry);
        let want = self.chunk_size.saturating_sub(buf.len()).max(1);
        let mut end = self.fill(&mut buf, want)?;
        if std::mem::take(&mut self.first) {
            let text = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf);
            if buf.starts_with(&[0x1f, 0x8b]) || !crate::event::decode::looks_like_json_lines(text)
            {
                // Not JSON Lines: the whole input, as its format needs.
                while !end {
                    end = self.fill(&mut buf, self.chunk_size)?;
                }
                self.reader = None;
                return Ok(Some(self.input(buf)));
            }
        }
        loop {
            if end {
                self.reader = None;
                return Ok((!buf.is_empty()).then(|| self.input(buf)));
            }
            if let Some(at) = memchr::memrchr(b'\n', &buf) {
                self.carry = buf.split_off(at + 1);
                return Ok(Some(self.input(buf)));
            }
            // A line longer than a chunk: read on to its end.
            end = self.fill(&mut buf, self.chunk_size)?;
        }
    }
}

impl Iterator for InputChunks {
    type Item = anyhow::Result<Input>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.chunk() {
            Ok(chunk) => chunk.map(Ok),
            Err(err) => {
                self.reader = None;
                self.first = false;
                Some(Err(err))
            }
        }
    }
}

/// One input file: its name as given (`-` for standard input) and its bytes.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Events per call of [`Engine::ingest`] when feeding sorted events.
const INGEST_CHUNK: usize = 4096;

/// Decode every input, then feed the matched events to the engine in [`event_order`](crate::adapters::spill::event_order) (event
/// time, id, content): the output does not depend on the order of the files or of the records
/// in them. At most `run_size` matched events are held in memory; sorted runs beyond that are
/// spilled into `dir` and merged.
pub async fn ingest_in_order<S, M, N, C>(
    engine: &mut Engine<S, M, N, C>,
    inputs: impl IntoIterator<Item = anyhow::Result<Input>>,
    run_size: usize,
    dir: &Path,
) -> anyhow::Result<()>
where
    S: Store + Sync,
    M: Summarizer + Sync,
    N: Notifier,
    C: Clock,
{
    let mut sorter = EventSorter::new(run_size, dir);
    for input in inputs {
        let input = input?;
        let events = engine.decode_from(&input.bytes, &input.name);
        sorter.extend(events)?;
    }
    let mut in_order = sorter.finish()?;
    loop {
        let chunk = in_order
            .by_ref()
            .take(INGEST_CHUNK)
            .collect::<Result<Vec<_>, _>>()?;
        if chunk.is_empty() {
            return Ok(());
        }
        engine.ingest(chunk).await?;
    }
}

/// Feed each input to the engine as it comes, in the order given (`--as-arrived`).
pub async fn ingest_as_arrived<S, M, N, C>(
    engine: &mut Engine<S, M, N, C>,
    inputs: impl IntoIterator<Item = anyhow::Result<Input>>,
) -> anyhow::Result<()>
where
    S: Store + Sync,
    M: Summarizer + Sync,
    N: Notifier,
    C: Clock,
{
    for input in inputs {
        let input = input?;
        let events = engine.decode_from(&input.bytes, &input.name);
        engine.ingest(events).await?;
    }
    Ok(())
}

/// On Ctrl-C or SIGTERM, remove `dir` (the sort's spill folder) and exit with status 130: the
/// default handler would leave the spilled runs behind. A thread of its own, so that it
/// answers while the replay is busy decoding.
fn remove_on_interrupt(dir: PathBuf) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(interrupted());
        // The sort may write a run into the folder while it is being removed (the removal
        // then fails as the folder is not empty): try again until it is gone. Once it is, no
        // run can be written (its folder no longer exists).
        for _ in 0..100 {
            if std::fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        eprintln!("error: interrupted");
        std::process::exit(130);
    });
}

async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The files to read: each argument as given, folders replaced by every file below them
/// (recursively, in path order). A folder with no file in it is an error.
pub fn input_files(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for arg in args {
        if arg.as_os_str() != "-" && arg.is_dir() {
            let before = files.len();
            walk(arg, &mut files)?;
            files[before..].sort();
            if files.len() == before {
                anyhow::bail!("{}: no files in this folder", arg.display());
            }
        } else {
            files.push(arg.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Render the deliveries in the chosen format. Only the Slack, HTML and text formats build
/// Slack messages; the audit is written from the deliveries themselves.
pub fn render(deliveries: &[Delivery], format: Format) -> anyhow::Result<String> {
    let slack_messages =
        || -> Vec<SlackMessage> { deliveries.iter().flat_map(render_batch).collect() };
    Ok(match format {
        Format::Slack => {
            let mut out = serde_json::to_string_pretty(&slack_messages())?;
            out.push('\n');
            out
        }
        Format::Html => preview(&slack_messages(), "trailwatch replay"),
        Format::Text => text(deliveries),
        Format::Audit => {
            let mut out = String::new();
            for delivery in deliveries {
                out.push_str(&serde_json::to_string(
                    &delivery.audit(&Receipt::default()),
                )?);
                out.push('\n');
            }
            out
        }
    })
}

/// What a person reading a terminal wants (`text`), else what a program reads (`slack` JSON).
fn default_format(out: Option<&Path>) -> Format {
    use std::io::IsTerminal as _;
    if out.is_none() && std::io::stdout().is_terminal() {
        Format::Text
    } else {
        Format::Slack
    }
}

/// Write the output to `path`, or to standard output. A reader that closed the pipe early
/// (`replay ... | head`) has all it wanted: that ends replay quietly, not as an error.
fn write_output(path: Option<&Path>, output: &str) -> anyhow::Result<()> {
    if let Some(path) = path {
        return std::fs::write(path, output)
            .with_context(|| format!("cannot write {}", path.display()));
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => Ok(written?),
    }
}

fn write_quarantine<S, M, N, C>(path: &Path, engine: &Engine<S, M, N, C>) -> anyhow::Result<()> {
    let mut out = String::new();
    for record in engine.quarantined() {
        out.push_str(&serde_json::to_string(record)?);
        out.push('\n');
    }
    let omitted = engine.stats().quarantine_omitted;
    if omitted > 0 {
        // The file is bounded; its last line says what it left out.
        out.push_str(&serde_json::to_string(&serde_json::json!({
            "omitted": omitted,
            "reason": format!("the quarantine file keeps the first {} records", engine.quarantined().len()),
        }))?);
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
        "replay: read={} decoded={} quarantined={} quarantine_omitted={} skipped={} insights={} digest_files={} heartbeats={} matched={} ignored={} unmatched={} duplicates={} conflicting_duplicates={} late={} future_dated={} immediate={} batches={} top_level={} replies={} reminders={} held={} notices={} below_threshold={} fallbacks={} elapsed={seconds:.3}s events/s={rate:.0}",
        stats.read,
        stats.decoded,
        stats.quarantined,
        stats.quarantine_omitted,
        stats.skipped,
        stats.skipped_insights,
        stats.skipped_digests,
        stats.heartbeats,
        stats.matched,
        stats.ignored,
        stats.unmatched,
        stats.duplicates,
        stats.conflicting_duplicates,
        stats.late,
        stats.future_dated,
        stats.immediate,
        stats.batches,
        stats.top_level,
        stats.replies,
        stats.reminders,
        stats.held,
        stats.notices,
        stats.below_threshold,
        stats.fallbacks,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::slack::RENDERED;

    /// The deliveries of the engine on the multi-account fixture, on this thread.
    async fn fixture_deliveries() -> Vec<Delivery> {
        let settings = Settings::default();
        let mut engine = Engine::new(
            RulePack::builtin(),
            settings.clone(),
            MemoryStore::new(settings.window),
            OfflineSummarizer,
            CollectingNotifier::default(),
            EventTimeClock::default(),
        );
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/multi-account.jsonl");
        let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("fixture: {err}"));
        engine
            .ingest_bytes(&bytes)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        engine
            .flush_all()
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        engine.notifier.take()
    }

    /// Replay's whole path (engine, then the output format) on a fixture, on this thread.
    async fn replay_fixture(format: Format) -> String {
        let deliveries = fixture_deliveries().await;
        assert!(deliveries.len() > 1);
        render(&deliveries, format).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn a_delivery_retried_after_a_later_part_failed_is_output_once() {
        use crate::severity::Severity;
        use crate::testing::{delivery, small_batch, summary};
        let first = delivery(small_batch(), summary("first try", Severity::Green));
        let mut other = small_batch();
        other.id.seq = 1;
        let second = delivery(other, summary("other", Severity::Green));
        let again = delivery(small_batch(), summary("retried", Severity::Green));
        let out = once_each(vec![first, second, again]);
        let headlines: Vec<&str> = out.iter().map(|d| d.summary.headline.as_str()).collect();
        assert_eq!(headlines, ["retried", "other"]);
    }

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn streamed(deliveries: &[Delivery], format: StreamFormat) -> String {
        let shared = Shared::default();
        let mut out = StreamOutput {
            writer: Box::new(shared.clone()),
            format,
            messages: 0,
            closed: false,
            failed: None,
        };
        for delivery in deliveries {
            out.write(delivery);
        }
        out.finish().unwrap_or_else(|err| panic!("{err}"));
        let bytes = shared.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    /// Written delivery by delivery, each format is byte for byte what rendering them all at
    /// once gives, with none, one and several deliveries.
    #[tokio::test]
    async fn streamed_output_is_the_rendered_output() {
        let deliveries = fixture_deliveries().await;
        assert!(deliveries.len() > 2);
        for some in [&deliveries[..0], &deliveries[..1], &deliveries[..]] {
            for (stream, format) in [
                (StreamFormat::Slack, Format::Slack),
                (StreamFormat::Audit, Format::Audit),
                (StreamFormat::Text, Format::Text),
            ] {
                let all_at_once = render(some, format).unwrap_or_else(|err| panic!("{err}"));
                assert_eq!(
                    streamed(some, stream),
                    all_at_once,
                    "{format:?}, {}",
                    some.len()
                );
            }
        }
    }

    /// A JSON Lines file read in chunks of a few hundred bytes (lines longer than a chunk
    /// included) gives the engine exactly its lines; a file of another format comes whole.
    #[test]
    fn json_lines_come_in_whole_lines_and_other_files_whole() {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        let lines: Vec<String> = (0..200)
            .map(|i| format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat(i * 7 % 900)))
            .collect();
        let text = lines.join("\n") + "\n";
        let path = dir.path().join("lines.jsonl");
        std::fs::write(&path, &text).unwrap_or_else(|err| panic!("{err}"));
        let mut chunks = InputChunks::new(&path);
        chunks.chunk_size = 300;
        let parts: Vec<Input> = chunks
            .map(|c| c.unwrap_or_else(|err| panic!("{err}")))
            .collect();
        assert!(parts.len() > 20, "{} chunks", parts.len());
        assert!(parts.iter().all(|p| p.bytes.ends_with(b"\n")));
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.bytes.clone()).collect();
        assert_eq!(joined, text.as_bytes());
        let document = dir.path().join("log.json");
        let records = format!("{{\"Records\": [\n{}\n]}}\n", lines.join(",\n"));
        std::fs::write(&document, &records).unwrap_or_else(|err| panic!("{err}"));
        let mut chunks = InputChunks::new(&document);
        chunks.chunk_size = 300;
        let parts: Vec<Input> = chunks
            .map(|c| c.unwrap_or_else(|err| panic!("{err}")))
            .collect();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].bytes, records.as_bytes());
        let missing = InputChunks::new(&dir.path().join("missing.jsonl")).collect::<Vec<_>>();
        assert!(matches!(&missing[..], [Err(_)]));
    }

    #[tokio::test]
    async fn the_audit_format_never_builds_slack_messages() {
        let before = RENDERED.get();
        let audit = replay_fixture(Format::Audit).await;
        assert_eq!(RENDERED.get(), before, "the audit rendered Slack blocks");
        assert!(audit.lines().count() > 1);
        // The counter does count: the Slack format renders each delivery.
        replay_fixture(Format::Slack).await;
        assert!(RENDERED.get() > before + 1);
    }
}
