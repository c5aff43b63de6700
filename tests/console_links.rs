//! Console links per partition (issue 17): CloudTrail Event history on the console domain of the
//! event's partition (`aws`, `aws-us-gov`, `aws-cn`), and no link for a region that is not one.

use chrono::{DateTime, TimeZone as _, Utc};
use trailwatch::render::console::cloudtrail_url;

fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Utc.with_ymd_and_hms(2026, 11, 2, 3, 0, 0).single();
    let end = Utc.with_ymd_and_hms(2026, 11, 2, 3, 5, 0).single();
    (start.unwrap_or_default(), end.unwrap_or_default())
}

fn link(region: &str) -> Option<String> {
    let (start, end) = window();
    cloudtrail_url(region, start, end)
}

const RANGE: &str = "#/events?StartTime=2026-11-02T03:00:00.000Z&EndTime=2026-11-02T03:05:00.000Z";

#[test]
fn commercial_regions_link_to_their_regional_console() {
    assert_eq!(
        link("ap-northeast-2").as_deref(),
        Some(
            format!(
                "https://ap-northeast-2.console.aws.amazon.com/cloudtrail/home?region=ap-northeast-2{RANGE}"
            )
            .as_str()
        )
    );
    assert_eq!(
        link("us-east-1").as_deref(),
        Some(
            format!(
                "https://us-east-1.console.aws.amazon.com/cloudtrail/home?region=us-east-1{RANGE}"
            )
            .as_str()
        )
    );
}

#[test]
fn govcloud_regions_link_to_the_govcloud_console() {
    for region in ["us-gov-west-1", "us-gov-east-1"] {
        assert_eq!(
            link(region),
            Some(format!(
                "https://console.amazonaws-us-gov.com/cloudtrail/home?region={region}{RANGE}"
            )),
        );
    }
}

#[test]
fn china_regions_link_to_the_china_console() {
    for region in ["cn-north-1", "cn-northwest-1"] {
        assert_eq!(
            link(region),
            Some(format!(
                "https://console.amazonaws.cn/cloudtrail/home?region={region}{RANGE}"
            )),
        );
    }
}

#[test]
fn no_link_for_what_is_not_a_region_name() {
    let long = "a".repeat(33);
    for bad in [
        "",
        "US-EAST-1",
        "us-east-1#/x",
        "us-east-1?x=1",
        "us east 1",
        "evil.example/",
        "us-east-1\n",
        "ap-northeast-2.",
        long.as_str(),
    ] {
        assert_eq!(link(bad), None, "{bad:?}");
    }
    assert!(
        link(&"a".repeat(32)).is_some(),
        "32 characters are still a name"
    );
}

#[test]
fn no_link_for_partitions_without_a_public_console() {
    for region in ["us-iso-east-1", "us-isob-east-1", "eusc-de-east-1"] {
        assert_eq!(link(region), None, "{region}");
    }
}
