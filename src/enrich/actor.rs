//! The performer of an event: a principal (who) and a tool (with what).
//!
//! The principal is a person, a workload, an AWS service, root or unknown; the tool is the
//! console, CLI, an SDK, an infrastructure-as-code tool, CI or a service. Automation belongs to
//! the tool or to a configured workload role, never to the principal: a person signed in
//! through Identity Center running Terraform is a person using Terraform.
//!
//! The principal is decided in this order, tested below: an event that names no actor (EC2
//! state change), root (an `AssumeRoot` session apart from the root user's own credentials),
//! an AWS service identity, a user name AWS hid, an Identity Center user, an AWS service acting
//! on a role, a configured CI role, then a person (IAM, federated or SSO user, or a role
//! session with a person behind it) else a workload. The tool: an infrastructure-as-code tool
//! (user agent, `invokedBy` of CloudFormation, a CDK bootstrap role), then CI for a configured
//! CI role, then console, CLI, SDK from the user agent.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind, Identity, SharedStr};

/// Who a principal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    /// An IAM, federated or Identity Center user, or a role session a person stands behind.
    Person,
    /// A role driven by code: CI roles named in configuration, role sessions with no person.
    Workload,
    AwsService,
    Root,
    /// The event names no one, or AWS hid the name.
    Unknown,
}

impl PrincipalKind {
    /// `person`, `workload`, `aws-service`, `root`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Workload => "workload",
            Self::AwsService => "aws-service",
            Self::Root => "root",
            Self::Unknown => "unknown",
        }
    }
}

/// What the principal's name is, so that readers see what it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// An IAM user.
    IamUser,
    /// An IAM Identity Center (SSO) user: a permission-set role session or `IdentityCenterUser`.
    Sso,
    /// A role session (`role/session`).
    RoleSession,
    /// A federated, SAML or web identity user.
    Federated,
    /// The root user's own password or keys.
    RootUser,
    /// A short privileged root session from `sts:AssumeRoot`.
    AssumeRoot,
    Service,
    /// AWS wrote `HIDDEN_DUE_TO_SECURITY_REASONS` instead of the user name (a failed sign-in
    /// with a name that is not a user: it may be a password typed in the wrong box).
    NameHidden,
    /// The event names no actor (an EC2 state change); the name is the instance, if any.
    NoActor,
    /// Another identity type (`AWSAccount`, `Unknown`).
    Other,
}

/// Who acted, with a readable name. Never an access key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// SSO user, IAM user, `role/session`, `root`, the AWS service; for [`Origin::NoActor`]
    /// the instance the event is about (or empty), for [`Origin::NameHidden`] empty.
    pub name: String,
    pub origin: Origin,
}

impl Principal {
    /// The principal in neutral English for the audit log and the model's digest
    /// (`dae.kim (SSO)`, `root (AssumeRoot session)`); readers' words live in the renderers.
    pub fn describe(&self) -> String {
        match (self.origin, self.name.as_str()) {
            (Origin::Sso, name) => format!("{name} (SSO)"),
            (Origin::AssumeRoot, name) => format!("{name} (AssumeRoot session)"),
            (Origin::NameHidden, _) => "unknown user (name hidden by AWS)".to_owned(),
            (Origin::NoActor, "") => "no actor named".to_owned(),
            (Origin::NoActor, instance) => format!("instance {instance} (no actor named)"),
            (_, name) => name.to_owned(),
        }
    }
}

/// With what the change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Console,
    Cli,
    Sdk,
    Terraform,
    CloudFormation,
    Cdk,
    Pulumi,
    /// A configured CI role, with no more specific tool in sight.
    Ci,
    Service,
    Unknown,
}

impl Tool {
    /// A short lowercase tool name (`console`, `terraform`, ...): never the raw user agent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Cli => "cli",
            Self::Sdk => "sdk",
            Self::Terraform => "terraform",
            Self::CloudFormation => "cloudformation",
            Self::Cdk => "cdk",
            Self::Pulumi => "pulumi",
            Self::Ci => "ci",
            Self::Service => "service",
            Self::Unknown => "unknown",
        }
    }

    /// Infrastructure as code: the change was applied by a tool, whoever ran it.
    pub fn is_infrastructure_as_code(self) -> bool {
        matches!(
            self,
            Self::Terraform | Self::CloudFormation | Self::Cdk | Self::Pulumi
        )
    }
}

