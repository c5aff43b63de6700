use chrono::{TimeZone, Utc};

use super::*;
use crate::event::{AccountId, Decoded, EventId, decode_bytes};

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
        resources_more: 0,
        oddities: Vec::new(),
    }
}

/// The one event a CloudTrail record (or EventBridge envelope) decodes to.
fn decoded(json: &str) -> Event {
    let mut events = Vec::new();
    decode_bytes(json.as_bytes(), &mut |d| match d {
        Decoded::Record(record) => events.push(record.to_event()),
        Decoded::Quarantined(q) => panic!("quarantined: {q:?}"),
        Decoded::Skipped(s) => panic!("skipped: {s:?}"),
        Decoded::Heartbeat(b) => panic!("heartbeat: {b:?}"),
    });
    assert_eq!(events.len(), 1, "one record in {json}");
    events.remove(0)
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

/// As in `fixtures/config.toml`, plus a named CI system.
fn configured() -> ActorConfig {
    ActorConfig {
        automation_roles: vec![
            "terraform-*".to_owned(),
            "github-actions-*".to_owned(),
            "*-deployer".to_owned(),
        ],
        ci_roles: vec![CiRoles {
            name: "github-actions".to_owned(),
            roles: vec!["github-actions-*".to_owned()],
        }],
    }
}

fn performer(
    kind: PrincipalKind,
    name: &str,
    origin: Origin,
    tool: Tool,
    ci: Option<&str>,
) -> Performer {
    Performer {
        principal: Principal {
            kind,
            name: name.to_owned(),
            origin,
        },
        tool,
        ci: ci.map(|name| Ci {
            name: (!name.is_empty()).then(|| name.to_owned()),
        }),
    }
}

const TERRAFORM_UA: &str = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) \
    terraform-provider-aws/5.46.0 (+https://registry.terraform.io/providers/hashicorp/aws) \
    aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 api/ec2#1.156.0";

// ---- The shapes issue 13 names: each was misread before principal x tool. ----

#[test]
fn sso_person_running_terraform_is_a_person_using_terraform() {
    let event = decoded(
        r#"{"eventVersion":"1.09","eventID":"4b5a8f4e-5c2d-4e47-9d0b-2f3c1a9e7d11",
        "eventTime":"2026-11-02T03:01:07Z","eventSource":"ec2.amazonaws.com",
        "eventName":"AuthorizeSecurityGroupIngress","awsRegion":"ap-northeast-2",
        "recipientAccountId":"111111111111","eventType":"AwsApiCall","readOnly":false,
        "sourceIPAddress":"203.0.113.24",
        "userAgent":"APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) terraform-provider-aws/5.74.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.3 os/macos lang/go#1.22.8 api/ec2#1.187.0",
        "userIdentity":{"type":"AssumedRole",
          "principalId":"AROA3EXAMPLEROLEID111:dae.kim",
          "arn":"arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_PowerUserAccess_4c1f2a9b8e7d6c5b/dae.kim",
          "accountId":"111111111111","accessKeyId":"ASIA3EXAMPLEKEYID111",
          "sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA3EXAMPLEROLEID111",
            "arn":"arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/ap-northeast-2/AWSReservedSSO_PowerUserAccess_4c1f2a9b8e7d6c5b",
            "accountId":"111111111111","userName":"AWSReservedSSO_PowerUserAccess_4c1f2a9b8e7d6c5b"},
            "attributes":{"creationDate":"2026-11-02T02:40:11Z","mfaAuthenticated":"false"}}},
        "requestParameters":{"groupId":"sg-0a1b2c3d4e5f67890"},"responseElements":{"_return":true}}"#,
    );
    let performer_ = classify(&event, &configured());
    assert_eq!(
        performer_,
        performer(
            PrincipalKind::Person,
            "dae.kim",
            Origin::Sso,
            Tool::Terraform,
            None
        )
    );
    assert!(performer_.is_automation(), "Terraform applied it");
    assert_eq!(performer_.tool_label(), "terraform");
}

