//! Resources of real call shapes (issue 17), on the fixtures of `fixtures/resources/` (written
//! by `fixtures/resources/gen_resources.py`) through the real decoder: each thing once, by its
//! most readable name, decoded; long lists counted past the kept ones; RDS identifiers and SSM
//! targets recognised; settings (environment variables, options) never listed.

#![allow(
    clippy::unwrap_used,
    reason = "tests: a missing field or bad fixture fails loudly"
)]

mod common;

use trailwatch::event::{Decoded, Event, MAX_RESOURCES, decode_bytes};

/// Every event of `fixtures/resources/<file>`, in file order.
fn events(file: &str) -> Vec<Event> {
    let path = common::fixture("resources").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let mut events = Vec::new();
    decode_bytes(&bytes, &mut |decoded| match decoded {
        Decoded::Record(record) => events.push(record.to_event()),
        other => panic!("{file}: not a record: {other:?}"),
    });
    events
}

/// The one event of `file` named `name` (the raw CloudTrail `eventName`).
fn event(file: &str, name: &str) -> Event {
    let mut found: Vec<Event> = events(file)
        .into_iter()
        .filter(|e| &*e.name == name)
        .collect();
    assert_eq!(found.len(), 1, "{file}: one {name}");
    found.remove(0)
}

fn names(event: &Event) -> Vec<&str> {
    event.resources.iter().map(|r| &*r.name).collect()
}