/// The CI system behind a configured CI role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ci {
    /// The configured name (`github-actions`), absent for a plain `automation_roles` match.
    pub name: Option<String>,
}

impl fmt::Display for Ci {
    /// `ci:github-actions`, or `ci` when unnamed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "ci:{name}"),
            None => f.write_str("ci"),
        }
    }
}

/// The performer of an event: principal x tool, and the CI system when a CI role acted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "StoredPerformer")]
pub struct Performer {
    pub principal: Principal,
    pub tool: Tool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<Ci>,
}

impl Performer {
    /// `terraform`, `console`; `ci:github-actions` when the tool is the CI role itself.
    pub fn tool_label(&self) -> String {
        match (&self.ci, self.tool) {
            (Some(ci), Tool::Ci) => ci.to_string(),
            _ => self.tool.as_str().to_owned(),
        }
    }

    /// Automation: an infrastructure-as-code tool, or a CI role.
    pub fn is_automation(&self) -> bool {
        self.tool.is_infrastructure_as_code() || self.ci.is_some()
    }
}

/// A performer as stored, now or before principal x tool (`{kind, name, via}`), so that
/// events stored by the previous version are still read.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredPerformer {
    Current {
        principal: Principal,
        tool: Tool,
        #[serde(default)]
        ci: Option<Ci>,
    },
    Before {
        kind: String,
        name: String,
        via: Tool,
    },
}

impl From<StoredPerformer> for Performer {
    fn from(stored: StoredPerformer) -> Self {
        match stored {
            StoredPerformer::Current {
                principal,
                tool,
                ci,
            } => Self {
                principal,
                tool,
                ci,
            },
            StoredPerformer::Before { kind, name, via } => {
                let (kind, origin) = match kind.as_str() {
                    "human" => (PrincipalKind::Person, Origin::Other),
                    "automation" => (PrincipalKind::Workload, Origin::RoleSession),
                    "aws_service" => (PrincipalKind::AwsService, Origin::Service),
                    "root" => (PrincipalKind::Root, Origin::RootUser),
                    _ => (PrincipalKind::Unknown, Origin::Other),
                };
                Self {
                    principal: Principal { kind, name, origin },
                    tool: via,
                    ci: (via == Tool::Ci).then_some(Ci { name: None }),
                }
            }
        }
    }
}

/// Role name globs of one configured CI system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiRoles {
    /// `github-actions`: shown as `ci:github-actions`.
    pub name: String,
    /// Glob patterns (`*` wildcard) matched against role names and IAM user names.
    pub roles: Vec<String>,
}

/// Configured knowledge about workloads: role name globs that belong to CI/CD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorConfig {
    /// Glob patterns (`*` wildcard) matched against role names and IAM user names: CI roles
    /// with no name of their own.
    pub automation_roles: Vec<String>,
    /// Named CI systems (`[actors.ci]`), tried before `automation_roles`.
    pub ci_roles: Vec<CiRoles>,
}

const CLOUDFORMATION: &str = "cloudformation.amazonaws.com";
/// `invokedBy` values that mark a console session rather than a service acting on its own.
const CONSOLE_INVOKERS: [&str; 2] = ["signin.amazonaws.com", "console.amazonaws.com"];
const SSO_ROLE_PREFIX: &str = "AWSReservedSSO_";
/// The IAM path of every Identity Center permission-set role.
const SSO_ROLE_PATH: &str = ":role/aws-reserved/sso.amazonaws.com/";
const SERVICE_LINKED_ROLE_PREFIX: &str = "AWSServiceRoleFor";
/// What CloudTrail writes in place of a user name it will not show.
const HIDDEN_NAME: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Classify the performer of `event`.
pub fn classify(event: &Event, config: &ActorConfig) -> Performer {
    classify_with(event, config, &mut AgentMemo::default())
}

