//! Korean (한국어).

use super::{ChangesBy, Kinds, Overview, Ran, SignIn, Words};
use crate::enrich::Tool;

pub const WORDS: Words = Words {
    performers: "수행자",
    time: "시간",
    regions: "리전",
    account: "계정",
    events: "이벤트",
    late: "지연 도착",
    late_note: "이 구간의 요약을 보낸 뒤 도착한 이벤트",
    immediate: "즉시 알림",
    continued: "계속",
    failed: "실패",
    already_alerted: "이미 알림",
    severity: "심각도",
    summary_by: "요약",
    by_offline: "오프라인 템플릿",
    by_fallback: "오프라인 템플릿 (모델 사용 불가)",
    by_model: "모델",
    other_regions: "기타 리전",
    no_events: "(이벤트 없음)",
    more: |n| format!("외 {n}개"),

    red: "위험",
    yellow: "주의",
    green: "정상",

    kind: Kinds {
        person: "사람",
        workload: "워크로드",
        aws_service: "AWS 서비스",
        root: "루트",
        unknown: "알 수 없음",
    },
    kind_in_prose: Kinds {
        person: "사람",
        workload: "워크로드",
        aws_service: "AWS 서비스",
        root: "루트 계정",
        unknown: "알 수 없음",
    },
    sso: "SSO",
    assume_root_session: "AssumeRoot 세션",
    unknown_user: "알 수 없는 사용자",
    name_hidden: "AWS가 이름을 숨김",
    no_actor: "행위자 정보 없음",
    instance: |name| format!("인스턴스 {name}"),
    console: "콘솔",
    service: "서비스",
    via: |tool| format!("{tool} 사용"),

    model_language: "Korean (한국어)",
    late_prefix: "지연 도착: ",
    immediate_prefix: "즉시 알림: ",
    no_changes: "변경 없음",
    account_in_prose,
    lead_count: |n| format!(" {n}건"),
    lead_others: |n| format!(" 외 {n}건"),
    no_rule_matched: "해당 규칙에 걸린 이벤트가 없습니다.",
    worst_rule: |title, severity| format!("가장 높은 위험도의 규칙: {title} ({severity})."),
    no_events_in_batch: "이 배치에는 이벤트가 없습니다.",
    and_more: |n| format!(" 외 {n}개"),
    overview,
    late_line: |n, window| {
        format!(
            "{window} 요약을 보낸 뒤 지연 도착한 이벤트 {n}건입니다. 앞선 요약에는 없던 내용입니다."
        )
    },
    immediate_line: |title, severity| {
        format!(
            "즉시 알림: '{title}' 규칙({severity})에 해당해 5분 요약을 기다리지 않고 바로 알립니다."
        )
    },
    subject,
    made: |when, subject, list| format!("{when}, {subject} {list}을(를) 수행했습니다."),
    ran,
    sign_in,
    more_groups: |more, events| {
        format!("외 {more}개 그룹({events}건)은 아래 이벤트 목록에 있습니다.")
    },
    changes_by,
    failed_calls: |total, list| format!("실패한 호출 {total}건: {list}."),
    already_posted: |n| format!("이 중 {n}건은 즉시 알림으로 이미 보고되었습니다."),
    more_events: |n| format!("이벤트 {n}건 추가"),
    so_far: |n| format!("지금까지 {n}건"),
    since: "시작",
    still_going: "계속 진행 중",
    in_thread: "이전 이벤트는 첫 메시지의 스레드에 있습니다",
    overflow: |ceiling| {
        format!(
            "이번 시간 새 인시던트가 {ceiling}건을 넘었습니다: 이후 인시던트는 이 스레드에 이어집니다"
        )
    },
    alerted_elsewhere: |n| {
        format!("이 구간의 이벤트 {n}건은 즉시 알림으로 이미 게시됨 (스레드 참고)")
    },
    in_held: "이후 이벤트는 이 채널의 \"계속 중\" 목록에 있습니다",
    overflow_unthreaded: |ceiling| format!("이번 시간 새 인시던트가 {ceiling}건을 넘었습니다"),
    continuing: "계속 중",
    continuing_note: "이 채널은 스레드가 없어, 앞서 게시된 인시던트의 이후 이벤트를 모아 보여 줍니다",
    continuing_headline: |events, incidents| {
        format!("앞서 게시된 인시던트 {incidents}건의 이후 이벤트 {events}건")
    },
    silent_headline: |region, since| {
        format!(
            "{since} 이후 {region}에서 하트비트가 없습니다: 이벤트가 trailwatch에 도달하지 않을 수 있습니다"
        )
    },
    silent_body: "이 계정과 리전의 멤버 스택은 이벤트와 같은 규칙, 버스, 스트림, 파이프를 거쳐 5분마다 하트비트를 보냅니다. 규칙(trailwatch-heartbeat, trailwatch-forward-*), 배달 못한 편지 대기열, 중앙 버스 정책과 파이프를 확인하세요.",
    resumed_headline: |region, since| {
        format!("{region}의 하트비트가 돌아왔습니다 ({since}부터 끊김)")
    },
    quiet_headline: |region, since| format!("{since} 이후 {region}에서 전달된 이벤트가 없습니다"),
    quiet_body: "하트비트는 도착하므로 전달은 동작합니다. 그동안 멤버 규칙에 맞는 CloudTrail 이벤트가 없었습니다. 이 계정과 리전에서 CloudTrail이 계속 기록하는지 확인하세요.",
    unquiet_headline: |region, since| {
        format!("{region}의 이벤트가 다시 전달됩니다 ({since}부터 조용함)")
    },
    events_n: |n| format!("{n}건"),
};