#[test]
fn a_launch_of_100_instances_lists_instance_ids_and_counts_the_rest() {
    let launched = events("run-instances.jsonl").remove(0);
    assert_eq!(&*launched.name, "RunInstances");
    assert!(!launched.failed());
    assert_eq!(launched.resources.len(), MAX_RESOURCES);
    for resource in &launched.resources {
        assert_eq!(&*resource.kind, "instanceId");
        assert!(
            resource.name.starts_with("i-0") && resource.name.len() == 19,
            "not an instance id: {}",
            resource.name
        );
    }
    assert_eq!(
        launched.resources_more,
        100 - 24,
        "the instances not listed"
    );
    // Ids in launch order: the first and the 24th of the response.
    let response =
        std::fs::read_to_string(common::fixture("resources/run-instances.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(response.lines().next().unwrap()).unwrap();
    let items = &first["detail"]["responseElements"]["instancesSet"]["items"];
    assert_eq!(items.as_array().unwrap().len(), 100);
    assert_eq!(launched.resources[0].name.as_ref(), items[0]["instanceId"]);
    assert_eq!(
        launched.resources[23].name.as_ref(),
        items[23]["instanceId"]
    );
}

#[test]
fn a_denied_launch_lists_what_it_asked_for_without_devices() {
    let denied = events("run-instances.jsonl").remove(1);
    assert!(denied.failed());
    assert_eq!(
        names(&denied),
        [
            "lt-0622a7ff26539376a",
            "snap-0b5e0bcf8d6a5d7c2",
            "subnet-044902acd6e2403e7",
            "sg-0e296d40e0fa43ff4",
        ]
    );
    assert_eq!(denied.resources_more, 0);
}

#[test]
fn a_thing_named_and_given_by_arn_is_listed_once_by_its_name() {
    let file = "one-name.jsonl";
    let role = event(file, "CreateRole");
    assert_eq!(names(&role), ["ci-deploy"], "not its path, role id or ARN");
    assert_eq!(&*role.resources[0].kind, "roleName");
    assert_eq!(
        names(&event(file, "AttachRolePolicy")),
        ["ci-deploy", "arn:aws:iam::aws:policy/PowerUserAccess"],
        "a role and a policy are two things"
    );
    assert_eq!(
        names(&event(file, "PutBucketPolicy")),
        ["platform-prod-artifacts-111111111111"]
    );
    let function = event(file, "UpdateFunctionConfiguration20150331v2");
    assert_eq!(
        names(&function),
        ["orders-sync"],
        "asked by ARN, answered by name"
    );
    assert_eq!(&*function.resources[0].kind, "functionName");
    let key = event(file, "ScheduleKeyDeletion");
    assert_eq!(names(&key).len(), 1, "{:?}", names(&key));
    assert!(!key.resources[0].name.starts_with("arn:"));
}

#[test]
fn a_percent_encoded_arn_is_shown_decoded_and_once() {
    let eks = event("one-name.jsonl", "AssociateAccessPolicy");
    assert_eq!(
        names(&eks),
        [
            "platform-prod",
            "arn:aws:iam::111111111111:role/ci-deploy",
            "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
        ]
    );
    assert!(eks.resources.iter().all(|r| !r.name.contains('%')));
}

#[test]
fn rds_names_its_resources_by_identifier() {
    let file = "rds.jsonl";
    let deleted = event(file, "DeleteDBInstance");
    assert_eq!(
        names(&deleted)[..2],
        ["orders-prod", "orders-prod-final-2026-11-02"],
        "the instance, then its final snapshot"
    );
    assert_eq!(&*deleted.resources[0].kind, "dBInstanceIdentifier");
    let all = names(&deleted);
    assert!(
        !all.iter().any(|n| n.starts_with("arn:aws:rds:")),
        "{all:?}"
    );
    assert!(!all.contains(&"rds-ca-rsa2048-g1"), "{all:?}");
    assert!(!all.iter().any(|n| n.starts_with("us-east-1")), "{all:?}");
    let snapshot = event(file, "CreateDBSnapshot");
    assert_eq!(
        names(&snapshot)[..2],
        ["orders-prod-before-migration", "orders-prod"]
    );
    assert_eq!(
        names(&event(file, "ModifyDBSnapshotAttribute"))[0],
        "orders-prod-before-migration"
    );
    assert_eq!(
        names(&event(file, "CreateDBClusterSnapshot"))[..2],
        ["orders-aurora-nightly", "orders-aurora"]
    );
}

#[test]
fn send_command_lists_its_target_instances_and_tags() {
    let commands = events("ssm.jsonl");
    let instances = |event: &Event| -> Vec<String> {
        event
            .resources
            .iter()
            .filter(|r| &*r.kind == "instanceId")
            .map(|r| r.name.to_string())
            .collect()
    };
    // `instanceIds`: every instance, once though the response repeats them.
    let listed = instances(&commands[0]);
    assert_eq!(listed.len(), 3, "{:?}", names(&commands[0]));
    assert!(listed.iter().all(|id| id.starts_with("i-0")), "{listed:?}");
    assert!(names(&commands[0]).contains(&"AWS-RunShellScript"));
    // `targets` by tag: the tag and its value, not the word `tag:Environment` alone.
    let by_tag = names(&commands[1]);
    assert_eq!(by_tag[0], "tag:Environment=prod", "{by_tag:?}");
    assert!(instances(&commands[1]).is_empty());
    // `targets` by instance ids: the instances, not the word `InstanceIds`.
    assert_eq!(instances(&commands[2]), listed[..2]);
    assert!(!names(&commands[2]).contains(&"InstanceIds"));
}

#[test]
fn environment_variable_and_option_names_are_never_resources() {
    const SETTINGS: &[&str] = &[
        "DB_HOST",
        "DB_NAME",
        "QUEUE_URL",
        "LOG_LEVEL",
        "SPLUNK_TOKEN",
        "DB_PASSWORD",
        "IamInstanceProfile",
    ];
    for event in events("env-vars.jsonl") {
        for resource in &event.resources {
            assert!(
                !SETTINGS.contains(&&*resource.name),
                "{}: {} listed as a resource",
                event.name,
                resource.name
            );
        }
    }
    let beanstalk = event("env-vars.jsonl", "CreateEnvironment");
    assert_eq!(names(&beanstalk)[..2], ["orders-api", "orders-api-prod"]);
    let ecs = event("env-vars.jsonl", "RegisterTaskDefinition");
    assert!(
        names(&ecs).contains(&"arn:aws:ecs:us-east-1:111111111111:task-definition/orders-api:14"),
        "{:?}",
        names(&ecs)
    );
}
