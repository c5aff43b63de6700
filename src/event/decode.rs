//! One decoder for every input shape.
//!
//! Accepted: EventBridge envelopes (API call, console sign-in, service event, EC2 state change),
//! bare CloudTrail records, CloudTrail S3 log files (`{"Records": [...]}`, plain or gzipped),
//! JSON Lines of any of these, Kinesis records as an EventBridge Pipe hands them over (a bare
//! array of `{"data": <base64>, "partitionKey", ...}`) and as a Lambda event-source mapping does
//! (`{"Records": [{"kinesis": {"data": ...}}]}`), and labelled corpus lines `{"event": {...}}`.
//!
//! Decoding is two-phase so the hot path stays cheap: [`Record`] borrows from the input and
//! exposes the [`Facts`] rules match on; only a record worth keeping pays for
//! [`Record::to_event`] (owned strings, resource extraction, redaction).

use std::borrow::Cow;
use std::io::Read;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::resources::{self, MAX_RESOURCE_CHARS, Sources};
use super::{AccountId, Event, EventId, EventKind, Facts, Identity, RawJson, SharedStr};
use crate::enrich::redact::{RedactCache, bounded, is_secret_key, redact_text};

/// Longest quarantine excerpt kept, in characters.
const EXCERPT_CHARS: usize = 1024;
/// Nesting limit for containers inside containers (Kinesis data holding S3 files...).
const MAX_DEPTH: usize = 4;
/// Longest free text (user agent, error message) kept.
const MAX_TEXT_CHARS: usize = 400;

/// A record that could not be decoded: kept, safe to show (see [`json_excerpt`]) and
/// bounded, with its reason and, when known, the file it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub reason: String,
    pub excerpt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Real CloudTrail output that is not an event: counted as skipped, never quarantined (the
/// quarantine count drives an alarm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// A CloudTrail Insights record (`eventType: AwsCloudTrailInsight`).
    Insight,
    /// A CloudTrail digest file (`digestStartTime`, no `Records`): log-file integrity, not
    /// events.
    DigestFile,
}

/// One input record: decoded (borrowed), quarantined, or skipped.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // Handed straight to the sink: boxing would allocate per record.
pub enum Decoded<'a> {
    Record(Record<'a>),
    Quarantined(Quarantined),
    Skipped(Skipped),
    /// A member account's heartbeat (see [`Heartbeat`]): proof that its forwarding works.
    Heartbeat(Heartbeat),
}

/// Name of the scheduled rule each member account and region runs to send heartbeats to the
/// central bus (`infra/lib/member-stack.ts`; the same name in `infra/config.ts`).
pub const HEARTBEAT_RULE: &str = "trailwatch-heartbeat";

/// A heartbeat: the EventBridge `Scheduled Event` (source `aws.events`) that the member
/// rule [`HEARTBEAT_RULE`] sends every few minutes, which crossed the same bus, stream and
/// Pipe as the member's CloudTrail events. EventBridge stamps `account` and `region`, and
/// refuses `aws.*` sources from `PutEvents`, so no account can send another's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub account: AccountId,
    pub region: String,
    /// The envelope's `time`: when the schedule fired.
    pub time: DateTime<Utc>,
}

impl Heartbeat {
    /// The heartbeat as EventBridge delivers it (what `trailwatch send` puts on a stream).
    /// The ARN names the commercial partition: the decoder reads only the rule's name.
    pub fn envelope_json(&self) -> String {
        let time = self.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        serde_json::json!({
            "version": "0",
            "id": format!("heartbeat-{}-{}-{}", self.account, self.region, self.time.timestamp()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account.as_str(),
            "time": time,
            "region": self.region,
            "resources": [format!(
                "arn:aws:events:{}:{}:rule/{HEARTBEAT_RULE}",
                self.region, self.account
            )],
            "detail": {},
        })
        .to_string()
    }
}

/// Whether an envelope is a heartbeat: source `aws.events`, detail-type `Scheduled Event`,
/// and the heartbeat rule among its `resources` (`arn:<partition>:events:<region>:<account>:rule/<name>`).
fn is_heartbeat(envelope: &Probe<'_>, detail_type: &str) -> bool {
    if detail_type != "Scheduled Event" || envelope.source.as_deref() != Some("aws.events") {
        return false;
    }
    let Some(resources) = envelope.resources else {
        return false;
    };
    let Ok(arns) = serde_json::from_str::<Vec<Cow<'_, str>>>(resources.get()) else {
        return false;
    };
    arns.iter().any(|arn| {
        arn.starts_with("arn:")
            && arn
                .rsplit_once(":rule/")
                .is_some_and(|(_, name)| name == HEARTBEAT_RULE)
    })
}

fn heartbeat(envelope: &Probe<'_>, text: &str) -> Decoded<'static> {
    let account = envelope
        .account
        .as_deref()
        .filter(|a| a.len() == 12 && a.bytes().all(|c| c.is_ascii_digit()));
    let region = envelope.region.as_deref().filter(|r| {
        !r.is_empty()
            && r.len() <= 30
            && r.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    });
    match (
        account,
        region,
        parse_time(envelope.time.as_deref(), "time"),
    ) {
        (Some(account), Some(region), Ok(time)) => Decoded::Heartbeat(Heartbeat {
            account: AccountId::new(account),
            region: region.to_owned(),
            time,
        }),
        (None, ..) => quarantine("heartbeat without a 12-digit account", text),
        (_, None, _) => quarantine("heartbeat without a region", text),
        (.., Err(reason)) => quarantine(format!("heartbeat: {reason}"), text),
    }
}

/// How much one gzip file may inflate to by default, in bytes (256 MiB: a CloudTrail log
/// file is a few MB; a 4 MB gzip bomb inflates to gigabytes).
pub const DEFAULT_MAX_INFLATED: usize = 256 << 20;

/// What decoding one input may use besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions<'f> {
    /// Most bytes one gzip file may inflate to: past it, the file is quarantined (one entry
    /// saying so), not read.
    pub max_inflated: usize,
    /// The account a CloudTrail log file's name gives ([`file_account`]): for a record without
    /// `recipientAccountId` or an envelope, before `userIdentity.accountId`.
    pub file_account: Option<&'f str>,
}

impl Default for DecodeOptions<'_> {
    fn default() -> Self {
        Self {
            max_inflated: DEFAULT_MAX_INFLATED,
            file_account: None,
        }
    }
}

/// The account in a CloudTrail log file's name (`AWSLogs/…/111111111111_CloudTrail_us-east-1_…`),
/// if it has one. Source: "Finding your CloudTrail log files", AWS CloudTrail User Guide.
pub fn file_account(name: &str) -> Option<&str> {
    let file = name.rsplit(['/', '\\']).next()?;
    let (account, rest) = file.split_once('_')?;
    (account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && rest.starts_with("CloudTrail_"))
    .then_some(account)
}

/// The oddity of an envelope whose `detail.recipientAccountId` is not its `account`.
pub const ACCOUNT_MISMATCH: &str =
    "detail.recipientAccountId differs from the envelope's account: the envelope's is used";

/// Where a decode is: how deep in containers, with what options.
#[derive(Debug, Clone, Copy)]
struct Cx<'f> {
    depth: usize,
    options: DecodeOptions<'f>,
}

impl Cx<'_> {
    fn deeper(self) -> Self {
        Self {
            depth: self.depth + 1,
            ..self
        }
    }
}

