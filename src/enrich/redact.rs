//! Redaction: credentials and secret-looking values never leave the process.
//!
//! Two layers. By key: values under keys that name a secret (`password`, `sessionToken`,
//! `secretAccessKey`, `privateKey`, ...) are never read into an [`Event`](crate::event::Event)
//! and are replaced in quarantine excerpts. By shape: every string that does leave is scanned
//! for known secret formats (AWS keys; Slack, GitHub, GitLab, Stripe, OpenAI, Anthropic and
//! Google tokens; JWTs, PEM keys, passwords in URLs and on `mysql` command lines, long hex
//! runs, long high-entropy runs, `password=...` pairs).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use aho_corasick::AhoCorasick;
use regex::{Captures, Regex};

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Key fragments (lower case, without `_`/`-`) that mark a value as secret.
const SECRET_KEY_PARTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "privatekey",
    "keymaterial",
    "authorization",
    "apikey",
    "passphrase",
    "signature",
    "cookie",
];

/// True when a field of this name holds a secret (`sessionToken`, `newPassword`, `SecretString`).
/// Names of secrets (`secretId`, `secretArn`, `tokenName`) are identifiers, not secrets.
pub fn is_secret_key(key: &str) -> bool {
    const NAMING: &[&str] = &["Id", "Ids", "Arn", "ARN", "Name", "Type", "Version"];
    if NAMING.iter().any(|suffix| key.ends_with(suffix)) {
        return false;
    }
    // Fold to lower-case letters and digits without allocating: keys are short.
    let mut folded = [0u8; 128];
    let mut len = 0;
    for b in key.bytes().filter(u8::is_ascii_alphanumeric) {
        if len == folded.len() {
            break;
        }
        folded[len] = b.to_ascii_lowercase();
        len += 1;
    }
    let folded = &folded[..len];
    // Every part starts with one of a few letters: only those positions are compared.
    (0..folded.len()).any(|at| {
        let rest = &folded[at..];
        matches!(rest[0], b'p' | b's' | b't' | b'c' | b'k' | b'a')
            && SECRET_KEY_PARTS
                .iter()
                .any(|part| rest.starts_with(part.as_bytes()))
    })
}

/// `AKIAIOSFODNN7EXAMPLE` -> `AKIA…MPLE`: enough to recognise, not enough to use.
pub fn shorten_access_key(key: &str) -> String {
    let count = key.chars().count();
    if count <= 8 {
        return "…".to_owned();
    }
    let head: String = key.chars().take(4).collect();
    let tail: String = key.chars().skip(count - 4).collect();
    format!("{head}…{tail}")
}

