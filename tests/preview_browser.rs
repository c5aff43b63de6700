//! The HTML preview in a real browser: headless Chromium renders it to a screenshot, and its
//! DOM holds every message. Skips, saying so, when Chromium is absent (`.ci/browser.sh`
//! installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, replay_files, settings};
use trailwatch::app::Format;
use trailwatch::render::slack::render_batch;
use trailwatch::summary::Lang;

fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("TRAILWATCH_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("skipped: no chromium at /usr/bin/chromium (run .ci/browser.sh to install it)");
    }
    found
}

/// Runs Chromium headless on `page` with `extra` arguments; its stdout. Killed after 120 s.
fn run_chromium(browser: &Path, page: &Path, extra: &[String]) -> String {
    // A profile per run: two browsers on one profile refuse each other.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile =
        std::env::temp_dir().join(format!("trailwatch-chromium-{}-{run}", std::process::id()));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(page)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("chromium: {err}"));
    let deadline = Instant::now() + Duration::from_mins(2);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("chromium: {err}"));
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}

#[test]
fn preview_renders_in_chromium_with_every_message() {
    let Some(browser) = chromium() else { return };
    let replayed = replay_files(
        &[
            &fixture("console-iam-person.json"),
            &fixture("multi-account.jsonl"),
            &fixture("root-login-no-mfa.jsonl"),
            &fixture("hostile-text.jsonl"),
        ],
        settings(Lang::Ko, chrono_tz::Asia::Seoul),
    );
    let page = replayed.output(Format::Html);
    let keys: Vec<(String, usize)> = replayed
        .deliveries
        .iter()
        .flat_map(|d| render_batch(d).into_iter().map(|m| (m.batch_key, m.part)))
        .collect();
    assert!(keys.len() >= 5, "{} messages", keys.len());

    let dir = std::env::temp_dir().join(format!("trailwatch-preview-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{err}"));
    let html = dir.join("preview.html");
    let png = dir.join("preview.png");
    std::fs::write(&html, &page).unwrap_or_else(|err| panic!("{err}"));

    run_chromium(
        &browser,
        &html,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1200,3000".to_owned(),
        ],
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|err| panic!("no screenshot: {err}"));
    assert_eq!(
        png_size(&bytes),
        Some((1200, 3000)),
        "a PNG of the window size"
    );
    // A blank 1200x3000 page compresses to a few kilobytes; rendered messages do not.
    assert!(
        bytes.len() > 40_000,
        "screenshot too small: {} bytes",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());

    let dom = run_chromium(&browser, &html, &["--dump-dom".to_owned()]);
    assert_eq!(
        dom.matches("<article class=\"msg\">").count(),
        keys.len(),
        "every message is in the rendered page"
    );
    for (key, part) in &keys {
        let label = format!("{key} · {}/", part + 1);
        assert!(dom.contains(&label), "{label} missing from the DOM");
    }
    // The browser ran no script from event text and kept the page's structure.
    assert!(!dom.contains("<script"));
    assert!(dom.contains("Content-Security-Policy"));
}

/// Heights of the page's messages in CSS pixels, as Chromium lays them out at 1100 px wide.
/// The measuring copy drops the page's script ban and adds one script that writes the heights
/// into the title.
fn message_heights(browser: &Path, page: &str, dir: &Path) -> Vec<u32> {
    let start = page
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .unwrap_or_else(|| panic!("the page has a CSP"));
    let end = start + page[start..].find('>').unwrap_or(0) + 1;
    let measured = format!("{}{}", &page[..start], &page[end..]).replace(
        "</body>",
        "<script>document.title = [...document.querySelectorAll('article.msg')]\
         .map(a => Math.round(a.getBoundingClientRect().height)).join(',')</script></body>",
    );
    let html = dir.join("measure.html");
    std::fs::write(&html, measured).unwrap_or_else(|err| panic!("{err}"));
    let dom = run_chromium(
        browser,
        &html,
        &[
            "--window-size=1100,2400".to_owned(),
            "--dump-dom".to_owned(),
        ],
    );
    let title = dom
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(title, _)| title.to_owned())
        .unwrap_or_default();
    title.split(',').filter_map(|h| h.parse().ok()).collect()
}

/// Issue 17: a one-event message (a denied `GetCertificate`) was 480 px tall, its facts said
/// four or five times; it must be at most half of that.
#[test]
fn a_one_event_message_is_at_most_half_its_old_height() {
    let Some(browser) = chromium() else { return };
    let replayed = replay_files(
        &[&fixture("denied-read.jsonl")],
        settings(Lang::En, chrono_tz::UTC),
    );
    let page = replayed.output(Format::Html);
    let dir = std::env::temp_dir().join(format!("trailwatch-height-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{err}"));
    let heights = message_heights(&browser, &page, &dir);
    assert_eq!(heights.len(), 1, "one message: {heights:?}");
    assert!(
        heights[0] <= 240,
        "{} px, more than half of 480",
        heights[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