/// Decode a buffer of any supported shape, handing each record to `sink` in input order.
pub fn decode_bytes(input: &[u8], sink: &mut dyn FnMut(Decoded<'_>)) {
    decode_bytes_with(input, DecodeOptions::default(), sink);
}

/// [`decode_bytes`] with `options`.
pub fn decode_bytes_with(
    input: &[u8],
    options: DecodeOptions<'_>,
    sink: &mut dyn FnMut(Decoded<'_>),
) {
    decode_buffer(input, sink, Cx { depth: 0, options });
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn decode_buffer(input: &[u8], sink: &mut dyn FnMut(Decoded<'_>), cx: Cx<'_>) {
    let max = cx.options.max_inflated;
    if !input.starts_with(&[0x1f, 0x8b]) {
        decode_text(input.strip_prefix(BOM).unwrap_or(input), sink, cx);
        return;
    }
    let mut inflated = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let read = flate2::read::MultiGzDecoder::new(input)
        .take(limit)
        .read_to_end(&mut inflated);
    if inflated.len() > max {
        sink(quarantine(
            format!(
                "gzip: inflates past {} MiB ([input] max_inflated_mib); not read",
                max >> 20
            ),
            "",
        ));
        return;
    }
    let text = inflated.strip_prefix(BOM).unwrap_or(&inflated);
    match read {
        Ok(_) => decode_text(text, sink, cx),
        Err(err) => {
            // Damaged (cut short, bad checksum): every complete record before the damage is
            // decoded; what follows it is lost, and one quarantine entry says so.
            salvage(text, sink, cx);
            sink(quarantine(
                format!(
                    "gzip: {err}: the file is damaged after {} bytes; records after the damage are lost",
                    inflated.len()
                ),
                "",
            ));
        }
    }
}

/// The complete records of a text cut short: each record of a `{"Records": [...]}` file up
/// to the cut, or each whole line of JSON Lines (a last, cut line is quarantined).
fn salvage(text: &[u8], sink: &mut dyn FnMut(Decoded<'_>), cx: Cx<'_>) {
    let Ok(text) = std::str::from_utf8(text).or_else(|err| {
        // Cut inside a character: keep what precedes it.
        std::str::from_utf8(&text[..err.valid_up_to()])
    }) else {
        return;
    };
    let head = text.trim_start();
    let Some(rest) = head
        .strip_prefix('{')
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix("\"Records\""))
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix(':'))
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('['))
    else {
        decode_text(text.as_bytes(), sink, cx);
        return;
    };
    let mut rest = rest;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() || rest.starts_with(']') {
            return;
        }
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<&RawValue>();
        match values.next() {
            Some(Ok(record)) => {
                let end = values.byte_offset();
                decode_value(record.get(), sink, cx.deeper());
                rest = &rest[end..];
            }
            // The record the damage cut: reported with the damage.
            _ => return,
        }
    }
}

/// JSON Lines line by line (one broken line costs one record); anything else as a whole JSON
/// document or a stream of them, falling back to lines when that fails.
fn decode_text(input: &[u8], sink: &mut dyn FnMut(Decoded<'_>), cx: Cx<'_>) {
    if looks_like_json_lines(input) {
        decode_lines(input, sink, cx);
        return;
    }
    let stream: Result<Vec<&RawValue>, _> = serde_json::Deserializer::from_slice(input)
        .into_iter::<&RawValue>()
        .collect();
    match stream {
        Ok(values) => {
            for value in values {
                decode_value(value.get(), sink, cx);
            }
        }
        Err(_) => decode_lines(input, sink, cx),
    }
}

/// `input` cut at line ends into at most `parts` runs of whole lines of at least `min_part`
/// bytes, when [`decode_bytes`] would read it as JSON Lines; otherwise `input` whole. Each run
/// gives to [`decode_json_lines`] what its lines give in `input`, in the same order.
pub fn line_parts(input: &[u8], parts: usize, min_part: usize) -> Vec<&[u8]> {
    let parts = parts.min(input.len() / min_part.max(1)).max(1);
    if parts == 1 || input.starts_with(&[0x1f, 0x8b]) || !looks_like_json_lines(input) {
        return vec![input];
    }
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for n in 1..parts {
        let cut = (input.len() * n / parts).max(start);
        let Some(end) = memchr::memchr(b'\n', &input[cut..]).map(|at| cut + at + 1) else {
            break;
        };
        out.push(&input[start..end]);
        start = end;
    }
    out.push(&input[start..]);
    out
}

/// Decode a run of whole lines cut from JSON Lines input (see [`line_parts`]).
pub fn decode_json_lines(input: &[u8], sink: &mut dyn FnMut(Decoded<'_>)) {
    decode_json_lines_with(input, DecodeOptions::default(), sink);
}

/// [`decode_json_lines`] with `options`.
pub fn decode_json_lines_with(
    input: &[u8],
    options: DecodeOptions<'_>,
    sink: &mut dyn FnMut(Decoded<'_>),
) {
    decode_lines(input, sink, Cx { depth: 0, options });
}

/// Whether `input` reads as JSON Lines: its first non-empty line is a whole JSON object and
/// another line follows.
pub fn looks_like_json_lines(input: &[u8]) -> bool {
    let mut lines = lines(input)
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    match (lines.next(), lines.next()) {
        (Some(first), Some(_)) => {
            first.starts_with(b"{")
                && first.ends_with(b"}")
                && serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok()
        }
        _ => false,
    }
}

/// Each line of `input`, found with a vectorised search.
fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', input)
        .chain(std::iter::once(input.len()))
        .map(move |end| {
            let line = &input[start.min(end)..end];
            start = end + 1;
            line
        })
}

fn decode_lines(input: &[u8], sink: &mut dyn FnMut(Decoded<'_>), cx: Cx<'_>) {
    for line in lines(input) {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(line) {
            Ok(text) => decode_value(text, sink, cx),
            Err(err) => sink(quarantine(
                format!("not UTF-8 text: {err}"),
                &String::from_utf8_lossy(line),
            )),
        }
    }
}

fn decode_value(text: &str, sink: &mut dyn FnMut(Decoded<'_>), cx: Cx<'_>) {
    if cx.depth > MAX_DEPTH {
        sink(quarantine("nested too deeply", text));
        return;
    }
    match text.as_bytes().first() {
        Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) if !items.is_empty() && items.iter().all(|i| i.get().starts_with('{')) => {
                for item in items {
                    decode_value(item.get(), sink, cx.deeper());
                }
            }
            Ok(_) => sink(quarantine("array without records", text)),
            Err(err) => sink(quarantine(format!("invalid JSON array: {err}"), text)),
        },
        Some(b'{') => match serde_json::from_str::<Probe<'_>>(text) {
            Ok(probe) => decode_object(probe, text, sink, cx),
            Err(err) => match without_lone_surrogates(text) {
                // A caller-controlled string (a user agent) with a lone surrogate escape
                // must not cost the whole record: the odd character becomes U+FFFD.
                Some(repaired) => decode_value(
                    &repaired,
                    &mut |decoded| {
                        sink(match decoded {
                            Decoded::Record(mut record) => {
                                record
                                    .oddities
                                    .push("a lone surrogate escape replaced by U+FFFD");
                                Decoded::Record(record)
                            }
                            other => other,
                        });
                    },
                    cx,
                ),
                None => sink(quarantine(probe_failure(text, &err), text)),
            },
        },
        _ => sink(quarantine("not a JSON object", text)),
    }
}

/// `text` with every lone UTF-16 surrogate escape (`\ud800` not followed by a low one, or a
/// low one alone) replaced by `\ufffd`; `None` when it has none. JSON allows such escapes;
/// a string cannot hold them.
fn without_lone_surrogates(text: &str) -> Option<String> {
    fn escape_at(b: &[u8], at: usize) -> Option<u16> {
        let hex = b.get(at..at + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    }
    let b = text.as_bytes();
    let mut lone = Vec::new();
    let mut at = 0;
    while at < b.len() {
        if b[at] != b'\\' {
            at += 1;
            continue;
        }
        match escape_at(b, at) {
            Some(high @ 0xD800..=0xDBFF) => {
                let _ = high;
                if matches!(escape_at(b, at + 6), Some(0xDC00..=0xDFFF)) {
                    at += 12;
                } else {
                    lone.push(at);
                    at += 6;
                }
            }
            Some(0xDC00..=0xDFFF) => {
                lone.push(at);
                at += 6;
            }
            // Another escape (`\\`, `\"`, `\n`, `\u0041`): skip it whole.
            Some(_) => at += 6,
            None => at += 2,
        }
    }
    if lone.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for at in lone {
        out.push_str(&text[from..at]);
        out.push_str("\\ufffd");
        from = at + 6;
    }
    out.push_str(&text[from..]);
    Some(out)
}

/// Why an object did not parse: broken JSON, an envelope of another kind, or a record whose
/// fields have the wrong types.
fn probe_failure(text: &str, err: &serde_json::Error) -> String {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(rename = "detail-type", borrow)]
        detail_type: Str<'a>,
    }
    if err.is_syntax() || err.is_eof() {
        return format!("invalid JSON: {err}");
    }
    match serde_json::from_str::<Head<'_>>(text) {
        Ok(Head {
            detail_type: Some(detail_type),
        }) if EventKind::from_detail_type(&detail_type).is_none() => {
            format!("unsupported detail-type {detail_type:?}")
        }
        _ => format!("not a CloudTrail record: {err}"),
    }
}

fn decode_object(mut probe: Probe<'_>, text: &str, sink: &mut dyn FnMut(Decoded<'_>), cx: Cx<'_>) {
    if let Some(records) = &probe.records {
        for record in records {
            decode_value(record.get(), sink, cx.deeper());
        }
    } else if probe.digest_start.is_some()
        && probe.log_files.is_some()
        && probe.event_name.is_none()
    {
        sink(Decoded::Skipped(Skipped::DigestFile));
    } else if probe.event_type.as_deref() == Some("AwsCloudTrailInsight") {
        sink(Decoded::Skipped(Skipped::Insight));
    } else if let Some(kinesis) = &probe.kinesis {
        decode_base64(kinesis.data.as_deref(), text, sink, cx);
    } else if probe.partition_key.is_some() && probe.data.is_some() {
        decode_base64(probe.data.as_deref(), text, sink, cx);
    } else if let (Some(event), None) = (probe.event, &probe.event_name) {
        decode_value(event.get(), sink, cx.deeper());
    } else if let Some(detail_type) = probe.detail_type.clone() {
        let detail = probe.detail.take();
        sink(decode_envelope(&probe, detail, &detail_type, text));
    } else if probe.event_name.is_some() {
        sink(match Record::new(probe, None, cx.options.file_account) {
            Ok(mut record) => {
                record.text = text;
                Decoded::Record(record)
            }
            Err(reason) => quarantine(reason, text),
        });
    } else {
        sink(quarantine("not a CloudTrail record or envelope", text));
    }
}

fn decode_base64(data: Option<&str>, text: &str, sink: &mut dyn FnMut(Decoded<'_>), cx: Cx<'_>) {
    let Some(data) = data else {
        sink(quarantine("Kinesis record without data", text));
        return;
    };
    match base64::engine::general_purpose::STANDARD.decode(data) {
        Ok(bytes) if serde_json::from_slice::<&RawValue>(bytes.trim_ascii()).is_ok() => {
            decode_buffer(&bytes, sink, cx.deeper());
        }
        Ok(bytes) if bytes.starts_with(&[0x1f, 0x8b]) => {
            decode_buffer(&bytes, sink, cx.deeper());
        }
        Ok(bytes) => sink(quarantine(
            "Kinesis data is not JSON",
            &String::from_utf8_lossy(&bytes),
        )),
        Err(err) => sink(quarantine(
            format!("Kinesis data is not base64: {err}"),
            text,
        )),
    }
}

fn decode_envelope<'a>(
    envelope: &Probe<'a>,
    detail: Option<Box<Probe<'a>>>,
    detail_type: &str,
    text: &'a str,
) -> Decoded<'a> {
    if is_heartbeat(envelope, detail_type) {
        return heartbeat(envelope, text);
    }
    let Some(kind) = EventKind::from_detail_type(detail_type) else {
        return quarantine(format!("unsupported detail-type {detail_type:?}"), text);
    };
    let Some(detail) = detail else {
        return quarantine("envelope without detail", text);
    };
    let decoded = if kind == EventKind::StateChange {
        Record::state_change(envelope, *detail)
    } else {
        Record::new(*detail, Some((envelope, kind)), None)
    };
    match decoded {
        Ok(mut record) => {
            record.text = text;
            record.enveloped = true;
            Decoded::Record(record)
        }
        Err(reason) => quarantine(reason, text),
    }
}

