//! `trailwatch replay`: CloudTrail files through the same engine, with embedded defaults.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::{Format, ReplayArgs, SummarizerArg, load_rules};
use crate::adapters::bedrock::{BedrockConfig, BedrockSummarizer};
use crate::adapters::memory::{CollectingNotifier, MemoryStore};
use crate::adapters::retry::TokioSleeper;
use crate::adapters::slack::{Credential, RetryPolicy, SlackError, SlackNotifier};
use crate::adapters::spill::{EventSorter, spill_dir};
use crate::adapters::system_clock::SystemClock;
use crate::config::{Settings, SlackRoutes, SummarizerKind};
use crate::engine::{Engine, Stats};
use crate::ports::{Clock, Delivery, Notifier, Receipt, Store};
use crate::render::{html::preview, slack::SlackMessage, slack::render_batch, text::text};
use crate::rules::RulePack;
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
        SummarizerKind::Offline => run(args, settings, rules, OfflineSummarizer).await,
        SummarizerKind::Bedrock => {
            let config = BedrockConfig::from_settings(&settings.summary);
            let summarizer = BedrockSummarizer::from_environment(config).await;
            Box::pin(run(args, settings, rules, summarizer)).await
        }
    }
}

async fn run<M: Summarizer + Sync>(
    args: ReplayArgs,
    settings: Settings,
    rules: RulePack,
    summarizer: M,
) -> anyhow::Result<()> {
    let store = MemoryStore::new(settings.window);
    let notifier = ReplayNotifier {
        collected: if args.no_threads {
            CollectingNotifier::without_threads()
        } else {
            CollectingNotifier::default()
        },
        slack: slack_notifier(&args, &settings)?,
    };
    let mut engine = Engine::new(
        rules,
        settings,
        store,
        summarizer,
        notifier,
        EventTimeClock::with_wall(args.now.unwrap_or_else(|| SystemClock.now())),
    );
    let files = input_files(&args.files)?;
    let inputs = files.iter().map(|file| {
        read_input(file).map(|bytes| Input {
            name: file.display().to_string(),
            bytes,
        })
    });
    let started = Instant::now();
    if args.as_arrived {
        ingest_as_arrived(&mut engine, inputs).await?;
    } else {
        let dir = spill_dir().context("cannot create a private temporary folder for sorting")?;
        remove_on_interrupt(dir.path().to_owned());
        ingest_in_order(&mut engine, inputs, args.sort_run_size, dir.path()).await?;
    }
    engine.flush_all().await?;
    let elapsed = started.elapsed();
    let deliveries = once_each(engine.notifier.collected.take());
    let format = args
        .format
        .unwrap_or_else(|| default_format(args.out.as_deref()));
    let output = render(&deliveries, format)?;
    write_output(args.out.as_deref(), &output)?;
    if let Some(path) = &args.quarantine {
        write_quarantine(path, &engine)?;
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

/// Collects every delivery for the output and, when asked, posts it to Slack first: a batch
/// that Slack refused is not in the output either (it stays unsent).
struct ReplayNotifier {
    collected: CollectingNotifier,
    slack: Option<SlackNotifier<TokioSleeper>>,
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

/// The Slack notifier `--slack-webhook` or `--slack-token` asks for, if any.
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

pub(super) fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("reading stdin")?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
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

    /// Replay's whole path (engine, then the output format) on a fixture, on this thread.
    async fn replay_fixture(format: Format) -> String {
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
        let deliveries = engine.notifier.take();
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