/// [`classify`], remembering what each distinct user agent says (one memo per input: agents
/// repeat across events, and reading one is the costly part).
pub fn classify_with(event: &Event, config: &ActorConfig, memo: &mut AgentMemo) -> Performer {
    let identity = &event.identity;
    let marks = memo.marks(event.user_agent.as_ref());
    let agent = event.user_agent.as_deref().unwrap_or_default();
    let hand_tool = hand_tool(event, agent, marks);

    if event.kind == EventKind::StateChange {
        return no_actor(event);
    }
    let kind = identity.kind.as_deref().unwrap_or_default();
    if kind == "Root" {
        let origin = if identity.assumed_root {
            Origin::AssumeRoot
        } else {
            Origin::RootUser
        };
        return performer(PrincipalKind::Root, "root".to_owned(), origin, hand_tool);
    }
    if kind == "AWSService" {
        return service_performer(identity, event);
    }
    if identity.user_name.as_deref() == Some(HIDDEN_NAME) {
        return performer(
            PrincipalKind::Unknown,
            String::new(),
            Origin::NameHidden,
            hand_tool,
        );
    }
    let tool = iac_tool(identity, marks);
    if kind == "IdentityCenterUser" {
        let name = identity_center_name(identity);
        return performer(
            PrincipalKind::Person,
            name,
            Origin::Sso,
            tool.unwrap_or(hand_tool),
        );
    }
    let ci = configured_ci(identity, config);
    let service_invoked = identity
        .invoked_by
        .as_deref()
        .is_some_and(is_acting_service)
        && !has_person_session(identity);
    if tool.is_none() && ci.is_none() && (service_invoked || is_service_linked(identity)) {
        return service_performer(identity, event);
    }
    let principal_kind = principal_kind(event, marks, ci.is_some());
    let tool = match (tool, &ci) {
        (Some(tool), _) => tool,
        (None, Some(_)) => Tool::Ci,
        // Every console sign but an `AWS Internal` user agent makes the caller a person: for a
        // workload it means an AWS service made the call on the role's behalf.
        (None, None) if principal_kind == PrincipalKind::Workload && hand_tool == Tool::Console => {
            Tool::Service
        }
        (None, None) => hand_tool,
    };
    Performer {
        principal: Principal {
            kind: principal_kind,
            name: display_name(identity),
            origin: origin(identity),
        },
        tool,
        ci,
    }
}

/// Person or workload (or unknown, for an identity type that says neither).
fn principal_kind(event: &Event, marks: AgentMarks, ci: bool) -> PrincipalKind {
    let identity = &event.identity;
    if ci {
        return PrincipalKind::Workload;
    }
    if has_person_session(identity) || person_at_hand(event, marks) {
        return PrincipalKind::Person;
    }
    if matches!(
        identity.kind.as_deref(),
        Some("AssumedRole" | "WebIdentityUser")
    ) {
        PrincipalKind::Workload
    } else {
        PrincipalKind::Unknown
    }
}

fn performer(kind: PrincipalKind, name: String, origin: Origin, tool: Tool) -> Performer {
    Performer {
        principal: Principal { kind, name, origin },
        tool,
        ci: None,
    }
}

/// An event no one is named in (an EC2 state change): the instance it is about, if given.
fn no_actor(event: &Event) -> Performer {
    let instance = event
        .resources
        .iter()
        .find(|r| &*r.kind == "instanceId")
        .map(|r| mask_access_keys(&r.name))
        .unwrap_or_default();
    performer(
        PrincipalKind::Unknown,
        instance,
        Origin::NoActor,
        Tool::Unknown,
    )
}

/// The AWS service: `invokedBy`, else a bare `*.amazonaws.com` user agent, else the event
/// source.
fn service_performer(identity: &Identity, event: &Event) -> Performer {
    let name = identity
        .invoked_by
        .as_deref()
        .filter(|s| !s.is_empty())
        .or_else(|| event.user_agent.as_deref().filter(|ua| is_service_host(ua)))
        .unwrap_or(&event.source);
    performer(
        PrincipalKind::AwsService,
        mask_access_keys(name),
        Origin::Service,
        Tool::Service,
    )
}