/// Each secret shape: a cheap test that must hold before its regex runs, the regex, and what
/// replaces a match. The cheap tests keep regexes off the hot path: most strings are ids.
const PATTERN_TABLE: [(Needle, &str, Replace); 16] = [
    (
        Needle::Any(&["PRIVATE KEY"]),
        r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?s:.*?)(-----END[A-Z ]*PRIVATE KEY-----|$)",
        Replace::Whole,
    ),
    (
        Needle::KeyValue,
        r#"(?i)((?:^|[\s"'{,;&?(])[A-Za-z_]*(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|passphrase)[A-Za-z_]*"?\s*[:=]\s*"?)([^"\s,;&}]+)"#,
        Replace::AfterPrefix,
    ),
    (
        Needle::Any(&["bearer"]),
        r"(?i)(bearer\s+)(\S+)",
        Replace::AfterPrefix,
    ),
    (
        Needle::Any(&["eyJ"]),
        r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        Replace::Whole,
    ),
    (
        Needle::Any(&["xox"]),
        r"xox[abposre]-[A-Za-z0-9-]{8,}",
        Replace::Whole,
    ),
    (
        Needle::Any(&["hooks.slack.com"]),
        r"https://hooks\.slack\.com/[A-Za-z0-9/_-]+",
        Replace::Whole,
    ),
    (
        Needle::Any(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"]),
        r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
        Replace::Whole,
    ),
    (
        Needle::Any(&["AKIA", "ASIA"]),
        r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        Replace::ShortenKey,
    ),
    // Stripe secret and restricted keys (publishable `pk_` keys are public).
    (
        Needle::Any(&["sk_live_", "sk_test_", "rk_live_", "rk_test_"]),
        r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{10,}",
        Replace::Whole,
    ),
    // OpenAI (`sk-…`, `sk-proj-…`) and Anthropic (`sk-ant-…`) API keys.
    (
        Needle::Any(&["sk-"]),
        r"\bsk-(?:(?:proj|ant|svcacct|admin)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{32,})",
        Replace::Whole,
    ),
    // GitLab personal access tokens.
    (
        Needle::Any(&["glpat-"]),
        r"glpat-[A-Za-z0-9_-]{20,}",
        Replace::Whole,
    ),
    // Google API keys.
    (
        Needle::Any(&["AIza"]),
        r"AIza[0-9A-Za-z_-]{35}",
        Replace::Whole,
    ),
    // A password in a URL's user info: `postgres://user:PASSWORD@host`.
    (
        Needle::Any(&["://"]),
        r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)([^/\s]+)(@)",
        Replace::Between,
    ),
    // `mysql -u root -pSECRET` (the password glued to `-p`) in scripts and user data.
    (
        Needle::Any(&["mysql"]),
        r"(mysql[A-Za-z]*\b[^\n]*?\s-p)('[^']*'|\x22[^\x22]*\x22|[^\s'\x22]+)",
        Replace::AfterPrefix,
    ),
    // Hex runs of 48 or more (also after `0x` or `_`): signatures, keys. Digests say so
    // (`sha256:…`, `sha256/…`), and a file named by its hash (`<hex>.json`) is not a secret:
    // those stay.
    (
        Needle::Run(48),
        r"((?i:sha(?:1|224|256|384|512)|md5)[:=/])?(?:\b|0x|_)([0-9A-Fa-f]{48,})\b(\.[A-Za-z][A-Za-z0-9]{1,4}\b)?",
        Replace::HexUnlessDigest,
    ),
    (
        Needle::Run(32),
        r"[A-Za-z0-9+/]{32,}={0,2}",
        Replace::IfHighEntropy,
    ),
];

/// Words that make a `key: value` or `key=value` pair secret (see the second pattern).
const SECRET_WORDS: &[&str] = &[
    "pass", "pwd", "secret", "token", "apikey", "api_key", "api-key",
];

#[derive(Debug, Clone, Copy)]
enum Needle {
    /// One of these substrings occurs (tested ignoring case: a prefilter may say yes too often).
    Any(&'static [&'static str]),
    /// A `:` or `=` and a secret word occur.
    KeyValue,
    /// A run of at least this many base64 characters occurs.
    Run(usize),
}

/// Every needle word, and which entry of `PATTERN_TABLE` it stands for.
fn needle_words() -> Vec<(&'static str, usize)> {
    let mut words = Vec::new();
    for (index, (needle, _, _)) in PATTERN_TABLE.iter().enumerate() {
        match needle {
            Needle::Any(list) => words.extend(list.iter().map(|w| (*w, index))),
            Needle::KeyValue => words.extend(SECRET_WORDS.iter().map(|w| (*w, index))),
            Needle::Run(_) => {}
        }
    }
    words
}

#[allow(clippy::unwrap_used)] // Built from the constant table above, checked by the tests below.
static NEEDLES: LazyLock<(AhoCorasick, Vec<usize>)> = LazyLock::new(|| {
    let (words, entries): (Vec<&str>, Vec<usize>) = needle_words().into_iter().unzip();
    let automaton = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(words)
        .unwrap();
    (automaton, entries)
});

fn longest_base64_run(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// Which entries of `PATTERN_TABLE` may match `text`, as a bit set: one pass over the text for
/// all the words, one for the longest base64 run.
fn candidates(text: &str) -> u32 {
    let (automaton, entries) = &*NEEDLES;
    let mut set = 0u32;
    for found in automaton.find_overlapping_iter(aho_corasick::Input::new(text)) {
        set |= 1 << entries[found.pattern().as_usize()];
    }
    let mut longest_run = None;
    for (index, (needle, _, _)) in PATTERN_TABLE.iter().enumerate() {
        match needle {
            Needle::KeyValue if memchr::memchr2(b':', b'=', text.as_bytes()).is_none() => {
                set &= !(1 << index);
            }
            Needle::Run(length)
                if *longest_run.get_or_insert_with(|| longest_base64_run(text)) >= *length =>
            {
                set |= 1 << index;
            }
            _ => {}
        }
    }
    set
}

#[allow(clippy::unwrap_used)] // The patterns are constants, checked by the tests below.
static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    PATTERN_TABLE
        .iter()
        .map(|(_, pattern, _)| Regex::new(pattern).unwrap())
        .collect()
});

