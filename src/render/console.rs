//! Links into the AWS Management Console, on the console domain of the region's partition.
//!
//! Each partition has its own console, and a link on another partition's domain opens a
//! sign-in page for accounts the reader does not have there:
//! - commercial (`aws`): regional endpoints `https://<region>.console.aws.amazon.com`
//!   (<https://docs.aws.amazon.com/general/latest/gr/mgmt-console.html>);
//! - AWS GovCloud (US) (`aws-us-gov`, regions `us-gov-*`): `https://console.amazonaws-us-gov.com`
//!   (<https://docs.aws.amazon.com/govcloud-us/latest/UserGuide/configure-account.html>, which
//!   opens the IAM console at `https://console.amazonaws-us-gov.com/iam`);
//! - China (`aws-cn`, regions `cn-*`): `https://console.amazonaws.cn`, the general sign-in
//!   endpoint of <https://docs.amazonaws.cn/en_us/IAM/latest/UserGuide/id_users_sign-in.html>.
//!
//! The CloudTrail console lives at `/cloudtrail/home` on each
//! (<https://docs.aws.amazon.com/awscloudtrail/latest/userguide/view-cloudtrail-events-console.html>);
//! `#/events?StartTime=…&EndTime=…` is the console's own route to Event history for a time range
//! (not documented by AWS; the link trailwatch has always made).
//!
//! The isolated partitions (`aws-iso*`, regions `us-iso-*`, `us-isob-*`, `us-isof-*`,
//! `eu-isoe-*`) and the European Sovereign Cloud (`eusc-*`) have consoles on their own networks
//! that no public page documents: no link is made for them rather than a wrong one.

use chrono::{DateTime, SecondsFormat, Utc};

/// The console origin (scheme and host) for a region, or `None` when the region is not a
/// region name or its partition has no console we can link to.
fn console_origin(region: &str) -> Option<String> {
    let valid = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return None;
    }
    let isolated = region.starts_with("eusc-")
        || region
            .split('-')
            .nth(1)
            .is_some_and(|part| part.starts_with("iso"));
    if isolated {
        None
    } else if region.starts_with("us-gov-") {
        Some("https://console.amazonaws-us-gov.com".to_owned())
    } else if region.starts_with("cn-") {
        Some("https://console.amazonaws.cn".to_owned())
    } else {
        Some(format!("https://{region}.console.aws.amazon.com"))
    }
}

/// CloudTrail Event history of `region` from `start` to `end`, on the console of the region's
/// partition (see the module docs). `None` unless `region` is 1 to 32 of `[a-z0-9-]` (it comes
/// from the event and ends up in a link), or when its partition has no public console.
pub fn cloudtrail_url(region: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Option<String> {
    let origin = console_origin(region)?;
    Some(format!(
        "{origin}/cloudtrail/home?region={region}#/events?StartTime={}&EndTime={}",
        start.to_rfc3339_opts(SecondsFormat::Millis, true),
        end.to_rfc3339_opts(SecondsFormat::Millis, true),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_has_its_console_origin() {
        let origin = |region| console_origin(region).unwrap_or_default();
        assert_eq!(
            origin("ap-northeast-2"),
            "https://ap-northeast-2.console.aws.amazon.com"
        );
        assert_eq!(
            origin("us-gov-west-1"),
            "https://console.amazonaws-us-gov.com"
        );
        assert_eq!(
            origin("us-gov-east-1"),
            "https://console.amazonaws-us-gov.com"
        );
        assert_eq!(origin("cn-north-1"), "https://console.amazonaws.cn");
        assert_eq!(origin("cn-northwest-1"), "https://console.amazonaws.cn");
        // Commercial regions whose names merely start like another partition's.
        assert_eq!(
            origin("us-east-1"),
            "https://us-east-1.console.aws.amazon.com"
        );
        assert_eq!(
            origin("ca-central-1"),
            "https://ca-central-1.console.aws.amazon.com"
        );
        for isolated in [
            "us-iso-east-1",
            "us-isob-east-1",
            "us-isof-south-1",
            "eu-isoe-west-1",
            "eusc-de-east-1",
        ] {
            assert_eq!(console_origin(isolated), None, "{isolated}");
        }
    }
}
