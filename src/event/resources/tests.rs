//! Unit tests of resource extraction: the rules one at a time, on small JSON.

#![allow(clippy::unwrap_used, reason = "test fixtures")]

use super::*;

/// `(kind, name)` of each resource, and the count beyond them.
fn read(name: &str, request: &str, response: &str) -> (Vec<(String, String)>, u32) {
    let request: &RawValue = serde_json::from_str(request).unwrap();
    let response: &RawValue = serde_json::from_str(response).unwrap();
    let extracted = extract(
        &Sources {
            source: "test.amazonaws.com",
            name,
            instances: &[],
            request: Some(request),
            response: Some(response),
            resources: None,
        },
        &mut RedactCache::default(),
    );
    let list = extracted
        .resources
        .iter()
        .map(|r| (r.kind.to_string(), r.name.to_string()))
        .collect();
    (list, extracted.more)
}

fn names(request: &str, response: &str) -> Vec<String> {
    read("Call", request, response)
        .0
        .into_iter()
        .map(|(_, name)| name)
        .collect()
}

#[test]
fn an_arn_names_what_its_resource_part_ends_with() {
    let role = "arn:aws:iam::111111111111:role/service-role/deploy";
    assert_eq!(arn_resource(role), Some("role/service-role/deploy"));
    assert!(names_same(role, "deploy"));
    assert!(names_same(role, "service-role/deploy"));
    assert!(!names_same(role, "ploy"), "only after a `/` or `:`");
    assert!(names_same(
        "arn:aws:lambda:us-east-1:111111111111:function:orders",
        "orders"
    ));
    assert!(names_same("arn:aws:s3:::reports", "reports"));
    assert!(names_same(
        "arn:aws:s3:::reports/2026/q1.csv",
        "2026/q1.csv"
    ));
    assert!(
        !names_same("arn:aws:s3:::reports/2026/q1.csv", "reports"),
        "a bucket is not its object"
    );
    assert_eq!(arn_resource("arn:aws"), None);
    assert_eq!(arn_resource("deploy"), None);
}

#[test]
fn percent_encoded_arns_are_decoded_and_nothing_else_is() {
    assert_eq!(
        decode_arn("arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2FTrailDiscover"),
        "arn:aws:iam::111111111111:role/TrailDiscover"
    );
    assert_eq!(
        decode_arn("arn%3aaws%3as3%3a%3a%3areports"),
        "arn:aws:s3:::reports"
    );
    assert_eq!(
        decode_arn("report%20q1"),
        "report%20q1",
        "not an ARN: left as written"
    );
    assert_eq!(
        decode_arn("arn%3Aaws%3A%ZZ"),
        "arn:aws:%ZZ",
        "a broken escape stays"
    );
    assert_eq!(
        decode_arn("arn%3A%FF%FE"),
        "arn%3A%FF%FE",
        "not UTF-8 once decoded"
    );
}

#[test]
fn a_name_and_the_arn_of_the_same_thing_make_one_resource_in_either_order() {
    let arn_first = read(
        "Call",
        r#"{"roleArn":"arn:aws:iam::111111111111:role/deploy"}"#,
        r#"{"roleName":"deploy"}"#,
    );
    let name_first = read(
        "Call",
        r#"{"roleName":"deploy"}"#,
        r#"{"roleArn":"arn:aws:iam::111111111111:role/deploy"}"#,
    );
    let expected = vec![("roleName".to_owned(), "deploy".to_owned())];
    assert_eq!(arn_first.0, expected);
    assert_eq!(name_first.0, expected);
    // Two different things stay two.
    assert_eq!(
        names(
            r#"{"roleName":"deploy","policyArn":"arn:aws:iam::aws:policy/ReadOnlyAccess"}"#,
            "null"
        ),
        ["deploy", "arn:aws:iam::aws:policy/ReadOnlyAccess"]
    );
}

#[test]
fn an_encoded_arn_is_decoded_before_it_is_compared_and_kept() {
    assert_eq!(
        names(
            r#"{"name":"orders","principalArn":"arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2Fci"}"#,
            r#"{"principalArn":"arn:aws:iam::111111111111:role/ci"}"#,
        ),
        ["orders", "arn:aws:iam::111111111111:role/ci"]
    );
}