fn quarantine(reason: impl AsRef<str>, raw: &str) -> Decoded<'static> {
    let excerpt = json_excerpt(raw).unwrap_or_else(|| unparsed_excerpt(raw));
    Decoded::Quarantined(Quarantined {
        reason: bounded(&safe_reason(reason.as_ref()), 300).into_owned(),
        excerpt: bounded(&excerpt, EXCERPT_CHARS).into_owned(),
        source: None,
    })
}

/// Fields whose values a quarantine excerpt keeps: they identify a record, AWS fills them
/// from a closed vocabulary, and they hold no secret. Every other string is replaced.
const EXCERPT_KEPT: &[&str] = &[
    "eventName",
    "eventSource",
    "eventTime",
    "eventID",
    "eventType",
    "eventVersion",
    "awsRegion",
    "recipientAccountId",
    "accountId",
    "account",
    "errorCode",
    "detail-type",
];

/// The shape of an identifying field's value: short, and only letters, digits and `_.:/@+-`.
/// The shape a kept field's value must have to be shown (an account is 12 digits, a region
/// `eu-west-1`, a time RFC 3339, a name letters and digits), and no secret shape: anything else
/// is shown as its length, so a secret put in an allow-listed field does not come out either.
fn is_identifying_value(key: &str, value: &str) -> bool {
    let b = value.as_bytes();
    let all = |ok: fn(u8) -> bool| !b.is_empty() && b.iter().all(|&c| ok(c));
    let shaped = match key {
        "recipientAccountId" | "accountId" | "account" => {
            b.len() == 12 && all(|c| c.is_ascii_digit())
        }
        "awsRegion" => {
            b.len() <= 20 && all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        }
        "eventTime" => b.len() <= 40 && all(|c| c.is_ascii_digit() || b"-:.TZ+".contains(&c)),
        "eventName" | "errorCode" | "eventType" => {
            b.len() <= 80 && all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b':')
        }
        "eventSource" => {
            b.len() <= 80
                && all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        }
        "eventVersion" => b.len() <= 10 && all(|c| c.is_ascii_digit() || c == b'.'),
        "detail-type" => {
            b.len() <= 60 && all(|c| c.is_ascii_alphanumeric() || c == b' ' || c == b'-')
        }
        // eventID: a UUID, or an id of letters, digits and dashes.
        _ => b.len() <= 64 && all(|c| c.is_ascii_alphanumeric() || c == b'-'),
    };
    // An API name (`UpdateFunctionConfiguration20150331v2`) reads as random to the entropy
    // test; a CamelCase name with lower-case letters is no token shape anyone listed.
    let api_name = matches!(key, "eventName" | "errorCode" | "eventType")
        && b.first().is_some_and(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase);
    shaped && (api_name || matches!(redact_text(value), Cow::Borrowed(_)))
}

/// What stands for a string an excerpt does not keep: its length only.
fn withheld(text: &str) -> String {
    format!("[{} chars]", text.chars().count())
}

/// True for a key that reads as a field name (`eventName`, `x-amz-id-2`, `DB_HOST`), which an
/// excerpt may show. Anything else (a token used as a key, free text) is replaced by its
/// length: a secret nobody listed cannot leak through a key either.
fn looks_like_field_name(key: &str) -> bool {
    let bytes = key.as_bytes();
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    let (upper, lower) = (
        bytes.iter().any(u8::is_ascii_uppercase),
        bytes.iter().any(u8::is_ascii_lowercase),
    );
    !bytes.is_empty()
        && bytes.len() <= 48
        && bytes[0].is_ascii_alphabetic()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        && digits <= 3
        && !(bytes.len() >= 10 && upper && lower && digits > 0)
        // No known token shape is shorter than 16 characters: short keys skip the scan.
        && (bytes.len() < 16 || matches!(redact_text(key), Cow::Borrowed(_)))
}

/// A reason safe to show: quoted input inside it (serde quotes the value it choked on) is
/// replaced by its length.
fn safe_reason(reason: &str) -> String {
    static QUOTED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        #[allow(clippy::unwrap_used)] // A constant pattern, exercised by the tests.
        regex::Regex::new(r#""(?:[^"\\]|\\.)*"?|`[^`]*`?"#).unwrap()
    });
    QUOTED
        .replace_all(reason, |caps: &regex::Captures<'_>| withheld(&caps[0]))
        .into_owned()
}

/// The excerpt of a record that is not JSON: its length, and the kept fields a plain scan
/// finds in it (`"eventName": "X"`), as JSON. Nothing else of it.
fn unparsed_excerpt(raw: &str) -> String {
    static FIELD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        #[allow(clippy::unwrap_used)] // A constant pattern, exercised by the tests.
        regex::Regex::new(r#""([A-Za-z-]{3,24})"\s*:\s*"([A-Za-z0-9_.:/+-]{1,128})""#).unwrap()
    });
    let mut out = serde_json::Map::new();
    out.insert(
        "unparsed".to_owned(),
        serde_json::Value::String(withheld(raw)),
    );
    for caps in FIELD.captures_iter(raw) {
        let key = &caps[1];
        if EXCERPT_KEPT.contains(&key) && !out.contains_key(key) {
            out.insert(
                key.to_owned(),
                serde_json::Value::String(caps[2].to_owned()),
            );
        }
    }
    serde_json::Value::Object(out).to_string()
}

/// The start of a JSON text, re-written value by value, safe by construction: its structure,
/// numbers, booleans and nulls stay; strings stay only under the identifying keys of
/// [`EXCERPT_KEPT`] (and are scanned for secret shapes even there); every other string, and
/// everything under a secret key, is replaced by its length or a redacted marker; keys stay
/// only where they read as field names. It stops once the excerpt is long enough: a bad
/// record costs its excerpt, not a tree. `None` when `raw` is not JSON.
fn json_excerpt(raw: &str) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len().min(EXCERPT_CHARS * 4) + 16);
    let written = serde::de::DeserializeSeed::deserialize(
        Excerpt {
            out: &mut out,
            under: Under::Other,
            key: "",
        },
        &mut serde_json::Deserializer::from_str(raw),
    );
    match written {
        Ok(()) => {}
        Err(err) if err.to_string().starts_with(EXCERPT_FULL) => {}
        Err(_) => return None,
    }
    String::from_utf8(out).ok()
}

/// A UTF-8 byte that continues a character rather than starting one.
fn is_continuation_byte(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Stops an excerpt once it holds more than [`EXCERPT_CHARS`] characters (not a failure).
const EXCERPT_FULL: &str = "excerpt full";

/// What key a value of an excerpt sits under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Under {
    /// An identifying field ([`EXCERPT_KEPT`]): its string is kept.
    Kept,
    /// A secret key: the value is replaced whole (unless null or a boolean).
    Secret,
    /// Anything else: structure and numbers stay, strings are replaced by their length.
    Other,
}

impl Under {
    fn of(key: &str) -> Self {
        if EXCERPT_KEPT.contains(&key) {
            Self::Kept
        } else if is_secret_key(key) {
            Self::Secret
        } else {
            Self::Other
        }
    }
}

/// Writes one JSON value as safe JSON into `out` (see [`json_excerpt`]).
struct Excerpt<'o, 'k> {
    out: &'o mut Vec<u8>,
    under: Under,
    /// The key the value sits under (`""` for array items and the root).
    key: &'k str,
}

impl Excerpt<'_, '_> {
    fn text<E: serde::de::Error>(&mut self, text: &str) -> Result<(), E> {
        serde_json::to_writer(&mut *self.out, &*redact_text(text)).map_err(E::custom)
    }

    /// The value of an identifying field, as it is when it has the shape such values have
    /// (`CreateUser`, `2026-11-02T03:00:00Z`, an id, a region); else its length.
    fn kept<E: serde::de::Error>(&mut self, value: &str) -> Result<(), E> {
        let text = if is_identifying_value(self.key, value) {
            value.to_owned()
        } else {
            withheld(value)
        };
        serde_json::to_writer(&mut *self.out, &text).map_err(E::custom)
    }

