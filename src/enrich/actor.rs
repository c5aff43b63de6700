//! Actor classification: human, automation, AWS service or root, with a readable name.
//!
//! The order of the checks matters and is the contract tested below:
//! root, AWS service identity, infrastructure-as-code tools (user agent, or `invokedBy` of
//! `cloudformation.amazonaws.com`), configured CI roles, a service acting without a human
//! session, then a person.

use std::collections::HashMap;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind, Identity, SharedStr};

/// What kind of performer made the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Human,
    Automation,
    AwsService,
    Root,
}

impl ActorKind {
    /// A short lowercase label (`human`, `automation`, `aws_service`, `root`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Automation => "automation",
            Self::AwsService => "aws_service",
            Self::Root => "root",
        }
    }
}

/// How the change was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Console,
    Cli,
    Sdk,
    Terraform,
    CloudFormation,
    Cdk,
    Pulumi,
    Ci,
    Service,
    Unknown,
}

impl Via {
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
}

/// The performer of an event, as shown to readers. Never carries an access key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// SSO user, role session, IAM user, `root`, or the AWS service.
    pub name: String,
    pub via: Via,
}

/// Configured knowledge about automation: role name globs that belong to CI/CD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorConfig {
    /// Glob patterns (`*` wildcard) matched against role names and IAM user names.
    pub automation_roles: Vec<String>,
}

const CLOUDFORMATION: &str = "cloudformation.amazonaws.com";
/// `invokedBy` values that mark a console session rather than a service acting on its own.
const CONSOLE_INVOKERS: [&str; 2] = ["signin.amazonaws.com", "console.amazonaws.com"];
const SSO_ROLE_PREFIX: &str = "AWSReservedSSO_";
const SERVICE_LINKED_ROLE_PREFIX: &str = "AWSServiceRoleFor";

/// Classify the performer of `event`.
pub fn classify(event: &Event, config: &ActorConfig) -> Actor {
    classify_with(event, config, &mut AgentMemo::default())
}

/// [`classify`], remembering what each distinct user agent says (one memo per input: agents
/// repeat across events, and reading one is the costly part).
pub fn classify_with(event: &Event, config: &ActorConfig, memo: &mut AgentMemo) -> Actor {
    let identity = &event.identity;
    let agent = event.user_agent.as_deref().unwrap_or_default();
    let marks = memo.marks(event.user_agent.as_ref());
    let kind = identity.kind.as_deref().unwrap_or_default();

    if kind == "Root" {
        return Actor {
            kind: ActorKind::Root,
            name: "root".to_owned(),
            via: human_via(event, agent, marks),
        };
    }
    if kind == "AWSService" {
        return service_actor(identity, event);
    }
    if let Some(via) = tool_via(identity, marks) {
        return automation(identity, via);
    }
    if is_configured_automation(identity, config) {
        return automation(identity, Via::Ci);
    }
    let service_invoked = identity
        .invoked_by
        .as_deref()
        .is_some_and(is_acting_service)
        && !has_human_session(identity);
    if service_invoked || role_name(identity).is_some_and(is_service_linked_role) {
        return service_actor(identity, event);
    }
    Actor {
        kind: ActorKind::Human,
        name: display_name(identity),
        via: human_via(event, agent, marks),
    }
}

fn automation(identity: &Identity, via: Via) -> Actor {
    Actor {
        kind: ActorKind::Automation,
        name: display_name(identity),
        via,
    }
}