#[test]
fn an_id_beside_its_name_in_one_object_is_the_same_thing() {
    let response = r#"{"user":{"path":"/","userName":"alice","userId":"AIDAEXAMPLEUSERID001","arn":"arn:aws:iam::111111111111:user/alice"}}"#;
    assert_eq!(names(r#"{"userName":"alice"}"#, response), ["alice"]);
    // In different objects, an id and a name are not known to be one thing.
    assert_eq!(
        names(
            r#"{"groupName":"web"}"#,
            r#"{"groupId":"sg-0123456789abcdef0"}"#
        ),
        ["web", "sg-0123456789abcdef0"]
    );
}

#[test]
fn settings_in_a_list_are_not_resources_but_a_lone_name_and_value_is() {
    let beanstalk = r#"{"environmentName":"orders-prod","optionSettings":[{"namespace":"aws:elasticbeanstalk:application:environment","optionName":"DB_HOST","value":"db.internal"}]}"#;
    assert_eq!(names(beanstalk, "null"), ["orders-prod"]);
    // Under a key no list names, the shape still tells a setting.
    let ecs = r#"{"family":"api","containerDefinitions":[{"name":"api","logConfiguration":{"logDriver":"splunk","secretOptions":[{"name":"SPLUNK_TOKEN","valueFrom":"arn:aws:secretsmanager:us-east-1:111111111111:secret:splunk"}]}}]}"#;
    assert_eq!(names(ecs, "null"), ["api"]);
    let pascal =
        r#"{"Environment":{"Variables":{"TABLE_NAME":"orders"}},"FunctionName":"orders-sync"}"#;
    assert_eq!(names(pascal, "null"), ["orders-sync"]);
    // SSM PutParameter: the parameter's name is the resource, its value is not read.
    assert_eq!(
        names(
            r#"{"name":"/prod/db/host","type":"String","value":"db.internal"}"#,
            "null"
        ),
        ["/prod/db/host"]
    );
}

#[test]
fn rds_identifiers_are_resources_and_certificate_authorities_are_not() {
    let (list, _) = read(
        "CreateDBSnapshot",
        r#"{"dBSnapshotIdentifier":"orders-before-migration","dBInstanceIdentifier":"orders"}"#,
        r#"{"dBSnapshotIdentifier":"orders-before-migration","dBInstanceIdentifier":"orders","dBSnapshotArn":"arn:aws:rds:us-east-1:111111111111:snapshot:orders-before-migration","cACertificateIdentifier":"rds-ca-rsa2048-g1"}"#,
    );
    assert_eq!(
        list,
        [
            (
                "dBSnapshotIdentifier".to_owned(),
                "orders-before-migration".to_owned()
            ),
            ("dBInstanceIdentifier".to_owned(), "orders".to_owned()),
        ]
    );
}

#[test]
fn ssm_targets_name_instances_or_tags() {
    let (list, _) = read(
        "SendCommand",
        r#"{"documentName":"AWS-RunShellScript","targets":[{"key":"InstanceIds","values":["i-0aaaaaaaaaaaaaaa1","i-0aaaaaaaaaaaaaaa2"]},{"key":"tag:Environment","values":["prod"]}],"instanceIds":["i-0aaaaaaaaaaaaaaa2","i-0aaaaaaaaaaaaaaa3"]}"#,
        "null",
    );
    assert_eq!(
        list,
        [
            ("documentName".to_owned(), "AWS-RunShellScript".to_owned()),
            ("instanceId".to_owned(), "i-0aaaaaaaaaaaaaaa1".to_owned()),
            ("instanceId".to_owned(), "i-0aaaaaaaaaaaaaaa2".to_owned()),
            ("target".to_owned(), "tag:Environment=prod".to_owned()),
            ("instanceId".to_owned(), "i-0aaaaaaaaaaaaaaa3".to_owned()),
        ]
    );
    // EventBridge `targets` are another shape: read like anything else.
    assert_eq!(
        names(
            r#"{"rule":"nightly","targets":[{"id":"1","arn":"arn:aws:lambda:us-east-1:111111111111:function:report"}]}"#,
            "null"
        ),
        ["arn:aws:lambda:us-east-1:111111111111:function:report"]
    );
}

#[test]
fn past_the_kept_ones_each_distinct_thing_is_counted_once() {
    let ids: Vec<String> = (0..40).map(|n| format!("\"i-{n:017x}\"")).collect();
    let arns: Vec<String> = (30..40)
        .map(|n| format!("\"arn:aws:ec2:us-east-1:111111111111:instance/i-{n:017x}\""))
        .collect();
    let request = format!(r#"{{"instanceIds":[{}]}}"#, ids.join(","));
    let response = format!(
        r#"{{"instanceArns":[{}],"instanceIds":[{}]}}"#,
        arns.join(","),
        ids.join(",")
    );
    let (list, more) = read("Call", &request, &response);
    assert_eq!(list.len(), MAX_RESOURCES);
    assert_eq!(
        more,
        40 - 24,
        "ids repeated, and ARNs of the same instances, count once"
    );
    assert!(
        list.iter()
            .all(|(kind, name)| kind == "instanceId" && name.starts_with("i-"))
    );
}

#[test]
fn a_run_instances_response_gives_the_instances_it_launched_and_nothing_else() {
    let request = r#"{"instancesSet":{"items":[{"imageId":"ami-0abcdef1234567890","minCount":2,"maxCount":2,"keyName":"ops"}]},"networkInterfaceSet":{"items":[{"deviceIndex":0,"subnetId":"subnet-0123456789abcdef0"}]}}"#;
    let response = r#"{"reservationId":"r-0123456789abcdef0","instancesSet":{"items":[{"instanceId":"i-0123456789abcdef0","privateDnsName":"ip-10-0-0-1.ec2.internal","networkInterfaceSet":{"items":[{"networkInterfaceId":"eni-0123456789abcdef0"}]}},{"instanceId":"i-0123456789abcdef1","privateDnsName":"ip-10-0-0-2.ec2.internal"}]}}"#;
    let launched = extract(
        &Sources {
            source: "ec2.amazonaws.com",
            name: "RunInstances",
            instances: &[],
            request: serde_json::from_str(request).ok(),
            response: serde_json::from_str(response).ok(),
            resources: None,
        },
        &mut RedactCache::default(),
    );
    let names: Vec<&str> = launched.resources.iter().map(|r| &*r.name).collect();
    assert_eq!(names, ["i-0123456789abcdef0", "i-0123456789abcdef1"]);
    // Denied: no response, so what it was asked to launch with is all there is.
    let denied = extract(
        &Sources {
            source: "ec2.amazonaws.com",
            name: "RunInstances",
            instances: &[],
            request: serde_json::from_str(request).ok(),
            response: None,
            resources: None,
        },
        &mut RedactCache::default(),
    );
    let names: Vec<&str> = denied.resources.iter().map(|r| &*r.name).collect();
    assert_eq!(names, ["ops", "subnet-0123456789abcdef0"]);
}

#[test]
fn paths_and_placeholders_are_not_names() {
    assert_eq!(
        names(
            r#"{"roleName":"deploy","path":"/service-role/","name":"*"}"#,
            "null"
        ),
        ["deploy"]
    );
}