    fn redacted<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.text(crate::enrich::redact::REDACTED)
    }

    fn number<E: serde::de::Error>(
        mut self,
        number: impl Into<serde_json::Value>,
    ) -> Result<(), E> {
        if self.under == Under::Secret {
            return self.redacted();
        }
        // Small numbers (counts, ports, sizes in KB) say what a record was; a long one may be a
        // card number or a PIN nobody flagged.
        let number = number.into();
        let digits = number
            .to_string()
            .bytes()
            .filter(u8::is_ascii_digit)
            .count();
        if digits > 3 {
            return self.text(&format!("[number: {digits} digits]"));
        }
        serde_json::to_writer(&mut *self.out, &number).map_err(E::custom)
    }

    /// More than [`EXCERPT_CHARS`] characters written (counted once there are that many bytes).
    fn full<E: serde::de::Error>(&self) -> Result<(), E> {
        let is_full = self.out.len() > EXCERPT_CHARS
            && self
                .out
                .iter()
                .filter(|&&b| !is_continuation_byte(b))
                .count()
                > EXCERPT_CHARS;
        if is_full {
            return Err(E::custom(EXCERPT_FULL));
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Excerpt<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Excerpt<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: serde::de::Error>(mut self, value: &str) -> Result<(), E> {
        match self.under {
            Under::Secret => self.redacted(),
            Under::Kept => self.kept(value),
            Under::Other => self.text(&withheld(value)),
        }
    }

    fn visit_bool<E>(self, value: bool) -> Result<(), E> {
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<(), E> {
        self.number(value)
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<(), E> {
        self.number(value)
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<(), E> {
        self.number(value)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.under == Under::Secret {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            return self.redacted();
        }
        self.out.push(b'[');
        for n in 0.. {
            self.full()?;
            let before = self.out.len();
            if n > 0 {
                self.out.push(b',');
            }
            let item = Excerpt {
                out: &mut *self.out,
                under: Under::Other,
                key: "",
            };
            if seq.next_element_seed(item)?.is_none() {
                // No element after all: take the separator back.
                self.out.truncate(before);
                break;
            }
        }
        self.out.push(b']');
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if self.under == Under::Secret {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            return self.redacted();
        }
        self.out.push(b'{');
        let mut first = true;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            self.full()?;
            if !first {
                self.out.push(b',');
            }
            first = false;
            if looks_like_field_name(&key) {
                self.text(&key)?;
            } else {
                self.text(&format!("[key: {} chars]", key.chars().count()))?;
            }
            self.out.push(b':');
            map.next_value_seed(Excerpt {
                out: &mut *self.out,
                under: Under::of(&key),
                key: &key,
            })?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

type Str<'a> = Option<Text<'a>>;

/// A string field, borrowed from the input unless it holds escapes. (serde's own impl for
/// `Option<Cow<str>>` always copies, even with `#[serde(borrow)]`.)
#[derive(Debug, Clone, Default)]
pub(super) struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(value)))
            }

            fn visit_str<E>(self, value: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(value.to_owned())))
            }

            fn visit_string<E>(self, value: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Self(Cow::Borrowed(text))
    }
}

/// Every shape's top-level fields at once: envelopes, containers and CloudTrail records.
/// Unknown fields are skipped without being built.
#[derive(Debug, Default, Deserialize)]
struct Probe<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    kinesis: Option<KinesisProbe<'a>>,
    #[serde(borrow)]
    data: Str<'a>,
    #[serde(rename = "partitionKey", borrow)]
    partition_key: Str<'a>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    // EventBridge envelope
    #[serde(rename = "detail-type", borrow)]
    detail_type: Str<'a>,
    /// The CloudTrail record (or EC2 state change) inside an envelope, parsed in the same pass.
    #[serde(borrow)]
    detail: Option<Box<Probe<'a>>>,
    // EC2 state-change detail
    #[serde(rename = "instance-id", borrow)]
    instance_id: Str<'a>,
    #[serde(borrow)]
    state: Str<'a>,
    #[serde(borrow)]
    id: Str<'a>,
    #[serde(borrow)]
    account: Str<'a>,
    /// The envelope's `source` (`aws.iam`, `aws.events`, ...).
    #[serde(borrow)]
    source: Str<'a>,
    #[serde(borrow)]
    time: Str<'a>,
    #[serde(borrow)]
    region: Str<'a>,
    // CloudTrail record
    #[serde(rename = "eventID", borrow)]
    event_id: Str<'a>,
    #[serde(rename = "eventTime", borrow)]
    event_time: Str<'a>,
    #[serde(rename = "eventSource", borrow)]
    event_source: Str<'a>,
    #[serde(rename = "eventName", borrow)]
    event_name: Str<'a>,
    #[serde(rename = "eventType", borrow)]
    event_type: Str<'a>,
    /// Set in a CloudTrail digest file, which has no `Records`.
    #[serde(rename = "digestStartTime", borrow)]
    digest_start: Option<&'a RawValue>,
    #[serde(rename = "logFiles", borrow)]
    log_files: Option<&'a RawValue>,
    #[serde(rename = "awsRegion", borrow)]
    aws_region: Str<'a>,
    #[serde(rename = "sourceIPAddress", borrow)]
    source_ip: Str<'a>,
    #[serde(rename = "userAgent", borrow)]
    user_agent: Str<'a>,
    #[serde(rename = "errorCode", borrow)]
    error_code: Str<'a>,
    #[serde(rename = "errorMessage", borrow)]
    error_message: Str<'a>,
    /// `true`, or `"true"` as some pipelines rewrite it; anything else reads as unknown.
    #[serde(rename = "readOnly", borrow)]
    read_only: Option<&'a RawValue>,
    #[serde(rename = "recipientAccountId", borrow)]
    recipient_account: Str<'a>,
    #[serde(rename = "userIdentity", borrow)]
    user_identity: Option<IdentityProbe<'a>>,
    /// `"true"` (or `true`) when the credentials came from a console sign-in.
    #[serde(rename = "sessionCredentialFromConsole", borrow)]
    from_console: Option<&'a RawValue>,
    #[serde(rename = "requestParameters", borrow)]
    request: Option<&'a RawValue>,
    #[serde(rename = "responseElements", borrow)]
    response: Option<&'a RawValue>,
    #[serde(rename = "additionalEventData", borrow)]
    additional: Option<&'a RawValue>,
    #[serde(borrow)]
    resources: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct KinesisProbe<'a> {
    #[serde(borrow)]
    data: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
struct IdentityProbe<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    arn: Str<'a>,
    #[serde(rename = "accountId", borrow)]
    account_id: Str<'a>,
    #[serde(rename = "userName", borrow)]
    user_name: Str<'a>,
    #[serde(rename = "principalId", borrow)]
    principal_id: Str<'a>,
    #[serde(rename = "invokedBy", borrow)]
    invoked_by: Str<'a>,
    #[serde(rename = "accessKeyId", borrow)]
    access_key_id: Str<'a>,
    #[serde(rename = "sessionContext", borrow)]
    session: Option<SessionProbe<'a>>,
    #[serde(rename = "onBehalfOf", borrow)]
    on_behalf_of: Option<OnBehalfOfProbe<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct OnBehalfOfProbe<'a> {
    #[serde(rename = "userId", borrow)]
    user_id: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
struct SessionProbe<'a> {
    #[serde(rename = "sessionIssuer", borrow)]
    issuer: Option<IssuerProbe<'a>>,
    #[serde(borrow)]
    attributes: Option<AttributesProbe<'a>>,
    #[serde(rename = "sourceIdentity", borrow)]
    source_identity: Str<'a>,
    /// `"true"` in a session from `sts:AssumeRoot`; kept raw, as it comes as text or boolean.
    #[serde(rename = "assumedRoot", borrow)]
    assumed_root: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
struct IssuerProbe<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(rename = "userName", borrow)]
    user_name: Str<'a>,
    #[serde(borrow)]
    arn: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
struct AttributesProbe<'a> {
    #[serde(rename = "mfaAuthenticated", borrow)]
    mfa_authenticated: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
struct AdditionalProbe<'a> {
    #[serde(rename = "MFAUsed", borrow)]
    mfa_used: Str<'a>,
    #[serde(rename = "UserName", borrow)]
    user_name: Str<'a>,
}

#[derive(Debug, Default, Deserialize)]
struct ConsoleResponseProbe<'a> {
    #[serde(rename = "ConsoleLogin", borrow)]
    console_login: Str<'a>,
}

/// A decoded record, borrowing from the input: rules see its [`Facts`] before anything is
/// allocated; [`Record::to_event`] builds the owned, redacted [`Event`].
#[derive(Debug)]
pub struct Record<'a> {
    id: Cow<'a, str>,
    account: Cow<'a, str>,
    time: DateTime<Utc>,
    region: Cow<'a, str>,
    kind: EventKind,
    source: Cow<'a, str>,
    name: Cow<'a, str>,
    identity: IdentityProbe<'a>,
    user_agent: Str<'a>,
    source_ip: Str<'a>,
    error_code: Str<'a>,
    error_message: Str<'a>,
    read_only: Option<bool>,
    mfa_used: Str<'a>,
    /// `additionalEventData.UserName`.
    sign_in_name: Str<'a>,
    from_console: bool,
    login_result: Str<'a>,
    state: Str<'a>,
    request: Option<&'a RawValue>,
    response: Option<&'a RawValue>,
    additional: Option<&'a RawValue>,
    resources: Option<&'a RawValue>,
    envelope_resources: Vec<String>,
    /// The JSON this record came in: its EventBridge envelope, or the bare CloudTrail record.
    text: &'a str,
    enveloped: bool,
    /// What was odd about it, and how it was read anyway (see [`Event::oddities`]).
    oddities: Vec<&'static str>,
}

/// RFC 3339 (CloudTrail), or `2022-12-11 19:42:55` in UTC as some log pipelines rewrite it.
fn parse_time(text: Option<&str>, field: &str) -> Result<DateTime<Utc>, String> {
    let text = text.ok_or_else(|| format!("missing {field}"))?;
    if let Some(time) = cloudtrail_time(text) {
        return Ok(time);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|err| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                .map(|t| t.and_utc())
                .map_err(|_| err)
        })
        .map_err(|err| format!("{field} {:?} is not a time: {err}", bounded(text, 40)))
}

/// `2026-11-02T03:00:00Z`, the one shape CloudTrail and EventBridge write, without the
/// general parser; anything else (fractions, offsets, invalid dates) goes to chrono.
fn cloudtrail_time(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let shape = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ];
    if b.len() != 20 || shape.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(5..7)?,
        number(8..10)?,
    )?;
    let time = date.and_hms_opt(number(11..13)?, number(14..16)?, number(17..19)?)?;
    Some(time.and_utc())
}

