//! Actor classification: human, automation, AWS service or root, with a readable name.

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// What kind of performer made the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Human,
    Automation,
    AwsService,
    Root,
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

/// Classify the performer of `event`.
pub fn classify(event: &Event, config: &ActorConfig) -> Actor {
    let _ = config;
    Actor {
        kind: ActorKind::Human,
        name: event
            .identity
            .user_name
            .clone()
            .unwrap_or_else(|| "unknown".to_owned()),
        via: Via::Unknown,
    }
}
