//! The typed CloudTrail event that flows through the engine once decoded.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::RawJson;

/// Event text shared rather than copied: the same account, region, actor or user agent
/// recurs across events, and a clone only counts a reference.
pub type SharedStr = Arc<str>;

/// A 12-digit AWS account number (kept as text: leading zeros matter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(SharedStr);

impl AccountId {
    pub fn new(id: impl Into<SharedStr>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// CloudTrail `eventID`, or the EventBridge envelope `id` when the record has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(SharedStr);

impl EventId {
    pub fn new(id: impl Into<SharedStr>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which EventBridge detail-type (or bare record type) the event came as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// `AWS API Call via CloudTrail` (or a bare `AwsApiCall` record).
    ApiCall,
    /// `AWS Console Sign In via CloudTrail` (`AwsConsoleSignIn`).
    ConsoleSignIn,
    /// `AWS Service Event via CloudTrail` (`AwsServiceEvent`).
    ServiceEvent,
    /// `EC2 Instance State-change Notification` (not a CloudTrail record).
    StateChange,
}

impl EventKind {
    /// The EventBridge `detail-type` that carries this kind of event.
    pub fn detail_type(self) -> &'static str {
        match self {
            Self::ApiCall => "AWS API Call via CloudTrail",
            Self::ConsoleSignIn => "AWS Console Sign In via CloudTrail",
            Self::ServiceEvent => "AWS Service Event via CloudTrail",
            Self::StateChange => "EC2 Instance State-change Notification",
        }
    }

    pub fn from_detail_type(detail_type: &str) -> Option<Self> {
        match detail_type {
            "AWS API Call via CloudTrail" => Some(Self::ApiCall),
            "AWS Console Sign In via CloudTrail" => Some(Self::ConsoleSignIn),
            "AWS Service Event via CloudTrail" => Some(Self::ServiceEvent),
            "EC2 Instance State-change Notification" => Some(Self::StateChange),
            _ => None,
        }
    }

    /// The kind of a bare CloudTrail record, from its `eventType`.
    pub fn from_event_type(event_type: Option<&str>) -> Self {
        match event_type {
            Some("AwsConsoleSignIn") => Self::ConsoleSignIn,
            Some("AwsServiceEvent") => Self::ServiceEvent,
            _ => Self::ApiCall,
        }
    }
}

/// Who made the call, as CloudTrail's `userIdentity` says (access key already shortened).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `userIdentity.type`: Root, IAMUser, AssumedRole, FederatedUser, AWSService, ...
    pub kind: Option<SharedStr>,
    pub arn: Option<SharedStr>,
    pub account_id: Option<SharedStr>,
    pub user_name: Option<SharedStr>,
    pub principal_id: Option<SharedStr>,
    pub invoked_by: Option<SharedStr>,
    /// Shortened (`AKIA…WXYZ`): never the whole key.
    pub access_key_id: Option<SharedStr>,
    /// `sessionContext.sessionIssuer.userName`: the role behind an assumed-role session.
    pub role_name: Option<SharedStr>,
    pub mfa_authenticated: Option<bool>,
    pub source_identity: Option<SharedStr>,
    /// `sessionContext.sessionIssuer.arn`: its path tells an Identity Center role
    /// (`role/aws-reserved/sso.amazonaws.com/...`) whatever the role is called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<SharedStr>,
    /// `onBehalfOf.userId` of an `IdentityCenterUser`: the Identity Center user's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<SharedStr>,
    /// `additionalEventData.UserName` of a sign-in event: the name typed at sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_name: Option<SharedStr>,
    /// `sessionContext.assumedRoot`: a short privileged root session from `sts:AssumeRoot`,
    /// not the root user's own password or keys.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assumed_root: bool,
    /// The record's `sessionCredentialFromConsole`: these credentials came from a console sign-in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_console: bool,
}

/// Something an event touched: a user, a bucket, an instance...
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Resource {
    /// The request field or ARN type it came from (`userName`, `bucketName`, `AWS::S3::Bucket`).
    pub kind: SharedStr,
    /// Redacted and bounded in length.
    pub name: SharedStr,
}

/// One decoded, redacted event: the only shape that travels past the decoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub account: AccountId,
    pub time: DateTime<Utc>,
    pub region: SharedStr,
    pub kind: EventKind,
    /// `eventSource`, e.g. `iam.amazonaws.com`.
    pub source: SharedStr,
    /// `eventName`; for an EC2 state change, `InstanceStateChange`.
    pub name: SharedStr,
    pub identity: Identity,
    pub user_agent: Option<SharedStr>,
    pub source_ip: Option<SharedStr>,
    pub error_code: Option<SharedStr>,
    pub error_message: Option<SharedStr>,
    pub read_only: Option<bool>,
    /// `additionalEventData.MFAUsed` of a console sign-in (`Yes`/`No`).
    pub mfa_used: Option<SharedStr>,
    /// `responseElements.ConsoleLogin` (`Success`/`Failure`).
    pub login_result: Option<SharedStr>,
    /// `detail.state` of an EC2 state-change notification.
    pub state: Option<SharedStr>,
    /// What it touched, each thing once, at most [`MAX_RESOURCES`](super::MAX_RESOURCES).
    pub resources: Vec<Resource>,
    /// How many more distinct things it touched than `resources` lists (a renderer says
    /// "and N more"). Absent from events stored before it was counted: read as 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resources_more: u32,
    /// What was odd about the record and how it was read anyway (a lone surrogate replaced,
    /// the account taken from `userIdentity.accountId`, ...): kept in the audit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oddities: Vec<SharedStr>,
}