fn required<'a>(value: Str<'a>, field: &str) -> Result<Cow<'a, str>, String> {
    match value {
        Some(v) if !v.is_empty() => Ok(v.0),
        _ => Err(format!("missing {field}")),
    }
}

impl<'a> Record<'a> {
    fn new(
        probe: Probe<'a>,
        envelope: Option<(&Probe<'a>, EventKind)>,
        file_account: Option<&str>,
    ) -> Result<Self, String> {
        let kind = envelope.map_or_else(
            || EventKind::from_event_type(probe.event_type.as_deref()),
            |(_, kind)| kind,
        );
        let id = probe
            .event_id
            .or_else(|| envelope.and_then(|(e, _)| e.id.clone()));
        let mut oddities = Vec::new();
        // EventBridge stamps the envelope's `account` itself; the record's own field is payload,
        // which anyone who can write to the stream could set. The envelope's wins.
        let stamped = envelope.and_then(|(e, _)| e.account.clone());
        if let (Some(stamped), Some(claimed)) = (&stamped, &probe.recipient_account)
            && **stamped != **claimed
        {
            oddities.push(ACCOUNT_MISMATCH);
        }
        let account = stamped
            .or(probe.recipient_account)
            .or_else(|| {
                let account = file_account?;
                oddities.push("no recipientAccountId: account from the log file's name");
                Some(Text(Cow::Owned(account.to_owned())))
            })
            .or_else(|| {
                // The caller's account: for a cross-account call not the one it happened in.
                let caller = probe.user_identity.as_ref()?.account_id.clone()?;
                oddities.push("no recipientAccountId: account from userIdentity.accountId");
                Some(caller)
            });
        let region = probe
            .aws_region
            .or_else(|| envelope.and_then(|(e, _)| e.region.clone()));
        let additional = probe
            .additional
            .and_then(|raw| serde_json::from_str::<AdditionalProbe<'a>>(raw.get()).ok())
            .unwrap_or_default();
        let login_result = match kind {
            EventKind::ConsoleSignIn => probe
                .response
                .and_then(|raw| serde_json::from_str::<ConsoleResponseProbe<'a>>(raw.get()).ok())
                .and_then(|r| r.console_login),
            _ => None,
        };
        Ok(Self {
            id: required(id, "eventID")?,
            account: required(account, "recipientAccountId")?,
            time: parse_time(probe.event_time.as_deref(), "eventTime")?,
            region: required(region, "awsRegion")?,
            kind,
            source: required(probe.event_source, "eventSource")?,
            name: required(probe.event_name, "eventName")?,
            identity: probe.user_identity.unwrap_or_default(),
            user_agent: probe.user_agent,
            source_ip: probe.source_ip,
            error_code: probe.error_code,
            error_message: probe.error_message,
            read_only: probe.read_only.and_then(|raw| match raw.get() {
                "true" => Some(true),
                "false" => Some(false),
                "\"true\"" => {
                    oddities.push("readOnly written as text");
                    Some(true)
                }
                "\"false\"" => {
                    oddities.push("readOnly written as text");
                    Some(false)
                }
                _ => {
                    oddities.push("readOnly neither true nor false: unknown");
                    None
                }
            }),
            mfa_used: additional.mfa_used,
            sign_in_name: additional.user_name,
            from_console: is_true(probe.from_console),
            login_result,
            state: None,
            request: probe.request,
            response: probe.response,
            additional: probe.additional,
            resources: probe.resources,
            envelope_resources: Vec::new(),
            text: "",
            enveloped: false,
            oddities,
        })
    }

    fn state_change(envelope: &Probe<'a>, detail: Probe<'a>) -> Result<Self, String> {
        let envelope_resources = detail.instance_id.iter().map(|id| id.to_string()).collect();
        Ok(Self {
            id: required(envelope.id.clone(), "id")?,
            account: required(envelope.account.clone(), "account")?,
            time: parse_time(envelope.time.as_deref(), "time")?,
            region: required(envelope.region.clone(), "region")?,
            kind: EventKind::StateChange,
            source: Cow::Borrowed("ec2.amazonaws.com"),
            name: Cow::Borrowed("InstanceStateChange"),
            identity: IdentityProbe {
                kind: Some("AWSService".into()),
                invoked_by: Some("ec2.amazonaws.com".into()),
                ..IdentityProbe::default()
            },
            user_agent: None,
            source_ip: None,
            error_code: None,
            error_message: None,
            read_only: Some(false),
            mfa_used: None,
            sign_in_name: None,
            from_console: false,
            login_result: None,
            state: Some(Text(required(detail.state, "detail.state")?)),
            request: None,
            response: None,
            additional: None,
            resources: None,
            envelope_resources,
            text: "",
            enveloped: false,
            oddities: Vec::new(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// What was odd about the record, and how it was read anyway.
    pub fn oddities(&self) -> &[&'static str] {
        &self.oddities
    }

    /// This record quarantined for `reason` after all (an account not trusted, say): its
    /// excerpt built as every quarantine's is.
    pub fn quarantined(&self, reason: &str) -> Quarantined {
        match quarantine(reason, self.text) {
            Decoded::Quarantined(q) => q,
            _ => unreachable!("quarantine() always quarantines"),
        }
    }

    /// The record as EventBridge delivers it to a Kinesis target: its own envelope when it
    /// came in one, otherwise a CloudTrail envelope built around the bare record (`send`).
    pub fn envelope_json(&self) -> Cow<'a, str> {
        if self.enveloped {
            return Cow::Borrowed(self.text);
        }
        let source = self
            .source
            .strip_suffix(".amazonaws.com")
            .unwrap_or(&self.source);
        let head = serde_json::json!({
            "version": "0",
            "id": self.id,
            "detail-type": self.kind.detail_type(),
            "source": format!("aws.{source}"),
            "account": self.account,
            "time": self.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": self.region,
            "resources": [],
        })
        .to_string();
        // `head` is a JSON object: splice the original record in as `detail`, byte for byte.
        let head = head.strip_suffix('}').unwrap_or(&head);
        Cow::Owned(format!("{head},\"detail\":{}}}", self.text))
    }

    /// What rules match on, borrowed.
    pub fn facts(&self) -> Facts<'_> {
        let role_name = self
            .identity
            .session
            .as_ref()
            .and_then(|s| s.issuer.as_ref())
            .and_then(|i| i.user_name.as_deref());
        Facts {
            kind: self.kind,
            source: &self.source,
            name: &self.name,
            error_code: self.error_code.as_deref(),
            identity_type: self.identity.kind.as_deref(),
            read_only: self.read_only,
            mfa_used: self.mfa_used.as_deref(),
            login_result: self.login_result.as_deref(),
            state: self.state.as_deref(),
            user_agent: self.user_agent.as_deref(),
            role_name,
            user_name: self.identity.user_name.as_deref(),
            invoked_by: self.identity.invoked_by.as_deref(),
            account: &self.account,
            region: &self.region,
            source_ip: self.source_ip.as_deref(),
            console_session: self.from_console.then_some("true"),
            request: self.request.map(|raw| RawJson::new(raw.get())),
            response: self.response.map(|raw| RawJson::new(raw.get())),
            additional: self.additional.map(|raw| RawJson::new(raw.get())),
            resources: self.resources.map(|raw| RawJson::new(raw.get())),
        }
    }

    /// The owned, redacted event, with the resources it touched.
    pub fn to_event(&self) -> Event {
        self.to_event_with(&mut RedactCache::default())
    }

    /// [`Record::to_event`], reusing redactions of repeated values (one cache per input).
    pub fn to_event_with(&self, cache: &mut RedactCache) -> Event {
        let resources::Extracted { resources, more } = resources::extract(
            &Sources {
                source: &self.source,
                name: &self.name,
                instances: &self.envelope_resources,
                request: self.request,
                response: self.response,
                resources: self.resources,
            },
            cache,
        );
        Event {
            // Unique per event: not worth remembering.
            id: EventId::new(bounded(&self.id, MAX_RESOURCE_CHARS)),
            account: AccountId::new(cache.verbatim(&self.account, 40)),
            time: self.time,
            region: cache.verbatim(&self.region, 40),
            kind: self.kind,
            source: cache.verbatim(&self.source, 100),
            name: cache.verbatim(&self.name, 100),
            identity: self.owned_identity(cache),
            user_agent: cached(cache, self.user_agent.as_deref(), MAX_TEXT_CHARS),
            source_ip: cached(cache, self.source_ip.as_deref(), 100),
            error_code: ident(cache, self.error_code.as_deref(), 100),
            error_message: cached(cache, self.error_message.as_deref(), MAX_TEXT_CHARS),
            read_only: self.read_only,
            mfa_used: ident(cache, self.mfa_used.as_deref(), 20),
            login_result: ident(cache, self.login_result.as_deref(), 20),
            state: ident(cache, self.state.as_deref(), 40),
            resources,
            resources_more: more,
            oddities: self.oddities.iter().map(|&o| o.into()).collect(),
        }
    }

    fn owned_identity(&self, cache: &mut RedactCache) -> Identity {
        let id = &self.identity;
        let session = id.session.as_ref();
        let issuer = session.and_then(|s| s.issuer.as_ref());
        let role_name = issuer
            .filter(|i| i.kind.as_deref() != Some("IAMUser"))
            .and_then(|i| i.user_name.as_deref());
        Identity {
            kind: ident(cache, id.kind.as_deref(), 40),
            arn: cached(cache, id.arn.as_deref(), MAX_RESOURCE_CHARS),
            account_id: ident(cache, id.account_id.as_deref(), 40),
            user_name: cached(cache, id.user_name.as_deref(), MAX_RESOURCE_CHARS),
            principal_id: cached(cache, id.principal_id.as_deref(), MAX_RESOURCE_CHARS),
            invoked_by: ident(cache, id.invoked_by.as_deref(), 100),
            access_key_id: id
                .access_key_id
                .as_deref()
                .map(|key| crate::enrich::redact::shorten_access_key(key).into()),
            role_name: cached(cache, role_name, MAX_RESOURCE_CHARS),
            mfa_authenticated: session
                .and_then(|s| s.attributes.as_ref())
                .and_then(|a| a.mfa_authenticated.as_deref())
                .map(|v| v.eq_ignore_ascii_case("true")),
            source_identity: cached(
                cache,
                session.and_then(|s| s.source_identity.as_deref()),
                MAX_RESOURCE_CHARS,
            ),
            role_arn: cached(
                cache,
                issuer.and_then(|i| i.arn.as_deref()),
                MAX_RESOURCE_CHARS,
            ),
            on_behalf_of: cached(
                cache,
                id.on_behalf_of.as_ref().and_then(|o| o.user_id.as_deref()),
                MAX_RESOURCE_CHARS,
            ),
            sign_in_name: cached(cache, self.sign_in_name.as_deref(), MAX_RESOURCE_CHARS),
            assumed_root: is_true(session.and_then(|s| s.assumed_root)),
            from_console: self.from_console,
        }
    }
}

/// A flag CloudTrail writes as `"true"` in some records and `true` in others.
fn is_true(raw: Option<&RawValue>) -> bool {
    raw.is_some_and(|raw| matches!(raw.get(), "true" | "\"true\""))
}

/// Fields AWS fills from a closed vocabulary (ids, names, regions, codes): bounded, and not
/// scanned for secrets, since no credential is ever written there.
fn ident(cache: &mut RedactCache, text: Option<&str>, max: usize) -> Option<SharedStr> {
    text.map(|t| cache.verbatim(t, max))
}

/// Free text and names a person chose: bounded and redacted.
fn cached(cache: &mut RedactCache, text: Option<&str>, max: usize) -> Option<SharedStr> {
    text.map(|t| cache.clean(t, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> (Vec<Event>, Vec<Quarantined>) {
        let mut events = Vec::new();
        let mut quarantined = Vec::new();
        decode_bytes(input, &mut |decoded| match decoded {
            Decoded::Record(record) => events.push(record.to_event()),
            Decoded::Quarantined(q) => quarantined.push(q),
            Decoded::Skipped(_) | Decoded::Heartbeat(_) => {}
        });
        (events, quarantined)
    }

    const RECORD: &str = r#"{"eventVersion":"1.09","eventID":"e-1","eventTime":"2026-11-02T03:01:07Z",
        "eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1",
        "recipientAccountId":"111111111111","eventType":"AwsApiCall","readOnly":false,
        "userIdentity":{"type":"AssumedRole","accessKeyId":"ASIAIOSFODNN7EXAMPLE",
          "sessionContext":{"sessionIssuer":{"type":"Role","userName":"admin"},
          "attributes":{"mfaAuthenticated":"true"}}},
        "requestParameters":{"userName":"alice","password":"hunter2-planted"},
        "responseElements":{"credentials":{"sessionToken":"FwoGZXIvYXdzEJr-planted"}}}"#;

    #[test]
    fn excerpts_redact_secret_keys_values_and_keys() {
        let raw = r#"{"credentials":{"sessionToken":"abc","accessKeyId":"ASIAIOSFODNN7EXAMPLE"},
            "userName":"alice","newPassword":"hunter2","pin":{"password":[1,2]},"n":-1.5,
            "ok":true,"none":null,"AKIAIOSFODNN7EXAMPLE":"key as a key","list":[1,"two",[]]}"#;
        let Some(text) = json_excerpt(raw) else {
            panic!("valid JSON has an excerpt");
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
            panic!("the excerpt is JSON: {text}");
        };
        assert_eq!(value["credentials"], "[REDACTED]");
        assert_eq!(value["newPassword"], "[REDACTED]");
        assert_eq!(value["pin"]["password"], "[REDACTED]");
        // Not an identifying field: only its length.
        assert_eq!(value["userName"], "[5 chars]");
        assert_eq!(value["n"], -1.5);
        assert_eq!(value["ok"], true);
        assert!(value["none"].is_null());
        assert_eq!(value["list"], serde_json::json!([1, "[3 chars]", []]));
        assert_eq!(
            value["[key: 20 chars]"], "[12 chars]",
            "a token as a key: {text}"
        );
        for secret in ["abc", "hunter2", "IOSFODNN7EXAMPLE", "alice"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(json_excerpt("{\"a\": [1, 2"), None);
    }

    /// The excerpt keeps what identifies a record and nothing a person or a program chose:
    /// a secret in a shape nobody listed, under an innocent key, cannot come out.
    #[test]
    fn excerpts_keep_only_identifying_fields() {
        let raw = r#"{"eventName":"UpdateFunctionConfiguration20150331v2","eventID":"e-9",
            "recipientAccountId":"111111111111","awsRegion":"eu-west-1",
            "requestParameters":{"environment":{"variables":{"STRIPE_KEY":"zq9-unlisted-shape-7Hk2",
            "DB_URL":"postgres://u:p4ss@h/db"}},"containerOverrides":[{"name":"DB_PASSWORD",
            "value":"plain-value-nobody-listed"}]}}"#;
        let Some(text) = json_excerpt(raw) else {
            panic!("valid JSON has an excerpt");
        };
        for kept in [
            "UpdateFunctionConfiguration20150331v2",
            "e-9",
            "111111111111",
            "eu-west-1",
        ] {
            assert!(text.contains(kept), "{kept} missing: {text}");
        }
        for secret in ["zq9-unlisted", "p4ss", "plain-value", "DB_PASSWORD"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        // An allow-listed key holding something that is not its shape, a long number, a
        // key that reads as a token: none of them come out.
        let odd = r#"{"eventName":"X","requestParameters":{"accountId":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "pin":4921,"port":443,"Hunter2Planted":"x"}}"#;
        let Some(text) = json_excerpt(odd) else {
            panic!("valid JSON has an excerpt");
        };
        for secret in ["wJalrXUtnFEMI", "4921", "Hunter2Planted"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("\"port\":443"), "{text}");
        // Broken JSON: its length and the identifying fields a scan finds, nothing else.
        let broken = r#"{"eventName":"PutParameter","eventID":"e-10","requestParameters":{"value":"zq9-unlisted-shape","#;
        let Decoded::Quarantined(q) = quarantine("EOF while parsing", broken) else {
            panic!("a quarantine");
        };
        assert!(
            q.excerpt.contains("\"eventName\":\"PutParameter\""),
            "{}",
            q.excerpt
        );
        assert!(q.excerpt.contains("\"unparsed\""), "{}", q.excerpt);
        assert!(!q.excerpt.contains("zq9"), "{}", q.excerpt);
        // A reason quoting the input it choked on does not repeat it.
        let reason = safe_reason("invalid type: string \"zq9-unlisted-shape\", expected a boolean");
        assert!(!reason.contains("zq9"), "{reason}");
        assert!(reason.contains("expected a boolean"), "{reason}");
    }

    #[test]
    fn a_log_files_name_gives_its_account() {
        for (name, account) in [
            (
                "AWSLogs/o-abc/111111111111/CloudTrail/us-east-1/2026/11/02/111111111111_CloudTrail_us-east-1_20261102T0300Z_AbCd.json.gz",
                Some("111111111111"),
            ),
            (
                "222222222222_CloudTrail_eu-west-1_20261102T0300Z_x.json",
                Some("222222222222"),
            ),
            ("222222222222_CloudTrail-Digest_eu-west-1_x.json.gz", None),
            ("events.jsonl", None),
            ("12345_CloudTrail_x.json", None),
        ] {
            assert_eq!(file_account(name), account, "{name}");
        }
    }

    #[test]
    fn long_records_are_excerpted_not_rewritten_whole() {
        let items: Vec<String> = (0..5_000).map(|i| format!("\"item-{i}\"")).collect();
        let raw = format!("{{\"eventName\":\"X\",\"items\":[{}]}}", items.join(","));
        let Decoded::Quarantined(q) = quarantine("test", &raw) else {
            panic!("a quarantine");
        };
        assert!(
            q.excerpt
                .starts_with("{\"eventName\":\"X\",\"items\":[\"[6 chars]\""),
            "{}",
            q.excerpt
        );
        assert!(q.excerpt.ends_with('…'), "{}", q.excerpt);
        assert_eq!(q.excerpt.chars().count(), EXCERPT_CHARS + 1);
    }

    #[test]
    fn the_fast_time_path_agrees_with_chrono() {
        for text in [
            "2026-11-02T03:00:00Z",
            "2024-02-29T23:59:59Z",
            "1999-12-31T00:00:01Z",
        ] {
            let slow = DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc));
            assert_eq!(cloudtrail_time(text), slow.ok(), "{text}");
        }
        for text in [
            "2023-02-29T00:00:00Z",
            "2026-13-02T03:00:00Z",
            "2026-11-02T24:00:00Z",
            "2026-11-02T03:00:00+",
            "2026-11-02 03:00:00Z",
            "2026-1a-02T03:00:00Z",
        ] {
            assert_eq!(cloudtrail_time(text), None, "{text}");
        }
        assert!(parse_time(Some("2026-11-02T03:00:00.123Z"), "t").is_ok());
        assert!(parse_time(Some("2023-02-29T00:00:00Z"), "t").is_err());
    }

    #[test]
    fn bare_record() {
        let (events, quarantined) = decode_all(RECORD.as_bytes());
        assert!(quarantined.is_empty());
        let event = &events[0];
        assert_eq!(event.id.as_str(), "e-1");
        assert_eq!(event.account.as_str(), "111111111111");
        assert_eq!(event.kind, EventKind::ApiCall);
        assert_eq!(event.identity.role_name.as_deref(), Some("admin"));
        assert_eq!(event.identity.access_key_id.as_deref(), Some("ASIA…MPLE"));
        assert_eq!(event.identity.mfa_authenticated, Some(true));
        assert_eq!(event.resources.len(), 1);
        assert_eq!(&*event.resources[0].name, "alice");
        let text = serde_json::to_string(event).unwrap_or_default();
        assert!(!text.contains("planted"), "{text}");
    }

    #[test]
    fn envelope_s3_file_jsonl_and_gzip() {
        let envelope = format!(
            r#"{{"version":"0","id":"env-1","detail-type":"AWS API Call via CloudTrail","source":"aws.iam","account":"111111111111","time":"2026-11-02T03:01:07Z","region":"us-east-1","resources":[],"detail":{RECORD}}}"#
        )
        .replace('\n', " ");
        let s3 = format!(r#"{{"Records":[{RECORD},{RECORD}]}}"#);
        let jsonl = format!("{envelope}\n{}\n", RECORD.replace('\n', " "));
        for (input, count) in [
            (envelope.clone(), 1),
            (s3.clone(), 2),
            (jsonl, 2),
            (format!("[{envelope}]"), 1),
        ] {
            let (events, quarantined) = decode_all(input.as_bytes());
            assert_eq!((events.len(), quarantined.len()), (count, 0), "{input}");
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, s3.as_bytes()).unwrap_or_default();
        let (events, _) = decode_all(&gz.finish().unwrap_or_default());
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn kinesis_shapes() {
        let envelope = format!(
            r#"{{"version":"0","id":"env-1","detail-type":"AWS API Call via CloudTrail","source":"aws.iam","account":"111111111111","time":"2026-11-02T03:01:07Z","region":"us-east-1","detail":{RECORD}}}"#
        );
        let data = base64::engine::general_purpose::STANDARD.encode(envelope);
        let pipe = format!(
            r#"[{{"eventSource":"aws:kinesis","eventID":"shardId-0:1","data":"{data}","partitionKey":"111111111111"}},{{"eventID":"shardId-0:2","data":"!!!","partitionKey":"1"}}]"#
        );
        let (events, quarantined) = decode_all(pipe.as_bytes());
        assert_eq!((events.len(), quarantined.len()), (1, 1));
        let esm = format!(
            r#"{{"Records":[{{"kinesis":{{"data":"{data}","partitionKey":"1","sequenceNumber":"1"}},"eventSource":"aws:kinesis"}}]}}"#
        );
        let (events, quarantined) = decode_all(esm.as_bytes());
        assert_eq!((events.len(), quarantined.len()), (1, 0));
    }

    #[test]
    fn state_change_and_console_sign_in() {
        let input = r#"{"id":"sc-1","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"111111111111","time":"2026-11-02T03:01:07Z","region":"ap-northeast-2","resources":["arn:aws:ec2:ap-northeast-2:111111111111:instance/i-0abc"],"detail":{"instance-id":"i-0abc","state":"terminated"}}
{"id":"si-1","detail-type":"AWS Console Sign In via CloudTrail","source":"aws.signin","account":"111111111111","time":"2026-11-02T03:01:07Z","region":"us-east-1","detail":{"eventID":"si-1","eventTime":"2026-11-02T03:01:07Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","recipientAccountId":"111111111111","userIdentity":{"type":"Root"},"additionalEventData":{"MFAUsed":"No"},"responseElements":{"ConsoleLogin":"Success"}}}"#;
        let (events, quarantined) = decode_all(input.as_bytes());
        assert!(quarantined.is_empty(), "{quarantined:?}");
        assert_eq!(events[0].state.as_deref(), Some("terminated"));
        assert_eq!(&*events[0].resources[0].name, "i-0abc");
        assert_eq!(events[1].kind, EventKind::ConsoleSignIn);
        assert_eq!(events[1].mfa_used.as_deref(), Some("No"));
        assert_eq!(events[1].login_result.as_deref(), Some("Success"));
    }

    #[test]
    fn bad_lines_are_quarantined_one_each_and_redacted() {
        let input = format!(
            "{}\n{{\"broken\": \n plain text\n{{}}\n[1,2]\n{{\"eventName\":\"X\",\"password\":\"Tr0ub4dor&3-planted\"}}\n{}\n",
            RECORD.replace('\n', " "),
            RECORD.replace('\n', " ").replace("e-1", "e-2")
        );
        let (events, quarantined) = decode_all(input.as_bytes());
        assert_eq!(events.len(), 2);
        assert_eq!(quarantined.len(), 5, "{quarantined:#?}");
        for q in &quarantined {
            assert!(!q.excerpt.contains("Tr0ub4dor"), "{q:?}");
            assert!(!q.reason.is_empty());
        }
    }

    #[test]
    fn missing_fields_name_the_field() {
        let input = RECORD.replace("\"eventTime\":\"2026-11-02T03:01:07Z\",", "");
        let (_, quarantined) = decode_all(input.as_bytes());
        assert_eq!(quarantined[0].reason, "missing eventTime");
        let input = RECORD.replace("2026-11-02T03:01:07Z", "2026-11-02 03:01:07");
        let (events, _) = decode_all(input.as_bytes());
        assert_eq!(events[0].time.to_rfc3339(), "2026-11-02T03:01:07+00:00");
        let input = RECORD.replace("2026-11-02T03:01:07Z", "yesterday");
        let (_, quarantined) = decode_all(input.as_bytes());
        assert!(
            quarantined[0].reason.starts_with("eventTime"),
            "{quarantined:?}"
        );
    }

    #[test]
    fn envelope_json_keeps_envelopes_and_wraps_bare_records() {
        let envelope = format!(
            r#"{{"version":"0","id":"env-1","detail-type":"AWS API Call via CloudTrail","source":"aws.iam","account":"111111111111","time":"2026-11-02T03:01:07Z","region":"us-east-1","detail":{RECORD}}}"#
        );
        let mut texts = Vec::new();
        let input = format!("{envelope}\n{}", RECORD.replace('\n', " "));
        decode_bytes(input.as_bytes(), &mut |decoded| {
            if let Decoded::Record(record) = decoded {
                texts.push(record.envelope_json().into_owned());
            }
        });
        assert_eq!(texts[0], envelope);
        let wrapped: serde_json::Value = serde_json::from_str(&texts[1]).unwrap_or_default();
        assert_eq!(wrapped["detail-type"], "AWS API Call via CloudTrail");
        assert_eq!(wrapped["source"], "aws.iam");
        assert_eq!(wrapped["account"], "111111111111");
        assert_eq!(wrapped["detail"]["eventID"], "e-1");
        let (events, quarantined) = decode_all(texts[1].as_bytes());
        assert_eq!((events.len(), quarantined.len()), (1, 0));
        assert_eq!(events[0].id.as_str(), "e-1");
    }

    #[test]
    fn only_json_lines_large_enough_are_cut_and_only_at_line_ends() {
        let line = br#"{"eventName":"GetObject"}"#;
        let mut lines = Vec::new();
        for _ in 0..100 {
            lines.extend_from_slice(line);
            lines.push(b'\n');
        }
        let cut = line_parts(&lines, 4, 500);
        assert_eq!(cut.len(), 4);
        assert!(cut.iter().all(|part| part.ends_with(b"\n")));
        assert_eq!(cut.concat(), lines);
        // Fewer parts than asked when a part would be smaller than `min_part`.
        assert_eq!(line_parts(&lines, 8, lines.len() / 2).len(), 2);
        assert_eq!(line_parts(&lines, 4, lines.len() + 1).len(), 1);
        // One JSON document spread over lines, and gzip, are read whole.
        let document = format!("{{\"Records\": [\n{}\n]}}", "{}, ".repeat(200) + "{}");
        assert_eq!(line_parts(document.as_bytes(), 4, 10).len(), 1);
        let mut gzip = vec![0x1f, 0x8b];
        gzip.extend_from_slice(&lines);
        assert_eq!(line_parts(&gzip, 4, 10).len(), 1);
    }

    mod properties {
        use std::sync::LazyLock;

        use proptest::prelude::*;

        use super::super::{Decoded, EXCERPT_CHARS, decode_bytes, decode_json_lines, line_parts};

        /// Every fixture, whole and line by line: real shapes for the mutations to break.
        static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
            let mut seeds = Vec::new();
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let name = path.to_string_lossy();
                if !(name.ends_with(".json") || name.ends_with(".jsonl") || name.ends_with(".gz")) {
                    continue;
                }
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                seeds.extend(bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec));
                seeds.push(bytes);
            }
            // Shapes no fixture has: empty and odd containers, bare values.
            for odd in [
                "[]",
                "[1,2]",
                "{}",
                "\"text\"",
                "1",
                "null",
                "[{}]",
                r#"{"Records":[]}"#,
                r#"{"Records":[1,{}]}"#,
                r#"[{"data":"!!","partitionKey":"p"}]"#,
                r#"{"Records":[{"kinesis":{"data":"e30="}}]}"#,
                r#"{"event":{}}"#,
                r#"{"detail-type":"AWS API Call via CloudTrail","detail":null}"#,
            ] {
                seeds.push(odd.as_bytes().to_vec());
            }
            seeds.retain(|seed| !seed.trim_ascii().is_empty());
            seeds
        });

        #[derive(Debug, Clone)]
        enum Mutation {
            Truncate(usize),
            Replace(usize, u8),
            Insert(usize, Vec<u8>),
            Repeat(usize, usize),
        }

        fn mutation() -> impl Strategy<Value = Mutation> {
            prop_oneof![
                any::<usize>().prop_map(Mutation::Truncate),
                (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
                (
                    any::<usize>(),
                    prop_oneof![
                        prop::collection::vec(any::<u8>(), 1..8),
                        prop::sample::select(vec![
                            b"{".to_vec(),
                            b"[".to_vec(),
                            b"\"".to_vec(),
                            b"\\".to_vec(),
                            b",".to_vec(),
                            b"null".to_vec(),
                            b"\n".to_vec(),
                            vec![0x1f, 0x8b],
                        ]),
                    ]
                )
                    .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
                (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Repeat(at, len)),
            ]
        }

        fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
            let mut bytes = seed.to_vec();
            for m in mutations {
                let at = |n: usize| n % (bytes.len() + 1);
                match m {
                    Mutation::Truncate(n) => bytes.truncate(at(*n)),
                    Mutation::Replace(n, b) => {
                        if !bytes.is_empty() {
                            let i = n % bytes.len();
                            bytes[i] = *b;
                        }
                    }
                    Mutation::Insert(n, new) => {
                        let i = at(*n);
                        bytes.splice(i..i, new.iter().copied());
                    }
                    Mutation::Repeat(n, len) => {
                        let i = at(*n);
                        let end = (i + len).min(bytes.len());
                        let copy = bytes[i..end].to_vec();
                        bytes.splice(i..i, copy);
                    }
                }
            }
            bytes
        }

        /// Decoding any input never panics, answers for it, and keeps quarantine excerpts and
        /// reasons bounded; what does decode builds an event.
        fn check(input: &[u8]) -> Result<(), TestCaseError> {
            let mut outcomes = 0usize;
            let mut failure = None;
            decode_bytes(input, &mut |decoded| {
                outcomes += 1;
                match decoded {
                    Decoded::Record(record) => {
                        let event = record.to_event();
                        if event.id.as_str().is_empty() {
                            failure = Some("an event without an id".to_owned());
                        }
                    }
                    Decoded::Quarantined(q) => {
                        if q.excerpt.chars().count() > EXCERPT_CHARS + 1
                            || q.reason.chars().count() > 301
                        {
                            failure = Some(format!("unbounded quarantine: {q:?}"));
                        }
                    }
                    Decoded::Skipped(_) | Decoded::Heartbeat(_) => {}
                }
            });
            prop_assert!(failure.is_none(), "{failure:?}");
            // CloudTrail log files with no records (`{"Records": []}`, one or several in a
            // row) rightly give nothing.
            let empty_log_file = {
                let values: Result<Vec<serde_json::Value>, _> =
                    serde_json::Deserializer::from_slice(input)
                        .into_iter()
                        .collect();
                values.is_ok_and(|values| {
                    !values.is_empty()
                        && values.iter().all(|v| {
                            v.get("Records")
                                .and_then(|r| r.as_array())
                                .is_some_and(Vec::is_empty)
                        })
                })
            };
            if !input.trim_ascii().is_empty() && !empty_log_file {
                prop_assert!(outcomes > 0, "input with content and no outcome");
            }
            Ok(())
        }

        /// What a test compares of one outcome: the event, or the quarantine entry.
        fn outcome(decoded: &Decoded<'_>) -> String {
            match decoded {
                Decoded::Record(record) => format!("{:?}", record.to_event()),
                Decoded::Quarantined(q) => format!("{q:?}"),
                Decoded::Skipped(s) => format!("{s:?}"),
                Decoded::Heartbeat(b) => format!("{b:?}"),
            }
        }

        #[test]
        fn every_seed_as_it_is_is_decoded_or_quarantined() {
            for seed in SEEDS.iter() {
                if let Err(err) = check(seed) {
                    panic!("{err}: {}", String::from_utf8_lossy(seed));
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn broken_fixtures_are_decoded_or_quarantined_never_lost(
                seed in any::<prop::sample::Index>(),
                mutations in prop::collection::vec(mutation(), 1..4),
            ) {
                let seed = &SEEDS[seed.index(SEEDS.len())];
                check(&apply(seed, &mutations))?;
            }

            #[test]
            fn arbitrary_bytes_are_decoded_or_quarantined_never_lost(
                input in prop::collection::vec(any::<u8>(), 0..512),
            ) {
                check(&input)?;
            }

            /// Cutting an input into parts of whole lines and decoding each part alone gives
            /// the same outcomes, in the same order, as decoding the input whole.
            #[test]
            fn parts_of_lines_decode_to_what_the_whole_gives(
                lines in prop::collection::vec(
                    (any::<prop::sample::Index>(), prop::collection::vec(mutation(), 0..2)),
                    1..24,
                ),
                parts in 1usize..6,
                min_part in 1usize..4096,
            ) {
                // A whole object first, so the input reads as JSON Lines.
                let mut input = br#"{"eventName":"first"}"#.to_vec();
                input.push(b'\n');
                for (seed, mutations) in &lines {
                    input.extend(apply(&SEEDS[seed.index(SEEDS.len())], mutations));
                    input.push(b'\n');
                }
                let cut = line_parts(&input, parts, min_part);
                prop_assert!(cut.len() <= parts);
                prop_assert_eq!(cut.concat(), input.clone());
                for part in &cut[..cut.len() - 1] {
                    prop_assert!(part.ends_with(b"\n"), "a part ends inside a line");
                }
                if cut.len() > 1 {
                    let mut by_parts = Vec::new();
                    for part in &cut {
                        decode_json_lines(part, &mut |d| by_parts.push(outcome(&d)));
                    }
                    let mut whole = Vec::new();
                    decode_bytes(&input, &mut |d| whole.push(outcome(&d)));
                    prop_assert_eq!(by_parts, whole);
                }
            }
        }

        /// Fixture records (bare, or inside an envelope) that decode, as JSON, with what they
        /// decode to: event id, account, event name.
        /// A record's JSON, and its event id, account and event name.
        type Seeded = (serde_json::Value, (String, String, String));

        static RECORDS: LazyLock<Vec<Seeded>> = LazyLock::new(|| {
            let mut out = Vec::new();
            for seed in SEEDS.iter() {
                let Ok(value) = serde_json::from_slice::<serde_json::Value>(seed) else {
                    continue;
                };
                if value.get("Records").is_some() || !value.is_object() {
                    continue;
                }
                let mut decoded = Vec::new();
                decode_bytes(seed, &mut |d| {
                    if let Decoded::Record(r) = d {
                        let e = r.to_event();
                        decoded.push((e.id.to_string(), e.account.to_string(), e.name.to_string()));
                    }
                });
                if let [one] = decoded.as_slice() {
                    out.push((value, one.clone()));
                }
            }
            out
        });

        /// Make one field of `record` odd, as real pipelines and callers do.
        fn make_odd(record: &serde_json::Value, kind: usize) -> String {
            let mut record = record.clone();
            let detail = if record.get("detail").is_some() {
                &mut record["detail"]
            } else {
                &mut record
            };
            match kind {
                0 => detail["userAgent"] = "agent-with-a-lone-surrogate-MARK".into(),
                1 => detail["readOnly"] = "false".into(),
                2 => detail["readOnly"] = "maybe".into(),
                _ => {
                    if let Some(map) = detail.as_object_mut() {
                        map.remove("recipientAccountId");
                    }
                }
            }
            record.to_string().replace("MARK", "\\ud800")
        }

        /// Issue 15, done-when 2, over every fixture record and every oddity (the whole
        /// domain, not a sample): one odd field (a lone surrogate in a caller-controlled
        /// string, `readOnly` as text or as nonsense, no `recipientAccountId`) never
        /// quarantines a record: it decodes with the same event id, account and name, and the
        /// oddity is noted on the event.
        #[test]
        fn one_odd_field_does_not_cost_the_record() {
            assert!(RECORDS.len() > 20, "{} fixture records", RECORDS.len());
            for (record, (id, account, name)) in RECORDS.iter() {
                for kind in 0..4 {
                    let odd = make_odd(record, kind);
                    let mut events = Vec::new();
                    let mut quarantined = Vec::new();
                    decode_bytes(odd.as_bytes(), &mut |d| match d {
                        Decoded::Record(r) => events.push(r.to_event()),
                        Decoded::Quarantined(q) => quarantined.push(q),
                        Decoded::Skipped(_) | Decoded::Heartbeat(_) => {}
                    });
                    assert!(quarantined.is_empty(), "{quarantined:?} for {odd}");
                    assert_eq!(events.len(), 1, "{odd}");
                    let event = &events[0];
                    assert_eq!(event.id.as_str(), id.as_str());
                    assert_eq!(event.name.as_ref(), name.as_str());
                    let caller = record
                        .get("detail")
                        .unwrap_or(record)
                        .pointer("/userIdentity/accountId")
                        .and_then(serde_json::Value::as_str);
                    let enveloped = record.get("account").is_some();
                    if kind == 3 && !enveloped && caller.is_some_and(|c| c != account) {
                        assert_eq!(Some(event.account.as_str()), caller, "{odd}");
                    } else {
                        assert_eq!(event.account.as_str(), account.as_str(), "{odd}");
                    }
                    // Noted, except an account an envelope gives (that one is the rule) and
                    // `readOnly` on an EC2 state change (which is never read there).
                    let state_change = record
                        .get("detail-type")
                        .and_then(serde_json::Value::as_str)
                        == Some("EC2 Instance State-change Notification");
                    let noted = match kind {
                        0 => true,
                        1 | 2 => !state_change,
                        _ => !enveloped,
                    };
                    assert_eq!(
                        !event.oddities.is_empty(),
                        noted,
                        "{:?}: {odd}",
                        event.oddities
                    );
                }
            }
        }
    }
}