/// Korean verbal nouns that read as "<object> <noun>" and conjugate with `했습니다`.
const VERBS: [&str; 22] = [
    "생성",
    "삭제",
    "변경",
    "수정",
    "추가",
    "제거",
    "연결",
    "분리",
    "시작",
    "중지",
    "재부팅",
    "종료",
    "업데이트",
    "활성화",
    "비활성화",
    "부여",
    "회수",
    "해제",
    "등록",
    "공개",
    "비공개",
    "설정",
];

/// "IAM 사용자 생성" -> ("IAM 사용자", "생성").
fn split_title(title: &str) -> Option<(&str, &str)> {
    let (object, verb) = title.trim().rsplit_once(' ')?;
    VERBS.contains(&verb).then_some((object.trim(), verb))
}

/// True when the last syllable has a final consonant, so the particle is 이/을/으로.
/// Latin words are read as Koreans pronounce them: a final m, n, l or ng is a consonant.
fn has_final_consonant(word: &str) -> bool {
    let Some(last) = word.trim_end().chars().last() else {
        return false;
    };
    let code = u32::from(last);
    if (0xAC00..=0xD7A3).contains(&code) {
        return (code - 0xAC00) % 28 != 0;
    }
    matches!(last.to_ascii_lowercase(), 'm' | 'n' | 'l' | 'g')
}

fn account_in_prose(id: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{id}({name})"),
        None => id.to_owned(),
    }
}

fn overview(o: &Overview<'_>) -> String {
    format!(
        "{}, {}의 {}{} 리전에서 이벤트 {}건이 있었습니다.",
        o.span, o.account, o.regions, o.more_regions, o.events
    )
}

/// `dae.kim(SSO, 사람, Terraform)이`: the subject particle follows the last tag read aloud.
fn subject(name: &str, tags: &[&str], tool: Option<&str>) -> String {
    let mut tags = tags.to_vec();
    tags.extend(tool);
    let last = tags.last().copied().unwrap_or_default();
    let particle = if has_final_consonant(last) {
        "이"
    } else {
        "가"
    };
    format!("{name}({}){particle}", tags.join(", "))
}

