//! The outbound side stays neutral until the destination: `render` (Slack Block Kit, the
//! previews) is a leaf that only the adapters and the app use. The engine, the ports and the
//! domain modules hand on a `Delivery` and never name a renderer.

#![allow(clippy::expect_used, reason = "test of the source tree")]

use std::path::{Path, PathBuf};

/// Folders and files of `src/` that may use `render`: destinations and the wiring.
const ALLOWED: [&str; 4] = ["adapters/", "app/", "render/", "testing.rs"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of `text` that reach into the `render` module, by path or by import.
fn render_uses(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| {
            let code = line.split("//").next().unwrap_or_default();
            code.contains("render::")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn only_adapters_and_the_app_use_render() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 20, "{} source files", files.len());
    let mut offending = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if ALLOWED.iter().any(|allowed| relative.starts_with(allowed)) {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        for line in render_uses(&text) {
            offending.push(format!("src/{relative}: {}", line.trim()));
        }
    }
    assert!(
        offending.is_empty(),
        "render used outside adapters and app:\n{}",
        offending.join("\n")
    );
}

#[test]
fn the_check_sees_an_import() {
    assert_eq!(
        render_uses("use crate::render::slack::render_batch;\n// render::x\nlet a = 1;"),
        ["use crate::render::slack::render_batch;"]
    );
    assert!(render_uses("use crate::delivery::Delivery;").is_empty());
}