#[derive(Debug, Clone, Copy)]
enum Replace {
    Whole,
    AfterPrefix,
    /// Keep the first and third groups, redact the second.
    Between,
    ShortenKey,
    /// Redact the hex run (group 2) unless a digest prefix (group 1) names it.
    HexUnlessDigest,
    IfHighEntropy,
}

/// Mixed case with digits over a long run: a key or token, not a word, a path or an id.
/// (`role/AmazonSSMManagedInstanceCore` has no digit; a 40-character AWS secret key almost
/// always has several, and the documented example key has one beside a `/`.)
///
/// A run with `/` in it may be a path (`log/AWSLogs/342082656213/vpcflowlogs/us`): it counts
/// as random only when its case flips often, as in base64 (`wJalrXUtnFEMI/K7MDENG/…`), not
/// once per word as in a path.
fn looks_random(s: &str) -> bool {
    let upper = s.chars().any(|c| c.is_ascii_uppercase());
    let lower = s.chars().any(|c| c.is_ascii_lowercase());
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let slashes = s.chars().any(|c| c == '/' || c == '+');
    let mixed = upper && lower && (digits >= 2 || (digits == 1 && slashes));
    if !mixed || !s.contains('/') {
        return mixed;
    }
    let flips = s
        .as_bytes()
        .windows(2)
        .filter(|w| {
            w[0].is_ascii_alphabetic()
                && w[1].is_ascii_alphabetic()
                && w[0].is_ascii_uppercase() != w[1].is_ascii_uppercase()
        })
        .count();
    flips * 8 >= s.len()
}

/// Redact every known secret format in `text`. Borrowed when nothing was found.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let candidates = candidates(text);
    let mut out = Cow::Borrowed(text);
    if candidates == 0 {
        return out;
    }
    for (index, ((_, _, replace), regex)) in PATTERN_TABLE.iter().zip(PATTERNS.iter()).enumerate() {
        if candidates & (1 << index) == 0 || !regex.is_match(&out) {
            continue;
        }
        let replaced = regex.replace_all(&out, |caps: &Captures<'_>| match replace {
            Replace::HexUnlessDigest if caps.get(1).is_some() || caps.get(3).is_some() => {
                caps[0].to_owned()
            }
            Replace::Whole => REDACTED.to_owned(),
            // Whatever preceded the run (`0x`, `_`) stays.
            Replace::HexUnlessDigest => caps[0].replace(&caps[2], REDACTED),
            Replace::AfterPrefix => format!("{}{REDACTED}", &caps[1]),
            Replace::Between => format!("{}{REDACTED}{}", &caps[1], &caps[3]),
            Replace::ShortenKey => shorten_access_key(&caps[0]),
            Replace::IfHighEntropy if looks_random(&caps[0]) => REDACTED.to_owned(),
            Replace::IfHighEntropy => caps[0].to_owned(),
        });
        if replaced != out.as_ref() {
            out = Cow::Owned(replaced.into_owned());
        }
    }
    out
}

/// Remembers what each string cleans to, and hands out one shared copy of it: user agents,
/// ARNs, role and resource names, regions and error messages repeat across a batch and across
/// accounts, and a lookup is much cheaper than a scan and a copy. Bounded: forgets everything
/// once it holds [`RedactCache::MAX_BYTES`].
#[derive(Debug, Default)]
pub struct RedactCache {
    /// Free text -> `bounded(redact_text(text), max)` for the `max` it was first asked with.
    scanned: HashMap<Box<str>, Kept, foldhash::fast::RandomState>,
    /// Text from a closed vocabulary (ids, codes, regions) -> `bounded(text, max)`, unscanned.
    verbatim: HashMap<Box<str>, Kept, foldhash::fast::RandomState>,
    bytes: usize,
}

