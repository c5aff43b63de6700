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
    pub resources: Vec<Resource>,
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
    /// `requestParameters`, as its JSON text: nothing is built from it unless a rule looks inside.
    pub request: Option<RawJson<'a>>,
}
