//! Korean (한국어).

use super::{Action, Kinds, Words};
use crate::summary::outcome::Outcomes;

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
    threshold_title: |title, n| format!("{title} (한 구간에 {n}건)"),

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
    answer_tokens: 1_000,
    account_in_prose,
    no_rule_matched: "해당 규칙에 걸린 이벤트가 없습니다.",
    worst_rule: |title, severity| format!("가장 높은 위험도의 규칙: {title} ({severity})."),
    no_events_in_batch: "이 배치에는 이벤트가 없습니다.",
    and_more: |n| format!(" 외 {n}개"),
    who,
    action,
    outcome_counts,
    made: str::to_owned,
    performers_n: |n| format!("수행자 {n}명"),
    rules_n: |n| format!("규칙 {n}개"),
    headline: |prefix, who, what, title| format!("{prefix}{who}: {what} · {title}"),
    denied_attempt: "거부된 시도 — ",
    failed_attempt: "실패한 시도 — ",
    denied: "거부됨",
    read: "조회",
    itself: "자기 자신",
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

fn account_in_prose(id: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{id}({name})"),
        None => id.to_owned(),
    }
}

/// `dae.kim (SSO, Terraform 사용)`: no particle after it, the headline puts a colon there.
fn who(name: &str, tags: &[&str], tool: Option<&str>) -> String {
    let mut tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    if let Some(via) = tool {
        tags.push(via.to_owned());
    }
    if tags.is_empty() {
        name.to_owned()
    } else {
        format!("{name} ({})", tags.join(", "))
    }
}

/// `bob 대상 CreateUser 실행`, `org-trail 대상 DeleteTrail 3회 시도, 거부됨 (AccessDenied)`,
/// `MFA 없이 콘솔 로그인`.
fn action(a: &Action<'_>) -> String {
    let o = a.outcomes;
    if let Some(without_mfa) = a.sign_in_without_mfa {
        let mfa = if without_mfa { "MFA 없이 " } else { "" };
        let failed = o.denied + o.failed;
        return match (a.calls, failed) {
            (1, 0) => format!("{mfa}콘솔 로그인"),
            (1, _) => format!("{mfa}콘솔 로그인 시도, 실패"),
            (n, 0) => format!("{mfa}콘솔 로그인 {n}회"),
            (n, f) if f == n => format!("{mfa}콘솔 로그인 {n}회 시도, 모두 실패"),
            (n, f) => format!("{mfa}콘솔 로그인 {n}회, {f}회 실패"),
        };
    }
    let times = if a.calls > 1 {
        format!(" {}회", a.calls)
    } else {
        String::new()
    };
    let on = if a.targets.is_empty() {
        String::new()
    } else {
        format!("{} 대상 ", a.targets)
    };
    let codes = if a.codes.is_empty() {
        String::new()
    } else {
        format!(" ({})", a.codes)
    };
    let name = a.name;
    let attempts = o.denied + o.failed;
    let how = if o.failed == 0 { "거부됨" } else { "실패" };
    if attempts == a.calls {
        if a.prefixed {
            return format!("{on}{name}{times} 시도{codes}");
        }
        return format!("{on}{name}{times} 시도, {how}{codes}");
    }
    let verb = if o.reads == a.calls {
        "조회"
    } else {
        "실행"
    };
    if attempts == 0 {
        format!("{on}{name}{times} {verb}")
    } else {
        format!("{on}{name}{times} {verb}, {attempts}회 {how}{codes}")
    }
}

/// `변경 3건, 조회 2건, 거부된 시도 1건`.
fn outcome_counts(o: &Outcomes) -> String {
    let mut parts = Vec::new();
    if o.changes > 0 {
        parts.push(format!("변경 {}건", o.changes));
    }
    if o.reads > 0 {
        parts.push(format!("조회 {}건", o.reads));
    }
    if o.denied > 0 {
        parts.push(format!("거부된 시도 {}건", o.denied));
    }
    if o.failed > 0 {
        parts.push(format!("실패한 시도 {}건", o.failed));
    }
    parts.join(", ")
}
