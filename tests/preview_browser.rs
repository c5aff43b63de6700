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
    let profile = std::env::temp_dir().join(format!(
        "trailwatch-chromium-{}-{}",
        std::process::id(),
        extra.len()
    ));
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