/// `…이 IAM 사용자 'alice'을(를) 생성했습니다.`, or the API name when the title does not split
/// into an object and a verbal noun.
fn ran(r: &Ran<'_>) -> String {
    let Ran {
        when,
        subject,
        name,
        title,
        codes,
        ..
    } = *r;
    let n = r.calls;
    let target = if r.targets.is_empty() {
        String::new()
    } else {
        format!(" {}", r.targets)
    };
    let times = if n > 1 {
        format!(" ({n}건)")
    } else {
        String::new()
    };
    let done = if let Some((object, verb)) = split_title(title) {
        match r.failed {
            0 => format!("{object}{target}을(를) {verb}했습니다{times}"),
            f if f == n => {
                format!("{object}{target}을(를) {verb}하려 했으나 실패했습니다{times}({codes})")
            }
            f => format!(
                "{object}{target}을(를) {verb}했습니다{times}. 그중 {f}건은 실패했습니다({codes})"
            ),
        }
    } else {
        match r.failed {
            0 => format!("{name}{target}을(를) 실행했습니다{times}: {title}"),
            f if f == n => {
                format!(
                    "{name}{target}을(를) 실행하려 했으나 실패했습니다{times}({codes}): {title}"
                )
            }
            f => format!(
                "{name}{target}을(를) 실행했고 그중 {f}건은 실패했습니다{times}({codes}): {title}"
            ),
        }
    };
    format!("{when}, {subject} {done}.")
}

fn sign_in(s: &SignIn<'_>) -> String {
    let what = match (s.attempts, s.failed) {
        (1, 1) => "콘솔 로그인에 실패했습니다".to_owned(),
        (1, _) => "콘솔에 로그인했습니다".to_owned(),
        (n, 0) => format!("콘솔에 {n}번 로그인했습니다"),
        (n, f) => format!("콘솔에 {n}번 로그인을 시도했고 {f}번 실패했습니다"),
    };
    let mfa = if s.without_mfa {
        " (MFA 미사용)"
    } else {
        ""
    };
    format!("{}, {} {what}{mfa}.", s.when, s.subject)
}

/// `Terraform으로 적용된 변경 312건`.
fn changes_by(by: ChangesBy, n: usize) -> String {
    match by {
        ChangesBy::Tool(via) => {
            let tool = match via {
                Tool::Terraform => "Terraform",
                Tool::CloudFormation => "CloudFormation",
                Tool::Cdk => "CDK",
                Tool::Pulumi => "Pulumi",
                _ => "자동화 도구",
            };
            let particle = if has_final_consonant(tool) {
                "으로"
            } else {
                "로"
            };
            format!("{tool}{particle} 적용된 변경 {n}건")
        }
        ChangesBy::Ci => format!("CI 역할이 수행한 변경 {n}건"),
        ChangesBy::Workload => format!("워크로드(코드로 실행된 역할)가 수행한 변경 {n}건"),
        ChangesBy::Service => format!("AWS 서비스가 수행한 변경 {n}건"),
        ChangesBy::Root => format!("루트 계정이 수행한 변경 {n}건"),
        ChangesBy::Person => format!("사람이 직접 수행한 변경 {n}건"),
        ChangesBy::Unknown => format!("수행자를 알 수 없는 변경 {n}건"),
    }
}

#[cfg(test)]
mod tests {
    use super::{has_final_consonant, split_title};

    #[test]
    fn particles_follow_the_last_sound() {
        assert!(has_final_consonant("콘솔"));
        assert!(has_final_consonant("사람"));
        assert!(!has_final_consonant("서비스"));
        assert!(has_final_consonant("Terraform"));
        assert!(has_final_consonant("CloudFormation"));
        assert!(!has_final_consonant("CLI"));
        assert!(!has_final_consonant("CDK"));
    }

    #[test]
    fn titles_split_into_object_and_verbal_noun() {
        assert_eq!(split_title("IAM 사용자 생성"), Some(("IAM 사용자", "생성")));
        assert_eq!(split_title("루트 계정 사용"), None);
    }
}