#[test]
fn sdk_role_session_with_no_person_is_a_workload() {
    let event = decoded(
        r#"{"eventVersion":"1.09","eventID":"0c6f7a2e-1d3b-4b8e-9f51-6a7d2c3e4f90",
        "eventTime":"2026-11-02T03:02:41Z","eventSource":"s3.amazonaws.com",
        "eventName":"PutBucketPolicy","awsRegion":"ap-northeast-2",
        "recipientAccountId":"111111111111","eventType":"AwsApiCall","readOnly":false,
        "sourceIPAddress":"10.20.3.14",
        "userAgent":"[Boto3/1.35.54 md/Botocore#1.35.54 ua/2.0 os/linux#5.10.227-219.884.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.54]",
        "userIdentity":{"type":"AssumedRole",
          "principalId":"AROA3EXAMPLEROLEID222:i-0f1e2d3c4b5a69788",
          "arn":"arn:aws:sts::111111111111:assumed-role/report-exporter/i-0f1e2d3c4b5a69788",
          "accountId":"111111111111","accessKeyId":"ASIA3EXAMPLEKEYID222",
          "sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA3EXAMPLEROLEID222",
            "arn":"arn:aws:iam::111111111111:role/report-exporter","accountId":"111111111111",
            "userName":"report-exporter"},
            "attributes":{"creationDate":"2026-11-02T02:15:09Z","mfaAuthenticated":"false"},
            "ec2RoleDelivery":"2.0"}},
        "requestParameters":{"bucketName":"reports-export"},"responseElements":null}"#,
    );
    assert_eq!(
        classify(&event, &configured()),
        performer(
            PrincipalKind::Workload,
            "report-exporter/i-0f1e2d3c4b5a69788",
            Origin::RoleSession,
            Tool::Sdk,
            None
        )
    );
}

#[test]
fn identity_center_user_is_a_person_named_by_user_name_else_user_id() {
    // A call made on behalf of an Identity Center user: no arn, no userName.
    let event = decoded(
        r#"{"eventVersion":"1.08","eventID":"a3b1c2d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        "eventTime":"2026-11-02T03:03:12Z","eventSource":"sso.amazonaws.com",
        "eventName":"CreateAccountAssignment","awsRegion":"us-east-1",
        "recipientAccountId":"111111111111","eventType":"AwsApiCall","readOnly":false,
        "sourceIPAddress":"203.0.113.24","userAgent":"aws-cli/2.18.4 md/awscrt#0.22.0 ua/2.0 os/macos#24.1.0 md/arch#arm64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off md/command#sso-admin.create-account-assignment",
        "userIdentity":{"type":"IdentityCenterUser","accountId":"111111111111",
          "onBehalfOf":{"userId":"544894e8-80c1-707f-60e3-3ba6510dfac1",
            "identityStoreArn":"arn:aws:identitystore::111111111111:identitystore/d-9067642ac7"},
          "credentialId":"EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE"},
        "requestParameters":{"instanceArn":"arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6"},
        "responseElements":null}"#,
    );
    let by_id = classify(&event, &none());
    assert_eq!(
        by_id,
        performer(
            PrincipalKind::Person,
            "544894e8-80c1-707f-60e3-3ba6510dfac1",
            Origin::Sso,
            Tool::Cli,
            None
        )
    );

    // A sign-in step names the user in additionalEventData.
    let event = decoded(
        r#"{"eventVersion":"1.08","eventID":"b4c2d3e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e",
        "eventTime":"2026-11-02T03:03:20Z","eventSource":"signin.amazonaws.com",
        "eventName":"CredentialChallenge","awsRegion":"us-east-1",
        "recipientAccountId":"111111111111","eventType":"AwsServiceEvent",
        "sourceIPAddress":"203.0.113.24",
        "userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
        "userIdentity":{"type":"IdentityCenterUser","accountId":"111111111111",
          "onBehalfOf":{"userId":"544894e8-80c1-707f-60e3-3ba6510dfac1",
            "identityStoreArn":"arn:aws:identitystore::111111111111:identitystore/d-9067642ac7"},
          "credentialId":"EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE"},
        "additionalEventData":{"CredentialType":"PASSWORD","UserName":"dae.kim"},
        "serviceEventDetails":{"CredentialChallenge":"Success"}}"#,
    );
    let by_name = classify(&event, &none());
    assert_eq!(
        (by_name.principal.kind, by_name.principal.name.as_str()),
        (PrincipalKind::Person, "dae.kim")
    );
    assert_eq!(by_name.principal.origin, Origin::Sso);
}