/// The AWS service actor: `invokedBy`, else a bare `*.amazonaws.com` user agent, else the
/// event source.
fn service_actor(identity: &Identity, event: &Event) -> Actor {
    let name = identity
        .invoked_by
        .as_deref()
        .filter(|s| !s.is_empty())
        .or_else(|| event.user_agent.as_deref().filter(|ua| is_service_host(ua)))
        .unwrap_or(&event.source);
    Actor {
        kind: ActorKind::AwsService,
        name: mask_access_keys(name),
        via: Via::Service,
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

/// Infrastructure-as-code tools, recognised by user agent (or `invokedBy` of `CloudFormation`).
fn tool_via(identity: &Identity, marks: AgentMarks) -> Option<Via> {
    if marks.has(Mark::Terraform) || marks.has(Mark::Hashicorp) {
        return Some(Via::Terraform);
    }
    if marks.has(Mark::AwsCdk) || role_name(identity).is_some_and(is_cdk_role) {
        return Some(Via::Cdk);
    }
    if marks.has(Mark::Pulumi) {
        return Some(Via::Pulumi);
    }
    if marks.has(Mark::CloudFormation) || identity.invoked_by.as_deref() == Some(CLOUDFORMATION) {
        return Some(Via::CloudFormation);
    }
    None
}

fn is_service_linked_role(role: &str) -> bool {
    role.starts_with(SERVICE_LINKED_ROLE_PREFIX)
}

/// CDK bootstrap roles: `cdk-<qualifier>-cfn-exec-role-...`, `cdk-<qualifier>-deploy-role-...`.
fn is_cdk_role(role: &str) -> bool {
    role.starts_with("cdk-") && (role.contains("-cfn-exec-role-") || role.contains("-deploy-role-"))
}

fn is_configured_automation(identity: &Identity, config: &ActorConfig) -> bool {
    let names = [role_name(identity), identity.user_name.as_deref()];
    names.into_iter().flatten().any(|name| {
        config
            .automation_roles
            .iter()
            .any(|pattern| glob_match(pattern, name))
    })
}

/// A service host that can act on its own (`autoscaling.amazonaws.com`), not a console marker.
fn is_acting_service(invoked_by: &str) -> bool {
    is_service_host(invoked_by) && !CONSOLE_INVOKERS.contains(&invoked_by)
}

fn is_service_host(s: &str) -> bool {
    s.ends_with(".amazonaws.com") && !s.contains(char::is_whitespace)
}

/// True when a person stands behind the credentials: an IAM or federated user, an SSO
/// session, or a role session carrying a source identity or a person-looking session name.
fn has_human_session(identity: &Identity) -> bool {
    match identity.kind.as_deref() {
        Some(
            "IAMUser" | "FederatedUser" | "IdentityCenterUser" | "SAMLUser" | "WebIdentityUser",
        ) => true,
        Some("AssumedRole") => {
            let role = role_name(identity).unwrap_or_default();
            if is_service_linked_role(role) {
                return false;
            }
            role.starts_with(SSO_ROLE_PREFIX)
                || identity.source_identity.is_some()
                || session_name(identity).is_some_and(|s| s.contains('@'))
        }
        _ => false,
    }
}

fn human_via(event: &Event, agent: &str, marks: AgentMarks) -> Via {
    let console_invoked = event
        .identity
        .invoked_by
        .as_deref()
        .is_some_and(|s| CONSOLE_INVOKERS.contains(&s));
    if event.kind == EventKind::ConsoleSignIn
        || console_invoked
        || marks.has(Mark::Console)
        || marks.has(Mark::SignIn)
        || agent == "AWS Internal"
        || marks.browser
    {
        Via::Console
    } else if marks.has(Mark::AwsCli) {
        Via::Cli
    } else if marks.has(Mark::Boto3)
        || marks.has(Mark::Botocore)
        || marks.has(Mark::AwsSdkDash)
        || marks.has(Mark::AwsSdkSlash)
    {
        Via::Sdk
    } else {
        Via::Unknown
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

/// A readable name for a person or automation identity. Never an access key.
fn display_name(identity: &Identity) -> String {
    mask_access_keys(&raw_display_name(identity))
}

fn raw_display_name(identity: &Identity) -> String {
    if let Some((arn_role, session)) = assumed_role_parts(identity) {
        let role = role_name(identity).unwrap_or(arn_role);
        return match session {
            Some(session) if role.starts_with(SSO_ROLE_PREFIX) => session.to_owned(),
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
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::event::{AccountId, EventId};

    fn event(identity: Identity, user_agent: Option<&str>) -> Event {
        Event {
            id: EventId::new("e1"),
            account: AccountId::new("111111111111"),
            time: Utc.with_ymd_and_hms(2024, 5, 1, 5, 3, 0).unwrap(),
            region: "us-east-1".into(),
            kind: EventKind::ApiCall,
            source: "iam.amazonaws.com".into(),
            name: "CreateUser".into(),
            identity,
            user_agent: user_agent.map(Into::into),
            source_ip: Some("203.0.113.7".into()),
            error_code: None,
            error_message: None,
            read_only: Some(false),
            mfa_used: None,
            login_result: None,
            state: None,
            resources: Vec::new(),
        }
    }

    fn assumed_role(role: &str, session: &str) -> Identity {
        Identity {
            kind: Some("AssumedRole".into()),
            arn: Some(format!("arn:aws:sts::111111111111:assumed-role/{role}/{session}").into()),
            account_id: Some("111111111111".into()),
            principal_id: Some(format!("AROA3EXAMPLEROLEID111:{session}").into()),
            access_key_id: Some("ASIA…TNG5".into()),
            role_name: Some(role.into()),
            mfa_authenticated: Some(false),
            ..Identity::default()
        }
    }

    fn iam_user(name: &str) -> Identity {
        Identity {
            kind: Some("IAMUser".into()),
            arn: Some(format!("arn:aws:iam::111111111111:user/{name}").into()),
            account_id: Some("111111111111".into()),
            user_name: Some(name.into()),
            principal_id: Some("AIDA3EXAMPLEUSERID11".into()),
            access_key_id: Some("AKIA…WXYZ".into()),
            ..Identity::default()
        }
    }

    fn none() -> ActorConfig {
        ActorConfig::default()
    }

    const TERRAFORM_UA: &str = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) \
        terraform-provider-aws/5.46.0 (+https://registry.terraform.io/providers/hashicorp/aws) \
        aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 api/ec2#1.156.0";

    #[test]
    fn sso_console_user_is_a_person_named_by_session() {
        let identity = assumed_role(
            "AWSReservedSSO_AdministratorAccess_1b74cd717d47002b",
            "jane.doe@example.com",
        );
        let actor = classify(&event(identity, Some("AWS Internal")), &none());
        assert_eq!(
            actor,
            Actor {
                kind: ActorKind::Human,
                name: "jane.doe@example.com".to_owned(),
                via: Via::Console,
            }
        );
    }

    #[test]
    fn sso_user_acting_through_a_service_is_still_the_person() {
        let mut identity = assumed_role("AWSReservedSSO_DevAdmin_635426549a280cc6", "bob.ross");
        identity.invoked_by = Some("rds.amazonaws.com".into());
        let actor = classify(&event(identity, Some("rds.amazonaws.com")), &none());
        assert_eq!(actor.kind, ActorKind::Human);
        assert_eq!(actor.name, "bob.ross");
    }

    #[test]
    fn terraform_from_github_actions_oidc_role() {
        let identity = assumed_role("github-actions-terraform", "GitHubActions");
        let config = ActorConfig {
            automation_roles: vec!["github-actions-*".to_owned()],
        };
        let actor = classify(&event(identity, Some(TERRAFORM_UA)), &config);
        assert_eq!(
            actor,
            Actor {
                kind: ActorKind::Automation,
                name: "github-actions-terraform/GitHubActions".to_owned(),
                via: Via::Terraform,
            }
        );
    }

    #[test]
    fn cloudformation_by_invoked_by_and_by_user_agent() {
        let mut identity = assumed_role("ServiceRole", "AWSCloudFormation");
        identity.invoked_by = Some(CLOUDFORMATION.into());
        let actor = classify(&event(identity, Some(CLOUDFORMATION)), &none());
        assert_eq!(actor.kind, ActorKind::Automation);
        assert_eq!(actor.via, Via::CloudFormation);
        assert_eq!(actor.name, "ServiceRole/AWSCloudFormation");

        let actor = classify(&event(iam_user("deployer"), Some(CLOUDFORMATION)), &none());
        assert_eq!(actor.via, Via::CloudFormation);
    }

    #[test]
    fn cdk_by_user_agent_and_bootstrap_role() {
        let ua = "aws-cdk/2.140.0 (node v20.12.2; linux)";
        let actor = classify(&event(iam_user("alice"), Some(ua)), &none());
        assert_eq!((actor.kind, actor.via), (ActorKind::Automation, Via::Cdk));

        let mut identity = assumed_role(
            "cdk-hnb659fds-cfn-exec-role-111111111111-us-east-1",
            "AWSCloudFormation",
        );
        identity.invoked_by = Some(CLOUDFORMATION.into());
        let actor = classify(&event(identity, Some(CLOUDFORMATION)), &none());
        assert_eq!(actor.via, Via::Cdk);
    }

    #[test]
    fn pulumi_by_user_agent() {
        let ua = "aws-sdk-go-v2/1.25.0 os/linux lang/go#1.21 Pulumi/3.100.0";
        let actor = classify(&event(iam_user("pulumi-bot"), Some(ua)), &none());
        assert_eq!(
            (actor.kind, actor.via),
            (ActorKind::Automation, Via::Pulumi)
        );
    }

    #[test]
    fn configured_ci_roles_and_users_match_globs() {
        let config = ActorConfig {
            automation_roles: vec!["*-deploy".to_owned(), "ci-*-bot".to_owned()],
        };
        let sdk = Some("Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux");
        let actor = classify(
            &event(assumed_role("Payments-Deploy", "build-42"), sdk),
            &config,
        );
        assert_eq!(
            actor,
            Actor {
                kind: ActorKind::Automation,
                name: "Payments-Deploy/build-42".to_owned(),
                via: Via::Ci,
            }
        );
        let actor = classify(&event(iam_user("ci-release-bot"), sdk), &config);
        assert_eq!(actor.via, Via::Ci);
        let actor = classify(&event(iam_user("ci-release"), sdk), &config);
        assert_eq!((actor.kind, actor.via), (ActorKind::Human, Via::Sdk));
    }

    #[test]
    fn root_is_root_whatever_the_tool() {
        let identity = Identity {
            kind: Some("Root".into()),
            arn: Some("arn:aws:iam::111111111111:root".into()),
            principal_id: Some("111111111111".into()),
            ..Identity::default()
        };
        let mut login = event(identity, Some("Mozilla/5.0 (Macintosh)"));
        login.kind = EventKind::ConsoleSignIn;
        let actor = classify(&login, &none());
        assert_eq!(
            actor,
            Actor {
                kind: ActorKind::Root,
                name: "root".to_owned(),
                via: Via::Console,
            }
        );
    }

    #[test]
    fn iam_user_with_cli() {
        let ua = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5 exe/x86_64.ubuntu.22 prompt/off";
        let actor = classify(&event(iam_user("alice"), Some(ua)), &none());
        assert_eq!(
            actor,
            Actor {
                kind: ActorKind::Human,
                name: "alice".to_owned(),
                via: Via::Cli,
            }
        );
    }

    #[test]
    fn human_via_sdk_console_and_unknown() {
        let via = |ua: Option<&str>| classify(&event(iam_user("bob"), ua), &none()).via;
        assert_eq!(via(Some("aws-sdk-java/2.20.0 Linux/5.10")), Via::Sdk);
        assert_eq!(via(Some("Boto3/1.26.0")), Via::Sdk);
        assert_eq!(via(Some("console.ec2.amazonaws.com")), Via::Console);
        assert_eq!(via(Some("signin.amazonaws.com")), Via::Console);
        assert_eq!(via(Some("curl/8.0")), Via::Unknown);
        assert_eq!(via(None), Via::Unknown);

        let mut identity = iam_user("bob");
        identity.invoked_by = Some("signin.amazonaws.com".into());
        let actor = classify(&event(identity, Some("curl/8.0")), &none());
        assert_eq!((actor.kind, actor.via), (ActorKind::Human, Via::Console));
    }

    #[test]
    fn service_linked_role_is_the_service() {
        let mut identity = assumed_role("AWSServiceRoleForAutoScaling", "AutoScaling");
        identity.invoked_by = Some("autoscaling.amazonaws.com".into());
        let actor = classify(&event(identity, Some("autoscaling.amazonaws.com")), &none());
        assert_eq!(
            actor,
            Actor {
                kind: ActorKind::AwsService,
                name: "autoscaling.amazonaws.com".to_owned(),
                via: Via::Service,
            }
        );

        // Without invokedBy, the bare service user agent names it.
        let identity = assumed_role("AWSServiceRoleForAutoScaling", "AutoScaling");
        let actor = classify(&event(identity, Some("autoscaling.amazonaws.com")), &none());
        assert_eq!(actor.name, "autoscaling.amazonaws.com");
    }

    #[test]
    fn aws_service_identity_and_service_on_a_plain_role() {
        let identity = Identity {
            kind: Some("AWSService".into()),
            invoked_by: Some("lambda.amazonaws.com".into()),
            ..Identity::default()
        };
        let actor = classify(&event(identity, Some("lambda.amazonaws.com")), &none());
        assert_eq!(
            (actor.kind, actor.name.as_str()),
            (ActorKind::AwsService, "lambda.amazonaws.com")
        );

        let identity = Identity {
            kind: Some("AWSService".into()),
            ..Identity::default()
        };
        let actor = classify(&event(identity, None), &none());
        assert_eq!(
            actor.name, "iam.amazonaws.com",
            "falls back to the event source"
        );

        let mut identity = assumed_role("SomeAWSConfig", "ConfigResourceCompositionSession");
        identity.invoked_by = Some("config.amazonaws.com".into());
        let actor = classify(&event(identity, None), &none());
        assert_eq!(
            (actor.kind, actor.name.as_str()),
            (ActorKind::AwsService, "config.amazonaws.com")
        );
    }

    #[test]
    fn a_person_looking_role_session_is_a_human_session() {
        let mut identity = assumed_role("Admin", "jane@example.com");
        identity.invoked_by = Some("eks.amazonaws.com".into());
        let actor = classify(&event(identity, None), &none());
        assert_eq!(actor.kind, ActorKind::Human);
        assert_eq!(actor.name, "Admin/jane@example.com");
    }

    #[test]
    fn federated_user_named_from_arn() {
        let identity = Identity {
            kind: Some("FederatedUser".into()),
            arn: Some("arn:aws:sts::111111111111:federated-user/carol".into()),
            principal_id: Some("111111111111:carol".into()),
            ..Identity::default()
        };
        let actor = classify(&event(identity, Some("aws-cli/2.15.0")), &none());
        assert_eq!(
            (actor.kind, actor.name.as_str()),
            (ActorKind::Human, "carol")
        );
    }

    #[test]
    fn iam_user_with_path_named_by_last_segment() {
        let identity = Identity {
            kind: Some("IAMUser".into()),
            arn: Some("arn:aws:iam::111111111111:user/division/team/dave".into()),
            ..Identity::default()
        };
        assert_eq!(classify(&event(identity, None), &none()).name, "dave");
    }

    #[test]
    fn principal_id_fallback_drops_access_keys() {
        let identity = Identity {
            kind: Some("AWSAccount".into()),
            principal_id: Some("AIDAEXAMPLEPRINCIPAL:ASIAIJJG73VC6IW5OFVQ".into()),
            ..Identity::default()
        };
        assert_eq!(
            classify(&event(identity, None), &none()).name,
            "AIDAEXAMPLEPRINCIPAL"
        );

        let identity = Identity {
            kind: Some("Unknown".into()),
            principal_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
            ..Identity::default()
        };
        assert_eq!(classify(&event(identity, None), &none()).name, "unknown");
    }

    #[test]
    fn access_keys_in_names_are_shortened() {
        let identity = assumed_role("DevAdministrator", "ASIA5PZQZ5QHE2FUNXHR");
        let actor = classify(&event(identity, Some("aws-cli/2.13.0")), &none());
        assert_eq!(actor.name, "DevAdministrator/ASIA…NXHR");

        assert_eq!(
            mask_access_keys("key=AKIAIOSFODNN7EXAMPLE, other ASIAIJJG73VC6IW5OFVQ."),
            "key=AKIA…MPLE, other ASIA…OFVQ."
        );
        // Not keys: too long, lower case, another prefix.
        for kept in [
            "AKIAIOSFODNN7EXAMPLEX",
            "akiaiosfodnn7example",
            "AROA3EXAMPLEROLEID11",
            "ünïcödé AKIA",
        ] {
            assert_eq!(mask_access_keys(kept), kept);
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("terraform-*", "Terraform-Apply"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("a*a", "a"));
        assert!(!glob_match("*-deploy", "deploy"));
        assert!(!glob_match("ci-*", "my-ci-role"));
    }
}
