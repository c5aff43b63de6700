//! English.

use super::{ChangesBy, Kinds, Overview, Ran, SignIn, Words};
use crate::enrich::Tool;

pub const WORDS: Words = Words {
    performers: "Performer(s)",
    time: "Time",
    regions: "Region(s)",
    account: "Account",
    events: "Events",
    late: "late follow-up",
    late_note: "events that arrived after this window's digest was sent",
    immediate: "immediate alert",
    continued: "continued",
    failed: "failed",
    already_alerted: "already alerted",
    severity: "Severity",
    summary_by: "summary",
    by_offline: "offline template",
    by_fallback: "offline template (model unavailable)",
    by_model: "model",
    other_regions: "Other regions",
    no_events: "(no events)",
    more: |n| format!("+{n} more"),

    red: "red",
    yellow: "yellow",
    green: "green",

    kind: Kinds {
        person: "person",
        workload: "workload",
        aws_service: "AWS service",
        root: "root",
        unknown: "unknown",
    },
    kind_in_prose: Kinds {
        person: "person",
        workload: "workload",
        aws_service: "AWS service",
        root: "root user",
        unknown: "unknown",
    },
    sso: "SSO",
    assume_root_session: "AssumeRoot session",
    unknown_user: "unknown user",
    name_hidden: "name hidden by AWS",
    no_actor: "no actor named",
    instance: |name| format!("instance {name}"),
    console: "console",
    service: "service",
    via: |tool| format!("via {tool}"),

    model_language: "English",
    late_prefix: "Late: ",
    immediate_prefix: "Immediate alert: ",
    no_changes: "No changes",
    account_in_prose,
    lead_count: |n| format!(" ×{n}"),
    lead_others: |n| format!(", and {}", plural(n, "more event", "more events")),
    no_rule_matched: "No event matched a rule.",
    worst_rule: |title, severity| format!("Worst rule: {title} ({severity})."),
    no_events_in_batch: "This batch has no events.",
    and_more: |n| format!(" and {n} more"),
    overview,
    late_line,
    immediate_line: |title, severity| {
        format!(
            "Immediate alert: rule '{title}' ({severity}) posts at once, ahead of the five-minute digest."
        )
    },
    subject,
    made: |when, subject, list| format!("{when}, {subject} made {list}."),
    ran,
    sign_in,
    more_groups,
    changes_by,
    failed_calls: |total, list| format!("{} failed: {list}.", plural(total, "call", "calls")),
    already_posted,
    more_events: |n| plural(n, "more event", "more events"),
    so_far: |n| {
        if n == 1 {
            "1 event so far".to_owned()
        } else {
            format!("{n} events so far")
        }
    },
    since: "since",
    still_going: "Still going",
    in_thread: "earlier events are in the thread of its first message",
    alerted_elsewhere,
    overflow: |ceiling| {
        format!(
            "More than {ceiling} new incidents this hour: the next ones are listed in this thread"
        )
    },
    in_held: "later events are listed under \"Continuing\" in this channel",
    overflow_unthreaded: |ceiling| format!("More than {ceiling} new incidents this hour"),
    continuing: "Continuing",
    continuing_note: "later events of incidents posted before, held because this channel has no threads",
    continuing_headline: |events, incidents| {
        format!(
            "{} of {} posted before",
            if events == 1 {
                "1 later event".to_owned()
            } else {
                format!("{events} later events")
            },
            if incidents == 1 {
                "1 incident".to_owned()
            } else {
                format!("{incidents} incidents")
            },
        )
    },
    silent_headline: |region, since| {
        format!(
            "No heartbeat from {region} since {since}: its events may not be reaching trailwatch"
        )
    },
    silent_body: "The member stack in this account and region sends a heartbeat every five minutes through the same rules, bus, stream and Pipe as its events. Check its rules (trailwatch-heartbeat, trailwatch-forward-*), their dead-letter queue, the central bus policy and the Pipe.",
    resumed_headline: |region, since| {
        format!("Heartbeats from {region} are back (silent since {since})")
    },
    quiet_headline: |region, since| format!("No event forwarded from {region} since {since}"),
    quiet_body: "Heartbeats still arrive, so forwarding works; no CloudTrail event matched the member rules for this long. Check that CloudTrail still records in this account and region.",
    unquiet_headline: |region, since| {
        format!("Events from {region} are forwarded again (quiet since {since})")
    },
    events_n: |n| {
        if n == 1 {
            "1 event".to_owned()
        } else {
            format!("{n} events")
        }
    },
};