/// An Identity Center user: its user name where the event gives one (sign-in events), else
/// its Identity Center user id. Never the `credentialId`, a bearer credential's handle.
fn identity_center_name(identity: &Identity) -> String {
    [
        identity.user_name.as_deref(),
        identity.sign_in_name.as_deref(),
        identity.on_behalf_of.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find(|s| !s.is_empty())
    .map_or_else(|| "unknown".to_owned(), mask_access_keys)
}

fn origin(identity: &Identity) -> Origin {
    match identity.kind.as_deref() {
        Some("IAMUser") => Origin::IamUser,
        Some("AssumedRole") if is_sso_role(identity) => Origin::Sso,
        Some("AssumedRole") => Origin::RoleSession,
        Some("FederatedUser" | "SAMLUser" | "WebIdentityUser") => Origin::Federated,
        _ => Origin::Other,
    }
}

/// Words a user agent is recognised by, in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Terraform,
    Hashicorp,
    AwsCdk,
    Pulumi,
    CloudFormation,
    Console,
    SignIn,
    Mozilla,
    AwsCli,
    Boto3,
    Botocore,
    AwsSdkDash,
    AwsSdkSlash,
}

const MARKS: [(Mark, &str); 13] = [
    (Mark::Terraform, "terraform"),
    (Mark::Hashicorp, "hashicorp"),
    (Mark::AwsCdk, "aws-cdk"),
    (Mark::Pulumi, "pulumi"),
    (Mark::CloudFormation, "cloudformation"),
    (Mark::Console, "console"),
    (Mark::SignIn, "signin.amazonaws.com"),
    (Mark::Mozilla, "mozilla/"),
    (Mark::AwsCli, "aws-cli"),
    (Mark::Boto3, "boto3"),
    (Mark::Botocore, "botocore"),
    (Mark::AwsSdkDash, "aws-sdk-"),
    (Mark::AwsSdkSlash, "aws-sdk/"),
];

/// Which [`MARKS`] a user agent holds, found in one case-insensitive pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct AgentMarks {
    found: u16,
    /// `mozilla/` at the very start (a browser).
    browser: bool,
}

impl AgentMarks {
    fn of(agent: &str) -> Self {
        static FINDER: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(MARKS.map(|(_, word)| word))
                .ok()
        });
        let mut marks = Self::default();
        let Some(Ok(found)) = FINDER.as_ref().map(|f| f.try_find_overlapping_iter(agent)) else {
            return marks;
        };
        for m in found {
            let mark = MARKS[m.pattern().as_usize()].0;
            marks.found |= 1 << mark as u16;
            marks.browser |= mark == Mark::Mozilla && m.start() == 0;
        }
        marks
    }

    fn has(self, mark: Mark) -> bool {
        self.found & (1 << mark as u16) != 0
    }
}

/// What each user agent seen so far says, bounded.
#[derive(Debug, Default)]
pub struct AgentMemo {
    seen: HashMap<SharedStr, AgentMarks, foldhash::fast::RandomState>,
}

impl AgentMemo {
    const MAX_AGENTS: usize = 4096;

    fn marks(&mut self, agent: Option<&SharedStr>) -> AgentMarks {
        let Some(agent) = agent else {
            return AgentMarks::default();
        };
        if let Some(marks) = self.seen.get(agent) {
            return *marks;
        }
        let marks = AgentMarks::of(agent);
        if self.seen.len() >= Self::MAX_AGENTS {
            self.seen.clear();
        }
        self.seen.insert(SharedStr::clone(agent), marks);
        marks
    }
}

/// Infrastructure-as-code tools, recognised by user agent, `invokedBy` of `CloudFormation` or a
/// CDK bootstrap role.
fn iac_tool(identity: &Identity, marks: AgentMarks) -> Option<Tool> {
    if marks.has(Mark::Terraform) || marks.has(Mark::Hashicorp) {
        return Some(Tool::Terraform);
    }
    if marks.has(Mark::AwsCdk) || role_name(identity).is_some_and(is_cdk_role) {
        return Some(Tool::Cdk);
    }
    if marks.has(Mark::Pulumi) {
        return Some(Tool::Pulumi);
    }
    if marks.has(Mark::CloudFormation) || identity.invoked_by.as_deref() == Some(CLOUDFORMATION) {
        return Some(Tool::CloudFormation);
    }
    None
}