#[test]
fn assume_root_session_is_root_but_not_the_root_password() {
    // A privileged root session from sts:AssumeRoot, used from the CLI.
    let event = decoded(
        r#"{"eventVersion":"1.10","eventID":"c5d3e4f6-a7b8-4c9d-8e0f-2a3b4c5d6e7f",
        "eventTime":"2026-11-02T03:04:05Z","eventSource":"s3.amazonaws.com",
        "eventName":"DeleteBucketPolicy","awsRegion":"ap-northeast-2",
        "recipientAccountId":"222222222222","eventType":"AwsApiCall","readOnly":false,
        "sourceIPAddress":"203.0.113.24","userAgent":"aws-cli/2.22.0 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#s3api.delete-bucket-policy",
        "userIdentity":{"type":"Root","principalId":"222222222222",
          "arn":"arn:aws:iam::222222222222:root","accountId":"222222222222",
          "accessKeyId":"ASIA3EXAMPLEKEYID333",
          "sessionContext":{"attributes":{"creationDate":"2026-11-02T03:00:00Z",
            "mfaAuthenticated":"false"},"assumedRoot":"true"}},
        "requestParameters":{"bucketName":"locked-out-bucket"},"responseElements":null}"#,
    );
    assert_eq!(
        classify(&event, &none()),
        performer(
            PrincipalKind::Root,
            "root",
            Origin::AssumeRoot,
            Tool::Cli,
            None
        )
    );

    // The root user's own password: a sign-in, no session context.
    let event = decoded(
        r#"{"eventVersion":"1.08","eventID":"d6e4f5a7-b8c9-4d0e-9f1a-3b4c5d6e7f80",
        "eventTime":"2026-11-02T03:05:00Z","eventSource":"signin.amazonaws.com",
        "eventName":"ConsoleLogin","awsRegion":"us-east-1",
        "recipientAccountId":"222222222222","eventType":"AwsConsoleSignIn",
        "sourceIPAddress":"203.0.113.24","userAgent":"Mozilla/5.0 (Macintosh)",
        "userIdentity":{"type":"Root","principalId":"222222222222",
          "arn":"arn:aws:iam::222222222222:root","accountId":"222222222222","accessKeyId":""},
        "responseElements":{"ConsoleLogin":"Success"},
        "additionalEventData":{"MFAUsed":"No","MobileVersion":"No"}}"#,
    );
    let root = classify(&event, &none());
    assert_eq!(root.principal.origin, Origin::RootUser);
    assert_eq!(root.tool, Tool::Console);
}

#[test]
fn hidden_user_name_is_an_unknown_user_not_a_person_called_hidden() {
    // A failed console sign-in with a name that is no user of the account.
    let event = decoded(
        r#"{"eventVersion":"1.08","eventID":"e7f5a6b8-c9d0-4e1f-8a2b-4c5d6e7f8091",
        "eventTime":"2026-11-02T03:06:00Z","eventSource":"signin.amazonaws.com",
        "eventName":"ConsoleLogin","awsRegion":"us-east-1",
        "recipientAccountId":"111111111111","eventType":"AwsConsoleSignIn",
        "sourceIPAddress":"198.51.100.77",
        "userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
        "userIdentity":{"type":"IAMUser","principalId":"","accountId":"111111111111",
          "accessKeyId":"","userName":"HIDDEN_DUE_TO_SECURITY_REASONS"},
        "errorMessage":"No username found in supplied account",
        "responseElements":{"ConsoleLogin":"Failure"},
        "additionalEventData":{"LoginTo":"https://console.aws.amazon.com/console/home","MobileVersion":"No","MFAUsed":"No"}}"#,
    );
    assert_eq!(
        classify(&event, &none()),
        performer(
            PrincipalKind::Unknown,
            "",
            Origin::NameHidden,
            Tool::Console,
            None
        )
    );
}

