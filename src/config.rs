//! Configuration: one typed file, then the environment, then flags; validated once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::TimeDelta;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::enrich::ActorConfig;
use crate::event::AccountId;
use crate::summary::{Lang, Locale};
use crate::window::WindowConfig;

/// Every environment variable trailwatch reads, in one place.
pub mod env {
    /// `111111111111=prod,222222222222=dev`: account names.
    pub const ACCOUNTS: &str = "TRAILWATCH_ACCOUNTS";
    /// `terraform-*,github-actions-*`: role or user name globs that are automation.
    pub const AUTOMATION_ROLES: &str = "TRAILWATCH_AUTOMATION_ROLES";
    /// `en` or `ko`.
    pub const LANG: &str = "TRAILWATCH_LANG";
    /// An IANA time zone, e.g. `Asia/Seoul`.
    pub const TZ: &str = "TRAILWATCH_TZ";
    /// Window width, e.g. `5m`.
    pub const WINDOW: &str = "TRAILWATCH_WINDOW";
    /// Grace after a window ends, e.g. `2m`.
    pub const GRACE: &str = "TRAILWATCH_GRACE";
    /// Path of a configuration file (TOML), read before the variables above.
    pub const CONFIG: &str = "TRAILWATCH_CONFIG";
    /// Path of a rule pack (TOML) used instead of the built-in one.
    pub const RULES: &str = "TRAILWATCH_RULES";
    /// DynamoDB table of events, windows, audit and Kinesis checkpoints.
    pub const TABLE: &str = "TRAILWATCH_TABLE";
    /// Log filter (`tracing` env-filter syntax), e.g. `info` or `trailwatch=debug`.
    pub const LOG: &str = "TRAILWATCH_LOG";
}

/// A configuration problem, naming the key and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: expected {expected}, found {found:?}")]
    Invalid {
        key: String,
        expected: &'static str,
        found: String,
    },
}

fn invalid(key: impl Into<String>, expected: &'static str, found: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        expected,
        found: found.to_owned(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    accounts: BTreeMap<String, String>,
    actors: ActorsFile,
    window: WindowFile,
    output: OutputFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ActorsFile {
    automation_roles: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct WindowFile {
    width: Option<String>,
    grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OutputFile {
    lang: Option<String>,
    tz: Option<String>,
}

/// Account number -> readable name, as in the original system's "111111111111(A계정)".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountNames(BTreeMap<AccountId, String>);

impl AccountNames {
    pub fn get(&self, account: &AccountId) -> Option<&str> {
        self.0.get(account).map(String::as_str)
    }

    pub fn insert(&mut self, account: AccountId, name: String) {
        self.0.insert(account, name);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Validated settings the engine runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub accounts: AccountNames,
    pub actors: ActorConfig,
    pub window: WindowConfig,
    pub locale: Locale,
}

impl Settings {
    /// Defaults, then `file` (if given), then the environment as `var` reports it.
    pub fn load(
        file: Option<&Path>,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut settings = Self::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let parsed: FileConfig = toml::from_str(&text).map_err(|err| ConfigError::Parse {
                path: path.to_owned(),
                message: err.to_string().trim().replace('\n', " "),
            })?;
            settings.apply_file(parsed)?;
        }
        settings.apply_env(var)?;
        Ok(settings)
    }

    fn apply_file(&mut self, file: FileConfig) -> Result<(), ConfigError> {
        for (account, name) in file.accounts {
            self.accounts.insert(
                parse_account(&format!("accounts.{account}"), &account)?,
                name,
            );
        }
        self.actors
            .automation_roles
            .extend(file.actors.automation_roles);
        if let Some(width) = file.window.width {
            self.window.width = parse_duration("window.width", &width)?;
        }
        if let Some(grace) = file.window.grace {
            self.window.grace = parse_duration("window.grace", &grace)?;
        }
        if let Some(lang) = file.output.lang {
            self.locale.lang = parse_lang("output.lang", &lang)?;
        }
        if let Some(tz) = file.output.tz {
            self.locale.tz = parse_tz("output.tz", &tz)?;
        }
        Ok(())
    }

    fn apply_env(&mut self, var: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(list) = var(env::ACCOUNTS) {
            for pair in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (account, name) = pair.split_once('=').ok_or_else(|| {
                    invalid(env::ACCOUNTS, "comma-separated ACCOUNT=NAME pairs", pair)
                })?;
                let account = parse_account(env::ACCOUNTS, account.trim())?;
                self.accounts.insert(account, name.trim().to_owned());
            }
        }
        if let Some(list) = var(env::AUTOMATION_ROLES) {
            self.actors.automation_roles.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            );
        }
        if let Some(width) = var(env::WINDOW) {
            self.window.width = parse_duration(env::WINDOW, &width)?;
        }
        if let Some(grace) = var(env::GRACE) {
            self.window.grace = parse_duration(env::GRACE, &grace)?;
        }
        self.set_locale(
            var(env::LANG).as_deref(),
            var(env::TZ).as_deref(),
            env::LANG,
            env::TZ,
        )
    }

    /// Override language and time zone (flags), naming `lang_key`/`tz_key` in errors.
    pub fn set_locale(
        &mut self,
        lang: Option<&str>,
        tz: Option<&str>,
        lang_key: &str,
        tz_key: &str,
    ) -> Result<(), ConfigError> {
        if let Some(lang) = lang {
            self.locale.lang = parse_lang(lang_key, lang)?;
        }
        if let Some(tz) = tz {
            self.locale.tz = parse_tz(tz_key, tz)?;
        }
        Ok(())
    }
}

fn parse_account(key: &str, text: &str) -> Result<AccountId, ConfigError> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(AccountId::new(text))
    } else {
        Err(invalid(key, "a 12-digit AWS account number", text))
    }
}