fn is_service_linked(identity: &Identity) -> bool {
    role_name(identity).is_some_and(|role| role.starts_with(SERVICE_LINKED_ROLE_PREFIX))
}

/// An Identity Center permission-set role, by name or by its IAM path.
fn is_sso_role(identity: &Identity) -> bool {
    role_name(identity).is_some_and(|role| role.starts_with(SSO_ROLE_PREFIX))
        || identity
            .role_arn
            .as_deref()
            .is_some_and(|arn| arn.contains(SSO_ROLE_PATH))
}

/// CDK bootstrap roles: `cdk-<qualifier>-cfn-exec-role-...`, `cdk-<qualifier>-deploy-role-...`.
fn is_cdk_role(role: &str) -> bool {
    role.starts_with("cdk-") && (role.contains("-cfn-exec-role-") || role.contains("-deploy-role-"))
}

/// The CI system whose configured role or IAM user globs match: named ones first.
fn configured_ci(identity: &Identity, config: &ActorConfig) -> Option<Ci> {
    let names = [role_name(identity), identity.user_name.as_deref()];
    let matches = |patterns: &[String]| {
        names
            .into_iter()
            .flatten()
            .any(|name| patterns.iter().any(|pattern| glob_match(pattern, name)))
    };
    if let Some(named) = config.ci_roles.iter().find(|ci| matches(&ci.roles)) {
        return Some(Ci {
            name: Some(named.name.clone()),
        });
    }
    matches(&config.automation_roles).then_some(Ci { name: None })
}

/// A service host that can act on its own (`autoscaling.amazonaws.com`), not a console marker.
fn is_acting_service(invoked_by: &str) -> bool {
    is_service_host(invoked_by) && !CONSOLE_INVOKERS.contains(&invoked_by)
}

fn is_service_host(s: &str) -> bool {
    s.ends_with(".amazonaws.com") && !s.contains(char::is_whitespace)
}

/// True when the credentials say a person stands behind them: an IAM, federated, SAML or
/// Identity Center user (not a web identity: an OIDC token is mostly CI or a cluster), credentials from a console sign-in, or a role session that is an SSO session,
/// carries a source identity or a person-looking (`@`) session name.
fn has_person_session(identity: &Identity) -> bool {
    if identity.from_console {
        return true;
    }
    match identity.kind.as_deref() {
        Some("IAMUser" | "FederatedUser" | "IdentityCenterUser" | "SAMLUser") => true,
        Some("AssumedRole") => {
            !is_service_linked(identity)
                && (is_sso_role(identity)
                    || identity.source_identity.is_some()
                    || session_name(identity).is_some_and(|s| s.contains('@')))
        }
        _ => false,
    }
}

/// True when the call itself shows a person at the keyboard: a sign-in, a browser or the
/// console, or the AWS CLI. An SDK or no user agent shows no one.
fn person_at_hand(event: &Event, marks: AgentMarks) -> bool {
    event.kind == EventKind::ConsoleSignIn
        || is_console_invoked(&event.identity)
        || marks.has(Mark::Console)
        || marks.has(Mark::SignIn)
        || marks.browser
        || marks.has(Mark::AwsCli)
}

fn is_console_invoked(identity: &Identity) -> bool {
    identity
        .invoked_by
        .as_deref()
        .is_some_and(|s| CONSOLE_INVOKERS.contains(&s))
}

/// The tool a caller holds in hand: console, CLI, SDK, from the user agent.
fn hand_tool(event: &Event, agent: &str, marks: AgentMarks) -> Tool {
    if event.kind == EventKind::ConsoleSignIn
        || is_console_invoked(&event.identity)
        || marks.has(Mark::Console)
        || marks.has(Mark::SignIn)
        || agent == "AWS Internal"
        || marks.browser
    {
        Tool::Console
    } else if marks.has(Mark::AwsCli) {
        Tool::Cli
    } else if marks.has(Mark::Boto3)
        || marks.has(Mark::Botocore)
        || marks.has(Mark::AwsSdkDash)
        || marks.has(Mark::AwsSdkSlash)
    {
        Tool::Sdk
    } else {
        Tool::Unknown
    }
}