fn alerted_elsewhere(n: usize) -> String {
    if n == 1 {
        "1 event of this window was already posted as an immediate alert (see its thread)"
            .to_owned()
    } else {
        format!(
            "{n} events of this window were already posted as immediate alerts (see their threads)"
        )
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn account_in_prose(id: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{id} ({name})"),
        None => id.to_owned(),
    }
}

fn overview(o: &Overview<'_>) -> String {
    format!(
        "{} in {} ({}{}), {}.",
        plural(o.events, "event", "events"),
        o.account,
        o.regions,
        o.more_regions,
        o.span
    )
}

fn late_line(n: usize, window: &str) -> String {
    format!(
        "{} arrived late, after the digest for {window} was sent; they were not in it.",
        plural(n, "event", "events")
    )
}

/// `dae.kim (SSO, person) via Terraform`.
fn subject(name: &str, tags: &[&str], tool: Option<&str>) -> String {
    let via = tool.map(|t| format!(" via {t}")).unwrap_or_default();
    format!("{name} ({}){via}", tags.join(", "))
}

fn ran(r: &Ran<'_>) -> String {
    let Ran {
        when,
        subject,
        name,
        title,
        codes,
        ..
    } = *r;
    let target = if r.targets.is_empty() {
        String::new()
    } else {
        format!(" on {}", r.targets)
    };
    let times = if r.calls > 1 {
        format!(" ({} times)", r.calls)
    } else {
        String::new()
    };
    match r.failed {
        0 => format!("{when}, {subject} ran {name}{target}{times}: {title}."),
        f if f == r.calls => {
            format!("{when}, {subject} tried {name}{target}{times} and failed ({codes}): {title}.")
        }
        f => format!("{when}, {subject} ran {name}{target}{times}, {f} failed ({codes}): {title}."),
    }
}

fn sign_in(s: &SignIn<'_>) -> String {
    let what = match (s.attempts, s.failed) {
        (1, 1) => "failed to sign in to the console".to_owned(),
        (1, _) => "signed in to the console".to_owned(),
        (n, 0) => format!("signed in to the console {n} times"),
        (n, f) => format!("tried to sign in to the console {n} times, {f} failed"),
    };
    let mfa = if s.without_mfa { " without MFA" } else { "" };
    format!("{}, {} {what}{mfa}.", s.when, s.subject)
}

fn more_groups(more: usize, events: usize) -> String {
    format!(
        "…and {} ({}), listed below.",
        plural(more, "more group", "more groups"),
        plural(events, "event", "events")
    )
}

fn changes_by(by: ChangesBy, n: usize) -> String {
    let count = plural(n, "change", "changes");
    match by {
        ChangesBy::Tool(via) => {
            let tool = match via {
                Tool::Terraform => "Terraform",
                Tool::CloudFormation => "CloudFormation",
                Tool::Cdk => "CDK",
                Tool::Pulumi => "Pulumi",
                _ => "automation tools",
            };
            format!("{count} applied by {tool}")
        }
        ChangesBy::Ci => format!("{count} by CI roles"),
        ChangesBy::Workload => format!("{count} by workloads (roles run by code)"),
        ChangesBy::Service => format!("{count} by AWS services"),
        ChangesBy::Root => format!("{count} by the root user"),
        ChangesBy::Person => format!("{count} made directly by people"),
        ChangesBy::Unknown => format!("{count} with no known performer"),
    }
}

fn already_posted(n: usize) -> String {
    if n == 1 {
        "1 of these was already posted as an immediate alert.".to_owned()
    } else {
        format!("{n} of these were already posted as immediate alerts.")
    }
}