impl Event {
    /// True when the call failed (an `errorCode` is present).
    pub fn failed(&self) -> bool {
        self.error_code.is_some()
    }

    /// [`Event::name`] as a reader should see it: see [`display_name`].
    pub fn display_name(&self) -> &str {
        display_name(&self.name)
    }
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An event name as a reader should see it, without the API version some services append to
/// it: Lambda's `UpdateFunctionCode20150331v2` and `DeleteFunction20150331` read
/// `UpdateFunctionCode` and `DeleteFunction`, CloudFront's `CreateFunction2020_05_31` reads
/// `CreateFunction`. Only a real date after a letter is taken off (`YYYYMMDD`, maybe followed by
/// `v<digits>`, or `YYYY_MM_DD`); any other name is returned as it is.
///
/// For display only: rules match the raw name ([`Event::name`]), which keeps its suffix.
pub fn display_name(name: &str) -> &str {
    strip_date(without_revision(name), false)
        .or_else(|| strip_date(name, true))
        .unwrap_or(name)
}

/// `…20150331v2` -> `…20150331`: the revision of a dated API version; any other name as it is.
fn without_revision(name: &str) -> &str {
    let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    let head = &name[..name.len() - digits];
    match head.strip_suffix('v') {
        Some(dated) if digits > 0 && dated.ends_with(|c: char| c.is_ascii_digit()) => dated,
        _ => name,
    }
}

/// `head` without its trailing date (`YYYYMMDD`, or `YYYY_MM_DD` when `underscored`), when
/// that date is a real one and follows a letter.
fn strip_date(head: &str, underscored: bool) -> Option<&str> {
    let len = if underscored { 10 } else { 8 };
    let split = head.len().checked_sub(len)?;
    let (stem, date) = (head.get(..split)?, head.get(split..)?.as_bytes());
    let digits: [u8; 8] = if underscored {
        if date[4] != b'_' || date[7] != b'_' {
            return None;
        }
        let mut d = [0; 8];
        d[..4].copy_from_slice(&date[..4]);
        d[4..6].copy_from_slice(&date[5..7]);
        d[6..].copy_from_slice(&date[8..]);
        d
    } else {
        date.try_into().ok()?
    };
    if !digits.iter().all(u8::is_ascii_digit) || !stem.ends_with(|c: char| c.is_ascii_alphabetic())
    {
        return None;
    }
    let number = |from: usize, to: usize| {
        digits[from..to]
            .iter()
            .fold(0_u32, |n, &d| n * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (number(0, 4), number(4, 6), number(6, 8));
    let real = (2000..2100).contains(&year)
        && chrono::NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day).is_some();
    real.then_some(stem)
}

/// The fields a rule can test, borrowed from a decoded record before any allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    pub kind: EventKind,
    pub source: &'a str,
    pub name: &'a str,
    pub error_code: Option<&'a str>,
    pub identity_type: Option<&'a str>,
    pub read_only: Option<bool>,
    pub mfa_used: Option<&'a str>,
    pub login_result: Option<&'a str>,
    pub state: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub role_name: Option<&'a str>,
    pub user_name: Option<&'a str>,
    pub invoked_by: Option<&'a str>,
    /// The account the event happened in (`recipientAccountId`, or the envelope's `account`).
    pub account: &'a str,
    /// `awsRegion`.
    pub region: &'a str,
    /// `sourceIPAddress`: an IP address, or a service name such as `cloudformation.amazonaws.com`.
    pub source_ip: Option<&'a str>,
    /// `sessionCredentialFromConsole`: `"true"` when the call was made with console
    /// credentials, else absent.
    pub console_session: Option<&'a str>,
    /// `requestParameters`, as its JSON text: nothing is built from it unless a rule looks inside.
    pub request: Option<RawJson<'a>>,
    /// `responseElements`, as its JSON text.
    pub response: Option<RawJson<'a>>,
    /// `additionalEventData`, as its JSON text.
    pub additional: Option<RawJson<'a>>,
    /// `resources` (a JSON array of `{ARN, accountId, type}`), as its JSON text.
    pub resources: Option<RawJson<'a>>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use super::*;

    #[test]
    fn api_version_suffixes_are_taken_off_real_event_names() {
        // Every suffixed name in the shared corpus, and the tamper rules' own.
        for (raw, shown) in [
            ("AddPermission20150331v2", "AddPermission"),
            ("AddPermission20150331", "AddPermission"),
            ("UpdateFunctionCode20150331v2", "UpdateFunctionCode"),
            (
                "UpdateFunctionConfiguration20150331v2",
                "UpdateFunctionConfiguration",
            ),
            (
                "GetFunctionConfiguration20150331v2",
                "GetFunctionConfiguration",
            ),
            (
                "CreateEventSourceMapping20150331",
                "CreateEventSourceMapping",
            ),
            ("DeleteFunction20150331", "DeleteFunction"),
            ("PutFunctionConcurrency20171031", "PutFunctionConcurrency"),
            ("ListFunctions20150331", "ListFunctions"),
            ("CreateFunction2020_05_31", "CreateFunction"),
            ("PublishFunction2020_05_31", "PublishFunction"),
        ] {
            assert_eq!(display_name(raw), shown, "{raw}");
        }
    }

    #[test]
    fn names_without_a_dated_version_are_shown_as_they_are() {
        for name in [
            "RunInstances",
            "ListObjectsV2",
            "GetObjectV2",
            "AssignIpv6Addresses",
            "CreateVpcPeeringConnection",
            // Digits that are not a date, or not after a letter.
            "Report20151331",
            "Report20150230",
            "Report19990101",
            "Version1234567890",
            "20150331",
            "2020_05_31",
            "Call2020_13_01",
            "Callv2",
            "Call20150331v",
            "한글20150331",
            "",
        ] {
            assert_eq!(display_name(name), name, "{name}");
        }
    }

    fn event(name: &str) -> Event {
        Event {
            id: EventId::new("ev-1"),
            account: AccountId::new("111111111111"),
            time: DateTime::UNIX_EPOCH,
            region: "us-east-1".into(),
            kind: EventKind::ApiCall,
            source: "lambda.amazonaws.com".into(),
            name: name.into(),
            identity: Identity::default(),
            user_agent: None,
            source_ip: None,
            error_code: None,
            error_message: None,
            read_only: Some(false),
            mfa_used: None,
            login_result: None,
            state: None,
            resources: Vec::new(),
            resources_more: 0,
            oddities: Vec::new(),
        }
    }

    #[test]
    fn an_event_shows_its_display_name_and_keeps_its_raw_one() {
        let event = event("UpdateFunctionCode20150331v2");
        assert_eq!(event.display_name(), "UpdateFunctionCode");
        assert_eq!(&*event.name, "UpdateFunctionCode20150331v2");
    }

    #[test]
    fn stored_events_without_a_count_read_as_nothing_more() {
        let stored = serde_json::to_value(event("CreateUser")).unwrap();
        assert!(
            stored.get("resources_more").is_none(),
            "written only when there is one"
        );
        let read: Event = serde_json::from_value(stored).unwrap();
        assert_eq!(read.resources_more, 0);
        let counted = Event {
            resources_more: 92,
            ..event("RunInstances")
        };
        let stored = serde_json::to_value(&counted).unwrap();
        assert_eq!(stored["resources_more"], 92);
        let read: Event = serde_json::from_value(stored).unwrap();
        assert_eq!(read, counted);
    }
}