#[test]
fn ec2_state_change_names_no_actor_but_the_instance() {
    let event = decoded(
        r#"{"version":"0","id":"183dd520-2f9a-5fc2-85d0-e99dce810941",
        "detail-type":"EC2 Instance State-change Notification","source":"aws.ec2",
        "account":"111111111111","time":"2026-11-02T03:04:08Z","region":"ap-northeast-2",
        "resources":["arn:aws:ec2:ap-northeast-2:111111111111:instance/i-0e6ea2da6c3aa11be"],
        "detail":{"instance-id":"i-0e6ea2da6c3aa11be","state":"terminated"}}"#,
    );
    assert_eq!(
        classify(&event, &configured()),
        performer(
            PrincipalKind::Unknown,
            "i-0e6ea2da6c3aa11be",
            Origin::NoActor,
            Tool::Unknown,
            None
        )
    );
}

#[test]
fn terraform_run_by_a_configured_ci_role_is_a_ci_workload_using_terraform() {
    let json = |agent: &str| {
        format!(
            r#"{{"eventVersion":"1.09","eventID":"f8a6b7c9-d0e1-4f2a-9b3c-5d6e7f809102",
            "eventTime":"2026-11-02T03:07:00Z","eventSource":"iam.amazonaws.com",
            "eventName":"PutRolePolicy","awsRegion":"us-east-1",
            "recipientAccountId":"111111111111","eventType":"AwsApiCall","readOnly":false,
            "sourceIPAddress":"20.42.11.8","userAgent":"{agent}",
            "userIdentity":{{"type":"AssumedRole",
              "principalId":"AROA3EXAMPLEROLEID444:GitHubActions",
              "arn":"arn:aws:sts::111111111111:assumed-role/github-actions-terraform/GitHubActions",
              "accountId":"111111111111","accessKeyId":"ASIA3EXAMPLEKEYID444",
              "sessionContext":{{"sessionIssuer":{{"type":"Role",
                "principalId":"AROA3EXAMPLEROLEID444",
                "arn":"arn:aws:iam::111111111111:role/github-actions-terraform",
                "accountId":"111111111111","userName":"github-actions-terraform"}},
                "webIdFederationData":{{"federatedProvider":"arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com","attributes":{{}}}},
                "attributes":{{"creationDate":"2026-11-02T03:06:31Z","mfaAuthenticated":"false"}}}}}},
            "requestParameters":{{"roleName":"app-runtime","policyName":"read-config"}},
            "responseElements":null}}"#
        )
    };
    let terraform = classify(&decoded(&json(TERRAFORM_UA)), &configured());
    assert_eq!(
        terraform,
        performer(
            PrincipalKind::Workload,
            "github-actions-terraform/GitHubActions",
            Origin::RoleSession,
            Tool::Terraform,
            Some("github-actions")
        )
    );
    assert!(terraform.is_automation());
    assert_eq!(terraform.tool_label(), "terraform");

    // The same role with a plain SDK: CI is the tool.
    let sdk = classify(
        &decoded(&json("aws-sdk-go-v2/1.32.3 os/linux lang/go#1.22.8")),
        &configured(),
    );
    assert_eq!(sdk.tool, Tool::Ci);
    assert_eq!(sdk.tool_label(), "ci:github-actions");
}

// ---- Principal and tool, one rule at a time. ----

#[test]
fn sso_console_user_is_a_person_named_by_session() {
    let identity = assumed_role(
        "AWSReservedSSO_AdministratorAccess_1b74cd717d47002b",
        "jane.doe@example.com",
    );
    assert_eq!(
        classify(&event(identity, Some("AWS Internal")), &none()),
        performer(
            PrincipalKind::Person,
            "jane.doe@example.com",
            Origin::Sso,
            Tool::Console,
            None
        )
    );
}

#[test]
fn sso_role_known_by_its_path_whatever_its_name() {
    let mut identity = assumed_role("DevAdmin", "dr.evil");
    identity.role_arn = Some(
        "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/us-west-2/DevAdmin".into(),
    );
    let performer_ = classify(&event(identity, Some("Boto3/1.35.0")), &none());
    assert_eq!(
        (
            performer_.principal.kind,
            performer_.principal.name.as_str(),
            performer_.principal.origin
        ),
        (PrincipalKind::Person, "dr.evil", Origin::Sso)
    );
}