#[derive(Debug)]
struct Kept {
    max: usize,
    text: Arc<str>,
}

impl RedactCache {
    pub const MAX_BYTES: usize = 4 << 20;

    /// `bounded(redact_text(text), max)`, without a scan or a copy when `text` was seen before.
    pub fn clean(&mut self, text: &str, max: usize) -> Arc<str> {
        if let Some(kept) = self.scanned.get(text).filter(|k| k.max == max) {
            return Arc::clone(&kept.text);
        }
        let cleaned: Arc<str> = bounded(&redact_text(text), max).into();
        self.keep(text, max, &cleaned, true);
        cleaned
    }

    /// `bounded(text, max)` for text that is never scanned (AWS fills it from a closed
    /// vocabulary), shared like [`RedactCache::clean`]. Never answers a `clean` lookup.
    pub fn verbatim(&mut self, text: &str, max: usize) -> Arc<str> {
        if let Some(kept) = self.verbatim.get(text).filter(|k| k.max == max) {
            return Arc::clone(&kept.text);
        }
        let kept: Arc<str> = bounded(text, max).into();
        self.keep(text, max, &kept, false);
        kept
    }

    fn keep(&mut self, text: &str, max: usize, cleaned: &Arc<str>, scanned: bool) {
        let size = text.len() + cleaned.len();
        if self.bytes + size > Self::MAX_BYTES {
            self.scanned.clear();
            self.verbatim.clear();
            self.bytes = 0;
        }
        self.bytes += size;
        let map = if scanned {
            &mut self.scanned
        } else {
            &mut self.verbatim
        };
        map.insert(
            text.into(),
            Kept {
                max,
                text: Arc::clone(cleaned),
            },
        );
    }
}

