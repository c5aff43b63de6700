//! `trailwatch pattern`: the member-account EventBridge pattern, from the rule pack.

use super::{PatternArgs, load_rules};
use crate::rules::{event_pattern, event_patterns};

pub fn pattern(args: &PatternArgs) -> anyhow::Result<()> {
    let rules = load_rules(args.rules.as_deref(), &args.packs)?;
    let pattern = match args.split {
        Some(limit) => serde_json::Value::Array(event_patterns(&rules, limit)?),
        None => event_pattern(&rules),
    };
    let text = if args.pretty {
        serde_json::to_string_pretty(&pattern)?
    } else {
        serde_json::to_string(&pattern)?
    };
    println!("{text}");
    Ok(())
}