#[test]
fn sso_user_acting_through_a_service_is_still_the_person() {
    let mut identity = assumed_role("AWSReservedSSO_DevAdmin_635426549a280cc6", "bob.ross");
    identity.invoked_by = Some("rds.amazonaws.com".into());
    let performer_ = classify(&event(identity, Some("rds.amazonaws.com")), &none());
    assert_eq!(performer_.principal.kind, PrincipalKind::Person);
    assert_eq!(performer_.principal.name, "bob.ross");
}

#[test]
fn console_credentials_make_a_role_session_a_person() {
    let mut identity = assumed_role("Admin", "1714543380123456789");
    identity.from_console = true;
    let performer_ = classify(&event(identity, Some("Boto3/1.35.0")), &none());
    assert_eq!(performer_.principal.kind, PrincipalKind::Person);
}

#[test]
fn terraform_from_an_unnamed_ci_role() {
    let identity = assumed_role("terraform-apply", "atlantis");
    assert_eq!(
        classify(&event(identity, Some(TERRAFORM_UA)), &configured()),
        performer(
            PrincipalKind::Workload,
            "terraform-apply/atlantis",
            Origin::RoleSession,
            Tool::Terraform,
            Some("")
        )
    );
}

#[test]
fn cloudformation_by_invoked_by_and_by_user_agent() {
    let mut identity = assumed_role("ServiceRole", "AWSCloudFormation");
    identity.invoked_by = Some(CLOUDFORMATION.into());
    let performer_ = classify(&event(identity, Some(CLOUDFORMATION)), &none());
    assert_eq!(
        (performer_.principal.kind, performer_.tool),
        (PrincipalKind::Workload, Tool::CloudFormation)
    );
    assert_eq!(performer_.principal.name, "ServiceRole/AWSCloudFormation");

    let performer_ = classify(&event(iam_user("deployer"), Some(CLOUDFORMATION)), &none());
    assert_eq!(
        (performer_.principal.kind, performer_.tool),
        (PrincipalKind::Person, Tool::CloudFormation)
    );
}

#[test]
fn cdk_by_user_agent_and_bootstrap_role() {
    let ua = "aws-cdk/2.140.0 (node v20.12.2; linux)";
    let performer_ = classify(&event(iam_user("alice"), Some(ua)), &none());
    assert_eq!(
        (performer_.principal.kind, performer_.tool),
        (PrincipalKind::Person, Tool::Cdk)
    );

    let mut identity = assumed_role(
        "cdk-hnb659fds-cfn-exec-role-111111111111-us-east-1",
        "AWSCloudFormation",
    );
    identity.invoked_by = Some(CLOUDFORMATION.into());
    let performer_ = classify(&event(identity, Some(CLOUDFORMATION)), &none());
    assert_eq!(
        (performer_.principal.kind, performer_.tool),
        (PrincipalKind::Workload, Tool::Cdk)
    );
}

#[test]
fn pulumi_by_user_agent() {
    let ua = "aws-sdk-go-v2/1.25.0 os/linux lang/go#1.21 Pulumi/3.100.0";
    let performer_ = classify(&event(iam_user("pulumi-bot"), Some(ua)), &none());
    assert_eq!(performer_.tool, Tool::Pulumi);
    assert!(performer_.is_automation());
}

#[test]
fn configured_ci_roles_and_users_match_globs() {
    let config = ActorConfig {
        automation_roles: vec!["*-deploy".to_owned(), "ci-*-bot".to_owned()],
        ci_roles: Vec::new(),
    };
    let sdk = Some("Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux");
    assert_eq!(
        classify(
            &event(assumed_role("Payments-Deploy", "build-42"), sdk),
            &config
        ),
        performer(
            PrincipalKind::Workload,
            "Payments-Deploy/build-42",
            Origin::RoleSession,
            Tool::Ci,
            Some("")
        )
    );
    let bot = classify(&event(iam_user("ci-release-bot"), sdk), &config);
    assert_eq!(
        (bot.principal.kind, bot.tool, bot.tool_label().as_str()),
        (PrincipalKind::Workload, Tool::Ci, "ci")
    );
    let person = classify(&event(iam_user("ci-release"), sdk), &config);
    assert_eq!(
        (person.principal.kind, person.tool, person.ci),
        (PrincipalKind::Person, Tool::Sdk, None)
    );
}