/// The role behind an assumed-role session: `sessionIssuer.userName`, else from the ARN.
fn role_name(identity: &Identity) -> Option<&str> {
    identity
        .role_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .or_else(|| assumed_role_parts(identity).map(|(role, _)| role))
}

fn session_name(identity: &Identity) -> Option<&str> {
    assumed_role_parts(identity).and_then(|(_, session)| session)
}

/// `arn:aws:sts::123:assumed-role/ROLE/SESSION` -> (ROLE, Some(SESSION)).
fn assumed_role_parts(identity: &Identity) -> Option<(&str, Option<&str>)> {
    let resource = arn_resource(identity.arn.as_deref()?)?;
    let rest = resource.strip_prefix("assumed-role/")?;
    let mut parts = rest.splitn(2, '/');
    let role = parts.next().filter(|s| !s.is_empty())?;
    Some((role, parts.next().filter(|s| !s.is_empty())))
}

/// The resource part of an ARN (after the fifth colon).
fn arn_resource(arn: &str) -> Option<&str> {
    arn.splitn(6, ':').nth(5)
}

/// A readable name for a person or workload identity. Never an access key.
fn display_name(identity: &Identity) -> String {
    mask_access_keys(&raw_display_name(identity))
}

fn raw_display_name(identity: &Identity) -> String {
    if let Some((arn_role, session)) = assumed_role_parts(identity) {
        let role = role_name(identity).unwrap_or(arn_role);
        return match session {
            Some(session) if is_sso_role(identity) => session.to_owned(),
            Some(session) => format!("{role}/{session}"),
            None => role.to_owned(),
        };
    }
    if let Some(user) = identity.user_name.as_deref().filter(|s| !s.is_empty()) {
        return user.to_owned();
    }
    if let Some(resource) = identity.arn.as_deref().and_then(arn_resource) {
        for prefix in ["federated-user/", "user/"] {
            if let Some(name) = resource.strip_prefix(prefix) {
                // IAM paths (`user/division/alice`): the name is the last segment.
                if let Some(last) = name.rsplit('/').next().filter(|s| !s.is_empty()) {
                    return last.to_owned();
                }
            }
        }
    }
    if let Some(principal) = identity.principal_id.as_deref() {
        let kept: Vec<&str> = principal
            .split(':')
            .filter(|part| !part.is_empty() && !is_access_key(part))
            .collect();
        if !kept.is_empty() {
            return kept.join(":");
        }
    }
    "unknown".to_owned()
}

const ACCESS_KEY_LEN: usize = 20;

/// An AWS access key id: `AKIA`/`ASIA` then 16 upper-case letters or digits.
fn is_access_key(s: &str) -> bool {
    s.len() == ACCESS_KEY_LEN
        && (s.starts_with("AKIA") || s.starts_with("ASIA"))
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Shorten every access key id inside `s` to `AKIA…WXYZ`; everything else is kept.
pub fn mask_access_keys(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i + ACCESS_KEY_LEN <= bytes.len() {
        let boundary_before = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let end = i + ACCESS_KEY_LEN;
        let boundary_after = end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if boundary_before && boundary_after && s.is_char_boundary(i) && s.is_char_boundary(end) {
            let candidate = &s[i..end];
            if is_access_key(candidate) {
                out.push_str(&s[copied..i]);
                out.push_str(&candidate[..4]);
                out.push('…');
                out.push_str(&candidate[ACCESS_KEY_LEN - 4..]);
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

/// ASCII case-insensitive match with `*` matching any run of characters (IAM names are
/// case-insensitive).
fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let remaining: Vec<&str> = parts.collect();
    let Some((last, middle)) = remaining.split_last() else {
        // No `*`: an exact match.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests;
