//! The README's examples are real: its config and rule pack snippets load.

mod common;

use trailwatch::config::Settings;
use trailwatch::rules::RulePack;

/// The fenced ```toml blocks of the README, in order.
fn toml_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap_or_default();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn readme_config_and_rule_examples_load() {
    let blocks = toml_blocks();
    assert_eq!(
        blocks.len(),
        2,
        "expected a config example and a rule example"
    );
    let path = std::env::temp_dir().join(format!("trailwatch-readme-{}.toml", std::process::id()));
    std::fs::write(&path, &blocks[0]).unwrap_or_default();
    let settings = Settings::load(Some(&path), &|_| None);
    let _ = std::fs::remove_file(&path);
    let settings = settings.unwrap_or_else(|err| panic!("README config example: {err}"));
    assert_eq!(settings.accounts.len(), 2);
    let pack = RulePack::from_toml(&blocks[1]).unwrap_or_else(|err| panic!("README rules: {err}"));
    assert_eq!(pack.rules().len(), 1);
}