fn parse_duration(key: &str, text: &str) -> Result<TimeDelta, ConfigError> {
    humantime::parse_duration(text.trim())
        .ok()
        .and_then(|d| TimeDelta::from_std(d).ok())
        .filter(|d| *d > TimeDelta::zero() || key.contains("grace"))
        .ok_or_else(|| invalid(key, "a duration like \"5m\" or \"90s\"", text))
}

fn parse_lang(key: &str, text: &str) -> Result<Lang, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "en" => Ok(Lang::En),
        "ko" => Ok(Lang::Ko),
        _ => Err(invalid(key, "\"en\" or \"ko\"", text)),
    }
}

fn parse_tz(key: &str, text: &str) -> Result<Tz, ConfigError> {
    text.trim().parse::<Tz>().map_err(|_| {
        invalid(
            key,
            "an IANA time zone like \"Asia/Seoul\" or \"UTC\"",
            text,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn write(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(text)
    }

    /// A minimal temp-file helper (no extra dependency).
    mod tempfile_path {
        use std::path::PathBuf;
        use std::sync::atomic::{AtomicUsize, Ordering};

        pub struct TempPath(pub PathBuf);

        impl TempPath {
            pub fn with(text: &str) -> Self {
                static N: AtomicUsize = AtomicUsize::new(0);
                let path = std::env::temp_dir().join(format!(
                    "trailwatch-config-{}-{}.toml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::write(&path, text).unwrap_or_default();
                Self(path)
            }
        }

        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn file_then_env() {
        let file = write(
            "[accounts]\n\"111111111111\" = \"A계정\"\n[window]\nwidth = \"10m\"\n[output]\nlang = \"ko\"\ntz = \"Asia/Seoul\"\n",
        );
        let env = |key: &str| match key {
            env::ACCOUNTS => Some("222222222222=dev".to_owned()),
            env::LANG => Some("en".to_owned()),
            _ => None,
        };
        let settings = Settings::load(Some(&file.0), &env).unwrap_or_default();
        assert_eq!(settings.accounts.len(), 2);
        assert_eq!(
            settings.accounts.get(&AccountId::new("111111111111")),
            Some("A계정")
        );
        assert_eq!(settings.window.width, TimeDelta::minutes(10));
        assert_eq!(settings.locale.lang, Lang::En);
        assert_eq!(settings.locale.tz, chrono_tz::Asia::Seoul);
    }

    #[test]
    fn errors_name_the_key_and_expectation() {
        let cases = [
            (
                "[window]\nwidth = \"five\"\n",
                "window.width: expected a duration",
            ),
            (
                "[output]\ntz = \"Mars/Base\"\n",
                "output.tz: expected an IANA time zone",
            ),
            (
                "[accounts]\n\"12\" = \"x\"\n",
                "accounts.12: expected a 12-digit",
            ),
            ("[outptu]\nlang = \"ko\"\n", "unknown field `outptu`"),
        ];
        for (text, expected) in cases {
            let file = write(text);
            let err = Settings::load(Some(&file.0), &no_env)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(expected), "{err}");
        }
        let env = |key: &str| (key == env::LANG).then(|| "fr".to_owned());
        let err = Settings::load(None, &env).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("TRAILWATCH_LANG: expected \"en\" or \"ko\", found \"fr\"")
        );
    }
}
