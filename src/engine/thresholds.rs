//! Threshold rules at flush time (see [`crate::rules::Threshold`]): a window's events of a
//! threshold rule are counted per rule and per group (performer or account); a group that
//! reached its count stays, its rule titled with the count; a group whose incident is still
//! open (it fired in an earlier window, or earlier in this one, and its late events come now)
//! stays as that incident's continuation; in any other group below the count, each event is
//! reported by its fallback rule (the worst other rule it matched), or leaves the batch.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::incident::performer;
use crate::rules::{Rule, ThresholdBy, threshold_count};
use crate::window::BatchEvent;

/// Apply the thresholds of `events`' rules in place; returns how many events stayed below
/// theirs with no other rule to report them, and were taken out. Events of rules without a
/// threshold are left as they are, in their order. `continuing` says whether an event's
/// incident is open already: its group stays whatever its count.
pub fn apply(events: &mut Vec<BatchEvent>, continuing: &dyn Fn(&BatchEvent) -> bool) -> u64 {
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, event) in events.iter().enumerate() {
        let Some(threshold) = &event.rule.threshold else {
            continue;
        };
        let by = match threshold.by {
            ThresholdBy::Principal => performer(event),
            ThresholdBy::Account => String::new(),
        };
        groups
            .entry((event.rule.id.clone(), by))
            .or_default()
            .push(i);
    }
    if groups.is_empty() {
        return 0;
    }
    let mut drop = vec![false; events.len()];
    let mut retitled: Vec<(usize, Arc<Rule>)> = Vec::new();
    for members in groups.values() {
        let rule = Arc::clone(&events[members[0]].rule);
        let Some(threshold) = &rule.threshold else {
            continue;
        };
        let reached = threshold_count(
            threshold,
            members.iter().map(|&i| events[i].counted.as_slice()),
        );
        if reached < threshold.count as usize && members.iter().any(|&i| continuing(&events[i])) {
            // Goes on under the incident it opened: kept, titled as the rule is.
            continue;
        }
        if reached >= threshold.count as usize {
            let titled = Arc::new(Rule {
                titles: rule
                    .titles
                    .map(|lang, title| (lang.words().threshold_title)(title, reached)),
                ..(*rule).clone()
            });
            retitled.extend(members.iter().map(|&i| (i, Arc::clone(&titled))));
        } else {
            for &i in members {
                match events[i].fallback.clone() {
                    Some(other) => retitled.push((i, other)),
                    None => drop[i] = true,
                }
            }
        }
    }
    for (i, rule) in retitled {
        events[i].rule = rule;
        events[i].fallback = None;
    }
    let before = events.len();
    let mut index = 0;
    events.retain(|_| {
        let keep = !drop[index];
        index += 1;
        keep
    });
    (before - events.len()) as u64
}