#[test]
fn named_ci_systems_come_before_unnamed_automation_roles() {
    let identity = assumed_role("github-actions-deploy", "GitHubActions");
    let performer_ = classify(&event(identity, None), &configured());
    assert_eq!(performer_.tool_label(), "ci:github-actions");
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
    assert_eq!(
        classify(&login, &configured()),
        performer(
            PrincipalKind::Root,
            "root",
            Origin::RootUser,
            Tool::Console,
            None
        )
    );
}

#[test]
fn iam_user_with_cli() {
    let ua = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5 exe/x86_64.ubuntu.22 prompt/off";
    assert_eq!(
        classify(&event(iam_user("alice"), Some(ua)), &none()),
        performer(
            PrincipalKind::Person,
            "alice",
            Origin::IamUser,
            Tool::Cli,
            None
        )
    );
}

#[test]
fn hand_tools_sdk_console_and_unknown() {
    let tool = |ua: Option<&str>| classify(&event(iam_user("bob"), ua), &none()).tool;
    assert_eq!(tool(Some("aws-sdk-java/2.20.0 Linux/5.10")), Tool::Sdk);
    assert_eq!(tool(Some("Boto3/1.26.0")), Tool::Sdk);
    assert_eq!(tool(Some("console.ec2.amazonaws.com")), Tool::Console);
    assert_eq!(tool(Some("signin.amazonaws.com")), Tool::Console);
    assert_eq!(tool(Some("curl/8.0")), Tool::Unknown);
    assert_eq!(tool(None), Tool::Unknown);

    let mut identity = iam_user("bob");
    identity.invoked_by = Some("signin.amazonaws.com".into());
    let performer_ = classify(&event(identity, Some("curl/8.0")), &none());
    assert_eq!(
        (performer_.principal.kind, performer_.tool),
        (PrincipalKind::Person, Tool::Console)
    );
}

#[test]
fn a_role_session_from_the_cli_or_a_browser_is_a_person() {
    for ua in [
        "aws-cli/2.15.0 Python/3.11.6",
        "Mozilla/5.0 (X11; Linux x86_64)",
    ] {
        let identity = assumed_role("OpsAdmin", "1714543380123456789");
        let performer_ = classify(&event(identity, Some(ua)), &none());
        assert_eq!(performer_.principal.kind, PrincipalKind::Person, "{ua}");
    }
    let identity = assumed_role("OpsAdmin", "1714543380123456789");
    let performer_ = classify(&event(identity, None), &none());
    assert_eq!(performer_.principal.kind, PrincipalKind::Workload);

    // A managed workload's call made inside AWS: not the console.
    let mut identity = assumed_role("airflow-runner", "astronomer-managed-1665678811");
    identity.invoked_by = Some("AWS Internal".into());
    let performer_ = classify(&event(identity, Some("AWS Internal")), &none());
    assert_eq!(
        (performer_.principal.kind, performer_.tool),
        (PrincipalKind::Workload, Tool::Service)
    );
}

#[test]
fn service_linked_role_is_the_service() {
    let mut identity = assumed_role("AWSServiceRoleForAutoScaling", "AutoScaling");
    identity.invoked_by = Some("autoscaling.amazonaws.com".into());
    assert_eq!(
        classify(&event(identity, Some("autoscaling.amazonaws.com")), &none()),
        performer(
            PrincipalKind::AwsService,
            "autoscaling.amazonaws.com",
            Origin::Service,
            Tool::Service,
            None
        )
    );

    // Without invokedBy, the bare service user agent names it.
    let identity = assumed_role("AWSServiceRoleForAutoScaling", "AutoScaling");
    let performer_ = classify(&event(identity, Some("autoscaling.amazonaws.com")), &none());
    assert_eq!(performer_.principal.name, "autoscaling.amazonaws.com");
}

