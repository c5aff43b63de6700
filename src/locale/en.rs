//! English.

use super::{Action, Kinds, Words};
use crate::summary::outcome::Outcomes;

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
    threshold_title: |title, n| format!("{title} ({n} in one window)"),

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
    answer_tokens: 400,
    account_in_prose,
    no_rule_matched: "No event matched a rule.",
    worst_rule: |title, severity| format!("Worst rule: {title} ({severity})."),
    no_events_in_batch: "This batch has no events.",
    and_more: |n| format!(" and {n} more"),
    who,
    action,
    outcome_counts,
    made: |counts| format!("made {counts}"),
    performers_n: |n| plural(n, "performer", "performers"),
    rules_n: |n| plural(n, "rule", "rules"),
    headline: |prefix, who, what, title| format!("{prefix}{who} {what} · {title}"),
    denied_attempt: "Denied attempt: ",
    failed_attempt: "Failed attempt: ",
    denied: "denied",
    read: "read",
    itself: "itself",
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

/// `dae.kim (SSO) via Terraform`, `root (root user)`.
fn who(name: &str, tags: &[&str], tool: Option<&str>) -> String {
    let mut text = name.to_owned();
    if !tags.is_empty() {
        text.push_str(" (");
        text.push_str(&tags.join(", "));
        text.push(')');
    }
    if let Some(via) = tool {
        text.push(' ');
        text.push_str(via);
    }
    text
}

/// `ran CreateUser on bob`, `tried DeleteTrail on org-trail ×3: denied (AccessDenied)`,
/// `signed in to the console without MFA`.
fn action(a: &Action<'_>) -> String {
    let o = a.outcomes;
    if let Some(without_mfa) = a.sign_in_without_mfa {
        let mfa = if without_mfa { " without MFA" } else { "" };
        let failed = o.denied + o.failed;
        return match (a.calls, failed) {
            (1, 0) => format!("signed in to the console{mfa}"),
            (1, _) => format!("tried to sign in to the console{mfa} and failed"),
            (n, 0) => format!("signed in to the console {n} times{mfa}"),
            (n, f) if f == n => {
                format!("tried to sign in to the console {n} times{mfa}, all failed")
            }
            (n, f) => format!("signed in to the console {n} times{mfa}, {f} failed"),
        };
    }
    let times = if a.calls > 1 {
        format!(" ×{}", a.calls)
    } else {
        String::new()
    };
    let on = if a.targets.is_empty() {
        String::new()
    } else {
        format!(" on {}", a.targets)
    };
    let codes = if a.codes.is_empty() {
        String::new()
    } else {
        format!(" ({})", a.codes)
    };
    let name = a.name;
    let attempts = o.denied + o.failed;
    if attempts == a.calls {
        if a.prefixed {
            return format!("tried {name}{times}{on}{codes}");
        }
        let how = if o.failed == 0 { "denied" } else { "failed" };
        return format!("tried {name}{times}{on}: {how}{codes}");
    }
    let verb = if o.reads == a.calls {
        "read with"
    } else {
        "ran"
    };
    if attempts == 0 {
        format!("{verb} {name}{times}{on}")
    } else {
        let how = if o.failed == 0 { "denied" } else { "failed" };
        format!("{verb} {name}{times}{on}, {attempts} {how}{codes}")
    }
}

/// `3 changes, 2 reads, 1 denied attempt`.
fn outcome_counts(o: &Outcomes) -> String {
    let mut parts = Vec::new();
    if o.changes > 0 {
        parts.push(plural(o.changes, "change", "changes"));
    }
    if o.reads > 0 {
        parts.push(plural(o.reads, "read", "reads"));
    }
    if o.denied > 0 {
        parts.push(plural(o.denied, "denied attempt", "denied attempts"));
    }
    if o.failed > 0 {
        parts.push(plural(o.failed, "failed attempt", "failed attempts"));
    }
    parts.join(", ")
}
