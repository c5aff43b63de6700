//! The seam: a third language is a word table and a variant, and the pack's titles in it.

use chrono_tz::UTC;

use super::{Lang, Locale, Words, en};
use crate::delivery::Delivery;
use crate::enrich::{PrincipalKind, Tool};
use crate::rules::RulePack;
use crate::summary::offline_summary;
use crate::testing::{actor, as_text, batch, batch_event, event};
use crate::window::BatchKind;

/// German, a stub: the English table with a few words changed.
pub(super) const DE: Words = Words {
    performers: "Akteur(e)",
    time: "Zeit",
    severity: "Schweregrad",
    summary_by: "Zusammenfassung",
    red: "rot",
    yellow: "gelb",
    green: "grün",
    via: |tool| format!("über {tool}"),
    worst_rule: |title, severity| format!("Schlimmste Regel: {title} ({severity})."),
    ..en::WORDS
};

const PACK: &str = r#"
[[rule]]
id = "iam-user"
title = { en = "IAM user changed", ko = "IAM 사용자 변경", de = "IAM-Benutzer geändert" }
severity = "yellow"
[rule.match]
source = "iam.amazonaws.com"

[[rule]]
id = "s3-bucket"
title = "S3 bucket changed"
severity = "green"
[rule.match]
source = "s3.amazonaws.com"
"#;

/// Terraform changing a user and a bucket, rendered as a terminal would show it.
fn rendered(lang: Lang) -> String {
    let pack = RulePack::from_toml(PACK).unwrap();
    let [iam, s3] = pack.rules() else {
        panic!("two rules");
    };
    let tf = actor("terraform-ci", PrincipalKind::Workload, Tool::Terraform);
    let mut bucket = event("e2", 60, "us-east-1", "DeleteBucket", &["logs"]);
    bucket.source = "s3.amazonaws.com".into();
    let batch = batch(
        BatchKind::Window,
        None,
        vec![
            batch_event(
                event("e1", 5, "us-east-1", "CreateUser", &["bob"]),
                iam,
                &tf,
            ),
            batch_event(bucket, s3, &tf),
        ],
    );
    let locale = Locale { lang, tz: UTC };
    let summary = offline_summary(&batch, locale);
    as_text(&[Delivery::new(batch, summary, locale)])
}

#[test]
fn a_third_language_renders_from_its_table_and_the_packs_titles() {
    let de = rendered(Lang::De);
    // Its own words, in the fields, the tree and the headline.
    assert!(de.contains("Zeit: 2024-01-01 00:00–00:05 UTC"), "{de}");
    assert!(de.contains("terraform-ci über Terraform"), "{de}");
    // The pack's title in the language, English where the pack gives none (two rules: the
    // tree heads each rule's lines with its title).
    assert!(de.contains("▸ IAM-Benutzer geändert"), "{de}");
    assert!(de.contains("▸ S3 bucket changed"), "{de}");
    assert!(de.contains("CreateUser → bob"), "{de}");
    // The words the stub did not change are the English ones it was built from.
    assert!(de.contains("Account: 111111111111"), "{de}");
    assert!(de.contains("made 2 changes"), "{de}");

    let en = rendered(Lang::En);
    assert!(en.contains("terraform-ci via Terraform"), "{en}");
    assert!(en.contains("▸ IAM user changed"), "{en}");
    assert!(!en.contains("Zeit") && !en.contains("geändert"), "{en}");
}

#[test]
fn codes_parse_as_the_variants_are_named() {
    assert_eq!("de".parse::<Lang>().unwrap(), Lang::De);
    assert_eq!(" KO ".parse::<Lang>().unwrap(), Lang::Ko);
    assert_eq!("en".parse::<Lang>().unwrap(), Lang::En);
    let err = "kr".parse::<Lang>().unwrap_err().to_string();
    assert!(err.contains("unknown variant `kr`"), "{err}");
}

#[test]
fn each_language_names_itself_to_the_model() {
    assert_eq!(Lang::En.words().model_language, "English");
    assert_eq!(Lang::Ko.words().model_language, "Korean (한국어)");
}