#[test]
fn aws_service_identity_and_service_on_a_plain_role() {
    let identity = Identity {
        kind: Some("AWSService".into()),
        invoked_by: Some("lambda.amazonaws.com".into()),
        ..Identity::default()
    };
    let performer_ = classify(&event(identity, Some("lambda.amazonaws.com")), &none());
    assert_eq!(
        (
            performer_.principal.kind,
            performer_.principal.name.as_str()
        ),
        (PrincipalKind::AwsService, "lambda.amazonaws.com")
    );

    let identity = Identity {
        kind: Some("AWSService".into()),
        ..Identity::default()
    };
    assert_eq!(
        classify(&event(identity, None), &none()).principal.name,
        "iam.amazonaws.com",
        "falls back to the event source"
    );

    let mut identity = assumed_role("SomeAWSConfig", "ConfigResourceCompositionSession");
    identity.invoked_by = Some("config.amazonaws.com".into());
    let performer_ = classify(&event(identity, Some("AWS Internal")), &none());
    assert_eq!(
        (
            performer_.principal.kind,
            performer_.principal.name.as_str()
        ),
        (PrincipalKind::AwsService, "config.amazonaws.com")
    );
}

#[test]
fn a_person_looking_role_session_is_a_person() {
    let mut identity = assumed_role("Admin", "jane@example.com");
    identity.invoked_by = Some("eks.amazonaws.com".into());
    let performer_ = classify(&event(identity, None), &none());
    assert_eq!(performer_.principal.kind, PrincipalKind::Person);
    assert_eq!(performer_.principal.name, "Admin/jane@example.com");
    assert_eq!(performer_.principal.origin, Origin::RoleSession);
}

#[test]
fn federated_user_named_from_arn() {
    let identity = Identity {
        kind: Some("FederatedUser".into()),
        arn: Some("arn:aws:sts::111111111111:federated-user/carol".into()),
        principal_id: Some("111111111111:carol".into()),
        ..Identity::default()
    };
    let performer_ = classify(&event(identity, Some("aws-cli/2.15.0")), &none());
    assert_eq!(
        (
            performer_.principal.kind,
            performer_.principal.name.as_str(),
            performer_.principal.origin
        ),
        (PrincipalKind::Person, "carol", Origin::Federated)
    );
}

#[test]
fn iam_user_with_path_named_by_last_segment() {
    let identity = Identity {
        kind: Some("IAMUser".into()),
        arn: Some("arn:aws:iam::111111111111:user/division/team/dave".into()),
        ..Identity::default()
    };
    assert_eq!(
        classify(&event(identity, None), &none()).principal.name,
        "dave"
    );
}

#[test]
fn another_accounts_principal_is_unknown_named_without_access_keys() {
    let identity = Identity {
        kind: Some("AWSAccount".into()),
        principal_id: Some("AIDAEXAMPLEPRINCIPAL:ASIAIJJG73VC6IW5OFVQ".into()),
        ..Identity::default()
    };
    let performer_ = classify(&event(identity, None), &none());
    assert_eq!(
        (
            performer_.principal.kind,
            performer_.principal.name.as_str()
        ),
        (PrincipalKind::Unknown, "AIDAEXAMPLEPRINCIPAL")
    );

    let identity = Identity {
        kind: Some("Unknown".into()),
        principal_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
        ..Identity::default()
    };
    assert_eq!(
        classify(&event(identity, None), &none()).principal.name,
        "unknown"
    );
}

#[test]
fn access_keys_in_names_are_shortened() {
    let identity = assumed_role("DevAdministrator", "ASIA5PZQZ5QHE2FUNXHR");
    let performer_ = classify(&event(identity, Some("aws-cli/2.13.0")), &none());
    assert_eq!(performer_.principal.name, "DevAdministrator/ASIA…NXHR");

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
fn stored_performers_are_read_back_in_either_shape() {
    let now = performer(
        PrincipalKind::Workload,
        "github-actions-terraform/GitHubActions",
        Origin::RoleSession,
        Tool::Terraform,
        Some("github-actions"),
    );
    let json = serde_json::to_string(&now).unwrap_or_else(|err| panic!("{err}"));
    let back: Performer = serde_json::from_str(&json).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(back, now);

    // As the version before principal x tool stored it (DynamoDB items in flight).
    let before: Performer = serde_json::from_str(r#"{"kind":"human","name":"bob","via":"cli"}"#)
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        (
            before.principal.kind,
            before.principal.name.as_str(),
            before.tool
        ),
        (PrincipalKind::Person, "bob", Tool::Cli)
    );
    let before: Performer =
        serde_json::from_str(r#"{"kind":"automation","name":"ci","via":"cloud_formation"}"#)
            .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        (before.principal.kind, before.tool),
        (PrincipalKind::Workload, Tool::CloudFormation)
    );
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