/// Cut to at most `max` characters on a char boundary, marking the cut.
pub fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        // No more bytes than `max`, so no more characters either.
        return Cow::Borrowed(text);
    }
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_keys_are_shortened() {
        assert_eq!(shorten_access_key("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        let text = redact_text("key AKIAIOSFODNN7EXAMPLE used");
        assert_eq!(text, "key AKIA…MPLE used");
    }

    #[test]
    fn known_formats_are_redacted() {
        let cases = [
            "xoxb-1234567890-abcdefghijkl",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefgh",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            "https://hooks.slack.com/services/T000/B000/XXXX",
        ];
        for secret in cases {
            let input = format!("before {secret} after");
            let out = redact_text(&input);
            assert!(!out.contains(secret), "{secret} survived: {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
    }

    /// Each shape added for vendor tokens, URLs, command lines and hex: redacted in context,
    /// and only the secret part.
    #[test]
    fn vendor_tokens_urls_and_hex_runs_are_redacted() {
        let cases = [
            (
                "STRIPE_KEY=x sk_live_51HqLyjWDarjtT1zdp7dcXYZ",
                "sk_live_51HqLyjWDarjtT1zdp7dc",
            ),
            (
                "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
                "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
            ),
            (
                "key sk-proj-Ab3dEf5hIj7kLm9nOp1qRs3tUv5wXy7z",
                "sk-proj-Ab3dEf5hIj7kLm9nOp1q",
            ),
            (
                "key sk-ant-api03-Ab3dEf5hIj7kLm9nOp1qRs3tUv5w",
                "sk-ant-api03-Ab3dEf5hIj7kLm9n",
            ),
            ("glpat-Ab3dEf5hIj7kLm9nOp1q", "glpat-Ab3dEf5hIj7kLm9nOp1q"),
            (
                "AIzaSyA-1234567890abcdefghijklmnopqrstu",
                "AIzaSyA-1234567890abcdefghijkl",
            ),
            (
                "postgres://app:Sup3rS3cret@db.internal:5432/prod",
                "Sup3rS3cret",
            ),
            (
                "mysql -h db -u root -pHunter2Planted < dump.sql",
                "Hunter2Planted",
            ),
            ("mysql -uroot -p'S3cr3t! pass' -e 'x'", "S3cr3t! pass"),
            ("redis://:p@ssw0rd@cache.internal:6379/0", "p@ssw0rd"),
            (
                "key sk-T3BlbkFJabcdefghijklmnopqrstuvwxyz012345",
                "sk-T3BlbkFJabcdefghijklmnop",
            ),
            (
                "wallet 0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318 end",
                "4c0883a69102937d6231471b5dbb6204fe5129617082792a",
            ),
            (
                "sig 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 end",
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c",
            ),
        ];
        for (input, secret) in cases {
            let out = redact_text(input);
            assert!(!out.contains(secret), "{secret} survived: {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        let out = redact_text("postgres://app:Sup3rS3cret@db.internal:5432/prod");
        assert_eq!(out, "postgres://app:[REDACTED]@db.internal:5432/prod");
        let digest =
            "image@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert!(matches!(redact_text(digest), Cow::Borrowed(_)), "a digest");
        for plain in [
            "https://example.com/path:8080",
            "mysql -u root -p",
            "task-sk-1",
            "function:sk-orders-webhook-prod-handler",
            "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            "cdk-hnb659fds-assets-111111111111-us-east-1/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.json",
            "blobs/sha256/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ] {
            assert!(matches!(redact_text(plain), Cow::Borrowed(_)), "{plain}");
        }
    }

    #[test]
    fn key_value_pairs_lose_their_value() {
        let out = redact_text(r#"{"sessionToken": "FwoGZXIvYXdz", "user": "bob"}"#);
        assert!(!out.contains("FwoGZXIvYXdz"), "{out}");
        let out = redact_text(r#"{"password": "Tr0ub4dor&3-planted", "user": "bob"}"#);
        assert!(!out.contains("Tr0ub4dor"), "{out}");
        assert!(out.contains("bob"));
        let out = redact_text("Authorization: Bearer abc.def.ghi");
        assert!(!out.contains("abc.def.ghi"), "{out}");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for text in [
            "arn:aws:iam::111111111111:role/AWSReservedSSO_AdministratorAccess_0123456789abcdef",
            "i-0123456789abcdef0",
            "terraform-provider-aws/5.72.1",
            "3f0c8a52-7c33-4c57-9e0d-0a4b0c1d2e3f",
            "my-bucket-name",
            "arn:aws:iam::aws:policy/service-role/AmazonSSMManagedInstanceCore",
            "arn:aws:secretsmanager:us-east-1:111111111111:secret:prod/db-Xk2P9q",
            "falsimentis-log/AWSLogs/342082656213/vpcflowlogs/us-west-1/2021/08/01/x.log.gz",
            "AWSLogs/o-abc123/111111111111/CloudTrail/us-east-1/2026/11/02/x.json.gz",
        ] {
            assert!(matches!(redact_text(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn secret_keys_are_recognised() {
        for key in [
            "sessionToken",
            "secretAccessKey",
            "SecretString",
            "new_password",
            "keyMaterial",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "userName",
            "bucketName",
            "accessKeyId",
            "instanceId",
            "secretId",
            "secretArn",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn the_cache_answers_like_a_scan() {
        let mut cache = RedactCache::default();
        for text in [
            "key AKIAIOSFODNN7EXAMPLE",
            "key AKIAIOSFODNN7EXAMPLE",
            "plain",
            "plain",
            "x",
        ] {
            assert_eq!(*cache.clean(text, 100), *bounded(&redact_text(text), 100));
            assert_eq!(*cache.clean(text, 3), *bounded(&redact_text(text), 3));
            assert_eq!(*cache.verbatim(text, 100), *bounded(text, 100));
        }
        assert_eq!(&*cache.clean("pwd=hunter2", 100), "pwd=[REDACTED]");
        assert_eq!(&*cache.clean("pwd=hunter2", 100), "pwd=[REDACTED]");
        // Seen verbatim first, the text is still scanned when it is free text.
        assert_eq!(&*cache.verbatim("pwd=hunter3", 100), "pwd=hunter3");
        assert_eq!(&*cache.clean("pwd=hunter3", 100), "pwd=[REDACTED]");
    }

    #[test]
    fn bounded_cuts_on_char_boundaries() {
        assert_eq!(bounded("가나다라", 2), "가나…");
        assert_eq!(bounded("abc", 3), "abc");
    }
}
