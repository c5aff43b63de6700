//! `trailwatch pattern`: the member-account EventBridge pattern, from the rule pack.

use super::{PatternArgs, load_rules};
use crate::rules::event_pattern;

pub fn pattern(args: &PatternArgs) -> anyhow::Result<()> {
    let rules = load_rules(args.rules.as_deref())?;
    let pattern = event_pattern(&rules);
    let text = if args.pretty {
        serde_json::to_string_pretty(&pattern)?
    } else {
        serde_json::to_string(&pattern)?
    };
    println!("{text}");
    Ok(())
}
