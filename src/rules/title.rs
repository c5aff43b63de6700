//! A rule's title in each language the pack gives.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::locale::Lang;

/// Titles by language, English always among them. In a pack (and where rules are stored) it
/// reads `title = { en = "…", ko = "…" }`, or `title = "…"` for English alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Titles(BTreeMap<Lang, String>);

impl Titles {
    /// The English title, the one every rule has.
    pub fn new(english: impl Into<String>) -> Self {
        Self(BTreeMap::from([(Lang::En, english.into())]))
    }

    /// These titles and `title` in `lang`.
    #[must_use]
    pub fn with(mut self, lang: Lang, title: impl Into<String>) -> Self {
        self.0.insert(lang, title.into());
        self
    }

    /// The title in `lang`, or in English when the pack gives none in `lang`.
    pub fn get(&self, lang: Lang) -> &str {
        self.0
            .get(&lang)
            .or_else(|| self.0.get(&Lang::En))
            .map_or("", String::as_str)
    }

    /// Each title rewritten by `f(lang, title)`.
    #[must_use]
    pub fn map(&self, f: impl Fn(Lang, &str) -> String) -> Self {
        Self(
            self.0
                .iter()
                .map(|(lang, t)| (*lang, f(*lang, t)))
                .collect(),
        )
    }

    /// Whether the pack gives a title in `lang` itself.
    pub fn has(&self, lang: Lang) -> bool {
        self.0.get(&lang).is_some_and(|t| !t.is_empty())
    }
}

impl<'de> Deserialize<'de> for Titles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TitlesVisitor)
    }
}

struct TitlesVisitor;

impl<'de> Visitor<'de> for TitlesVisitor {
    type Value = Titles;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a title, or titles by language like { en = "…", ko = "…" }"#)
    }

    fn visit_str<E: de::Error>(self, english: &str) -> Result<Titles, E> {
        Ok(Titles::new(english))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Titles, A::Error> {
        let mut titles = BTreeMap::new();
        while let Some((lang, title)) = map.next_entry::<Lang, String>()? {
            if titles.insert(lang, title).is_some() {
                return Err(de::Error::custom("a language is given twice"));
            }
        }
        if !titles.contains_key(&Lang::En) {
            return Err(de::Error::custom(
                "the titles have no English one: add en = \"…\"",
            ));
        }
        Ok(Titles(titles))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test fixtures")]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Entry {
        title: Titles,
    }

    fn parse(toml: &str) -> Result<Titles, String> {
        toml::from_str::<Entry>(toml)
            .map(|e| e.title)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_plain_string_is_english() {
        let titles = parse(r#"title = "Root used""#).unwrap();
        assert_eq!(titles, Titles::new("Root used"));
        assert_eq!(titles.get(Lang::Ko), "Root used");
        assert!(!titles.has(Lang::Ko));
    }

    #[test]
    fn titles_by_language_fall_back_to_english() {
        let titles = parse(r#"title = { en = "Root used", ko = "루트 계정 사용" }"#).unwrap();
        assert_eq!(titles.get(Lang::En), "Root used");
        assert_eq!(titles.get(Lang::Ko), "루트 계정 사용");
        assert!(titles.has(Lang::Ko));
        let english_only = parse(r#"title = { en = "Root used" }"#).unwrap();
        assert_eq!(english_only.get(Lang::Ko), "Root used");
    }

    #[test]
    fn an_unknown_language_or_no_english_is_an_error() {
        let err = parse(r#"title = { en = "Root used", kr = "루트" }"#).unwrap_err();
        assert!(err.contains("unknown variant `kr`"), "{err}");
        let err = parse(r#"title = { ko = "루트 계정 사용" }"#).unwrap_err();
        assert!(err.contains("no English one"), "{err}");
    }

    #[test]
    fn stored_titles_read_back() {
        let titles = Titles::new("Root used").with(Lang::Ko, "루트 계정 사용");
        let json = serde_json::to_string(&titles).unwrap();
        assert_eq!(json, r#"{"en":"Root used","ko":"루트 계정 사용"}"#);
        assert_eq!(serde_json::from_str::<Titles>(&json).unwrap(), titles);
    }
}
